//! A circuit breaker per loaded rule. The sandbox stops one bad run; this stops a rule that
//! fails run after run from costing its limit on every event of its type. It lives in the
//! [`Rule`](super::Rule), so every worker sharing the rule set shares it, and a reload (a new
//! rule set) starts every rule closed again.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};

/// Why a rule was taken out of service, and since when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Quarantine {
    /// The failure that tripped the breaker (the last of the streak).
    pub reason: String,
    /// Wall-clock time of the trip.
    pub since: DateTime<Utc>,
    /// The event the last failure happened on.
    pub event_id: String,
    /// Failures in a row that tripped it.
    pub failures: u32,
}

#[derive(Debug, Default)]
pub struct Breaker {
    /// Failures in a row, across workers; any successful run resets it.
    streak: AtomicU32,
    /// Read on every event: one relaxed load is all a quarantined rule costs.
    open: AtomicBool,
    /// Set once, by the failure that trips the breaker.
    trip: OnceLock<Quarantine>,
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
        let mut won = false;
        let q = self.trip.get_or_init(|| {
            won = true;
            Quarantine {
                reason: reason.to_string(),
                since: Utc::now(),
                event_id: event_id.to_string(),
                failures: n,
            }
        });
        self.open.store(true, Ordering::Release);
        won.then_some(q)
    }

    /// The quarantine, if the breaker has tripped.
    pub fn quarantine(&self) -> Option<&Quarantine> {
        self.trip.get()
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
    fn zero_never_trips() {
        let b = Breaker::default();
        for i in 0..100 {
            assert!(b.failure(0, "boom", &format!("e{i}")).is_none());
        }
        assert!(!b.is_open());
        assert!(b.quarantine().is_none());
    }
}
