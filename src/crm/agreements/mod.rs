//! `/agreements`: customer contracts (合同; TMF651 Agreement) with their period, scanned
//! document reference and renewal reminder threshold; the reminder job is in [`reminders`].

pub mod reminders;
pub mod repo;

use axum::extract::State;
use axum::Json;
use sqlx::AnyConnection;

pub use repo::{Agreement, AgreementPatch, NewAgreement};

use crate::auth::{Permission, Principal};
use crate::crm::customers::repo::owned;
use crate::crm::scope::require_named_customer;
use crate::crm::validate;
use crate::crm::CrmState;
use crate::crud;
use crate::http::ApiError;
use crate::store::{ListSpec, Page};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<CrmState> {
    crud_routes().routes(routes!(run_reminders))
}

pub const STATUSES: &[&str] = &["draft", "active", "expired", "terminated"];

const SPEC: ListSpec = crate::list_spec!(g; text customer_id, status, agreement_type;
    sort end_date, start_date, created_at, name; default "g.end_date");

fn date_only(field: &str, v: &str) -> Result<(), ApiError> {
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map(|_| ())
        .map_err(|_| ApiError::field(field, "must be a date (YYYY-MM-DD)"))
}

impl crud::Editable for Agreement {
    type Patch = AgreementPatch;

    fn validate(&self) -> Result<(), ApiError> {
        validate::text("name", &self.name, 200)?;
        validate::one_of(
            "agreement_type",
            &self.agreement_type,
            &["service", "framework", "enterprise", "other"],
        )?;
        validate::one_of("status", &self.status, STATUSES)?;
        date_only("start_date", &self.start_date)?;
        date_only("end_date", &self.end_date)?;
        if self.end_date < self.start_date {
            return Err(ApiError::field("end_date", "must not be before start_date"));
        }
        if !(0..=366).contains(&self.reminder_days) {
            return Err(ApiError::field(
                "reminder_days",
                "must be between 0 and 366",
            ));
        }
        validate::opt_text("document_ref", self.document_ref.as_deref(), 1000)?;
        validate::non_negative("amount_cents", self.amount_cents)
    }
}

impl crud::Creatable for Agreement {
    type New = NewAgreement;

    fn build(req: NewAgreement, _: &Principal) -> Result<Agreement, ApiError> {
        let a = req.into_record();
        crud::Editable::validate(&a)?;
        Ok(a)
    }

    async fn check_new(&self, conn: &mut AnyConnection, p: &Principal) -> Result<(), ApiError> {
        require_named_customer(conn, p, &self.customer_id).await
    }
}

crate::crud_handlers! { Agreement in CrmState, tag "agreements", routes crud_routes;
    |p| from owned::<Agreement>(&p), read p.require(Permission::ReadCustomers),
        write p.require(Permission::ManageContracts);
    list "/api/v1/agreements", SPEC, (("customer_id" = Option<String>, Query),
        ("status" = Option<String>, Query), ("agreement_type" = Option<String>, Query));
    create "/api/v1/agreements", NewAgreement, responses((status = 400));
    read "/api/v1/agreements/{id}", (("id" = String, Path));
    /// Updates a contract. A new `end_date` (renewal) clears the reminder so the new period is
    /// reminded again.
    update "/api/v1/agreements/{id}", AgreementPatch, (("id" = String, Path));
}

/// Runs the contract reminder job now (`run_jobs`: admins).
#[utoipa::path(post, path = "/api/v1/agreements/reminders/run", tag = "agreements",
    responses((status = 200, body = reminders::ReminderRun), (status = 403, description = "needs `run_jobs` (admins)", body = crate::http::error::ErrorBody)))]
pub async fn run_reminders(
    State(st): State<CrmState>,
    p: Principal,
) -> Result<Json<reminders::ReminderRun>, ApiError> {
    p.require(Permission::RunJobs)?;
    let run = reminders::run_once(&st, chrono::Utc::now())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(run))
}
