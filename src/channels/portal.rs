//! Portal pop-ups: offers are pushed live to the customer's web session over Server-Sent
//! Events (`crate::portal`); a session that connects later reads its inbox from the store.

use super::live::LiveHub;
use super::{Channel, ChannelError, Delivery};
use crate::ports::Recommendation;

#[derive(Clone)]
pub struct PortalHub(LiveHub);

impl Default for PortalHub {
    fn default() -> Self {
        PortalHub(LiveHub::new("portal"))
    }
}

impl std::ops::Deref for PortalHub {
    type Target = LiveHub;
    fn deref(&self) -> &LiveHub {
        &self.0
    }
}

#[async_trait::async_trait]
impl Channel for PortalHub {
    fn name(&self) -> &str {
        "portal"
    }
    async fn send(&self, rec: &Recommendation) -> Result<Delivery, ChannelError> {
        self.0.publish(rec).await?;
        Ok(Delivery::sent())
    }
}
