//! Billing account SQL, scoped through the owning customer; reads and writes go through
//! the generic [`Entity`] recipe.

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::scope::push_customer_scope;
use crate::store::{Entity, Sql};

crate::record! {
    /// A billing account (TMF666 BillingAccount).
    #[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
    pub struct Account, new NewAccount, patch AccountPatch {
        id: String,
        customer_id: String { new },
        name: String { new, patch },
        /// billing | settlement
        account_type: String { new opt, patch },
        /// active | suspended | closed
        state: String { new opt, patch },
        payment_method: Option<String> { new, patch null },
        /// Day of month the bill is cut, 1 to 28.
        bill_cycle_day: Option<i64> { new, patch null },
        /// ISO 4217.
        currency: String { new opt, patch },
        credit_limit_cents: i64 { new opt, patch },
        /// Amount owed (positive) or in credit (negative).
        balance_cents: i64 { new opt, patch },
        created_at: String,
        updated_at: String,
        version: i64,
    }
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
