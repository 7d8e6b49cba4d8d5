//! Offers pushed live to open pages (the portal's pop-ups, the agent desktop): a broadcast
//! per instance, relayed between instances over Redis pub/sub.
//!
//! With several instances a page is connected to one instance and the offer may be decided
//! on another, so every instance publishes what it delivers and hands what it hears to its
//! own pages. Pub/sub keeps nothing: a page that was not connected reads the store when it
//! connects.

use std::sync::{Arc, OnceLock};

use tokio::sync::broadcast;

use crate::ports::Recommendation;
use crate::pubsub::Publisher;

use super::ChannelError;

#[derive(Clone)]
pub struct LiveHub {
    /// Names the Redis channel (`{prefix}:{topic}`), so each page kind hears only its own.
    topic: &'static str,
    tx: broadcast::Sender<Recommendation>,
    relay: Arc<OnceLock<Publisher>>,
}

impl LiveHub {
    pub fn new(topic: &'static str) -> Self {
        // Slow pages skip ahead (lagged) rather than holding back delivery to others.
        let (tx, _) = broadcast::channel(4096);
        LiveHub {
            topic,
            tx,
            relay: Arc::new(OnceLock::new()),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Recommendation> {
        self.tx.subscribe()
    }

    /// Relays offers between instances over Redis pub/sub on `{prefix}:{topic}`.
    pub async fn relay_over_redis(&self, url: &str, prefix: &str) -> anyhow::Result<()> {
        let tx = self.tx.clone();
        let topic = self.topic;
        let publisher = crate::pubsub::connect(url, format!("{prefix}:{topic}"), move |bytes| {
            match serde_json::from_slice::<Recommendation>(&bytes) {
                Ok(r) => {
                    let _ = tx.send(r);
                }
                Err(e) => tracing::warn!("{topic} relay: unreadable offer: {e}"),
            }
            async {}
        })
        .await?;
        let _ = self.relay.set(publisher);
        Ok(())
    }

    /// Hands `rec` to every open page, on every instance when relayed.
    pub async fn publish(&self, rec: &Recommendation) -> Result<(), ChannelError> {
        match self.relay.get() {
            Some(relay) => {
                let json = serde_json::to_vec(rec).expect("recommendations always serialize");
                relay
                    .publish(&json)
                    .await
                    .map_err(|e| ChannelError::Transient(format!("{} relay: {e}", self.topic)))?;
            }
            // No open page is fine: the offer waits in the store until it expires.
            None => {
                let _ = self.tx.send(rec.clone());
            }
        }
        Ok(())
    }
}
