//! The agent desktop's API (the page itself is in `web/`): opening a customer is a touchpoint
//! that asks the engine for the best offers now; the ranked offers come with why each was
//! chosen; new ones are pushed while the customer is open; an offer on the agent channel is
//! `delivered` once an agent's page has shown it. Answers use the staff response route
//! (`POST /api/v1/recommendations/{id}/response`). Role and data scope are checked on every
//! route: an agent sees only the lines their scope allows.

use crate::store::Page;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use futures::stream::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{AuthHandle, Permission, Principal};
use crate::channels::agent::AgentDesk;
use crate::event::Msisdn;
use crate::http::{ApiError, ApiJson};
use crate::pipeline::Pipeline;
use crate::ports::{LineScope, OfferBook, Recommendation};
use crate::touch::Touchpoints;

/// What the desk routes need, built by `app.rs` from the application state.
#[derive(Clone)]
pub struct DeskState {
    pub auth: AuthHandle,
    pub line_scope: Arc<dyn LineScope>,
    pub pipeline: Pipeline,
    pub hub: AgentDesk,
    pub touch: Touchpoints,
}

crate::auth_in_state!(DeskState);

pub fn router() -> OpenApiRouter<DeskState> {
    OpenApiRouter::new()
        .routes(routes!(visit))
        .routes(routes!(offers))
        .routes(routes!(stream))
        .routes(routes!(seen))
}

/// One reason an offer is recommended; the page words it in the agent's language.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reason {
    /// `rule`, `description`, `priority`, `category`, `campaign`, `trigger` or `score`.
    pub kind: String,
    pub value: String,
}

/// A recommendation as the desk shows it: the offer plus why it was chosen.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeskOffer {
    #[serde(flatten)]
    pub offer: Recommendation,
    /// The deciding rule's name, when it is still loaded.
    pub rule_name: Option<String>,
    pub reasons: Vec<Reason>,
}

fn explain(pipeline: &Pipeline, r: Recommendation) -> DeskOffer {
    let rules = pipeline.rules();
    let rule = rules.rules.iter().find(|x| x.meta.id == r.rule_id);
    let mut reasons = Vec::new();
    let mut push = |kind: &str, value: String| {
        reasons.push(Reason {
            kind: kind.into(),
            value,
        })
    };
    push("rule", r.rule_id.clone());
    if let Some(rule) = rule {
        if !rule.meta.description.is_empty() {
            push("description", rule.meta.description.clone());
        }
        push("priority", rule.meta.priority.to_string());
        push(
            "category",
            serde_json::to_value(rule.meta.category)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        );
    }
    if let Some(c) = &r.campaign_id {
        push("campaign", c.clone());
    }
    if let Some(t) = &r.trigger_event_id {
        push("trigger", t.clone());
    }
    push("score", format!("{:.2}", r.score));
    DeskOffer {
        rule_name: rule.map(|x| x.meta.name.clone()),
        offer: r,
        reasons,
    }
}

/// Out-of-scope lines look exactly like unknown ones, so numbers cannot be probed.
async fn check(state: &DeskState, who: &Principal, raw: &str) -> Result<Msisdn, ApiError> {
    who.require(Permission::ReadRecommendations)?;
    let m = crate::offers::parse_msisdn(raw)?;
    crate::offers::may_see_line(&*state.line_scope, who, m).await?;
    Ok(m)
}

