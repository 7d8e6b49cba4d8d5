//! What the customer portal and the agent desktop share: the touchpoint events they raise
//! (the customer is here now: ask the engine for the best offer) and marking an offer seen.

use crate::event::{AttrValue, Attrs, Event, EventType, Known, Msisdn};
use crate::http::ApiError;
use crate::kafka::EventLog;
use crate::pipeline::{Pipeline, RecStore};
use crate::ports::{Recommendation, Status};

/// Where touchpoint events go: the event log in Kafka mode (the partition's owner decides),
/// else straight through this instance's engine, which has decided by the time it answers.
#[derive(Clone)]
pub struct Touchpoints {
    pub pipeline: Pipeline,
    pub event_log: Option<EventLog>,
}

impl Touchpoints {
    /// Submits a `visit` from `channel` with `attrs` besides the channel; returns its id.
    pub async fn visit(
        &self,
        msisdn: Msisdn,
        channel: &str,
        extra: &[(&str, &str)],
    ) -> Result<String, ApiError> {
        let mut attrs = Attrs::default();
        attrs.insert("channel", AttrValue::Str(channel.into()));
        for (k, v) in extra {
            attrs.insert(*k, AttrValue::Str((*v).into()));
        }
        let id = format!("visit-{channel}-{}", uuid::Uuid::new_v4().simple());
        let ev = Event {
            id: id.as_str().into(),
            kind: EventType::Known(Known::Visit),
            msisdn,
            ts: chrono::Utc::now().fixed_offset(),
            attrs,
        };
        match &self.event_log {
            Some(log) => {
                log.append(std::slice::from_ref(&ev))
                    .await
                    .map_err(|e| ApiError::Unavailable(e.to_string()))?;
            }
            None => {
                self.pipeline
                    .ingest(vec![ev], false)
                    .await
                    .map_err(|e| ApiError::Unavailable(e.to_string()))?;
            }
        }
        Ok(id)
    }
}

/// How long marking an offer seen waits for its channel's send to be recorded.
const SEND_RECORDED_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// Marks an offer `delivered`: a person (the customer, an agent) has it in front of them.
///
/// Only a `sent` offer moves. A page can show an offer the moment the channel hands it over,
/// before the deliverer records `sent`; writing `delivered` then would be overwritten by that
/// `sent`, so a still-queued offer is waited for. Answered offers are left as they are.
pub async fn mark_seen(recs: &RecStore, id: &str) -> Result<Option<Recommendation>, ApiError> {
    let deadline = tokio::time::Instant::now() + SEND_RECORDED_WITHIN;
    loop {
        let Some(rec) = recs.get(id).await? else {
            return Ok(None);
        };
        match rec.status {
            Status::Sent => return Ok(recs.set_status(id, Status::Delivered, None).await?),
            Status::Proposed | Status::Queued | Status::Deferred
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            _ => return Ok(Some(rec)),
        }
    }
}
