//! Between a rule match and a channel: contact policy and arbitration. Every decision,
//! sent or not, becomes a recommendation with a status and a reason code.

pub mod capacity;
pub mod contact;
#[cfg(test)]
mod contact_tests;
pub mod propensity;
#[cfg(test)]
mod propensity_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset};
use uuid::Uuid;

use crate::event::Msisdn;
use crate::ports::{Explanation, Profile, Recommendation, Status};
use crate::rules::{Category, Rule};
use crate::state::{id_hash_parts, Contact, SubscriberState};

pub use contact::ContactPolicy;

/// A rule match, before decisioning.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub rule: Arc<Rule>,
    pub offer_code: String,
    pub message: String,
    pub score: f64,
    /// Channels chosen by the rule's `offer()` for this offer, overriding the declaration.
    pub channels: Option<Vec<String>>,
    /// The A/B variant of the message, when the rule tests some.
    pub variant: Option<String>,
}

/// One offer to decide on, from a rule match or a campaign / touchpoint request.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub rule_id: String,
    pub offer_code: String,
    pub message: String,
    pub score: f64,
    pub channels: Vec<String>,
    pub validity_secs: i64,
    pub cooldown_secs: i64,
    pub category: Category,
    /// The rule's or campaign's own control-group share (basis points), over the policy's.
    pub control_bp: Option<u32>,
    pub variant: Option<String>,
    /// The channel the subscriber is on right now (the event is a visit there): tried first.
    pub here: Option<String>,
}

impl From<Candidate> for Proposal {
    fn from(c: Candidate) -> Self {
        let m = &c.rule.meta;
        Proposal {
            rule_id: m.id.clone(),
            offer_code: c.offer_code,
            message: c.message,
            score: c.score,
            channels: c.channels.unwrap_or_else(|| m.channels.clone()),
            validity_secs: m.validity_secs,
            cooldown_secs: m.cooldown_secs,
            category: m.category,
            control_bp: m.control_bp,
            variant: c.variant,
            here: None,
        }
    }
}

/// What caused the decision; it becomes part of the recommendation's identity.
#[derive(Debug, Clone)]
pub enum Trigger {
    Event(String),
    Campaign(String),
    Request(String),
}

