//! Live counters for the console, `/api/v1/engine/stats` and `/metrics`. Plain atomics and
//! per-batch tallies: the engine knows nothing of how they are exposed (`ops::metrics` reads
//! them when scraped).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::event::{EventType, Known};
use crate::ports::Recommendation;

#[derive(Debug, Default)]
pub struct Metrics {
    pub events_in: AtomicU64,
    pub processed: AtomicU64,
    pub rejected: AtomicU64,
    pub duplicates: AtomicU64,
    pub late: AtomicU64,
    pub unknown_type: AtomicU64,
    pub rule_errors: AtomicU64,
    /// Rules quarantined (their breaker tripped), over the process's life: a reload lifts
    /// quarantines but does not take them back from this count.
    pub rule_quarantines: AtomicU64,
    pub recommendations: AtomicU64,
    pub suppressed: AtomicU64,
    pub store_retries: AtomicU64,
    /// Subscribers dropped from memory (least recently used; their state is stored).
    pub evicted: AtomicU64,
    /// State writes refused because a newer owner of the subscriber had written since
    /// (this instance had stalled while its partitions moved).
    pub state_fenced: AtomicU64,
    /// Decisions produced to the recommendations topic (Kafka mode).
    pub published: AtomicU64,
    /// Caches dropped on a partition assignment or revocation (Kafka mode).
    pub cache_drops: AtomicU64,
    /// Partitions of the events topic this instance owns now (Kafka mode).
    pub partitions_owned: AtomicU64,
    /// Events taken in, by type (`events_in` split up).
    pub events_by_type: TypeCounts,
    /// Decisions stored, by rule, status and reason.
    pub decisions: DecisionCounts,
    /// Rejected events kept for inspection: in the database (HTTP ingest, the engine) or on
    /// the dead-letter topic (Kafka mode).
    pub dead_letters_http: AtomicU64,
    pub dead_letters_engine: AtomicU64,
    pub dead_letters_kafka: AtomicU64,
    /// Messages behind the newest per owned partition of the events topic, as the Kafka
    /// client last reported (Kafka mode; refreshed every few seconds).
    pub consumer_lag: Mutex<BTreeMap<i32, i64>>,
}

/// Slots of [`TypeCounts`]: one per contract type, then one for every custom type.
pub const TYPE_SLOTS: usize = Known::ALL.len() + 1;

/// Events per type. Custom types share the last slot: their names are the senders' to
/// choose, and a series per name could grow without bound.
#[derive(Debug, Default)]
pub struct TypeCounts([AtomicU64; TYPE_SLOTS]);

impl TypeCounts {
    /// The slot of an event type.
    #[inline]
    pub fn slot(ty: &EventType) -> usize {
        match ty {
            EventType::Known(k) => *k as usize,
            EventType::Custom(_) => TYPE_SLOTS - 1,
        }
    }

    /// Adds a batch's tally (one addition per type seen, not one per event).
    pub fn add(&self, tally: &[u64; TYPE_SLOTS]) {
        for (slot, n) in self.0.iter().zip(tally) {
            if *n > 0 {
                slot.fetch_add(*n, Relaxed);
            }
        }
    }

    /// `(type name, count)` for every slot, `custom` for the custom types.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Known::ALL
            .iter()
            .map(|k| k.as_str())
            .chain(["custom"])
            .zip(self.0.iter().map(|c| c.load(Relaxed)))
            .collect()
    }
}

/// Decisions by `(rule, status, reason)`; `none` where there is no reason. Added once per
/// committed batch, under one lock.
#[derive(Debug, Default)]
pub struct DecisionCounts(Mutex<HashMap<(String, &'static str, String), u64>>);

impl DecisionCounts {
    pub fn add(&self, recs: &[Recommendation]) {
        if recs.is_empty() {
            return;
        }
        let mut m = self.0.lock().expect("decision counts");
        for r in recs {
            let reason = r.reason.clone().unwrap_or_else(|| "none".into());
            *m.entry((r.rule_id.clone(), r.status.as_str(), reason))
                .or_default() += 1;
        }
    }

    pub fn snapshot(&self) -> Vec<((String, &'static str, String), u64)> {
        let m = self.0.lock().expect("decision counts");
        let mut v: Vec<_> = m.iter().map(|(k, n)| (k.clone(), *n)).collect();
        v.sort();
        v
    }
}

#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
pub struct MetricsSnapshot {
    pub events_in: u64,
    pub processed: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub late: u64,
    pub unknown_type: u64,
    pub rule_errors: u64,
    pub rule_quarantines: u64,
    pub recommendations: u64,
    pub suppressed: u64,
    pub store_retries: u64,
    pub evicted: u64,
    pub state_fenced: u64,
    pub published: u64,
    pub cache_drops: u64,
    pub partitions_owned: u64,
    /// Requests sent to the state store (a pipelined batch counts once).
    pub state_round_trips: u64,
}

impl Metrics {
    pub fn add_in(&self, n: u64) {
        self.events_in.fetch_add(n, Relaxed);
    }
    /// The counters, with the state store's round trips beside them.
    pub fn snapshot_with(&self, state_round_trips: u64) -> MetricsSnapshot {
        MetricsSnapshot {
            state_round_trips,
            ..self.snapshot()
        }
    }
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            events_in: self.events_in.load(Relaxed),
            processed: self.processed.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            late: self.late.load(Relaxed),
            unknown_type: self.unknown_type.load(Relaxed),
            rule_errors: self.rule_errors.load(Relaxed),
            rule_quarantines: self.rule_quarantines.load(Relaxed),
            recommendations: self.recommendations.load(Relaxed),
            suppressed: self.suppressed.load(Relaxed),
            store_retries: self.store_retries.load(Relaxed),
            evicted: self.evicted.load(Relaxed),
            state_fenced: self.state_fenced.load(Relaxed),
            published: self.published.load(Relaxed),
            cache_drops: self.cache_drops.load(Relaxed),
            partitions_owned: self.partitions_owned.load(Relaxed),
            state_round_trips: 0,
        }
    }
}
