//! The outbox's deliverer. Queued recommendations are stored first (the batch commit), then
//! delivered from there: fresh ones are handed over in memory; a sweep picks up, at start and
//! every `channels.outbox_sweep_secs`, whatever is due (a crash, a full queue, another
//! instance's leftovers, a later attempt after a transient failure).
//!
//! Each channel is a lane of its own: its own queue, workers (`concurrency`) and rate limit
//! (governor), so one slow or broken gateway holds up only its own offers. Before a send the
//! deliverer claims the offer in the store and counts the attempt; the claim is what makes a
//! retry, a restart or another instance never send it twice, and the channel's idempotency key
//! (`channels::idempotency_key`) covers the one gap left: a crash after sending and before
//! recording. Transient errors are retried a few times at once, then later from the outbox
//! with exponential backoff and jitter; permanent ones are not retried.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use tokio::sync::{mpsc, Semaphore};

use super::{Channel, ChannelError, Delivery, Registry};
use crate::pipeline::{RecStore, Settled};
use crate::ports::{Recommendation, Status};

/// How the outbox delivers, sweeps and claims.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    pub sweep_every: Duration,
    /// How long a delivery claim holds; a crashed deliverer's claims lapse after it.
    pub claim_for: Duration,
    /// Expire what is past its expiry instead of delivering it (`engine.wall_clock_expiry`).
    pub expire_by_wall_clock: bool,
    /// Attempts before an offer is `failed`.
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Per channel: sends per second at most (0 = unlimited) and sends in flight at once.
    pub lanes: HashMap<String, LaneLimits>,
    pub default_lane: LaneLimits,
}

#[derive(Debug, Clone, Copy)]
pub struct LaneLimits {
    pub max_per_second: u32,
    pub concurrency: usize,
}

impl OutboxSettings {
    pub fn from_config(c: &crate::config::ChannelsConfig, expire_by_wall_clock: bool) -> Self {
        let default_lane = LaneLimits {
            max_per_second: c.max_per_second,
            concurrency: c.concurrency.max(1),
        };
        OutboxSettings {
            sweep_every: Duration::from_secs(c.outbox_sweep_secs.max(1)),
            claim_for: Duration::from_secs(c.claim_secs.max(1)),
            expire_by_wall_clock,
            max_attempts: c.max_attempts.max(1),
            retry_base: Duration::from_millis(c.retry_base_ms.max(1)),
            retry_max: Duration::from_secs(c.retry_max_secs.max(1)),
            lanes: c
                .delivery
                .iter()
                .map(|(name, d)| {
                    let limits = LaneLimits {
                        max_per_second: d.max_per_second.unwrap_or(default_lane.max_per_second),
                        concurrency: d.concurrency.unwrap_or(default_lane.concurrency).max(1),
                    };
                    (name.clone(), limits)
                })
                .collect(),
            default_lane,
        }
    }

    fn lane(&self, channel: &str) -> LaneLimits {
        self.lanes
            .get(channel)
            .copied()
            .unwrap_or(self.default_lane)
    }

    /// The wait before attempt `attempt + 1`: doubling from `retry_base`, capped, and spread
    /// by +-50 % so offers that failed together (an outage) do not all come back at once.
    fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .retry_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        doubled
            .min(self.retry_max)
            .mul_f64(rand::rng().random_range(0.5..1.5))
    }
}

/// Tries within one attempt, for blips (a dropped connection, a momentary 503).
const QUICK_TRIES: u32 = 3;
const QUICK_PAUSE: Duration = Duration::from_millis(100);
/// Offers waiting in memory per lane; more stay in the store for the next sweep.
const QUEUE: usize = 4096;