impl Trigger {
    /// The trigger as identities spell it: a kind prefix (`e:`, `c:`, `q:`) and the id.
    fn key(&self) -> (&'static str, &str) {
        match self {
            Trigger::Event(id) => ("e:", id),
            Trigger::Campaign(id) => ("c:", id),
            Trigger::Request(id) => ("q:", id),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    /// Caps, quiet hours and the control group (`rules/policy.toml` and `engine.daily_cap`).
    pub contact: ContactPolicy,
    /// The model learned from answers, when `[propensity] learn` is on.
    pub propensity: Option<propensity::Learned>,
    pub complaint_hold_secs: i64,
    pub max_offers_per_event: usize,
    pub channels: Vec<String>,
    pub default_tz: chrono_tz::Tz,
    /// Status of a decision that will go out: `queued` when channels deliver it,
    /// `proposed` in a replay, which contacts nobody.
    pub go_status: Status,
    /// Live traffic: an offer whose validity has already ended by the wall clock (an event
    /// from long ago) is decided `expired` and never sent. Off in replays, which run on
    /// event time.
    pub expire_on_arrival: bool,
    /// Offers each channel has taken today, against `[capacity]`; kept across reloads.
    pub capacity: Arc<capacity::CapacityUse>,
    /// Marketing to numbers the CRM does not know (`engine.unknown_subscribers = "market"`).
    /// Replays, which have no CRM, decide for every number.
    pub market_unknown: bool,
}

impl Policy {
    pub fn from_config(c: &crate::config::Config) -> Result<Self, String> {
        let contact =
            contact::load(&c.engine.rules_dir, &c.channels.enabled).map_err(|e| e.to_string())?;
        Policy::with_contact(c, contact)
    }

    /// The policy of config `c` with a contact policy already read (a published rule set
    /// carries its own `policy.toml`, not the one on this instance's disk).
    pub fn with_contact(
        c: &crate::config::Config,
        mut contact: contact::ContactPolicy,
    ) -> Result<Self, String> {
        // The configured daily cap is one more cap, across channels.
        contact.caps.insert(
            0,
            contact::Cap::new(
                "engine.daily_cap",
                &[],
                c.engine.daily_cap,
                contact::Per::Day,
            ),
        );
        Ok(Policy {
            propensity: contact
                .learn_every_secs
                .map(|_| propensity::Learned::default()),
            contact,
            complaint_hold_secs: crate::state::parse_duration_secs(&c.engine.complaint_hold)
                .map_err(|e| format!("engine.complaint_hold: {e}"))?,
            max_offers_per_event: c.engine.max_offers_per_event.max(1),
            channels: c.channels.enabled.clone(),
            default_tz: c.engine.default_tz()?,
            go_status: Status::Queued,
            expire_on_arrival: false,
            capacity: Arc::default(),
            market_unknown: match c.engine.unknown_subscribers.as_str() {
                "service_only" => false,
                "market" => true,
                other => {
                    return Err(format!(
                        "engine.unknown_subscribers: {other:?} is not service_only or market"
                    ))
                }
            },
        })
    }

    /// The policy as `rules/policy.toml` says now, for a reload without a restart: what the
    /// process set (live or replay status, wall-clock expiry) carries over, and so does the
    /// learned model, which the refresher keeps filling.
    pub fn reloaded(&self, c: &crate::config::Config) -> Result<Self, String> {
        let contact =
            contact::load(&c.engine.rules_dir, &c.channels.enabled).map_err(|e| e.to_string())?;
        self.reloaded_with(c, contact)
    }

    /// [`Policy::reloaded`] with the contact policy given rather than read from disk.
    pub fn reloaded_with(
        &self,
        c: &crate::config::Config,
        contact: contact::ContactPolicy,
    ) -> Result<Self, String> {
        let mut next = Policy::with_contact(c, contact)?;
        next.go_status = self.go_status;
        next.expire_on_arrival = self.expire_on_arrival;
        next.market_unknown = self.market_unknown;
        next.capacity = self.capacity.clone();
        if next.propensity.is_some() {
            next.propensity = self.propensity.clone().or(next.propensity);
        }
        Ok(next)
    }
}

/// An offer of an earlier decision that a better one replaced in its arbitration window.
#[derive(Debug, Clone, PartialEq)]
pub struct Revoked {
    pub id: String,
    /// The offer that took its place.
    pub winner: String,
}

impl Revoked {
    /// The waiting offer `r` (this one's id) as it ends: `lost_arbitration` to the winner,
    /// no longer due.
    pub fn apply(self, r: &mut Recommendation) {
        r.status = Status::Suppressed;
        r.reason = Some("lost_arbitration".into());
        r.not_before = None;
        if let Some(e) = r.explanation.as_mut() {
            e.winner = Some(self.winner);
        }
    }
}

/// The UUID inside a recommendation id (`r-<32 hex>`), as a pending offer keeps it.
fn pending_key(id: &str) -> [u8; 16] {
    id.strip_prefix("r-")
        .and_then(|h| Uuid::try_parse(h).ok())
        .map_or([0; 16], |u| *u.as_bytes())
}

fn pending_id(q: &crate::state::Pending) -> String {
    let uuid = Uuid::from_bytes(q.id);
    format!("r-{}", uuid.simple())
}

/// Stable id: the same (rule, msisdn, trigger, channel) always yields the same id, so a
/// replayed or redelivered event never creates a second recommendation. It is the UUIDv5 of
/// `{rule_id}|{msisdn}|{kind}{id}|{channel}` in the OID namespace, as `uuid` makes it; the
/// SHA-1 comes from the `sha1` crate, which uses the CPU's SHA instructions where it has them
/// (`uuid`'s own is portable code, and this runs for every decision).
pub fn recommendation_id(
    rule_id: &str,
    msisdn: Msisdn,
    trigger: &Trigger,
    channel: &str,
) -> String {
    use sha1::{Digest, Sha1};
    let (kind, id) = trigger.key();
    let mut h = Sha1::new();
    h.update(Uuid::NAMESPACE_OID.as_bytes());
    for part in [
        rule_id,
        "|",
        msisdn.digits().as_str(),
        "|",
        kind,
        id,
        "|",
        channel,
    ] {
        h.update(part);
    }
    let digest = h.finalize();
    let head = digest[..16].try_into().expect("SHA-1 gives 20 bytes");
    let uuid = uuid::Builder::from_sha1_bytes(head).into_uuid();
    let mut out = String::with_capacity(34);
    out.push_str("r-");
    out.push_str(uuid.simple().encode_lower(&mut Uuid::encode_buffer()));
    out
}

/// Factors and scores as decisions show them: three decimals.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn cooldown_key(rule_id: &str, offer_code: &str) -> u32 {
    id_hash_parts(&[rule_id, "|", offer_code]) as u32
}

/// The key of an offer's own cooldown (`[cooldown] offers`), whichever rule made it.
fn offer_cooldown_key(offer_code: &str) -> u32 {
    id_hash_parts(&["offer|", offer_code]) as u32
}

impl Policy {
    /// Decides on all proposals for one trigger, updating caps and cooldowns in `st`.
    ///
    /// Stages, in order, each naming its reason when it stops an offer: eligibility
    /// (`expired_on_arrival`, `already_owned`, `unknown_subscriber`, `profile_hold`), applicability
    /// (`channel_unavailable`, `opt_out`), suitability (`cooldown`, `after_declined` /
    /// `after_ignored` / `after_accepted`, `complaint_hold`, `quiet_hours`, `frequency_cap`,
    /// `channel_capacity`), then ranking (`lost_arbitration`: a better offer of this
    /// decision or of the arbitration window, the same offer already won, or the channel's
    /// `top_n` taken) and the control group (`control_group`). An offer that passes is
    /// `queued`, or `deferred` to the end of the quiet hours or arbitration window it fell in.
    ///
    /// For a policy without an arbitration window (tests, tools): with one, use
    /// [`Policy::decide_revoking`], which also says which waiting offers were replaced.
    pub fn decide(
        &self,
        proposals: Vec<Proposal>,
        st: &mut SubscriberState,
        profile: &Profile,
        msisdn: Msisdn,
        trigger: &Trigger,
        at: DateTime<FixedOffset>,
    ) -> Vec<Recommendation> {
        let mut revoked = Vec::new();
        let out = self.decide_revoking(proposals, st, profile, msisdn, trigger, at, &mut revoked);
        debug_assert!(
            revoked.is_empty(),
            "use decide_revoking with an arbitration window"
        );
        out
    }

