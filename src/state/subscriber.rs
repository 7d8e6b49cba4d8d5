//! One subscriber's real-time state: small, sparse, bounded, serializable.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use smol_str::SmolStr;
use thin_vec::ThinVec;

use super::spec::{Agg, Calendar, Filter, Series, SeriesDef, StateSpec};
use crate::event::{AttrValue, Event};

/// A value kept by `last()`: numbers and short text only (bounded size).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub enum Val {
    #[default]
    None,
    Num(f64),
    Text(SmolStr),
    Bool(bool),
}

impl Val {
    pub fn from_attr(v: Option<&AttrValue>) -> Val {
        match v {
            Some(AttrValue::Int(i)) => Val::Num(*i as f64),
            Some(AttrValue::Float(f)) => Val::Num(*f),
            Some(AttrValue::Bool(b)) => Val::Bool(*b),
            // Long text is cut: state must stay small whatever events carry.
            Some(AttrValue::Str(s)) => Val::Text(if s.len() > 64 {
                SmolStr::new(&s[..s.floor_char_boundary(64)])
            } else {
                s.clone()
            }),
            _ => Val::None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub idx: u32,
    pub val: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowData {
    pub fp: u32,
    pub buckets: SmallVec<[Bucket; 2]>,
    /// For distinct counts: (bucket idx, value hash), capped.
    pub seen: ThinVec<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalendarData {
    pub fp: u32,
    pub period: i32,
    pub val: f64,
    pub prev_period: i32,
    pub prev_val: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastData {
    pub fp: u32,
    pub ts: i64,
    pub val: Val,
    pub prev: Val,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SinceData {
    pub fp: u32,
    pub reset_ts: i64,
    pub count: u32,
}

/// Distinct values remembered per window at most; beyond it counts saturate.
pub const MAX_DISTINCT: usize = 64;
/// Event ids remembered per subscriber at most. Ids are kept for the dedup horizon (at
/// least the lateness window: anything older is refused as late anyway), so this only bounds
/// a subscriber who sends more than this many events within it; past it the oldest are forgotten and
/// events older than the forgotten ones are refused as late (never processed twice).
pub const MAX_SEEN_IDS: usize = 1024;

/// Series lists are thin vectors (one pointer each, length on the heap): the state sits
/// inline in the shard's hash map, and a smaller entry spans fewer cache lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SubscriberState {
    /// Latest event time seen (epoch seconds); lateness is measured against it.
    pub watermark: i64,
    pub windows: ThinVec<WindowData>,
    pub calendars: ThinVec<CalendarData>,
    pub lasts: ThinVec<LastData>,
    pub since: ThinVec<SinceData>,
    /// (rule+offer key, epoch until which the cooldown holds).
    pub cooldowns: ThinVec<(u32, i64)>,
    /// Ids of the events inside the dedup horizon, oldest first: (event time in minutes
    /// since the epoch, 32-bit fingerprint of the id). A fingerprint can collide: with `k`
    /// ids in the window a new id is taken for a duplicate with probability `k / 2^32`
    /// (about 2e-9 for a subscriber with ten events in the window).
    pub seen_ids: ThinVec<(u32, u32)>,
    /// Event time (minutes) before which ids may have been forgotten ([`MAX_SEEN_IDS`]).
    pub seen_floor: u32,
    /// Marketing contacts (sent or due to be sent) inside the contact policy's horizon,
    /// oldest first: what caps count.
    pub contacts: ThinVec<Contact>,
    /// Answers to offers (`offer_response` events) inside the policy's horizon, oldest first:
    /// what suppression after declines and ignores reads.
    pub outcomes: ThinVec<Outcome>,
    /// Time of the last complaint (0 = never); sales offers are held back after one.
    pub last_complaint: i64,
    /// Offers waiting for their channel's arbitration window to close (`[arbitration]
    /// window`): a better offer decided before then takes the place of one of these.
    pub pending: ThinVec<Pending>,
}

/// An offer held until its channel's arbitration window closes: the channel, when it goes
/// (minutes since the epoch), its priority, its cooldown key and its recommendation id (the
/// UUID inside `r-<32 hex>`), so a better offer can take its place.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub channel: u32,
    pub until: u32,
    pub priority: f32,
    pub cooldown: u32,
    pub id: [u8; 16],
}

impl Pending {
    /// Epoch seconds when the window closes.
    pub fn until_secs(&self) -> i64 {
        i64::from(self.until) * 60
    }
}

/// One marketing contact: when it goes out (minutes since the epoch, event time) and on
/// which channel (`decision::contact::channel_key`; 0 when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub minute: u32,
    pub channel: u32,
}

impl Contact {
    pub fn new(epoch_secs: i64, channel: u32) -> Contact {
        Contact {
            minute: minute(epoch_secs),
            channel,
        }
    }

    /// Epoch seconds.
    pub fn at(&self) -> i64 {
        i64::from(self.minute) * 60
    }
}

/// Contacts remembered per subscriber at most; past it the oldest are forgotten.
pub const MAX_CONTACTS: usize = 256;

/// How a subscriber answered an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutcomeKind {
    Accepted,
    Declined,
    Ignored,
}

impl OutcomeKind {
    pub fn parse(s: &str) -> Option<OutcomeKind> {
        match s {
            "accepted" => Some(OutcomeKind::Accepted),
            "declined" => Some(OutcomeKind::Declined),
            "ignored" => Some(OutcomeKind::Ignored),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Accepted => "accepted",
            OutcomeKind::Declined => "declined",
            OutcomeKind::Ignored => "ignored",
        }
    }
}

/// One answer: when (minutes since the epoch, event time), to which offer (a 32-bit hash of
/// its code, [`offer_key`]) and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub minute: u32,
    pub offer: u32,
    pub kind: OutcomeKind,
}

impl Outcome {
    /// The answer an `offer_response` event carries, if it names an offer and an outcome.
    pub fn from_event(ev: &Event) -> Option<Outcome> {
        let text = |k: &str| match ev.attr(k) {
            Some(AttrValue::Str(s)) => Some(s.as_str()),
            _ => None,
        };
        Some(Outcome {
            minute: minute(ev.epoch()),
            offer: offer_key(text("offer_code")?),
            kind: OutcomeKind::parse(text("outcome")?)?,
        })
    }

