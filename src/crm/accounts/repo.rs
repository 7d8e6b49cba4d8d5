//! Billing account SQL, scoped through the owning customer; reads and writes go through
//! the generic [`Entity`](crate::store::Entity) recipe.

use serde::{Deserialize, Serialize};

use crate::store::{entity, StoreError};

crate::record! {
    /// A billing account (TMF666 BillingAccount).
    #[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
    pub struct Account, new NewAccount, patch AccountPatch {
        id: String,
        customer_id: String { new },
        name: String { new, patch },
        /// billing | settlement
        account_type: String { new opt = "billing".into(), patch },
        /// active | suspended | closed
        state: String { new opt = "active".into(), patch },
        payment_method: Option<String> { new, patch null },
        /// Day of month the bill is cut, 1 to 28.
        bill_cycle_day: Option<i64> { new, patch null },
        /// ISO 4217.
        currency: String { new opt = "CNY".into(), patch },
        credit_limit_cents: i64 { new opt, patch },
        /// Amount owed (positive) or in credit (negative).
        balance_cents: i64 { new opt, patch },
        created_at: String,
        updated_at: String,
        version: i64,
    }
}

/// A customer's accounts, oldest first.
pub async fn for_customer(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<Vec<Account>, StoreError> {
    entity::of_owner(conn, customer_id, "a.created_at, a.id").await
}

crate::entity! { Account in "accounts" as a, kind "account", owner customer_id;
update name, account_type, state, payment_method, bill_cycle_day, currency,
    credit_limit_cents, balance_cents;
stamp updated_at; insert customer_id, created_at }