/// `n` sends a second, evenly: a burst of a fiftieth of a second's worth at most. Governor's
/// own default bursts a whole second's worth, so the first second would carry twice the
/// rate, which a gateway contracted at that rate answers with throttling.
fn paced(n: NonZeroU32) -> Quota {
    let burst = NonZeroU32::new(n.get() / 50).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(n).allow_burst(burst)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An offer handed to a lane, and whether an earlier send of it was interrupted.
struct Job {
    rec: Recommendation,
    interrupted: bool,
}

#[derive(Clone)]
pub struct Dispatcher {
    lanes: Arc<HashMap<String, mpsc::Sender<Job>>>,
    /// Ids handed over and not yet done, so a sweep does not queue them twice.
    pending: Arc<Mutex<HashSet<String>>>,
    store: RecStore,
    sends: Arc<super::SendCounts>,
}

/// What every lane shares.
struct Lane {
    channel: Arc<dyn Channel>,
    store: RecStore,
    settings: OutboxSettings,
    limiter: Option<DefaultDirectRateLimiter>,
    pending: Arc<Mutex<HashSet<String>>>,
    sends: Arc<super::SendCounts>,
}

impl Dispatcher {
    /// Starts one lane per channel, the receipt recorder and the outbox sweep. They end when
    /// every handle is dropped.
    pub fn start(
        registry: Registry,
        store: RecStore,
        settings: OutboxSettings,
    ) -> (Dispatcher, tokio::task::JoinHandle<()>) {
        let pending: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut senders = HashMap::new();
        let mut lanes = Vec::new();
        for name in registry.names() {
            let channel = registry.get(&name).expect("named channel").clone();
            let limits = settings.lane(&name);
            let (tx, rx) = mpsc::channel::<Job>(QUEUE);
            senders.insert(name, tx);
            let lane = Arc::new(Lane {
                channel,
                store: store.clone(),
                settings: settings.clone(),
                limiter: NonZeroU32::new(limits.max_per_second)
                    .map(|n| RateLimiter::direct(paced(n))),
                pending: pending.clone(),
                sends: registry.sends.clone(),
            });
            lanes.push(tokio::spawn(run_lane(lane, rx, limits.concurrency)));
        }
        if let Some(rx) = registry.take_receipts() {
            tokio::spawn(record_receipts(
                store.clone(),
                registry.opt_outs.clone(),
                rx,
            ));
        }
        let d = Dispatcher {
            lanes: Arc::new(senders),
            pending,
            store: store.clone(),
            sends: registry.sends.clone(),
        };
        let sweeper = Arc::downgrade(&d.lanes);
        let (sweep_pending, every) = (d.pending.clone(), settings.sweep_every);
        let sweep_sends = d.sends.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(d) = upgrade(&sweeper, &sweep_pending, &store, &sweep_sends) else {
                    break;
                };
                if let Err(e) = d.sweep().await {
                    tracing::warn!(error = %e, "outbox sweep failed; trying again later");
                }
            }
        });
        let handle = tokio::spawn(async move {
            for lane in lanes {
                let _ = lane.await;
            }
        });
        (d, handle)
    }

    /// Hands a freshly stored recommendation over for delivery, without waiting. False when
    /// its lane is full or stopped: it stays queued in the store for the next sweep.
    pub fn offer(&self, rec: Recommendation) -> bool {
        self.hand_over(Job {
            rec,
            interrupted: false,
        })
    }

    fn hand_over(&self, job: Job) -> bool {
        let id = job.rec.id.clone();
        let Some(lane) = self.lanes.get(&job.rec.channel) else {
            // Not a channel this instance has (a rule names one that was switched off).
            let store = self.store.clone();
            let sends = self.sends.clone();
            tokio::spawn(async move {
                match fail_unroutable(&store, &job.rec).await {
                    Ok(true) => sends.add(&job.rec.channel, Status::Failed.as_str()),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(rec = %job.rec.id, error = %e, "could not mark an offer for an unknown channel");
                    }
                }
            });
            return true;
        };
        if !self.pending.lock().expect("pending ids").insert(id.clone()) {
            return true;
        }
        if lane.try_send(job).is_err() {
            self.pending.lock().expect("pending ids").remove(&id);
            return false;
        }
        true
    }

    /// Queues, lane by lane, what the store holds as due and nobody is delivering.
    async fn sweep(&self) -> anyhow::Result<()> {
        for channel in self.lanes.keys() {
            let due = self.store.due(channel, now_ms(), QUEUE as i64).await?;
            for (rec, interrupted) in due {
                if !self.hand_over(Job { rec, interrupted }) {
                    break;
                }
            }
        }
        Ok(())
    }
}

impl crate::pipeline::Handoff for Dispatcher {
    fn offer(&self, rec: Recommendation) -> bool {
        Dispatcher::offer(self, rec)
    }
}

/// The sweep's handle must not keep the lanes alive once the engine is gone.
fn upgrade(
    lanes: &Weak<HashMap<String, mpsc::Sender<Job>>>,
    pending: &Arc<Mutex<HashSet<String>>>,
    store: &RecStore,
    sends: &Arc<super::SendCounts>,
) -> Option<Dispatcher> {
    Some(Dispatcher {
        lanes: lanes.upgrade()?,
        pending: pending.clone(),
        store: store.clone(),
        sends: sends.clone(),
    })
}

