//! State queries a rule can make, shared by the declarative `when` filters and the Rhai
//! built-in functions, so both read the same series the same way.

use smol_str::SmolStr;

use crate::event::EventType;
use crate::state::{parse_duration_secs, Agg, Calendar, Series, SeriesDef};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Current,
    Previous,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StateQuery {
    Window(Series),
    /// sum / count over the same window.
    Avg {
        sum: Series,
        count: Series,
    },
    Calendar(Series, Period),
    Last(Series),
    Previous(Series),
    SecondsSince(Series),
    CountSince(Series),
    /// Percent change of the current event's attribute over the last one of the same type.
    Growth(Series),
    /// Whether the current event's attribute differs from the last one of the same type.
    Changed(Series),
    /// Seconds the attribute has had its latest earlier value, up to the current event.
    Dwell(Series),
}

impl StateQuery {
    /// The series this query needs kept.
    pub fn defs(&self) -> Vec<SeriesDef> {
        match self {
            StateQuery::Avg { sum, count } => vec![sum.def.clone(), count.def.clone()],
            StateQuery::Window(d)
            | StateQuery::Calendar(d, _)
            | StateQuery::Last(d)
            | StateQuery::Previous(d)
            | StateQuery::SecondsSince(d)
            | StateQuery::CountSince(d)
            | StateQuery::Growth(d)
            | StateQuery::Changed(d)
            | StateQuery::Dwell(d) => vec![d.def.clone()],
        }
    }
}

/// Names and argument lists of every state function, for docs and the unknown-function check.
pub const STATE_FUNCTIONS: &[(&str, &str)] = &[
    ("count", "type, window"),
    ("sum", "type, attr, window"),
    ("min", "type, attr, window"),
    ("max", "type, attr, window"),
    ("avg", "type, attr, window"),
    ("distinct", "type, attr, window"),
    ("count_today", "type"),
    ("sum_today", "type, attr"),
    ("count_this_month", "type"),
    ("sum_this_month", "type, attr"),
    ("count_last_month", "type"),
    ("sum_last_month", "type, attr"),
    ("last", "type, attr"),
    ("previous", "type, attr"),
    ("seconds_since", "type"),
    ("count_since", "type, reset_type"),
    ("growth_pct", "type, attr"),
    ("changed", "type, attr"),
    ("dwell_seconds", "type, attr"),
];

pub fn is_state_function(name: &str) -> bool {
    STATE_FUNCTIONS.iter().any(|(n, _)| *n == name)
}

/// An event type, optionally narrowed to events with one attribute value:
/// `"call"` or `"call[international=true]"`.
fn ty(s: &str) -> Result<SmolStr, String> {
    let (base, filter) = crate::state::split_filter(s);
    let t = EventType::parse(base)
        .ok_or_else(|| format!("{base:?} is not an event type (snake_case, like \"sms\")"))?;
    match filter {
        None if s.contains('[') => Err(format!(
            "{s:?}: write the filter as type[attribute=value], like \"call[international=true]\""
        )),
        None => Ok(SmolStr::new(t.as_str())),
        Some(f) if f.attr.is_empty() || f.value.is_empty() || !s.ends_with(']') => Err(format!(
            "{s:?}: write the filter as type[attribute=value], like \"call[international=true]\""
        )),
        Some(f) => Ok(SmolStr::new(format!(
            "{}[{}={}]",
            t.as_str(),
            f.attr,
            f.value
        ))),
    }
}

fn attr(s: &str) -> Result<SmolStr, String> {
    if s.is_empty() || s.len() > 64 {
        return Err(format!("{s:?} is not an attribute name"));
    }
    Ok(SmolStr::new(s))
}

