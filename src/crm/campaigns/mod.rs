//! `/campaigns`: marketing plans (营销计划管理) with an approval workflow, launched to a segment
//! through the engine's own decision stage (`OfferBook::propose`), so campaign offers obey the
//! same caps, opt-outs, complaint holds and channels as event-driven ones.
//!
//! States: `plan -> submitted -> approved | rejected`, `rejected | submitted -> plan`,
//! `approved -> active` (by launching), `active -> completed`, and anything not finished
//! `-> cancelled`. Approval needs `ApproveCampaigns` and a different user than the author and
//! the submitter.

pub mod counts;
pub mod repo;
pub mod rule_results;
pub mod uplift;

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

pub use repo::{Campaign, CampaignPatch, NewCampaign, Results, Run, Transition};

use crate::audit;
use crate::auth::{Permission, Principal};
use crate::crm::segments::{self, require_marketing_read};
use crate::crm::validate;
use crate::crm::workflow;
use crate::crm::CrmState;
use crate::crud;
use crate::event::Msisdn;
use crate::http::{check_version, expected_version, Tagged};
use crate::http::{ApiError, ApiJson};
use crate::ports::{OfferRequest, Status};
use crate::store::{new_id, now_text, ListSpec, Page};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Lines sent to the decision stage per `propose` call.
pub const BATCH: i64 = 500;

pub const STATES: &[&str] = &[
    "plan",
    "submitted",
    "approved",
    "rejected",
    "active",
    "completed",
    "cancelled",
];
const CHANNELS: &[&str] = &["sms", "email", "portal", "agent", "app"];

pub fn router() -> OpenApiRouter<CrmState> {
    crud_routes()
        .routes(routes!(create))
        .routes(routes!(update))
        .routes(routes!(transition))
        .routes(routes!(history))
        .routes(routes!(launch))
        .routes(routes!(runs))
        .routes(routes!(results))
        .routes(routes!(counts::campaign_counts))
        .routes(routes!(rule_results::results))
}

const SPEC: ListSpec = crate::list_spec!(k; text state, segment_id, offer_code, created_by;
    sort created_at, name, start_at, budget_cents; default "k.created_at");

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// submitted | approved | rejected | plan | completed | cancelled (`active` comes from launch).
    pub to: String,
    pub note: Option<String>,
    /// Optional guard against concurrent changes (or send `If-Match`); 412 when stale.
    pub version: Option<i64>,
}

fn validate(c: &Campaign) -> Result<(), ApiError> {
    validate::text("name", &c.name, 200)?;
    validate::opt_text("description", c.description.as_deref(), 2000)?;
    validate::non_negative("budget_cents", c.budget_cents)?;
    validate::text("offer_code", &c.offer_code, 64)?;
    validate::text("message", &c.message, 1000)?;
    if c.channels.is_empty() || c.channels.len() > CHANNELS.len() {
        return Err(ApiError::field("channels", "must list 1 to 5 channels"));
    }
    for (i, ch) in c.channels.iter().enumerate() {
        validate::one_of(&format!("channels[{i}]"), ch, CHANNELS)?;
        if c.channels[..i].contains(ch) {
            return Err(ApiError::field(format!("channels[{i}]"), "is listed twice"));
        }
    }
    if !(60..=90 * 86_400).contains(&c.validity_secs) {
        return Err(ApiError::field(
            "validity_secs",
            "must be between 60 seconds and 90 days",
        ));
    }
    if c.rule_ids.len() > 50 {
        return Err(ApiError::field("rule_ids", "must list at most 50 rules"));
    }
    for (i, r) in c.rule_ids.iter().enumerate() {
        validate::text(&format!("rule_ids[{i}]"), r, 100)?;
    }
    let start = validate::time("start_at", &c.start_at)?;
    let end = validate::time("end_at", &c.end_at)?;
    if end <= start {
        return Err(ApiError::field("end_at", "must be after start_at"));
    }
    if !(0..=50).contains(&c.control_pct) {
        return Err(ApiError::field(
            "control_pct",
            "must be between 0 and 50 (percent of the audience held out)",
        ));
    }
    Ok(())
}

async fn check_segment(conn: &mut sqlx::AnyConnection, id: &str) -> Result<(), ApiError> {
    crate::store::check_ref(conn, "segments", "segment_id", Some(id))
        .await
        .map_err(ApiError::from)
}

