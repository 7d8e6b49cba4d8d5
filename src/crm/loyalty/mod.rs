//! `/customers/{id}/loyalty`: the points ledger. The balance lives on the customer and moves
//! only with a ledger entry, in one conditional update, so it can never go negative even
//! under concurrent redemptions.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::auth::{Permission, Principal};
use crate::crm::scope::require_customer;
use crate::crm::validate;
use crate::crm::workflow::{self, Logged};
use crate::crm::CrmState;
use crate::http::{ApiError, ApiJson};
use crate::store::{fetch_page, new_id, now_text, ListParams, ListSpec, Page, Sql};
use utoipa_axum::{router::OpenApiRouter, routes};

#[derive(Debug, thiserror::Error)]
pub enum LoyaltyError {
    #[error("must be positive")]
    NotPositive,
    #[error("redeeming {wanted} points exceeds the balance of {balance}")]
    Insufficient { wanted: i64, balance: i64 },
}

impl From<LoyaltyError> for ApiError {
    fn from(e: LoyaltyError) -> ApiError {
        match e {
            LoyaltyError::NotPositive => ApiError::field("points", e.to_string()),
            LoyaltyError::Insufficient { .. } => ApiError::Conflict(e.to_string()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub id: String,
    pub customer_id: String,
    /// Positive for earned points, negative for redeemed ones.
    pub delta: i64,
    pub balance_after: i64,
    pub reason: String,
    pub actor_id: String,
    pub at: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoyaltyRequest {
    /// earn | redeem
    pub kind: String,
    pub points: i64,
    pub reason: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoyaltyStatement {
    pub balance: i64,
    pub entries: Page<LedgerEntry>,
}

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new().routes(routes!(statement, post_entry))
}

workflow::logged! { LedgerEntry in "loyalty_ledger" as e, kind "loyalty_ledger", owner customer_id;
id, customer_id, delta, balance_after, reason, actor_id, at }

const COLUMNS: &str = <LedgerEntry as Logged>::COLUMNS;

const SPEC: ListSpec = crate::list_spec!(e; text actor_id; sort at = seq; default "e.seq DESC");

pub async fn balance(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<i64, sqlx::Error> {
    let (b,): (i64,) = sqlx::query_as("SELECT loyalty_points FROM customers WHERE id = $1")
        .bind(customer_id)
        .fetch_one(conn)
        .await?;
    Ok(b)
}

/// The newest entries, for the 360 view.
pub async fn recent(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
    limit: i64,
) -> Result<Vec<LedgerEntry>, sqlx::Error> {
    let mut from = Sql::new("loyalty_ledger e WHERE e.customer_id = ");
    from.bind(customer_id)
        .push(" ORDER BY e.seq DESC LIMIT ")
        .bind(limit);
    workflow::all::<LedgerEntry, _>(conn, COLUMNS, from).await
}

#[utoipa::path(get, path = "/api/v1/customers/{id}/loyalty", tag = "customers",
    params(("id" = String, Path), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query), ("sort" = Option<String>, Query)),
    responses((status = 200, body = LoyaltyStatement), (status = 404)))]
pub async fn statement(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<LoyaltyStatement>, ApiError> {
    p.require(Permission::ReadCustomers)?;
    let params = ListParams::parse(&SPEC, &q)?;
    let mut conn = st.db.pool.acquire().await?;
    require_customer(&mut conn, &p, &id).await?;
    let balance = balance(&mut conn, &id).await?;
    let mut sql = Sql::new("loyalty_ledger e WHERE e.customer_id = ");
    sql.bind(id.as_str());
    let entries = fetch_page(&st.db.pool, COLUMNS, sql, &params).await?;
    Ok(Json(LoyaltyStatement { balance, entries }))
}

#[utoipa::path(post, path = "/api/v1/customers/{id}/loyalty", tag = "customers", params(("id" = String, Path)),
    request_body = LoyaltyRequest,
    responses((status = 201, body = LedgerEntry), (status = 400), (status = 404), (status = 409, description = "not enough points")))]
pub async fn post_entry(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<LoyaltyRequest>,
) -> Result<(axum::http::StatusCode, Json<LedgerEntry>), ApiError> {
    crate::crm::scope::require_operator_write(&p)?;
    validate::one_of("kind", &req.kind, &["earn", "redeem"])?;
    validate::text("reason", &req.reason, 200)?;
    if req.points <= 0 {
        return Err(LoyaltyError::NotPositive.into());
    }
    let delta = if req.kind == "earn" {
        req.points
    } else {
        -req.points
    };
    let mut tx = crate::store::begin_write(&st.db).await?;
    require_customer(&mut tx, &p, &id).await?;
    // The guard in WHERE makes the check and the write one atomic step.
    let updated: Option<(i64,)> = sqlx::query_as(
        "UPDATE customers SET loyalty_points = loyalty_points + $1 \
         WHERE id = $2 AND loyalty_points + $1 >= 0 RETURNING loyalty_points",
    )
    .bind(delta)
    .bind(id.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((balance_after,)) = updated else {
        let balance = balance(&mut tx, &id).await?;
        return Err(LoyaltyError::Insufficient {
            wanted: req.points,
            balance,
        }
        .into());
    };
    let e = LedgerEntry {
        id: new_id(),
        customer_id: id.clone(),
        delta,
        balance_after,
        reason: req.reason,
        actor_id: p.id.clone(),
        at: now_text(),
    };
    workflow::commit_as(tx, &p, &req.kind, &e).await?;
    Ok((axum::http::StatusCode::CREATED, Json(e)))
}