    /// [`Policy::decide`], and the offers of earlier decisions still waiting for their
    /// arbitration window that a better offer now replaces, pushed to `revoked`: whoever
    /// stored them records them `lost_arbitration` (they were never sent).
    #[allow(clippy::too_many_arguments)]
    pub fn decide_revoking(
        &self,
        proposals: Vec<Proposal>,
        st: &mut SubscriberState,
        profile: &Profile,
        msisdn: Msisdn,
        trigger: &Trigger,
        at: DateTime<FixedOffset>,
        revoked: &mut Vec<Revoked>,
    ) -> Vec<Recommendation> {
        // Highest priority wins; ties keep rule order (priority) from the rule set.
        let arb = &self.contact.arbitration;
        let model = self.propensity.as_ref().map(|l| l.current());
        let (kind, trigger_id) = trigger.key();
        let mut ranked: Vec<(f64, Explanation, Proposal)> = proposals
            .into_iter()
            .map(|p| {
                // Ranked by the weight of the rule's first usable channel: which channel it
                // goes out on is known only after the caps of the winners before it.
                let channel = p
                    .channels
                    .iter()
                    .find(|c| self.channels.contains(c))
                    .map_or(1.0, |c| arb.channel(c));
                let (value, lever) = (arb.value(&p.offer_code), arb.lever(&p.rule_id));
                // Thompson sampling, seeded by the decision's identity (replays agree).
                let (propensity, acceptance) = match &model {
                    Some(m) => {
                        let seed = id_hash_parts(&[
                            &p.rule_id,
                            "|",
                            msisdn.digits().as_str(),
                            "|",
                            kind,
                            trigger_id,
                        ]);
                        let segment = profile.value_tier.as_str();
                        (
                            m.sample(&p.offer_code, segment, seed),
                            Some(round3(m.mean(&p.offer_code, segment))),
                        )
                    }
                    None => (1.0, None),
                };
                let priority = propensity * p.score * value * lever * channel;
                let e = Explanation {
                    priority: round3(priority),
                    propensity: round3(propensity),
                    acceptance,
                    segment: model.as_ref().map(|_| profile.value_tier.to_string()),
                    score: round3(p.score),
                    value,
                    lever,
                    channel,
                    winner: None,
                    variant: p.variant.clone(),
                    cost: None,
                    hold: None,
                };
                (priority, e, p)
            })
            .collect();
        ranked
            .sort_by(|(a, _, _), (b, _, _)| b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal));
        let now = at.timestamp();
        let tz = crate::rules::zone(&profile.timezone, self.default_tz);
        st.cooldowns.retain(|(_, until)| *until > now);
        let horizon = st.watermark.max(now);
        st.forget_contacts_before(horizon - self.contact.horizon_secs());
        st.forget_outcomes_before(horizon - self.contact.outcome_horizon_secs());
        st.pending.retain(|q| q.until_secs() > now);
        // Offers of earlier decisions still in their window (this decision's own winners
        // compete through `top_n` instead).
        let earlier = st.pending.len();
        let wall = if self.expire_on_arrival {
            chrono::Utc::now().timestamp()
        } else {
            i64::MIN
        };
        let op_day = |t: i64| i64::from(crate::rules::LocalTime::in_zone(t, self.default_tz).day);
        // The decision's winners so far (control group included), as places in `out`.
        let mut won: smallvec::SmallVec<[usize; 4]> = smallvec::SmallVec::new();
        let mut out: Vec<Recommendation> = Vec::with_capacity(ranked.len());
        for (priority, mut explanation, p) in ranked {
            let service = p.category == Category::Service;
            let opted_out = |c: &String| profile.refuses(c, service);
            // Channel coordination: where the subscriber is now, then the channel they prefer,
            // then the cheaper, then the rule's order; one channel per offer.
            let mut usable: smallvec::SmallVec<[&String; 4]> = p
                .channels
                .iter()
                .filter(|c| self.channels.contains(c))
                .collect();
            let preferred = profile
                .extra
                .get("preferred_channel")
                .and_then(|v| v.as_str());
            let near = |c: &String| {
                if p.here.as_deref() == Some(c.as_str()) {
                    0
                } else if preferred == Some(c.as_str()) {
                    1
                } else {
                    2
                }
            };
            let cost = |c: &String| arb.cost(c).unwrap_or(0.0);
            usable.sort_by(|a, b| near(a).cmp(&near(b)).then(cost(a).total_cmp(&cost(b))));
            let open: smallvec::SmallVec<[&String; 4]> =
                usable.iter().copied().filter(|c| !opted_out(c)).collect();
            let key = cooldown_key(&p.rule_id, &p.offer_code);
            let offer_key = offer_cooldown_key(&p.offer_code);
            let marketing = p.category != Category::Service;
            let expires = now + p.validity_secs;
            // The first winner on a channel, once the channel's `top_n` is taken.
            let slot_taken = |c: &String| {
                let n = arb.top_n.get(c)?;
                let mut on = won.iter().map(|&i| &out[i]).filter(|r| &r.channel == c);
                (on.clone().count() >= *n).then(|| on.next().map(|r| r.id.clone()))?
            };
            // The channel: the first open one whose caps, quiet hours, arbitration slots and
            // capacity let it go out in time, else the first open one (which names why not).
            let timed = |c: &String| {
                let send_at = match marketing {
                    true => self.contact.quiet_until(c, now, tz),
                    false => None,
                };
                let when = send_at.unwrap_or(now);
                let reason = if when >= expires {
                    Some("quiet_hours")
                } else if marketing
                    && self
                        .contact
                        .cap_reached(&st.contacts, c, when, tz)
                        .is_some()
                {
                    Some("frequency_cap")
                } else if marketing && slot_taken(c).is_some() {
                    Some("lost_arbitration")
                } else if self.contact.capacity.get(c).is_some_and(|&max| {
                    self.capacity.used(contact::channel_key(c), op_day(when)) >= max
                }) {
                    Some("channel_capacity")
                } else {
                    None
                };
                (send_at, reason)
            };
            let fit = open
                .iter()
                .map(|c| (*c, timed(c)))
                .find(|(_, (_, r))| r.is_none());
            let (channel, send_at, policy_reason) = match (fit, open.first()) {
                (Some((c, (send_at, _))), _) => (c.clone(), send_at, None),
                (None, Some(c)) => {
                    let (send_at, r) = timed(c);
                    ((*c).clone(), send_at, r)
                }
                (None, None) => (
                    usable
                        .first()
                        .copied()
                        .or(p.channels.first())
                        .cloned()
                        .unwrap_or_default(),
                    None,
                    None,
                ),
            };
            // An arbitration window open on the channel: the offer waiting in it wins unless
            // this one is better.
            let windowed =
                marketing && arb.window_secs > 0 && arb.window_channels.contains(&channel);
            let waiting = windowed
                .then(|| {
                    let key = contact::channel_key(&channel);
                    st.pending[..earlier.min(st.pending.len())]
                        .iter()
                        .position(|q| q.channel == key)
                })
                .flatten();
            let beaten_by = waiting
                .map(|i| st.pending[i])
                .filter(|q| f64::from(q.priority) >= priority)
                .map(|q| pending_id(&q));
            // The same offer goes out once, on one channel, whichever rules propose it.
            let same_offer = won
                .iter()
                .map(|&i| &out[i])
                .find(|r| r.offer_code == p.offer_code)
                .map(|r| r.id.clone());
            let held = marketing.then(|| self.contact.held(profile)).flatten();
            let reason = if expires <= wall {
                Some("expired_on_arrival")
            } else if marketing && profile.owns(&p.offer_code) {
                Some("already_owned")
            } else if marketing && !profile.known && !self.market_unknown {
                Some("unknown_subscriber")
            } else if held.is_some() {
                Some("profile_hold")
            } else if usable.is_empty() {
                Some("channel_unavailable")
            } else if open.is_empty() {
                Some("opt_out")
            } else if st
                .cooldowns
                .iter()
                .any(|(k, until)| (*k == key || *k == offer_key) && *until > now)
            {
                Some("cooldown")
            } else if let Some(after) = marketing
                .then(|| self.contact.after_outcome(&st.outcomes, &p.offer_code, now))
                .flatten()
            {
                Some(after)
            } else if p.category == Category::Sales
                && st.last_complaint != 0
                && now - st.last_complaint < self.complaint_hold_secs
            {
                Some("complaint_hold")
            } else if same_offer.is_some() {
                Some("lost_arbitration")
            } else if policy_reason.is_some() {
                policy_reason
            } else if beaten_by.is_some() || won.len() >= self.max_offers_per_event {
                Some("lost_arbitration")
            } else if self.in_control(&p, msisdn) {
                Some("control_group")
            } else {
                None
            };
            let id = recommendation_id(&p.rule_id, msisdn, trigger, &channel);
            let mut send_at = send_at;
            let mut deferred_by = "quiet_hours";
            if reason.is_none() && windowed {
                // It waits for the window to close; a better offer before then replaces it.
                let until = match waiting {
                    Some(i) => {
                        let q = st.pending.remove(i);
                        st.unlog_contact(Contact::new(q.until_secs(), q.channel));
                        // (An offer's own `[cooldown]` stays: holding it longer is the safe side.)
                        if let Some(c) = st.cooldowns.iter().rposition(|(k, _)| *k == q.cooldown) {
                            st.cooldowns.remove(c);
                        }
                        revoked.push(Revoked {
                            id: pending_id(&q),
                            winner: id.clone(),
                        });
                        q.until_secs()
                    }
                    None => now + arb.window_secs,
                };
                let go = send_at.unwrap_or(now).max(until);
                send_at = Some(go);
                deferred_by = "arbitration_window";
                st.pending.push(crate::state::Pending {
                    channel: contact::channel_key(&channel),
                    // Whole minutes, rounded up: never before the window closes.
                    until: (go.max(0) as u64).div_ceil(60) as u32,
                    priority: priority as f32,
                    cooldown: key,
                    id: pending_key(&id),
                });
            }
            if reason == Some("lost_arbitration") {
                explanation.winner = beaten_by
                    .clone()
                    .or(same_offer)
                    .or_else(|| slot_taken(&channel))
                    .or_else(|| won.first().map(|&i| out[i].id.clone()));
            }
            explanation.cost = arb.cost(&channel);
            explanation.hold = held;
            if reason.is_none() || reason == Some("control_group") {
                // The control group is treated as if sent in all but the sending: it takes
                // the arbitration slot and the cooldown, so it does not get the runner-up.
                won.push(out.len());
                if p.cooldown_secs > 0 {
                    st.cooldowns.push((key, now + p.cooldown_secs));
                }
                if let Some(secs) = self.contact.offer_cooldowns.get(&p.offer_code) {
                    st.cooldowns.push((offer_key, now + secs));
                }
            }
            if reason.is_none() {
                let when = send_at.unwrap_or(now);
                if self.contact.capacity.contains_key(&channel) {
                    self.capacity
                        .take(contact::channel_key(&channel), op_day(when));
                }
                if marketing {
                    st.log_contact(Contact::new(when, contact::channel_key(&channel)));
                }
            }
            let (trigger_event_id, campaign_id, request_id) = match trigger {
                Trigger::Event(id) => (Some(id.clone()), None, None),
                Trigger::Campaign(id) => (None, Some(id.clone()), None),
                Trigger::Request(id) => (None, None, Some(id.clone())),
            };
            let deferred = reason.is_none() && send_at.is_some();
            out.push(Recommendation {
                id,
                msisdn,
                rule_id: p.rule_id,
                offer_code: p.offer_code,
                channel,
                message: p.message,
                score: round3(p.score),
                trigger_event_id,
                campaign_id,
                request_id,
                decided_at: at,
                expires_at: at + Duration::seconds(p.validity_secs),
                not_before: send_at
                    .filter(|_| deferred)
                    .and_then(|t| DateTime::from_timestamp(t, 0))
                    .map(|t| t.with_timezone(at.offset())),
                status: match reason {
                    Some("expired_on_arrival") => Status::Expired,
                    Some(_) => Status::Suppressed,
                    None if deferred => Status::Deferred,
                    None => self.go_status,
                },
                reason: match (reason, deferred) {
                    (None, true) => Some(deferred_by.to_string()),
                    _ => reason.map(str::to_string),
                },
                explanation: Some(explanation),
                service: p.category == Category::Service,
            });
        }
        out
    }

