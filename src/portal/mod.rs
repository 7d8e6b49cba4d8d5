//! The customer portal: short-lived session tokens minted by the operator's portal backend,
//! and what the customer's browser does with one: a live stream of pop-ups, an inbox, answers,
//! and touchpoints (login, payment, service change) that let rules fire at that moment.
//!
//! A token opens one msisdn's portal offers and nothing else: another number's offer id is
//! answered exactly like an unknown one (404).

pub mod token;

use crate::store::Page;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use futures::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{too_many, AuthHandle, Permission, Principal};
use crate::channels::portal::PortalHub;
use crate::config::Config;
use crate::event::Msisdn;
use crate::http::{ApiError, ApiJson};
use crate::pipeline::Pipeline;
use crate::ports::{LineScope, OfferBook, Recommendation, Status};
use crate::touch::Touchpoints;

/// What the portal routes need, built by `app.rs` from the application state.
#[derive(Clone)]
pub struct PortalState {
    pub config: Arc<Config>,
    pub auth: AuthHandle,
    pub line_scope: Arc<dyn LineScope>,
    pub pipeline: Pipeline,
    pub hub: PortalHub,
    pub touch: Touchpoints,
}

crate::auth_in_state!(PortalState);

/// Minting sessions: called server to server by the portal backend, so no CORS.
pub fn sessions_router() -> OpenApiRouter<PortalState> {
    OpenApiRouter::new().routes(routes!(mint))
}

/// What the customer's browser calls with its token (CORS for `channels.portal.origins`).
pub fn customer_router() -> OpenApiRouter<PortalState> {
    OpenApiRouter::new()
        .routes(routes!(stream))
        .routes(routes!(inbox))
        .routes(routes!(act))
        .routes(routes!(touchpoint))
}

/// CORS for the customer routes: only the configured portal origins, no cookies (the token
/// travels in the request itself).
pub fn cors(origins: &[String]) -> Result<tower_http::cors::CorsLayer, String> {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    let list = origins
        .iter()
        .map(|o| {
            HeaderValue::from_str(o.trim_end_matches('/'))
                .map_err(|_| format!("channels.portal.origins: {o:?} is not an origin"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::AllowOrigin::list(list))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("last-event-id"),
        ])
        .max_age(std::time::Duration::from_secs(600)))
}

/// The customer a portal token opens.
pub struct PortalCustomer(pub Msisdn);

#[derive(Deserialize)]
struct TokenParam {
    token: Option<String>,
}

