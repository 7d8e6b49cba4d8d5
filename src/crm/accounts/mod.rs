//! `/accounts`: billing accounts of customers (TMF666).

pub mod repo;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

pub use repo::Account;

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
        .routes(routes!(read, update))
}

const SPEC: ListSpec = ListSpec {
    filters: &[
        ("customer_id", "a.customer_id", FilterKind::Text),
        ("state", "a.state", FilterKind::Text),
        ("account_type", "a.account_type", FilterKind::Text),
    ],
    sorts: &[
        ("created_at", "a.created_at"),
        ("name", "a.name"),
        ("balance_cents", "a.balance_cents"),
    ],
    default_sort: "a.created_at",
    tiebreak: "a.id",
};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub customer_id: String,
    pub name: String,
    pub account_type: Option<String>,
    pub state: Option<String>,
    pub payment_method: Option<String>,
    pub bill_cycle_day: Option<i64>,
    pub currency: Option<String>,
    pub credit_limit_cents: Option<i64>,
    pub balance_cents: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    pub name: Option<String>,
    pub account_type: Option<String>,
    pub state: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub payment_method: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub bill_cycle_day: Option<Option<i64>>,
    pub currency: Option<String>,
    pub credit_limit_cents: Option<i64>,
    pub balance_cents: Option<i64>,
    pub version: Option<i64>,
}

pub(crate) fn validate(a: &Account) -> Result<(), ApiError> {
    validate::text("name", &a.name, 200)?;
    validate::one_of("account_type", &a.account_type, &["billing", "settlement"])?;
    validate::one_of("state", &a.state, &["active", "suspended", "closed"])?;
    validate::opt_text("payment_method", a.payment_method.as_deref(), 32)?;
    if let Some(d) = a.bill_cycle_day {
        if !(1..=28).contains(&d) {
            return Err(ApiError::field(
                "bill_cycle_day",
                "must be between 1 and 28",
            ));
        }
    }
    if a.currency.len() != 3 || !a.currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(ApiError::field(
            "currency",
            "must be an ISO 4217 code such as CNY",
        ));
    }
    validate::non_negative("credit_limit_cents", a.credit_limit_cents)
}

#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query), ("sort" = Option<String>, Query),
        ("customer_id" = Option<String>, Query), ("state" = Option<String>, Query), ("account_type" = Option<String>, Query)),
    responses((status = 200, body = Page<Account>)))]
pub async fn list(
    State(st): State<CrmState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<Account>>, ApiError> {
    p.require(Permission::ReadCustomers)?;
    crud::list(&st.db, repo::scoped(&p), &ListParams::parse(&SPEC, &q)?).await
}

#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, body = Account), (status = 400)))]
pub async fn create(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(req): ApiJson<NewAccount>,
) -> Result<Tagged<Account>, ApiError> {
    crate::crm::scope::require_operator_write(&p)?;
    let now = now_text();
    let a = Account {
        id: new_id(),
        customer_id: req.customer_id,
        name: req.name,
        account_type: req.account_type.unwrap_or_else(|| "billing".into()),
        state: req.state.unwrap_or_else(|| "active".into()),
        payment_method: req.payment_method,
        bill_cycle_day: req.bill_cycle_day,
        currency: req.currency.unwrap_or_else(|| "CNY".into()),
        credit_limit_cents: req.credit_limit_cents.unwrap_or(0),
        balance_cents: req.balance_cents.unwrap_or(0),
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

#[utoipa::path(get, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = String, Path)),
    responses((status = 200, body = Account), (status = 404)))]
pub async fn read(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Tagged<Account>, ApiError> {
    p.require(Permission::ReadCustomers)?;
    crud::read(&st.db, repo::scoped(&p), &id).await
}

#[utoipa::path(patch, path = "/api/v1/accounts/{id}", tag = "accounts", params(("id" = String, Path)),
    request_body = AccountPatch, responses((status = 200, body = Account), (status = 404), (status = 412)))]
pub async fn update(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<AccountPatch>,
) -> Result<Tagged<Account>, ApiError> {
    crate::crm::scope::require_operator_write(&p)?;
    let expected = expected_version(&headers, patch.version)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    let before: Account = crud::load_at(&mut tx, repo::scoped(&p), &id, expected).await?;
    let mut after = before.clone();
    crate::apply_patch!(patch => after;
        name,
        account_type,
        state,
        payment_method,
        bill_cycle_day,
        currency,
        credit_limit_cents,
        balance_cents
    );
    validate(&after)?;
    crud::update(tx, &p, &before, after).await
}
