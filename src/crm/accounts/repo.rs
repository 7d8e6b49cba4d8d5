//! Billing account SQL, scoped through the owning customer.

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::scope::push_customer_scope;
use crate::store::{Arg, Sql};

/// A billing account (TMF666 BillingAccount).
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Account {
    pub id: String,
    pub customer_id: String,
    pub name: String,
    /// billing | settlement
    pub account_type: String,
    /// active | suspended | closed
    pub state: String,
    pub payment_method: Option<String>,
    /// Day of month the bill is cut, 1 to 28.
    pub bill_cycle_day: Option<i64>,
    /// ISO 4217.
    pub currency: String,
    pub credit_limit_cents: i64,
    /// Amount owed (positive) or in credit (negative).
    pub balance_cents: i64,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

pub const COLUMNS: &str = "a.id, a.customer_id, a.name, a.account_type, a.state, \
     a.payment_method, a.bill_cycle_day, a.currency, a.credit_limit_cents, a.balance_cents, \
     a.created_at, a.updated_at, a.version";

/// `accounts a JOIN customers c ... WHERE 1=1` plus the caller's scope.
pub fn scoped(p: &Principal) -> Sql {
    let mut sql = Sql::new("accounts a JOIN customers c ON c.id = a.customer_id WHERE 1=1");
    push_customer_scope(&mut sql, p, "c");
    sql
}

pub async fn get(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
) -> Result<Option<Account>, sqlx::Error> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM "));
    let from = scoped(p);
    sql.push(&from.text);
    sql.args = from.args;
    sql.push(" AND a.id = ").bind(id);
    sql.query_as().fetch_optional(conn).await
}

pub async fn for_customer(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<Vec<Account>, sqlx::Error> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM accounts a WHERE a.customer_id = "
    ));
    sql.bind(customer_id).push(" ORDER BY a.created_at, a.id");
    sql.query_as().fetch_all(conn).await
}

pub fn values(a: &Account) -> Vec<(&'static str, Arg)> {
    vec![
        ("name", a.name.as_str().into()),
        ("account_type", a.account_type.as_str().into()),
        ("state", a.state.as_str().into()),
        ("payment_method", (&a.payment_method).into()),
        ("bill_cycle_day", a.bill_cycle_day.into()),
        ("currency", a.currency.as_str().into()),
        ("credit_limit_cents", a.credit_limit_cents.into()),
        ("balance_cents", a.balance_cents.into()),
        ("updated_at", a.updated_at.as_str().into()),
    ]
}

pub async fn insert(conn: &mut sqlx::AnyConnection, a: &Account) -> Result<(), sqlx::Error> {
    let mut v = values(a);
    v.extend([
        ("id", a.id.as_str().into()),
        ("customer_id", a.customer_id.as_str().into()),
        ("created_at", a.created_at.as_str().into()),
        ("version", 1i64.into()),
    ]);
    Sql::insert("accounts", v).execute(conn).await?;
    Ok(())
}
