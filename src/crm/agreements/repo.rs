//! Agreement SQL, scoped through the owning customer.

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::scope::push_customer_scope;
use crate::store::{Arg, Entity, Sql};

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

impl Entity for Agreement {
    type Row = Self;
    const TABLE: &'static str = "agreements";
    const COLUMNS: &'static str = COLUMNS;
    const ID: &'static str = "g.id";
    const KIND: &'static str = "agreement";

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
            ("agreement_type", self.agreement_type.as_str().into()),
            ("status", self.status.as_str().into()),
            ("start_date", self.start_date.as_str().into()),
            ("end_date", self.end_date.as_str().into()),
            ("reminder_days", self.reminder_days.into()),
            ("document_ref", (&self.document_ref).into()),
            ("amount_cents", self.amount_cents.into()),
            ("reminded_for", (&self.reminded_for).into()),
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
