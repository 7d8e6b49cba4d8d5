//! What real-time state the loaded rules read. Only these series are kept per subscriber.
//!
//! Each series has a stable fingerprint (a hash of its definition), so state written by one
//! rule set is still found after a reload or a restart with the same rules.

use smol_str::SmolStr;

use crate::event::{EventType, TypeMap};

/// FNV-1a, 32 bit, fed as text.
struct Fnv(u32);

impl Fnv {
    fn feed(&mut self, parts: &[&str]) {
        for p in parts {
            for b in p.bytes() {
                self.0 ^= u32::from(b);
                self.0 = self.0.wrapping_mul(0x0100_0193);
            }
        }
    }

    /// Feeds the decimal digits of `n`, as `format!("{n}")` would write them.
    fn feed_int(&mut self, n: i64) {
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        let mut v = n.unsigned_abs();
        loop {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        if n < 0 {
            self.feed(&["-"]);
        }
        self.feed(&[std::str::from_utf8(&buf[i..]).expect("ascii digits")]);
    }
}

/// Sliding-window aggregate kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Agg {
    Count,
    Sum,
    Min,
    Max,
    Distinct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Calendar {
    Day,
    Month,
}

/// A series definition. `attr` is `None` for counts and timestamps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SeriesDef {
    Window {
        ty: SmolStr,
        attr: Option<SmolStr>,
        agg: Agg,
        span_secs: i64,
    },
    Calendar {
        ty: SmolStr,
        attr: Option<SmolStr>,
        unit: Calendar,
    },
    /// Last (and previous) value of an attribute, or last time of a type when `attr` is None.
    Last { ty: SmolStr, attr: Option<SmolStr> },
    /// Events of `ty` since the last event of `reset`.
    CountSince { ty: SmolStr, reset: SmolStr },
    /// The value of an attribute and since when it has had it (kept as a [`LastData`]
    /// whose `ts` moves only when the value changes): dwell time in a region, a cell.
    ///
    /// [`LastData`]: super::LastData
    Dwell { ty: SmolStr, attr: SmolStr },
}

impl SeriesDef {
    /// Stable across processes and builds (FNV-1a of a canonical text form).
    pub fn fingerprint(&self) -> u32 {
        // The hash of a canonical text form, fed piece by piece (no formatting machinery, no
        // allocation): this runs on every state query. The pinned test below guards the text.
        let mut h = Fnv(0x811c_9dc5);
        match self {
            SeriesDef::Window {
                ty,
                attr,
                agg,
                span_secs,
            } => {
                let agg = match agg {
                    Agg::Count => "Count",
                    Agg::Sum => "Sum",
                    Agg::Min => "Min",
                    Agg::Max => "Max",
                    Agg::Distinct => "Distinct",
                };
                h.feed(&["w|", ty, "|", attr.as_deref().unwrap_or(""), "|", agg, "|"]);
                h.feed_int(*span_secs);
            }
            SeriesDef::Calendar { ty, attr, unit } => {
                let unit = match unit {
                    Calendar::Day => "Day",
                    Calendar::Month => "Month",
                };
                h.feed(&["c|", ty, "|", attr.as_deref().unwrap_or(""), "|", unit]);
            }
            SeriesDef::Last { ty, attr } => h.feed(&["l|", ty, "|", attr.as_deref().unwrap_or("")]),
            SeriesDef::CountSince { ty, reset } => h.feed(&["s|", ty, "|", reset]),
            SeriesDef::Dwell { ty, attr } => h.feed(&["d|", ty, "|", attr]),
        }
        h.0
    }

    /// Window buckets: 1/24 of the span (an hour for a day, 30 h for 30 days), at least 1 s.
    pub fn bucket_secs(span_secs: i64) -> i64 {
        (span_secs / 24).max(1)
    }
}

/// A series definition with its fingerprint worked out once: rules query state on every
/// event they see, and hashing the definition each time was a visible cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub def: SeriesDef,
    pub fp: u32,
}

impl From<SeriesDef> for Series {
    fn from(def: SeriesDef) -> Series {
        let fp = def.fingerprint();
        Series { def, fp }
    }
}

/// `call[international=true]`: only events whose attribute has that value feed the series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub attr: SmolStr,
    pub value: SmolStr,
    /// `value` as an integer when it is one in canonical form ("3", not "03" or "+3"), worked
    /// out once here so integer attributes compare without formatting.
    int: Option<i64>,
}

