//! `/parties`: the people and organizations behind customers (TMF632).

pub mod repo;

pub use repo::{NewParty, Party, PartyPatch};

use crate::auth::{Permission, Principal};
use crate::crm::validate;
use crate::crm::CrmState;
use crate::crud;
use crate::http::ApiError;
use crate::store::{ListSpec, Page};

const SPEC: ListSpec = crate::list_spec!(p;
    text party_type, registration_number, family_name, trading_name;
    sort created_at, family_name, trading_name; default "p.created_at");

impl crud::Editable for Party {
    type Patch = PartyPatch;

    fn validate(&self) -> Result<(), ApiError> {
        validate::one_of(
            "party_type",
            &self.party_type,
            &["individual", "organization"],
        )?;
        if self.party_type == "individual" {
            if self.given_name.is_none() && self.family_name.is_none() {
                return Err(ApiError::field("family_name", "an individual needs a name"));
            }
        } else if self.trading_name.is_none() {
            return Err(ApiError::field(
                "trading_name",
                "an organization needs a name",
            ));
        }
        validate::opt_text("given_name", self.given_name.as_deref(), 100)?;
        validate::opt_text("family_name", self.family_name.as_deref(), 100)?;
        validate::opt_text("trading_name", self.trading_name.as_deref(), 200)?;
        validate::opt_text(
            "registration_number",
            self.registration_number.as_deref(),
            64,
        )?;
        if let Some(d) = &self.birth_date {
            validate::date("birth_date", d)?;
        }
        validate::opt_text("nationality", self.nationality.as_deref(), 2)
    }
}

impl crud::Creatable for Party {
    type New = NewParty;

    fn build(req: NewParty, p: &Principal) -> Result<Party, ApiError> {
        let a = Party {
            created_by: p.id.clone(),
            ..req.into_record()
        };
        crud::Editable::validate(&a)?;
        Ok(a)
    }
}

crate::crud_handlers! { Party in CrmState, tag "parties", routes router;
    |p| from repo::scoped(&p), read p.require(Permission::ReadCustomers),
        write crate::crm::scope::require_operator_write(&p);
    list "/api/v1/parties", SPEC, search ["p.given_name", "p.family_name", "p.trading_name"],
        (("party_type" = Option<String>, Query), ("registration_number" = Option<String>, Query),
        ("family_name" = Option<String>, Query), ("trading_name" = Option<String>, Query),
        ("q" = Option<String>, Query, description = "substring of any name"));
    create "/api/v1/parties", NewParty, responses((status = 400));
    read "/api/v1/parties/{id}", (("id" = String, Path));
    update "/api/v1/parties/{id}", PartyPatch, (("id" = String, Path));
}
