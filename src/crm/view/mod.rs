//! Customer 360: `GET /customers/{id}/view` and `GET /lines/{line}/view`. Everything an
//! agent or account manager needs on one screen. CRM sections come from the database in one
//! connection; engine sections degrade (listed in `degraded`) instead of failing the view.

pub mod sections;

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use serde_json::Value;

use crate::auth::{Permission, Principal};
use crate::crm::accounts::{self, Account};
use crate::crm::consents::{self, Consent};
use crate::crm::contacts::{self, ContactMedium};
use crate::crm::customers::{self, Customer};
use crate::crm::lines::{self, Line};
use crate::crm::loyalty::{self, LedgerEntry};
use crate::crm::parties::{self, Party};
use crate::crm::subscriptions::Subscription;
use crate::crm::CrmState;
use crate::http::ApiError;
use crate::ports::Recommendation;
use crate::store::entity::of_owner;
use sections::ViewContext;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new()
        .routes(routes!(customer_view))
        .routes(routes!(line_view))
}

/// The value facts the engine and account managers look at first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ValueSummary {
    pub value_tier: String,
    pub credit_class: String,
    pub loyalty_points: i64,
    pub churn_score: f64,
    pub arpu_cents: i64,
    pub segment: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Customer360 {
    pub customer: Customer,
    pub party: Option<Party>,
    /// For enterprises: the group it belongs to and its direct subsidiaries (in scope).
    pub parent: Option<Customer>,
    pub children: Vec<Customer>,
    /// For enterprises: how many member subscribers it manages.
    pub members_total: i64,
    pub contacts: Vec<ContactMedium>,
    pub consents: Vec<Consent>,
    pub accounts: Vec<Account>,
    pub lines: Vec<Line>,
    pub subscriptions: Vec<Subscription>,
    pub value: ValueSummary,
    pub loyalty_recent: Vec<LedgerEntry>,
    /// Engine usage aggregates per msisdn.
    #[schema(value_type = Object)]
    pub usage: BTreeMap<String, Value>,
    pub offers: Vec<Recommendation>,
    #[schema(value_type = Vec<Object>)]
    pub open_requests: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    pub opportunities: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    pub contracts: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    pub interactions: Vec<Value>,
    /// Sections that could not be loaded (e.g. the engine was unavailable).
    pub degraded: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LineView {
    pub line: Line,
    #[serde(flatten)]
    pub view: Customer360,
}

/// Runs a section; on failure records it in `degraded` and uses the empty default.
fn section<T: Default>(name: &str, r: Result<T, String>, degraded: &mut Vec<String>) -> T {
    r.unwrap_or_else(|e| {
        tracing::warn!(section = name, error = %e, "360 view section unavailable");
        degraded.push(name.to_string());
        T::default()
    })
}

/// Builds the view of a customer already known to be in the caller's scope.
pub async fn build(st: &CrmState, p: &Principal, c: Customer) -> Result<Customer360, ApiError> {
    let mut conn = st.db.pool.acquire().await?;
    let party = match &c.party_id {
        Some(id) => parties::repo::get(&mut conn, p, id).await?,
        None => None,
    };
    let parent = match &c.parent_customer_id {
        Some(id) => customers::repo::get(&mut conn, p, id).await?,
        None => None,
    };
    let children = customers::repo::children(&mut conn, p, &c.id).await?;
    let (members_total,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM enterprise_members WHERE customer_id = $1 AND deleted_at IS NULL",
    )
    .bind(c.id.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let contacts = contacts::repo::for_customer(&mut conn, &c.id).await?;
    let consents = consents::for_customer(&mut conn, &c.id).await?;
    let accounts = accounts::repo::for_customer(&mut conn, &c.id).await?;
    let lines: Vec<Line> = of_owner(&mut conn, &c.id, "l.msisdn").await?;
    let subscriptions: Vec<Subscription> = of_owner(&mut conn, &c.id, "s.created_at, s.id").await?;
    let loyalty_recent = loyalty::recent(&mut conn, &c.id, 10).await?;
    drop(conn);

    let cx = ViewContext {
        st,
        principal: p,
        customer: &c,
        lines: &lines,
    };
    let mut degraded = Vec::new();
    let usage = section("usage", sections::usage(&cx).await, &mut degraded);
    let offers = section("offers", sections::offers(&cx).await, &mut degraded);
    let open_requests = section(
        "open_requests",
        sections::open_requests(&cx).await,
        &mut degraded,
    );
    let opportunities = section(
        "opportunities",
        sections::opportunities(&cx).await,
        &mut degraded,
    );
    let contracts = section("contracts", sections::contracts(&cx).await, &mut degraded);
    let interactions = section(
        "interactions",
        sections::interactions(&cx).await,
        &mut degraded,
    );

    let value = ValueSummary {
        value_tier: c.value_tier.clone(),
        credit_class: c.credit_class.clone(),
        loyalty_points: c.loyalty_points,
        churn_score: c.churn_score,
        arpu_cents: c.arpu_cents,
        segment: c.segment.clone(),
    };
    Ok(Customer360 {
        customer: c,
        party,
        parent,
        children,
        members_total,
        contacts,
        consents,
        accounts,
        lines,
        subscriptions,
        value,
        loyalty_recent,
        usage,
        offers,
        open_requests,
        opportunities,
        contracts,
        interactions,
        degraded,
    })
}

#[utoipa::path(get, path = "/api/v1/customers/{id}/view", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = Customer360), (status = 404)))]
pub async fn customer_view(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Customer360>, ApiError> {
    p.require(Permission::ReadCustomers)?;
    let c = customers::repo::get(&mut *st.db.pool.acquire().await?, &p, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound("customer".into()))?;
    Ok(Json(build(&st, &p, c).await?))
}

#[utoipa::path(get, path = "/api/v1/lines/{line}/view", tag = "lines",
    params(("line" = String, Path, description = "msisdn or line id")),
    responses((status = 200, body = LineView), (status = 404)))]
pub async fn line_view(
    State(st): State<CrmState>,
    p: Principal,
    Path(key): Path<String>,
) -> Result<Json<LineView>, ApiError> {
    p.require(Permission::ReadCustomers)?;
    let mut conn = st.db.pool.acquire().await?;
    let line = lines::repo::get(&mut conn, &p, &key)
        .await?
        .ok_or_else(|| ApiError::NotFound("line".into()))?;
    let c = customers::repo::get(&mut conn, &p, &line.customer_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("line".into()))?;
    drop(conn);
    let view = build(&st, &p, c).await?;
    Ok(Json(LineView { line, view }))
}
