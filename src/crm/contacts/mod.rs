//! `/customers/{id}/contacts`: contact media (TMF `contactMedium`): phone, email, address.

pub mod repo;

pub use repo::{ContactMedium, ContactPatch, NewContact};

use crate::auth::{Permission, Principal};
use crate::crm::scope::require_customer;
use crate::crm::validate;
use crate::crm::CrmState;
use crate::crud;
use crate::event::Msisdn;
use crate::http::ApiError;
use crate::store::{ListSpec, Page};

const SPEC: ListSpec = crate::list_spec!(m; text medium_type; sort created_at, medium_type;
    default "m.created_at");

/// Each medium type needs its own characteristic.
pub(crate) fn validate(m: &ContactMedium) -> Result<(), ApiError> {
    validate::one_of(
        "medium_type",
        &m.medium_type,
        &["phone", "email", "address"],
    )?;
    validate::one_of("role", &m.role, repo::ROLES)?;
    match m.medium_type.as_str() {
        "phone" => {
            let n = m
                .phone_number
                .as_deref()
                .ok_or_else(|| ApiError::field("phone_number", "required for a phone"))?;
            Msisdn::parse(n).map_err(|e| ApiError::field("phone_number", e.to_string()))?;
        }
        "email" => {
            let e = m.email_address.as_deref().unwrap_or_default();
            if !e.contains('@') || e.len() > 254 {
                return Err(ApiError::field("email_address", "must be an email address"));
            }
        }
        _ => {
            validate::text("city", m.city.as_deref().unwrap_or_default(), 100)?;
            validate::opt_text("street1", m.street1.as_deref(), 200)?;
        }
    }
    validate::opt_text("contact_name", m.contact_name.as_deref(), 100)
}

crate::crud_handlers! { ContactMedium in CrmState, tag "customers", routes router;
    |p, id, conn| from repo::of_customer(&id), read p.require(Permission::ReadCustomers),
        write p.require(Permission::WriteCustomers), parent require_customer(conn, &p, &id);
    list "/api/v1/customers/{id}/contacts", SPEC,
        (("id" = String, Path), ("medium_type" = Option<String>, Query));
    create "/api/v1/customers/{id}/contacts", NewContact, (("id" = String, Path)),
        responses((status = 400));
    read "/api/v1/customers/{id}/contacts/{contact_id}",
        (("id" = String, Path), ("contact_id" = String, Path));
    update "/api/v1/customers/{id}/contacts/{contact_id}", ContactPatch,
        (("id" = String, Path), ("contact_id" = String, Path));
    remove "/api/v1/customers/{id}/contacts/{contact_id}",
        (("id" = String, Path), ("contact_id" = String, Path));
}

impl crud::CreatableIn for ContactMedium {
    type New = NewContact;

    fn build_in(customer_id: &str, req: NewContact, _: &Principal) -> Result<Self, ApiError> {
        let m = ContactMedium {
            customer_id: customer_id.to_string(),
            ..req.into_record()
        };
        validate(&m)?;
        Ok(m)
    }
}

impl crud::Editable for ContactMedium {
    type Patch = ContactPatch;

    fn validate(&self) -> Result<(), ApiError> {
        validate(self)
    }
}
