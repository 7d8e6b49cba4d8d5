//! `/lines`: subscriber lines. Addressed by id or by msisdn (`/lines/8613900000001`).

pub mod repo;

use axum::extract::{Path, State};
use axum::http::HeaderMap;

pub use repo::{Line, LinePatch, NewLine};

use crate::auth::{Permission, Principal};
use crate::crm::customers::repo::owned;
use crate::crm::profiles::changes::{emit_for_lines, FieldChange};
use crate::crm::scope::require_customer;
use crate::crm::validate;
use crate::crm::CrmState;
use crate::crud;
use crate::event::{Msisdn, MsisdnError};
use crate::http::Tagged;
use crate::http::{ApiError, ApiJson};
use crate::store::{now_text, ListSpec, Page};
use utoipa_axum::{router::OpenApiRouter, routes};

#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("{0}")]
    Msisdn(#[from] MsisdnError),
    #[error("belongs to another customer")]
    ForeignAccount,
}

impl From<LineError> for ApiError {
    fn from(e: LineError) -> ApiError {
        match e {
            LineError::Msisdn(_) => ApiError::field("msisdn", e.to_string()),
            LineError::ForeignAccount => ApiError::field("account_id", e.to_string()),
        }
    }
}

pub fn router() -> OpenApiRouter<CrmState> {
    crud_routes()
        .routes(routes!(create))
        .routes(routes!(update, remove))
}

const SPEC: ListSpec = crate::list_spec!(l; text msisdn, customer_id, account_id, status, plan;
    sort msisdn, created_at, activated_at; default "l.msisdn");

const STATUSES: &[&str] = &["active", "suspended", "terminated"];

pub(crate) fn validate(l: &Line) -> Result<(), ApiError> {
    Msisdn::parse(&l.msisdn).map_err(LineError::from)?;
    validate::text("plan", &l.plan, 64)?;
    validate::one_of("status", &l.status, STATUSES)?;
    validate::opt_text("imsi", l.imsi.as_deref(), 15)?;
    validate::day_or_time("activated_at", &l.activated_at).map(|_| ())
}

/// A line's plan is a plan in the catalog: rules and segments match plans by code, so a typo
/// would silently match nothing. The error lists the plans there are.
pub async fn check_plan(conn: &mut sqlx::AnyConnection, plan: &str) -> Result<(), ApiError> {
    let plans = crate::crm::catalog::repo::plan_codes(conn).await?;
    if plans.iter().any(|c| c == plan) {
        return Ok(());
    }
    Err(not_a_plan(&plans))
}

/// The error for a plan the catalog does not have, listing the ones it has.
pub fn not_a_plan(plans: &[String]) -> ApiError {
    ApiError::field(
        "plan",
        if plans.is_empty() {
            "must be the code of a plan in the catalog, which has none yet (POST /api/v1/catalog/offerings with offering_type plan)".to_string()
        } else {
            format!(
                "must be the code of a plan in the catalog: {}",
                plans.join(", ")
            )
        },
    )
}

pub(crate) async fn check_account(
    conn: &mut sqlx::AnyConnection,
    l: &Line,
) -> Result<(), ApiError> {
    if let Some(acc) = &l.account_id {
        if !repo::account_belongs(conn, acc, &l.customer_id).await? {
            return Err(LineError::ForeignAccount.into());
        }
    }
    Ok(())
}

crate::crud_handlers! { Line in CrmState, tag "lines", routes crud_routes;
    |p| from owned::<Line>(&p), read p.require(Permission::ReadCustomers),
        write crate::crm::scope::require_operator_write(&p);
    list "/api/v1/lines", SPEC, (("msisdn" = Option<String>, Query),
        ("customer_id" = Option<String>, Query), ("account_id" = Option<String>, Query),
        ("status" = Option<String>, Query), ("plan" = Option<String>, Query));
    read "/api/v1/lines/{line}", (("line" = String, Path, description = "line id or msisdn"));
}

#[utoipa::path(post, path = "/api/v1/lines", tag = "lines", request_body = NewLine,
    responses((status = 201, body = Line), (status = 400), (status = 409)))]
