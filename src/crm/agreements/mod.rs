//! `/agreements`: customer contracts (合同; TMF651 Agreement) with their period, scanned
//! document reference and renewal reminder threshold; the reminder job is in [`reminders`].

pub mod reminders;
pub mod repo;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

pub use repo::Agreement;

use crate::auth::{Permission, Principal};
use crate::crm::scope::require_customer;
use crate::crm::validate;
use crate::crm::CrmState;
use crate::crud;
use crate::http::{expected_version, nullable, Tagged};
use crate::http::{ApiError, ApiJson};
use crate::store::{new_id, now_text, FilterKind, ListParams, ListSpec, Page};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(run_reminders))
        .routes(routes!(read, update))
}

pub const STATUSES: &[&str] = &["draft", "active", "expired", "terminated"];

const SPEC: ListSpec = ListSpec {
    filters: &[
        ("customer_id", "g.customer_id", FilterKind::Text),
        ("status", "g.status", FilterKind::Text),
        ("agreement_type", "g.agreement_type", FilterKind::Text),
    ],
    sorts: &[
        ("end_date", "g.end_date"),
        ("start_date", "g.start_date"),
        ("created_at", "g.created_at"),
        ("name", "g.name"),
    ],
    default_sort: "g.end_date",
    tiebreak: "g.id",
};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgreement {
    pub customer_id: String,
    pub name: String,
    pub agreement_type: Option<String>,
    pub status: Option<String>,
    pub start_date: String,
    pub end_date: String,
    /// Default 30.
    pub reminder_days: Option<i64>,
    pub document_ref: Option<String>,
    pub amount_cents: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementPatch {
    pub name: Option<String>,
    pub agreement_type: Option<String>,
    pub status: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub reminder_days: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub document_ref: Option<Option<String>>,
    pub amount_cents: Option<i64>,
    pub version: Option<i64>,
}

fn date_only(field: &str, v: &str) -> Result<(), ApiError> {
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map(|_| ())
        .map_err(|_| ApiError::field(field, "must be a date (YYYY-MM-DD)"))
}

fn validate(a: &Agreement) -> Result<(), ApiError> {
    validate::text("name", &a.name, 200)?;
    validate::one_of(
        "agreement_type",
        &a.agreement_type,
        &["service", "framework", "enterprise", "other"],
    )?;
    validate::one_of("status", &a.status, STATUSES)?;
    date_only("start_date", &a.start_date)?;
    date_only("end_date", &a.end_date)?;
    if a.end_date < a.start_date {
        return Err(ApiError::field("end_date", "must not be before start_date"));
    }
    if !(0..=366).contains(&a.reminder_days) {
        return Err(ApiError::field(
            "reminder_days",
            "must be between 0 and 366",
        ));
    }
    validate::opt_text("document_ref", a.document_ref.as_deref(), 1000)?;
    validate::non_negative("amount_cents", a.amount_cents)
}

#[utoipa::path(get, path = "/api/v1/agreements", tag = "agreements",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query), ("sort" = Option<String>, Query),
        ("customer_id" = Option<String>, Query), ("status" = Option<String>, Query), ("agreement_type" = Option<String>, Query)),
    responses((status = 200, body = Page<Agreement>)))]
pub async fn list(
    State(st): State<CrmState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<Agreement>>, ApiError> {
    p.require(Permission::ReadCustomers)?;
    crud::list(&st.db, repo::scoped(&p), &ListParams::parse(&SPEC, &q)?).await
}

#[utoipa::path(post, path = "/api/v1/agreements", tag = "agreements", request_body = NewAgreement,
    responses((status = 201, body = Agreement), (status = 400)))]
pub async fn create(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(req): ApiJson<NewAgreement>,
) -> Result<Tagged<Agreement>, ApiError> {
    p.require(Permission::ManageContracts)?;
    let now = now_text();
    let a = Agreement {
        id: new_id(),
        customer_id: req.customer_id,
        name: req.name,
        agreement_type: req.agreement_type.unwrap_or_else(|| "service".into()),
        status: req.status.unwrap_or_else(|| "active".into()),
        start_date: req.start_date,
        end_date: req.end_date,
        reminder_days: req.reminder_days.unwrap_or(30),
        document_ref: req.document_ref,
        amount_cents: req.amount_cents.unwrap_or(0),
        reminded_for: None,
        created_at: now.clone(),
        updated_at: now,
        version: 1,
    };
    validate(&a)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    require_customer(&mut tx, &p, &a.customer_id)
        .await
        .map_err(|_| ApiError::field("customer_id", "no such customer"))?;
    crud::create(tx, &p, a).await
}

#[utoipa::path(get, path = "/api/v1/agreements/{id}", tag = "agreements", params(("id" = String, Path)),
    responses((status = 200, body = Agreement), (status = 404)))]
pub async fn read(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Tagged<Agreement>, ApiError> {
    p.require(Permission::ReadCustomers)?;
    crud::read(&st.db, repo::scoped(&p), &id).await
}

/// Updates a contract. A new `end_date` (renewal) clears the reminder so the new period is
/// reminded again.
#[utoipa::path(patch, path = "/api/v1/agreements/{id}", tag = "agreements", params(("id" = String, Path)),
    request_body = AgreementPatch, responses((status = 200, body = Agreement), (status = 404), (status = 412)))]
pub async fn update(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<AgreementPatch>,
) -> Result<Tagged<Agreement>, ApiError> {
    p.require(Permission::ManageContracts)?;
    let expected = expected_version(&headers, patch.version)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    let before: Agreement = crud::load_at(&mut tx, repo::scoped(&p), &id, expected).await?;
    let mut after = before.clone();
    crate::apply_patch!(patch => after;
        name,
        agreement_type,
        status,
        start_date,
        end_date,
        reminder_days,
        document_ref,
        amount_cents
    );
    validate(&after)?;
    crud::update(tx, &p, &before, after).await
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
