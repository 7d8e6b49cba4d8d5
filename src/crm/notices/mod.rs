//! `/notices`: in-app notices for the logged-in user (contract reminders, escalations,
//! approval results, feedback). Written by jobs and workflows, read and marked read by
//! their recipient only.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Serialize;

use crate::auth::{Principal, Role, Scope};
use crate::crm::workflow::{self, Logged};
use crate::crm::CrmState;
use crate::http::ApiError;
use crate::store::{fetch_page, new_id, now_text, ListParams, ListSpec, Page, Sql};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(mark_read))
}

/// A notice to one user.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Notice {
    pub id: String,
    pub user_id: String,
    /// `contract_reminder`, `escalation`, `approval`, `feedback`, `retention`, ...
    pub kind: String,
    pub title: String,
    pub body: String,
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    pub customer_id: Option<String>,
    pub created_at: String,
    pub read_at: Option<String>,
}

workflow::logged! { Notice in "notices" as n, kind "notice", owner customer_id;
id, user_id, kind, title, body, entity, entity_id, customer_id, created_at, read_at }

const COLUMNS: &str = <Notice as Logged>::COLUMNS;

/// What to tell whom.
pub struct NewNotice<'a> {
    pub user_id: &'a str,
    pub kind: &'a str,
    pub title: String,
    pub body: String,
    pub entity: &'a str,
    pub entity_id: &'a str,
    pub customer_id: Option<&'a str>,
}

/// Inserts a notice (inside the caller's transaction).
pub async fn notify(conn: &mut sqlx::AnyConnection, n: NewNotice<'_>) -> Result<(), sqlx::Error> {
    let notice = Notice {
        id: new_id(),
        user_id: n.user_id.into(),
        kind: n.kind.into(),
        title: n.title,
        body: n.body,
        entity: Some(n.entity.into()),
        entity_id: Some(n.entity_id.into()),
        customer_id: n.customer_id.map(str::to_string),
        created_at: now_text(),
        read_at: None,
    };
    workflow::append(conn, &notice).await
}

/// The principal background jobs act as, for audit records.
pub fn system(job: &str) -> Principal {
    Principal {
        id: format!("system:{job}"),
        name: job.to_string(),
        role: Role::System,
        scope: Scope::All,
    }
}

const SPEC: ListSpec = crate::list_spec!(n; text kind; sort created_at = seq; default "n.seq DESC");

/// The caller's notices, newest first; `?unread=true` for unread ones only.
#[utoipa::path(get, path = "/api/v1/notices", tag = "notices",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query), ("sort" = Option<String>, Query),
        ("kind" = Option<String>, Query), ("unread" = Option<bool>, Query)),
    responses((status = 200, body = Page<Notice>)))]
pub async fn list(
    State(st): State<CrmState>,
    p: Principal,
    Query(mut q): Query<HashMap<String, String>>,
) -> Result<Json<Page<Notice>>, ApiError> {
    let unread = match q.remove("unread").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::field("unread", "must be true or false")),
    };
    let params = ListParams::parse(&SPEC, &q)?;
    let mut sql = Sql::new("notices n WHERE n.user_id = ");
    sql.bind(p.id.as_str());
    if unread {
        sql.push(" AND n.read_at IS NULL");
    }
    Ok(Json(fetch_page(&st.db.pool, COLUMNS, sql, &params).await?))
}

/// Marks one of the caller's notices read.
#[utoipa::path(post, path = "/api/v1/notices/{id}/read", tag = "notices", params(("id" = String, Path)),
    responses((status = 200, body = Notice), (status = 404)))]
pub async fn mark_read(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Notice>, ApiError> {
    let mut conn = st.db.pool.acquire().await?;
    let mut upd = Sql::new("UPDATE notices SET read_at = ");
    upd.bind(now_text())
        .push(" WHERE id = ")
        .bind(id.as_str())
        .push(" AND user_id = ")
        .bind(p.id.as_str())
        .push(" AND read_at IS NULL");
    upd.execute(&mut conn).await?;
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM notices n WHERE n.id = "));
    sql.bind(id.as_str())
        .push(" AND n.user_id = ")
        .bind(p.id.as_str());
    let n: Notice = sql
        .query_as()
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| ApiError::NotFound("notice".into()))?;
    Ok(Json(n))
}
