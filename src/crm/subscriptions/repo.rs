//! Subscription SQL, scoped through the owning customer.

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::scope::push_customer_scope;
use crate::store::{Entity, Sql};

crate::record! {
    /// A subscribed product (TMF637 Product): an offering a customer has, optionally on a line.
    #[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
    pub struct Subscription, new NewSubscription, patch SubscriptionPatch {
        id: String,
        customer_id: String { new },
        line_id: Option<String> { new },
        offering_id: String {
            /// Offering id or code.
            new
        },
        /// created | pendingActive | active | suspended | pendingTerminate | terminated
        status: String {
            /// `created` (default), `pendingActive` or `active`.
            new opt,
            patch required
        },
        /// Set when the product first becomes active.
        start_date: Option<String>,
        /// Set when it is terminated.
        termination_date: Option<String>,
        created_at: String,
        updated_at: String,
        version: i64,
    }
}

pub const COLUMNS: &str = <Subscription as Entity>::COLUMNS;

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

crate::entity! { Subscription in "subscriptions" as s, kind "subscription", owner customer_id;
update status, start_date, termination_date;
stamp updated_at; insert customer_id, line_id, offering_id, created_at }