/// Builds a query from a function name and its literal arguments.
pub fn parse_call(name: &str, args: &[&str]) -> Result<StateQuery, String> {
    let want = STATE_FUNCTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| format!("unknown state function {name}()"))?;
    let arity = want.1.split(',').count();
    if args.len() != arity {
        return Err(format!(
            "{name}() takes {arity} arguments ({}), got {}",
            want.1,
            args.len()
        ));
    }
    let window = |agg, a: Option<&str>, w: &str| -> Result<Series, String> {
        Ok(SeriesDef::Window {
            ty: ty(args[0])?,
            attr: a.map(attr).transpose()?,
            agg,
            span_secs: parse_duration_secs(w)?,
        }
        .into())
    };
    let cal = |a: Option<&str>, unit| -> Result<Series, String> {
        Ok(SeriesDef::Calendar {
            ty: ty(args[0])?,
            attr: a.map(attr).transpose()?,
            unit,
        }
        .into())
    };
    let last = |a: Option<&str>| -> Result<Series, String> {
        Ok(SeriesDef::Last {
            ty: ty(args[0])?,
            attr: a.map(attr).transpose()?,
        }
        .into())
    };
    Ok(match name {
        "count" => StateQuery::Window(window(Agg::Count, None, args[1])?),
        "sum" => StateQuery::Window(window(Agg::Sum, Some(args[1]), args[2])?),
        "min" => StateQuery::Window(window(Agg::Min, Some(args[1]), args[2])?),
        "max" => StateQuery::Window(window(Agg::Max, Some(args[1]), args[2])?),
        "distinct" => StateQuery::Window(window(Agg::Distinct, Some(args[1]), args[2])?),
        "avg" => StateQuery::Avg {
            sum: window(Agg::Sum, Some(args[1]), args[2])?,
            count: window(Agg::Count, None, args[2])?,
        },
        "count_today" => StateQuery::Calendar(cal(None, Calendar::Day)?, Period::Current),
        "sum_today" => StateQuery::Calendar(cal(Some(args[1]), Calendar::Day)?, Period::Current),
        "count_this_month" => StateQuery::Calendar(cal(None, Calendar::Month)?, Period::Current),
        "sum_this_month" => {
            StateQuery::Calendar(cal(Some(args[1]), Calendar::Month)?, Period::Current)
        }
        "count_last_month" => StateQuery::Calendar(cal(None, Calendar::Month)?, Period::Previous),
        "sum_last_month" => {
            StateQuery::Calendar(cal(Some(args[1]), Calendar::Month)?, Period::Previous)
        }
        "last" => StateQuery::Last(last(Some(args[1]))?),
        "previous" => StateQuery::Previous(last(Some(args[1]))?),
        "seconds_since" => StateQuery::SecondsSince(last(None)?),
        "growth_pct" => StateQuery::Growth(last(Some(args[1]))?),
        "changed" => StateQuery::Changed(last(Some(args[1]))?),
        "dwell_seconds" => StateQuery::Dwell(
            SeriesDef::Dwell {
                ty: ty(args[0])?,
                attr: attr(args[1])?,
            }
            .into(),
        ),
        "count_since" => StateQuery::CountSince(
            SeriesDef::CountSince {
                ty: ty(args[0])?,
                reset: ty(args[1])?,
            }
            .into(),
        ),
        _ => unreachable!("listed in STATE_FUNCTIONS"),
    })
}

/// Parses `count(sms, 24h)` (the `when` key form, quotes optional).
pub fn parse_expr(text: &str) -> Result<Option<StateQuery>, String> {
    let t = text.trim();
    let Some(open) = t.find('(') else {
        return Ok(None);
    };
    if !t.ends_with(')') {
        return Err(format!("{t:?}: missing closing parenthesis"));
    }
    let name = t[..open].trim();
    let inner = &t[open + 1..t.len() - 1];
    let args: Vec<&str> = inner
        .split(',')
        .map(|a| a.trim().trim_matches('"').trim_matches('\''))
        .filter(|a| !a.is_empty())
        .collect();
    parse_call(name, &args).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_calls_and_expressions() {
        assert!(matches!(
            parse_call("count", &["sms", "24h"]),
            Ok(StateQuery::Window(Series {
                def: SeriesDef::Window {
                    span_secs: 86400,
                    ..
                },
                ..
            }))
        ));
        assert!(matches!(
            parse_expr("count_since(missed_call, power_off)"),
            Ok(Some(StateQuery::CountSince(_)))
        ));
        assert_eq!(parse_expr("roaming"), Ok(None));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = parse_call("count", &["sms"]).unwrap_err();
        assert!(e.contains("takes 2 arguments"), "{e}");
        let e = parse_call("count", &["SMS!", "24h"]).unwrap_err();
        assert!(e.contains("not an event type"), "{e}");
        let e = parse_call("count", &["sms", "a while"]).unwrap_err();
        assert!(e.contains("not a duration"), "{e}");
        let e = parse_expr("count(sms, 24h").unwrap_err();
        assert!(e.contains("parenthesis"), "{e}");
    }
}

#[cfg(test)]
mod filter_tests {
    use super::*;

    #[test]
    fn types_may_carry_an_attribute_filter() {
        let q = parse_call("count", &["call[international=true]", "7d"]).unwrap();
        let StateQuery::Window(Series {
            def: SeriesDef::Window { ty, .. },
            ..
        }) = q
        else {
            panic!()
        };
        assert_eq!(ty, "call[international=true]");
        let e = parse_call("count", &["call[international]", "7d"]).unwrap_err();
        assert!(e.contains("type[attribute=value]"), "{e}");
        let e = parse_call("count", &["call[x=1", "7d"]).unwrap_err();
        assert!(e.contains("type[attribute=value]"), "{e}");
    }
}
