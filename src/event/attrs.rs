//! Event attributes: a small ordered list, decoded without building a JSON tree.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use smol_str::SmolStr;

#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(SmolStr),
    /// Nested arrays and objects are kept whole; rules read them as maps and arrays.
    Json(Box<serde_json::Value>),
}

impl AttrValue {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AttrValue::Int(i) => Some(*i as f64),
            AttrValue::Float(f) => Some(*f),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            AttrValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            AttrValue::Null => "null",
            AttrValue::Bool(_) => "a boolean",
            AttrValue::Int(_) => "an integer",
            AttrValue::Float(_) => "a number",
            AttrValue::Str(_) => "a string",
            AttrValue::Json(v) if v.is_array() => "an array",
            AttrValue::Json(_) => "an object",
        }
    }
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            AttrValue::Null => serde_json::Value::Null,
            AttrValue::Bool(b) => (*b).into(),
            AttrValue::Int(i) => (*i).into(),
            AttrValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            AttrValue::Str(s) => s.as_str().into(),
            AttrValue::Json(v) => (**v).clone(),
        }
    }
    pub fn from_json(v: serde_json::Value) -> AttrValue {
        match v {
            serde_json::Value::Null => AttrValue::Null,
            serde_json::Value::Bool(b) => AttrValue::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => AttrValue::Int(i),
                None => AttrValue::Float(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => AttrValue::Str(s.into()),
            other => AttrValue::Json(Box::new(other)),
        }
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Null => Ok(()),
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Float(x) => write!(f, "{x}"),
            AttrValue::Str(s) => f.write_str(s),
            AttrValue::Json(v) => write!(f, "{v}"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attrs(pub Vec<(SmolStr, AttrValue)>);

impl Attrs {
    /// The value of `key`; with duplicate keys the last one wins, as in JSON parsers.
    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn insert(&mut self, key: impl Into<SmolStr>, value: AttrValue) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl serde::Serialize for AttrValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AttrValue::Null => s.serialize_unit(),
            AttrValue::Bool(b) => s.serialize_bool(*b),
            AttrValue::Int(i) => s.serialize_i64(*i),
            AttrValue::Float(f) => s.serialize_f64(*f),
            AttrValue::Str(v) => s.serialize_str(v),
            AttrValue::Json(v) => v.serialize(s),
        }
    }
}

impl serde::Serialize for Attrs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k.as_str(), v)?;
        }
        m.end()
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = AttrValue;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<AttrValue, E> {
        Ok(AttrValue::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<AttrValue, E> {
        Ok(AttrValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<AttrValue, E> {
        Ok(AttrValue::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<AttrValue, E> {
        Ok(i64::try_from(v)
            .map(AttrValue::Int)
            .unwrap_or(AttrValue::Float(v as f64)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<AttrValue, E> {
        Ok(AttrValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<AttrValue, E> {
        Ok(AttrValue::Str(SmolStr::new(v)))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<AttrValue, A::Error> {
        let v = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(AttrValue::Json(Box::new(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<AttrValue, A::Error> {
        let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(AttrValue::Json(Box::new(v)))
    }
}

use serde::Deserialize;

impl<'de> serde::Deserialize<'de> for AttrValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct AttrsVisitor;

impl<'de> Visitor<'de> for AttrsVisitor {
    type Value = Attrs;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of attributes")
    }
    fn visit_unit<E>(self) -> Result<Attrs, E> {
        Ok(Attrs::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attrs, A::Error> {
        // One allocation sized for the contract's largest types (a call has eight).
        let mut out = Attrs(Vec::with_capacity(map.size_hint().unwrap_or(8)));
        while let Some(AttrKey(k)) = map.next_key::<AttrKey>()? {
            let v: AttrValue = map.next_value()?;
            // No duplicate check here (it is quadratic): `get` reads the last one.
            out.0.push((k, v));
        }
        Ok(out)
    }
}

/// An attribute name: the contract's names are shared statics, not copied per event.
struct AttrKey(SmolStr);

/// The contract's names as shared statics, any other name as sent.
pub(super) fn intern_key(k: &str) -> SmolStr {
    match super::contract_attr_name(k) {
        Some(name) => SmolStr::new_static(name),
        None => SmolStr::new(k),
    }
}

impl<'de> serde::Deserialize<'de> for AttrKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = AttrKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an attribute name")
            }
            fn visit_str<E>(self, v: &str) -> Result<AttrKey, E> {
                Ok(AttrKey(intern_key(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de> serde::Deserialize<'de> for Attrs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AttrsVisitor)
    }
}