    pub fn at(&self) -> i64 {
        i64::from(self.minute) * 60
    }
}

/// The key answers are kept under: a 32-bit hash of the offer code.
pub fn offer_key(offer_code: &str) -> u32 {
    id_hash(offer_code) as u32
}

/// Answers remembered per subscriber at most.
pub const MAX_OUTCOMES: usize = 64;

/// An entry of a time-ordered log kept in the state (contacts, answers).
trait Timed {
    fn minute(&self) -> u32;
}

impl Timed for Contact {
    fn minute(&self) -> u32 {
        self.minute
    }
}

impl Timed for Outcome {
    fn minute(&self) -> u32 {
        self.minute
    }
}

/// Inserts `item` in time order (after entries of the same minute); past `max` entries the
/// oldest is forgotten.
fn log_in_order<T: Timed>(log: &mut ThinVec<T>, item: T, max: usize) {
    if log.len() >= max {
        log.remove(0);
    }
    let pos = log
        .iter()
        .rposition(|x| x.minute() <= item.minute())
        .map_or(0, |p| p + 1);
    log.insert(pos, item);
}

/// Drops the entries before `keep_from` (epoch seconds).
fn forget_before<T: Timed>(log: &mut ThinVec<T>, keep_from: i64) {
    let keep = minute(keep_from);
    if log.first().is_some_and(|x| x.minute() < keep) {
        log.retain(|x| x.minute() >= keep);
    }
}

/// A series' data, found by the fingerprint of its definition.
trait Keyed {
    fn fp(&self) -> u32;
}

macro_rules! keyed {
    ($($t:ty),*) => {$(
        impl Keyed for $t {
            #[inline]
            fn fp(&self) -> u32 {
                self.fp
            }
        }
    )*};
}
keyed!(WindowData, CalendarData, LastData, SinceData);

/// The entry for `fp`, added (by `new`) when the subscriber has none yet. Generic, so each
/// use compiles to the loop it replaces.
#[inline]
fn series_mut<T: Keyed>(list: &mut ThinVec<T>, fp: u32, new: impl FnOnce() -> T) -> &mut T {
    let pos = match list.iter().position(|w| w.fp() == fp) {
        Some(p) => p,
        None => {
            list.push(new());
            list.len() - 1
        }
    };
    &mut list[pos]
}

pub fn id_hash(id: &str) -> u64 {
    id_hash_parts(&[id])
}

/// [`id_hash`] of the parts written one after the other, without joining them first.
pub fn id_hash_parts(parts: &[&str]) -> u64 {
    // FNV-1a 64: stable across runs, unlike the std hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|p| p.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A 0-10000 draw from `parts`, the same every time: who is in a control group.
pub fn draw_bp(parts: &[&str]) -> u32 {
    // FNV-1a then a 64-bit finalizer (splitmix64), so ids that differ in one digit spread
    // over the whole range.
    let mut z = id_hash_parts(parts);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % 10_000) as u32
}

fn value_hash(v: Option<&AttrValue>) -> u32 {
    // The hash of the value's text form (it is persisted): text is hashed as it is.
    match v {
        Some(AttrValue::Str(s)) => id_hash(s) as u32,
        Some(other) => id_hash(&other.to_string()) as u32,
        None => id_hash("") as u32,
    }
}

fn id_fingerprint(id: &str) -> u32 {
    let h = id_hash(id);
    (h ^ (h >> 32)) as u32
}

fn minute(epoch_secs: i64) -> u32 {
    epoch_secs.div_euclid(60).clamp(0, u32::MAX as i64) as u32
}

impl SubscriberState {
    pub fn seen(&self, id: &str) -> bool {
        let fp = id_fingerprint(id);
        self.seen_ids.iter().any(|(_, f)| *f == fp)
    }

