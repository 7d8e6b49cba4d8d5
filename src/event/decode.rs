//! Bytes -> [`Event`], with a reason naming the field when the contract is broken.

use serde::Deserialize;
use smol_str::SmolStr;

use super::raw::Raw;
use super::{AttrKind, AttrValue, Event, EventType, Msisdn};

/// Why an event was rejected. `field` names the offending field (`ts`, `attrs.duration_s`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct DecodeError {
    pub field: String,
    pub reason: String,
}

impl DecodeError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DecodeError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Decodes one event from its JSON bytes.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => decode_str(text),
        Err(_) => decode_with_serde(bytes),
    }
}

/// Decodes one event from text (a line read by `BufRead::lines`).
pub fn decode_str(text: &str) -> Result<Event, DecodeError> {
    // Most events take the contract-shaped scan; the rest, and every error, serde_json.
    match super::scan::raw(text) {
        Some(raw) => validate(raw),
        None => decode_with_serde(text.as_bytes()),
    }
}

/// The decoder without the scan: everything the scan passes on, and what `tests.rs` holds
/// the scan to.
pub(super) fn decode_with_serde(bytes: &[u8]) -> Result<Event, DecodeError> {
    match serde_json::from_slice::<Raw>(bytes) {
        Ok(raw) => validate(raw),
        // Its errors say "line 1 column 40"; redo the event slowly to name the field.
        Err(_) => explain(bytes),
    }
}

/// Decodes an event already parsed as JSON (an element of an HTTP batch).
pub fn decode_value(v: &serde_json::Value) -> Result<Event, DecodeError> {
    match Raw::deserialize(v) {
        Ok(raw) => validate(raw),
        Err(_) => explain_value(v),
    }
}

fn validate(raw: Raw<'_>) -> Result<Event, DecodeError> {
    // Up to 128 bytes is up to 128 characters: count them only for longer ids.
    let id_len = if raw.id.len() <= 128 {
        raw.id.len()
    } else {
        raw.id.chars().count()
    };
    if !(1..=128).contains(&id_len) {
        return Err(DecodeError::new(
            "id",
            format!("must be 1 to 128 characters, got {id_len}"),
        ));
    }
    let kind = EventType::parse(&raw.kind).ok_or_else(|| {
        DecodeError::new(
            "type",
            format!("{:?} is not a snake_case event type", raw.kind),
        )
    })?;
    let msisdn =
        Msisdn::parse(&raw.msisdn).map_err(|e| DecodeError::new("msisdn", e.to_string()))?;
    let ts = super::rfc3339::parse(&raw.ts).map_err(|e| {
        DecodeError::new(
            "ts",
            format!(
                "{:?} is not an RFC 3339 timestamp with offset ({e})",
                raw.ts
            ),
        )
    })?;
    let attrs = raw.attrs;
    if let EventType::Known(k) = kind {
        // Every value is checked, duplicates included: a repeated key cannot hide a bad one.
        for (name, v) in &attrs.0 {
            if let Some(want) = k.attr_kind(name) {
                check_kind(name, want, v)?;
            }
        }
    }
    Ok(Event {
        id: SmolStr::new(&raw.id),
        kind,
        msisdn,
        ts,
        attrs,
    })
}

fn check_kind(name: &str, want: AttrKind, v: &AttrValue) -> Result<(), DecodeError> {
    let ok = matches!(
        (want, v),
        (AttrKind::Any, _)
            | (_, AttrValue::Null)
            | (AttrKind::Str, AttrValue::Str(_))
            | (AttrKind::Int, AttrValue::Int(_))
            | (AttrKind::Num, AttrValue::Int(_) | AttrValue::Float(_))
            | (AttrKind::Bool, AttrValue::Bool(_))
    );
    if ok {
        return Ok(());
    }
    let expected = match want {
        AttrKind::Str => "a string",
        AttrKind::Int => "an integer",
        AttrKind::Num => "a number",
        AttrKind::Bool => "true or false",
        AttrKind::Any => "any value",
    };
    Err(DecodeError::new(
        format!("attrs.{name}"),
        format!("expected {expected}, got {}", v.kind()),
    ))
}

fn explain(bytes: &[u8]) -> Result<Event, DecodeError> {
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| DecodeError::new("body", format!("not valid JSON: {e}")))?;
    explain_value(&v)
}

fn explain_value(v: &serde_json::Value) -> Result<Event, DecodeError> {
    let obj = v
        .as_object()
        .ok_or_else(|| DecodeError::new("body", "an event must be a JSON object"))?;
    for field in ["id", "type", "msisdn", "ts"] {
        match obj.get(field) {
            None | Some(serde_json::Value::Null) => {
                return Err(DecodeError::new(field, "is required"));
            }
            Some(serde_json::Value::String(_)) => {}
            Some(other) => {
                return Err(DecodeError::new(
                    field,
                    format!("must be a string, got {}", json_kind(other)),
                ));
            }
        }
    }
    match obj.get("attrs") {
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::Object(_)) => {}
        Some(other) => {
            return Err(DecodeError::new(
                "attrs",
                format!("must be an object, got {}", json_kind(other)),
            ));
        }
    }
    // Shape is right, so the typed path now succeeds or fails in `validate` with a field.
    let raw = Raw::deserialize(v).map_err(|e| DecodeError::new("body", e.to_string()))?;
    validate(raw)
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
