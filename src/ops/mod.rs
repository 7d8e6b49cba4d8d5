//! The operator's and marketer's view of the engine: live counts, Prometheus metrics,
//! probes, loaded rules, reload, dead letters and the embedded SMS outbox.

pub mod counts;
pub mod health;
pub mod metrics;
pub mod openapi;

use std::collections::HashMap;

use crate::store::{ListParams, Page};
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::{Permission, Principal, Scope};
use crate::channels::sms::OutboxEntry;
use crate::event::Msisdn;
use crate::http::error::ErrorBody;
use crate::http::ApiError;
use crate::offers::check_line;
use crate::pipeline::{DeadLetter, MetricsSnapshot};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stats))
        .routes(routes!(metrics::metrics))
        .routes(routes!(rules))
        .routes(routes!(counts::rule_counts))
        .routes(routes!(reload))
        .routes(routes!(dead_letters))
        .routes(routes!(outbox))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleCounts {
    pub rule_id: String,
    /// Runs of the rule's script on this instance since it started, publishes included
    /// (`kairos_rule_evaluations_total` in `/metrics`).
    pub evaluated: u64,
    pub matched: u64,
    pub errors: u64,
    /// Taken out of service by its breaker until the rules are reloaded.
    pub quarantined: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Stats {
    pub events: MetricsSnapshot,
    pub rules: Vec<RuleCounts>,
    /// Rules of the loaded set that are quarantined now (`events.rule_quarantines` counts
    /// every quarantine since start, including those a reload lifted).
    pub quarantined_rules: usize,
    pub channels: Vec<String>,
}

/// Live engine counters and the running rules' counts since this instance started (through
/// publishes and reloads, as `/metrics` counts them; `GET /api/v1/rules` has the totals of
/// every instance, kept through restarts).
#[utoipa::path(get, path = "/api/v1/engine/stats", tag = "engine", responses((status = 200, body = Stats), (status = 401), (status = 403)), security(("bearer" = [])))]
pub async fn stats(State(state): State<AppState>, who: Principal) -> Result<Json<Stats>, ApiError> {
    who.require(Permission::ReadEngineStats)?;
    let rules = state.pipeline.rules();
    // The counts `/metrics` shows: since this process started, through publishes and reloads
    // (which swap in rule objects whose own counters start at zero), so the two agree.
    let mut lifetimes = state.pipeline.rule_lifetimes();
    Ok(Json(Stats {
        events: state
            .pipeline
            .deps
            .metrics
            .snapshot_with(state.pipeline.deps.state.round_trips()),
        quarantined_rules: rules.rules.iter().filter(|r| r.breaker.is_open()).count(),
        rules: rules
            .rules
            .iter()
            .map(|r| {
                let counted = lifetimes.remove(&r.meta.id).unwrap_or_default();
                RuleCounts {
                    rule_id: r.meta.id.clone(),
                    evaluated: counted.evaluated,
                    matched: counted.matched,
                    errors: counted.errors,
                    quarantined: r.breaker.is_open(),
                }
            })
            .collect(),
        channels: state.channels.names(),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: String,
    pub category: String,
    pub events: Vec<String>,
    pub priority: i64,
    pub channels: Vec<String>,
    pub offer_code: String,
    pub file: String,
    pub tests: usize,
    /// Skipped on every event after repeated failures; a reload lifts it.
    pub quarantined: bool,
    /// Why and since when, while quarantined.
    pub quarantine: Option<crate::rules::Quarantine>,
    /// What would keep the rule from ever firing ("file:line:column: ..."), as
    /// `kairos rules check` prints it.
    pub warnings: Vec<String>,
    /// Lasting counts: evaluated, matched and errors summed over every instance since counting
    /// began (through reloads and restarts; `GET /api/v1/engine/stats` has this instance's since
    /// it started; days older
    /// than `counts.retention_days` are dropped), its decisions by outcome with conversion,
    /// and uplift against its control group. Null when the database did not answer: the rest
    /// of the list is the running set in memory, and still answers.
    pub totals: Option<counts::RuleTotals>,
}

/// The loaded rules, in load order, a page at a time, each with its lasting counts (`totals`).
#[utoipa::path(get, path = "/api/v1/rules", tag = "rules", params(Paging),
    responses((status = 200, body = Page<RuleInfo>), (status = 400, body = crate::http::error::ErrorBody), (status = 401), (status = 403, body = crate::http::error::ErrorBody)), security(("bearer" = [])))]
pub async fn rules(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<RuleInfo>>, ApiError> {
    who.require(Permission::ReadRules)?;
    let params = ListParams::paging(&q)?;
    let set = state.pipeline.rules();
    let mut page = Page::of(
        set.rules
            .iter()
            .map(|r| {
                let m = &r.meta;
                RuleInfo {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    description: m.description.clone(),
                    kind: format!("{:?}", m.kind).to_lowercase(),
                    category: format!("{:?}", m.category).to_lowercase(),
                    events: m.events.iter().map(|e| e.as_str().to_string()).collect(),
                    priority: m.priority,
                    channels: m.channels.clone(),
                    offer_code: m.offer_code.clone(),
                    file: r.file.display().to_string(),
                    tests: r.tests.len(),
                    quarantined: r.breaker.is_open(),
                    quarantine: r.breaker.quarantine().cloned(),
                    warnings: r.warnings.iter().map(ToString::to_string).collect(),
                    totals: None,
                }
            })
            .collect(),
        &params,
    );
    // This instance's latest counts first, so a single instance shows them at once. Unwritten
    // counts stay in memory for the next write, so a failure here loses nothing.
    if let Err(e) = state.rule_counts.flush().await {
        tracing::warn!("writing per-rule counts before listing rules: {e:#}");
    }
    let ids: Vec<&str> = page.items.iter().map(|r| r.id.as_str()).collect();
    match counts::rule_totals(&state, &ids).await {
        Ok(mut totals) => {
            for r in &mut page.items {
                r.totals = totals.remove(&r.id);
            }
        }
        Err(e) => tracing::warn!("reading per-rule counts: {e:#}"),
    }
    Ok(Json(page))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReloadResult {
    pub rules: usize,
    pub state_series: usize,
    /// The version now running: a new one when the folder differed from the active version.
    pub version: i64,
    /// Instances told to reload too (this one included), when instances share Redis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances_notified: Option<i64>,
}

/// Publishes this instance's rules folder (`rules/`, as deployed from git) as the next rule
/// version when it differs from the active one, approved by the caller; either way every
/// instance compiles the active version afresh (lifting quarantines). A folder with an error
/// is refused (400, each problem with its file, line and column) and nothing changes.
#[utoipa::path(post, path = "/api/v1/rules/reload", tag = "rules",
    responses((status = 200, body = ReloadResult), (status = 400, body = crate::http::error::ErrorBody), (status = 401), (status = 403), (status = 409, body = crate::http::error::ErrorBody)), security(("bearer" = [])))]
pub async fn reload(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<ReloadResult>, ApiError> {
    who.require(Permission::ManageRules)?;
    let done = crate::authoring::publish::reload_folder(&state.rule_sync, &who.id)
        .await
        .map_err(|r| crate::authoring::routes::refused(&who, r))?;
    tracing::info!(rules = done.swapped.rules, version = done.version.number, by = %who.id, "rules reloaded");
    Ok(Json(ReloadResult {
        rules: done.swapped.rules,
        state_series: done.swapped.state_series,
        version: done.version.number,
        instances_notified: done.instances_notified,
    }))
}

/// The paging every ops list takes (parsed as the one list query, `ListParams`): a page of
/// `limit` (default 50, 1 to 500) after `offset`; `total` in the answer counts every match.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

crate::table_handlers! { AppState, tag "engine", |state, who| who.require_all_customers(
    Permission::ReadDeadLetters,
    "dead letters hold other customers' raw events: an all-customers role reads them",
);
    /// Rejected events with their reasons, newest first.
    ///
    /// Operations only: `ReadDeadLetters`, which only the all-customers roles have (admin,
    /// marketer), not just `ReadEngineStats`. A dead letter is a raw payload that failed
    /// validation, so its msisdn is often missing or malformed and cannot be matched to a
    /// customer; filtering by line scope would either hide most of them or leak the
    /// unattributable ones. Team leads and region heads get 403 (naming the permission and the
    /// roles that have it) and ask operations.
    list "/api/v1/dead-letters" as dead_letters, DeadLetter,
        |limit, offset| state.pipeline.deps.dead_letters.list(limit, offset);
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxParams {
    /// Only messages to this number (required for a scoped role).
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Messages the embedded SMS channel "sent" (nothing leaves the machine in outbox mode).
///
/// Like the recommendation list: all-customers roles see every message; scoped roles must
/// name one number in `to`, which must be a line they may see (else 404, as for unknown lines).
/// A page is the `limit` newest messages after skipping the `offset` newest, oldest first;
/// `total` counts every message held that matches `to`.
#[utoipa::path(get, path = "/api/v1/channels/sms/outbox", tag = "channels", params(OutboxParams),
    responses((status = 200, body = Page<OutboxEntry>), (status = 400, body = crate::http::error::ErrorBody), (status = 404, body = crate::http::error::ErrorBody), (status = 401), (status = 403, body = crate::http::error::ErrorBody)), security(("bearer" = [])))]
pub async fn outbox(
    State(state): State<AppState>,
    who: Principal,
    Query(mut q): Query<HashMap<String, String>>,
) -> Result<Json<Page<OutboxEntry>>, ApiError> {
    who.require(Permission::ReadEngineStats)?;
    let to = q.remove("to");
    let params = ListParams::paging(&q)?;
    let to = match to.as_deref() {
        Some(t) => {
            let m = Msisdn::parse(t).map_err(|e| ApiError::field("to", e.to_string()))?;
            check_line(&state, &who, m).await?;
            Some(m.to_string())
        }
        None if who.scope != Scope::All => {
            return Err(ApiError::field("to", "is required for your data scope"));
        }
        None => None,
    };
    let o = state
        .channels
        .sms_outbox
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("sms outbox (sms mode is not outbox)".into()))?;
    let (items, total) = o.page(to.as_deref(), params.limit as usize, params.offset as usize);
    Ok(Json(Page {
        items,
        total: total as i64,
        limit: params.limit,
        offset: params.offset,
    }))
}
