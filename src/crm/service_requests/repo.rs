//! Service request SQL, scoped through the owning customer.

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::scope::push_customer_scope;
use crate::store::{
    fetch_page, new_id, next_seq, Arg, ListParams, ListSpec, Page, Sql, StoreError,
};

/// A service request / work order (业务申请; TMF621 TroubleTicket-like).
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ServiceRequest {
    pub id: String,
    pub customer_id: String,
    /// new_install | product_change | suspension | cancellation | repair | fault_report
    pub request_type: String,
    pub title: String,
    pub description: Option<String>,
    /// low | normal | high | urgent
    pub priority: String,
    /// acknowledged | pending_approval | in_progress | resolved | closed | rejected | cancelled
    pub status: String,
    #[serde(skip)]
    pub steps: String,
    /// Roles that approve, in order (copied from the workflow when raised).
    #[sqlx(skip)]
    pub approval_steps: Vec<String>,
    /// Index of the next approval step.
    pub current_step: i64,
    pub sla_hours: i64,
    pub due_at: String,
    /// 0 = on time; 1 = escalated to the team lead; 2 = to the region head.
    pub escalation_level: i64,
    #[sqlx(skip)]
    pub escalated: bool,
    pub requester_id: String,
    pub assignee_id: Option<String>,
    /// What was done, for the requester (set on resolve).
    pub feedback: Option<String>,
    pub resolved_at: Option<String>,
    pub closed_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

impl ServiceRequest {
    /// Fills the derived fields after a read.
    pub fn fill(mut self) -> ServiceRequest {
        self.approval_steps = serde_json::from_str(&self.steps).unwrap_or_default();
        self.escalated = self.escalation_level > 0;
        self
    }

    /// The role the next approval needs, while approval is pending.
    pub fn next_approver(&self) -> Option<&str> {
        if self.status != "pending_approval" {
            return None;
        }
        self.approval_steps
            .get(self.current_step as usize)
            .map(String::as_str)
    }
}

/// One state change or step of a request.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub id: String,
    pub request_id: String,
    /// create | approve | reject | transition | escalate
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: String,
    /// The approval step concerned.
    pub step: Option<i64>,
    pub note: Option<String>,
    pub actor_id: String,
    pub actor_name: String,
    pub at: String,
}

pub const COLUMNS: &str = "r.id, r.customer_id, r.request_type, r.title, r.description, \
     r.priority, r.status, r.steps, r.current_step, r.sla_hours, r.due_at, r.escalation_level, \
     r.requester_id, r.assignee_id, r.feedback, r.resolved_at, r.closed_at, r.created_at, \
     r.updated_at, r.version";

pub fn scoped(p: &Principal) -> Sql {
    let mut sql = Sql::new("service_requests r JOIN customers c ON c.id = r.customer_id WHERE 1=1");
    push_customer_scope(&mut sql, p, "c");
    sql
}

pub async fn get(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
) -> Result<Option<ServiceRequest>, sqlx::Error> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM "));
    let from = scoped(p);
    sql.push(&from.text);
    sql.args = from.args;
    sql.push(" AND r.id = ").bind(id);
    Ok(sql
        .query_as::<ServiceRequest>()
        .fetch_optional(conn)
        .await?
        .map(ServiceRequest::fill))
}

pub const OPEN: &[&str] = &["acknowledged", "pending_approval", "in_progress"];

/// Open requests of a customer, newest first (360 view).
pub async fn open_for_customer(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<Vec<ServiceRequest>, sqlx::Error> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM service_requests r WHERE r.status IN ('acknowledged', 'pending_approval', 'in_progress') AND r.customer_id = "
    ));
    sql.bind(customer_id)
        .push(" ORDER BY r.created_at DESC, r.id LIMIT 20");
    Ok(sql
        .query_as::<ServiceRequest>()
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(ServiceRequest::fill)
        .collect())
}

pub fn values(r: &ServiceRequest) -> Vec<(&'static str, Arg)> {
    vec![
        ("title", r.title.as_str().into()),
        ("description", (&r.description).into()),
        ("priority", r.priority.as_str().into()),
        ("status", r.status.as_str().into()),
        ("current_step", r.current_step.into()),
        ("due_at", r.due_at.as_str().into()),
        ("escalation_level", r.escalation_level.into()),
        ("assignee_id", (&r.assignee_id).into()),
        ("feedback", (&r.feedback).into()),
        ("resolved_at", (&r.resolved_at).into()),
        ("closed_at", (&r.closed_at).into()),
        ("updated_at", r.updated_at.as_str().into()),
    ]
}

pub async fn insert(conn: &mut sqlx::AnyConnection, r: &ServiceRequest) -> Result<(), sqlx::Error> {
    let mut v = values(r);
    v.extend([
        ("id", r.id.as_str().into()),
        ("customer_id", r.customer_id.as_str().into()),
        ("request_type", r.request_type.as_str().into()),
        ("steps", r.steps.as_str().into()),
        ("sla_hours", r.sla_hours.into()),
        ("requester_id", r.requester_id.as_str().into()),
        ("created_at", r.created_at.as_str().into()),
        ("version", 1i64.into()),
    ]);
    Sql::insert("service_requests", v).execute(conn).await?;
    Ok(())
}

/// A history row to append.
pub struct Step<'a> {
    pub action: &'a str,
    pub from_status: Option<&'a str>,
    pub to_status: &'a str,
    pub step: Option<i64>,
    pub note: Option<&'a str>,
}

pub async fn push_history(
    conn: &mut sqlx::AnyConnection,
    r: &ServiceRequest,
    actor: &Principal,
    at: &str,
    s: Step<'_>,
) -> Result<(), sqlx::Error> {
    Sql::insert(
        "service_request_history",
        vec![
            ("id", new_id().into()),
            ("request_id", r.id.as_str().into()),
            ("customer_id", r.customer_id.as_str().into()),
            ("action", s.action.into()),
            ("from_status", s.from_status.map(str::to_string).into()),
            ("to_status", s.to_status.into()),
            ("step", s.step.into()),
            ("note", s.note.map(str::to_string).into()),
            ("actor_id", actor.id.as_str().into()),
            ("actor_name", actor.name.as_str().into()),
            ("at", at.into()),
            ("seq", next_seq().into()),
        ],
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A request's history, oldest first: paged, no filters.
pub const HISTORY_SPEC: ListSpec = ListSpec {
    filters: &[],
    sorts: &[],
    default_sort: "h.seq",
    tiebreak: "h.id",
};

/// One page of a request's history, oldest first; `total` counts every entry.
pub async fn history(
    pool: &sqlx::AnyPool,
    request_id: &str,
    params: &ListParams,
) -> Result<Page<HistoryEntry>, StoreError> {
    let mut from = Sql::new("service_request_history h WHERE h.request_id = ");
    from.bind(request_id);
    fetch_page(
        pool,
        "h.id, h.request_id, h.action, h.from_status, h.to_status, h.step, h.note, \
         h.actor_id, h.actor_name, h.at",
        from,
        params,
    )
    .await
}
