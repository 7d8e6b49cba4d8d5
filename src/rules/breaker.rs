//! A circuit breaker per loaded rule. The sandbox stops one bad run; this stops a rule that
//! fails run after run from costing its limit on every event of its type. It lives in the
//! [`Rule`](super::Rule), so every worker sharing the rule set shares it, and a reload (a new
//! rule set) starts every rule closed again.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Why a rule was taken out of service, and since when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Quarantine {
    /// The failure that tripped the breaker (the last of the streak), or the share of the
    /// engine's time the rule took.
    pub reason: String,
    /// Wall-clock time of the trip.
    pub since: DateTime<Utc>,
    /// The event the last failure happened on (empty when its time share tripped it).
    pub event_id: String,
    /// Failures in a row that tripped it (0 when its time share did).
    pub failures: u32,
}

#[derive(Debug, Default)]
pub struct Breaker {
    /// Failures in a row, across workers; any successful run resets it.
    streak: AtomicU32,
    /// Read on every event: one relaxed load is all a quarantined rule costs.
    open: AtomicBool,
    /// Set once, by the failure (or the time share) that trips the breaker.
    trip: OnceLock<Quarantine>,
    /// Script time (ns) and runs since the engine's time window began ([`Breaker::took`]).
    spent_ns: AtomicU64,
    runs: AtomicU64,
}

impl Breaker {
    /// Whether the rule is quarantined (skipped).
    #[inline]
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// A run that finished (matched or not).
    #[inline]
    pub fn success(&self) {
        // Load first: a store on every run would keep the line bouncing between workers.
        if self.streak.load(Ordering::Relaxed) != 0 {
            self.streak.store(0, Ordering::Relaxed);
        }
    }

    /// A failed run. Returns the quarantine if this failure tripped the breaker (exactly one
    /// caller gets it, however many workers fail at once); `after` 0 never trips.
    pub fn failure(&self, after: u32, reason: &str, event_id: &str) -> Option<&Quarantine> {
        if after == 0 {
            return None;
        }
        let n = self
            .streak
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if n < after {
            return None;
        }
        self.trip(reason, event_id, n)
    }

    /// Opens the breaker; the quarantine if this call did it (exactly one caller gets it).
    fn trip(&self, reason: &str, event_id: &str, failures: u32) -> Option<&Quarantine> {
        let mut won = false;
        let q = self.trip.get_or_init(|| {
            won = true;
            Quarantine {
                reason: reason.to_string(),
                since: Utc::now(),
                event_id: event_id.to_string(),
                failures,
            }
        });
        self.open.store(true, Ordering::Release);
        won.then_some(q)
    }

    /// One run of the rule's script took `d`.
    #[inline]
    pub fn took(&self, d: Duration) {
        self.spent_ns
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        self.runs.fetch_add(1, Ordering::Relaxed);
    }

    /// Ends the rule's part of a time window of `engine` (all workers' time on events):
    /// trips the breaker if the rule took more than `max_share` of it and its runs averaged
    /// at least `slow_run` (a rule normally runs in microseconds, so a cheap rule on every
    /// event is never taken for a slow one). The quarantine if this call tripped it.
    pub fn end_window(
        &self,
        engine: Duration,
        max_share: f64,
        slow_run: Duration,
    ) -> Option<&Quarantine> {
        let spent = Duration::from_nanos(self.spent_ns.swap(0, Ordering::Relaxed));
        let runs = self.runs.swap(0, Ordering::Relaxed);
        if runs == 0 || max_share <= 0.0 || self.is_open() {
            return None;
        }
        let share = spent.as_secs_f64() / engine.as_secs_f64().max(1e-9);
        let mean = Duration::from_nanos((spent.as_nanos() / runs as u128) as u64);
        if share <= max_share || mean < slow_run {
            return None;
        }
        let reason = format!(
            "it took {:.0} % of the engine's time ({runs} runs, {:.2} ms each on average); \
             the bound is {:.0} % (engine.quarantine_time_share)",
            (share * 100.0).min(100.0),
            mean.as_secs_f64() * 1000.0,
            max_share * 100.0
        );
        self.trip(&reason, "", 0)
    }