impl Filter {
    pub fn passes(f: &Option<Filter>, ev: &crate::event::Event) -> bool {
        match f {
            None => true,
            Some(f) => ev.attr(&f.attr).is_some_and(|v| f.matches(v)),
        }
    }

    /// Whether the value's text form is the filter's value, without formatting it (this runs
    /// for every event of a filtered type).
    fn matches(&self, v: &crate::event::AttrValue) -> bool {
        use crate::event::AttrValue;
        let want = self.value.as_str();
        match v {
            AttrValue::Str(s) => s == want,
            AttrValue::Bool(b) => want == if *b { "true" } else { "false" },
            AttrValue::Int(i) => self.int == Some(*i),
            other => other.to_string() == want,
        }
    }
}

/// Splits `type[attr=value]` into the event type and its filter.
pub fn split_filter(ty: &str) -> (&str, Option<Filter>) {
    match ty.split_once('[') {
        Some((base, rest)) => {
            let inner = rest.trim_end_matches(']');
            let filter = inner.split_once('=').map(|(a, v)| {
                let value = v.trim();
                Filter {
                    attr: SmolStr::new(a.trim()),
                    value: SmolStr::new(value),
                    int: value.parse::<i64>().ok().filter(|n| n.to_string() == value),
                }
            });
            (base.trim(), filter)
        }
        None => (ty, None),
    }
}

/// Updates to apply for one event type, as fingerprints with their definitions and filters.
#[derive(Debug, Default, Clone)]
pub struct TypeUpdates {
    pub windows: Vec<(u32, SeriesDef, Option<Filter>)>,
    pub calendars: Vec<(u32, SeriesDef, Option<Filter>)>,
    pub lasts: Vec<(u32, SeriesDef, Option<Filter>)>,
    pub since_inc: Vec<(u32, Option<Filter>)>,
    pub since_reset: Vec<(u32, Option<Filter>)>,
}

/// Every series the rule set reads, indexed by the event type that updates it.
#[derive(Debug, Default, Clone)]
pub struct StateSpec {
    /// Each series once, with its fingerprint.
    pub defs: Vec<Series>,
    by_type: TypeMap<TypeUpdates>,
    /// The longest window span, bounding how long buckets are kept.
    pub max_span_secs: i64,
}

impl StateSpec {
    pub fn new(defs: impl IntoIterator<Item = SeriesDef>) -> StateSpec {
        let mut spec = StateSpec::default();
        for d in defs {
            if spec.contains(&d) {
                continue;
            }
            let fp = d.fingerprint();
            match &d {
                SeriesDef::Window { ty, span_secs, .. } => {
                    spec.max_span_secs = spec.max_span_secs.max(*span_secs);
                    let (base, f) = split_filter(ty);
                    spec.entry(base).windows.push((fp, d.clone(), f));
                }
                SeriesDef::Calendar { ty, .. } => {
                    let (base, f) = split_filter(ty);
                    spec.entry(base).calendars.push((fp, d.clone(), f));
                }
                SeriesDef::Last { ty, .. } | SeriesDef::Dwell { ty, .. } => {
                    let (base, f) = split_filter(ty);
                    spec.entry(base).lasts.push((fp, d.clone(), f));
                }
                SeriesDef::CountSince { ty, reset } => {
                    let (base, f) = split_filter(ty);
                    spec.entry(base).since_inc.push((fp, f));
                    let (base, f) = split_filter(reset);
                    spec.entry(base).since_reset.push((fp, f));
                }
            }
            spec.defs.push(Series { def: d, fp });
        }
        spec
    }

    fn entry(&mut self, ty: &str) -> &mut TypeUpdates {
        self.by_type.entry(ty)
    }

    pub fn updates_for(&self, ty: &EventType) -> Option<&TypeUpdates> {
        self.by_type.get(ty)
    }

    pub fn contains(&self, def: &SeriesDef) -> bool {
        self.defs.iter().any(|s| s.def == *def)
    }
}

/// Parses "24h", "30d", "15m", "90s", "2w".
pub fn parse_duration_secs(s: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration like \"24h\", \"30d\" or \"15m\" ({e})"))?;
    let secs = d.as_secs() as i64;
    if secs == 0 {
        return Err(format!("{s:?} must be at least one second"));
    }
    Ok(secs)
}

