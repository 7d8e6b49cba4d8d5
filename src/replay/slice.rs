//! The engine over one slice of the subscribers (all of them on one core, a partition of
//! them per core): events in, the NDJSON lines of their decisions out, per event.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::Summary;
use crate::decision::Policy;
use crate::engine::{MatchSettings, Shard, Skip, WARM_GROUP};
use crate::event::{Event, Msisdn};
use crate::ports::{Profile, Recommendation, Status};
use crate::rules::RuleSet;

/// An event and its place in the input (what the output is ordered by).
pub type Numbered = (u64, Arc<Event>);

/// The output of one event: its place in the input and its decisions' NDJSON lines.
pub type Lines = (u64, Vec<u8>);

pub struct Slice<'a> {
    rules: &'a RuleSet,
    settings: &'a MatchSettings,
    policy: &'a Policy,
    default_profile: Arc<Profile>,
    shard: Shard,
    /// Offers waiting for their arbitration window, by id: a better offer before it closes
    /// replaces one, and the replaced one is written again (a later line with the same id
    /// supersedes the earlier).
    waiting: HashMap<String, Recommendation>,
    recs: Vec<Recommendation>,
    failures: Vec<crate::engine::RuleFailure>,
    /// Counts the events run, across slices (a backtest's progress).
    processed: Option<&'a AtomicU64>,
    /// What this slice counted (events, rejections and the rest are the reader's).
    pub summary: Summary,
}

impl<'a> Slice<'a> {
    pub fn new(
        rules: &'a RuleSet,
        settings: &'a MatchSettings,
        policy: &'a Policy,
        default_profile: Arc<Profile>,
        profiles: impl IntoIterator<Item = (Msisdn, Arc<Profile>)>,
        processed: Option<&'a AtomicU64>,
    ) -> Slice<'a> {
        let mut shard = Shard::default();
        for (m, p) in profiles {
            shard.insert(m, Default::default(), p);
        }
        Slice {
            rules,
            settings,
            policy,
            default_profile,
            shard,
            waiting: HashMap::new(),
            recs: Vec::new(),
            failures: Vec::new(),
            processed,
            summary: Summary::default(),
        }
    }

    /// Runs `events` (in input order) and appends the output of each event that decided
    /// something to `out`.
    pub fn run(&mut self, events: &[Numbered], out: &mut Vec<Lines>) {
        for group in events.chunks(WARM_GROUP) {
            let started = std::time::Instant::now();
            // The state of a group's subscribers is fetched together.
            self.shard.warm(group.iter().map(|(_, e)| &e.msisdn));
            for (n, ev) in group {
                let mut lines = Vec::new();
                self.event(ev, &mut lines);
                if !lines.is_empty() {
                    out.push((*n, lines));
                }
            }
            if let Some(p) = self.processed {
                p.fetch_add(group.len() as u64, Ordering::Relaxed);
            }
            let slow = crate::engine::account(self.rules, self.settings, started.elapsed());
            self.summary
                .quarantined
                .extend(slow.into_iter().map(|f| (f.rule_id, f.message)));
        }
    }

    fn event(&mut self, ev: &Arc<Event>, out: &mut Vec<u8>) {
        let s = &mut self.summary;
        self.recs.clear();
        self.failures.clear();
        match self.shard.process(
            self.rules,
            self.settings,
            self.policy,
            &self.default_profile,
            ev,
            &mut self.recs,
            &mut self.failures,
        ) {
            Ok(()) => {}
            Err(Skip::Duplicate) => s.duplicates += 1,
            Err(Skip::Late { .. }) => s.late += 1,
            Err(Skip::UnknownType) => s.unknown_type += 1,
        }
        s.rule_errors += self.failures.len() as u64;
        s.quarantined.extend(
            self.failures
                .iter()
                .filter(|f| f.quarantined)
                .map(|f| (f.rule_id.clone(), f.message.clone())),
        );
        let line = |out: &mut Vec<u8>, r: &Recommendation| {
            serde_json::to_writer(&mut *out, r).expect("recommendations serialize");
            out.write_all(b"\n").expect("writing to memory");
        };
        for v in self.shard.revoked.drain(..) {
            let Some(mut r) = self.waiting.remove(&v.id) else {
                continue;
            };
            v.apply(&mut r);
            let e = s.per_rule.entry(r.rule_id.clone()).or_default();
            e.proposed = e.proposed.saturating_sub(1);
            *e.suppressed.entry("lost_arbitration".into()).or_default() += 1;
            line(out, &r);
        }
        if self.waiting.len() > 100_000 {
            // Windows are minutes long: what closed before this event is settled.
            self.waiting
                .retain(|_, r| r.not_before.is_none_or(|t| t > ev.ts));
        }
        for r in &self.recs {
            if r.reason.as_deref() == Some("arbitration_window") {
                self.waiting.insert(r.id.clone(), r.clone());
            }
            let e = s.per_rule.entry(r.rule_id.clone()).or_default();
            e.matched += 1;
            match (&r.status, &r.reason) {
                (Status::Suppressed, Some(reason)) => {
                    *e.suppressed.entry(reason.clone()).or_default() += 1
                }
                _ => e.proposed += 1,
            }
            line(out, r);
            s.recommendations += 1;
        }
    }

    /// Subscribers held, and the bytes of their state in all.
    pub fn state(&self) -> (usize, usize) {
        let bytes = self
            .shard
            .entries
            .values()
            .map(|e| e.state.approx_bytes())
            .sum();
        (self.shard.entries.len(), bytes)
    }
}