impl FromRequestParts<PortalState> for PortalCustomer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PortalState,
    ) -> Result<Self, Self::Rejection> {
        // EventSource cannot send headers, so the stream takes the token as `?token=`.
        let from_header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|v| v.trim().to_string());
        let token = match from_header {
            Some(t) => t,
            None => Query::<TokenParam>::try_from_uri(&parts.uri)
                .ok()
                .and_then(|q| q.0.token)
                .ok_or(ApiError::Unauthenticated)?,
        };
        let addr = state.auth.guesses.client(parts);
        state.auth.guesses.check(addr).map_err(too_many)?;
        let secret = &state.config.channels.portal.token_secret;
        match token::verify(secret, &token, chrono::Utc::now()) {
            Ok(m) => Ok(PortalCustomer(m)),
            Err(_) => {
                // Forged and expired tokens cost the address a guess like a wrong API key.
                state.auth.guesses.failed(addr).map_err(too_many)?;
                Err(ApiError::Unauthenticated)
            }
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// The logged-in customer's line (E.164 without `+`).
    #[schema(example = "8613900000001")]
    pub msisdn: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PortalSession {
    /// Hand it to the customer's page (`data-token` of `portal.js`).
    pub token: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub msisdn: String,
}

/// Mint a portal session for a logged-in customer (the portal backend, with a system or
/// admin API key). The token is valid for `channels.portal.session_minutes`.
#[utoipa::path(post, path = "/api/v1/portal/sessions", tag = "portal", request_body = SessionRequest,
    responses((status = 201, body = PortalSession), (status = 400, body = crate::http::error::ErrorBody), (status = 401), (status = 403, description = "needs `mint_portal_sessions` (a system key, admins)", body = crate::http::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn mint(
    State(state): State<PortalState>,
    who: Principal,
    ApiJson(body): ApiJson<SessionRequest>,
) -> Result<(StatusCode, Json<PortalSession>), ApiError> {
    // A person's login must not be able to act as a customer: only systems and admins mint.
    who.require(Permission::MintPortalSessions)?;
    let m = crate::offers::parse_msisdn(&body.msisdn)?;
    crate::offers::may_see_line(&*state.line_scope, &who, m).await?;
    let minutes = state
        .config
        .channels
        .portal
        .session_minutes
        .clamp(1, 24 * 60) as i64;
    let expires_at = chrono::Utc::now() + chrono::Duration::minutes(minutes);
    let token = token::mint(&state.config.channels.portal.token_secret, m, expires_at);
    Ok((
        StatusCode::CREATED,
        Json(PortalSession {
            token,
            expires_at,
            msisdn: m.to_string(),
        }),
    ))
}

/// The customer's live portal offers, oldest first (the order the stream sends them in).
async fn live_offers(state: &PortalState, m: Msisdn) -> Result<Vec<Recommendation>, ApiError> {
    let recs = state
        .pipeline
        .offers_for(m, 200)
        .await
        .map_err(crate::offers::port_failed)?;
    let mut v = crate::offers::live(recs, Some("portal"), chrono::Utc::now());
    v.sort_by(|a, b| a.decided_at.cmp(&b.decided_at).then(a.id.cmp(&b.id)));
    Ok(v)
}

/// One of the customer's portal offers; any other id (another number's included) is unknown.
async fn own_offer(state: &PortalState, m: Msisdn, id: &str) -> Result<Recommendation, ApiError> {
    match state.pipeline.deps.recs.get(id).await? {
        Some(r) if r.msisdn == m && r.channel == "portal" => Ok(r),
        _ => Err(ApiError::NotFound(format!("offer {id}"))),
    }
}

/// The customer's pop-ups, live (Server-Sent Events, `event: offer`, `id:` the offer id).
/// First the inbox, or after a reconnect only what came after `Last-Event-ID`; then each new
/// portal offer as it is decided. The token goes in `?token=` (EventSource sends no headers).
#[utoipa::path(get, path = "/api/v1/portal/stream", tag = "portal",
    params(("token" = String, Query, description = "portal session token"),
        ("Last-Event-ID" = Option<String>, Header, description = "the last offer id received; sent by EventSource on reconnect")),
    responses((status = 200, description = "text/event-stream of recommendations"), (status = 401)))]
pub async fn stream(
    State(state): State<PortalState>,
    PortalCustomer(m): PortalCustomer,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    // Subscribe before reading the store so nothing decided in between is missed.
    let rx = state.hub.subscribe();
    let mut inbox = live_offers(&state, m).await?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    if let Some(last) = last {
        // An id that is not this customer's portal offer replays nothing less than the inbox.
        if let Ok(seen) = own_offer(&state, m, last).await {
            let cursor = (seen.decided_at, seen.id.clone());
            inbox.retain(|r| (r.decided_at, r.id.clone()) > cursor);
        }
    }
    let mut sent: std::collections::HashSet<String> = inbox.iter().map(|r| r.id.clone()).collect();
    if let Some(last) = last {
        sent.insert(last.to_string());
    }
    let first = stream::iter(inbox.into_iter().map(|r| Ok(sse(&r))));
    // While the page is open, the decision stage knows the customer is on the portal.
    let watching = state.hub.watch(m);
    let live = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |item| {
        let _open = &watching;
        let keep = match item {
            Ok(r) if r.msisdn == m && sent.insert(r.id.clone()) => Some(Ok(sse(&r))),
            _ => None,
        };
        async move { keep }
    });
    Ok(Sse::new(first.chain(live)).keep_alive(KeepAlive::default()))
}

fn sse(r: &Recommendation) -> SseEvent {
    crate::offers::offer_event(&r.id, r)
}

/// The customer's inbox: portal offers still open, best first.
#[utoipa::path(get, path = "/api/v1/portal/offers", tag = "portal",
    params(("token" = Option<String>, Query, description = "portal session token, unless sent as `Authorization: Bearer`")),
    responses((status = 200, body = Page<Recommendation>), (status = 401)),
    security(("bearer" = [])))]
pub async fn inbox(
    State(state): State<PortalState>,
    PortalCustomer(m): PortalCustomer,
) -> Result<Json<Page<Recommendation>>, ApiError> {
    let mut v = live_offers(&state, m).await?;
    v.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.decided_at.cmp(&a.decided_at))
    });
    // Whole by nature: one subscriber's open portal offers (at most the 200 newest read).
    Ok(Json(Page::whole(v)))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalAnswer {
    /// The customer's words, for `decline` (at most 500 characters).
    pub reason: Option<String>,
}

