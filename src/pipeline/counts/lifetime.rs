//! This process's per-rule counts through reloads, for `/metrics` and `/api/v1/engine/stats`
//! (which agree): Prometheus counters must only grow while a process lives, and the console's
//! live counts must not drop, but a publish swaps in new rule objects whose counters start at
//! zero.
//!
//! Each swapped-out rule object is kept (`draining`) while anything else still holds it:
//! batches in flight finish on the old set and go on counting on it. Once this is the last
//! holder nobody can count on it again, so its counts are added to its rule id's `folded`
//! total and the object is let go. A reading is folded + draining + running, and every rule
//! object is in exactly one of the three, so the sum never goes down and never counts twice.
//! The swap and the reading take the same lock, so no reading sees an object both running and
//! draining.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::super::Loaded;
use crate::rules::{Rule, RunTimesSnapshot};

/// A rule's counts since this process started: runs, matches, errors and run times.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub evaluated: u64,
    pub matched: u64,
    pub errors: u64,
    pub time: RunTimesSnapshot,
}

impl Reading {
    fn add(&mut self, rule: &Rule) {
        let (e, m, x) = rule.stats.snapshot();
        self.evaluated += e;
        self.matched += m;
        self.errors += x;
        let t = rule.stats.time.snapshot();
        for (sum, n) in self.time.counts.iter_mut().zip(t.counts) {
            *sum += n;
        }
        self.time.sum_ns += t.sum_ns;
    }
}

#[derive(Default)]
struct Retired {
    /// Counts of rule objects nobody can count on any more, by rule id.
    folded: HashMap<String, Reading>,
    /// Swapped-out rule objects that batches in flight may still count on.
    draining: Vec<Arc<Rule>>,
}

#[derive(Default)]
pub struct Lifetime(Mutex<Retired>);

impl Lifetime {
    /// Stores `new` in `loaded`, keeps the rule objects it replaced (for their counts) and
    /// returns the pair it replaced.
    pub fn swap(&self, loaded: &ArcSwap<Loaded>, new: Arc<Loaded>) -> Arc<Loaded> {
        let mut r = self.0.lock().expect("rule lifetimes");
        let kept: HashSet<*const Rule> = new.rules.rules.iter().map(Arc::as_ptr).collect();
        let old = loaded.swap(new);
        r.draining.extend(
            old.rules
                .rules
                .iter()
                .filter(|rule| !kept.contains(&Arc::as_ptr(rule)))
                .cloned(),
        );
        old
    }

    /// Every rule's counts since start, the running set's and those of earlier sets (a rule
    /// no longer running keeps its last counts), by rule id.
    pub fn read(&self, loaded: &ArcSwap<Loaded>) -> BTreeMap<String, Reading> {
        let mut r = self.0.lock().expect("rule lifetimes");
        let Retired { folded, draining } = &mut *r;
        draining.retain(|rule| {
            // The last holder: nothing can count on it any more.
            if Arc::strong_count(rule) > 1 {
                return true;
            }
            folded.entry(rule.meta.id.clone()).or_default().add(rule);
            false
        });
        let mut out: BTreeMap<String, Reading> = folded
            .iter()
            .map(|(id, reading)| (id.clone(), reading.clone()))
            .collect();
        let running = loaded.load();
        for rule in draining.iter().chain(&running.rules.rules) {
            out.entry(rule.meta.id.clone()).or_default().add(rule);
        }
        out
    }
}