/// Attached rules must be loaded in the engine (checked when the plan is written).
fn check_rules(st: &CrmState, c: &Campaign) -> Result<(), ApiError> {
    for (i, id) in c.rule_ids.iter().enumerate() {
        if !st.rules.has_rule(id) {
            return Err(ApiError::field(
                format!("rule_ids[{i}]"),
                format!("no rule {id} is loaded"),
            ));
        }
    }
    Ok(())
}

async fn load(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Campaign, ApiError> {
    crud::load(conn, repo::all(), id).await
}

/// Writes `after` as the next version of `before` (read at the version the caller expects),
/// with its state change in the history and the audit record as `action`, and commits.
async fn save(
    tx: crud::Tx,
    p: &Principal,
    before: &Campaign,
    after: Campaign,
    action: &str,
    note: Option<&str>,
) -> Result<Tagged<Campaign>, ApiError> {
    workflow::save(tx, p, action, before, after, |a| {
        let moved = a.state != before.state;
        moved.then(|| Transition::new(&a.id, Some(&before.state), &a.state, &p.id, note))
    })
    .await
}

crate::crud_handlers! { Campaign in CrmState, tag "campaigns", routes crud_routes;
    |p| from repo::all(), read require_marketing_read(&p),
        write p.require(Permission::ManageCampaigns);
    list "/api/v1/campaigns", SPEC, (("state" = Option<String>, Query),
        ("segment_id" = Option<String>, Query), ("offer_code" = Option<String>, Query),
        ("created_by" = Option<String>, Query));
    read "/api/v1/campaigns/{id}", (("id" = String, Path));
}

#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns", request_body = NewCampaign,
    responses((status = 201, body = Campaign), (status = 400)))]
pub async fn create(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(req): ApiJson<NewCampaign>,
) -> Result<Tagged<Campaign>, ApiError> {
    p.require(Permission::ManageCampaigns)?;
    let now = now_text();
    let c = Campaign {
        id: new_id(),
        name: req.name,
        description: req.description,
        state: "plan".into(),
        segment_id: req.segment_id,
        budget_cents: req.budget_cents.unwrap_or(0),
        offer_code: req.offer_code,
        message: req.message,
        channels: req.channels,
        validity_secs: req.validity_secs.unwrap_or(7 * 86_400),
        rule_ids: req.rule_ids.unwrap_or_default(),
        start_at: req.start_at,
        end_at: req.end_at,
        control_pct: req.control_pct.unwrap_or(0),
        created_by: p.id.clone(),
        submitted_by: None,
        decided_by: None,
        created_at: now.clone(),
        updated_at: now,
        version: 1,
    };
    validate(&c)?;
    check_rules(&st, &c)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    check_segment(&mut tx, &c.segment_id).await?;
    crud::insert_in(&mut tx, &p, &c).await?;
    workflow::append(&mut tx, &Transition::new(&c.id, None, "plan", &p.id, None)).await?;
    tx.commit().await?;
    Ok(Tagged::created(1, c))
}

#[utoipa::path(patch, path = "/api/v1/campaigns/{id}", tag = "campaigns", params(("id" = String, Path)),
    request_body = CampaignPatch,
    responses((status = 200, body = Campaign), (status = 404), (status = 409, description = "not in plan state"), (status = 412)))]
pub async fn update(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<CampaignPatch>,
) -> Result<Tagged<Campaign>, ApiError> {
    p.require(Permission::ManageCampaigns)?;
    let expected = expected_version(&headers, patch.version)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    let before: Campaign = crud::load_at(&mut tx, repo::all(), &id, expected).await?;
    if before.state != "plan" {
        return Err(ApiError::Conflict(format!(
            "a campaign in state {} cannot be edited; only plans can",
            before.state
        )));
    }
    let mut after = before.clone();
    crate::apply_patch!(patch => after;
        name,
        segment_id,
        budget_cents,
        offer_code,
        message,
        channels,
        validity_secs,
        rule_ids,
        start_at,
        end_at,
        control_pct
    );
    if let Some(d) = patch.description {
        after.description = Some(d);
    }
    validate(&after)?;
    check_rules(&st, &after)?;
    check_segment(&mut tx, &after.segment_id).await?;
    save(tx, &p, &before, after, "update", None).await
}

