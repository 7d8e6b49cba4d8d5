//! The backtest API: start a job (202), read its progress and result, list jobs.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::job::{self, Events, Refusal, Tested};
use super::store::Job;
use super::BacktestState;
use crate::auth::{Permission, Principal};
use crate::http::error::ErrorBody;
use crate::http::table::found;
use crate::http::ApiError;
use crate::store::{kept_page, Page};

pub fn router() -> OpenApiRouter<BacktestState> {
    OpenApiRouter::new()
        .routes(routes!(list_backtests, start_backtest))
        .routes(routes!(get_backtest))
        // Uploads are larger than API calls: the limit is `backtest.max_upload_bytes`, below.
        .layer(axum::extract::DefaultBodyLimit::disable())
}

const UPLOAD_LIMIT: &str = "backtest.max_upload_bytes";

fn refused(r: Refusal) -> ApiError {
    match r {
        Refusal::NotFound(what) => ApiError::NotFound(what),
        Refusal::Field(field, message) => ApiError::field(field, message),
        Refusal::Invalid(list) => {
            crate::authoring::routes::invalid("the tested rule set does not pass its checks", list)
        }
        Refusal::Store(e) => e.into(),
        Refusal::Internal(e) => ApiError::internal(e),
    }
}

/// What to backtest, as a JSON body (with an NDJSON body, `version` and `drafts` are query
/// parameters and the body is the events).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BacktestInput {
    /// A published version to test (at most one of `version` and `drafts`).
    pub version: Option<i64>,
    /// Drafts to test, applied to the published version as a publish of them would.
    /// Neither: the published version itself.
    pub drafts: Option<Vec<String>>,
    /// The capture whose events to run on.
    pub capture_id: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// With an NDJSON body: a published version to test.
    pub version: Option<i64>,
    /// With an NDJSON body: drafts to test, by id, comma separated.
    pub drafts: Option<String>,
}

fn tested(version: Option<i64>, drafts: Option<Vec<String>>) -> Result<Tested, ApiError> {
    match (version, drafts) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "name at most one of version and drafts",
        )),
        (Some(n), None) => Ok(Tested::Version(n)),
        (None, Some(d)) if d.is_empty() => Err(ApiError::field(
            "drafts",
            "name at least one draft, or leave drafts out to test the published version",
        )),
        (None, Some(d)) => Ok(Tested::Drafts(d)),
        (None, None) => Ok(Tested::Published),
    }
}

fn is_ndjson(content_type: &str) -> bool {
    matches!(
        content_type,
        "application/x-ndjson" | "application/ndjson" | "application/jsonl"
    )
}

/// Starts a backtest in the background and answers 202 with the job: follow its progress
/// and read its result at `GET /api/v1/backtests/{id}` (on any instance).
///
/// The events: a capture (`capture_id` in a JSON body) or an NDJSON event file as the body
/// (`Content-Type: application/x-ndjson`, at most `backtest.max_upload_bytes`; 413 past
/// it). The set tested: the published version with `drafts` applied, another `version`, or
/// the published version itself; it runs on the replay engine from empty state, contacting
/// no channel, then the published set runs on the same events for the comparison.
#[utoipa::path(post, path = "/api/v1/backtests", tag = "rules", params(UploadParams),
    request_body(content((BacktestInput = "application/json"), (String = "application/x-ndjson"))),
    responses((status = 202, body = Job), (status = 400, body = ErrorBody), (status = 401), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn start_backtest(
    State(st): State<BacktestState>,
    who: Principal,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    who.require(Permission::EditRules)?;
    let limit = st.sync.config().backtest.max_upload_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            max_bytes: Some(limit),
            setting: UPLOAD_LIMIT,
        })?;
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let version = q
        .get("version")
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| ApiError::field("version", "must be a version number"))
        })
        .transpose()?;
    let drafts = q.get("drafts");
    let (tested, events) = if is_ndjson(&kind) {
        let drafts = drafts.map(|d| {
            d.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        });
        (tested(version, drafts)?, Events::Upload(bytes))
    } else if kind == "application/json" {
        if version.is_some() || drafts.is_some() {
            return Err(ApiError::bad_request(
                "with a JSON body, name version or drafts in the body",
            ));
        }
        let input: BacktestInput = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!("the body is not a backtest request: {e}"))
        })?;
        (
            tested(input.version, input.drafts)?,
            Events::Capture(input.capture_id),
        )
    } else {
        return Err(ApiError::bad_request(format!(
            "Content-Type {kind} is not accepted: a JSON request naming a capture, or an \
             application/x-ndjson event file"
        )));
    };
    let job = job::start(&st, &who.id, tested, events)
        .await
        .map_err(refused)?;
    tracing::info!(backtest = %job.id, by = %who.id, "backtest started");
    let location = format!("/api/v1/backtests/{}", job.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(job),
    )
        .into_response())
}

crate::table_handlers! { BacktestState, tag "rules", |st, who| who.require(Permission::EditRules);
    /// A backtest: while it runs, how far it is (`progress`); then its result, or why it failed.
    read "/api/v1/backtests/{id}" as get_backtest, Job, |id| found(st.sync.db(), &id);
    /// Backtests, newest first.
    list "/api/v1/backtests" as list_backtests, Job,
        |limit, offset| kept_page(st.sync.db(), limit, offset);
}
