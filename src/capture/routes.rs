//! The capture API: start one, watch it fill, stop it, download its events, delete it.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::filter::Filter;
use super::store::{self, Capture, NewCapture};
use super::CaptureState;
use crate::auth::{Permission, Principal};
use crate::http::error::ErrorBody;
use crate::http::table::found;
use crate::http::{ApiError, ApiJson};
use crate::store::{kept_page, ts_text, Page};

pub fn router() -> OpenApiRouter<CaptureState> {
    OpenApiRouter::new()
        .routes(routes!(list_captures, start_capture))
        .routes(routes!(get_capture, delete_capture))
        .routes(routes!(capture_events))
        .routes(routes!(stop_capture))
}

/// Captured events are raw events of every subscriber: the permission, and a scope over all
/// customers (as for dead letters).
fn may_capture(who: &Principal) -> Result<(), ApiError> {
    who.require_all_customers(
        Permission::CaptureEvents,
        "captures hold raw events of every subscriber: an all-customers role records and reads them",
    )
}

async fn capture_or_404(st: &CaptureState, id: &str) -> Result<Capture, ApiError> {
    found(st.recorder.db(), id).await
}

/// Types and numbers a capture may name at most.
const MAX_TYPES: usize = 100;
const MAX_MSISDNS: usize = 10_000;

/// What to record.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureInput {
    /// What the sample is for, in words.
    pub name: String,
    /// Event types to record (`["location_update", "topup"]`); left out: every type.
    pub types: Option<Vec<String>>,
    /// Numbers to record; left out: every number.
    pub msisdns: Option<Vec<String>>,
    /// Events to record at most (1 to `capture.max_events`); recording ends there.
    pub limit: i64,
    /// RFC 3339: recording ends at this time if the limit is not reached first.
    pub until: Option<String>,
}

/// A list the capture may leave out (recording every `one`), or name 1 to `max` of.
fn listed(
    field: &'static str,
    list: Option<&[String]>,
    max: usize,
    what: &str,
    one: &str,
) -> Result<(), ApiError> {
    if list.is_some_and(|l| l.is_empty() || l.len() > max) {
        return Err(ApiError::field(
            field,
            format!("must name 1 to {max} {what}, or be left out for every {one}"),
        ));
    }
    Ok(())
}

/// Starts recording the live events that match, on every instance, from now on.
#[utoipa::path(post, path = "/api/v1/captures", tag = "rules", request_body = CaptureInput,
    responses((status = 201, body = Capture), (status = 400, body = ErrorBody), (status = 401), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn start_capture(
    State(st): State<CaptureState>,
    who: Principal,
    ApiJson(c): ApiJson<CaptureInput>,
) -> Result<(StatusCode, Json<Capture>), ApiError> {
    may_capture(&who)?;
    let name = c.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.contains('\0') {
        return Err(ApiError::field(
            "name",
            "must be 1 to 200 characters, without NUL",
        ));
    }
    let max = st.config.capture.max_events;
    if !(1..=max).contains(&c.limit) {
        return Err(ApiError::field(
            "limit",
            format!("must be 1 to {max} (capture.max_events)"),
        ));
    }
    listed(
        "types",
        c.types.as_deref(),
        MAX_TYPES,
        "event types",
        "type",
    )?;
    listed(
        "msisdns",
        c.msisdns.as_deref(),
        MAX_MSISDNS,
        "numbers",
        "number",
    )?;
    Filter::parse(c.types.as_deref(), c.msisdns.as_deref())
        .map_err(|(field, e)| ApiError::field(field, e))?;
    // Numbers as the engine writes them, so a download and a filter agree.
    let msisdns: Option<Vec<String>> = c.msisdns.as_ref().map(|l| {
        let mut v: Vec<String> = l
            .iter()
            .filter_map(|m| crate::event::Msisdn::parse(m).ok())
            .map(|m| m.to_string())
            .collect();
        v.sort();
        v.dedup();
        v
    });
    let until = match &c.until {
        None => None,
        Some(t) => {
            let at = chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| ApiError::field("until", format!("not an RFC 3339 time: {e}")))?
                .with_timezone(&chrono::Utc);
            if at <= chrono::Utc::now() {
                return Err(ApiError::field("until", "must be in the future"));
            }
            Some(ts_text(at))
        }
    };
    let db = st.recorder.db();
    let created = store::create(
        db,
        NewCapture {
            name,
            types: c.types.as_deref(),
            msisdns: msisdns.as_deref(),
            limit: c.limit,
            until,
            created_by: &who.id,
        },
    )
    .await?;
    // Recording here from the answer on; other instances follow within `capture.poll_ms`.
    st.recorder.refresh().await?;
    tracing::info!(capture = %created.id, by = %who.id, "capture started");
    Ok((StatusCode::CREATED, Json(created)))
}