/// Parses a share like `"5%"` or `"0.5%"` into basis points.
pub fn parse_share_bp(s: &str) -> Result<u32, String> {
    let n = s
        .trim()
        .strip_suffix('%')
        .ok_or_else(|| format!("{s:?} must be a percentage like \"5%\""))?;
    let pct: f64 = n
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} must be a percentage like \"5%\""))?;
    if !(0.0..=100.0).contains(&pct) {
        return Err(format!("{s:?} must be between 0% and 100%"));
    }
    Ok((pct * 100.0).round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(name: &str) -> EventType {
        EventType::parse(name).unwrap()
    }

    #[test]
    fn filters_compare_the_text_form_of_values() {
        use crate::event::AttrValue;
        let f = |v: &str| split_filter(&format!("call[x={v}]")).1.unwrap();
        assert!(f("true").matches(&AttrValue::Bool(true)));
        assert!(!f("true").matches(&AttrValue::Bool(false)));
        assert!(f("FR").matches(&AttrValue::Str("FR".into())));
        assert!(!f("FR").matches(&AttrValue::Str("fr".into())));
        assert!(f("3").matches(&AttrValue::Int(3)));
        assert!(f("-12").matches(&AttrValue::Int(-12)));
        assert!(f("0").matches(&AttrValue::Int(0)));
        for not_canonical in ["03", "+3", "-0", "3.0"] {
            let want = if not_canonical == "-0" { 0 } else { 3 };
            assert!(
                !f(not_canonical).matches(&AttrValue::Int(want)),
                "{not_canonical}"
            );
        }
        assert!(f("2.5").matches(&AttrValue::Float(2.5)));
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        let a = SeriesDef::Window {
            ty: "sms".into(),
            attr: None,
            agg: Agg::Count,
            span_secs: 86400,
        };
        let b = SeriesDef::Window {
            ty: "sms".into(),
            attr: None,
            agg: Agg::Count,
            span_secs: 3600,
        };
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        // Pinned: a change here would orphan every subscriber's stored state.
        assert_eq!(a.fingerprint(), 0x2c51_8330);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration_secs("24h"), Ok(86400));
        assert_eq!(parse_duration_secs("30d"), Ok(30 * 86400));
        assert_eq!(parse_duration_secs("15m"), Ok(900));
        assert!(parse_duration_secs("soon").is_err());
        assert!(parse_duration_secs("0s").is_err());
    }

    #[test]
    fn spec_indexes_by_type_and_dedups() {
        let d = SeriesDef::CountSince {
            ty: "missed_call".into(),
            reset: "power_off".into(),
        };
        let spec = StateSpec::new([d.clone(), d]);
        assert_eq!(spec.defs.len(), 1);
        assert_eq!(
            spec.updates_for(&ty("missed_call"))
                .unwrap()
                .since_inc
                .len(),
            1
        );
        assert_eq!(
            spec.updates_for(&ty("power_off"))
                .unwrap()
                .since_reset
                .len(),
            1
        );
        assert!(spec.updates_for(&ty("sms")).is_none());
    }
}

#[cfg(test)]
mod fingerprint_text {
    use super::*;

    /// The fast fingerprint equals the hash of the documented text form for every kind.
    #[test]
    fn matches_the_text_form() {
        let text_hash = |t: &str| {
            let mut h = Fnv(0x811c_9dc5);
            h.feed(&[t]);
            h.0
        };
        let cases = [
            (
                SeriesDef::Window {
                    ty: "sms".into(),
                    attr: Some("x".into()),
                    agg: Agg::Distinct,
                    span_secs: 2_592_000,
                },
                "w|sms|x|Distinct|2592000",
            ),
            (
                SeriesDef::Window {
                    ty: "call[international=true]".into(),
                    attr: None,
                    agg: Agg::Count,
                    span_secs: 0,
                },
                "w|call[international=true]||Count|0",
            ),
            (
                SeriesDef::Calendar {
                    ty: "bill".into(),
                    attr: Some("amount_cents".into()),
                    unit: Calendar::Month,
                },
                "c|bill|amount_cents|Month",
            ),
            (
                SeriesDef::Last {
                    ty: "power_off".into(),
                    attr: None,
                },
                "l|power_off|",
            ),
            (
                SeriesDef::CountSince {
                    ty: "missed_call".into(),
                    reset: "power_off".into(),
                },
                "s|missed_call|power_off",
            ),
        ];
        for (def, text) in cases {
            assert_eq!(def.fingerprint(), text_hash(text), "{text}");
        }
    }
}
