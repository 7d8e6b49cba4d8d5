//! Sources -> partitioned workers -> state + decisions persisted -> channels.
//!
//! Subscribers are partitioned over workers by msisdn (as Kafka partitions would be), so a
//! worker owns its subscribers' state outright. A worker takes a batch (events of many
//! requests: group commit), loads what it lacks, runs the engine, commits state, dedup marks,
//! decisions and dead letters in one transaction, and only then acknowledges and dispatches.
//! An acknowledgement therefore means durable: a crash after it loses nothing, a crash before
//! it leaves the client to resend, and a resent event is recognised and changes nothing.

mod commit;
pub mod counts;
mod deadletter;
pub mod learn;
mod metrics;
pub mod rank;
mod recs;
pub mod tap;
mod worker;

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};

pub use deadletter::{DeadLetter, DeadLetters};
pub use metrics::{DecisionCounts, Metrics, MetricsSnapshot, TypeCounts, TYPE_SLOTS};
pub use recs::{DeliveryRecord, RecQuery, RecStore, Settled};
pub use tap::{EventTap, Tap};

use crate::decision::Policy;
use crate::engine::MatchSettings;
use crate::event::{Event, Msisdn};
use crate::ports::{
    EventSink, OfferBook, OfferRequest, PortError, Profile, ProfileSource, Recommendation, Status,
};
use crate::rules::RuleSet;
use crate::state::StateStore;

/// What a rule version installs: its rules and the policy built with its contact settings.
pub struct Loaded {
    pub rules: Arc<RuleSet>,
    pub policy: Arc<Policy>,
}

impl Loaded {
    pub fn new(rules: RuleSet, policy: Policy) -> ArcSwap<Loaded> {
        ArcSwap::from_pointee(Loaded {
            rules: Arc::new(rules),
            policy: Arc::new(policy),
        })
    }
}

/// Frees a swapped-out pair on a thread of its own once nothing else holds it. Whoever lets
/// go of it last frees every script of the set (some 30 ms for 1,000 rules): without this
/// that is the worker whose batch was in flight during the swap, and its next events wait.
pub fn retire(old: Arc<Loaded>) {
    /// How long a holder (a batch in flight, a dry run) is waited for before the pair is
    /// left to whoever holds it last.
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);
    const POLL: std::time::Duration = std::time::Duration::from_millis(10);
    let reaper = move || {
        let started = std::time::Instant::now();
        let mut old = old;
        let loaded = loop {
            match Arc::try_unwrap(old) {
                Ok(l) => break l,
                Err(again) if started.elapsed() < PATIENCE => {
                    old = again;
                    std::thread::sleep(POLL);
                }
                Err(_) => return,
            }
        };
        // Dry runs and the console hold the rules alone for a moment.
        while Arc::strong_count(&loaded.rules) > 1 && started.elapsed() < PATIENCE {
            std::thread::sleep(POLL);
        }
        drop(loaded);
    };
    // Should no thread be had, the caller frees it (as before).
    let _ = std::thread::Builder::new()
        .name("kairos-retire".into())
        .spawn(reaper);
}

/// Everything workers share.
pub struct Deps {
    /// The rules and the decision policy they run under, swapped together by a publish so
    /// no batch sees new rules with the old policy.
    pub loaded: ArcSwap<Loaded>,
    pub settings: MatchSettings,
    pub state: Arc<dyn StateStore>,
    pub profiles: Arc<dyn ProfileSource>,
    pub recs: RecStore,
    pub dead_letters: DeadLetters,
    /// Where queued offers go for delivery once committed (the outbox's deliverer).
    pub dispatcher: Option<Arc<dyn Handoff>>,
    pub metrics: Arc<Metrics>,
    pub default_profile: Arc<Profile>,
    pub batch_size: usize,
    /// The database the batch commit writes decisions, dead letters (and embedded state) to.
    pub db: crate::store::Db,
    /// Subscribers each worker keeps in memory at most; the least recently used are evicted
    /// (their state is saved) and loaded again when they next have an event.
    pub max_cached_per_worker: usize,
    /// How long a submit waits for its events to be durable before it answers unavailable.
    pub ack_timeout: std::time::Duration,
    /// Where every decision is published (Kafka mode), before the batch is committed.
    pub decision_log: Option<Arc<dyn DecisionLog>>,
    /// Subscribers are owned by whoever consumes their events' partition (Kafka mode): state
    /// is saved only for subscribers this instance has events for.
    pub events_own: bool,
    /// Open pages (agent desk, portal) on this instance: where a subscriber is now.
    pub reachable: Option<Arc<dyn crate::ports::Reachability>>,
}