crate::table_handlers! { CaptureState, tag "rules", |st, who| may_capture(&who);
    /// Captures, newest first.
    list "/api/v1/captures" as list_captures, Capture,
        |limit, offset| kept_page(st.recorder.db(), limit, offset);
    /// A capture: whether it records, how many events it holds and how many it dropped.
    read "/api/v1/captures/{id}" as get_capture, Capture, |id| capture_or_404(&st, &id);
}

/// Ends the capture `id` names (404 if none), here at once: the other instances follow
/// within `capture.poll_ms`.
async fn stop(st: &CaptureState, id: &str) -> Result<(), ApiError> {
    capture_or_404(st, id).await?;
    store::end(st.recorder.db(), id, "stopped").await?;
    st.recorder.refresh().await?;
    Ok(())
}

/// Ends recording; the events recorded stay. Stopping an ended capture changes nothing.
#[utoipa::path(post, path = "/api/v1/captures/{id}/stop", tag = "rules", params(("id" = String, Path)),
    responses((status = 200, body = Capture), (status = 401), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn stop_capture(
    State(st): State<CaptureState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Capture>, ApiError> {
    may_capture(&who)?;
    stop(&st, &id).await?;
    Ok(Json(capture_or_404(&st, &id).await?))
}

/// Deletes a capture and its events (a running one stops first).
#[utoipa::path(delete, path = "/api/v1/captures/{id}", tag = "rules", params(("id" = String, Path)),
    responses((status = 204), (status = 401), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_capture(
    State(st): State<CaptureState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    may_capture(&who)?;
    stop(&st, &id).await?;
    store::delete(st.recorder.db(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Events read from the database per step of a download.
const PAGE: i64 = 1000;

/// The recorded events as NDJSON in the event contract (`docs/contract-events.md`), in the
/// order recorded: what `kairos replay --events` and a backtest upload read. A running
/// capture gives the events recorded when the download began.
#[utoipa::path(get, path = "/api/v1/captures/{id}/events", tag = "rules", params(("id" = String, Path)),
    responses((status = 200, content_type = "application/x-ndjson", body = String), (status = 401), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn capture_events(
    State(st): State<CaptureState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    may_capture(&who)?;
    let c = capture_or_404(&st, &id).await?;
    let db = st.recorder.db().clone();
    let upto = c.events;
    // A page at a time, so a large capture streams without being held in memory.
    let pages = futures::stream::unfold(Some(0i64), move |after| {
        let db = db.clone();
        let id = id.clone();
        async move {
            let after = after?;
            match store::events(&db, &id, after, upto, PAGE).await {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let last = rows.last().map_or(after, |r| r.0);
                    let mut out = Vec::with_capacity(rows.iter().map(|r| r.1.len() + 1).sum());
                    for (_, ev) in rows {
                        out.extend_from_slice(ev.as_bytes());
                        out.push(b'\n');
                    }
                    Some((Ok::<_, std::io::Error>(Bytes::from(out)), Some(last)))
                }
                Err(e) => {
                    tracing::error!(error = %e, "capture: reading events for a download failed");
                    Some((Err(std::io::Error::other(e.to_string())), None))
                }
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(pages),
    )
        .into_response())
}
