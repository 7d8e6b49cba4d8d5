//! What a rule sees when it runs: the event, the profile and the subscriber's state, at
//! the event's time. Both the native filters and the Rhai functions read through [`Facts`].

use std::sync::Arc;

use chrono::TimeZone;

use super::query::{Period, StateQuery};
use crate::event::{AttrValue, Event};
use crate::ports::Profile;
use crate::state::{SubscriberState, Val};

/// Local calendar coordinates of an instant in a subscriber's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocalTime {
    pub day: i32,
    pub month: i32,
    pub hour: u32,
}

thread_local! {
    /// The last zone offset worked out: (zone, quarter-hour of UTC time, offset seconds).
    /// Zone rules change offsets only on quarter-hour boundaries, so events close in time
    /// (the usual case: a stream is roughly ordered) skip the transition-table search.
    static LAST_OFFSET: std::cell::Cell<Option<(chrono_tz::Tz, i64, i32)>> = const { std::cell::Cell::new(None) };
}

fn utc_offset(tz: chrono_tz::Tz, epoch: i64) -> i32 {
    use chrono::Offset;
    let quarter = epoch.div_euclid(900);
    if let Some((t, q, off)) = LAST_OFFSET.with(|c| c.get()) {
        if t == tz && q == quarter {
            return off;
        }
    }
    let off = tz
        .offset_from_utc_datetime(
            &chrono::DateTime::from_timestamp(epoch, 0)
                .unwrap_or_default()
                .naive_utc(),
        )
        .fix()
        .local_minus_utc();
    LAST_OFFSET.with(|c| c.set(Some((tz, quarter, off))));
    off
}

/// The zone named `tz_name`, else `fallback` (the operator's zone).
pub fn zone(tz_name: &str, fallback: chrono_tz::Tz) -> chrono_tz::Tz {
    // Most subscribers live in the operator's zone: skip the zone-table lookup for them.
    if tz_name == fallback.name() {
        fallback
    } else {
        tz_name.parse().unwrap_or(fallback)
    }
}

impl LocalTime {
    pub fn of(epoch: i64, tz_name: &str, fallback: chrono_tz::Tz) -> LocalTime {
        LocalTime::in_zone(epoch, zone(tz_name, fallback))
    }

    pub fn in_zone(epoch: i64, tz: chrono_tz::Tz) -> LocalTime {
        let local = epoch + i64::from(utc_offset(tz, epoch));
        let days = local.div_euclid(86_400);
        let (year, month) = civil_from_days(days);
        LocalTime {
            // Days from 0001-01-01 (day 1), as chrono's `num_days_from_ce` counts them.
            day: (days + 719_163) as i32,
            month: (year * 12) as i32 + month as i32 - 1,
            hour: (local.rem_euclid(86_400) / 3_600) as u32,
        }
    }
}

/// Days since 1970-01-01 -> (year, month 1..=12) in the proleptic Gregorian calendar, by
/// Howard Hinnant's `civil_from_days`: a few multiplications, where going through chrono's
/// date types cost ~200 instructions per event.
fn civil_from_days(days: i64) -> (i64, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month as u32)
}

/// A value a query returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    None,
    Num(f64),
    Text(smol_str::SmolStr),
    Bool(bool),
}

impl Fact {
    pub fn from_attr(v: Option<&AttrValue>) -> Fact {
        match v {
            Some(AttrValue::Int(i)) => Fact::Num(*i as f64),
            Some(AttrValue::Float(f)) => Fact::Num(*f),
            Some(AttrValue::Str(s)) => Fact::Text(s.clone()),
            Some(AttrValue::Bool(b)) => Fact::Bool(*b),
            _ => Fact::None,
        }
    }
    fn from_val(v: &Val) -> Fact {
        match v {
            Val::None => Fact::None,
            Val::Num(n) => Fact::Num(*n),
            Val::Text(t) => Fact::Text(t.clone()),
            Val::Bool(b) => Fact::Bool(*b),
        }
    }
    pub fn to_dynamic(&self) -> rhai::Dynamic {
        match self {
            Fact::None => rhai::Dynamic::UNIT,
            Fact::Num(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => rhai::Dynamic::from(*n as i64),
            Fact::Num(n) => rhai::Dynamic::from(*n),
            Fact::Text(t) => rhai::ImmutableString::from(t.as_str()).into(),
            Fact::Bool(b) => rhai::Dynamic::from(*b),
        }
    }
}

pub struct Facts<'a> {
    pub event: &'a Event,
    pub profile: &'a Profile,
    pub state: &'a SubscriberState,
    pub now: i64,
    pub local: LocalTime,
}

