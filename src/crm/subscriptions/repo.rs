//! Subscription SQL, scoped through the owning customer.

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::scope::push_customer_scope;
use crate::store::{Arg, Sql};

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

pub async fn get(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
) -> Result<Option<Subscription>, sqlx::Error> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM "));
    let from = scoped(p);
    sql.push(&from.text);
    sql.args = from.args;
    sql.push(" AND s.id = ").bind(id);
    sql.query_as().fetch_optional(conn).await
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

pub fn values(s: &Subscription) -> Vec<(&'static str, Arg)> {
    vec![
        ("status", s.status.as_str().into()),
        ("start_date", (&s.start_date).into()),
        ("termination_date", (&s.termination_date).into()),
        ("updated_at", s.updated_at.as_str().into()),
    ]
}

pub async fn insert(conn: &mut sqlx::AnyConnection, s: &Subscription) -> Result<(), sqlx::Error> {
    let mut v = values(s);
    v.extend([
        ("id", s.id.as_str().into()),
        ("customer_id", s.customer_id.as_str().into()),
        ("line_id", (&s.line_id).into()),
        ("offering_id", s.offering_id.as_str().into()),
        ("created_at", s.created_at.as_str().into()),
        ("version", 1i64.into()),
    ]);
    Sql::insert("subscriptions", v).execute(conn).await?;
    Ok(())
}
