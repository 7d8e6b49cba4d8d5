//! Billing account SQL, scoped through the owning customer; reads and writes go through
//! the generic [`Entity`] recipe.

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::scope::push_customer_scope;
use crate::store::{Arg, Entity, Sql};

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

impl Entity for Account {
    type Row = Self;
    const TABLE: &'static str = "accounts";
    const COLUMNS: &'static str = COLUMNS;
    const ID: &'static str = "a.id";
    const KIND: &'static str = "account";

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
            ("name", self.name.as_str().into()),
            ("account_type", self.account_type.as_str().into()),
            ("state", self.state.as_str().into()),
            ("payment_method", (&self.payment_method).into()),
            ("bill_cycle_day", self.bill_cycle_day.into()),
            ("currency", self.currency.as_str().into()),
            ("credit_limit_cents", self.credit_limit_cents.into()),
            ("balance_cents", self.balance_cents.into()),
            ("updated_at", self.updated_at.as_str().into()),
        ]
    }
    fn insert_only(&self) -> Vec<(&'static str, Arg)> {
        vec![
            ("customer_id", self.customer_id.as_str().into()),
            ("created_at", self.created_at.as_str().into()),
        ]
    }
}
