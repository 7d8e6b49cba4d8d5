//! Agreement SQL, scoped through the owning customer.

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::scope::push_customer_scope;
use crate::store::{Arg, Sql};

/// A customer contract (合同; TMF651 Agreement).
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Agreement {
    pub id: String,
    pub customer_id: String,
    pub name: String,
    /// service | framework | enterprise | other
    pub agreement_type: String,
    /// draft | active | expired | terminated
    pub status: String,
    /// agreementPeriod start, YYYY-MM-DD.
    pub start_date: String,
    /// agreementPeriod end, YYYY-MM-DD.
    pub end_date: String,
    /// Remind the account manager this many days before `end_date`.
    pub reminder_days: i64,
    /// Where the scanned contract is kept (URL or path).
    pub document_ref: Option<String>,
    pub amount_cents: i64,
    /// The end date a renewal reminder was sent for; `null` until then.
    pub reminded_for: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

pub const COLUMNS: &str = "g.id, g.customer_id, g.name, g.agreement_type, g.status, \
     g.start_date, g.end_date, g.reminder_days, g.document_ref, g.amount_cents, g.reminded_for, \
     g.created_at, g.updated_at, g.version";

pub fn scoped(p: &Principal) -> Sql {
    let mut sql = Sql::new("agreements g JOIN customers c ON c.id = g.customer_id WHERE 1=1");
    push_customer_scope(&mut sql, p, "c");
    sql
}

pub async fn get(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
) -> Result<Option<Agreement>, sqlx::Error> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM "));
    let from = scoped(p);
    sql.push(&from.text);
    sql.args = from.args;
    sql.push(" AND g.id = ").bind(id);
    sql.query_as().fetch_optional(conn).await
}

/// A customer's contracts that are not terminated, soonest end first (360 view).
pub async fn current_for_customer(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<Vec<Agreement>, sqlx::Error> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM agreements g WHERE g.status IN ('draft', 'active') AND g.customer_id = "
    ));
    sql.bind(customer_id)
        .push(" ORDER BY g.end_date, g.id LIMIT 20");
    sql.query_as().fetch_all(conn).await
}

pub fn values(a: &Agreement) -> Vec<(&'static str, Arg)> {
    vec![
        ("name", a.name.as_str().into()),
        ("agreement_type", a.agreement_type.as_str().into()),
        ("status", a.status.as_str().into()),
        ("start_date", a.start_date.as_str().into()),
        ("end_date", a.end_date.as_str().into()),
        ("reminder_days", a.reminder_days.into()),
        ("document_ref", (&a.document_ref).into()),
        ("amount_cents", a.amount_cents.into()),
        ("reminded_for", (&a.reminded_for).into()),
        ("updated_at", a.updated_at.as_str().into()),
    ]
}

pub async fn insert(conn: &mut sqlx::AnyConnection, a: &Agreement) -> Result<(), sqlx::Error> {
    let mut v = values(a);
    v.extend([
        ("id", a.id.as_str().into()),
        ("customer_id", a.customer_id.as_str().into()),
        ("created_at", a.created_at.as_str().into()),
        ("version", 1i64.into()),
    ]);
    Sql::insert("agreements", v).execute(conn).await?;
    Ok(())
}