/// Marks an offer for a channel this instance lacks as failed; true if this call did.
async fn fail_unroutable(store: &RecStore, rec: &Recommendation) -> anyhow::Result<bool> {
    let now = now_ms();
    if store.claim(&rec.id, now, now + 60_000).await?.is_some() {
        store
            .set_status(&rec.id, Status::Failed, Some("channel_unavailable"))
            .await?;
        return Ok(true);
    }
    Ok(false)
}

/// Offers claimed in one statement at most; more wait for the next round.
const CLAIM_BATCH: usize = 256;
/// Outcomes written in one transaction at most.
const SETTLE_BATCH: usize = 512;

/// One channel's workers: at most `concurrency` sends at once, in the order handed over.
/// Offers are claimed a round at a time in one statement and their outcomes go to a recorder
/// that writes them in batches, so under load the store sees a few writes per round, not
/// two per offer; when idle a round is one offer and nothing waits for company.
///
/// How far a round reaches depends on what a crash would leave. A claim counts an attempt,
/// and a claim that lapses without an outcome reads as a send that may have happened. A
/// channel that recognises repeats (its idempotency key) may claim ahead of its free workers:
/// after a crash the offers claimed and not yet sent are simply sent, under the same key. One
/// that cannot (SMPP) claims only what it sends at once, so a crash leaves as `unknown` no
/// more than the sends that were really under way.
async fn run_lane(lane: Arc<Lane>, mut rx: mpsc::Receiver<Job>, concurrency: usize) {
    let slots = Arc::new(Semaphore::new(concurrency));
    let (done_tx, done_rx) = mpsc::unbounded_channel::<Settled>();
    let recorder = tokio::spawn(record_outcomes(lane.clone(), done_rx));
    let ahead = lane.claim_ahead();
    let mut carried: Option<Job> = None;
    loop {
        let job = match carried.take() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => break,
            },
        };
        if ahead > 0 {
            let mut round = vec![job];
            while round.len() < ahead {
                let Ok(job) = rx.try_recv() else { break };
                round.push(job);
            }
            for (job, attempt) in lane.claim(round).await {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                if let Some(l) = &lane.limiter {
                    l.until_ready().await;
                }
                lane.start(job, attempt, slot, &done_tx);
            }
            continue;
        }
        let Some(mut free) = gather(&slots, gather_for(concurrency, rx.len()), GATHER).await else {
            break;
        };
        if let Some(l) = &lane.limiter {
            // Wait for the rate before claiming, so a claim covers only the send itself.
            l.until_ready().await;
        }
        let mut round = vec![(job, free.pop().expect("gather holds one slot at least"))];
        while round.len() < CLAIM_BATCH {
            let Ok(job) = rx.try_recv() else { break };
            let Some(slot) = free
                .pop()
                .or_else(|| slots.clone().try_acquire_owned().ok())
            else {
                carried = Some(job);
                break;
            };
            if lane.limiter.as_ref().is_some_and(|l| l.check().is_err()) {
                carried = Some(job);
                break;
            }
            round.push((job, slot));
        }
        let (jobs, mut slots_of): (Vec<Job>, Vec<_>) = round.into_iter().unzip();
        let claimed = lane.claim(jobs).await;
        for ((job, attempt), slot) in claimed.into_iter().zip(slots_of.drain(..)) {
            lane.start(job, attempt, slot, &done_tx);
        }
    }
    // Let sends in flight finish, then their outcomes be written, before the lane reports
    // itself stopped.
    let _ = slots.acquire_many(concurrency as u32).await;
    drop(done_tx);
    let _ = recorder.await;
}

/// How long a round of a lane that claims only free slots waits for more of them while
/// offers queue behind it. Sends free their slots one by one; a claim per freed slot made
/// every send pay a statement of its own. Waiting this long for half the window shares a
/// claim among several sends and costs a provider that answers in milliseconds little.
const GATHER: Duration = Duration::from_millis(1);

/// Slots worth waiting for: half the window while more offers wait than that, else one.
fn gather_for(concurrency: usize, waiting: usize) -> usize {
    (concurrency / 2).clamp(1, waiting + 1)
}

