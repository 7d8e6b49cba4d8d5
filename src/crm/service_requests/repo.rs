//! Service request SQL, scoped through the owning customer.

use serde::{Deserialize, Serialize};

use crate::audit;
use crate::auth::Principal;
use crate::crm::workflow::{self, logged, Children};
use crate::store::{entity, new_id, Entity, Sql, StoreError};

// Requests change through their transitions only: the PATCH body the field list also gives
// goes unused.
crate::record! {
    /// A service request / work order (业务申请; TMF621 TroubleTicket-like).
    #[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
    pub struct ServiceRequest, new NewServiceRequest, patch ServiceRequestPatch {
        id: String,
        customer_id: String { new },
        /// new_install | product_change | suspension | cancellation | repair | fault_report
        request_type: String { new },
        title: String { new },
        description: Option<String> { new },
        /// low | normal | high | urgent
        priority: String {
            /// low | normal (default) | high | urgent
            new opt
        },
        /// acknowledged | pending_approval | in_progress | resolved | closed | rejected | cancelled
        status: String,
        #[serde(skip)]
        steps: String,
        /// Roles that approve, in order (copied from the workflow when raised).
        #[sqlx(skip)]
        approval_steps: Vec<String>,
        /// Index of the next approval step.
        current_step: i64,
        sla_hours: i64,
        due_at: String,
        /// 0 = on time; 1 = escalated to the team lead; 2 = to the region head.
        escalation_level: i64,
        #[sqlx(skip)]
        escalated: bool,
        requester_id: String,
        assignee_id: Option<String>,
        /// What was done, for the requester (set on resolve).
        feedback: Option<String>,
        resolved_at: Option<String>,
        closed_at: Option<String>,
        created_at: String,
        updated_at: String,
        version: i64,
    }
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

#[derive(sqlx::FromRow)]
pub struct Raw {
    #[sqlx(flatten)]
    r: ServiceRequest,
}

impl From<Raw> for ServiceRequest {
    fn from(r: Raw) -> ServiceRequest {
        r.r.fill()
    }
}

crate::entity! { ServiceRequest in "service_requests" as r, kind "service_request",
noun "service request", row Raw, owner customer_id;
update title, description, priority, status, current_step, due_at, escalation_level,
    assignee_id, feedback, resolved_at, closed_at;
stamp updated_at; insert customer_id, request_type, steps, sla_hours, requester_id, created_at }

pub const COLUMNS: &str = <ServiceRequest as Entity>::COLUMNS;

/// One state change or step of a request.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub id: String,
    pub request_id: String,
    /// Files the entry under the customer; not part of the answer.
    #[serde(skip)]
    pub customer_id: String,
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

logged! { HistoryEntry in "service_request_history" as h, kind "service_request_history",
owner customer_id; id, request_id, customer_id, action, from_status, to_status, step, note,
    actor_id, actor_name, at }

/// A request's history, oldest first.
pub const HISTORY: Children = Children::log::<HistoryEntry>("request_id", "h.seq", "h.id");

pub const OPEN: &[&str] = &["acknowledged", "pending_approval", "in_progress"];

/// Open requests of a customer, newest first (360 view).
pub async fn open_for_customer(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<Vec<ServiceRequest>, sqlx::Error> {
    let mut from = Sql::new(
        "service_requests r WHERE r.status IN ('acknowledged', 'pending_approval', 'in_progress') AND r.customer_id = ",
    );
    from.bind(customer_id)
        .push(" ORDER BY r.created_at DESC, r.id LIMIT 20");
    workflow::all::<Raw, _>(conn, COLUMNS, from).await
}

/// Writes `after`, whose `updated_at` the caller set, as the next version of `before`;
/// false when the row moved on.
pub async fn write(
    conn: &mut sqlx::AnyConnection,
    before: &ServiceRequest,
    after: &mut ServiceRequest,
) -> Result<bool, StoreError> {
    let written = entity::update(conn, &*after, before.version).await?;
    if written {
        after.version += 1;
    }
    Ok(written)
}

/// A history row to append: action, from status, to status, approval step, note.
pub struct Step<'a>(
    pub &'a str,
    pub Option<&'a str>,
    pub &'a str,
    pub Option<i64>,
    pub Option<&'a str>,
);

pub async fn push_history(
    conn: &mut sqlx::AnyConnection,
    r: &ServiceRequest,
    actor: &Principal,
    at: &str,
    Step(action, from, to, step, note): Step<'_>,
) -> Result<(), sqlx::Error> {
    let entry = HistoryEntry {
        id: new_id(),
        request_id: r.id.clone(),
        customer_id: r.customer_id.clone(),
        action: action.into(),
        from_status: from.map(str::to_string),
        to_status: to.into(),
        step,
        note: note.map(str::to_string),
        actor_id: actor.id.clone(),
        actor_name: actor.name.clone(),
        at: at.into(),
    };
    workflow::append(conn, &entry).await
}

/// The history row of a change from `before` to `after` (at its `updated_at`) and its
/// audit record, recorded as the step's action.
pub async fn record(
    conn: &mut sqlx::AnyConnection,
    actor: &Principal,
    before: &ServiceRequest,
    after: &ServiceRequest,
    step: Step<'_>,
) -> Result<(), sqlx::Error> {
    let action = step.0;
    push_history(conn, after, actor, &after.updated_at, step).await?;
    let change = workflow::change(action, Some(before), after);
    audit::record(conn, actor, change).await
}
