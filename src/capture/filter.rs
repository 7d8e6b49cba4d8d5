//! Which events a capture keeps: any of its types (all when it names none) from any of its
//! numbers (all when it names none). Checked on the ingest path, for every event while a
//! capture runs, so it is two set lookups.

use std::collections::HashSet;

use crate::event::{Event, EventType, Msisdn};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub types: Option<HashSet<EventType>>,
    pub msisdns: Option<HashSet<Msisdn>>,
}

impl Filter {
    /// From the names a capture was asked for: event types (contract or custom, snake_case)
    /// and numbers; each list checked, with the field and the entry that is wrong.
    pub fn parse(
        types: Option<&[String]>,
        msisdns: Option<&[String]>,
    ) -> Result<Filter, (&'static str, String)> {
        let types = types
            .map(|list| {
                list.iter()
                    .map(|t| {
                        EventType::parse(t).ok_or_else(|| {
                            (
                                "types",
                                format!(
                                    "{t:?} is not an event type (snake_case, like location_update)"
                                ),
                            )
                        })
                    })
                    .collect::<Result<HashSet<_>, _>>()
            })
            .transpose()?;
        let msisdns = msisdns
            .map(|list| {
                list.iter()
                    .map(|m| Msisdn::parse(m).map_err(|e| ("msisdns", format!("{m:?}: {e}"))))
                    .collect::<Result<HashSet<_>, _>>()
            })
            .transpose()?;
        Ok(Filter { types, msisdns })
    }

    #[inline]
    pub fn matches(&self, e: &Event) -> bool {
        self.types.as_ref().is_none_or(|t| t.contains(&e.kind))
            && self.msisdns.as_ref().is_none_or(|m| m.contains(&e.msisdn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, msisdn: &str) -> Event {
        crate::event::decode_str(&format!(
            r#"{{"id":"e","type":"{kind}","msisdn":"{msisdn}","ts":"2026-11-23T08:15:00+08:00"}}"#
        ))
        .unwrap()
    }

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_filter_keeps_its_types_from_its_numbers() {
        let f = Filter::parse(
            Some(&list(&["sms", "topup"])),
            Some(&list(&["8613900000001"])),
        )
        .unwrap();
        assert!(f.matches(&ev("sms", "8613900000001")));
        assert!(f.matches(&ev("topup", "8613900000001")));
        assert!(!f.matches(&ev("call", "8613900000001")), "another type");
        assert!(!f.matches(&ev("sms", "8613900000002")), "another number");
        let any_number = Filter::parse(Some(&list(&["sms"])), None).unwrap();
        assert!(any_number.matches(&ev("sms", "8613900000002")));
        assert!(Filter::default().matches(&ev("call", "8613900000003")));
    }

    #[test]
    fn a_wrong_entry_names_its_field() {
        let e = Filter::parse(Some(&list(&["Location-Update"])), None).unwrap_err();
        assert_eq!(e.0, "types");
        let e = Filter::parse(None, Some(&list(&["12ab"]))).unwrap_err();
        assert_eq!(e.0, "msisdns");
        assert!(e.1.contains("12ab"), "{}", e.1);
    }
}