/// Takes committed offers for delivery (`channels::Dispatcher`). A trait, so that the
/// pipeline does not import the channels, which read and settle the offers it stores
/// (`RecStore`): the dependency points one way only. Called once per queued offer, after the
/// batch's commit, never per event.
pub trait Handoff: Send + Sync {
    /// Hands a freshly stored offer over without waiting. False when the deliverer takes no
    /// more now: the offer stays queued in the store for the outbox's sweep.
    fn offer(&self, rec: Recommendation) -> bool;
}

/// A stream every decision goes out on (sent or suppressed, with its reason). Published
/// before the batch's commit, so a crash before the commit publishes again on redelivery:
/// at least once, each decision under its stable id.
#[async_trait::async_trait]
pub trait DecisionLog: Send + Sync {
    async fn publish(&self, recs: &[Recommendation]) -> anyhow::Result<()>;
}

/// What became of the events of one submission, once they are durable.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Report {
    /// Events the engine ran (their decisions are stored).
    pub processed: usize,
    /// Events already seen: they changed nothing.
    pub duplicates: usize,
    /// Events too far behind the subscriber's newest one: kept as dead letters.
    pub late: usize,
    /// Events of a type outside the contract that no rule listens to: kept as dead letters.
    pub unknown_type: usize,
    /// Events written to the event log (Kafka mode): the instance that owns each one's
    /// partition processes it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub logged: usize,
    /// The decisions made, when asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Recommendation>,
    /// The events that changed nothing, and why, for answers per event (ingest shows them).
    #[serde(skip)]
    pub skipped: Vec<Skipped>,
}

/// An event the engine took but did not run: `duplicate`, `late` or `unknown_type`.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub id: String,
    pub msisdn: Msisdn,
    pub result: &'static str,
    pub reason: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Report {
    fn merge(&mut self, o: Report) {
        self.processed += o.processed;
        self.duplicates += o.duplicates;
        self.late += o.late;
        self.unknown_type += o.unknown_type;
        self.logged += o.logged;
        self.decisions.extend(o.decisions);
        self.skipped.extend(o.skipped);
    }
}

/// Answered after the batch holding a submission's events is committed.
pub(crate) struct Ack {
    tx: oneshot::Sender<Report>,
    decisions: bool,
}

pub(crate) enum Work {
    /// One submission's events for one worker, in order.
    Events(Vec<Arc<Event>>, Option<Ack>),
    Propose(OfferRequest, oneshot::Sender<Vec<Recommendation>>),
    Usage(Msisdn, oneshot::Sender<serde_json::Value>),
    /// Live offers of one subscriber, to run through the decision stages again now.
    Recheck(
        Msisdn,
        Vec<Recommendation>,
        oneshot::Sender<Vec<Recommendation>>,
    ),
    /// Answered once everything queued before it is processed and persisted.
    Barrier(oneshot::Sender<()>),
    /// Like a barrier, then forgets every cached subscriber (their state is stored): the
    /// next event of each loads what the shared store holds.
    DropCache(oneshot::Sender<()>),
}

/// Events handed to workers, in order; resolves when all of them are durable.
pub struct Pending {
    waits: Vec<oneshot::Receiver<Report>>,
    report: Report,
}

impl Pending {
    /// The report once every part is committed, without waiting; `None` while some are not.
    pub fn try_done(&mut self) -> Option<Result<Report, PortError>> {
        while let Some(w) = self.waits.last_mut() {
            match w.try_recv() {
                Ok(r) => {
                    self.report.merge(r);
                    self.waits.pop();
                }
                Err(oneshot::error::TryRecvError::Empty) => return None,
                Err(oneshot::error::TryRecvError::Closed) => return Some(Err(PortError::Closed)),
            }
        }
        Some(Ok(std::mem::take(&mut self.report)))
    }