/// One free slot, then up to `want` in all as they free `within` (the lane: [`GATHER`]);
/// `None` once the lane's semaphore is closed.
async fn gather(
    slots: &Arc<Semaphore>,
    want: usize,
    within: Duration,
) -> Option<Vec<tokio::sync::OwnedSemaphorePermit>> {
    let mut held = vec![slots.clone().acquire_owned().await.ok()?];
    let until = tokio::time::Instant::now() + within;
    while held.len() < want {
        match tokio::time::timeout_at(until, slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => held.push(slot),
            _ => break,
        }
    }
    Some(held)
}

/// Writes outcomes as they come, all that are waiting in one transaction, then lets the
/// sweep see their offers again. A batch that cannot be written is tried again a few times;
/// after that its claims lapse and the sweep takes the offers up as interrupted sends.
async fn record_outcomes(lane: Arc<Lane>, mut rx: mpsc::UnboundedReceiver<Settled>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < SETTLE_BATCH {
            match rx.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        let mut tries = 0;
        while let Err(e) = lane.store.settle(&batch).await {
            tries += 1;
            if tries >= QUICK_TRIES {
                tracing::error!(channel = %lane.channel.name(), offers = batch.len(), error = %e, "delivery bookkeeping failed; the outbox sweep will retry");
                break;
            }
            tokio::time::sleep(QUICK_PAUSE * tries).await;
        }
        let mut pending = lane.pending.lock().expect("pending ids");
        for o in &batch {
            pending.remove(&o.rec.id);
        }
    }
}

impl Lane {
    /// Offers a round may claim ahead of free workers (0: only as many as are free). At
    /// most a batch, and no more than the rate sends in a quarter of the claim, so none
    /// waits out its claim before its turn.
    fn claim_ahead(&self) -> usize {
        if !self.channel.idempotent() {
            return 0;
        }
        let per_second = self.limiter_rate();
        let in_a_quarter = match per_second {
            0 => CLAIM_BATCH,
            n => (self.settings.claim_for.as_secs_f64() / 4.0 * n as f64) as usize,
        };
        in_a_quarter.clamp(1, CLAIM_BATCH)
    }

    fn limiter_rate(&self) -> u32 {
        self.settings.lane(self.channel.name()).max_per_second
    }

