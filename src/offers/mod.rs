//! Decided offers over HTTP: the recommendation list, responses that close the loop, the
//! agent desktop's next-best offers and the portal's inbox and live stream.

use crate::store::Page;
use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use futures::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::{Permission, Principal, Scope};
use crate::event::Msisdn;
use crate::http::{ApiError, ApiJson};
use crate::pipeline::RecQuery;
use crate::ports::{LineScope, OfferBook, Recommendation, Status};
use utoipa_axum::{router::OpenApiRouter, routes};

mod sms_mo;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(one))
        .routes(routes!(delivery))
        .routes(routes!(respond))
        .routes(routes!(correct))
        .routes(routes!(next_best))
        .routes(routes!(portal_stream))
        .routes(routes!(sms_dlr))
        .routes(routes!(sms_mo::incoming))
        .routes(routes!(sms_mo::url))
}

pub fn parse_msisdn(s: &str) -> Result<Msisdn, ApiError> {
    Msisdn::parse(s).map_err(|e| ApiError::field("msisdn", e.to_string()))
}

/// A call into the engine or the CRM through a port that failed: a 500.
pub fn port_failed(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(anyhow::anyhow!(e.to_string()))
}

/// Out-of-scope lines look exactly like unknown ones, so ids cannot be probed.
pub async fn check_line(state: &AppState, who: &Principal, m: Msisdn) -> Result<(), ApiError> {
    may_see_line(&*state.line_scope, who, m).await
}

/// [`check_line`] against any holder of the line scope (the desk's and the portal's states).
pub async fn may_see_line(
    lines: &dyn LineScope,
    who: &Principal,
    m: Msisdn,
) -> Result<(), ApiError> {
    if who.scope == Scope::All {
        return Ok(());
    }
    match lines.may_see(who, m).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::NotFound(format!("subscriber {m}"))),
        Err(e) => Err(port_failed(e)),
    }
}

/// A recommendation the caller's data scope shows, else 404.
async fn visible(state: &AppState, who: &Principal, id: &str) -> Result<Recommendation, ApiError> {
    let rec = state
        .pipeline
        .deps
        .recs
        .get(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("recommendation {id}")))?;
    check_line(state, who, rec.msisdn).await?;
    Ok(rec)
}

/// What an answer (or its correction) came to: the record, a 404 when it is gone, a 409 when
/// the offer cannot take that answer.
pub fn answered<T>(
    result: Result<Option<T>, crate::ports::PortError>,
    not_found: impl FnOnce() -> ApiError,
) -> Result<T, ApiError> {
    match result {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(not_found()),
        Err(crate::ports::PortError::Invalid(m)) => Err(ApiError::Conflict(m)),
        Err(e) => Err(port_failed(e)),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    pub msisdn: Option<String>,
    pub rule_id: Option<String>,
    pub status: Option<String>,
    pub channel: Option<String>,
    pub campaign_id: Option<String>,
    /// Only records stored after this sequence number (poll with the last `next_seq`).
    pub after_seq: Option<i64>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecPage {
    pub items: Vec<Recommendation>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// List recommendations, newest first; filters combine.
#[utoipa::path(get, path = "/api/v1/recommendations", tag = "engine", params(ListParams),
    responses((status = 200, body = RecPage), (status = 400, body = crate::http::error::ErrorBody), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Query(p): Query<ListParams>,
) -> Result<Json<RecPage>, ApiError> {
    who.require(Permission::ReadRecommendations)?;
    let msisdn = p.msisdn.as_deref().map(parse_msisdn).transpose()?;
    match msisdn {
        Some(m) => check_line(&state, &who, m).await?,
        None if who.scope != Scope::All => {
            return Err(ApiError::field("msisdn", "is required for your data scope"));
        }
        None => {}
    }
    let status = match p.status.as_deref() {
        None => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::field("status", format!("{s:?} is not a recommendation status"))
        })?),
    };
    let limit = p.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be from 1 to 1000"));
    }
    let offset = p.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::field("offset", "must not be negative"));
    }
    let q = RecQuery {
        msisdn,
        rule_id: p.rule_id,
        status,
        channel: p.channel,
        campaign_id: p.campaign_id,
        after_seq: p.after_seq,
        limit,
        offset,
    };
    let (items, total) = state.pipeline.deps.recs.list(&q).await?;
    Ok(Json(RecPage {
        items,
        total,
        limit,
        offset,
    }))
}