impl Facts<'_> {
    pub fn query(&self, q: &StateQuery) -> Fact {
        let st = self.state;
        match q {
            StateQuery::Window(d) => {
                let v = st.window(d, self.now);
                if v.is_nan() {
                    Fact::None
                } else {
                    Fact::Num(v)
                }
            }
            StateQuery::Avg { sum, count } => {
                let c = st.window(count, self.now);
                if c == 0.0 {
                    Fact::None
                } else {
                    Fact::Num(st.window(sum, self.now) / c)
                }
            }
            StateQuery::Calendar(d, period) => {
                let unit_now = match &d.def {
                    crate::state::SeriesDef::Calendar {
                        unit: crate::state::Calendar::Day,
                        ..
                    } => self.local.day,
                    _ => self.local.month,
                };
                let p = match period {
                    Period::Current => unit_now,
                    Period::Previous => unit_now - 1,
                };
                Fact::Num(st.calendar(d, p))
            }
            StateQuery::Last(d) => st
                .last(d)
                .map(|l| Fact::from_val(&l.val))
                .unwrap_or(Fact::None),
            StateQuery::Previous(d) => st
                .last(d)
                .map(|l| Fact::from_val(&l.prev))
                .unwrap_or(Fact::None),
            StateQuery::SecondsSince(d) => st
                .last(d)
                .map(|l| Fact::Num((self.now - l.ts) as f64))
                .unwrap_or(Fact::None),
            StateQuery::CountSince(d) => Fact::Num(f64::from(st.count_since(d))),
            StateQuery::Dwell(d) => st
                .last(d)
                .map(|l| Fact::Num((self.now - l.ts) as f64))
                .unwrap_or(Fact::None),
            StateQuery::Changed(d) => {
                let crate::state::SeriesDef::Last { attr: Some(a), .. } = &d.def else {
                    return Fact::Bool(false);
                };
                let cur = Fact::from_attr(self.event.attr(a));
                let before = st
                    .last(d)
                    .map(|l| Fact::from_val(&l.val))
                    .unwrap_or(Fact::None);
                Fact::Bool(cur != Fact::None && before != Fact::None && cur != before)
            }
            StateQuery::Growth(d) => {
                let crate::state::SeriesDef::Last { attr: Some(a), .. } = &d.def else {
                    return Fact::None;
                };
                let cur = self.event.attr(a).and_then(|v| v.as_f64());
                let prev = st.last(d).and_then(|l| match l.val {
                    Val::Num(n) => Some(n),
                    _ => None,
                });
                match (cur, prev) {
                    (Some(c), Some(p)) if p != 0.0 => Fact::Num((c - p) / p * 100.0),
                    _ => Fact::None,
                }
            }
        }
    }

    pub fn attr(&self, name: &str) -> Fact {
        match name {
            "msisdn" => Fact::Text(self.event.msisdn.to_string().into()),
            "type" => Fact::Text(self.event.kind.as_str().into()),
            _ => Fact::from_attr(self.event.attr(name)),
        }
    }

    pub fn profile(&self, name: &str) -> Fact {
        profile_fact(self.profile, name)
    }
}

/// The profile's own fields, as [`profile_fact`] names them; anything else is read from the
/// CRM's extra fields.
pub const PROFILE_FIELDS: &[&str] = &[
    "known",
    "value_tier",
    "arpu_cents",
    "plan",
    "home_country",
    "language",
    "segment",
    "tenure_months",
    "credit_class",
    "churn_score",
    "timezone",
    "customer_id",
];

pub fn profile_fact(p: &Profile, name: &str) -> Fact {
    match name {
        "known" => Fact::Bool(p.known),
        "value_tier" => Fact::Text(p.value_tier.clone()),
        "arpu_cents" => Fact::Num(p.arpu_cents as f64),
        "plan" => Fact::Text(p.plan.clone()),
        "home_country" => Fact::Text(p.home_country.clone()),
        "language" => Fact::Text(p.language.clone()),
        "segment" => Fact::Text(p.segment.clone()),
        "tenure_months" => Fact::Num(p.tenure_months as f64),
        "credit_class" => Fact::Text(p.credit_class.clone()),
        "churn_score" => Fact::Num(p.churn_score),
        "timezone" => Fact::Text(p.timezone.clone()),
        "customer_id" => p
            .customer_id
            .as_ref()
            .map(|c| Fact::Text(c.into()))
            .unwrap_or(Fact::None),
        other => match p.extra.get(other) {
            Some(v) => Fact::from_attr(Some(&AttrValue::from_json(v.clone()))),
            None => Fact::None,
        },
    }
}