/// Checks a requested transition; `Ok` carries the permission it needs.
fn allowed(from: &str, to: &str) -> Result<Permission, ApiError> {
    let perm = match (from, to) {
        ("plan", "submitted") => Permission::ManageCampaigns,
        ("submitted", "approved") | ("submitted", "rejected") => Permission::ApproveCampaigns,
        ("submitted", "plan") | ("rejected", "plan") => Permission::ManageCampaigns,
        ("active", "completed") => Permission::ManageCampaigns,
        ("plan" | "submitted" | "approved" | "rejected" | "active", "cancelled") => {
            Permission::ManageCampaigns
        }
        ("approved", "active") => {
            return Err(ApiError::Conflict(
                "an approved campaign becomes active by launching it (POST .../launch)".into(),
            ))
        }
        _ => {
            return Err(ApiError::Conflict(format!(
                "a campaign cannot go from {from} to {to}"
            )))
        }
    };
    Ok(perm)
}

#[utoipa::path(post, path = "/api/v1/campaigns/{id}/transition", tag = "campaigns", params(("id" = String, Path)),
    request_body = TransitionRequest,
    responses((status = 200, body = Campaign), (status = 400), (status = 403, description = "missing permission or self-approval"),
        (status = 404), (status = 409, description = "illegal transition"), (status = 412)))]
pub async fn transition(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<TransitionRequest>,
) -> Result<Tagged<Campaign>, ApiError> {
    require_marketing_read(&p)?;
    validate::one_of("to", &req.to, STATES)?;
    validate::opt_text("note", req.note.as_deref(), 2000)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    let before = load(&mut tx, &id).await?;
    let expected = match (headers.get(axum::http::header::IF_MATCH), req.version) {
        (None, None) => before.version,
        _ => expected_version(&headers, req.version)?,
    };
    check_version(before.version, expected)?;
    let perm = allowed(&before.state, &req.to)?;
    p.require(perm)?;
    let mut after = before.clone();
    after.state = req.to.clone();
    match req.to.as_str() {
        "submitted" => after.submitted_by = Some(p.id.clone()),
        "approved" | "rejected" => {
            if p.id == before.created_by || before.submitted_by.as_deref() == Some(p.id.as_str()) {
                return Err(p.refuse(
                    perm,
                    "a campaign must be approved or rejected by someone other than its author and submitter",
                    perm.roles(),
                ));
            }
            after.decided_by = Some(p.id.clone());
        }
        "plan" => {
            after.submitted_by = None;
            after.decided_by = None;
        }
        _ => {}
    }
    save(tx, &p, &before, after, "transition", req.note.as_deref()).await
}

workflow::children_route! {
    /// The campaign's state changes, oldest first, a page at a time.
    #[utoipa::path(get, path = "/api/v1/campaigns/{id}/history", tag = "campaigns",
        params(("id" = String, Path), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
        responses((status = 200, body = Page<Transition>), (status = 400, body = crate::http::error::ErrorBody), (status = 403, body = crate::http::error::ErrorBody), (status = 404)))]
    history: Transition as Transition, of Campaign, in repo::HISTORY;
    |p| require_marketing_read(&p), repo::all()
}

workflow::children_route! {
    /// The campaign's launches, oldest first, a page at a time; `total` counts every launch.
    #[utoipa::path(get, path = "/api/v1/campaigns/{id}/runs", tag = "campaigns",
        params(("id" = String, Path), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
        responses((status = 200, body = Page<Run>), (status = 400, body = crate::http::error::ErrorBody), (status = 403, body = crate::http::error::ErrorBody), (status = 404)))]
    runs: Run as repo::RunRow, of Campaign, in repo::RUNS;
    |p| require_marketing_read(&p), repo::all()
}

#[utoipa::path(get, path = "/api/v1/campaigns/{id}/results", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = Results), (status = 404)))]
pub async fn results(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Results>, ApiError> {
    require_marketing_read(&p)?;
    let c = load(&mut *st.db.pool.acquire().await?, &id).await?;
    // One connection at a time: a small pool must not wait on itself.
    let counts = crate::pipeline::counts::campaign_totals(&st.db, &c.id)
        .await
        .map_err(ApiError::internal)?;
    let mut conn = st.db.pool.acquire().await?;
    Ok(Json(repo::results(&mut conn, &c, counts).await?))
}

fn render(template: &str, name: &str, msisdn: &str) -> String {
    template.replace("{name}", name).replace("{msisdn}", msisdn)
}

#[utoipa::path(post, path = "/api/v1/campaigns/{id}/launch", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = Run), (status = 404), (status = 409, description = "not approved/active or outside its period"),
        (status = 503, description = "the engine did not accept the offers")))]
