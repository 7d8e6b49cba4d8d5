//! Subscription SQL, scoped through the owning customer.

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::scope::push_customer_scope;
use crate::store::{Entity, Sql};

/// A subscribed product (TMF637 Product): an offering a customer has, optionally on a line.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Subscription {
    pub id: String,
    pub customer_id: String,
    pub line_id: Option<String>,
    pub offering_id: String,
    /// created | pendingActive | active | suspended | pendingTerminate | terminated
    pub status: String,
    /// Set when the product first becomes active.
    pub start_date: Option<String>,
    /// Set when it is terminated.
    pub termination_date: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

pub const COLUMNS: &str = <Subscription as Entity>::COLUMNS;

pub fn scoped(p: &Principal) -> Sql {
    let mut sql = Sql::new("subscriptions s JOIN customers c ON c.id = s.customer_id WHERE 1=1");
    push_customer_scope(&mut sql, p, "c");
    sql
}

pub async fn for_customer(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<Vec<Subscription>, sqlx::Error> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM subscriptions s WHERE s.customer_id = "
    ));
    sql.bind(customer_id).push(" ORDER BY s.created_at, s.id");
    sql.query_as().fetch_all(conn).await
}

crate::entity! { Subscription in "subscriptions" as s, kind "subscription", owner customer_id;
update status, start_date, termination_date;
stamp updated_at; insert customer_id, line_id, offering_id, created_at }
