//! `profile_change` events: when a fact the engine reads changes, every line of the customer
//! gets an event so rules can react (e.g. an upgrade offer on a tier change).

use smol_str::SmolStr;

use crate::crm::CrmState;
use crate::event::{AttrValue, Attrs, Event, EventType, Known, Msisdn};

/// One changed profile fact.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// The `Profile` field name (`value_tier`, `plan`, `opt_outs`, ...).
    pub field: &'static str,
    pub old: serde_json::Value,
    pub new: serde_json::Value,
}

/// Builds one event per line and change.
pub fn events(msisdns: &[String], changes: &[FieldChange]) -> Vec<Event> {
    let ts = chrono::Utc::now().fixed_offset();
    let mut out = Vec::new();
    for m in msisdns {
        // Stored msisdns were validated on write; skip rather than fail on legacy data.
        let Ok(msisdn) = Msisdn::parse(m) else {
            continue;
        };
        for c in changes {
            let mut attrs = Attrs::default();
            attrs.insert("field", AttrValue::Str(c.field.into()));
            attrs.insert("old", AttrValue::from_json(c.old.clone()));
            attrs.insert("new", AttrValue::from_json(c.new.clone()));
            out.push(Event {
                id: SmolStr::new(format!("crm-{}", uuid::Uuid::new_v4())),
                kind: EventType::Known(Known::ProfileChange),
                msisdn,
                ts,
                attrs,
            });
        }
    }
    out
}

/// Sends the events for `msisdns`. The change is already committed, so a failing engine is
/// logged rather than turned into a failed request.
pub async fn emit_for_lines(st: &CrmState, msisdns: &[String], changes: Vec<FieldChange>) {
    if changes.is_empty() || msisdns.is_empty() {
        return;
    }
    let evs = events(msisdns, &changes);
    if let Err(e) = st.events.submit(evs).await {
        tracing::warn!(error = %e, "profile_change events not delivered to the engine");
    }
}

/// Sends the events for every line of `customer_id`.
pub async fn emit_for_customer(st: &CrmState, customer_id: &str, changes: Vec<FieldChange>) {
    if changes.is_empty() {
        return;
    }
    match crate::crm::customers::repo::msisdns(&st.db.pool, customer_id).await {
        Ok(m) => emit_for_lines(st, &m, changes).await,
        Err(e) => tracing::warn!(error = %e, "could not load lines for profile_change"),
    }
}

/// Tells the engine what each line of `customer_id` owns now (`owned_offers`), after a
/// subscription changed: an offer for what a line has just taken is not made again.
pub async fn emit_owned(st: &CrmState, customer_id: &str) {
    let lines = match crate::crm::customers::repo::msisdns(&st.db.pool, customer_id).await {
        Ok(m) => m,
        Err(e) => return tracing::warn!(error = %e, "could not load lines for profile_change"),
    };
    let owned = match super::owned_offers(&st.db, &lines).await {
        Ok(o) => o,
        Err(e) => {
            return tracing::warn!(error = %e, "could not load owned offers for profile_change")
        }
    };
    for m in lines {
        let codes = owned.get(&m).cloned().unwrap_or_default();
        let change = FieldChange {
            field: "owned_offers",
            old: serde_json::Value::Null,
            new: codes.into(),
        };
        emit_for_lines(st, std::slice::from_ref(&m), vec![change]).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_line_and_change_with_unique_ids() {
        let ch = vec![FieldChange {
            field: "value_tier",
            old: "standard".into(),
            new: "gold".into(),
        }];
        let evs = events(&["8613900000001".into(), "8613900000002".into()], &ch);
        assert_eq!(evs.len(), 2);
        assert_ne!(evs[0].id, evs[1].id);
        assert_eq!(evs[0].kind.as_str(), "profile_change");
        assert_eq!(evs[1].attr("new").and_then(|v| v.as_str()), Some("gold"));
    }
}
