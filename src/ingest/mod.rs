//! HTTP ingest: one event, a JSON array batch, or NDJSON. Bad events are rejected one by
//! one with the field named and kept as dead letters; the good ones go on.

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
use crate::ports::EventSink;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/events", post(ingest))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct IngestParams {
    /// Answer only after the events are processed and their decisions stored.
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
    pub accepted: usize,
    pub rejected: Vec<Rejection>,
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
    let mut good: Vec<Event> = Vec::with_capacity(pieces.len());
    let mut bad = Vec::new();
    let mut rejected = Vec::new();
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
            decode(bytes)
        };
        match r {
            Ok(e) => good.push(e),
            Err(e) => {
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
    let ids = state.pipeline.deps.dead_letters.put_many(&bad).await?;
    state
        .pipeline
        .deps
        .metrics
        .rejected
        .fetch_add(bad.len() as u64, std::sync::atomic::Ordering::Relaxed);
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
    state
        .pipeline
        .submit(good)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let status = if params.wait {
        state
            .pipeline
            .flush()
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(IngestResult { accepted, rejected })))
}
