//! `/workflows`: the approval workflow of each service-request type, as ordered roles, and its
//! SLA. Requests copy the steps when raised, so a change applies to new requests only.

use crate::store::Page;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::audit::{self, snapshot, Change};
use crate::auth::{Permission, Principal};
use crate::crm::CrmState;
use crate::http::{check_version, expected_version, Tagged};
use crate::http::{ApiError, ApiJson};
use crate::store::{now_text, Sql};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(update))
}

/// Approval steps and SLA of one request type.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Workflow {
    pub request_type: String,
    /// Roles that approve, in order (`team_lead`, `region_head`, `admin`); empty = none.
    pub steps: Vec<String>,
    /// Hours until a request is due (and escalated when still open).
    pub sla_hours: i64,
    pub updated_at: String,
    pub version: i64,
}

impl Workflow {
    /// No approval, one day.
    pub fn none(request_type: &str) -> Workflow {
        Workflow {
            request_type: request_type.into(),
            steps: Vec::new(),
            sla_hours: 24,
            updated_at: String::new(),
            version: 0,
        }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    request_type: String,
    steps: String,
    sla_hours: i64,
    updated_at: String,
    version: i64,
}

impl From<Row> for Workflow {
    fn from(r: Row) -> Workflow {
        Workflow {
            request_type: r.request_type,
            steps: serde_json::from_str(&r.steps).unwrap_or_default(),
            sla_hours: r.sla_hours,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

const COLUMNS: &str = "request_type, steps, sla_hours, updated_at, version";

pub async fn get(
    conn: &mut sqlx::AnyConnection,
    request_type: &str,
) -> Result<Option<Workflow>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM workflows WHERE request_type = $1"
    ))
    .bind(request_type)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Workflow::from))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowUpdate {
    pub steps: Vec<String>,
    pub sla_hours: i64,
    pub version: Option<i64>,
}

/// Roles that can hold an approval step (they have `ApproveServiceRequests`).
const APPROVER_ROLES: &[&str] = &["team_lead", "region_head", "admin"];

#[utoipa::path(get, path = "/api/v1/workflows", tag = "service-requests",
    responses((status = 200, body = Page<Workflow>)))]
pub async fn list(
    State(st): State<CrmState>,
    p: Principal,
) -> Result<Json<Page<Workflow>>, ApiError> {
    p.require(Permission::ReadCustomers)?;
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM workflows ORDER BY request_type"
    ))
    .fetch_all(&st.db.pool)
    .await?;
    // Whole by nature: one workflow per request type, a closed set of a few.
    Ok(Json(Page::whole(
        rows.into_iter().map(Workflow::from).collect(),
    )))
}

/// Sets the approval steps and SLA of a request type (`manage_workflows`: admins).
#[utoipa::path(put, path = "/api/v1/workflows/{request_type}", tag = "service-requests",
    params(("request_type" = String, Path)), request_body = WorkflowUpdate,
    responses((status = 200, body = Workflow), (status = 400), (status = 403, description = "needs `manage_workflows` (admins)", body = crate::http::error::ErrorBody), (status = 412)))]
pub async fn update(
    State(st): State<CrmState>,
    p: Principal,
    Path(request_type): Path<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<WorkflowUpdate>,
) -> Result<Tagged<Workflow>, ApiError> {
    p.require(Permission::ManageWorkflows)?;
    crate::crm::validate::one_of("request_type", &request_type, super::TYPES)?;
    for s in &req.steps {
        crate::crm::validate::one_of("steps", s, APPROVER_ROLES)?;
    }
    if req.steps.len() > 5 {
        return Err(ApiError::field("steps", "at most 5 steps"));
    }
    if !(1..=24 * 90).contains(&req.sla_hours) {
        return Err(ApiError::field("sla_hours", "must be between 1 and 2160"));
    }
    let mut tx = crate::store::begin_write(&st.db).await?;
    let before = get(&mut tx, &request_type).await?;
    let now = now_text();
    let steps = serde_json::to_string(&req.steps).unwrap_or_else(|_| "[]".into());
    let after = match &before {
        Some(b) => {
            let expected = expected_version(&headers, req.version)?;
            check_version(b.version, expected)?;
            let mut sql = Sql::new("UPDATE workflows SET steps = ");
            sql.bind(steps)
                .push(", sla_hours = ")
                .bind(req.sla_hours)
                .push(", updated_at = ")
                .bind(now.as_str())
                .push(", version = version + 1 WHERE request_type = ")
                .bind(request_type.as_str())
                .push(" AND version = ")
                .bind(expected);
            if sql.execute(&mut tx).await? == 0 {
                return Err(ApiError::PreconditionFailed);
            }
            Workflow {
                request_type: request_type.clone(),
                steps: req.steps,
                sla_hours: req.sla_hours,
                updated_at: now,
                version: b.version + 1,
            }
        }
        None => {
            Sql::insert(
                "workflows",
                vec![
                    ("request_type", request_type.as_str().into()),
                    ("steps", steps.into()),
                    ("sla_hours", req.sla_hours.into()),
                    ("updated_at", now.as_str().into()),
                    ("version", 1i64.into()),
                ],
            )
            .execute(&mut tx)
            .await?;
            Workflow {
                request_type: request_type.clone(),
                steps: req.steps,
                sla_hours: req.sla_hours,
                updated_at: now,
                version: 1,
            }
        }
    };
    audit::record(
        &mut tx,
        &p,
        Change {
            entity: "workflow",
            entity_id: &request_type,
            action: "update",
            customer_id: None,
            before: before.as_ref().and_then(snapshot),
            after: snapshot(&after),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Tagged::ok(after.version, after))
}
