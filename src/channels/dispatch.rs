//! The outbox's deliverer: queued recommendations are stored first (the batch commit), then
//! delivered from there. Fresh ones are handed over in memory; a sweep picks up, at start and
//! every `channels.outbox_sweep_secs`, whatever is still queued (a crash, a full queue, another
//! instance's leftovers) and expires what is past its expiry. A delivery claim in the store
//! makes one deliverer at a time send a recommendation; a dead one's claim lapses.
//! Rate-limited per channel, retried with backoff on transient errors, status written back.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;

use super::{ChannelError, Registry};
use crate::pipeline::RecStore;
use crate::ports::{Recommendation, Status};

#[derive(Clone)]
pub struct Dispatcher {
    tx: mpsc::Sender<Recommendation>,
    /// Ids handed over and not yet done, so a sweep does not queue them twice.
    pending: Arc<Mutex<HashSet<String>>>,
}

/// How the outbox is swept and claimed.
#[derive(Debug, Clone, Copy)]
pub struct OutboxSettings {
    pub max_per_second: u32,
    pub sweep_every: Duration,
    /// How long a delivery claim holds; a crashed deliverer's claims lapse after it.
    pub claim_for: Duration,
    /// Expire what is past its expiry instead of delivering it (`engine.wall_clock_expiry`).
    pub expire_by_wall_clock: bool,
}

const RETRIES: u32 = 3;
const QUEUE: usize = 4096;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Dispatcher {
    /// Starts the delivery task and the outbox sweep. They end when every handle is dropped.
    pub fn start(
        registry: Registry,
        store: RecStore,
        settings: OutboxSettings,
    ) -> (Dispatcher, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Recommendation>(QUEUE);
        let limiters: HashMap<String, Arc<DefaultDirectRateLimiter>> =
            match NonZeroU32::new(settings.max_per_second) {
                Some(n) => registry
                    .names()
                    .into_iter()
                    .map(|c| (c, Arc::new(RateLimiter::direct(Quota::per_second(n)))))
                    .collect(),
                None => HashMap::new(),
            };
        let d = Dispatcher {
            tx,
            pending: Arc::default(),
        };
        if let Some(rx) = registry.take_receipts() {
            tokio::spawn(record_receipts(store.clone(), rx));
        }
        let pending = d.pending.clone();
        let deliver_store = store.clone();
        let handle = tokio::spawn(async move {
            while let Some(rec) = rx.recv().await {
                if let Err(e) =
                    deliver_once(&registry, &limiters, &deliver_store, &rec, settings).await
                {
                    tracing::error!(rec = %rec.id, error = %e, "delivery bookkeeping failed; the outbox sweep will retry");
                }
                pending.lock().expect("pending ids").remove(&rec.id);
            }
        });
        let sweeper = d.downgrade();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(settings.sweep_every);
            loop {
                every.tick().await;
                let Some(d) = sweeper.upgrade() else { break };
                if let Err(e) = d.sweep(&store).await {
                    tracing::warn!(error = %e, "outbox sweep failed; trying again later");
                }
            }
        });
        (d, handle)
    }

    /// Hands a freshly stored recommendation over for delivery, without waiting. False when
    /// the queue is full or stopped: it stays queued in the store for the next sweep.
    pub fn offer(&self, rec: Recommendation) -> bool {
        let id = rec.id.clone();
        if !self.pending.lock().expect("pending ids").insert(id.clone()) {
            return true;
        }
        if self.tx.try_send(rec).is_err() {
            self.pending.lock().expect("pending ids").remove(&id);
            return false;
        }
        true
    }

    /// Queues what the store holds as queued and nobody is delivering.
    async fn sweep(&self, store: &RecStore) -> anyhow::Result<()> {
        let batch = store.unclaimed_queued(now_ms(), QUEUE as i64).await?;
        for rec in batch {
            if !self.offer(rec) {
                break;
            }
        }
        Ok(())
    }

    fn downgrade(&self) -> WeakDispatcher {
        WeakDispatcher {
            tx: self.tx.downgrade(),
            pending: Arc::downgrade(&self.pending),
        }
    }
}

/// The sweep's handle: it must not keep the deliverer alive once the engine is gone.
struct WeakDispatcher {
    tx: mpsc::WeakSender<Recommendation>,
    pending: std::sync::Weak<Mutex<HashSet<String>>>,
}

impl WeakDispatcher {
    fn upgrade(&self) -> Option<Dispatcher> {
        Some(Dispatcher {
            tx: self.tx.upgrade()?,
            pending: self.pending.upgrade()?,
        })
    }
}

/// Claims, then expires or delivers one recommendation and records the outcome.
async fn deliver_once(
    registry: &Registry,
    limiters: &HashMap<String, Arc<DefaultDirectRateLimiter>>,
    store: &RecStore,
    rec: &Recommendation,
    settings: OutboxSettings,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let now = now_ms();
    let lease = settings.claim_for.as_millis() as i64;
    if !store
        .claim(&rec.id, now, now + lease)
        .await
        .context("claiming for delivery")?
    {
        return Ok(()); // delivered, expired or being delivered elsewhere
    }
    if settings.expire_by_wall_clock && rec.expires_at.timestamp_millis() <= now {
        store
            .set_status(&rec.id, Status::Expired, Some("expired_undelivered"))
            .await
            .context("expiring")?;
        return Ok(());
    }
    let d = deliver(registry, limiters, rec).await;
    store
        .set_delivery(
            &rec.id,
            d.status,
            d.reason.as_deref(),
            d.provider_id.as_deref(),
        )
        .await
        .context("recording the delivery status")?;
    Ok(())
}

/// Writes what providers report later (delivery receipts) onto the offers they name.
async fn record_receipts(store: RecStore, mut rx: mpsc::UnboundedReceiver<super::Receipt>) {
    while let Some(r) = rx.recv().await {
        let found = store.by_provider_id(&r.channel, &r.provider_id).await;
        let outcome = match found {
            Ok(Some(rec)) => store
                .set_status(&rec.id, r.status, r.reason.as_deref())
                .await
                .map(|_| ()),
            Ok(None) => {
                tracing::warn!(channel = %r.channel, provider_id = %r.provider_id, "receipt for a message we do not know; ignored");
                Ok(())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            tracing::error!(channel = %r.channel, provider_id = %r.provider_id, error = %e, "receipt not recorded");
        }
    }
}

fn failed(reason: &str) -> super::Delivery {
    super::Delivery {
        status: Status::Failed,
        reason: Some(reason.into()),
        provider_id: None,
    }
}

async fn deliver(
    registry: &Registry,
    limiters: &HashMap<String, Arc<DefaultDirectRateLimiter>>,
    rec: &Recommendation,
) -> super::Delivery {
    let Some(ch) = registry.get(&rec.channel) else {
        return failed("channel_unavailable");
    };
    let mut backoff = Duration::from_millis(100);
    for attempt in 1..=RETRIES {
        if let Some(l) = limiters.get(&rec.channel) {
            l.until_ready().await;
        }
        match ch.send(rec).await {
            Ok(d) => return d,
            Err(ChannelError::Permanent(e)) => {
                tracing::warn!(rec = %rec.id, channel = %rec.channel, "delivery refused: {e}");
                return failed("channel_refused");
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
    failed("channel_error")
}
