//! Portal pop-ups: offers are pushed live to the customer's web session over Server-Sent
//! Events (`crate::portal`); a session that connects later reads its inbox from the store.

use super::{Channel, ChannelError, Delivery};
use crate::ports::Recommendation;

crate::live_hub!(PortalHub, "portal");

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
