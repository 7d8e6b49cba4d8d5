//! HTTP ingest: one event, a JSON array batch, or NDJSON. Bad events are rejected one by
//! one with the field named and kept as dead letters (a sample of them, per request); the
//! good ones go on. A 2xx answer means the good events are durable: processed, and their
//! state, dedup marks and decisions committed (in Kafka mode: written to the event log, from
//! which the owning instance processes them). A resend of the same events is harmless.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::app::AppState;
use crate::auth::{Permission, Principal};
use crate::event::{decode, Event};
use crate::http::ApiError;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/events", post(ingest))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct IngestParams {
    /// Carry the decisions made in the answer. Every answer comes after the events are
    /// durable, with or without it.
    #[serde(default)]
    pub wait: bool,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rejection {
    /// Position in the batch (0-based) or line number (1-based) for NDJSON.
    pub at: usize,
    pub field: String,
    pub reason: String,
    pub dead_letter_id: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IngestResult {
    /// Events taken and durable (processed, duplicates and late ones included: see `outcome`).
    pub accepted: usize,
    /// The first rejected events (up to `http.max_dead_letters_per_request`), each kept as
    /// a dead letter.
    pub rejected: Vec<Rejection>,
    /// Every rejected event of the request, including those beyond the sample.
    pub rejected_total: usize,
    /// What became of the accepted events; `decisions` only with `?wait=true`.
    pub outcome: crate::pipeline::Report,
    /// With `?wait=true`: every event taken, in request order, with what became of it
    /// (`accepted`: run by the rules; `duplicate`: seen before, changed nothing; `late`,
    /// `unknown_type`: kept as dead letters). Refused lines are in `rejected`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventResult>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventResult {
    /// Position in the batch (0-based) or line number (1-based) for NDJSON.
    pub at: usize,
    pub id: String,
    /// accepted | duplicate | late | unknown_type
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Each event's result: the skipped ones (by id and number) matched to the last events of
/// that id in the request (within a request the first of two equal events is the one run).
fn per_event(
    taken: &[(usize, String, crate::event::Msisdn)],
    skipped: &[crate::pipeline::Skipped],
) -> Vec<EventResult> {
    let mut left: std::collections::HashMap<
        (&str, crate::event::Msisdn),
        Vec<&crate::pipeline::Skipped>,
    > = std::collections::HashMap::new();
    for s in skipped {
        left.entry((s.id.as_str(), s.msisdn)).or_default().push(s);
    }
    let mut out: Vec<EventResult> = taken
        .iter()
        .rev()
        .map(|(at, id, m)| {
            let s = left.get_mut(&(id.as_str(), *m)).and_then(Vec::pop);
            EventResult {
                at: *at,
                id: id.clone(),
                result: s.map_or("accepted", |s| s.result).to_string(),
                reason: s.and_then(|s| s.reason.clone()),
            }
        })
        .collect();
    out.reverse();
    out
}

/// Ingest events (single object, JSON array, or `application/x-ndjson`).
#[utoipa::path(post, path = "/api/v1/events", tag = "engine", params(IngestParams),
    request_body(content = String, description = "an event object, an array of events, or NDJSON"),
    responses((status = 202, body = IngestResult), (status = 200, body = IngestResult), (status = 400, body = crate::http::error::ErrorBody), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn ingest(
    State(state): State<AppState>,
    who: Principal,
    Query(params): Query<IngestParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<IngestResult>), ApiError> {
    who.require(Permission::IngestEvents)?;
    let max_event = state.config.http.max_event_bytes;
    let ndjson = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("ndjson") || ct.contains("jsonlines"));
    let trimmed = body.trim_ascii_start();
    let pieces: Vec<(usize, &[u8])> = if ndjson {
        body.split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, l)| !l.trim_ascii().is_empty())
            .map(|(i, l)| (i + 1, l))
            .collect()
    } else if trimmed.first() == Some(&b'[') {
        match serde_json::from_slice::<Vec<&RawValue>>(trimmed) {
            Ok(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, r)| (i, r.get().as_bytes()))
                .collect(),
            Err(e) => {
                let id = state
                    .pipeline
                    .deps
                    .dead_letters
                    .put(
                        "http",
                        Some("body"),
                        &format!("not a JSON array of events: {e}"),
                        &body,
                    )
                    .await?;
                return Err(ApiError::field(
                    "body",
                    format!("not a JSON array of events ({e}); kept as dead letter {id}"),
                ));
            }
        }
    } else {
        vec![(0, &body[..])]
    };
    let now = chrono::Utc::now();
    let max_skew = state.config.engine.max_future_skew.as_str();
    let max_skew = chrono::Duration::seconds(
        crate::state::parse_duration_secs(max_skew)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("engine.max_future_skew: {e}")))?,
    );
    let sample = state.config.http.max_dead_letters_per_request;
    let mut good: Vec<Event> = Vec::with_capacity(pieces.len());
    let mut taken: Vec<(usize, String, crate::event::Msisdn)> = Vec::new();
    let mut bad = Vec::new();
    let mut rejected = Vec::new();
    let mut rejected_total = 0usize;
    for (at, bytes) in pieces {
        let r = if bytes.len() > max_event {
            Err(crate::event::DecodeError {
                field: "body".into(),
                reason: format!(
                    "event is {} bytes, over the limit of {max_event}",
                    bytes.len()
                ),
            })
        } else {
            decode(bytes).and_then(|e| not_from_the_future(e, now, max_skew))
        };
        match r {
            Ok(e) => {
                if params.wait {
                    taken.push((at, e.id.to_string(), e.msisdn));
                }
                good.push(e)
            }
            Err(e) => {
                rejected_total += 1;
                // Only a sample is stored and answered: the rest are counted.
                if bad.len() < sample {
                    bad.push((
                        "http".to_string(),
                        Some(e.field.clone()),
                        e.reason.clone(),
                        bytes.to_vec(),
                    ));
                    rejected.push((at, e));
                }
            }
        }
    }
    let ids = state.pipeline.deps.dead_letters.put_many(&bad).await?;
    state
        .pipeline
        .deps
        .metrics
        .rejected
        .fetch_add(rejected_total as u64, std::sync::atomic::Ordering::Relaxed);
    state
        .pipeline
        .deps
        .metrics
        .dead_letters_http
        .fetch_add(ids.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let single_bad = !ndjson && trimmed.first() != Some(&b'[') && good.is_empty();
    let rejected: Vec<Rejection> = rejected
        .into_iter()
        .zip(ids)
        .map(|((at, e), id)| Rejection {
            at,
            field: e.field,
            reason: e.reason,
            dead_letter_id: id,
        })
        .collect();
    if single_bad {
        let r = &rejected[0];
        return Err(ApiError::field(
            r.field.clone(),
            format!("{} (kept as dead letter {})", r.reason, r.dead_letter_id),
        ));
    }
    let accepted = good.len();
    let outcome = if good.is_empty() {
        crate::pipeline::Report::default()
    } else if let Some(log) = &state.event_log {
        if params.wait {
            return Err(ApiError::field(
                "wait",
                "in Kafka mode events are processed by the instance that owns their partition; \
                 read decisions from the recommendations topic or GET /api/v1/offers",
            ));
        }
        crate::pipeline::Report {
            logged: log
                .append(&good)
                .await
                .map_err(|e| ApiError::Unavailable(e.to_string()))?,
            ..Default::default()
        }
    } else {
        state
            .pipeline
            .ingest(good, params.wait)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?
    };
    let status = if params.wait {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let events = if params.wait {
        per_event(&taken, &outcome.skipped)
    } else {
        Vec::new()
    };
    Ok((
        status,
        Json(IngestResult {
            accepted,
            rejected,
            rejected_total,
            outcome,
            events,
        }),
    ))
}

/// An event stamped further ahead than the allowed skew is refused: it would make every
/// normal event of its subscriber "late" afterwards.
fn not_from_the_future(
    e: Event,
    now: chrono::DateTime<chrono::Utc>,
    max_skew: chrono::Duration,
) -> Result<Event, crate::event::DecodeError> {
    if e.ts.with_timezone(&chrono::Utc) > now + max_skew {
        return Err(crate::event::DecodeError {
            field: "ts".into(),
            reason: format!(
                "event time {} is more than {}s ahead of this server's clock ({})",
                e.ts.to_rfc3339(),
                max_skew.num_seconds(),
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        });
    }
    Ok(e)
}
