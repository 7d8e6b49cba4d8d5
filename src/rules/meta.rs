//! The rule's declaration: the map at the top of its file, checked field by field.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use rhai::{Dynamic, Map};

use super::filter::{parse_cmp, parse_operand, Predicate};
use crate::event::{EventType, Known};
use crate::state::parse_duration_secs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Value, spend and business changes.
    Static,
    /// Behaviour.
    Dynamic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Sales offers: capped, held back after a complaint.
    Sales,
    /// Care and service messages: capped, never held back by complaints.
    Care,
    /// Mandatory service notices: bypass marketing caps and marketing opt-outs (a service
    /// consent refused for the channel still stops them).
    Service,
}

/// Event types a static rule may listen to.
pub const STATIC_TYPES: &[Known] = &[
    Known::ProfileChange,
    Known::Bill,
    Known::PlanChange,
    Known::Topup,
    Known::Payment,
    Known::BalanceLow,
    Known::ContractExpiring,
];

#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleMeta {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: RuleKind,
    pub category: Category,
    #[serde(serialize_with = "ser_types")]
    pub events: Vec<EventType>,
    pub priority: i64,
    pub channels: Vec<String>,
    pub offer_code: String,
    pub validity_secs: i64,
    pub cooldown_secs: i64,
    /// Share of matches held out as this rule's control group, in basis points; `None`
    /// takes the contact policy's.
    pub control_bp: Option<u32>,
    pub active_from: Option<DateTime<FixedOffset>>,
    pub active_until: Option<DateTime<FixedOffset>>,
    /// Message templates by language (`en`, `zh`, ...).
    pub message: BTreeMap<String, String>,
    /// A/B test: other messages, by variant name, each by language. Subscribers are split
    /// evenly and for good between `message` (variant `base`) and these.
    pub variants: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(skip)]
    pub filters: Vec<Predicate>,
    /// Event types of the operator's own this rule listens to (outside the contract).
    pub custom_events: Vec<String>,
    /// Profile facts fed by `profile_change` events, beyond the profile's fields and the
    /// CRM's facts.
    pub profile_facts: Vec<String>,
}

fn ser_types<S: serde::Serializer>(v: &[EventType], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|t| t.as_str()))
}

/// A field-level problem; the loader turns `field` into a line number.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaError {
    pub field: String,
    pub message: String,
}

fn err(field: &str, message: impl Into<String>) -> MetaError {
    MetaError {
        field: field.into(),
        message: message.into(),
    }
}

fn text(map: &Map, field: &str, required: bool) -> Result<Option<String>, MetaError> {
    match map.get(field) {
        None if required => Err(err(field, format!("missing field `{field}`"))),
        None => Ok(None),
        Some(v) => v
            .clone()
            .try_cast::<rhai::ImmutableString>()
            .map(|s| Some(s.to_string()))
            .ok_or_else(|| {
                err(
                    field,
                    format!("`{field}` must be text in quotes, got {}", v.type_name()),
                )
            }),
    }
}

fn list(map: &Map, field: &str) -> Result<Vec<String>, MetaError> {
    let Some(v) = map.get(field) else {
        return Ok(Vec::new());
    };
    let arr = v.clone().try_cast::<rhai::Array>().ok_or_else(|| {
        err(
            field,
            format!("`{field}` must be a list like [\"a\", \"b\"]"),
        )
    })?;
    arr.iter()
        .map(|d| {
            d.clone()
                .try_cast::<rhai::ImmutableString>()
                .map(|s| s.to_string())
                .ok_or_else(|| {
                    err(
                        field,
                        format!("every item of `{field}` must be text in quotes"),
                    )
                })
        })
        .collect()
}

fn submap(map: &Map, field: &str) -> Result<Option<Map>, MetaError> {
    match map.get(field) {
        None => Ok(None),
        Some(v) => v.clone().try_cast::<Map>().map(Some).ok_or_else(|| {
            err(
                field,
                format!("`{field}` must be a map like #{{ key: value }}"),
            )
        }),
    }
}

fn date(field: &str, s: &str, end_of_day: bool) -> Result<DateTime<FixedOffset>, MetaError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t);
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| err(field, format!("{s:?} is not a date like \"2026-12-31\"")))?;
    let t = if end_of_day {
        d.and_hms_opt(23, 59, 59)
    } else {
        d.and_hms_opt(0, 0, 0)
    }
    .expect("valid time");
    // Dates without a zone are the operator's local dates (UTC+8 by convention here).
    Ok(FixedOffset::east_opt(8 * 3600)
        .expect("valid offset")
        .from_local_datetime(&t)
        .single()
        .expect("fixed offsets are unambiguous"))
}

