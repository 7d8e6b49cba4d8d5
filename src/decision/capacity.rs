//! Channel capacity (`[capacity]` in `rules/policy.toml`): how many offers a channel takes per
//! day across all subscribers - the callbacks an agent team can make, the SMS volume bought.
//! A channel at capacity is skipped for the next one the offer may use, else the offer is
//! suppressed `channel_capacity`.
//!
//! Days are the operator's (`engine.default_timezone`), on event time, so a replay counts as
//! the stream did. The count lives in this process: with several instances each one holds
//! its own (documented in `docs/rules.md`), and a reload keeps the day's count.

use std::collections::HashMap;
use std::sync::Mutex;

/// Offers used per (channel, local day).
#[derive(Debug, Default)]
pub struct CapacityUse {
    used: Mutex<HashMap<(u32, i64), u32>>,
}

/// Days of counts kept behind the newest one (late events still count on their own day).
const DAYS_KEPT: i64 = 3;

impl CapacityUse {
    pub fn used(&self, channel: u32, day: i64) -> u32 {
        let used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        used.get(&(channel, day)).copied().unwrap_or(0)
    }

    /// Counts one offer on `channel` on `day`.
    pub fn take(&self, channel: u32, day: i64) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        *used.entry((channel, day)).or_default() += 1;
        if used.len() > 64 {
            let newest = used.keys().map(|(_, d)| *d).max().unwrap_or(day);
            used.retain(|(_, d), _| newest - *d <= DAYS_KEPT);
        }
    }
}
