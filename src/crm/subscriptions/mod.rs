//! `/subscriptions`: products customers have (TMF637), moved through their lifecycle with
//! `PATCH {status}`; moves the lifecycle does not allow are refused with 409.

pub mod lifecycle;
pub mod repo;

use axum::extract::{Path, State};
use axum::http::HeaderMap;

pub use repo::{NewSubscription, Subscription, SubscriptionPatch};

use crate::auth::{Permission, Principal};
use crate::crm::customers::repo::owned;
use crate::crm::scope::require_customer;
use crate::crm::CrmState;
use crate::crud;
use crate::http::Tagged;
use crate::http::{ApiError, ApiJson};
use crate::store::{now_text, ListSpec, Page};
use lifecycle::LifecycleError;
use utoipa_axum::{router::OpenApiRouter, routes};

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> ApiError {
        match e {
            LifecycleError::Unknown(_) => ApiError::field("status", e.to_string()),
            LifecycleError::NotAllowed { .. } => ApiError::Conflict(e.to_string()),
        }
    }
}

pub fn router() -> OpenApiRouter<CrmState> {
    crud_routes()
        .routes(routes!(create))
        .routes(routes!(update))
}

const SPEC: ListSpec = crate::list_spec!(s; text customer_id, line_id, offering_id, status;
    sort created_at, status; default "s.created_at");

/// Dates follow the status: first activation starts it, termination ends it.
fn stamp(s: &mut Subscription, now: &str) {
    if s.status == "active" && s.start_date.is_none() {
        s.start_date = Some(now.to_string());
    }
    if s.status == "terminated" {
        s.termination_date = Some(now.to_string());
    }
}

crate::crud_handlers! { Subscription in CrmState, tag "subscriptions", routes crud_routes;
    |p| from owned::<Subscription>(&p), read p.require(Permission::ReadCustomers),
        write crate::crm::scope::require_operator_write(&p);
    list "/api/v1/subscriptions", SPEC, (("customer_id" = Option<String>, Query),
        ("line_id" = Option<String>, Query), ("offering_id" = Option<String>, Query),
        ("status" = Option<String>, Query));
    read "/api/v1/subscriptions/{id}", (("id" = String, Path));
}

#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "subscriptions", request_body = NewSubscription,
    responses((status = 201, body = Subscription), (status = 400)))]
pub async fn create(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(req): ApiJson<NewSubscription>,
) -> Result<Tagged<Subscription>, ApiError> {
    crate::crm::scope::require_operator_write(&p)?;
    let mut s = req.into_record();
    if !["created", "pendingActive", "active"].contains(&s.status.as_str()) {
        return Err(ApiError::field(
            "status",
            "a new subscription starts as created, pendingActive or active",
        ));
    }
    let mut tx = crate::store::begin_write(&st.db).await?;
    require_customer(&mut tx, &p, &s.customer_id)
        .await
        .map_err(|_| ApiError::field("customer_id", "no such customer"))?;
    let offering = crate::crm::catalog::repo::get(&mut tx, &s.offering_id)
        .await?
        .filter(|o| o.lifecycle_status == "active")
        .ok_or_else(|| ApiError::field("offering_id", "no such active offering"))?;
    if let Some(line) = &s.line_id {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM lines WHERE id = $1 AND customer_id = $2 AND deleted_at IS NULL",
        )
        .bind(line.as_str())
        .bind(s.customer_id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if n == 0 {
            return Err(ApiError::field("line_id", "no such line of this customer"));
        }
    }
    s.offering_id = offering.id;
    let now = s.created_at.clone();
    stamp(&mut s, &now);
    let customer_id = s.customer_id.clone();
    let created = crud::create(tx, &p, s).await?;
    crate::crm::profiles::changes::emit_owned(&st, &customer_id).await;
    Ok(created)
}

#[utoipa::path(patch, path = "/api/v1/subscriptions/{id}", tag = "subscriptions", params(("id" = String, Path)),
    request_body = SubscriptionPatch,
    responses((status = 200, body = Subscription), (status = 404), (status = 409, description = "transition not allowed"), (status = 412)))]
pub async fn update(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<SubscriptionPatch>,
) -> Result<Tagged<Subscription>, ApiError> {
    crate::crm::scope::require_operator_write(&p)?;
    let (tx, before): (_, Subscription) = crud::begin_patch(
        &st.db,
        &headers,
        patch.version,
        owned::<Subscription>(&p),
        &id,
    )
    .await?;
    lifecycle::check(&before.status, &patch.status)?;
    let mut after = before.clone();
    after.status = patch.status;
    stamp(&mut after, &now_text());
    let saved = crud::save(tx, &p, "transition", &before, after).await?;
    crate::crm::profiles::changes::emit_owned(&st, &before.customer_id).await;
    Ok(saved)
}