    /// Waits until every part is committed.
    pub async fn done(mut self) -> Result<Report, PortError> {
        for w in std::mem::take(&mut self.waits) {
            self.report.merge(w.await.map_err(|_| PortError::Closed)?);
        }
        Ok(self.report)
    }
}

#[derive(Clone)]
pub struct Pipeline {
    workers: Arc<Vec<mpsc::Sender<Work>>>,
    pub deps: Arc<Deps>,
    /// Where samples of the events coming in are taken (captures), when one is running.
    tap: Arc<Tap>,
    /// Per-rule counts since start, through rule reloads (`/metrics`).
    lifetime: Arc<counts::Lifetime>,
}

impl Pipeline {
    pub fn start(
        deps: Deps,
        workers: usize,
        queue_depth: usize,
    ) -> (Pipeline, Vec<tokio::task::JoinHandle<()>>) {
        let deps = Arc::new(deps);
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for i in 0..workers.max(1) {
            let (tx, rx) = mpsc::channel(queue_depth.max(16));
            senders.push(tx);
            handles.push(tokio::spawn(worker::run(i, rx, deps.clone())));
        }
        (
            Pipeline {
                workers: Arc::new(senders),
                deps,
                tap: Arc::default(),
                lifetime: Arc::default(),
            },
            handles,
        )
    }

    /// The tap on the events coming in (see [`tap`]).
    pub fn tap(&self) -> &Tap {
        &self.tap
    }

    /// Worker shards.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    fn worker_for(&self, m: Msisdn) -> &mpsc::Sender<Work> {
        &self.workers[m.shard(self.workers.len())]
    }

    /// Waits until every worker has processed and persisted what was queued before.
    pub async fn flush(&self) -> Result<(), PortError> {
        self.every_worker(Work::Barrier).await
    }

    /// Sends each worker a message that answers once what was queued before it is durable,
    /// and waits for all the answers.
    async fn every_worker(&self, work: fn(oneshot::Sender<()>) -> Work) -> Result<(), PortError> {
        let mut waits = Vec::new();
        for w in self.workers.iter() {
            let (tx, rx) = oneshot::channel();
            w.send(work(tx)).await.map_err(|_| PortError::Closed)?;
            waits.push(rx);
        }
        for w in waits {
            w.await.map_err(|_| PortError::Closed)?;
        }
        Ok(())
    }

    /// Swaps in a new rule set and its policy in one step; batches in flight finish on the
    /// old pair (their rules' counts still reach [`Pipeline::rule_lifetimes`]).
    pub fn swap(&self, rules: RuleSet, policy: Policy) {
        let new = Arc::new(Loaded {
            rules: Arc::new(rules),
            policy: Arc::new(policy),
        });
        retire(self.lifetime.swap(&self.deps.loaded, new));
    }

    /// Every rule's counts since this process started, through reloads, by rule id (a rule
    /// no longer running keeps its last counts).
    pub fn rule_lifetimes(&self) -> std::collections::BTreeMap<String, counts::Reading> {
        self.lifetime.read(&self.deps.loaded)
    }

    pub fn rules(&self) -> Arc<RuleSet> {
        self.deps.rules()
    }

    pub fn policy(&self) -> Arc<Policy> {
        self.deps.policy()
    }
}

impl Deps {
    pub fn rules(&self) -> Arc<RuleSet> {
        self.loaded.load().rules.clone()
    }

    pub fn policy(&self) -> Arc<Policy> {
        self.loaded.load().policy.clone()
    }
}

impl Pipeline {
    /// Hands events to their workers and waits until they are durable: processed, and their
    /// state, dedup marks, decisions and dead letters committed. With `decisions`, the report
    /// carries the decisions made. Gives up with [`PortError::Unavailable`] after the ack
    /// timeout (a store is down): the events may still be processed, and a resend is safe.
    pub async fn ingest(&self, events: Vec<Event>, decisions: bool) -> Result<Report, PortError> {
        let pending = self.enqueue(events, decisions).await?;
        match tokio::time::timeout(self.deps.ack_timeout, pending.done()).await {
            Ok(r) => r,
            Err(_) => Err(PortError::Unavailable(format!(
                "events not yet durable after {:?} (a store is unavailable); \
                 they may still be processed, and resending them is safe",
                self.deps.ack_timeout
            ))),
        }
    }