/// One recommendation.
#[utoipa::path(get, path = "/api/v1/recommendations/{id}", tag = "engine", params(("id" = String, Path)),
    responses((status = 200, body = Recommendation), (status = 404, body = crate::http::error::ErrorBody), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn one(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Recommendation>, ApiError> {
    who.require(Permission::ReadRecommendations)?;
    Ok(Json(visible(&state, &who, &id).await?))
}

/// How delivery of one recommendation stands: attempts, the provider's message id, the next
/// attempt after a transient failure (its status and reason are on the recommendation).
#[utoipa::path(get, path = "/api/v1/recommendations/{id}/delivery", tag = "engine", params(("id" = String, Path)),
    responses((status = 200, body = crate::pipeline::DeliveryRecord), (status = 404, body = crate::http::error::ErrorBody), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn delivery(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<crate::pipeline::DeliveryRecord>, ApiError> {
    let Json(rec) = one(State(state.clone()), who, Path(id.clone())).await?;
    let record = state.pipeline.deps.recs.delivery(&rec.id).await?;
    record
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("recommendation {id}")))
}

/// The answers a customer gives, as the statuses they set (ignoring lets the offer expire);
/// a correction takes the first two only.
const ANSWERS: &[(&str, Status)] = &[
    ("accepted", Status::Accepted),
    ("declined", Status::Declined),
    ("ignored", Status::Expired),
];

/// The status `given` names among `allowed`; else 400 on `outcome`, worded by `refused`.
fn outcome(
    given: &str,
    allowed: &[(&str, Status)],
    refused: impl FnOnce(&str) -> String,
) -> Result<Status, ApiError> {
    allowed
        .iter()
        .find(|(name, _)| *name == given)
        .map(|(_, status)| *status)
        .ok_or_else(|| ApiError::field("outcome", refused(given)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseBody {
    /// `accepted`, `declined` or `ignored`.
    pub outcome: String,
    /// Why (an agent's reason code, the customer's words).
    pub reason: Option<String>,
}

/// Record the customer's answer to an offer. Accepted and declined are final: the same
/// answer again changes nothing (200), another one is a 409; an answer recorded wrongly is
/// corrected with `POST /api/v1/recommendations/{id}/correction`.
#[utoipa::path(post, path = "/api/v1/recommendations/{id}/response", tag = "engine", params(("id" = String, Path)), request_body = ResponseBody,
    responses((status = 200, body = Recommendation), (status = 400, body = crate::http::error::ErrorBody), (status = 404, body = crate::http::error::ErrorBody), (status = 409, body = crate::http::error::ErrorBody, description = "the offer was already answered otherwise, or cannot be answered"), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn respond(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ResponseBody>,
) -> Result<Json<Recommendation>, ApiError> {
    who.require(Permission::RespondToOffers)?;
    let outcome = outcome(&body.outcome, ANSWERS, |o| {
        format!("{o:?} is not accepted, declined or ignored")
    })?;
    if body.reason.as_ref().is_some_and(|r| r.len() > 500) {
        return Err(ApiError::field("reason", "at most 500 characters"));
    }
    visible(&state, &who, &id).await?;
    let done = state.pipeline.respond(&id, outcome, &who.id, body.reason);
    answered(done.await, || {
        ApiError::NotFound(format!("recommendation {id}"))
    })
    .map(Json)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectionBody {
    /// The answer the customer really gave: `accepted` or `declined`.
    pub outcome: String,
    /// Why the recorded answer was wrong (required: it goes on the audit trail).
    pub reason: String,
}

/// Corrects an answer recorded wrongly: the offer's answer becomes `outcome`, as a new action
/// on the customer's timeline with its reason, audited with who did it and the record before
/// and after. For team leads and region heads; answers are otherwise final.
#[utoipa::path(post, path = "/api/v1/recommendations/{id}/correction", tag = "engine", params(("id" = String, Path)), request_body = CorrectionBody,
    responses((status = 200, body = Recommendation), (status = 400, body = crate::http::error::ErrorBody), (status = 404, body = crate::http::error::ErrorBody), (status = 409, body = crate::http::error::ErrorBody, description = "the offer is not answered yet, or already has that answer"), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn correct(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CorrectionBody>,
) -> Result<Json<Recommendation>, ApiError> {
    who.require(Permission::CorrectAnswers)?;
    let outcome = outcome(&body.outcome, &ANSWERS[..2], |o| {
        format!("{o:?}: a correction is to accepted or declined")
    })?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::field(
            "reason",
            "say why the answer was wrong, in at most 500 characters",
        ));
    }
    visible(&state, &who, &id).await?;
    let done = state.pipeline.correct(&id, outcome, &who.id, reason).await;
    let (before, after) = answered(done, || ApiError::NotFound(format!("recommendation {id}")))?;
    let mut conn = state.db.pool.acquire().await?;
    // The customer the line belongs to, so the audit trail is read within data scope.
    let customer: Option<(String,)> =
        sqlx::query_as("SELECT customer_id FROM lines WHERE msisdn = $1 AND deleted_at IS NULL")
            .bind(before.msisdn.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    let change = crate::audit::Change {
        entity: "recommendation",
        entity_id: &id,
        action: "correct",
        customer_id: customer.as_ref().map(|c| c.0.as_str()),
        before: crate::audit::snapshot(&before),
        after: crate::audit::snapshot(&serde_json::json!({
            "recommendation": after, "reason": reason,
        })),
    };
    crate::audit::record(&mut conn, &who, change)
        .await
        .map_err(|e| {
            ApiError::internal(anyhow::Error::new(e).context("auditing the correction"))
        })?;
    Ok(Json(after))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct NboParams {
    /// Only offers for this channel (`agent`, `portal`, ...).
    pub channel: Option<String>,
    pub limit: Option<usize>,
}

pub use crate::pipeline::rank::live;

/// Ranked next-best offers for the customer in front of an agent or on the portal: the live
/// offers run through the decision stages again now, best first.
#[utoipa::path(get, path = "/api/v1/subscribers/{msisdn}/next-best-offers", tag = "engine", params(("msisdn" = String, Path), NboParams),
    responses((status = 200, body = Page<Recommendation>), (status = 400, body = crate::http::error::ErrorBody), (status = 404, body = crate::http::error::ErrorBody), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn next_best(
    State(state): State<AppState>,
    who: Principal,
    Path(msisdn): Path<String>,
    Query(p): Query<NboParams>,
) -> Result<Json<Page<Recommendation>>, ApiError> {
    who.require(Permission::ReadRecommendations)?;
    let m = parse_msisdn(&msisdn)?;
    check_line(&state, &who, m).await?;
    let mut v = state
        .pipeline
        .eligible_now(m, p.channel.as_deref())
        .await
        .map_err(port_failed)?;
    // A ranking, small by nature (the top 5, at most 50): one page, no offset.
    v.truncate(p.limit.unwrap_or(5).clamp(1, 50));
    Ok(Json(Page::whole(v)))
}

/// Live portal pop-ups for one subscriber (Server-Sent Events): the current inbox first,
/// then every new portal offer as it is decided.
#[utoipa::path(get, path = "/api/v1/portal/{msisdn}/stream", tag = "channels", params(("msisdn" = String, Path)),
    responses((status = 200, description = "text/event-stream of recommendations"), (status = 404, body = crate::http::error::ErrorBody), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn portal_stream(
    State(state): State<AppState>,
    who: Principal,
    Path(msisdn): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    who.require(Permission::ReadRecommendations)?;
    let m = parse_msisdn(&msisdn)?;
    check_line(&state, &who, m).await?;
    // Subscribe before reading the inbox so nothing decided in between is missed.
    let rx = state.channels.portal.subscribe();
    let recs = state
        .pipeline
        .offers_for(m, 50)
        .await
        .map_err(port_failed)?;
    let inbox = live(recs, Some("portal"), chrono::Utc::now());
    let seen: std::collections::HashSet<String> = inbox.iter().map(|r| r.id.clone()).collect();
    let first = stream::iter(inbox.into_iter().map(|r| Ok(sse(&r))));
    let live_stream = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |item| {
        let keep = match item {
            Ok(r) if r.msisdn == m && !seen.contains(&r.id) => Some(Ok(sse(&r))),
            _ => None,
        };
        async move { keep }
    });
    Ok(Sse::new(first.chain(live_stream)).keep_alive(KeepAlive::default()))
}

fn sse(r: &Recommendation) -> SseEvent {
    offer_event(&r.id, r)
}

/// One offer on a live stream (`event: offer`, `id:` the offer's id): the portal's and the
/// agent desk's.
pub fn offer_event(id: &str, data: &impl Serialize) -> SseEvent {
    SseEvent::default()
        .id(id)
        .event("offer")
        .json_data(data)
        .unwrap_or_default()
}

/// A call from the SMS gateway: 403 with `refusal` unless its `token` passes `verify` under
/// the deployment's secret (never without a secret).
fn gateway_signed(
    state: &AppState,
    token: Option<&str>,
    verify: impl FnOnce(&str, &str) -> bool,
    refusal: &str,
) -> Result<(), ApiError> {
    let secret = &state.config.channels.sms.dlr_secret;
    if token.is_some_and(|t| !secret.is_empty() && verify(secret, t)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(refusal.into()))
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DlrParams {
    /// The recommendation id the gateway was given in the delivery-report URL.
    pub id: String,
    /// Kannel delivery status: 1 delivered, 2 failed, 4 buffered, 8 accepted by the SMSC, 16 rejected.
    pub status: i64,
    /// The message's signature from the same URL (see `channels.sms.dlr_url`).
    pub token: Option<String>,
}

/// Delivery report from the SMS gateway (Kannel `dlr-url` callback).
///
/// Authenticated only by the per-message `token` in the URL, never by a bearer: the gateway
/// cannot send one, and a person's credentials must not reach another customer's message.
/// A missing or wrong token answers 403 before anything is read.
#[utoipa::path(method(get, post), path = "/api/v1/channels/sms/dlr", tag = "channels", params(DlrParams),
    responses((status = 200, body = Recommendation), (status = 400, body = crate::http::error::ErrorBody), (status = 403, body = crate::http::error::ErrorBody), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn sms_dlr(
    State(state): State<AppState>,
    Query(p): Query<DlrParams>,
) -> Result<Json<Recommendation>, ApiError> {
    gateway_signed(
        &state,
        p.token.as_deref(),
        |secret, t| crate::channels::sms::dlr::verify(secret, &p.id, t),
        "delivery report without a valid token for this message",
    )?;
    let (status, reason) = match p.status {
        1 => (Status::Delivered, None),
        2 => (Status::Failed, Some("undelivered")),
        16 => (Status::Failed, Some("rejected_by_smsc")),
        4 | 8 => (Status::Sent, None),
        other => {
            return Err(ApiError::field(
                "status",
                format!("{other} is not a Kannel delivery status (1, 2, 4, 8, 16)"),
            ))
        }
    };
    let rec = state
        .pipeline
        .deps
        .recs
        .get(&p.id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("recommendation {}", p.id)))?;
    if rec.channel != "sms" {
        return Err(ApiError::field("id", "is not an SMS recommendation"));
    }
    // Answers (accepted / declined) are final: a late receipt must not overwrite them.
    if matches!(
        rec.status,
        Status::Accepted | Status::Declined | Status::Expired
    ) {
        return Ok(Json(rec));
    }
    let updated = state
        .pipeline
        .deps
        .recs
        .set_status(&p.id, status, reason)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("recommendation {}", p.id)))?;
    Ok(Json(updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, score: f64, priority: Option<f64>, status: Status) -> Recommendation {
        let now = chrono::Utc::now().fixed_offset();
        Recommendation {
            id: id.into(),
            msisdn: crate::event::Msisdn::parse("8613900000001").unwrap(),
            rule_id: "r".into(),
            offer_code: id.to_uppercase(),
            channel: "agent".into(),
            message: "m".into(),
            score,
            trigger_event_id: None,
            campaign_id: None,
            request_id: None,
            decided_at: now,
            expires_at: now + chrono::Duration::days(1),
            not_before: None,
            status,
            reason: None,
            explanation: priority.map(|p| crate::ports::Explanation {
                priority: p,
                propensity: 1.0,
                acceptance: None,
                segment: None,
                score,
                value: p / score,
                lever: 1.0,
                channel: 1.0,
                winner: None,
                variant: None,
                cost: None,
                hold: None,
            }),
            service: false,
        }
    }

    #[test]
    fn next_best_offers_are_live_ones_in_the_decision_stages_order() {
        let recs = vec![
            rec("plain", 0.9, None, Status::Sent),
            rec("valuable", 0.3, Some(1.2), Status::Delivered),
            rec("weighed", 0.8, Some(0.4), Status::Queued),
            rec("answered", 0.99, Some(5.0), Status::Accepted),
            rec("held", 0.99, Some(5.0), Status::Suppressed),
        ];
        let ids: Vec<String> = live(recs, Some("agent"), chrono::Utc::now())
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["valuable", "plain", "weighed"]);
    }
}
