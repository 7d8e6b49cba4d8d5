//! `/catalog/offerings`: what the operator sells (TMF620). Everyone who reads customers may
//! read the catalog; marketers and admins manage it.

pub mod repo;

use sqlx::AnyConnection;

pub use repo::{NewOffering, Offering, OfferingPatch};

use crate::auth::{Permission, Principal};
use crate::crm::validate;
use crate::crm::CrmState;
use crate::crud;
use crate::http::ApiError;
use crate::store::{ListSpec, Page};

const SPEC: ListSpec = crate::list_spec!(o; text code, offering_type, lifecycle_status;
    int is_bundle, price_cents; sort code, name, price_cents, created_at; default "o.code");

const TYPES: &[&str] = &["plan", "addon", "device", "service"];
const LIFECYCLE: &[&str] = &["in_design", "active", "retired"];

/// The checks every write of an offering passes (the API's and an import's).
pub(crate) async fn validate(conn: &mut sqlx::AnyConnection, o: &Offering) -> Result<(), ApiError> {
    validate::text("code", &o.code, 64)?;
    if !o
        .code
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ApiError::field("code", "letters, digits, _ and - only"));
    }
    validate::text("name", &o.name, 200)?;
    validate::one_of("offering_type", &o.offering_type, TYPES)?;
    validate::non_negative("price_cents", o.price_cents)?;
    if let Some(p) = &o.recurring_period {
        validate::one_of("recurring_period", p, &["month", "year"])?;
    }
    for ch in &o.channels {
        validate::one_of("channels", ch, validate::CHANNELS)?;
    }
    validate::one_of("lifecycle_status", &o.lifecycle_status, LIFECYCLE)?;
    if o.is_bundle == o.bundled_offering_ids.is_empty() {
        return Err(ApiError::field(
            "bundled_offering_ids",
            "a bundle lists its offerings, and only a bundle does",
        ));
    }
    if o.bundled_offering_ids.contains(&o.id) {
        return Err(ApiError::field(
            "bundled_offering_ids",
            "must not contain itself",
        ));
    }
    if repo::count_existing(conn, &o.bundled_offering_ids).await? != o.bundled_offering_ids.len() {
        return Err(ApiError::field(
            "bundled_offering_ids",
            "refers to unknown offerings",
        ));
    }
    Ok(())
}

/// A new offering from the request, before [`validate`].
pub(crate) fn build(req: NewOffering) -> Offering {
    req.into_record()
}

/// The fields a patch gives, applied (code, type and bundling are fixed once created).
pub(crate) fn apply(mut o: Offering, patch: OfferingPatch) -> Offering {
    crud::Editable::apply(&mut o, patch);
    o
}

impl crud::Editable for Offering {
    type Patch = OfferingPatch;

    async fn check_in(
        &self,
        conn: &mut AnyConnection,
        _: &Principal,
        _: &Self,
    ) -> Result<(), ApiError> {
        validate(conn, self).await
    }
}

/// Every check of an offering reads the catalog (its bundle's offerings), so all of them run
/// in the write transaction.
impl crud::Creatable for Offering {
    type New = NewOffering;

    fn build(req: NewOffering, _: &Principal) -> Result<Offering, ApiError> {
        Ok(build(req))
    }

    async fn check_new(&self, conn: &mut AnyConnection, _: &Principal) -> Result<(), ApiError> {
        validate(conn, self).await
    }
}

crate::crud_handlers! { Offering in CrmState, tag "catalog", routes router;
    |p| from repo::all(), read p.require(Permission::ReadCustomers),
        write p.require(Permission::ManageCatalog);
    list "/api/v1/catalog/offerings", SPEC, search ["o.name", "o.code"],
        (("code" = Option<String>, Query), ("offering_type" = Option<String>, Query),
        ("lifecycle_status" = Option<String>, Query), ("is_bundle" = Option<i64>, Query, description = "0 or 1"),
        ("q" = Option<String>, Query, description = "substring of name or code"), ("price_cents_max" = Option<i64>, Query));
    create "/api/v1/catalog/offerings", NewOffering, responses((status = 400), (status = 409));
    read "/api/v1/catalog/offerings/{id}", (("id" = String, Path, description = "offering id or code"));
    update "/api/v1/catalog/offerings/{id}", OfferingPatch,
        (("id" = String, Path, description = "offering id or code"));
}
