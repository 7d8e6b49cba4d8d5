//! Interaction history (TMF683 PartyInteraction-like): `POST /interactions` records visits,
//! calls and complaints; `GET /customers/{id}/interactions` is one timeline, newest first,
//! merging the engine's offers for the customer's lines (with status), offer responses,
//! recorded interactions, service requests, opportunity follow-ups and retention activities.
//!
//! Paging: every source is read newest first up to `offset + limit` rows and the merge is cut
//! to the page. `total` counts all database rows; offers count up to the engine's per-line
//! window ([`OFFERS_PER_LINE`]). `?source=` keeps one source (filtered in SQL).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::auth::{Permission, Principal, Role};
use crate::crm::scope::require_customer;
use crate::crm::validate;
use crate::crm::workflow;
use crate::crm::CrmState;
use crate::event::Msisdn;
use crate::http::{ApiError, ApiJson};
use crate::store::{new_id, now_text, Page, Sql, MAX_LIMIT};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(timeline))
}

/// Offers fetched per line for the timeline, and lines asked at most.
pub const OFFERS_PER_LINE: usize = 100;
pub const OFFER_LINES: usize = 20;

// Interactions are written once: the PATCH body the field list also gives goes unused.
crate::record! {
    /// A recorded visit, call or complaint.
    #[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
    pub struct Interaction, new NewInteraction, patch InteractionPatch {
        id: String,
        customer_id: String { new },
        /// visit | call | complaint | email | sms | chat | note
        kind: String { new },
        /// inbound | outbound
        direction: String {
            /// Default inbound.
            new opt
        },
        channel: Option<String> { new },
        subject: String { new },
        note: Option<String> { new },
        actor_id: String,
        at: String {
            /// When it happened (RFC 3339); default now.
            new opt
        },
    }
}

/// One entry of the timeline.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TimelineItem {
    /// RFC 3339 UTC.
    pub at: String,
    /// recommendation | offer_response | interaction | service_request |
    /// opportunity_follow_up | retention_activity
    pub source: String,
    pub id: String,
    /// The kind within the source (`visit`, `call`, `accepted`, `cancellation`, ...).
    pub kind: String,
    pub summary: String,
    pub status: Option<String>,
    pub channel: Option<String>,
    pub actor_id: Option<String>,
    pub msisdn: Option<String>,
    /// The record it belongs to (recommendation, opportunity, retention case).
    pub ref_id: Option<String>,
}

workflow::logged! { Interaction in "interactions" as i, kind "interaction", owner customer_id;
id, customer_id, kind, direction, channel, subject, note, actor_id, at }

pub const KINDS: &[&str] = &["visit", "call", "complaint", "email", "sms", "chat", "note"];

/// Records an interaction with a customer in scope (agents, account managers, leads).
#[utoipa::path(post, path = "/api/v1/interactions", tag = "interactions", request_body = NewInteraction,
    responses((status = 201, body = Interaction), (status = 400), (status = 403, description = "needs `raise_service_requests` as operator staff: an enterprise admin's 403 names the roles that may", body = crate::http::error::ErrorBody)))]
pub async fn create(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(req): ApiJson<NewInteraction>,
) -> Result<(axum::http::StatusCode, Json<Interaction>), ApiError> {
    p.require(Permission::RaiseServiceRequests)?;
    if p.role == Role::EnterpriseAdmin {
        return Err(p.refuse(
            Permission::RaiseServiceRequests,
            "interactions are recorded by operator staff",
            Permission::RaiseServiceRequests
                .roles()
                .into_iter()
                .filter(|r| *r != Role::EnterpriseAdmin),
        ));
    }
    validate::one_of("kind", &req.kind, KINDS)?;
    let direction = req.direction.unwrap_or_else(|| "inbound".into());
    validate::one_of("direction", &direction, &["inbound", "outbound"])?;
    validate::opt_text("channel", req.channel.as_deref(), 32)?;
    validate::text("subject", &req.subject, 200)?;
    validate::opt_text("note", req.note.as_deref(), 4000)?;
    let at = match req.at {
        Some(a) => validate::utc_text("at", &a)?,
        None => now_text(),
    };
    let i = Interaction {
        id: new_id(),
        customer_id: req.customer_id,
        kind: req.kind,
        direction,
        channel: req.channel,
        subject: req.subject,
        note: req.note,
        actor_id: p.id.clone(),
        at,
    };
    let mut tx = crate::store::begin_write(&st.db).await?;
    require_customer(&mut tx, &p, &i.customer_id)
        .await
        .map_err(|_| ApiError::field("customer_id", "no such customer"))?;
    workflow::commit_as(tx, &p, "create", &i).await?;
    if i.kind == "complaint" {
        // A complaint is a churn warning: the account manager gets a retention case.
        if let Err(e) =
            crate::crm::retention::open_for_complaint(&st, &i.customer_id, &i.subject).await
        {
            tracing::warn!(error = %e, "could not open a retention case for a complaint");
        }
    }
    emit_touchpoint(&st, &i).await;
    Ok((axum::http::StatusCode::CREATED, Json(i)))
}

