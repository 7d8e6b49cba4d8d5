//! Delivers queued recommendations: rate-limited per channel, retried with backoff on
//! transient errors, status written back to the store.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;

use super::{ChannelError, Registry};
use crate::pipeline::RecStore;
use crate::ports::{Recommendation, Status};

#[derive(Clone)]
pub struct Dispatcher {
    tx: mpsc::Sender<Recommendation>,
}

const RETRIES: u32 = 3;

impl Dispatcher {
    /// Starts the delivery task. It ends when every sender is dropped.
    pub fn start(
        registry: Registry,
        store: RecStore,
        max_per_second: u32,
    ) -> (Dispatcher, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Recommendation>(4096);
        let limiters: HashMap<String, Arc<DefaultDirectRateLimiter>> =
            match NonZeroU32::new(max_per_second) {
                Some(n) => registry
                    .names()
                    .into_iter()
                    .map(|c| (c, Arc::new(RateLimiter::direct(Quota::per_second(n)))))
                    .collect(),
                None => HashMap::new(),
            };
        let handle = tokio::spawn(async move {
            while let Some(rec) = rx.recv().await {
                let (status, reason) = deliver(&registry, &limiters, &rec).await;
                if let Err(e) = store.set_status(&rec.id, status, reason.as_deref()).await {
                    tracing::error!(rec = %rec.id, error = %e, "could not record delivery status");
                }
            }
        });
        (Dispatcher { tx }, handle)
    }

    /// Queues for delivery; waits when the queue is full (backpressure to the engine).
    pub async fn enqueue(&self, rec: Recommendation) -> bool {
        self.tx.send(rec).await.is_ok()
    }
}

async fn deliver(
    registry: &Registry,
    limiters: &HashMap<String, Arc<DefaultDirectRateLimiter>>,
    rec: &Recommendation,
) -> (Status, Option<String>) {
    let Some(ch) = registry.get(&rec.channel) else {
        return (Status::Failed, Some("channel_unavailable".into()));
    };
    let mut backoff = Duration::from_millis(100);
    for attempt in 1..=RETRIES {
        if let Some(l) = limiters.get(&rec.channel) {
            l.until_ready().await;
        }
        match ch.send(rec).await {
            Ok(d) => return (d.status, d.reason),
            Err(ChannelError::Permanent(e)) => {
                tracing::warn!(rec = %rec.id, channel = %rec.channel, "delivery refused: {e}");
                return (Status::Failed, Some("channel_refused".into()));
            }
            Err(ChannelError::Transient(e)) => {
                tracing::warn!(rec = %rec.id, channel = %rec.channel, attempt, "delivery failed, retrying: {e}");
                if attempt < RETRIES {
                    tokio::time::sleep(backoff).await;
                    backoff *= 4;
                }
            }
        }
    }
    (Status::Failed, Some("channel_error".into()))
}
