//! Subscription SQL, scoped through the owning customer.

use serde::{Deserialize, Serialize};

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
            new opt = "created".into(),
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

crate::entity! { Subscription in "subscriptions" as s, kind "subscription", owner customer_id;
update status, start_date, termination_date;
stamp updated_at; insert customer_id, line_id, offering_id, created_at }