/// The database sources as one `UNION ALL`, every branch bound to the customer id.
fn union(customer_id: &str) -> Sql {
    let mut sql = Sql::new(
        "SELECT i.at AS at, 'interaction' AS source, i.id AS id, i.kind AS kind, \
         i.subject AS summary, CAST(NULL AS TEXT) AS status, i.channel AS channel, \
         i.actor_id AS actor_id, CAST(NULL AS TEXT) AS msisdn, CAST(NULL AS TEXT) AS ref_id \
         FROM interactions i WHERE i.customer_id = ",
    );
    sql.bind(customer_id);
    sql.push(
        " UNION ALL SELECT r.responded_at, 'offer_response', r.id, r.outcome, \
         CASE WHEN r.reason IS NULL THEN r.outcome ELSE r.outcome || ': ' || r.reason END, \
         r.outcome, r.channel, r.actor, r.msisdn, r.recommendation_id \
         FROM offer_responses r WHERE r.msisdn IN (SELECT l.msisdn FROM lines l WHERE l.customer_id = ",
    )
    .bind(customer_id)
    .push(")");
    sql.push(
        " UNION ALL SELECT s.created_at, 'service_request', s.id, s.request_type, s.title, \
         s.status, CAST(NULL AS TEXT), s.requester_id, CAST(NULL AS TEXT), CAST(NULL AS TEXT) \
         FROM service_requests s WHERE s.customer_id = ",
    )
    .bind(customer_id);
    sql.push(
        " UNION ALL SELECT f.at, 'opportunity_follow_up', f.id, f.kind, f.note, \
         CAST(NULL AS TEXT), CAST(NULL AS TEXT), f.actor_id, CAST(NULL AS TEXT), f.opportunity_id \
         FROM opportunity_follow_ups f WHERE f.customer_id = ",
    )
    .bind(customer_id);
    sql.push(
        " UNION ALL SELECT x.at, 'retention_activity', x.id, x.kind, x.note, \
         CAST(NULL AS TEXT), CAST(NULL AS TEXT), x.actor_id, CAST(NULL AS TEXT), x.case_id \
         FROM retention_activities x WHERE x.customer_id = ",
    )
    .bind(customer_id);
    sql
}

/// Every timeline source; `recommendation` comes from the engine, the rest from the database.
pub const SOURCES: &[&str] = &[
    "recommendation",
    "offer_response",
    "interaction",
    "service_request",
    "opportunity_follow_up",
    "retention_activity",
];

/// The newest `n` timeline items of a customer (database sources only, or only `source`)
/// and their total.
pub async fn recent(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
    source: Option<&str>,
    n: i64,
) -> Result<(Vec<TimelineItem>, i64), sqlx::Error> {
    let mut u = union(customer_id);
    u.text = format!("SELECT * FROM ({}) s WHERE 1=1", u.text);
    if let Some(src) = source {
        u.push(" AND s.source = ").bind(src);
    }
    let mut count = Sql::new("SELECT COUNT(*) FROM (");
    count.push(&u.text).push(") t");
    count.args = u.args.clone();
    let (total,): (i64,) = count.query_as().fetch_one(&mut *conn).await?;
    let mut list = Sql::new("SELECT t.at, t.source, t.id, t.kind, t.summary, t.status, t.channel, t.actor_id, t.msisdn, t.ref_id FROM (");
    list.push(&u.text).push(") t ORDER BY t.at DESC, t.id");
    list.args = u.args;
    list.push(" LIMIT ").bind(n);
    let items = list.query_as().fetch_all(conn).await?;
    Ok((items, total))
}

