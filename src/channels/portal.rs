//! Portal pop-ups: offers are pushed live to the customer's web session over Server-Sent
//! Events; a session that connects later reads its inbox from the store.

use tokio::sync::broadcast;

use crate::ports::Recommendation;

use super::{Channel, ChannelError, Delivery};

#[derive(Clone)]
pub struct PortalHub {
    tx: broadcast::Sender<Recommendation>,
}

impl Default for PortalHub {
    fn default() -> Self {
        // Slow sessions skip ahead (lagged) rather than holding back delivery to others.
        let (tx, _) = broadcast::channel(4096);
        PortalHub { tx }
    }
}

impl PortalHub {
    pub fn subscribe(&self) -> broadcast::Receiver<Recommendation> {
        self.tx.subscribe()
    }
}

#[async_trait::async_trait]
impl Channel for PortalHub {
    fn name(&self) -> &str {
        "portal"
    }
    async fn send(&self, rec: &Recommendation) -> Result<Delivery, ChannelError> {
        // No open session is fine: the offer waits in the inbox until it expires.
        let _ = self.tx.send(rec.clone());
        Ok(Delivery::sent())
    }
}
