//! A simulated telecom network: realistic background traffic plus the scenarios the standard
//! rule pack reacts to (roaming, missed calls while off, quota, low balance, bills, ...).
//! Deterministic for a seed, so benches and tests can rely on it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, FixedOffset};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::event::{decode_value, Event};

const FOREIGN: &[(&str, &str)] = &[
    ("JP", "440"),
    ("KR", "450"),
    ("TH", "520"),
    ("SG", "525"),
    ("US", "310"),
    ("FR", "208"),
    ("HK", "454"),
];
const REGIONS: &[&str] = &[
    "beijing",
    "shanghai",
    "guangzhou",
    "shenzhen",
    "chengdu",
    "hangzhou",
];

/// Most location updates come from the subscriber's home region; a few from a trip.
fn home_or_trip(msisdn: &str, r: &mut SmallRng) -> &'static str {
    if r.random_bool(0.05) {
        return REGIONS[r.random_range(0..REGIONS.len())];
    }
    let h = msisdn
        .bytes()
        .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
    REGIONS[h % REGIONS.len()]
}

pub struct Simulator {
    rng: SmallRng,
    subscribers: u64,
    base: u64,
    seq: u64,
    /// Scenario events waiting for their time, in due order.
    pending: BTreeMap<(DateTime<FixedOffset>, u64), serde_json::Value>,
}

impl Simulator {
    pub fn new(subscribers: u64, seed: u64) -> Self {
        Simulator {
            rng: SmallRng::seed_from_u64(seed),
            subscribers: subscribers.max(1),
            base: 8613900000000,
            seq: 0,
            pending: BTreeMap::new(),
        }
    }

    pub fn msisdn(&self, i: u64) -> String {
        (self.base + i % self.subscribers).to_string()
    }

    fn pick(&mut self) -> String {
        let i = self.rng.random_range(0..self.subscribers);
        self.msisdn(i)
    }

    fn ev(
        &mut self,
        ty: &str,
        msisdn: &str,
        ts: DateTime<FixedOffset>,
        attrs: serde_json::Value,
    ) -> serde_json::Value {
        self.seq += 1;
        json!({"id": format!("sim-{}", self.seq), "type": ty, "msisdn": msisdn, "ts": ts.to_rfc3339(), "attrs": attrs})
    }

    fn schedule(&mut self, at: DateTime<FixedOffset>, v: serde_json::Value) {
        // The sequence number keeps same-time events in the order they were scheduled.
        self.seq += 1;
        self.pending.insert((at, self.seq), v);
    }

