//! `/opportunities`: sales leads (商机) from accepted offers, agents and enterprise requests,
//! moved through enforced stages, with follow-ups (商机跟踪) and a reason when won or lost.

pub mod repo;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

pub use repo::{FollowUp, NewOpportunity, Opportunity, OpportunityPatch};

use crate::auth::{Permission, Principal, Role};
use crate::crm::customers::repo::owned;
use crate::crm::scope::{push_customer_scope, require_customer};
use crate::crm::validate;
use crate::crm::workflow::{self, Children};
use crate::crm::CrmState;
use crate::crud;
use crate::http::{expected_version, Tagged};
use crate::http::{ApiError, ApiJson};
use crate::ports::Status;
use crate::store::{check_ref, new_id, now_text, ListSpec, Page, Sql};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<CrmState> {
    crud_routes()
        .routes(routes!(create))
        .routes(routes!(from_offer))
        .routes(routes!(update))
        .routes(routes!(list_follow_ups, add_follow_up))
}

pub const STAGES: &[&str] = &[
    "prospecting",
    "qualification",
    "proposal",
    "negotiation",
    "won",
    "lost",
];
const OPEN_STAGES: &[&str] = &["prospecting", "qualification", "proposal", "negotiation"];

/// Stage moves allowed: one step forward or back through the open stages, `won` only from
/// `negotiation`, `lost` from any open stage; `won` and `lost` are final.
pub fn transition_allowed(from: &str, to: &str) -> bool {
    let Some(i) = OPEN_STAGES.iter().position(|s| *s == from) else {
        return false;
    };
    match to {
        "lost" => true,
        "won" => from == "negotiation",
        _ => OPEN_STAGES
            .iter()
            .position(|s| *s == to)
            .is_some_and(|j| j == i + 1 || j + 1 == i),
    }
}

/// The probability a stage implies when none is given.
pub fn default_probability(stage: &str) -> i64 {
    match stage {
        "prospecting" => 10,
        "qualification" => 25,
        "proposal" => 50,
        "negotiation" => 75,
        "won" => 100,
        _ => 0,
    }
}

const SPEC: ListSpec = crate::list_spec!(o; text customer_id, stage, owner_id, source;
    sort created_at, amount_cents, probability, expected_close; default "o.created_at DESC");

#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct FromOffer {
    pub title: Option<String>,
    pub amount_cents: Option<i64>,
    pub expected_close: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFollowUp {
    /// call | visit | email | meeting | note
    pub kind: String,
    pub note: String,
    pub next_action: Option<String>,
    pub next_at: Option<String>,
}

fn validate(o: &Opportunity) -> Result<(), ApiError> {
    validate::text("title", &o.title, 200)?;
    validate::one_of("stage", &o.stage, STAGES)?;
    if !(0..=100).contains(&o.probability) {
        return Err(ApiError::field("probability", "must be between 0 and 100"));
    }
    validate::non_negative("amount_cents", o.amount_cents)?;
    if let Some(d) = &o.expected_close {
        validate::date("expected_close", d)?;
    }
    validate::opt_text("close_reason", o.close_reason.as_deref(), 1000)
}

fn require_write(p: &Principal) -> Result<(), ApiError> {
    p.require(Permission::ManageOpportunities)
}

/// The customer's account manager, if any.
pub async fn account_manager(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT account_manager_id FROM customers WHERE id = $1")
            .bind(customer_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.and_then(|r| r.0))
}

crate::crud_handlers! { Opportunity in CrmState, tag "opportunities", routes crud_routes;
    |p| from owned::<Opportunity>(&p), read p.require(Permission::ReadCustomers),
        write require_write(&p);
    list "/api/v1/opportunities", SPEC, (("customer_id" = Option<String>, Query),
        ("stage" = Option<String>, Query), ("owner_id" = Option<String>, Query),
        ("source" = Option<String>, Query));
    read "/api/v1/opportunities/{id}", (("id" = String, Path));
}

/// A new opportunity of `customer_id` entered by `p`, at `stage` with the probability it
/// implies; the rest empty.
fn new_opportunity(
    p: &Principal,
    customer_id: String,
    title: String,
    source: String,
    stage: String,
) -> Opportunity {
    let now = now_text();
    Opportunity {
        id: new_id(),
        customer_id,
        title,
        source,
        recommendation_id: None,
        offer_code: None,
        probability: default_probability(&stage),
        stage,
        amount_cents: 0,
        owner_id: None,
        expected_close: None,
        close_reason: None,
        closed_at: None,
        created_by: p.id.clone(),
        created_at: now.clone(),
        updated_at: now,
        version: 1,
    }
}

