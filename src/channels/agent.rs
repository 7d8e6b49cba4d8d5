//! Agent desktop: offers wait in the recommendation store and are pushed live to the desks
//! that have the customer open (`crate::desk`). Sending only makes an offer available: it is
//! `sent` until an agent's page has shown it, which marks it `delivered`.

use super::{Channel, ChannelError, Delivery};
use crate::ports::Recommendation;

crate::live_hub!(AgentDesk, "agent");

#[async_trait::async_trait]
impl Channel for AgentDesk {
    fn name(&self) -> &str {
        "agent"
    }
    async fn send(&self, rec: &Recommendation) -> Result<Delivery, ChannelError> {
        // The live push is a courtesy: the offer is already in the store, where a desk opening
        // the customer finds it. A relay outage (Redis away) must not hold delivery back.
        if let Err(e) = self.0.publish(rec).await {
            tracing::warn!(offer = %rec.id, "agent desk: live push failed, offer waits in the store: {e}");
        }
        // Nobody has seen it yet: `delivered` comes from the desk that shows it.
        Ok(Delivery::sent())
    }
}
