//! The audit trail: every CRM change is recorded in the same transaction as the change itself,
//! so there is no write without its record. Readers see the history of customers in scope.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::app::AppState;
use crate::auth::{Permission, Principal, Scope};
use crate::crm::scope::push_customer_scope;
use crate::crm::store::{
    fetch_page, new_id, next_seq, now_text, FilterKind, ListParams, ListSpec, Page, Sql,
};
use crate::http::ApiError;

/// One change to record.
pub struct Change<'a> {
    pub entity: &'a str,
    pub entity_id: &'a str,
    /// `create`, `update`, `delete`, or a domain verb (`earn`, `transition`, ...).
    pub action: &'a str,
    /// The customer concerned, which decides who may read the record later.
    pub customer_id: Option<&'a str>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// The tail every versioned update shares: write `values` only while the row is still at
/// `expected` (otherwise 412), record the change beside it, commit.
pub async fn save_update(
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    actor: &Principal,
    table: &str,
    expected: i64,
    values: Vec<(&str, crate::crm::store::Arg)>,
    change: Change<'_>,
) -> Result<(), ApiError> {
    let n = Sql::update_versioned(table, change.entity_id, expected, values)
        .execute(&mut tx)
        .await?;
    if n == 0 {
        return Err(ApiError::PreconditionFailed);
    }
    record(&mut tx, actor, change).await?;
    tx.commit().await?;
    Ok(())
}

/// Serializes a record for the `before`/`after` columns.
pub fn snapshot<T: Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

pub async fn record(
    conn: &mut sqlx::AnyConnection,
    actor: &Principal,
    c: Change<'_>,
) -> Result<(), sqlx::Error> {
    let text = |v: Option<serde_json::Value>| v.map(|v| v.to_string());
    Sql::insert(
        "audit_log",
        vec![
            ("id", new_id().into()),
            ("at", now_text().into()),
            ("actor_id", actor.id.as_str().into()),
            ("actor_name", actor.name.as_str().into()),
            ("entity", c.entity.into()),
            ("entity_id", c.entity_id.into()),
            ("action", c.action.into()),
            ("customer_id", c.customer_id.map(str::to_string).into()),
            ("before_json", text(c.before).into()),
            ("after_json", text(c.after).into()),
            ("seq", next_seq().into()),
        ],
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, sqlx::FromRow)]
struct AuditRow {
    id: String,
    at: String,
    actor_id: String,
    actor_name: String,
    entity: String,
    entity_id: String,
    action: String,
    customer_id: Option<String>,
    before_json: Option<String>,
    after_json: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub at: String,
    pub actor_id: String,
    pub actor_name: String,
    pub entity: String,
    pub entity_id: String,
    pub action: String,
    pub customer_id: Option<String>,
    #[schema(value_type = Object)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub after: Option<serde_json::Value>,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        AuditEntry {
            id: r.id,
            at: r.at,
            actor_id: r.actor_id,
            actor_name: r.actor_name,
            entity: r.entity,
            entity_id: r.entity_id,
            action: r.action,
            customer_id: r.customer_id,
            before: parse(r.before_json),
            after: parse(r.after_json),
        }
    }
}

const SPEC: ListSpec = ListSpec {
    filters: &[
        ("entity", "a.entity", FilterKind::Text),
        ("entity_id", "a.entity_id", FilterKind::Text),
        ("action", "a.action", FilterKind::Text),
        ("actor_id", "a.actor_id", FilterKind::Text),
        ("customer_id", "a.customer_id", FilterKind::Text),
    ],
    sorts: &[("at", "a.seq")],
    default_sort: "a.seq DESC",
    tiebreak: "a.id",
};

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

/// Audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query), ("sort" = Option<String>, Query, description = "at | -at"),
        ("entity" = Option<String>, Query), ("entity_id" = Option<String>, Query), ("action" = Option<String>, Query),
        ("actor_id" = Option<String>, Query), ("customer_id" = Option<String>, Query)),
    responses((status = 200, body = Page<AuditEntry>)), security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(st): State<AppState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    p.require(Permission::ReadAudit)?;
    let params = ListParams::parse(&SPEC, &q)?;
    let mut sql = Sql::new("audit_log a LEFT JOIN customers c ON c.id = a.customer_id WHERE 1=1");
    if p.scope != Scope::All {
        // Changes to users, catalog and the like concern no customer: admins only.
        sql.push(" AND a.customer_id IS NOT NULL");
    }
    push_customer_scope(&mut sql, &p, "c");
    let page: Page<AuditRow> = fetch_page(
        &st.db.pool,
        "a.id, a.at, a.actor_id, a.actor_name, a.entity, a.entity_id, a.action, a.customer_id, a.before_json, a.after_json",
        sql,
        &params,
    )
    .await?;
    Ok(Json(Page {
        items: page.items.into_iter().map(AuditEntry::from).collect(),
        total: page.total,
        limit: page.limit,
        offset: page.offset,
    }))
}