/// The customer acts on an offer: `seen` (the pop-up was shown: the offer is `delivered`),
/// `accept`, `decline`, or `dismiss` (closed without answering: recorded as ignored, so it
/// stops popping up). Answers go through the same response path as an agent's.
#[utoipa::path(post, path = "/api/v1/portal/offers/{id}/{action}", tag = "portal",
    params(("id" = String, Path), ("action" = String, Path, description = "seen | accept | decline | dismiss"),
        ("token" = Option<String>, Query, description = "portal session token, unless sent as `Authorization: Bearer`")),
    request_body(content = Option<PortalAnswer>, description = "optional"),
    responses((status = 200, body = Recommendation), (status = 400, body = crate::http::error::ErrorBody), (status = 401), (status = 404, body = crate::http::error::ErrorBody), (status = 409, body = crate::http::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn act(
    State(state): State<PortalState>,
    PortalCustomer(m): PortalCustomer,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Recommendation>, ApiError> {
    let answer: PortalAnswer = if body.iter().all(u8::is_ascii_whitespace) {
        PortalAnswer::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    if answer.reason.as_ref().is_some_and(|r| r.len() > 500) {
        return Err(ApiError::field("reason", "at most 500 characters"));
    }
    let (outcome, reason) = match action.as_str() {
        "seen" => {
            own_offer(&state, m, &id).await?;
            return crate::touch::mark_seen(&state.pipeline.deps.recs, &id)
                .await?
                .map(Json)
                .ok_or_else(|| ApiError::NotFound(format!("offer {id}")));
        }
        "accept" => (Status::Accepted, answer.reason),
        "decline" => (Status::Declined, answer.reason),
        "dismiss" => (
            Status::Expired,
            Some(answer.reason.unwrap_or_else(|| "dismissed".into())),
        ),
        other => {
            return Err(ApiError::field(
                "action",
                format!("{other:?} is not seen, accept, decline or dismiss"),
            ))
        }
    };
    let rec = own_offer(&state, m, &id).await?;
    if matches!(
        rec.status,
        Status::Accepted | Status::Declined | Status::Expired
    ) {
        return Err(ApiError::Conflict(format!(
            "offer {id} was already answered ({})",
            rec.status.as_str()
        )));
    }
    let actor = format!("portal:{m}");
    let done = state.pipeline.respond(&id, outcome, &actor, reason).await;
    crate::offers::answered(done, || ApiError::NotFound(format!("offer {id}"))).map(Json)
}

/// Moments the portal reports; each becomes a `visit` event with `channel: "portal"` and
/// this `trigger`, which rules can match on.
pub const TRIGGERS: &[&str] = &["login", "payment", "service_change", "page_view"];

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TouchpointRequest {
    /// `login`, `payment`, `service_change` or `page_view`.
    pub trigger: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TouchpointAccepted {
    /// The `visit` event submitted.
    pub event_id: String,
}

/// The customer is on the portal now (logged in, paid, changed a service): submits a
/// `visit` touchpoint so rules can decide an offer for this moment; new pop-ups arrive on
/// the stream.
#[utoipa::path(post, path = "/api/v1/portal/touchpoints", tag = "portal", request_body = TouchpointRequest,
    params(("token" = Option<String>, Query, description = "portal session token, unless sent as `Authorization: Bearer`")),
    responses((status = 202, body = TouchpointAccepted), (status = 400, body = crate::http::error::ErrorBody), (status = 401), (status = 503, body = crate::http::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn touchpoint(
    State(state): State<PortalState>,
    PortalCustomer(m): PortalCustomer,
    ApiJson(body): ApiJson<TouchpointRequest>,
) -> Result<(StatusCode, Json<TouchpointAccepted>), ApiError> {
    if !TRIGGERS.contains(&body.trigger.as_str()) {
        return Err(ApiError::field(
            "trigger",
            format!("{:?} is not one of {}", body.trigger, TRIGGERS.join(", ")),
        ));
    }
    let event_id = state
        .touch
        .visit(m, "portal", &[("trigger", body.trigger.as_str())])
        .await?;
    Ok((StatusCode::ACCEPTED, Json(TouchpointAccepted { event_id })))
}
