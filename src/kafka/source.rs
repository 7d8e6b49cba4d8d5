//! The consumer: the events topic into the workers, offsets committed only when durable.
//!
//! It runs on a thread of its own, because librdkafka calls the rebalance callbacks from
//! inside `poll`, and those must block until the work in flight is committed: on revocation
//! the partitions' next owner starts from the committed offsets and the stored state, so
//! both must be complete before this instance lets go.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::runtime::Handle;

use super::sink::{DeadLetterTopic, Refused};
use crate::config::KafkaConfig;
use crate::event::{decode, Event, Msisdn};
use crate::pipeline::{Pending, Pipeline};

/// A batch handed to the workers, and the offsets it completes per partition.
struct Batch {
    pending: Pending,
    next: BTreeMap<i32, i64>,
}

/// What the main loop and the rebalance callbacks share.
struct Shared {
    topic: String,
    in_flight: Mutex<VecDeque<Batch>>,
    pipeline: Pipeline,
    rt: Handle,
}

impl Shared {
    /// Waits for every batch in flight to be durable and commits their offsets.
    fn settle(&self, c: &BaseConsumer<Ctx>) {
        let batches: Vec<Batch> = self.in_flight.lock().unwrap().drain(..).collect();
        let mut next = BTreeMap::new();
        for b in batches {
            match futures::executor::block_on(b.pending.done()) {
                Ok(_) => next.extend(b.next),
                // The pipeline stopped: nothing after this is durable.
                Err(e) => {
                    tracing::error!("kafka: a batch was not committed: {e}");
                    break;
                }
            }
        }
        self.commit(c, &next, CommitMode::Sync);
    }

    /// Commits what the batches at the front have completed, without waiting.
    fn commit_done(&self, c: &BaseConsumer<Ctx>) {
        let mut next = BTreeMap::new();
        {
            let mut q = self.in_flight.lock().unwrap();
            while let Some(front) = q.front_mut() {
                match front.pending.try_done() {
                    Some(Ok(_)) => next.extend(q.pop_front().unwrap().next),
                    Some(Err(e)) => {
                        tracing::error!("kafka: a batch was not committed: {e}");
                        q.pop_front();
                        break;
                    }
                    None => break,
                }
            }
        }
        self.commit(c, &next, CommitMode::Async);
    }

    fn commit(&self, c: &BaseConsumer<Ctx>, next: &BTreeMap<i32, i64>, mode: CommitMode) {
        if next.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (p, o) in next {
            let _ = tpl.add_partition_offset(&self.topic, *p, Offset::Offset(*o));
        }
        // A commit refused here (the group moved on) is safe: the next owner reprocesses
        // from the last committed offset and the stored dedup marks make that harmless.
        if let Err(e) = c.commit(&tpl, mode) {
            tracing::warn!("kafka: committing offsets failed: {e}");
        }
    }

    fn owned(&self, n: usize) {
        self.pipeline
            .deps
            .metrics
            .partitions_owned
            .store(n as u64, Ordering::Relaxed);
        if n == 0 {
            // Revoked: the lag of partitions now another's is not this instance's to report.
            self.pipeline
                .deps
                .metrics
                .consumer_lag
                .lock()
                .expect("consumer lag")
                .clear();
        }
    }

    fn drop_cache(&self) {
        if let Err(e) = self.rt.block_on(self.pipeline.drop_cache()) {
            tracing::error!("kafka: dropping the cache failed: {e}");
        }
    }
}

struct Ctx(Arc<Shared>);

/// How often the client reports its statistics (the consumer lag in the metrics).
pub const STATS_INTERVAL_MS: &str = "5000";

impl ClientContext for Ctx {
    /// The client's periodic statistics: keeps each owned partition's lag for `/metrics`.
    fn stats(&self, stats: rdkafka::Statistics) {
        let lag = lag_of(&stats, &self.0.topic);
        *self
            .0
            .pipeline
            .deps
            .metrics
            .consumer_lag
            .lock()
            .expect("consumer lag") = lag;
    }
}

