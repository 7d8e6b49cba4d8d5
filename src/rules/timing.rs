//! How long each run of a rule's script takes, as a histogram of fixed buckets: what the
//! operator's metrics show as `kairos_rule_evaluation_seconds`.
//!
//! The engine already measures every run for the rule's time-share breaker; observing that
//! same duration here costs a short bucket search and two relaxed additions, no clock read.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the buckets, in nanoseconds: rules normally run in microseconds, and the
/// script deadline is tens of milliseconds, so the range covers both ends.
pub const RUN_BUCKETS_NS: [u64; 14] = [
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
];

/// One count per bucket (not cumulative), the last for runs above every bound.
#[derive(Debug, Default)]
pub struct RunTimes {
    counts: [AtomicU64; RUN_BUCKETS_NS.len() + 1],
    sum_ns: AtomicU64,
}

/// A reading of [`RunTimes`]: counts per bucket (not cumulative) and the total time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunTimesSnapshot {
    pub counts: [u64; RUN_BUCKETS_NS.len() + 1],
    pub sum_ns: u64,
}

impl RunTimesSnapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl RunTimes {
    #[inline]
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // Most runs fall in the first bucket or two: a linear search ends at once.
        let i = RUN_BUCKETS_NS
            .iter()
            .position(|&b| ns <= b)
            .unwrap_or(RUN_BUCKETS_NS.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    pub fn snapshot(&self) -> RunTimesSnapshot {
        RunTimesSnapshot {
            counts: std::array::from_fn(|i| self.counts[i].load(Relaxed)),
            sum_ns: self.sum_ns.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_land_in_the_first_bucket_that_holds_them() {
        let t = RunTimes::default();
        t.observe(Duration::from_micros(3));
        t.observe(Duration::from_micros(5));
        t.observe(Duration::from_micros(7));
        t.observe(Duration::from_secs(1));
        let s = t.snapshot();
        assert_eq!(s.counts[0], 2, "5 us is within the 5 us bound");
        assert_eq!(s.counts[1], 1);
        assert_eq!(s.counts[RUN_BUCKETS_NS.len()], 1, "over every bound");
        assert_eq!(s.count(), 4);
        assert_eq!(s.sum_ns, 3_000 + 5_000 + 7_000 + 1_000_000_000);
    }
}
