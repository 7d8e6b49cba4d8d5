//! Subscription SQL, scoped through the owning customer.

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::scope::push_customer_scope;
use crate::store::{Arg, Entity, Sql};

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

pub const COLUMNS: &str = "s.id, s.customer_id, s.line_id, s.offering_id, s.status, \
     s.start_date, s.termination_date, s.created_at, s.updated_at, s.version";

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

impl Entity for Subscription {
    type Row = Self;
    const TABLE: &'static str = "subscriptions";
    const COLUMNS: &'static str = COLUMNS;
    const ID: &'static str = "s.id";
    const KIND: &'static str = "subscription";

    fn id(&self) -> &str {
        &self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn next_version(&mut self, now: String) {
        self.updated_at = now;
        self.version += 1;
    }
    fn customer_id(&self) -> Option<&str> {
        Some(&self.customer_id)
    }
    fn values(&self) -> Vec<(&'static str, Arg)> {
        vec![
            ("status", self.status.as_str().into()),
            ("start_date", (&self.start_date).into()),
            ("termination_date", (&self.termination_date).into()),
            ("updated_at", self.updated_at.as_str().into()),
        ]
    }
    fn insert_only(&self) -> Vec<(&'static str, Arg)> {
        vec![
            ("customer_id", self.customer_id.as_str().into()),
            ("line_id", (&self.line_id).into()),
            ("offering_id", self.offering_id.as_str().into()),
            ("created_at", self.created_at.as_str().into()),
        ]
    }
}
