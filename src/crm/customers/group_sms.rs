//! `POST /customers/{id}/members/messages`: an enterprise's group SMS (集团短信, seed 004). The
//! enterprise's admin or its account manager writes one text for all active members or a
//! selection; each member's message goes through the engine's decision stage like any other
//! contact (consent, opt-outs, caps) and then the SMS outbox, so a member who opted out is not
//! messaged and the answer says so, member by member.
//!
//! A retry with the same `Idempotency-Key` decides under the same ids, so it sends nothing
//! twice and answers with what the first request stored.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::members::Member;
use crate::audit::{self, Change};
use crate::auth::{Permission, Principal};
use crate::crm::validate;
use crate::crm::CrmState;
use crate::event::Msisdn;
use crate::http::{ApiError, ApiJson};
use crate::ports::{OfferRequest, Status};
use crate::store::Sql;

/// The rule id group messages are decided and counted under.
pub const RULE_ID: &str = "enterprise-group-sms";
/// Members one request may message: a larger group goes in several requests.
const MAX_MEMBERS: usize = 1_000;
/// Ten concatenated UCS-2 parts: longer is not a text message.
const MAX_CHARS: usize = 670;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupMessage {
    /// The text every selected member receives.
    pub text: String,
    /// Only these members (ids); default all active members.
    pub member_ids: Option<Vec<String>>,
    /// Only members of this department.
    pub department: Option<String>,
    /// An offer code to count the message under (default `GROUP-NOTICE`).
    pub offer_code: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberOutcome {
    pub member_id: String,
    pub msisdn: String,
    pub recommendation_id: Option<String>,
    /// `queued` or `sent` when it goes out; `suppressed` with the reason when policy held it.
    pub status: String,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupOutcome {
    /// The request's id: the idempotency key's, or a new one.
    pub batch_id: String,
    pub members: usize,
    pub going_out: usize,
    /// Held by policy, by reason (`opt_out`, `frequency_cap`, ...).
    pub held: BTreeMap<String, usize>,
    pub items: Vec<MemberOutcome>,
}

#[utoipa::path(post, path = "/api/v1/customers/{id}/members/messages", tag = "customers",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "a retry with the same key sends nothing twice")),
    request_body = GroupMessage,
    responses((status = 200, body = GroupOutcome), (status = 400, body = crate::http::error::ErrorBody),
        (status = 403), (status = 404), (status = 503)),
    security(("bearer" = [])))]
