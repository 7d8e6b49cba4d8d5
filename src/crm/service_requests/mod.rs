//! `/service-requests`: work orders (业务申请 / 流程审批 / 业务处理; TMF621-like) raised by
//! agents, account managers or enterprise admins, approved step by step as the request
//! type's workflow says (`/workflows`), processed, resolved with feedback to the requester,
//! and escalated when overdue ([`escalation::run_escalations`]).
//!
//! States: `acknowledged` (no approval needed) or `pending_approval` when raised; the last
//! approval moves it to `in_progress`, a rejection to `rejected`; `acknowledged ->
//! in_progress -> resolved -> closed`, `resolved -> in_progress` (reopen) and any open state
//! `-> cancelled`. Every change is a row of `/service-requests/{id}/history`.

pub mod escalation;
pub mod repo;
pub mod workflows;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;

pub use repo::{HistoryEntry, NewServiceRequest, ServiceRequest};

use crate::audit;
use crate::auth::{Permission, Principal, Role};
use crate::crm::customers::repo::owned;
use crate::crm::notices::{self, NewNotice};
use crate::crm::scope::require_customer;
use crate::crm::validate;
use crate::crm::workflow;
use crate::crm::CrmState;
use crate::crud;
use crate::http::Tagged;
use crate::http::{ApiError, ApiJson};
use crate::store::{new_id, now_text, ListSpec, Page};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<CrmState> {
    crud_routes()
        .routes(routes!(create))
        .routes(routes!(escalation::run_now))
        .routes(routes!(history))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(transition))
        .merge(workflows::router())
}

pub const TYPES: &[&str] = &[
    "new_install",
    "product_change",
    "suspension",
    "cancellation",
    "repair",
    "fault_report",
];

const SPEC: ListSpec = crate::list_spec!(r; text customer_id, status, request_type, requester_id;
    int escalation_level; sort created_at, due_at, updated_at; default "r.created_at DESC");

#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub note: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// in_progress | resolved | closed | cancelled
    pub to: String,
    pub note: Option<String>,
    /// Required when resolving: what was done, sent to the requester.
    pub feedback: Option<String>,
}

/// Moves allowed by [`transition`] (approval moves go through approve / reject).
pub fn transition_allowed(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("acknowledged", "in_progress")
            | ("in_progress", "resolved")
            | ("resolved", "closed")
            | ("resolved", "in_progress")
            | ("acknowledged", "cancelled")
            | ("pending_approval", "cancelled")
            | ("in_progress", "cancelled")
    )
}

crate::crud_handlers! { ServiceRequest in CrmState, tag "service-requests", routes crud_routes;
    |p| from owned::<ServiceRequest>(&p), read p.require(Permission::ReadCustomers),
        write p.require(Permission::RaiseServiceRequests);
    list "/api/v1/service-requests", SPEC, (("customer_id" = Option<String>, Query),
        ("status" = Option<String>, Query), ("request_type" = Option<String>, Query),
        ("requester_id" = Option<String>, Query), ("escalation_level" = Option<i64>, Query));
    read "/api/v1/service-requests/{id}", (("id" = String, Path));
}

/// Raises a request for a customer in scope (enterprise admins: their enterprise).
#[utoipa::path(post, path = "/api/v1/service-requests", tag = "service-requests", request_body = NewServiceRequest,
    responses((status = 201, body = ServiceRequest), (status = 400), (status = 403)))]
pub async fn create(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(req): ApiJson<NewServiceRequest>,
) -> Result<Tagged<ServiceRequest>, ApiError> {
    p.require(Permission::RaiseServiceRequests)?;
    validate::one_of("request_type", &req.request_type, TYPES)?;
    validate::text("title", &req.title, 200)?;
    validate::opt_text("description", req.description.as_deref(), 4000)?;
    let priority = req.priority.unwrap_or_else(|| "normal".into());
    validate::one_of("priority", &priority, &["low", "normal", "high", "urgent"])?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    require_customer(&mut tx, &p, &req.customer_id)
        .await
        .map_err(|_| ApiError::field("customer_id", "no such customer"))?;
    let wf = workflows::get(&mut tx, &req.request_type)
        .await?
        .unwrap_or_else(|| workflows::Workflow::none(&req.request_type));
    let now = chrono::Utc::now();
    let at = crate::store::ts_text(now);
    let status = if wf.steps.is_empty() {
        "acknowledged"
    } else {
        "pending_approval"
    };
    let r = ServiceRequest {
        id: new_id(),
        customer_id: req.customer_id,
        request_type: req.request_type,
        title: req.title,
        description: req.description,
        priority,
        status: status.into(),
        steps: serde_json::to_string(&wf.steps).unwrap_or_else(|_| "[]".into()),
        approval_steps: wf.steps.clone(),
        current_step: 0,
        sla_hours: wf.sla_hours,
        due_at: crate::store::ts_text(now + chrono::Duration::hours(wf.sla_hours)),
        escalation_level: 0,
        escalated: false,
        requester_id: p.id.clone(),
        assignee_id: None,
        feedback: None,
        resolved_at: None,
        closed_at: None,
        created_at: at.clone(),
        updated_at: at.clone(),
        version: 1,
    };
    crud::insert_in(&mut tx, &p, &r).await?;
    let first = repo::Step("create", None, "acknowledged", None, None);
    repo::push_history(&mut tx, &r, &p, &at, first).await?;
    if status != "acknowledged" {
        let submit = repo::Step("submit", Some("acknowledged"), status, Some(0), None);
        repo::push_history(&mut tx, &r, &p, &at, submit).await?;
    }
    tx.commit().await?;
    Ok(Tagged::created(1, r))
}

