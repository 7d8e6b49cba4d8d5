//! Opportunity SQL, scoped through the owning customer.

use serde::{Deserialize, Serialize};

use crate::store::{Entity, Sql};

crate::record! {
    /// A sales opportunity (商机).
    #[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
    pub struct Opportunity, new NewOpportunity, patch OpportunityPatch {
        id: String,
        customer_id: String { new },
        title: String { new, patch },
        /// offer | agent | enterprise
        source: String {
            /// agent (default) | enterprise; `offer` comes from `/opportunities/from-offer/{id}`.
            new opt
        },
        /// The accepted recommendation it came from.
        recommendation_id: Option<String>,
        offer_code: Option<String> { new },
        /// prospecting | qualification | proposal | negotiation | won | lost
        stage: String { new opt, patch },
        /// Percent, 0 to 100.
        probability: i64 { new opt, patch },
        amount_cents: i64 { new opt, patch },
        owner_id: Option<String> {
            /// Defaults to the customer's account manager.
            new,
            patch null
        },
        expected_close: Option<String> { new, patch null },
        /// Why it was won or lost.
        close_reason: Option<String> {
            /// Required when moving to won or lost.
            patch some
        },
        closed_at: Option<String>,
        created_by: String,
        created_at: String,
        updated_at: String,
        version: i64,
    }
}

/// One follow-up (商机跟踪): a call, visit or note on an opportunity.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct FollowUp {
    pub id: String,
    pub opportunity_id: String,
    pub customer_id: String,
    /// call | visit | email | meeting | note
    pub kind: String,
    pub note: String,
    pub next_action: Option<String>,
    pub next_at: Option<String>,
    pub actor_id: String,
    pub at: String,
}

crate::entity! { Opportunity in "opportunities" as o, kind "opportunity",
unique "recommendation_id", owner customer_id;
update title, stage, probability, amount_cents, owner_id, expected_close, close_reason,
    closed_at;
stamp updated_at; insert customer_id, source, recommendation_id, offer_code, created_by,
    created_at }

pub const COLUMNS: &str = <Opportunity as Entity>::COLUMNS;

crate::crm::workflow::logged! { FollowUp in "opportunity_follow_ups" as f,
kind "opportunity_follow_up", owner customer_id;
id, opportunity_id, customer_id, kind, note, next_action, next_at, actor_id, at }

/// Open opportunities of a customer, newest first (360 view).
pub async fn open_for_customer(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
    limit: i64,
) -> Result<Vec<Opportunity>, sqlx::Error> {
    let mut from =
        Sql::new("opportunities o WHERE o.stage NOT IN ('won', 'lost') AND o.customer_id = ");
    from.bind(customer_id)
        .push(" ORDER BY o.created_at DESC, o.id LIMIT ")
        .bind(limit);
    crate::crm::workflow::all::<Opportunity, _>(conn, COLUMNS, from).await
}
