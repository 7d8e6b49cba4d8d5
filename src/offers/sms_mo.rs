//! Incoming SMS from a Kannel-style gateway (its `sms-service` `get-url`): a subscriber's reply
//! to an offer ("Y") is recorded as the answer to it. Like delivery reports, the gateway can
//! send no bearer header, so the URL carries a token; unlike them it is one per deployment,
//! which an administrator reads once to configure the gateway.

use anyhow::Context;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::{Permission, Principal};
use crate::channels::sms::dlr;
use crate::channels::{replies, Reply};
use crate::http::ApiError;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct MoParams {
    /// The sender's number (Kannel `%p`).
    pub from: String,
    /// The message text (Kannel `%a`).
    pub text: String,
    /// The deployment's incoming-SMS token (see `GET /api/v1/channels/sms/mo-url`).
    pub token: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MoOutcome {
    /// The offer the reply answered, if it answered one.
    pub recommendation_id: Option<String>,
    /// The reply was a stop word (`TD`, `STOP`, `退订`) and the customer's refusal of
    /// marketing on SMS is recorded.
    pub opted_out: bool,
}

/// An incoming SMS: a reply to an offer becomes its answer (`accepted` / `declined`); a stop
/// word (`TD`, `STOP`, `退订`) also records the customer's refusal of marketing by SMS.
#[utoipa::path(method(get, post), path = "/api/v1/channels/sms/mo", tag = "channels", params(MoParams),
    responses((status = 200, body = MoOutcome), (status = 400, body = crate::http::error::ErrorBody), (status = 403, body = crate::http::error::ErrorBody)))]
pub async fn incoming(
    State(state): State<AppState>,
    Query(p): Query<MoParams>,
) -> Result<Json<MoOutcome>, ApiError> {
    super::gateway_signed(
        &state,
        p.token.as_deref(),
        dlr::verify_mo,
        "incoming SMS without the deployment's token",
    )?;
    let from = crate::event::Msisdn::parse(p.from.trim_start_matches('+'))
        .map_err(|e| ApiError::field("from", e.to_string()))?;
    if p.text.chars().count() > 1_000 {
        return Err(ApiError::field("text", "is longer than any SMS"));
    }
    let reply = Reply {
        channel: "sms".into(),
        from,
        text: p.text,
    };
    let opt_outs = state.channels.opt_outs.get().map(|o| &**o);
    let done = replies::answer(&state.pipeline.deps.recs, opt_outs, &reply)
        .await
        .context("recording an incoming SMS")
        .map_err(ApiError::internal)?;
    Ok(Json(MoOutcome {
        recommendation_id: done.recommendation_id,
        opted_out: done.opted_out,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MoUrl {
    /// The path and query to give the gateway, after this server's public address; Kannel
    /// fills in `%p` (sender) and `%a` (text).
    pub path: String,
}

/// The incoming-SMS URL to configure in the gateway, with the deployment's token.
#[utoipa::path(get, path = "/api/v1/channels/sms/mo-url", tag = "channels",
    responses((status = 200, body = MoUrl), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn url(State(state): State<AppState>, who: Principal) -> Result<Json<MoUrl>, ApiError> {
    // Whoever holds the token can answer offers for any number: administrators only.
    who.require(Permission::ManageUsers)?;
    let token = dlr::mo_token(&state.config.channels.sms.dlr_secret);
    Ok(Json(MoUrl {
        path: format!("/api/v1/channels/sms/mo?from=%p&text=%a&token={token}"),
    }))
}