    /// True when an event at `epoch_secs` is older than the ids still remembered, so it
    /// cannot be told from a duplicate.
    pub fn before_seen_floor(&self, epoch_secs: i64) -> bool {
        minute(epoch_secs) < self.seen_floor
    }

    /// Remembers an event id at its event time.
    pub fn remember(&mut self, id: &str, epoch_secs: i64) {
        if self.seen_ids.len() >= MAX_SEEN_IDS {
            let (m, _) = self.seen_ids.remove(0);
            self.seen_floor = self.seen_floor.max(m + 1);
        }
        self.seen_ids.push((minute(epoch_secs), id_fingerprint(id)));
    }

    /// Forgets ids of events older than `keep_from` (epoch seconds): they are refused as late.
    pub fn forget_ids_before(&mut self, keep_from: i64) {
        // A minute's slack: ids are kept by the minute, lateness is checked by the second.
        let keep = minute(keep_from).saturating_sub(1);
        if self.seen_ids.first().is_some_and(|(m, _)| *m < keep) {
            self.seen_ids.retain(|(m, _)| *m >= keep);
        }
    }

    /// Phase 1: aggregates that include the current event (windows, calendars, since-counts).
    pub fn apply_aggregates(
        &mut self,
        spec: &StateSpec,
        ev: &Event,
        local_day: i32,
        local_month: i32,
        lateness: i64,
    ) {
        let Some(upd) = spec.updates_for(&ev.kind) else {
            return;
        };
        let now = ev.epoch();
        let horizon = self.watermark.max(now);
        for (fp, def, filter) in &upd.windows {
            if !Filter::passes(filter, ev) {
                continue;
            }
            let SeriesDef::Window {
                attr,
                agg,
                span_secs,
                ..
            } = def
            else {
                continue;
            };
            let width = SeriesDef::bucket_secs(*span_secs);
            let idx = now.div_euclid(width) as u32;
            let keep_from = (horizon - span_secs - lateness).div_euclid(width) as u32;
            let value = match agg {
                Agg::Count => 1.0,
                _ => match attr
                    .as_deref()
                    .and_then(|a| ev.attr(a))
                    .and_then(|v| v.as_f64())
                {
                    Some(v) => v,
                    None if *agg == Agg::Distinct => 0.0,
                    None => continue,
                },
            };
            let w = self.window_mut(*fp);
            w.buckets.retain(|b| b.idx >= keep_from);
            w.seen.retain(|(i, _)| *i >= keep_from);
            if *agg == Agg::Distinct {
                let h = value_hash(attr.as_deref().and_then(|a| ev.attr(a)));
                if let Some(s) = w.seen.iter_mut().find(|(_, vh)| *vh == h) {
                    s.0 = s.0.max(idx);
                } else {
                    if w.seen.len() >= MAX_DISTINCT {
                        w.seen.remove(0);
                    }
                    w.seen.push((idx, h));
                }
                continue;
            }
            match w.buckets.iter_mut().find(|b| b.idx == idx) {
                Some(b) => {
                    b.val = match agg {
                        Agg::Min => b.val.min(value),
                        Agg::Max => b.val.max(value),
                        _ => b.val + value,
                    }
                }
                None => {
                    let pos = w
                        .buckets
                        .iter()
                        .position(|b| b.idx > idx)
                        .unwrap_or(w.buckets.len());
                    w.buckets.insert(pos, Bucket { idx, val: value });
                }
            }
        }
        for (fp, def, filter) in &upd.calendars {
            if !Filter::passes(filter, ev) {
                continue;
            }
            let SeriesDef::Calendar { attr, unit, .. } = def else {
                continue;
            };
            let value = match attr.as_deref() {
                None => 1.0,
                Some(a) => match ev.attr(a).and_then(|v| v.as_f64()) {
                    Some(v) => v,
                    None => continue,
                },
            };
            let period = match unit {
                Calendar::Day => local_day,
                Calendar::Month => local_month,
            };
            let c = self.calendar_mut(*fp);
            if period == c.period {
                c.val += value;
            } else if period > c.period {
                // Only the immediately preceding period is "last month".
                let (pp, pv) = if period == c.period + 1 {
                    (c.period, c.val)
                } else {
                    (period - 1, 0.0)
                };
                *c = CalendarData {
                    fp: *fp,
                    period,
                    val: value,
                    prev_period: pp,
                    prev_val: pv,
                };
            } else if period == c.prev_period {
                c.prev_val += value;
            }
        }
        for (fp, filter) in &upd.since_inc {
            if !Filter::passes(filter, ev) {
                continue;
            }
            let s = self.since_mut(*fp);
            if now >= s.reset_ts {
                s.count += 1;
            }
        }
    }

