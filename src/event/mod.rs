//! The event contract (`docs/contract-events.md`): one type every source decodes to.

mod attrs;
mod decode;
mod msisdn;
pub mod peek;
mod raw;
mod rfc3339;
mod scan;
#[cfg(test)]
mod tests;

use chrono::{DateTime, FixedOffset};
use smol_str::SmolStr;

pub use attrs::{AttrValue, Attrs};
pub use decode::{decode, decode_str, decode_value, DecodeError};
pub use msisdn::{Msisdn, MsisdnDigits, MsisdnError};

/// Event types of the contract; anything else snake_case is a custom type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventType {
    Known(Known),
    Custom(SmolStr),
}

macro_rules! known_types {
    ($($variant:ident => $name:literal { $($attr:literal : $kind:ident),* }),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Known { $($variant),* }

        impl Known {
            pub const ALL: &'static [Known] = &[$(Known::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $(Known::$variant => $name),* }
            }
            fn from_name(s: &str) -> Option<Known> {
                match s { $($name => Some(Known::$variant),)* _ => None }
            }
            /// The attributes the contract lists for this type, with their JSON kinds.
            pub fn attrs(self) -> &'static [(&'static str, AttrKind)] {
                match self { $(Known::$variant => &[$(($attr, AttrKind::$kind)),*]),* }
            }
            /// The JSON kind the contract gives `name` in this type, if it lists it.
            pub fn attr_kind(self, name: &str) -> Option<AttrKind> {
                match self {
                    $(Known::$variant => match name { $($attr => Some(AttrKind::$kind),)* _ => None }),*
                }
            }
        }

        /// The contract's name for an attribute, shared by every event that carries it.
        #[allow(unreachable_patterns)] // names shared by several types repeat
        pub(crate) fn contract_attr_name(s: &str) -> Option<&'static str> {
            match s { $($($attr => Some($attr),)*)* _ => None }
        }
    };
}

/// JSON kind the contract gives an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrKind {
    Str,
    Int,
    Num,
    Bool,
    /// Any JSON (for `profile_change` old/new, which vary by field).
    Any,
}

known_types! {
    Call => "call" { "direction": Str, "peer": Str, "duration_s": Int, "answered": Bool, "international": Bool, "long_distance": Bool, "roaming": Bool, "charge_cents": Int },
    MissedCall => "missed_call" { "caller": Str, "reason": Str },
    Sms => "sms" { "direction": Str, "peer": Str, "segments": Int, "international": Bool },
    DataSession => "data_session" { "bytes": Int, "roaming": Bool, "apn": Str },
    DataQuota => "data_quota" { "used_pct": Num, "remaining_bytes": Int, "bundle": Str },
    BalanceLow => "balance_low" { "balance_cents": Int, "threshold_cents": Int },
    Topup => "topup" { "amount_cents": Int, "channel": Str },
    Bill => "bill" { "period": Str, "amount_cents": Int },
    Payment => "payment" { "amount_cents": Int, "method": Str },
    LocationUpdate => "location_update" { "country": Str, "mcc": Str, "mnc": Str, "region": Str, "cell": Str, "roaming": Bool },
    PowerOn => "power_on" { "imei": Str },
    PowerOff => "power_off" { "imei": Str },
    DeviceChange => "device_change" { "imei": Str, "tac": Str, "model": Str, "capability": Str },
    PlanChange => "plan_change" { "old_plan": Str, "new_plan": Str },
    SelfService => "self_service" { "action": Str, "channel": Str },
    Visit => "visit" { "channel": Str, "agent_id": Str, "store_id": Str },
    Complaint => "complaint" { "category": Str, "severity": Any },
    ProfileChange => "profile_change" { "field": Str, "old": Any, "new": Any },
    ContractExpiring => "contract_expiring" { "contract_id": Str, "contract_name": Str, "end_date": Str, "days_left": Int },
    OfferResponse => "offer_response" { "recommendation_id": Str, "rule_id": Str, "offer_code": Str, "outcome": Str, "channel": Str },
}

impl EventType {
    /// Parses a type name: a contract type, or any other snake_case name as a custom type.
    pub fn parse(s: &str) -> Option<EventType> {
        if let Some(k) = Known::from_name(s) {
            return Some(EventType::Known(k));
        }
        is_snake_case(s).then(|| EventType::Custom(SmolStr::new(s)))
    }
    pub fn as_str(&self) -> &str {
        match self {
            EventType::Known(k) => k.as_str(),
            EventType::Custom(s) => s,
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub fn is_snake_case(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// A decoded, validated subscriber event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: SmolStr,
    pub kind: EventType,
    pub msisdn: Msisdn,
    /// Event time with the sender's offset; all windows are computed on it.
    pub ts: DateTime<FixedOffset>,
    pub attrs: Attrs,
}

impl Event {
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attrs.get(key)
    }
    /// Event time in whole seconds since the epoch.
    pub fn epoch(&self) -> i64 {
        self.ts.timestamp()
    }
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events always serialize")
    }
}

impl serde::Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("id", self.id.as_str())?;
        m.serialize_entry("type", self.kind.as_str())?;
        m.serialize_entry("msisdn", &self.msisdn)?;
        m.serialize_entry("ts", &self.ts.to_rfc3339())?;
        m.serialize_entry("attrs", &self.attrs)?;
        m.end()
    }
}

/// A map keyed by event type: contract types by array index (no hashing on the hot path),
/// custom types by name.
#[derive(Debug, Clone)]
pub struct TypeMap<T> {
    known: Vec<Option<T>>,
    custom: ahash::HashMap<SmolStr, T>,
}

impl<T> Default for TypeMap<T> {
    fn default() -> Self {
        TypeMap {
            known: std::iter::repeat_with(|| None)
                .take(Known::ALL.len())
                .collect(),
            custom: Default::default(),
        }
    }
}

impl<T: Default> TypeMap<T> {
    /// The entry for a type name, created empty if absent. Names that are not snake_case
    /// are kept as custom names (they can never match an event).
    pub fn entry(&mut self, name: &str) -> &mut T {
        match Known::from_name(name) {
            Some(k) => self.known[k as usize].get_or_insert_with(T::default),
            None => self.custom.entry(SmolStr::new(name)).or_default(),
        }
    }
}

impl<T> TypeMap<T> {
    pub fn get(&self, ty: &EventType) -> Option<&T> {
        match ty {
            EventType::Known(k) => self.known[*k as usize].as_ref(),
            EventType::Custom(name) => self.custom.get(name.as_str()),
        }
    }
    pub fn contains(&self, ty: &EventType) -> bool {
        self.get(ty).is_some()
    }
}