async fn ranked(state: &DeskState, m: Msisdn) -> Result<Vec<DeskOffer>, ApiError> {
    let mut v = state
        .pipeline
        .eligible_now(m, Some("agent"))
        .await
        .map_err(crate::offers::port_failed)?;
    v.truncate(20);
    Ok(v.into_iter().map(|r| explain(&state.pipeline, r)).collect())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitRequest {
    #[schema(example = "8613900000001")]
    pub msisdn: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeskVisit {
    /// The `visit` event submitted for this opening.
    pub event_id: String,
    /// Ranked next-best offers on the agent channel, best first.
    pub offers: Vec<DeskOffer>,
}

/// An agent opens a customer: a `visit` touchpoint from the agent channel (`agent_id` the
/// agent), decided at once, then the ranked offers. In Kafka mode the decision is made by the
/// partition's owner and arrives on the stream.
#[utoipa::path(post, path = "/api/v1/agent/visits", tag = "agent desk", request_body = VisitRequest,
    responses((status = 200, body = DeskVisit), (status = 400, body = crate::http::error::ErrorBody), (status = 401), (status = 403), (status = 404, body = crate::http::error::ErrorBody), (status = 503, body = crate::http::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn visit(
    State(state): State<DeskState>,
    who: Principal,
    ApiJson(body): ApiJson<VisitRequest>,
) -> Result<Json<DeskVisit>, ApiError> {
    let m = check(&state, &who, &body.msisdn).await?;
    let event_id = state
        .touch
        .visit(m, "agent", &[("agent_id", who.id.as_str())])
        .await?;
    Ok(Json(DeskVisit {
        event_id,
        offers: ranked(&state, m).await?,
    }))
}

/// The customer's open offers on the agent channel, best first, each with its reasons.
#[utoipa::path(get, path = "/api/v1/agent/subscribers/{msisdn}/offers", tag = "agent desk", params(("msisdn" = String, Path)),
    responses((status = 200, body = Page<DeskOffer>), (status = 400, body = crate::http::error::ErrorBody), (status = 401), (status = 403), (status = 404, body = crate::http::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn offers(
    State(state): State<DeskState>,
    who: Principal,
    Path(msisdn): Path<String>,
) -> Result<Json<Page<DeskOffer>>, ApiError> {
    let m = check(&state, &who, &msisdn).await?;
    // Whole by nature: a top-20 ranking, not a list that grows.
    Ok(Json(Page::whole(ranked(&state, m).await?)))
}

/// New agent-channel offers for the open customer as they are decided (Server-Sent Events,
/// `event: offer`, data a `DeskOffer`). Authenticated like every staff route, by header: the
/// desk reads it with `fetch`, so no credential goes into a URL.
#[utoipa::path(get, path = "/api/v1/agent/subscribers/{msisdn}/stream", tag = "agent desk", params(("msisdn" = String, Path)),
    responses((status = 200, description = "text/event-stream of DeskOffer"), (status = 401), (status = 403), (status = 404, body = crate::http::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn stream(
    State(state): State<DeskState>,
    who: Principal,
    Path(msisdn): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let m = check(&state, &who, &msisdn).await?;
    let pipeline = state.pipeline.clone();
    // While the desk has the customer open, the decision stage knows an agent is with them.
    let watching = state.hub.watch(m);
    let live = tokio_stream::wrappers::BroadcastStream::new(state.hub.subscribe()).filter_map(
        move |item| {
            let _open = &watching;
            let keep = match item {
                Ok(r) if r.msisdn == m => {
                    let d = explain(&pipeline, r);
                    Some(Ok(crate::offers::offer_event(&d.offer.id, &d)))
                }
                _ => None,
            };
            async move { keep }
        },
    );
    Ok(Sse::new(live).keep_alive(KeepAlive::default()))
}

/// The agent's page has shown this offer: an agent-channel offer becomes `delivered`.
#[utoipa::path(post, path = "/api/v1/agent/offers/{id}/seen", tag = "agent desk", params(("id" = String, Path)),
    responses((status = 200, body = Recommendation), (status = 401), (status = 403), (status = 404, body = crate::http::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn seen(
    State(state): State<DeskState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Recommendation>, ApiError> {
    let not_found = || ApiError::NotFound(format!("offer {id}"));
    let rec = state
        .pipeline
        .deps
        .recs
        .get(&id)
        .await?
        .filter(|r| r.channel == "agent")
        .ok_or_else(not_found)?;
    check(&state, &who, &rec.msisdn.to_string()).await?;
    crate::touch::mark_seen(&state.pipeline.deps.recs, &id)
        .await?
        .map(Json)
        .ok_or_else(not_found)
}