pub async fn send(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<GroupMessage>,
) -> Result<Json<GroupOutcome>, ApiError> {
    p.require(Permission::MessageMembers)?;
    validate::text("text", &req.text, MAX_CHARS * 4)?;
    if req.text.chars().count() > MAX_CHARS {
        return Err(ApiError::field(
            "text",
            format!("at most {MAX_CHARS} characters (ten SMS parts)"),
        ));
    }
    validate::opt_text("department", req.department.as_deref(), 200)?;
    let offer_code = req.offer_code.unwrap_or_else(|| "GROUP-NOTICE".into());
    validate::text("offer_code", &offer_code, 64)?;
    let key = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::field("Idempotency-Key", "must be text"))
        })
        .transpose()?;
    if key.is_some_and(|k| k.is_empty() || k.len() > 200) {
        return Err(ApiError::field("Idempotency-Key", "1 to 200 characters"));
    }
    let mut conn = st.db.pool.acquire().await?;
    super::members::enterprise(&mut conn, &p, &id).await?;
    let members = selected(
        &mut conn,
        &id,
        req.member_ids.as_deref(),
        req.department.as_deref(),
    )
    .await?;
    if members.is_empty() {
        return Err(ApiError::field("member_ids", "selects no active member"));
    }
    let batch_id = match key {
        Some(k) => format!("group:{id}:{k}"),
        None => format!("group:{id}:{}", uuid::Uuid::new_v4()),
    };
    let now = chrono::Utc::now().fixed_offset();
    let mut reqs = Vec::with_capacity(members.len());
    for m in &members {
        let msisdn = Msisdn::parse(&m.msisdn)
            .map_err(|e| ApiError::internal(anyhow::anyhow!("stored member msisdn: {e}")))?;
        reqs.push(OfferRequest {
            msisdn,
            campaign_id: None,
            request_id: Some(batch_id.clone()),
            rule_id: RULE_ID.into(),
            offer_code: offer_code.clone(),
            message: req.text.clone(),
            channels: vec!["sms".into()],
            score: 0.5,
            valid_for_secs: 86_400,
            at: now,
            control_bp: None,
            service: false,
        });
    }
    let decided =
        st.offers.propose(reqs).await.map_err(|e| {
            ApiError::Unavailable(format!("the engine did not take the messages: {e}"))
        })?;
    // What is stored is the answer: a retry's fresh decision (held as a repeat, say) must not
    // hide that the first request's message is on its way.
    let mut items = Vec::with_capacity(members.len());
    for m in &members {
        let mine = decided.iter().find(|r| r.msisdn.to_string() == m.msisdn);
        let stored = match mine {
            Some(r) => st
                .offers
                .offer(&r.id)
                .await
                .ok()
                .flatten()
                .or(Some(r.clone())),
            None => None,
        };
        items.push(MemberOutcome {
            member_id: m.id.clone(),
            msisdn: m.msisdn.clone(),
            recommendation_id: stored.as_ref().map(|r| r.id.clone()),
            status: stored
                .as_ref()
                .map_or("suppressed", |r| r.status.as_str())
                .to_string(),
            reason: stored
                .as_ref()
                .map_or(Some("not_decided".into()), |r| r.reason.clone()),
        });
    }
    let going_out = items
        .iter()
        .filter(|i| i.status != Status::Suppressed.as_str() && i.status != Status::Failed.as_str())
        .count();
    let mut held = BTreeMap::new();
    for i in items
        .iter()
        .filter(|i| i.status == Status::Suppressed.as_str())
    {
        *held
            .entry(i.reason.clone().unwrap_or_else(|| "unknown".into()))
            .or_insert(0) += 1;
    }
    let out = GroupOutcome {
        batch_id,
        members: members.len(),
        going_out,
        held,
        items,
    };
    let change = Change {
        entity: "group_message",
        entity_id: &out.batch_id,
        action: "send",
        customer_id: Some(&id),
        before: None,
        after: Some(serde_json::json!({
            "text": req.text, "members": out.members, "going_out": out.going_out, "held": out.held,
        })),
    };
    audit::record(&mut conn, &p, change).await?;
    Ok(Json(out))
}

/// The active members a request selects, all of them known to belong to the enterprise.
async fn selected(
    conn: &mut sqlx::AnyConnection,
    enterprise: &str,
    ids: Option<&[String]>,
    department: Option<&str>,
) -> Result<Vec<Member>, ApiError> {
    if let Some(ids) = ids {
        if ids.is_empty() || ids.len() > MAX_MEMBERS {
            return Err(ApiError::field(
                "member_ids",
                format!("1 to {MAX_MEMBERS} member ids"),
            ));
        }
    }
    let mut sql = Sql::new("SELECT * FROM enterprise_members WHERE customer_id = ");
    sql.bind(enterprise)
        .push(" AND status = 'active' AND deleted_at IS NULL");
    if let Some(d) = department {
        sql.push(" AND department = ").bind(d);
    }
    sql.push(" ORDER BY name, id");
    let all: Vec<Member> = sql.query_as().fetch_all(&mut *conn).await?;
    let chosen: Vec<Member> = match ids {
        Some(ids) => {
            // An id that is not an active member of this enterprise is named, not skipped.
            if let Some(stray) = ids.iter().find(|i| !all.iter().any(|m| &m.id == *i)) {
                return Err(ApiError::field(
                    "member_ids",
                    format!("{stray} is not an active member of this enterprise"),
                ));
            }
            all.into_iter().filter(|m| ids.contains(&m.id)).collect()
        }
        None => all,
    };
    if chosen.len() > MAX_MEMBERS {
        return Err(ApiError::field(
            "member_ids",
            format!("the group has more than {MAX_MEMBERS} active members: send to a selection"),
        ));
    }
    Ok(chosen)
}
