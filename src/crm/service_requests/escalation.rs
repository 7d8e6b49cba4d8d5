//! Escalation of overdue service requests (超时升级).
//!
//! [`run_escalations`] looks at open requests past `due_at`: the first time it raises
//! `escalation_level` to 1 and notifies the team leads of the customer's account manager's
//! team; when the request is still open a further SLA period later, level 2 notifies the
//! region heads of the customer's region. Each step is a history row and an audit record;
//! re-running at the same time does nothing more.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::repo::{self, ServiceRequest};
use crate::auth::{Permission, Principal};
use crate::crm::notices::{self, NewNotice};
use crate::crm::CrmState;
use crate::http::ApiError;
use crate::store::Sql;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Escalated {
    pub request_id: String,
    pub customer_id: String,
    pub level: i64,
    /// Users notified.
    pub notified: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct EscalationRun {
    pub escalated: Vec<Escalated>,
}

/// The level a request should be at, at `now`: 0 on time, 1 overdue, 2 overdue by one more
/// SLA period.
pub fn level_due(r: &ServiceRequest, now: DateTime<Utc>) -> i64 {
    let Ok(due) = DateTime::parse_from_rfc3339(&r.due_at) else {
        return 0;
    };
    let due = due.with_timezone(&Utc);
    if now <= due {
        0
    } else if now <= due + chrono::Duration::hours(r.sla_hours.max(1)) {
        1
    } else {
        2
    }
}

/// Who hears about level `level` of an escalation.
async fn recipients(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
    level: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = if level == 1 {
        "SELECT u.id FROM users u JOIN users m ON m.team_id = u.team_id \
         JOIN customers c ON c.account_manager_id = m.id \
         WHERE c.id = $1 AND u.role = 'team_lead' AND u.active = 1 ORDER BY u.id"
    } else {
        "SELECT u.id FROM users u JOIN customers c ON c.region_id = u.region_id \
         WHERE c.id = $1 AND u.role = 'region_head' AND u.active = 1 ORDER BY u.id"
    };
    let rows: Vec<(String,)> = sqlx::query_as(sql)
        .bind(customer_id)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Runs escalation once at `now`.
pub async fn run_escalations(st: &CrmState, now: DateTime<Utc>) -> anyhow::Result<EscalationRun> {
    let mut sql = Sql::new(&format!(
        "SELECT {} FROM service_requests r WHERE r.status IN ('acknowledged', 'pending_approval', 'in_progress') \
         AND r.escalation_level < 2 AND r.due_at < ",
        repo::COLUMNS
    ));
    sql.bind(crate::store::ts_text(now))
        .push(" ORDER BY r.due_at, r.id");
    let overdue: Vec<repo::Raw> = sql.query_as().fetch_all(&st.db.pool).await?;
    let actor: Principal = notices::system("escalation");
    let mut run = EscalationRun::default();
    for before in overdue.into_iter().map(ServiceRequest::from) {
        let level = level_due(&before, now);
        if level <= before.escalation_level {
            continue;
        }
        let mut tx = crate::store::begin_write(&st.db).await?;
        let mut after = before.clone();
        after.escalation_level = level;
        after.escalated = true;
        after.updated_at = crate::store::ts_text(now);
        if !repo::write(&mut tx, &before, &mut after).await? {
            continue;
        }
        let who = recipients(&mut tx, &before.customer_id, level).await?;
        for user in &who {
            notices::notify(
                &mut tx,
                NewNotice {
                    user_id: user,
                    kind: "escalation",
                    title: format!("Overdue request escalated: {}", before.title),
                    body: format!(
                        "{} request \"{}\" was due {} and is still {}.",
                        before.request_type, before.title, before.due_at, before.status
                    ),
                    entity: "service_request",
                    entity_id: &before.id,
                    customer_id: Some(&before.customer_id),
                },
            )
            .await?;
        }
        let note = if level == 1 {
            "team_lead"
        } else {
            "region_head"
        };
        let step = repo::Step(
            "escalate",
            Some(&before.status),
            &before.status,
            Some(level),
            Some(note),
        );
        repo::record(&mut tx, &actor, &before, &after, step).await?;
        tx.commit().await?;
        run.escalated.push(Escalated {
            request_id: before.id.clone(),
            customer_id: before.customer_id.clone(),
            level,
            notified: who,
        });
    }
    Ok(run)
}

/// Runs escalation now (`run_jobs`: admins).
#[utoipa::path(post, path = "/api/v1/service-requests/escalations/run", tag = "service-requests",
    responses((status = 200, body = EscalationRun), (status = 403, description = "needs `run_jobs` (admins)", body = crate::http::error::ErrorBody)))]
pub async fn run_now(
    State(st): State<CrmState>,
    p: Principal,
) -> Result<Json<EscalationRun>, ApiError> {
    p.require(Permission::RunJobs)?;
    let run = run_escalations(&st, Utc::now())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(run))
}