fn int_param(q: &HashMap<String, String>, name: &str, default: i64) -> Result<i64, ApiError> {
    q.get(name).map_or(Ok(default), |v| {
        v.parse()
            .map_err(|_| ApiError::field(name, "must be an integer"))
    })
}

#[utoipa::path(get, path = "/api/v1/customers/{id}/interactions", tag = "interactions",
    params(("id" = String, Path), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query),
        ("source" = Option<String>, Query, description = "only this source")),
    responses((status = 200, body = Page<TimelineItem>), (status = 404)))]
pub async fn timeline(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<TimelineItem>>, ApiError> {
    p.require(Permission::ReadCustomers)?;
    if let Some(k) = q
        .keys()
        .find(|k| !matches!(k.as_str(), "limit" | "offset" | "source"))
    {
        return Err(ApiError::field(k.as_str(), "is not a filter of this list"));
    }
    let limit = int_param(&q, "limit", 50)?;
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let offset = int_param(&q, "offset", 0)?;
    if !(0..=10_000).contains(&offset) {
        return Err(ApiError::field("offset", "must be between 0 and 10000"));
    }
    let source = q.get("source").cloned();
    if let Some(s) = &source {
        validate::one_of("source", s, SOURCES)?;
    }
    let want_offers = source.as_deref().is_none_or(|s| s == "recommendation");
    let want_db = source.as_deref() != Some("recommendation");
    let mut conn = st.db.pool.acquire().await?;
    require_customer(&mut conn, &p, &id).await?;
    let want = offset + limit;
    let (mut items, mut total) = if want_db {
        recent(&mut conn, &id, source.as_deref(), want).await?
    } else {
        (Vec::new(), 0)
    };
    let msisdns = if want_offers {
        crate::crm::customers::repo::msisdns(&st.db.pool, &id).await?
    } else {
        Vec::new()
    };
    drop(conn);
    for m in msisdns
        .iter()
        .filter_map(|m| Msisdn::parse(m).ok())
        .take(OFFER_LINES)
    {
        let recs = st
            .offers
            .offers_for(m, OFFERS_PER_LINE.min(want as usize))
            .await
            .map_err(|e| ApiError::Unavailable(format!("engine offers: {e}")))?;
        total += recs.len() as i64;
        items.extend(recs.into_iter().map(|r| TimelineItem {
            at: crate::store::ts_text(r.decided_at.with_timezone(&chrono::Utc)),
            source: "recommendation".into(),
            id: r.id.clone(),
            kind: r.offer_code.clone(),
            summary: r.message.clone(),
            status: Some(r.status.as_str().into()),
            channel: Some(r.channel.clone()),
            actor_id: None,
            msisdn: Some(r.msisdn.to_string()),
            ref_id: Some(r.rule_id.clone()),
        }));
    }
    items.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.id.cmp(&b.id)));
    let page: Vec<TimelineItem> = items
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    Ok(Json(Page {
        items: page,
        total,
        limit,
        offset,
    }))
}

/// Visits and complaints recorded by staff are events for the engine too: a visit is a
/// touchpoint (the agent gets next-best offers), a complaint holds back sales offers and
/// triggers care. The record is committed already, so an engine failure is only logged.
async fn emit_touchpoint(st: &CrmState, i: &Interaction) {
    let (ty, attrs) = match i.kind.as_str() {
        "visit" => (
            "visit",
            serde_json::json!({"channel": i.channel.clone().unwrap_or_else(|| "store".into()), "agent_id": i.actor_id}),
        ),
        "complaint" => (
            "complaint",
            serde_json::json!({"category": i.subject, "severity": "medium"}),
        ),
        _ => return,
    };
    let msisdns = match crate::crm::customers::repo::msisdns(&st.db.pool, &i.customer_id).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "could not load lines for an interaction event");
            return;
        }
    };
    let ts = chrono::DateTime::parse_from_rfc3339(&i.at)
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|_| i.at.clone());
    let evs: Vec<crate::event::Event> = msisdns
        .iter()
        .filter_map(|m| {
            let v = serde_json::json!({"id": format!("crm-{}-{m}", i.id), "type": ty, "msisdn": m, "ts": ts, "attrs": attrs});
            crate::event::decode_value(&v).ok()
        })
        .collect();
    if let Err(e) = st.events.submit(evs).await {
        tracing::warn!(error = %e, "interaction events not delivered to the engine");
    }
}