pub async fn create(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(mut req): ApiJson<NewLine>,
) -> Result<Tagged<Line>, ApiError> {
    crate::crm::scope::require_operator_write(&p)?;
    let activated_at = req.activated_at.take();
    let mut l = req.into_record();
    l.activated_at = match activated_at {
        Some(a) => validate::day_or_time("activated_at", &a)?,
        None => l.created_at.clone(),
    };
    validate(&l)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    require_customer(&mut tx, &p, &l.customer_id)
        .await
        .map_err(|_| ApiError::field("customer_id", "no such customer"))?;
    check_plan(&mut tx, &l.plan).await?;
    check_account(&mut tx, &l).await?;
    if let Some(gone) = repo::deleted_with(&mut tx, &l.msisdn).await? {
        let l = reclaim(&gone, l).map_err(ApiError::Conflict)?;
        let msisdn = l.msisdn.clone();
        let line = crud::restore(tx, &p, &gone, l).await?;
        emit_for_lines(&st, &[msisdn], vec![known_again()]).await;
        return Ok(line);
    }
    crud::create(tx, &p, l).await
}

/// The rule for a number whose line was deleted: the same customer taking it again gets that
/// line back (same id, next version, audited as `restore`); another customer is refused,
/// because the number's history (offers, answers, usage) would pass to them with it.
pub fn reclaim(gone: &Line, l: Line) -> Result<Line, String> {
    if gone.customer_id != l.customer_id {
        return Err(format!(
            "{} was a line of another customer, deleted; a number is not passed on with its history",
            l.msisdn
        ));
    }
    Ok(Line {
        id: gone.id.clone(),
        version: gone.version,
        created_at: gone.created_at.clone(),
        ..l
    })
}

#[utoipa::path(patch, path = "/api/v1/lines/{line}", tag = "lines",
    params(("line" = String, Path, description = "line id or msisdn")), request_body = LinePatch,
    responses((status = 200, body = Line), (status = 404), (status = 412)))]
pub async fn update(
    State(st): State<CrmState>,
    p: Principal,
    Path(key): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<LinePatch>,
) -> Result<Tagged<Line>, ApiError> {
    crate::crm::scope::require_operator_write(&p)?;
    let (mut tx, before): (_, Line) =
        crud::begin_patch(&st.db, &headers, patch.version, owned::<Line>(&p), &key).await?;
    let mut after = before.clone();
    patch.apply_to(&mut after);
    validate(&after)?;
    if after.plan != before.plan {
        check_plan(&mut tx, &after.plan).await?;
    }
    check_account(&mut tx, &after).await?;
    let after = crud::update(tx, &p, &before, after).await?;
    if before.plan != after.body.plan {
        let change = FieldChange {
            field: "plan",
            old: before.plan.clone().into(),
            new: after.body.plan.clone().into(),
        };
        emit_for_lines(&st, std::slice::from_ref(&after.body.msisdn), vec![change]).await;
    }
    Ok(after)
}

/// Deletes a line, softly: it is terminated and hidden from every read, its number is known
/// to the engine no more (no marketing from then on), and the audit trail keeps its last
/// state. Its number stays taken by it.
#[utoipa::path(delete, path = "/api/v1/lines/{line}", tag = "lines",
    params(("line" = String, Path, description = "line id or msisdn")),
    responses((status = 204), (status = 404, body = crate::http::error::ErrorBody), (status = 403)))]
pub async fn remove(
    State(st): State<CrmState>,
    p: Principal,
    Path(key): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    crate::crm::scope::require_operator_write(&p)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    let before: Line = crud::load(&mut tx, owned::<Line>(&p), &key).await?;
    let msisdns: Vec<String> = repo::soft_delete(&mut tx, "id", &before.id, &now_text())
        .await?
        .into_iter()
        .map(|l| l.msisdn)
        .collect();
    let customer = before.customer_id.clone();
    crate::audit::commit_delete(tx, &p, "line", &before.id, Some(&customer), &before).await?;
    emit_for_lines(&st, &msisdns, vec![no_longer_known()]).await;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// What the engine hears of a restored line: the number is the CRM's again.
fn known_again() -> FieldChange {
    FieldChange {
        field: "known",
        old: false.into(),
        new: true.into(),
    }
}

/// What the engine hears of a deleted line: the number is no longer the CRM's.
pub fn no_longer_known() -> FieldChange {
    FieldChange {
        field: "known",
        old: true.into(),
        new: false.into(),
    }
}