async fn insert_new(
    st: &CrmState,
    p: &Principal,
    o: Opportunity,
) -> Result<Tagged<Opportunity>, ApiError> {
    validate(&o)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    check_ref(&mut tx, "users", "owner_id", o.owner_id.as_deref()).await?;
    crud::create(tx, p, o).await
}

/// Enters a lead. Enterprise admins may request one for their enterprise (source `enterprise`).
#[utoipa::path(post, path = "/api/v1/opportunities", tag = "opportunities", request_body = NewOpportunity,
    responses((status = 201, body = Opportunity), (status = 400), (status = 403)))]
pub async fn create(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(req): ApiJson<NewOpportunity>,
) -> Result<Tagged<Opportunity>, ApiError> {
    let enterprise = p.role == Role::EnterpriseAdmin;
    if !enterprise {
        require_write(&p)?;
    }
    let mut conn = st.db.pool.acquire().await?;
    require_customer(&mut conn, &p, &req.customer_id)
        .await
        .map_err(|_| ApiError::field("customer_id", "no such customer"))?;
    let manager = account_manager(&mut conn, &req.customer_id).await?;
    drop(conn);
    let source = if enterprise {
        "enterprise".to_string()
    } else {
        req.source.unwrap_or_else(|| "agent".into())
    };
    validate::one_of("source", &source, &["agent", "enterprise"])?;
    let stage = if enterprise {
        "prospecting".to_string()
    } else {
        req.stage.unwrap_or_else(|| "prospecting".into())
    };
    validate::one_of("stage", &stage, OPEN_STAGES)?;
    let owner_id = if enterprise {
        manager
    } else {
        req.owner_id.or(manager).or_else(|| Some(p.id.clone()))
    };
    let mut o = new_opportunity(&p, req.customer_id, req.title, source, stage);
    o.offer_code = req.offer_code;
    o.probability = req.probability.unwrap_or(o.probability);
    o.amount_cents = req.amount_cents.unwrap_or(0);
    o.owner_id = owner_id;
    o.expected_close = req.expected_close;
    insert_new(&st, &p, o).await
}

/// Turns an accepted offer into an opportunity for the line's customer, owned by the
/// customer's account manager. One opportunity per recommendation (409 on a second).
#[utoipa::path(post, path = "/api/v1/opportunities/from-offer/{recommendation_id}", tag = "opportunities",
    params(("recommendation_id" = String, Path)), request_body(content = Option<FromOffer>),
    responses((status = 201, body = Opportunity), (status = 404), (status = 409)))]
pub async fn from_offer(
    State(st): State<CrmState>,
    p: Principal,
    Path(rec_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Tagged<Opportunity>, ApiError> {
    require_write(&p)?;
    let req: FromOffer = workflow::optional_body(&body)?;
    let rec = st
        .offers
        .offer(&rec_id)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .ok_or_else(|| ApiError::NotFound("recommendation".into()))?;
    let mut sql = Sql::new(
        "SELECT c.id, c.account_manager_id FROM lines l JOIN customers c ON c.id = l.customer_id \
         WHERE l.deleted_at IS NULL AND l.msisdn = ",
    );
    sql.bind(rec.msisdn.to_string());
    push_customer_scope(&mut sql, &p, "c");
    let row: Option<(String, Option<String>)> = sql.query_as().fetch_optional(&st.db.pool).await?;
    let (customer_id, manager) = row.ok_or_else(|| ApiError::NotFound("recommendation".into()))?;
    if rec.status != Status::Accepted {
        return Err(ApiError::Conflict(format!(
            "the offer is {}, not accepted",
            rec.status.as_str()
        )));
    }
    let title = req
        .title
        .unwrap_or_else(|| format!("Offer {} accepted", rec.offer_code));
    let mut o = new_opportunity(
        &p,
        customer_id,
        title,
        "offer".into(),
        "qualification".into(),
    );
    o.recommendation_id = Some(rec.id.clone());
    o.offer_code = Some(rec.offer_code.clone());
    o.amount_cents = req.amount_cents.unwrap_or(0);
    o.owner_id = manager.or_else(|| Some(p.id.clone()));
    o.expected_close = req.expected_close;
    insert_new(&st, &p, o).await
}

/// Updates fields and moves the stage; illegal moves answer 409, won/lost need a reason.
#[utoipa::path(patch, path = "/api/v1/opportunities/{id}", tag = "opportunities", params(("id" = String, Path)),
    request_body = OpportunityPatch, responses((status = 200, body = Opportunity), (status = 404), (status = 409), (status = 412)))]
