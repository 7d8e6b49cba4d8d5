//! `GET /audit`: the audit trail (written by `crate::audit`), for the customers in scope.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use serde::Serialize;

use crate::auth::{Permission, Principal, Scope};
use crate::crm::scope::push_scope_with_deleted;
use crate::crm::workflow::page_as;
use crate::crm::CrmState;
use crate::http::ApiError;
use crate::store::{ListParams, ListSpec, Page, Sql};
use utoipa_axum::{router::OpenApiRouter, routes};

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

const COLUMNS: &str = "a.id, a.at, a.actor_id, a.actor_name, a.entity, a.entity_id, a.action, \
     a.customer_id, a.before_json, a.after_json";

const SPEC: ListSpec = crate::list_spec!(a; text entity, entity_id, action, actor_id, customer_id;
    sort at = seq; default "a.seq DESC");

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query), ("sort" = Option<String>, Query, description = "at | -at"),
        ("entity" = Option<String>, Query), ("entity_id" = Option<String>, Query), ("action" = Option<String>, Query),
        ("actor_id" = Option<String>, Query), ("customer_id" = Option<String>, Query)),
    responses((status = 200, body = Page<AuditEntry>)))]
pub async fn list(
    State(st): State<CrmState>,
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
    push_scope_with_deleted(&mut sql, &p, "c");
    let page = page_as::<AuditRow, AuditEntry>(&st.db, COLUMNS, sql, &params).await?;
    Ok(Json(page))
}