    /// A live offer, decided earlier, through the stages again at `now` (a touchpoint asks):
    /// `None` when it would not be made now - the line owns it, a profile hold or an
    /// opt-out of its channel came, an answer holds it back, a complaint holds sales, or its
    /// channel is gone. What does not change after a decision (caps and cooldowns it used
    /// itself, the control group) is not asked again. The kept offer's priority uses today's
    /// weights and the learned acceptance rate (the mean, not a draw: asking twice ranks
    /// the same).
    pub fn still_eligible(
        &self,
        mut r: Recommendation,
        category: Category,
        st: &SubscriberState,
        profile: &Profile,
        now: i64,
    ) -> Option<Recommendation> {
        let marketing = category != Category::Service;
        let opted_out = profile.refuses(&r.channel, !marketing);
        let blocked = !self.channels.contains(&r.channel)
            || opted_out
            || (marketing
                && (profile.owns(&r.offer_code)
                    || (!profile.known && !self.market_unknown)
                    || self.contact.held(profile).is_some()
                    || self
                        .contact
                        .after_outcome(&st.outcomes, &r.offer_code, now)
                        .is_some()))
            || (category == Category::Sales
                && st.last_complaint != 0
                && now - st.last_complaint < self.complaint_hold_secs);
        if blocked {
            return None;
        }
        if let Some(e) = r.explanation.as_mut() {
            let arb = &self.contact.arbitration;
            let model = self.propensity.as_ref().map(|l| l.current());
            let propensity = model.map_or(1.0, |m| m.mean(&r.offer_code, &profile.value_tier));
            e.propensity = round3(propensity);
            e.value = arb.value(&r.offer_code);
            e.lever = arb.lever(&r.rule_id);
            e.channel = arb.channel(&r.channel);
            let priority = propensity * e.score * e.value * e.lever * e.channel;
            e.priority = round3(priority);
        }
        Some(r)
    }

    /// Deterministic holdout: the same (rule, subscriber) is always in or always out.
    fn in_control(&self, p: &Proposal, msisdn: Msisdn) -> bool {
        let bp = p.control_bp.unwrap_or(self.contact.holdout_bp);
        p.category != Category::Service
            && bp > 0
            && crate::state::draw_bp(&[&p.rule_id, "|", msisdn.digits().as_str()]) < bp
    }
}