    /// The next event as contract JSON, with event time `now` (scenarios spread over later times).
    pub fn next_json(&mut self, now: DateTime<FixedOffset>) -> serde_json::Value {
        if self
            .pending
            .first_key_value()
            .is_some_and(|((t, _), _)| *t <= now)
        {
            return self.pending.pop_first().expect("checked").1;
        }
        let m = self.pick();
        let roll: f64 = self.rng.random();
        let r = &mut self.rng;
        let peer = format!("86139{:08}", r.random_range(0..100_000_000u64));
        let (ty, attrs) = if roll < 0.34 {
            let intl = r.random_bool(0.03);
            (
                "call",
                json!({"direction": if r.random_bool(0.5) {"mo"} else {"mt"}, "peer": peer, "duration_s": r.random_range(5..900),
                "answered": r.random_bool(0.9), "international": intl, "long_distance": intl || r.random_bool(0.1), "roaming": false, "charge_cents": r.random_range(0..300)}),
            )
        } else if roll < 0.54 {
            (
                "sms",
                json!({"direction": "mo", "peer": peer, "segments": 1, "international": false}),
            )
        } else if roll < 0.74 {
            (
                "data_session",
                json!({"bytes": r.random_range(10_000..50_000_000i64), "roaming": false, "apn": "cmnet"}),
            )
        } else if roll < 0.84 {
            (
                "location_update",
                json!({"country": "CN", "mcc": "460", "mnc": "00", "region": home_or_trip(&m, r), "cell": format!("c{}", r.random_range(0..5000)), "roaming": false}),
            )
        } else if roll < 0.86 {
            let (c, mcc) = FOREIGN[r.random_range(0..FOREIGN.len())];
            (
                "location_update",
                json!({"country": c, "mcc": mcc, "mnc": "10", "region": "abroad", "roaming": true}),
            )
        } else if roll < 0.88 {
            (
                "data_quota",
                json!({"used_pct": ([80, 100][r.random_range(0..2)]), "remaining_bytes": r.random_range(0..500_000_000i64), "bundle": "monthly-10g"}),
            )
        } else if roll < 0.895 {
            (
                "balance_low",
                json!({"balance_cents": r.random_range(0..500), "threshold_cents": 500}),
            )
        } else if roll < 0.91 {
            (
                "topup",
                json!({"amount_cents": ([1000, 3000, 5000, 10000][r.random_range(0..4)]), "channel": "app"}),
            )
        } else if roll < 0.925 {
            (
                "self_service",
                json!({"action": (["bill_query", "balance_query", "data_query"][r.random_range(0..3)]), "channel": "app"}),
            )
        } else if roll < 0.94 {
            // Scenario: the phone goes off, calls are missed, it comes back on.
            let missed = r.random_range(0..5);
            let imei = format!("35693803{:07}", r.random_range(0..10_000_000));
            for k in 0..missed {
                let e = self.ev(
                    "missed_call",
                    &m,
                    now + Duration::seconds(5 + 5 * k),
                    json!({"caller": peer, "reason": "powered_off"}),
                );
                self.schedule(now + Duration::seconds(5 + 5 * k), e);
            }
            let on = self.ev(
                "power_on",
                &m,
                now + Duration::seconds(30),
                json!({"imei": imei}),
            );
            self.schedule(now + Duration::seconds(30), on);
            ("power_off", json!({"imei": imei}))
        } else if roll < 0.95 {
            (
                "visit",
                json!({"channel": (["store", "call_center", "portal"][r.random_range(0..3)]), "agent_id": "agent-1", "store_id": "store-1"}),
            )
        } else if roll < 0.955 {
            (
                "complaint",
                json!({"category": "network", "severity": "high"}),
            )
        } else if roll < 0.965 {
            (
                "device_change",
                json!({"imei": "356938035643809", "tac": "35693803", "model": "Phone X", "capability": (["4g", "5g"][r.random_range(0..2)])}),
            )
        } else if roll < 0.975 {
            let prev = r.random_range(5_000..20_000i64);
            let period_prev = "2026-10";
            let bill1 = self.ev(
                "bill",
                &m,
                now,
                json!({"period": period_prev, "amount_cents": prev}),
            );
            let grow = if self.rng.random_bool(0.3) {
                1.45
            } else {
                1.05
            };
            let bill2 = self.ev(
                "bill",
                &m,
                now + Duration::seconds(20),
                json!({"period": "2026-11", "amount_cents": (prev as f64 * grow) as i64}),
            );
            self.schedule(now + Duration::seconds(20), bill2);
            return bill1;
        } else if roll < 0.98 {
            (
                "plan_change",
                json!({"old_plan": "basic-58", "new_plan": "plus-88"}),
            )
        } else if roll < 0.985 {
            (
                "profile_change",
                json!({"field": "value_tier", "old": "silver", "new": "gold"}),
            )
        } else {
            // A burst of SMS: the SMS-bundle scenario.
            for k in 0..30 {
                let e = self.ev(
                    "sms",
                    &m,
                    now + Duration::seconds(k),
                    json!({"direction": "mo", "peer": peer, "segments": 1, "international": false}),
                );
                self.schedule(now + Duration::seconds(k), e);
            }
            (
                "sms",
                json!({"direction": "mo", "peer": peer, "segments": 1, "international": false}),
            )
        };
        self.ev(ty, &m, now, attrs)
    }

    pub fn next_event(&mut self, now: DateTime<FixedOffset>) -> Event {
        let v = self.next_json(now);
        decode_value(&v).expect("the simulator writes contract events")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_simulated_event_follows_the_contract() {
        let mut sim = Simulator::new(1000, 7);
        let t0 = DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap();
        let mut types = std::collections::HashSet::new();
        for i in 0..20_000 {
            let e = sim.next_event(t0 + Duration::milliseconds(i * 10));
            types.insert(e.kind.as_str().to_string());
        }
        for t in [
            "call",
            "sms",
            "location_update",
            "power_on",
            "missed_call",
            "bill",
            "visit",
            "complaint",
            "data_quota",
        ] {
            assert!(types.contains(t), "no {t} in {types:?}");
        }
    }

    #[test]
    fn same_seed_same_stream() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap();
        let a: Vec<_> = {
            let mut s = Simulator::new(10, 1);
            (0..50).map(|_| s.next_json(t0)).collect()
        };
        let b: Vec<_> = {
            let mut s = Simulator::new(10, 1);
            (0..50).map(|_| s.next_json(t0)).collect()
        };
        assert_eq!(a, b);
    }
}