    /// The quarantine, if the breaker has tripped.
    pub fn quarantine(&self) -> Option<&Quarantine> {
        self.trip.get()
    }
}

/// The engine's time on events, summed over the workers sharing a rule set, in windows: at
/// the end of each, every rule's share of it is checked ([`Breaker::end_window`]).
#[derive(Debug, Default)]
pub struct TimeWindow {
    engine_ns: AtomicU64,
}

impl TimeWindow {
    /// Adds `spent`; the window's length if this call closed it (it then starts again).
    pub fn add(&self, spent: Duration, window: Duration) -> Option<Duration> {
        let ns = spent.as_nanos() as u64;
        let total = self.engine_ns.fetch_add(ns, Ordering::Relaxed) + ns;
        if total < window.as_nanos() as u64 {
            return None;
        }
        // One caller closes it; one that lost the race leaves it to the next addition.
        self.engine_ns
            .compare_exchange(total, 0, Ordering::Relaxed, Ordering::Relaxed)
            .ok()
            .map(|_| Duration::from_nanos(total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_after_a_streak_and_only_once() {
        let b = Breaker::default();
        assert!(b.failure(3, "boom", "e1").is_none());
        assert!(b.failure(3, "boom", "e2").is_none());
        let q = b
            .failure(3, "bang", "e3")
            .expect("third failure in a row trips");
        assert_eq!((q.reason.as_str(), q.event_id.as_str()), ("bang", "e3"));
        assert_eq!(q.failures, 3);
        assert!(b.is_open());
        assert!(b.failure(3, "again", "e4").is_none(), "tripped once");
        assert_eq!(b.quarantine().unwrap().event_id, "e3");
    }

    #[test]
    fn a_success_resets_the_streak() {
        let b = Breaker::default();
        b.failure(2, "boom", "e1");
        b.success();
        assert!(b.failure(2, "boom", "e2").is_none());
        assert!(!b.is_open());
        assert!(b.failure(2, "boom", "e3").is_some());
    }

    #[test]
    fn a_rule_taking_most_of_the_engines_time_trips_and_a_cheap_one_does_not() {
        let slow = Breaker::default();
        for _ in 0..100 {
            slow.took(Duration::from_millis(2));
        }
        // 200 ms of a 250 ms window: 80 %.
        let q = slow
            .end_window(Duration::from_millis(250), 0.5, Duration::from_micros(100))
            .expect("80 % of the engine's time trips");
        assert!(
            q.reason
                .starts_with("it took 80 % of the engine's time (100 runs, 2.00 ms each"),
            "{}",
            q.reason
        );
        assert_eq!((q.failures, q.event_id.as_str()), (0, ""));
        assert!(slow.is_open());

        // Most of the time, but microseconds a run: the usual scripted rule.
        let cheap = Breaker::default();
        for _ in 0..100_000 {
            cheap.took(Duration::from_micros(2));
        }
        assert!(cheap
            .end_window(Duration::from_millis(250), 0.5, Duration::from_micros(100))
            .is_none());
        // Slow runs but a small share, and the window's counts start again.
        let rare = Breaker::default();
        rare.took(Duration::from_millis(3));
        assert!(rare
            .end_window(Duration::from_secs(1), 0.5, Duration::from_micros(100))
            .is_none());
        assert!(
            rare.end_window(Duration::from_millis(1), 0.5, Duration::from_micros(100))
                .is_none(),
            "no runs in this window"
        );
        assert!(!cheap.is_open() && !rare.is_open());
    }

    #[test]
    fn zero_never_trips() {
        let b = Breaker::default();
        for i in 0..100 {
            assert!(b.failure(0, "boom", &format!("e{i}")).is_none());
        }
        assert!(!b.is_open());
        assert!(b.quarantine().is_none());
    }
}