    /// Hands events to their workers in order (waiting while their queues are full) and
    /// returns what resolves once they are durable.
    pub async fn enqueue(&self, events: Vec<Event>, decisions: bool) -> Result<Pending, PortError> {
        let n = self.workers.len();
        self.deps.metrics.add_in(events.len() as u64);
        let mut parts: Vec<Vec<Arc<Event>>> = vec![Vec::new(); n];
        let mut by_type = [0u64; TYPE_SLOTS];
        // Read once per submission: with no capture running this is the tap's whole cost.
        let tap = self.tap.active();
        for e in events {
            by_type[TypeCounts::slot(&e.kind)] += 1;
            let e = Arc::new(e);
            if let Some(t) = tap {
                t.offer(&e);
            }
            parts[e.msisdn.shard(n)].push(e);
        }
        self.deps.metrics.events_by_type.add(&by_type);
        let mut waits = Vec::new();
        // In pieces of a batch at most: a large request then takes turns with the others
        // instead of holding its workers for one long transaction.
        let piece = self.deps.batch_size.max(1);
        for (w, evs) in parts.into_iter().enumerate() {
            let mut evs = evs.into_iter().peekable();
            while evs.peek().is_some() {
                let chunk: Vec<Arc<Event>> = evs.by_ref().take(piece).collect();
                let (tx, rx) = oneshot::channel();
                self.workers[w]
                    .send(Work::Events(chunk, Some(Ack { tx, decisions })))
                    .await
                    .map_err(|_| PortError::Closed)?;
                waits.push(rx);
            }
        }
        Ok(Pending {
            waits,
            report: Report::default(),
        })
    }

