//! Portal pop-ups: offers are pushed live to the customer's web session over Server-Sent
//! Events; a session that connects later reads its inbox from the store.
//!
//! With several instances a customer's session is on one instance and the offer may be
//! decided on another, so the hub can relay over Redis pub/sub: every instance publishes
//! what it delivers and every instance hands what it hears to its own sessions. Pub/sub
//! keeps nothing: a session that was not connected reads the inbox when it connects.

use std::sync::{Arc, OnceLock};

use tokio::sync::broadcast;

use crate::ports::Recommendation;
use crate::pubsub::Publisher;

use super::{Channel, ChannelError, Delivery};

#[derive(Clone)]
pub struct PortalHub {
    tx: broadcast::Sender<Recommendation>,
    relay: Arc<OnceLock<Publisher>>,
}

impl Default for PortalHub {
    fn default() -> Self {
        // Slow sessions skip ahead (lagged) rather than holding back delivery to others.
        let (tx, _) = broadcast::channel(4096);
        PortalHub {
            tx,
            relay: Arc::new(OnceLock::new()),
        }
    }
}

impl PortalHub {
    pub fn subscribe(&self) -> broadcast::Receiver<Recommendation> {
        self.tx.subscribe()
    }

    /// Relays offers between instances over Redis pub/sub on `{prefix}:portal`.
    pub async fn relay_over_redis(&self, url: &str, prefix: &str) -> anyhow::Result<()> {
        let tx = self.tx.clone();
        let publisher = crate::pubsub::connect(url, format!("{prefix}:portal"), move |bytes| {
            match serde_json::from_slice::<Recommendation>(&bytes) {
                Ok(r) => {
                    let _ = tx.send(r);
                }
                Err(e) => tracing::warn!("portal relay: unreadable offer: {e}"),
            }
            async {}
        })
        .await?;
        let _ = self.relay.set(publisher);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Channel for PortalHub {
    fn name(&self) -> &str {
        "portal"
    }
    async fn send(&self, rec: &Recommendation) -> Result<Delivery, ChannelError> {
        match self.relay.get() {
            Some(relay) => {
                let json = serde_json::to_vec(rec).expect("recommendations always serialize");
                relay
                    .publish(&json)
                    .await
                    .map_err(|e| ChannelError::Transient(format!("portal relay: {e}")))?;
            }
            // No open session is fine: the offer waits in the inbox until it expires.
            None => {
                let _ = self.tx.send(rec.clone());
            }
        }
        Ok(Delivery::sent())
    }
}