workflow::children_route! {
    /// The request's history, oldest first, a page at a time.
    #[utoipa::path(get, path = "/api/v1/service-requests/{id}/history", tag = "service-requests",
        params(("id" = String, Path), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
        responses((status = 200, body = Page<HistoryEntry>), (status = 400, body = crate::http::error::ErrorBody), (status = 404)))]
    history: HistoryEntry as HistoryEntry, of ServiceRequest, in repo::HISTORY;
    |p| p.require(Permission::ReadCustomers), owned::<ServiceRequest>(&p)
}

/// Writes `after` over `before` (versioned), with history, audit record and an optional
/// notice to the requester, and commits; answers the new version.
async fn save(
    mut tx: crud::Tx,
    p: &Principal,
    before: &ServiceRequest,
    mut after: ServiceRequest,
    step: repo::Step<'_>,
    notice: Option<(&str, String)>,
) -> Result<Tagged<ServiceRequest>, ApiError> {
    audit::check_written(repo::write(&mut tx, before, &mut after).await?)?;
    repo::record(&mut tx, p, before, &after, step).await?;
    if let Some((kind, title)) = notice {
        if after.requester_id != p.id {
            notices::notify(
                &mut tx,
                NewNotice {
                    user_id: &after.requester_id,
                    kind,
                    body: after.feedback.clone().unwrap_or_else(|| title.clone()),
                    title,
                    entity: "service_request",
                    entity_id: &after.id,
                    customer_id: Some(&after.customer_id),
                },
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Tagged::ok(after.version, after))
}

/// Reads an approval decision's note (400) and loads the request: 403 without the
/// permission, 404 out of scope, 409 when no approval is pending, 403 when the step needs
/// another role.
async fn for_decision(
    st: &CrmState,
    p: &Principal,
    id: &str,
    body: &axum::body::Bytes,
) -> Result<(crud::Tx, ServiceRequest, Option<String>), ApiError> {
    let d: Decision = workflow::optional_body(body)?;
    validate::opt_text("note", d.note.as_deref(), 2000)?;
    p.require(Permission::ApproveServiceRequests)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    let r: ServiceRequest = crud::load(&mut tx, owned::<ServiceRequest>(p), id).await?;
    let Some(role) = r.next_approver() else {
        return Err(ApiError::Conflict(format!(
            "the request is {}, no approval is pending",
            r.status
        )));
    };
    if p.role != Role::Admin && p.role.as_str() != role {
        use strum::IntoEnumIterator;
        return Err(p.refuse(
            Permission::ApproveServiceRequests,
            format!("approval step {} needs a {role}", r.current_step + 1),
            Role::iter().filter(|x| *x == Role::Admin || x.as_str() == role),
        ));
    }
    Ok((tx, r, d.note))
}

/// The history row of a decision on the current approval step.
fn decision<'a>(
    action: &'a str,
    before: &'a ServiceRequest,
    to: &'a str,
    note: &'a Option<String>,
) -> repo::Step<'a> {
    let step = Some(before.current_step);
    repo::Step(action, Some(&before.status), to, step, note.as_deref())
}

/// Approves the current step; the last approval starts processing (`in_progress`).
#[utoipa::path(post, path = "/api/v1/service-requests/{id}/approve", tag = "service-requests", params(("id" = String, Path)),
    request_body(content = Option<Decision>), responses((status = 200, body = ServiceRequest), (status = 403, description = "the step is another role's, or the caller raised the request: names `approve_service_requests` and the roles that may", body = crate::http::error::ErrorBody), (status = 404), (status = 409)))]
