//! Portal pop-ups: offers are pushed live to the customer's web session over Server-Sent
//! Events; a session that connects later reads its inbox from the store.
//!
//! With several instances a customer's session is on one instance and the offer may be
//! decided on another, so the hub can relay over Redis pub/sub: every instance publishes
//! what it delivers and every instance hands what it hears to its own sessions. Pub/sub
//! keeps nothing: a session that was not connected reads the inbox when it connects.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;

use crate::ports::Recommendation;

use super::{Channel, ChannelError, Delivery};

#[derive(Clone)]
pub struct PortalHub {
    tx: broadcast::Sender<Recommendation>,
    relay: Arc<OnceLock<Relay>>,
}

struct Relay {
    conn: redis::aio::ConnectionManager,
    topic: String,
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

    /// Relays offers between instances over Redis pub/sub on `{prefix}:portal`. The
    /// listener reconnects by itself when Redis goes away.
    pub async fn relay_over_redis(&self, url: &str, prefix: &str) -> anyhow::Result<()> {
        let client = redis::Client::open(url)?;
        let conn = redis::aio::ConnectionManager::new(client.clone()).await?;
        let topic = format!("{prefix}:portal");
        let tx = self.tx.clone();
        let listen = topic.clone();
        tokio::spawn(async move {
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut ps) => {
                        if let Err(e) = ps.subscribe(&listen).await {
                            tracing::warn!("portal relay: subscribing failed: {e}");
                        } else {
                            let mut msgs = ps.on_message();
                            while let Some(msg) = msgs.next().await {
                                match serde_json::from_slice::<Recommendation>(
                                    msg.get_payload_bytes(),
                                ) {
                                    Ok(r) => {
                                        let _ = tx.send(r);
                                    }
                                    Err(e) => tracing::warn!("portal relay: unreadable offer: {e}"),
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!("portal relay: Redis unavailable: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        let _ = self.relay.set(Relay { conn, topic });
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
                let mut conn = relay.conn.clone();
                redis::cmd("PUBLISH")
                    .arg(&relay.topic)
                    .arg(json)
                    .query_async::<i64>(&mut conn)
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