    /// Claims a round of offers in one statement: those this lane may now deliver, each
    /// with its attempt number, in the order handed over. What is not claimed (delivered,
    /// expired or being delivered elsewhere) is dropped here.
    async fn claim(&self, round: Vec<Job>) -> Vec<(Job, u32)> {
        let now = now_ms();
        let lease = self.settings.claim_for.as_millis() as i64;
        let ids: Vec<&str> = round.iter().map(|j| j.rec.id.as_str()).collect();
        // Fresh offers are queued; only the sweep hands over deferred ones that are due.
        let deferred = round.iter().any(|j| j.rec.status == Status::Deferred);
        let claim = self
            .store
            .claim_many(&ids, now, now + lease, deferred)
            .await;
        let claimed = match claim {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(channel = %self.channel.name(), offers = ids.len(), error = %e, "claiming for delivery failed; the outbox sweep will retry");
                Vec::new()
            }
        };
        let mut claimed: HashMap<String, u32> = claimed.into_iter().collect();
        let mut out = Vec::with_capacity(claimed.len());
        let mut pending = self.pending.lock().expect("pending ids");
        for job in round {
            match claimed.remove(&job.rec.id) {
                Some(attempt) => out.push((job, attempt)),
                None => {
                    pending.remove(&job.rec.id);
                }
            }
        }
        out
    }

    /// Delivers one claimed offer on its own worker, which holds `slot` until the outcome
    /// is handed to the recorder.
    fn start(
        self: &Arc<Self>,
        job: Job,
        attempt: u32,
        slot: tokio::sync::OwnedSemaphorePermit,
        done: &mpsc::UnboundedSender<Settled>,
    ) {
        let (lane, done) = (self.clone(), done.clone());
        tokio::spawn(async move {
            let outcome = lane.deliver(job, attempt, now_ms()).await;
            let counted = match outcome.retry_at {
                Some(_) => "retrying",
                None => outcome.rec.status.as_str(),
            };
            lane.sends.add(&outcome.rec.channel, counted);
            // Only a closed recorder refuses, and it closes after every worker is done.
            let _ = done.send(outcome);
            drop(slot);
        });
    }

    /// Expires, delivers or reschedules one claimed offer; the outcome to record. What was
    /// handed over is what is stored: a revision only touches offers still waiting in their
    /// window (`deferred`), and those a claim does not take.
    async fn deliver(&self, job: Job, attempt: u32, now: i64) -> Settled {
        let Job {
            mut rec,
            interrupted,
        } = job;
        rec.status = Status::Queued;
        fn settle(rec: &mut Recommendation, status: Status, reason: &str) {
            rec.status = status;
            rec.reason = Some(reason.to_string());
        }
        if self.settings.expire_by_wall_clock && rec.expires_at.timestamp_millis() <= now {
            settle(&mut rec, Status::Expired, "expired_undelivered");
            return Settled::done(rec, None);
        }
        if interrupted && !self.channel.idempotent() {
            // A deliverer died mid-send: the provider may have the message, and it cannot
            // tell a repeat from a new one. Someone decides; Kairos does not resend blindly.
            settle(&mut rec, Status::Unknown, "interrupted_send");
            return Settled::done(rec, None);
        }
        match self.send(&rec).await {
            Ok(d) => {
                rec.status = d.status;
                rec.reason = d.reason;
                Settled::done(rec, d.provider_id)
            }
            Err(ChannelError::Permanent(e)) => {
                tracing::warn!(rec = %rec.id, channel = %rec.channel, "delivery refused: {e}");
                settle(&mut rec, Status::Failed, "channel_refused");
                Settled::done(rec, None)
            }
            Err(ChannelError::Transient(e)) if attempt >= self.settings.max_attempts => {
                tracing::warn!(rec = %rec.id, channel = %rec.channel, attempt, "delivery failed for good: {e}");
                settle(&mut rec, Status::Failed, "channel_error");
                Settled::done(rec, None)
            }
            Err(ChannelError::Transient(e)) => {
                let wait = self.settings.backoff(attempt);
                tracing::info!(rec = %rec.id, channel = %rec.channel, attempt, ?wait, "delivery failed, trying again later: {e}");
                rec.reason = Some("retrying".into());
                Settled {
                    rec,
                    provider_id: None,
                    retry_at: Some(now_ms() + wait.as_millis() as i64),
                }
            }
        }
    }

    /// One attempt: a few quick tries while the error is transient.
    async fn send(&self, rec: &Recommendation) -> Result<Delivery, ChannelError> {
        let mut pause = QUICK_PAUSE;
        let mut tries = 1;
        // A send must end within the claim: past it another deliverer may take the offer.
        let limit = self.settings.claim_for.mul_f64(0.75);
        loop {
            let outcome = match tokio::time::timeout(limit, self.channel.send(rec)).await {
                Ok(outcome) => outcome,
                // A provider that hangs holds up its lane; one that cannot tell repeats may
                // have the message, so it is not sent again blindly.
                Err(_) if !self.channel.idempotent() => Ok(Delivery {
                    status: Status::Unknown,
                    reason: Some("send_timeout".into()),
                    provider_id: None,
                }),
                Err(_) => Err(ChannelError::Transient(format!(
                    "no answer within {limit:?}"
                ))),
            };
            match outcome {
                Err(ChannelError::Transient(e)) if tries < QUICK_TRIES => {
                    tracing::debug!(rec = %rec.id, channel = %rec.channel, tries, "send failed, retrying at once: {e}");
                    let jittered = pause.mul_f64(rand::rng().random_range(0.5..1.5));
                    tokio::time::sleep(jittered).await;
                    pause *= 4;
                    tries += 1;
                    if let Some(l) = &self.limiter {
                        l.until_ready().await;
                    }
                }
                outcome => return outcome,
            }
        }
    }
}

/// Writes what providers report later onto the offers they name: delivery receipts by the
/// provider's id, replies onto the offer they answer.
async fn record_receipts(
    store: RecStore,
    opt_outs: super::replies::OptOutsSlot,
    mut rx: mpsc::UnboundedReceiver<super::Inbound>,
) {
    while let Some(inbound) = rx.recv().await {
        let r = match inbound {
            super::Inbound::Receipt(r) => r,
            super::Inbound::Reply(reply) => {
                let o = opt_outs.get().map(|o| &**o);
                if let Err(e) = super::replies::answer(&store, o, &reply).await {
                    tracing::error!(channel = %reply.channel, from = %reply.from, error = %e, "reply not recorded");
                }
                continue;
            }
        };
        // Not found yet is usual: an SMSC may send the receipt before the send's outcome
        // (with the provider's id) is written. Looked for again a few times, off this loop.
        match apply_receipt(&store, &r).await {
            Ok(true) => {}
            Ok(false) => {
                let store = store.clone();
                tokio::spawn(async move {
                    for _ in 0..RECEIPT_RETRIES {
                        tokio::time::sleep(RECEIPT_WAIT).await;
                        match apply_receipt(&store, &r).await {
                            Ok(true) => return,
                            Ok(false) => {}
                            Err(e) => {
                                tracing::error!(channel = %r.channel, provider_id = %r.provider_id, error = %e, "receipt not recorded");
                                return;
                            }
                        }
                    }
                    tracing::warn!(channel = %r.channel, provider_id = %r.provider_id, "receipt for a message we do not know; ignored");
                });
            }
            Err(e) => {
                tracing::error!(channel = %r.channel, provider_id = %r.provider_id, error = %e, "receipt not recorded");
            }
        }
    }
}