pub async fn approve(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Tagged<ServiceRequest>, ApiError> {
    let (tx, before, note) = for_decision(&st, &p, &id, &body).await?;
    // Four eyes, as for campaigns: whoever raised a request does not approve it.
    if before.requester_id == p.id {
        return Err(p.refuse(
            Permission::ApproveServiceRequests,
            "a request must be approved by someone other than its requester",
            Permission::ApproveServiceRequests.roles(),
        ));
    }
    let mut after = before.clone();
    after.current_step += 1;
    let last = after.current_step as usize >= after.approval_steps.len();
    if last {
        after.status = "in_progress".into();
    }
    after.updated_at = now_text();
    let notice = last.then(|| ("approval", format!("Request \"{}\" approved", after.title)));
    let to = if last {
        "in_progress"
    } else {
        "pending_approval"
    };
    let step = decision("approve", &before, to, &note);
    save(tx, &p, &before, after, step, notice).await
}

/// Rejects the request at the current step (final).
#[utoipa::path(post, path = "/api/v1/service-requests/{id}/reject", tag = "service-requests", params(("id" = String, Path)),
    request_body(content = Option<Decision>), responses((status = 200, body = ServiceRequest), (status = 403, description = "the step is another role's, or the caller raised the request: names `approve_service_requests` and the roles that may", body = crate::http::error::ErrorBody), (status = 404), (status = 409)))]
pub async fn reject(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Tagged<ServiceRequest>, ApiError> {
    let (tx, before, note) = for_decision(&st, &p, &id, &body).await?;
    let mut after = before.clone();
    after.status = "rejected".into();
    after.feedback = note.clone();
    let now = now_text();
    after.closed_at = Some(now.clone());
    after.updated_at = now;
    let title = format!("Request \"{}\" rejected", after.title);
    let step = decision("reject", &before, "rejected", &note);
    save(tx, &p, &before, after, step, Some(("approval", title))).await
}

/// Moves the request: start work, resolve (with feedback to the requester), close, reopen or
/// cancel. Enterprise admins may only close or cancel; illegal moves answer 409.
#[utoipa::path(post, path = "/api/v1/service-requests/{id}/transition", tag = "service-requests", params(("id" = String, Path)),
    request_body = Transition, responses((status = 200, body = ServiceRequest), (status = 403, description = "an enterprise admin moving it other than to closed or cancelled: names the roles that may", body = crate::http::error::ErrorBody), (status = 404), (status = 409)))]
pub async fn transition(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(t): ApiJson<Transition>,
) -> Result<Tagged<ServiceRequest>, ApiError> {
    p.require(Permission::RaiseServiceRequests)?;
    validate::one_of(
        "to",
        &t.to,
        &["in_progress", "resolved", "closed", "cancelled"],
    )?;
    validate::opt_text("note", t.note.as_deref(), 2000)?;
    if p.role == Role::EnterpriseAdmin && !matches!(t.to.as_str(), "closed" | "cancelled") {
        return Err(p.refuse(
            Permission::RaiseServiceRequests,
            "enterprise admins may only close or cancel their requests; operator staff work them",
            Permission::RaiseServiceRequests
                .roles()
                .into_iter()
                .filter(|r| *r != Role::EnterpriseAdmin),
        ));
    }
    let mut tx = crate::store::begin_write(&st.db).await?;
    let before: ServiceRequest = crud::load(&mut tx, owned::<ServiceRequest>(&p), &id).await?;
    if !transition_allowed(&before.status, &t.to) {
        return Err(ApiError::Conflict(format!(
            "a request cannot move from {} to {}",
            before.status, t.to
        )));
    }
    let mut after = before.clone();
    let now = now_text();
    let mut notice = None;
    match t.to.as_str() {
        "resolved" => {
            let fb = t
                .feedback
                .clone()
                .filter(|f| !f.trim().is_empty())
                .ok_or_else(|| ApiError::field("feedback", "required when resolving"))?;
            validate::text("feedback", &fb, 4000)?;
            after.feedback = Some(fb);
            after.resolved_at = Some(now.clone());
            notice = Some(("feedback", format!("Request \"{}\" resolved", after.title)));
        }
        "closed" | "cancelled" => after.closed_at = Some(now.clone()),
        "in_progress" => {
            if after.assignee_id.is_none() && p.role != Role::EnterpriseAdmin {
                after.assignee_id = Some(p.id.clone());
            }
            after.resolved_at = None;
        }
        _ => {}
    }
    if t.to == "cancelled" {
        notice = Some(("feedback", format!("Request \"{}\" cancelled", after.title)));
    }
    after.status = t.to.clone();
    after.updated_at = now;
    save(
        tx,
        &p,
        &before,
        after,
        repo::Step(
            "transition",
            Some(&before.status),
            &t.to,
            None,
            t.note.as_deref(),
        ),
        notice,
    )
    .await
}