    /// Phase 2: history that describes what came before the current event.
    pub fn apply_history(&mut self, spec: &StateSpec, ev: &Event) {
        let now = ev.epoch();
        if let Some(upd) = spec.updates_for(&ev.kind) {
            for (fp, def, filter) in &upd.lasts {
                if !Filter::passes(filter, ev) {
                    continue;
                }
                let (attr, dwell) = match def {
                    SeriesDef::Last { attr, .. } => (attr.as_deref(), false),
                    SeriesDef::Dwell { attr, .. } => (Some(attr.as_str()), true),
                    _ => continue,
                };
                let val = match attr {
                    None => Val::None,
                    Some(a) => Val::from_attr(ev.attr(a)),
                };
                let l = self.last_mut(*fp);
                // A late event does not overwrite a newer "last".
                if now < l.ts {
                    continue;
                }
                // Dwell: the time moves only when the value changes.
                if !dwell || l.ts == i64::MIN || l.val != val {
                    l.prev = std::mem::replace(&mut l.val, val);
                    l.ts = now;
                }
            }
            for (fp, filter) in &upd.since_reset {
                if !Filter::passes(filter, ev) {
                    continue;
                }
                let s = self.since_mut(*fp);
                if now >= s.reset_ts {
                    s.reset_ts = now;
                    s.count = 0;
                }
            }
        }
        self.watermark = self.watermark.max(now);
        self.remember(&ev.id, now);
    }