const RECEIPT_RETRIES: u32 = 20;
const RECEIPT_WAIT: Duration = Duration::from_millis(250);

/// Writes one receipt onto its offer; false when no offer has that provider id (yet).
async fn apply_receipt(store: &RecStore, r: &super::Receipt) -> Result<bool, sqlx::Error> {
    let Some(rec) = store.by_provider_id(&r.channel, &r.provider_id).await? else {
        return Ok(false);
    };
    // Answers are final: a late receipt must not overwrite them.
    if !matches!(
        rec.status,
        Status::Accepted | Status::Declined | Status::Expired
    ) {
        store
            .set_status(&rec.id, r.status, r.reason.as_deref())
            .await?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OutboxSettings {
        let mut c = crate::config::ChannelsConfig {
            retry_base_ms: 1_000,
            retry_max_secs: 30,
            max_per_second: 10,
            ..Default::default()
        };
        c.delivery.insert(
            "sms".into(),
            crate::config::ChannelDelivery {
                max_per_second: Some(500),
                concurrency: None,
            },
        );
        OutboxSettings::from_config(&c, true)
    }

    #[test]
    fn a_lane_paces_its_rate_without_a_second_s_burst() {
        let q = paced(NonZeroU32::new(500).unwrap());
        assert_eq!(q.burst_size().get(), 10);
        assert_eq!(q.replenish_interval(), Duration::from_millis(2));
        let q = paced(NonZeroU32::new(5).unwrap());
        assert_eq!(q.burst_size().get(), 1);
        // Right after start at most the burst goes at once.
        let l = RateLimiter::direct(paced(NonZeroU32::new(500).unwrap()));
        let at_once = (0..100).filter(|_| l.check().is_ok()).count();
        assert_eq!(at_once, 10);
    }

    #[test]
    fn a_round_waits_for_half_the_window_only_while_offers_queue() {
        assert_eq!(gather_for(10, 0), 1, "alone, an offer goes at once");
        assert_eq!(gather_for(10, 2), 3);
        assert_eq!(gather_for(10, 500), 5);
        assert_eq!(gather_for(1, 500), 1);
    }

    #[tokio::test]
    async fn gathering_takes_the_slots_that_free_and_gives_up_after_a_moment() {
        let slots = Arc::new(Semaphore::new(4));
        let busy = slots.clone().acquire_many_owned(3).await.unwrap();
        let freeing = tokio::spawn(async move {
            let mut busy = busy;
            tokio::time::sleep(Duration::from_micros(100)).await;
            drop(busy.split(1));
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(busy);
        });
        let started = std::time::Instant::now();
        // A window far longer than the lane's, so a loaded machine that runs the freeing
        // task late still frees in time; the busy ones free long after it.
        let held = gather(&slots, 4, Duration::from_millis(300)).await.unwrap();
        assert_eq!(held.len(), 2, "the free slot and the one freed in time");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "it does not wait out the busy ones"
        );
        freeing.abort();
        let closed = Arc::new(Semaphore::new(0));
        closed.close();
        assert!(
            gather(&closed, 1, GATHER).await.is_none(),
            "a stopped lane gathers nothing"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let s = settings();
        for attempt in 1..=12 {
            let nominal = (1_000u64 << (attempt - 1)).min(30_000) as f64;
            for _ in 0..50 {
                let ms = s.backoff(attempt).as_millis() as f64;
                assert!(
                    ms >= nominal * 0.5 && ms <= nominal * 1.5,
                    "attempt {attempt}: {ms} ms vs nominal {nominal}"
                );
            }
        }
    }

    #[test]
    fn lanes_take_their_own_limits_or_the_defaults() {
        let s = settings();
        assert_eq!(s.lane("sms").max_per_second, 500);
        assert_eq!(s.lane("sms").concurrency, 4);
        assert_eq!(s.lane("portal").max_per_second, 10);
    }
}