    /// Waits until everything queued is durable, then empties every worker's cache (Kafka
    /// mode, when partitions move: what this instance cached may be another's to change now).
    pub async fn drop_cache(&self) -> Result<(), PortError> {
        self.every_worker(Work::DropCache).await?;
        self.deps
            .metrics
            .cache_drops
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

#[async_trait::async_trait]
impl EventSink for Pipeline {
    async fn submit(&self, events: Vec<Event>) -> Result<(), PortError> {
        self.ingest(events, false).await.map(|_| ())
    }
}

fn storage(e: impl std::fmt::Display) -> PortError {
    PortError::Storage(e.to_string())
}

#[async_trait::async_trait]
impl OfferBook for Pipeline {
    async fn offers_for(
        &self,
        msisdn: Msisdn,
        limit: usize,
    ) -> Result<Vec<Recommendation>, PortError> {
        let q = RecQuery {
            msisdn: Some(msisdn),
            limit: limit as i64,
            ..Default::default()
        };
        self.deps
            .recs
            .list(&q)
            .await
            .map(|(v, _)| v)
            .map_err(storage)
    }

    async fn offer(&self, id: &str) -> Result<Option<Recommendation>, PortError> {
        self.deps.recs.get(id).await.map_err(storage)
    }

    async fn propose(&self, reqs: Vec<OfferRequest>) -> Result<Vec<Recommendation>, PortError> {
        let mut waits = Vec::with_capacity(reqs.len());
        for r in reqs {
            let (tx, rx) = oneshot::channel();
            self.worker_for(r.msisdn)
                .send(Work::Propose(r, tx))
                .await
                .map_err(|_| PortError::Closed)?;
            waits.push(rx);
        }
        let mut out = Vec::new();
        for w in waits {
            out.extend(w.await.map_err(|_| PortError::Closed)?);
        }
        Ok(out)
    }

    async fn eligible_now(
        &self,
        msisdn: Msisdn,
        channel: Option<&str>,
    ) -> Result<Vec<Recommendation>, PortError> {
        let now = chrono::Utc::now();
        let live = rank::live(self.offers_for(msisdn, 200).await?, channel, now);
        if live.is_empty() {
            return Ok(live);
        }
        let (tx, rx) = oneshot::channel();
        self.worker_for(msisdn)
            .send(Work::Recheck(msisdn, live, tx))
            .await
            .map_err(|_| PortError::Closed)?;
        rx.await.map_err(|_| PortError::Closed)
    }

    async fn usage(&self, msisdn: Msisdn) -> Result<serde_json::Value, PortError> {
        let (tx, rx) = oneshot::channel();
        self.worker_for(msisdn)
            .send(Work::Usage(msisdn, tx))
            .await
            .map_err(|_| PortError::Closed)?;
        rx.await.map_err(|_| PortError::Closed)
    }

    async fn respond(
        &self,
        id: &str,
        outcome: Status,
        actor: &str,
        reason: Option<String>,
    ) -> Result<Option<Recommendation>, PortError> {
        if !matches!(
            outcome,
            Status::Accepted | Status::Declined | Status::Expired
        ) {
            return Err(PortError::Invalid(
                "outcome must be accepted, declined or expired (ignored)".into(),
            ));
        }
        let Some(rec) = self.deps.recs.get(id).await.map_err(storage)? else {
            return Ok(None);
        };
        if matches!(rec.status, Status::Suppressed | Status::Failed) {
            return Err(PortError::Invalid(format!(
                "offer {id} was {} and cannot be answered",
                rec.status.as_str()
            )));
        }
        // Accepted and declined are final: the same answer again is a retry and changes
        // nothing; another one is refused (a correction is its own audited action, not a
        // flip of the record the statistics and the learned propensity already counted).
        if matches!(rec.status, Status::Accepted | Status::Declined) {
            if rec.status == outcome {
                return Ok(Some(rec));
            }
            return Err(PortError::Invalid(format!(
                "offer {id} was already {}; answers are final",
                rec.status.as_str()
            )));
        }
        self.deps
            .recs
            .answer(&rec, outcome, actor, reason.as_deref())
            .await
            .map_err(|e| storage(format!("{e:#}")))
    }
}

impl Pipeline {
    /// Corrects a final answer recorded wrongly (an agent pressed accept for a decline): a new
    /// answer on the record, with its reason, which the statistics, the timeline and the
    /// learned propensity read from then on. Returns the offer before and after; the caller
    /// audits the change. Only accepted <-> declined: anything else is no correction.
    pub async fn correct(
        &self,
        id: &str,
        outcome: Status,
        actor: &str,
        reason: &str,
    ) -> Result<Option<(Recommendation, Recommendation)>, PortError> {
        let Some(rec) = self.deps.recs.get(id).await.map_err(storage)? else {
            return Ok(None);
        };
        if !matches!(rec.status, Status::Accepted | Status::Declined) {
            return Err(PortError::Invalid(format!(
                "offer {id} is {}, not answered: record the answer with POST /api/v1/recommendations/{id}/response",
                rec.status.as_str()
            )));
        }
        if rec.status == outcome {
            return Err(PortError::Invalid(format!(
                "offer {id} is already {}: nothing to correct",
                rec.status.as_str()
            )));
        }
        let after = self
            .deps
            .recs
            .answer(&rec, outcome, actor, Some(reason))
            .await
            .map_err(|e| storage(format!("{e:#}")))?;
        Ok(after.map(|a| (rec, a)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> Arc<Loaded> {
        let config = crate::config::Config::default();
        let rules = crate::rules::load_sources(Vec::new(), &config.engine.limits, &[]).unwrap();
        Arc::new(Loaded {
            rules: Arc::new(rules),
            policy: Arc::new(Policy::from_config(&config).unwrap()),
        })
    }

    fn gone_within(w: &std::sync::Weak<RuleSet>, limit: std::time::Duration) -> bool {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if w.upgrade().is_none() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        false
    }

    /// A retired pair outlives the batch still holding it, and is then freed by the
    /// retiring thread, not by that batch's worker.
    #[test]
    fn a_retired_pair_is_freed_once_its_last_holder_lets_go() {
        let old = pair();
        let rules = Arc::downgrade(&old.rules);
        let in_flight = old.clone();
        let dry_run = old.rules.clone();
        retire(old);
        assert!(!gone_within(&rules, std::time::Duration::from_millis(50)));
        drop(in_flight);
        assert!(
            !gone_within(&rules, std::time::Duration::from_millis(50)),
            "a dry run still reads the rules"
        );
        drop(dry_run);
        assert!(gone_within(&rules, std::time::Duration::from_secs(2)));
    }
}
