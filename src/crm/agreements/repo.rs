//! Agreement SQL, scoped through the owning customer.

use serde::{Deserialize, Serialize};

use crate::store::{Entity, Sql};

crate::record! {
    /// A customer contract (合同; TMF651 Agreement).
    #[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
    pub struct Agreement, new NewAgreement, patch AgreementPatch {
        id: String,
        customer_id: String { new },
        name: String { new, patch },
        /// service | framework | enterprise | other
        agreement_type: String { new opt = "service".into(), patch },
        /// draft | active | expired | terminated
        status: String { new opt = "active".into(), patch },
        /// agreementPeriod start, YYYY-MM-DD.
        start_date: String { new, patch },
        /// agreementPeriod end, YYYY-MM-DD.
        end_date: String { new, patch },
        /// Remind the account manager this many days before `end_date`.
        reminder_days: i64 { /// Default 30.
            new opt = 30, patch },
        /// Where the scanned contract is kept (URL or path).
        document_ref: Option<String> { new, patch null },
        amount_cents: i64 { new opt, patch },
        /// The end date a renewal reminder was sent for; `null` until then.
        reminded_for: Option<String>,
        created_at: String,
        updated_at: String,
        version: i64,
    }
}

pub const COLUMNS: &str = <Agreement as Entity>::COLUMNS;

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

crate::entity! { Agreement in "agreements" as g, kind "agreement", owner customer_id;
update name, agreement_type, status, start_date, end_date, reminder_days, document_ref,
    amount_cents, reminded_for;
stamp updated_at; insert customer_id, created_at }