pub const FIELDS: &[&str] = &[
    "id",
    "name",
    "description",
    "kind",
    "category",
    "events",
    "priority",
    "channels",
    "offer",
    "message",
    "variants",
    "cooldown",
    "control",
    "active",
    "audience",
    "when",
    "tests",
    "custom_events",
    "profile_facts",
];

pub fn parse(map: &Map, known_channels: &[String]) -> Result<RuleMeta, MetaError> {
    for k in map.keys() {
        if !FIELDS.contains(&k.as_str()) {
            return Err(err(
                k,
                format!("unknown field `{k}`; the fields are: {}", FIELDS.join(", ")),
            ));
        }
    }
    let id = text(map, "id", true)?.unwrap_or_default();
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(err(
            "id",
            format!("id {id:?} must be lowercase letters, digits and dashes"),
        ));
    }
    let name = text(map, "name", true)?.unwrap_or_default();
    let description = text(map, "description", false)?.unwrap_or_default();
    let kind = match text(map, "kind", true)?.as_deref() {
        Some("static") => RuleKind::Static,
        Some("dynamic") => RuleKind::Dynamic,
        other => {
            return Err(err(
                "kind",
                format!("kind must be \"static\" or \"dynamic\", got {other:?}"),
            ))
        }
    };
    let category = match text(map, "category", false)?.as_deref() {
        None | Some("sales") => Category::Sales,
        Some("care") => Category::Care,
        Some("service") => Category::Service,
        Some(other) => {
            return Err(err(
                "category",
                format!("category must be \"sales\", \"care\" or \"service\", got {other:?}"),
            ))
        }
    };
    let names = list(map, "events")?;
    if names.is_empty() {
        return Err(err(
            "events",
            "`events` must list at least one event type, like [\"sms\"]",
        ));
    }
    let mut events = Vec::new();
    for n in &names {
        let t = EventType::parse(n).ok_or_else(|| {
            err(
                "events",
                format!("{n:?} is not an event type (snake_case, like \"location_update\")"),
            )
        })?;
        if kind == RuleKind::Static {
            if let EventType::Known(k) = t {
                if !STATIC_TYPES.contains(&k) {
                    return Err(err(
                        "events",
                        format!(
                            "a static rule reacts to value and business changes; {n:?} is behaviour: make the rule kind \"dynamic\" or use one of {}",
                            STATIC_TYPES.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }
        events.push(t);
    }
    let priority = match map.get("priority") {
        None => 50,
        Some(v) => v
            .as_int()
            .ok()
            .filter(|p| (0..=100).contains(p))
            .ok_or_else(|| err("priority", "priority must be a whole number from 0 to 100"))?,
    };
    let channels = list(map, "channels")?;
    if channels.is_empty() {
        return Err(err(
            "channels",
            "`channels` must list at least one channel, like [\"sms\"]",
        ));
    }
    for c in &channels {
        if !known_channels.contains(c) {
            return Err(err(
                "channels",
                format!(
                    "unknown channel {c:?}; configured channels: {}",
                    known_channels.join(", ")
                ),
            ));
        }
    }
    let offer = submap(map, "offer")?.ok_or_else(|| {
        err(
            "offer",
            "missing field `offer` (#{ code: \"...\", validity: \"7d\" })",
        )
    })?;
    let offer_code = text(&offer, "code", true)
        .map_err(|e| err("offer", format!("offer: {}", e.message)))?
        .unwrap_or_default();
    let validity_secs =
        match text(&offer, "validity", false).map_err(|e| err("offer", e.message))? {
            None => 7 * 86400,
            Some(v) => {
                parse_duration_secs(&v).map_err(|e| err("offer", format!("offer validity: {e}")))?
            }
        };
    let cooldown_secs = match text(map, "cooldown", false)? {
        None => 0,
        Some(v) => parse_duration_secs(&v).map_err(|e| err("cooldown", e))?,
    };
    let control_bp = match text(map, "control", false)? {
        None => None,
        Some(v) => Some(
            crate::state::parse_share_bp(&v)
                .map_err(|e| err("control", format!("control: {e}")))?,
        ),
    };
    let (mut active_from, mut active_until) = (None, None);
    if let Some(active) = submap(map, "active")? {
        if let Some(f) = text(&active, "from", false).map_err(|e| err("active", e.message))? {
            active_from = Some(date("active", &f, false)?);
        }
        // `to`: `until` is a Rhai keyword, so only `"until"` (quoted) parses.
        let until = match text(&active, "to", false).map_err(|e| err("active", e.message))? {
            Some(t) => Some(t),
            None => text(&active, "until", false).map_err(|e| err("active", e.message))?,
        };
        if let Some(u) = until {
            active_until = Some(date("active", &u, true)?);
        }
    }
    let message = match map.get("message") {
        None => {
            return Err(err(
                "message",
                "missing field `message` (text, or #{ en: \"...\", zh: \"...\" })",
            ))
        }
        Some(v) => texts("message", v)?,
    };
    let mut variants = BTreeMap::new();
    if let Some(m) = submap(map, "variants")? {
        for (name, v) in m {
            if name.as_str() == BASE_VARIANT {
                return Err(err(
                    "variants",
                    format!("variants: `{BASE_VARIANT}` is the name of `message` itself"),
                ));
            }
            variants.insert(name.to_string(), texts("variants", &v)?);
        }
    }
    let mut filters = Vec::new();
    for (field, profile_only) in [("when", false), ("audience", true)] {
        if let Some(m) = submap(map, field)? {
            for (k, v) in m {
                let operand = parse_operand(&k, profile_only).map_err(|e| err(field, e))?;
                let cmp = parse_cmp(&v).map_err(|e| err(field, format!("{k}: {e}")))?;
                filters.push(Predicate {
                    operand,
                    cmp,
                    text: k.to_string(),
                });
            }
        }
    }
    Ok(RuleMeta {
        id,
        name,
        description,
        kind,
        category,
        events,
        priority,
        channels,
        offer_code,
        validity_secs,
        cooldown_secs,
        control_bp,
        active_from,
        active_until,
        message,
        variants,
        filters,
        custom_events: list(map, "custom_events")?,
        profile_facts: list(map, "profile_facts")?,
    })
}

/// The variant name of the rule's own `message` in an A/B test.
pub const BASE_VARIANT: &str = "base";

/// A message: text (English) or texts by language.
fn texts(field: &str, v: &Dynamic) -> Result<BTreeMap<String, String>, MetaError> {
    let mut out = BTreeMap::new();
    if let Some(s) = v.clone().try_cast::<rhai::ImmutableString>() {
        out.insert("en".to_string(), s.to_string());
    } else if let Some(m) = v.clone().try_cast::<Map>() {
        for (lang, t) in m {
            let t = t
                .try_cast::<rhai::ImmutableString>()
                .ok_or_else(|| err(field, format!("{field} for {lang:?} must be text")))?;
            out.insert(lang.to_string(), t.to_string());
        }
    } else {
        return Err(err(
            field,
            format!("{field} must be text or #{{ en: \"...\", zh: \"...\" }}"),
        ));
    }
    Ok(out)
}

/// One golden test carried by a rule.
#[derive(Debug, Clone)]
pub struct RuleTest {
    pub name: String,
    pub profile: serde_json::Value,
    pub events: Vec<serde_json::Value>,
    pub expect: Vec<String>,
}

pub fn parse_tests(map: &Map) -> Result<Vec<RuleTest>, MetaError> {
    let Some(v) = map.get("tests") else {
        return Ok(Vec::new());
    };
    let arr = v.clone().try_cast::<rhai::Array>().ok_or_else(|| {
        err(
            "tests",
            "`tests` must be a list of #{ name, events, expect }",
        )
    })?;
    let mut out = Vec::new();
    for (i, t) in arr.into_iter().enumerate() {
        let m = t
            .try_cast::<Map>()
            .ok_or_else(|| err("tests", format!("test #{} must be a map", i + 1)))?;
        let name = text(&m, "name", false)?.unwrap_or_else(|| format!("test #{}", i + 1));
        let to_json = |d: &Dynamic| {
            rhai::serde::from_dynamic::<serde_json::Value>(d)
                .map_err(|e| err("tests", format!("{name}: {e}")))
        };
        let events = match m.get("events") {
            Some(e) => match to_json(e)? {
                serde_json::Value::Array(a) => a,
                _ => return Err(err("tests", format!("{name}: `events` must be a list"))),
            },
            None => return Err(err("tests", format!("{name}: missing `events`"))),
        };
        let profile = m
            .get("profile")
            .map(to_json)
            .transpose()?
            .unwrap_or(serde_json::Value::Null);
        let expect =
            list(&m, "expect").map_err(|e| err("tests", format!("{name}: {}", e.message)))?;
        if !m.contains_key("expect") {
            return Err(err(
                "tests",
                format!("{name}: missing `expect` (offer codes, or [] for no offer)"),
            ));
        }
        out.push(RuleTest {
            name,
            profile,
            events,
            expect,
        });
    }
    Ok(out)
}
