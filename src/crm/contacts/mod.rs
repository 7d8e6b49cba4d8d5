//! `/customers/{id}/contacts`: contact media (TMF `contactMedium`): phone, email, address.

pub mod repo;

use axum::extract::{Path, State};

pub use repo::{ContactMedium, ContactPatch, NewContact};

use crate::auth::{Permission, Principal};
use crate::crm::scope::require_customer;
use crate::crm::validate;
use crate::crm::CrmState;
use crate::crud;
use crate::event::Msisdn;
use crate::http::Tagged;
use crate::http::{ApiError, ApiJson};
use crate::store::{new_id, now_text, FilterKind, ListSpec, Page};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<CrmState> {
    crud_routes().routes(routes!(create))
}

const SPEC: ListSpec = ListSpec {
    filters: &[("medium_type", "m.medium_type", FilterKind::Text)],
    sorts: &[
        ("created_at", "m.created_at"),
        ("medium_type", "m.medium_type"),
    ],
    default_sort: "m.created_at",
    tiebreak: "m.id",
};

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

crate::crud_handlers! { ContactMedium in CrmState, tag "customers", routes crud_routes;
    |p, id, conn| from repo::of_customer(&id), read p.require(Permission::ReadCustomers),
        write p.require(Permission::WriteCustomers), parent require_customer(conn, &p, &id);
    list "/api/v1/customers/{id}/contacts", SPEC,
        (("id" = String, Path), ("medium_type" = Option<String>, Query));
    read "/api/v1/customers/{id}/contacts/{contact_id}",
        (("id" = String, Path), ("contact_id" = String, Path));
    update "/api/v1/customers/{id}/contacts/{contact_id}", ContactPatch,
        (("id" = String, Path), ("contact_id" = String, Path));
    remove "/api/v1/customers/{id}/contacts/{contact_id}",
        (("id" = String, Path), ("contact_id" = String, Path));
}

impl crud::Editable for ContactMedium {
    type Patch = ContactPatch;

    fn apply(&mut self, patch: ContactPatch) {
        patch.apply_to(self);
    }

    fn validate(&self) -> Result<(), ApiError> {
        validate(self)
    }
}

#[utoipa::path(post, path = "/api/v1/customers/{id}/contacts", tag = "customers", params(("id" = String, Path)),
    request_body = NewContact, responses((status = 201, body = ContactMedium), (status = 400), (status = 404)))]
pub async fn create(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NewContact>,
) -> Result<Tagged<ContactMedium>, ApiError> {
    p.require(Permission::WriteCustomers)?;
    let now = now_text();
    let m = ContactMedium {
        id: new_id(),
        customer_id: id.clone(),
        contact_name: req.contact_name,
        medium_type: req.medium_type,
        role: req.role.unwrap_or_else(|| "general".into()),
        preferred: req.preferred,
        phone_number: req.phone_number,
        email_address: req.email_address,
        street1: req.street1,
        city: req.city,
        post_code: req.post_code,
        country: req.country,
        created_at: now.clone(),
        updated_at: now,
        version: 1,
    };
    validate(&m)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    require_customer(&mut tx, &p, &id).await?;
    crud::create(tx, &p, m).await
}
