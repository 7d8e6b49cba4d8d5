//! Agent desktop: offers wait in the recommendation store; the agent's page asks for the
//! ranked next-best offers of the customer in front of them and answers accept / decline.

use crate::ports::{Recommendation, Status};

use super::{Channel, ChannelError, Delivery};

pub struct AgentDesk;

#[async_trait::async_trait]
impl Channel for AgentDesk {
    fn name(&self) -> &str {
        "agent"
    }
    async fn send(&self, _rec: &Recommendation) -> Result<Delivery, ChannelError> {
        // Nothing to push: the desktop reads the store. The offer is now available to agents.
        Ok(Delivery {
            status: Status::Delivered,
            reason: None,
            provider_id: None,
        })
    }
}
