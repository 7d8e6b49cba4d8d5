//! A worker's slice of subscribers: their state and profiles, owned, no locks.

use std::collections::HashMap;
use std::sync::Arc;

use super::{apply_profile_change, evaluate, Candidate, MatchSettings, RuleFailure, Skip};
use crate::decision::{Policy, Proposal, Trigger};
use crate::event::{Event, EventType, Known, Msisdn};
use crate::ports::{OfferRequest, Profile, Recommendation};
use crate::rules::{Category, RuleSet};
use crate::state::SubscriberState;

/// How many upcoming events to [`Shard::warm`] at once (measured best on the engine bench).
pub const WARM_GROUP: usize = 32;

pub struct ShardEntry {
    pub state: SubscriberState,
    pub profile: Arc<Profile>,
    /// Changed since the last save.
    pub dirty: bool,
    /// The [`Shard::tick`] it was last used in: eviction drops the oldest.
    pub touched: u32,
    /// An event of this subscriber came to this shard (see [`Shard::events_own`]).
    pub owned: bool,
}

#[derive(Default)]
pub struct Shard {
    pub entries: HashMap<Msisdn, ShardEntry, ahash::RandomState>,
    candidates: Vec<Candidate>,
    /// Counts batches, for least-recently-used eviction.
    tick: u32,
    /// Only the events' owner may save a subscriber's state (Kafka mode: the instance that
    /// owns the subscriber's partition). A touchpoint or campaign request for a subscriber
    /// this shard has no events for is answered from the stored state, and what it changes
    /// (caps, cooldowns) stays in this shard's memory: saving it would race the owner.
    pub events_own: bool,
    /// Offers of earlier decisions that better ones replaced in their arbitration window
    /// (see [`Policy::decide_revoking`]); whoever stores decisions takes them from here.
    pub revoked: Vec<crate::decision::Revoked>,
    /// Where subscribers can be reached now (open pages), live only.
    pub reachable: Option<Arc<dyn crate::ports::Reachability>>,
    /// Subscribers whose entry became dirty since the last [`Shard::take_dirty`], so a save
    /// visits those alone: a walk over every cached entry per batch cost more than the
    /// engine with a few hundred thousand subscribers cached, and grew with them. A key may
    /// be stale (its entry evicted or cleaned since) or listed twice; the entry's own
    /// `dirty` flag decides.
    dirty: Vec<Msisdn>,
}

impl Shard {
    pub fn contains(&self, m: &Msisdn) -> bool {
        self.entries.contains_key(m)
    }

    pub fn insert(&mut self, m: Msisdn, state: SubscriberState, profile: Arc<Profile>) {
        self.entries.insert(
            m,
            ShardEntry {
                state,
                profile,
                dirty: false,
                touched: self.tick,
                owned: false,
            },
        );
    }

    fn entry(&mut self, m: Msisdn, default_profile: &Arc<Profile>) -> &mut ShardEntry {
        let tick = self.tick;
        let e = self.entries.entry(m).or_insert_with(|| ShardEntry {
            state: SubscriberState::default(),
            profile: default_profile.clone(),
            dirty: false,
            touched: tick,
            owned: false,
        });
        e.touched = tick;
        e
    }

    /// Starts a new batch (the unit of recency for eviction).
    pub fn tick(&mut self) {
        self.tick = self.tick.saturating_add(1);
    }

    /// When more than `cap` subscribers are held, drops the least recently used saved ones
    /// down to 90 % of `cap` (so eviction runs once per many batches, not every batch).
    /// Returns how many were dropped. Only clean entries go: their state is in the store.
    pub fn evict_to(&mut self, cap: usize) -> usize {
        if self.entries.len() <= cap.max(1) {
            return 0;
        }
        let keep = cap - cap / 10;
        let mut ages: Vec<u32> = self
            .entries
            .values()
            .filter(|e| !e.dirty)
            .map(|e| e.touched)
            .collect();
        let drop = (self.entries.len() - keep).min(ages.len());
        if drop == 0 {
            return 0;
        }
        let (_, &mut threshold, _) = ages.select_nth_unstable(drop - 1);
        // All saved entries older than the threshold go, then as many of its own tick as
        // are still needed to reach `drop`.
        let older = ages.iter().filter(|&&t| t < threshold).count();
        let mut same_tick = drop - older;
        let before = self.entries.len();
        self.entries.retain(|_, e| {
            let go =
                !e.dirty && (e.touched < threshold || (e.touched == threshold && same_tick > 0));
            if go && e.touched == threshold {
                same_tick -= 1;
            }
            !go
        });
        before - self.entries.len()
    }