    fn window_mut(&mut self, fp: u32) -> &mut WindowData {
        series_mut(&mut self.windows, fp, || WindowData {
            fp,
            buckets: SmallVec::new(),
            seen: ThinVec::new(),
        })
    }

    fn calendar_mut(&mut self, fp: u32) -> &mut CalendarData {
        series_mut(&mut self.calendars, fp, || CalendarData {
            fp,
            period: i32::MIN + 1,
            val: 0.0,
            prev_period: i32::MIN,
            prev_val: 0.0,
        })
    }

    fn last_mut(&mut self, fp: u32) -> &mut LastData {
        series_mut(&mut self.lasts, fp, || LastData {
            fp,
            ts: i64::MIN,
            val: Val::None,
            prev: Val::None,
        })
    }

    fn since_mut(&mut self, fp: u32) -> &mut SinceData {
        series_mut(&mut self.since, fp, || SinceData {
            fp,
            reset_ts: i64::MIN,
            count: 0,
        })
    }

    // ---- queries (all relative to `now`, the current event's time) ----

    /// Sliding-window aggregate over (now - span, now].
    pub fn window(&self, s: &Series, now: i64) -> f64 {
        let SeriesDef::Window { agg, span_secs, .. } = &s.def else {
            return 0.0;
        };
        let fp = s.fp;
        let Some(w) = self.windows.iter().find(|w| w.fp == fp) else {
            return if *agg == Agg::Min || *agg == Agg::Max {
                f64::NAN
            } else {
                0.0
            };
        };
        let width = SeriesDef::bucket_secs(*span_secs);
        let hi = now.div_euclid(width);
        let lo = (now - span_secs).div_euclid(width);
        let in_range = |idx: u32| (idx as i64) > lo && (idx as i64) <= hi;
        let vals = w.buckets.iter().filter(|b| in_range(b.idx)).map(|b| b.val);
        match agg {
            Agg::Distinct => w.seen.iter().filter(|(i, _)| in_range(*i)).count() as f64,
            Agg::Min => vals.fold(f64::NAN, f64::min),
            Agg::Max => vals.fold(f64::NAN, f64::max),
            _ => vals.sum(),
        }
    }

    /// Calendar aggregate for `period` (a local day or month number).
    pub fn calendar(&self, s: &Series, period: i32) -> f64 {
        let fp = s.fp;
        match self.calendars.iter().find(|c| c.fp == fp) {
            Some(c) if c.period == period => c.val,
            Some(c) if c.prev_period == period => c.prev_val,
            _ => 0.0,
        }
    }

    pub fn last(&self, s: &Series) -> Option<&LastData> {
        let fp = s.fp;
        self.lasts.iter().find(|l| l.fp == fp && l.ts != i64::MIN)
    }

    pub fn count_since(&self, s: &Series) -> u32 {
        let fp = s.fp;
        self.since
            .iter()
            .find(|s| s.fp == fp)
            .map(|s| s.count)
            .unwrap_or(0)
    }

    /// Logs a marketing contact, keeping the log in time order and bounded.
    pub fn log_contact(&mut self, c: Contact) {
        log_in_order(&mut self.contacts, c, MAX_CONTACTS);
    }

    /// Takes back one logged contact (an offer replaced before it went out).
    pub fn unlog_contact(&mut self, c: Contact) {
        if let Some(i) = self.contacts.iter().rposition(|x| *x == c) {
            self.contacts.remove(i);
        }
    }

    /// Logs an answer to an offer, in time order, bounded.
    pub fn log_outcome(&mut self, o: Outcome) {
        log_in_order(&mut self.outcomes, o, MAX_OUTCOMES);
    }