pub async fn update(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<OpportunityPatch>,
) -> Result<Tagged<Opportunity>, ApiError> {
    require_write(&p)?;
    let expected = expected_version(&headers, patch.version)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    let before: Opportunity =
        crud::load_at(&mut tx, owned::<Opportunity>(&p), &id, expected).await?;
    let mut after = before.clone();
    if let Some(stage) = patch.stage.filter(|s| *s != before.stage) {
        validate::one_of("stage", &stage, STAGES)?;
        if !transition_allowed(&before.stage, &stage) {
            return Err(ApiError::Conflict(format!(
                "an opportunity cannot move from {} to {stage}",
                before.stage
            )));
        }
        if matches!(stage.as_str(), "won" | "lost") {
            if patch
                .close_reason
                .as_deref()
                .is_none_or(|r| r.trim().is_empty())
            {
                return Err(ApiError::field(
                    "close_reason",
                    "required when an opportunity is won or lost",
                ));
            }
            after.closed_at = Some(now_text());
        }
        after.probability = default_probability(&stage);
        after.stage = stage;
    } else if OPEN_STAGES.contains(&before.stage.as_str()) && patch.close_reason.is_some() {
        return Err(ApiError::field(
            "close_reason",
            "only set when moving to won or lost",
        ));
    } else if !OPEN_STAGES.contains(&before.stage.as_str()) {
        return Err(ApiError::Conflict(format!(
            "the opportunity is {} and can no longer change",
            before.stage
        )));
    }
    if let Some(r) = patch.close_reason {
        after.close_reason = Some(r);
    }
    crate::apply_patch!(patch => after; title, probability, amount_cents, owner_id, expected_close);
    validate(&after)?;
    if after.owner_id != before.owner_id {
        check_ref(&mut tx, "users", "owner_id", after.owner_id.as_deref()).await?;
    }
    let action = if after.stage != before.stage {
        "transition"
    } else {
        "update"
    };
    crud::save(tx, &p, action, &before, after).await
}

/// An opportunity's follow-ups, newest first.
const FOLLOW_UPS: Children = Children::log::<FollowUp>("opportunity_id", "f.seq DESC", "f.id");

workflow::children_route! {
    /// The opportunity's follow-ups, newest first, a page at a time.
    #[utoipa::path(get, path = "/api/v1/opportunities/{id}/follow-ups", tag = "opportunities",
        params(("id" = String, Path), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
        responses((status = 200, body = Page<FollowUp>), (status = 400, body = crate::http::error::ErrorBody), (status = 404)))]
    list_follow_ups: FollowUp as FollowUp, of Opportunity, in FOLLOW_UPS;
    |p| p.require(Permission::ReadCustomers), owned::<Opportunity>(&p)
}

#[utoipa::path(post, path = "/api/v1/opportunities/{id}/follow-ups", tag = "opportunities", params(("id" = String, Path)),
    request_body = NewFollowUp, responses((status = 201, body = FollowUp), (status = 404)))]
pub async fn add_follow_up(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NewFollowUp>,
) -> Result<(axum::http::StatusCode, Json<FollowUp>), ApiError> {
    require_write(&p)?;
    let kinds = ["call", "visit", "email", "meeting", "note"];
    workflow::check_note(&kinds, &req.kind, &req.note)?;
    validate::opt_text("next_action", req.next_action.as_deref(), 500)?;
    let next_at = req
        .next_at
        .as_deref()
        .map(|d| validate::day_or_time("next_at", d))
        .transpose()?;
    workflow::add_to(
        &st.db,
        &p,
        owned::<Opportunity>(&p),
        &id,
        |o: &Opportunity| FollowUp {
            id: new_id(),
            opportunity_id: o.id.clone(),
            customer_id: o.customer_id.clone(),
            kind: req.kind,
            note: req.note,
            next_action: req.next_action,
            next_at,
            actor_id: p.id.clone(),
            at: now_text(),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_move_one_step_and_close_from_the_right_place() {
        assert!(transition_allowed("prospecting", "qualification"));
        assert!(transition_allowed("qualification", "prospecting"));
        assert!(!transition_allowed("prospecting", "proposal"));
        assert!(!transition_allowed("proposal", "won"));
        assert!(transition_allowed("negotiation", "won"));
        assert!(transition_allowed("prospecting", "lost"));
        assert!(!transition_allowed("won", "lost"));
        assert!(!transition_allowed("lost", "prospecting"));
    }
}