    /// Touches the state of the subscribers of upcoming events, all at once. With a million
    /// subscribers the state is far larger than the CPU caches, so every event would otherwise
    /// wait for several cache misses in turn; issued together, the misses of a group overlap.
    /// Two passes: the map entries first (their misses overlap), then a prefetch of every
    /// series list they point to (prefetches do not wait, so all of the group's are in flight).
    /// Callers warm [`WARM_GROUP`] events ahead; larger groups fall out of the caches again.
    pub fn warm<'a>(&self, upcoming: impl IntoIterator<Item = &'a Msisdn>) {
        let mut found: smallvec::SmallVec<[&ShardEntry; WARM_GROUP]> = smallvec::SmallVec::new();
        found.extend(upcoming.into_iter().filter_map(|m| self.entries.get(m)));
        for e in found {
            // The entry spans several cache lines; the lookup brought in only the key's.
            let bytes = (e as *const ShardEntry).cast::<u8>();
            let size = std::mem::size_of::<ShardEntry>();
            for off in (0..size).step_by(64).chain([size - 1]) {
                prefetch(bytes.wrapping_add(off));
            }
            let st = &e.state;
            prefetch(st.windows.as_ptr());
            prefetch(st.windows.as_ptr().wrapping_add(1));
            prefetch(st.calendars.as_ptr());
            prefetch(st.lasts.as_ptr());
            prefetch(st.since.as_ptr());
            prefetch(st.cooldowns.as_ptr());
            // Every event checks its id against these first (duplicates): the list's
            // header and its first ids, two lines, cover the ten-odd ids a subscriber has in
            // the lateness window on a typical stream.
            let ids = st.seen_ids.as_ptr().cast::<u8>().wrapping_sub(16);
            prefetch(ids);
            prefetch(ids.wrapping_add(64));
        }
    }

    /// Matches one event and decides on its candidates. Recommendations are appended to `recs`.
    #[allow(clippy::too_many_arguments)]
    pub fn process(
        &mut self,
        rules: &RuleSet,
        settings: &MatchSettings,
        policy: &Policy,
        default_profile: &Arc<Profile>,
        ev: &Arc<Event>,
        recs: &mut Vec<Recommendation>,
        failures: &mut Vec<RuleFailure>,
    ) -> Result<(), Skip> {
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        let mut revoked = std::mem::take(&mut self.revoked);
        // Out for this event, so the entry can be borrowed beside it (no reference count
        // touched on the hot path).
        let reachable = self.reachable.take();
        let entry = self.entry(ev.msisdn, default_profile);
        entry.owned = true;
        if ev.kind == EventType::Known(Known::ProfileChange) && !entry.state.seen(&ev.id) {
            apply_profile_change(Arc::make_mut(&mut entry.profile), ev);
        }
        let was_dirty = entry.dirty;
        let result = evaluate(
            rules,
            settings,
            &mut entry.state,
            &entry.profile,
            ev,
            &mut candidates,
            failures,
        );
        if result.is_ok() {
            entry.dirty = true;
            if !candidates.is_empty() {
                // A visit says where the subscriber can be reached now: on the portal or app,
                // or with an agent (a store, the call centre, the agent desktop).
                let here = (ev.kind == EventType::Known(Known::Visit))
                    .then(|| ev.attr("channel").and_then(|c| c.as_str()))
                    .flatten()
                    .and_then(|c| match c {
                        "portal" | "app" => Some("portal"),
                        "agent" | "store" | "call_center" => Some("agent"),
                        _ => None,
                    })
                    // Else a page of theirs open right now (the desk, the portal).
                    .or_else(|| reachable.as_ref().and_then(|r| r.here(ev.msisdn)));
                let proposals = candidates
                    .drain(..)
                    .map(|c| Proposal {
                        here: here.map(str::to_string),
                        ..Proposal::from(c)
                    })
                    .collect();
                let trigger = Trigger::Event(ev.id.as_str().to_owned());
                recs.extend(policy.decide_revoking(
                    proposals,
                    &mut entry.state,
                    &entry.profile,
                    ev.msisdn,
                    &trigger,
                    ev.ts,
                    &mut revoked,
                ));
            }
        }
        if result.is_ok() && !was_dirty {
            self.dirty.push(ev.msisdn);
        }
        self.candidates = candidates;
        self.revoked = revoked;
        self.reachable = reachable;
        result
    }

    /// Decides on a campaign or touchpoint request for a subscriber of this shard.
    pub fn propose(
        &mut self,
        policy: &Policy,
        default_profile: &Arc<Profile>,
        req: &OfferRequest,
    ) -> Vec<Recommendation> {
        let events_own = self.events_own;
        let mut revoked = std::mem::take(&mut self.revoked);
        let entry = self.entry(req.msisdn, default_profile);
        let saved_here = !events_own || entry.owned;
        let newly_dirty = saved_here && !entry.dirty;
        entry.dirty |= saved_here;
        let trigger = match (&req.campaign_id, &req.request_id) {
            (Some(c), _) => Trigger::Campaign(c.clone()),
            (None, Some(r)) => Trigger::Request(r.clone()),
            (None, None) => Trigger::Request(format!("{}-{}", req.rule_id, req.at.timestamp())),
        };
        let proposal = Proposal {
            rule_id: req.rule_id.clone(),
            offer_code: req.offer_code.clone(),
            message: req.message.clone(),
            score: req.score,
            channels: req.channels.clone(),
            validity_secs: req.valid_for_secs,
            cooldown_secs: 0,
            category: if req.service {
                Category::Service
            } else {
                Category::Sales
            },
            control_bp: req.control_bp,
            variant: None,
            here: None,
        };
        let out = policy.decide_revoking(
            vec![proposal],
            &mut entry.state,
            &entry.profile,
            req.msisdn,
            &trigger,
            req.at,
            &mut revoked,
        );
        if newly_dirty {
            self.dirty.push(req.msisdn);
        }
        self.revoked = revoked;
        out
    }

    /// Encoded state of every subscriber changed since the last call.
    pub fn take_dirty(&mut self) -> Vec<(Msisdn, Vec<u8>)> {
        let mut out = Vec::with_capacity(self.dirty.len());
        for m in self.dirty.drain(..) {
            if let Some(e) = self.entries.get_mut(&m).filter(|e| e.dirty) {
                e.dirty = false;
                out.push((m, e.state.to_bytes()));
            }
        }
        out
    }

    /// Average approximate bytes of state per subscriber.
    pub fn avg_state_bytes(&self) -> usize {
        if self.entries.is_empty() {
            return 0;
        }
        self.entries
            .values()
            .map(|e| e.state.approx_bytes())
            .sum::<usize>()
            / self.entries.len()
    }
}

/// Asks the CPU to bring `p`'s cache line in, without waiting for it. Only a hint: `p` is
/// never dereferenced, so any address (even one past a list's end) is fine.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing and cannot fault, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
