//! Billing account SQL, scoped through the owning customer; reads and writes go through
//! the generic [`Entity`] recipe.

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::scope::push_customer_scope;
use crate::store::{Entity, Sql};

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

pub const COLUMNS: &str = <Account as Entity>::COLUMNS;

/// `accounts a JOIN customers c ... WHERE 1=1` plus the caller's scope.
pub fn scoped(p: &Principal) -> Sql {
    let mut sql = Sql::new("accounts a JOIN customers c ON c.id = a.customer_id WHERE 1=1");
    push_customer_scope(&mut sql, p, "c");
    sql
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

crate::entity! { Account in "accounts" as a, kind "account", owner customer_id;
update name, account_type, state, payment_method, bill_cycle_day, currency,
    credit_limit_cents, balance_cents;
stamp updated_at; insert customer_id, created_at }