    /// Forgets answers before `keep_from` (epoch seconds).
    pub fn forget_outcomes_before(&mut self, keep_from: i64) {
        forget_before(&mut self.outcomes, keep_from);
    }

    /// Forgets contacts before `keep_from` (epoch seconds): no cap looks that far back.
    pub fn forget_contacts_before(&mut self, keep_from: i64) {
        forget_before(&mut self.contacts, keep_from);
    }

    /// Drops series no rule reads any more (after a rule set change).
    pub fn retain_spec(&mut self, spec: &StateSpec) {
        let live: Vec<u32> = spec.defs.iter().map(|s| s.fp).collect();
        self.windows.retain(|w| live.contains(&w.fp));
        self.calendars.retain(|w| live.contains(&w.fp));
        self.lasts.retain(|w| live.contains(&w.fp));
        self.since.retain(|w| live.contains(&w.fp));
    }

    /// Approximate bytes held in memory for this subscriber (struct + heap).
    pub fn approx_bytes(&self) -> usize {
        use std::mem::size_of;
        let spill =
            |cap: usize, inline: usize, elem: usize| if cap > inline { cap * elem } else { 0 };
        // A thin vector's length and capacity live in its heap block, when it has one.
        let thin = |cap: usize, elem: usize| if cap > 0 { 16 + cap * elem } else { 0 };
        size_of::<Self>()
            + thin(self.windows.capacity(), size_of::<WindowData>())
            + self
                .windows
                .iter()
                .map(|w| {
                    spill(w.buckets.capacity(), 2, size_of::<Bucket>()) + thin(w.seen.capacity(), 8)
                })
                .sum::<usize>()
            + thin(self.calendars.capacity(), size_of::<CalendarData>())
            + thin(self.lasts.capacity(), size_of::<LastData>())
            + thin(self.since.capacity(), size_of::<SinceData>())
            + thin(self.cooldowns.capacity(), 16)
            + thin(self.seen_ids.capacity(), 8)
            + thin(self.contacts.capacity(), 8)
            + thin(self.outcomes.capacity(), 12)
            + thin(self.pending.capacity(), size_of::<Pending>())
    }

    /// Encoded as `[ENCODING_MARK, version, bincode...]`. Version 1 (before the mark) was
    /// plain bincode; its first byte is a varint's, never 0xFF, so the two cannot be confused.
    /// Version 2 counted marketing messages per local day instead of logging contacts;
    /// version 3 had no offers pending an arbitration window.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Room for a typical state at once: grown from two bytes, the vector was reallocated
        // several times per save.
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&[ENCODING_MARK, ENCODING_VERSION]);
        bincode::serde::encode_into_std_write(self, &mut out, bincode::config::standard())
            .expect("state always encodes");
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, String> {
        let cfg = bincode::config::standard();
        match b {
            [ENCODING_MARK, ENCODING_VERSION, rest @ ..] => {
                bincode::serde::decode_from_slice(rest, cfg)
                    .map(|(s, _)| s)
                    .map_err(|e| e.to_string())
            }
            [ENCODING_MARK, 3, rest @ ..] => {
                bincode::serde::decode_from_slice::<v3::State, _>(rest, cfg)
                    .map(|(s, _)| s.into())
                    .map_err(|e| e.to_string())
            }
            [ENCODING_MARK, 2, rest @ ..] => {
                bincode::serde::decode_from_slice::<v2::State, _>(rest, cfg)
                    .map(|(s, _)| s.into())
                    .map_err(|e| e.to_string())
            }
            [ENCODING_MARK, v, ..] => Err(format!("unknown state encoding version {v}")),
            _ => bincode::serde::decode_from_slice::<v1::State, _>(b, cfg)
                .map(|(s, _)| s.into())
                .map_err(|e| e.to_string()),
        }
    }
}

const ENCODING_MARK: u8 = 0xFF;
const ENCODING_VERSION: u8 = 4;