/// An owned copy of the facts, handed to Rhai as the evaluation's tag.
#[derive(Clone)]
pub struct SharedFacts(pub Arc<OwnedFacts>);

pub struct OwnedFacts {
    pub event: Arc<Event>,
    pub profile: Arc<Profile>,
    pub state: SubscriberState,
    pub now: i64,
    pub local: LocalTime,
}

impl OwnedFacts {
    pub fn facts(&self) -> Facts<'_> {
        Facts {
            event: &self.event,
            profile: &self.profile,
            state: &self.state,
            now: self.now,
            local: self.local,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_profile_field_is_one_profile_fact_reads_itself() {
        // A name listed but not matched in `profile_fact` would read the CRM's extra fields
        // through its fast getter instead of the profile's own field.
        let mut p = Profile::default();
        for &name in PROFILE_FIELDS {
            p.extra.insert(name.to_string(), "from extra".into());
        }
        for &name in PROFILE_FIELDS {
            assert_ne!(
                profile_fact(&p, name),
                Fact::Text("from extra".into()),
                "{name}"
            );
        }
    }

    #[test]
    fn local_calendar_matches_chrono_across_centuries() {
        use chrono::{Datelike, Timelike};
        let utc = chrono_tz::Tz::UTC;
        let check = |epoch: i64| {
            let t = chrono::DateTime::from_timestamp(epoch, 0)
                .unwrap()
                .naive_utc();
            let want = LocalTime {
                day: t.date().num_days_from_ce(),
                month: t.year() * 12 + t.month0() as i32,
                hour: t.hour(),
            };
            assert_eq!(LocalTime::of(epoch, "UTC", utc), want, "{t}");
        };
        // Month and leap-day edges, before the epoch and after it, then a spread of times.
        for edge in [
            "1600-02-29T23:59:59Z",
            "1899-12-31T23:00:00Z",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00Z",
            "2000-02-29T12:00:00Z",
            "2000-03-01T00:00:00Z",
            "2026-11-30T23:59:59Z",
            "2026-12-01T00:00:00Z",
            "2100-02-28T23:59:59Z",
            "2100-03-01T00:00:00Z",
            "2400-02-29T01:00:00Z",
        ] {
            let e = chrono::DateTime::parse_from_rfc3339(edge)
                .unwrap()
                .timestamp();
            for d in [-1, 0, 1] {
                check(e + d);
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check((x % 25_000_000_000) as i64 - 12_500_000_000);
        }
    }

    #[test]
    fn local_time_follows_the_zone_and_its_daylight_saving() {
        let sh: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        // 2026-11-23T16:30:00Z is 00:30 the next day in Shanghai.
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-23T16:30:00Z")
            .unwrap()
            .timestamp();
        let l = LocalTime::of(t, "Asia/Shanghai", sh);
        assert_eq!(l.hour, 0);
        let utc = LocalTime::of(t, "UTC", sh);
        assert_eq!(utc.hour, 16);
        assert_eq!(l.day, utc.day + 1);
        // Berlin: UTC+2 in summer, UTC+1 in winter, across the October switch.
        let summer = chrono::DateTime::parse_from_rfc3339("2026-10-25T00:30:00Z")
            .unwrap()
            .timestamp();
        let winter = chrono::DateTime::parse_from_rfc3339("2026-10-25T01:30:00Z")
            .unwrap()
            .timestamp();
        assert_eq!(LocalTime::of(summer, "Europe/Berlin", sh).hour, 2);
        assert_eq!(LocalTime::of(winter, "Europe/Berlin", sh).hour, 2);
        assert_eq!(LocalTime::of(winter + 3600, "Europe/Berlin", sh).hour, 3);
        // An unknown zone falls back to the operator's.
        assert_eq!(LocalTime::of(t, "Mars/Olympus", sh), l);
    }
}