/// Messages behind per partition of `topic` this consumer fetches from. The client reports
/// -1 where it does not know yet, and -1 as the id of its internal "unassigned" partition:
/// both are left out.
fn lag_of(stats: &rdkafka::Statistics, topic: &str) -> BTreeMap<i32, i64> {
    stats
        .topics
        .get(topic)
        .map(|t| {
            t.partitions
                .iter()
                .filter(|(id, p)| **id >= 0 && p.consumer_lag >= 0)
                .map(|(id, p)| (*id, p.consumer_lag))
                .collect()
        })
        .unwrap_or_default()
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = r {
            tracing::info!(partitions = tpl.count(), "kafka: partitions revoked");
            self.0.owned(0);
            self.0.settle(c);
            self.0.drop_cache();
        }
    }

    fn post_rebalance(&self, _c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = r {
            self.0.drop_cache();
            // Until it has a new epoch this instance must not write: retry, never go on.
            let epoch = loop {
                match self
                    .0
                    .rt
                    .block_on(self.0.pipeline.deps.state.take_ownership())
                {
                    Ok(e) => break e,
                    Err(e) => {
                        tracing::error!("kafka: taking ownership failed, retrying: {e}");
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            };
            tracing::info!(
                partitions = tpl.count(),
                epoch,
                "kafka: partitions assigned"
            );
            self.0.owned(tpl.count());
        }
    }
}

/// The running consumer. [`Source::stop`] finishes, commits and leaves the group.
pub struct Source {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Source {
    pub fn start(
        cfg: &KafkaConfig,
        max_event_bytes: usize,
        pipeline: Pipeline,
        producer: &rdkafka::producer::FutureProducer,
        rt: Handle,
    ) -> anyhow::Result<Source> {
        let shared = Arc::new(Shared {
            topic: cfg.events_topic.clone(),
            in_flight: Mutex::new(VecDeque::new()),
            pipeline,
            rt,
        });
        let mut cc = rdkafka::ClientConfig::new();
        cc.set("group.id", &cfg.group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            // A fetch returns after at most this long even with little data: the latency
            // budget is milliseconds (librdkafka's 500 ms default was most of it).
            .set("fetch.wait.max.ms", "5")
            .set("statistics.interval.ms", STATS_INTERVAL_MS);
        for (k, v) in super::client_config(cfg).config_map() {
            cc.set(k, v);
        }
        let consumer: BaseConsumer<Ctx> = cc
            .create_with_context(Ctx(shared.clone()))
            .context("creating the Kafka consumer")?;
        consumer
            .subscribe(&[&cfg.events_topic])
            .with_context(|| format!("subscribing to {}", cfg.events_topic))?;
        let dead = DeadLetterTopic::new(producer, cfg);
        let stop = Arc::new(AtomicBool::new(false));
        let run = Run {
            consumer,
            shared,
            dead,
            stop: stop.clone(),
            max_event_bytes,
            max_in_flight: cfg.max_in_flight.max(1),
        };
        let thread = std::thread::Builder::new()
            .name("kafka-source".into())
            .spawn(move || run.run())
            .context("starting the Kafka consumer thread")?;
        Ok(Source {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops consuming, waits for what is in flight to be durable, commits and leaves the
    /// group (so the partitions move at once rather than after the session timeout).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Run {
    consumer: BaseConsumer<Ctx>,
    shared: Arc<Shared>,
    dead: DeadLetterTopic,
    stop: Arc<AtomicBool>,
    max_event_bytes: usize,
    max_in_flight: usize,
}

impl Run {
    fn run(self) {
        let p = &self.shared.pipeline;
        let per_batch = p.deps.batch_size * p.workers().max(1);
        while !self.stop.load(Ordering::Relaxed) {
            let mut events: Vec<Event> = Vec::new();
            let mut next: BTreeMap<i32, i64> = BTreeMap::new();
            let mut wait = Duration::from_millis(100);
            while events.len() < per_batch {
                match self.consumer.poll(wait) {
                    None => break,
                    Some(Err(e)) => {
                        tracing::warn!("kafka: {e}");
                        break;
                    }
                    Some(Ok(m)) => {
                        next.insert(m.partition(), m.offset() + 1);
                        let origin = format!("{}/{}/{}", m.topic(), m.partition(), m.offset());
                        match self.check(m.key(), m.payload()) {
                            Ok(e) => events.push(e),
                            Err((field, reason)) => {
                                self.refuse(Refused {
                                    key: m.key(),
                                    payload: m.payload().unwrap_or_default(),
                                    field,
                                    reason,
                                    origin,
                                });
                            }
                        }
                    }
                }
                // Whatever else is already fetched joins this batch; nothing more is awaited.
                wait = Duration::ZERO;
            }
            if !next.is_empty() {
                match self.shared.rt.block_on(p.enqueue(events, false)) {
                    Ok(pending) => self
                        .shared
                        .in_flight
                        .lock()
                        .unwrap()
                        .push_back(Batch { pending, next }),
                    Err(e) => {
                        tracing::error!("kafka: the engine stopped: {e}");
                        break;
                    }
                }
            }
            self.shared.commit_done(&self.consumer);
            // Bounded: past the limit, wait for the oldest batch before taking more.
            while self.shared.in_flight.lock().unwrap().len() >= self.max_in_flight {
                std::thread::sleep(Duration::from_millis(1));
                self.shared.commit_done(&self.consumer);
            }
        }
        self.shared.settle(&self.consumer);
        self.consumer.unsubscribe();
        tracing::info!("kafka: consumer stopped");
    }

    /// The event in a message, or why it goes to the dead-letter topic.
    fn check(&self, key: Option<&[u8]>, payload: Option<&[u8]>) -> Result<Event, (String, String)> {
        let payload = payload.unwrap_or_default();
        if payload.is_empty() {
            return Err(("body".into(), "empty message".into()));
        }
        if payload.len() > self.max_event_bytes {
            return Err((
                "body".into(),
                format!(
                    "event is {} bytes, over the limit of {}",
                    payload.len(),
                    self.max_event_bytes
                ),
            ));
        }
        let e = decode(payload).map_err(|e| (e.field, e.reason))?;
        // The key decides the partition, and the partition decides which instance owns the
        // subscriber: an event under another key would be processed by a non-owner.
        let keyed = key
            .and_then(|k| std::str::from_utf8(k).ok())
            .and_then(|k| Msisdn::parse(k).ok());
        if keyed != Some(e.msisdn) {
            return Err((
                "key".into(),
                format!(
                    "message key {:?} is not the event's msisdn {}: events must be keyed by msisdn",
                    key.map(String::from_utf8_lossy).unwrap_or_default(),
                    e.msisdn
                ),
            ));
        }
        Ok(e)
    }

    /// Puts a refused message on the dead-letter topic before its offset can be committed.
    fn refuse(&self, r: Refused<'_>) {
        tracing::warn!(origin = %r.origin, "kafka: refused message: {}", r.reason);
        let mut backoff = Duration::from_millis(100);
        while let Err(e) = self.shared.rt.block_on(self.dead.put(&r)) {
            tracing::error!("kafka: dead letter not written, retrying: {e:#}");
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        let m = &self.shared.pipeline.deps.metrics;
        m.rejected.fetch_add(1, Ordering::Relaxed);
        m.dead_letters_kafka.fetch_add(1, Ordering::Relaxed);
    }
}