pub async fn launch(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    p.require(Permission::ManageCampaigns)?;
    let started_at = now_text();
    let now = chrono::Utc::now();
    let mut tx = crate::store::begin_write(&st.db).await?;
    let before = load(&mut tx, &id).await?;
    if !matches!(before.state.as_str(), "approved" | "active") {
        return Err(ApiError::Conflict(format!(
            "only approved or active campaigns can be launched; this one is {}",
            before.state
        )));
    }
    let start = validate::time("start_at", &before.start_at)?;
    let end = validate::time("end_at", &before.end_at)?;
    if now < start || now > end {
        return Err(ApiError::Conflict(format!(
            "the campaign runs from {} to {}; it cannot be launched now",
            before.start_at, before.end_at
        )));
    }
    let segment = segments::get_segment(&mut tx, &before.segment_id)
        .await?
        .ok_or_else(|| ApiError::Conflict("the campaign's segment no longer exists".into()))?;
    let node = segments::criteria::parse(&segment.criteria, "criteria")?;
    let campaign = if before.state == "approved" {
        let mut active = before.clone();
        active.state = "active".into();
        save(tx, &p, &before, active, "launch", Some("launched"))
            .await?
            .body
    } else {
        tx.commit().await?;
        before
    };

    let rule_id = format!("campaign:{}", campaign.id);
    let at = now.fixed_offset();
    let mut run = Run {
        id: new_id(),
        campaign_id: campaign.id.clone(),
        actor_id: p.id.clone(),
        started_at,
        finished_at: String::new(),
        targeted: 0,
        decided: 0,
        sent: 0,
        already_decided: 0,
        suppressed: 0,
        suppressed_by_reason: BTreeMap::new(),
        batches: 0,
    };
    let mut after: Option<String> = None;
    // A failing batch stops the launch; the run is still recorded with what was decided, and
    // launching again is safe: recommendation ids are stable per campaign, line and channel.
    let mut failure: Option<ApiError> = None;
    loop {
        let (members, done) = {
            let mut conn = st.db.pool.acquire().await?;
            let members =
                segments::member_page(&mut conn, &p, &node, after.as_deref(), BATCH).await?;
            let numbers: Vec<&str> = members.iter().map(|m| m.msisdn.as_str()).collect();
            let done = repo::decided_for(&mut conn, &campaign.id, &numbers).await?;
            (members, done)
        };
        let Some(last) = members.last() else { break };
        after = Some(last.line_id.clone());
        let mut reqs = Vec::with_capacity(members.len());
        for m in &members {
            if done.contains(&m.msisdn) {
                run.already_decided += 1;
                continue;
            }
            let Ok(msisdn) = m.msisdn.parse::<Msisdn>() else {
                *run.suppressed_by_reason
                    .entry("invalid_msisdn".into())
                    .or_default() += 1;
                continue;
            };
            reqs.push(OfferRequest {
                msisdn,
                campaign_id: Some(campaign.id.clone()),
                request_id: None,
                rule_id: rule_id.clone(),
                offer_code: campaign.offer_code.clone(),
                message: render(&campaign.message, &m.customer_name, &m.msisdn),
                channels: campaign.channels.clone(),
                score: 1.0,
                valid_for_secs: campaign.validity_secs,
                at,
                control_bp: Some((campaign.control_pct.clamp(0, 100) * 100) as u32),
                service: false,
            });
        }
        run.targeted += members.len() as i64;
        run.batches += 1;
        let recs = match st.offers.propose(reqs).await {
            Ok(recs) => recs,
            Err(e) => {
                failure = Some(ApiError::Unavailable(format!(
                    "engine: {e} (batch {}; the run is recorded, launch again to resume)",
                    run.batches
                )));
                break;
            }
        };
        for r in recs {
            run.decided += 1;
            match r.status {
                Status::Suppressed | Status::Failed => {
                    run.suppressed += 1;
                    let reason = r
                        .reason
                        .clone()
                        .unwrap_or_else(|| r.status.as_str().to_string());
                    *run.suppressed_by_reason.entry(reason).or_default() += 1;
                }
                _ => run.sent += 1,
            }
        }
        if (members.len() as i64) < BATCH {
            break;
        }
    }
    run.finished_at = now_text();
    let mut tx = crate::store::begin_write(&st.db).await?;
    repo::insert_run(&mut tx, &run).await?;
    audit::commit_create(tx, &p, "campaign_run", &run.id, None, &run).await?;
    match failure {
        Some(e) => Err(e),
        None => Ok(Json(run)),
    }
}