/// The fields every stored form begins with. bincode writes a struct as its fields one after
/// the other, with nothing around them, so a form that starts with this struct reads exactly
/// as one that lists the fields itself.
#[derive(Deserialize)]
struct Head {
    watermark: i64,
    windows: ThinVec<WindowData>,
    calendars: ThinVec<CalendarData>,
    lasts: ThinVec<LastData>,
    since: ThinVec<SinceData>,
    cooldowns: ThinVec<(u32, i64)>,
}

/// What an older form keeps after its head (version 3 stored exactly these); offers pending
/// arbitration came with version 4.
#[derive(Deserialize)]
struct Tail {
    seen_ids: ThinVec<(u32, u32)>,
    seen_floor: u32,
    contacts: ThinVec<Contact>,
    outcomes: ThinVec<Outcome>,
    last_complaint: i64,
}

impl Head {
    fn with(self, t: Tail) -> SubscriberState {
        SubscriberState {
            watermark: self.watermark,
            windows: self.windows,
            calendars: self.calendars,
            lasts: self.lasts,
            since: self.since,
            cooldowns: self.cooldowns,
            seen_ids: t.seen_ids,
            seen_floor: t.seen_floor,
            contacts: t.contacts,
            outcomes: t.outcomes,
            last_complaint: t.last_complaint,
            pending: ThinVec::new(),
        }
    }
}

/// The first stored form, read so state saved by earlier versions still loads.
mod v1 {
    use serde::Deserialize;
    use smallvec::SmallVec;
    use thin_vec::ThinVec;

    use super::{Head, SubscriberState, Tail};

    #[derive(Deserialize)]
    pub struct State {
        head: Head,
        /// Full 64-bit id hashes, no times.
        recent_ids: SmallVec<[u64; 8]>,
        #[allow(dead_code)] // the day is implied by the watermark
        sent_day: i32,
        sent_today: u16,
        last_complaint: i64,
    }

    impl From<State> for SubscriberState {
        fn from(s: State) -> Self {
            // The old ring kept no times: its ids count as seen at the watermark.
            let watermark = s.head.watermark;
            let at = super::minute(watermark);
            s.head.with(Tail {
                seen_ids: s
                    .recent_ids
                    .iter()
                    .map(|h| (at, (h ^ (h >> 32)) as u32))
                    .collect(),
                seen_floor: 0,
                contacts: super::v2::day_count_as_contacts(watermark, s.sent_today),
                outcomes: ThinVec::new(),
                last_complaint: s.last_complaint,
            })
        }
    }
}

/// The second stored form: a count of the day's marketing messages instead of a log.
mod v2 {
    use serde::Deserialize;
    use thin_vec::ThinVec;

    use super::{Contact, Head, SubscriberState, Tail};

    #[derive(Deserialize)]
    pub struct State {
        head: Head,
        seen_ids: ThinVec<(u32, u32)>,
        seen_floor: u32,
        #[allow(dead_code)] // the day is implied by the watermark below
        sent_day: i32,
        sent_today: u16,
        last_complaint: i64,
    }

    /// The day's count becomes that many contacts of unknown channel at the last event
    /// time: they still count against caps across channels, never against a channel's own.
    pub fn day_count_as_contacts(watermark: i64, sent: u16) -> ThinVec<Contact> {
        (0..sent).map(|_| Contact::new(watermark, 0)).collect()
    }

    impl From<State> for SubscriberState {
        fn from(s: State) -> Self {
            let contacts = day_count_as_contacts(s.head.watermark, s.sent_today);
            s.head.with(Tail {
                seen_ids: s.seen_ids,
                seen_floor: s.seen_floor,
                contacts,
                outcomes: ThinVec::new(),
                last_complaint: s.last_complaint,
            })
        }
    }
}

/// The third stored form: no offers pending an arbitration window, the current form's fields
/// otherwise.
mod v3 {
    use serde::Deserialize;

    use super::{Head, SubscriberState, Tail};

    #[derive(Deserialize)]
    pub struct State {
        head: Head,
        tail: Tail,
    }

    impl From<State> for SubscriberState {
        fn from(s: State) -> Self {
            s.head.with(s.tail)
        }
    }
}
