//! TMF681 `communicationMessage`: a message to one subscriber, sent through the engine's
//! decision stage (`OfferBook::propose`, rule `tmf681`), so contact caps, opt-outs and
//! complaint holds apply as for any other marketing contact, unless the message carries the
//! characteristic `category: service` (a bill, a reminder): then only the subscriber's
//! refusals of service messages apply.
//!
//! States: `initial` (scheduled for later) -> `inProgress` (handed to the engine, waiting in
//! its outbox) -> `completed` (a channel took it: sent or delivered) or `failed` (suppressed,
//! failed or expired, with the reason in `characteristic`); `initial -> cancelled` by PATCH.
//! DELETE only while `initial`. After the POST the state follows the engine's offer: the hub
//! notifier ([`super::hub`]) applies its later statuses ([`follow`]) and tells listeners.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{fields_of, list_bodies, visible_line, Characteristic};
use crate::audit::{self, snapshot, Change};
use crate::auth::{Permission, Principal};
use crate::crm::validate;
use crate::crm::CrmState;
use crate::event::Msisdn;
use crate::http::Tagged;
use crate::http::{ApiError, ApiJson};
use crate::ports::{OfferRequest, Status};
use crate::store::{new_id, next_seq, now_text, Arg, Sql};
use utoipa_axum::{router::OpenApiRouter, routes};

pub const BASE: &str = "/tmf-api/communicationManagement/v4/communicationMessage";
/// The rule id every TMF681 message is decided under.
pub const RULE_ID: &str = "tmf681";

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, remove))
}

super::optional_fields! {
    pub struct Receiver {
        id,
        name,
        /// The subscriber's MSISDN: required, it decides scope, caps and opt-outs.
        phone_number,
        email,
        app_user_id,
    }
}

super::optional_fields! {
    pub struct Sender { id, name, phone_number, email }
}

/// The TMF681 resource.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationMessage {
    pub id: String,
    pub href: String,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// SMS | Email | App | Portal
    pub message_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_send_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_time_complete: Option<String>,
    pub try_times: i64,
    /// initial | inProgress | completed | cancelled | failed
    pub state: String,
    pub receiver: Vec<Receiver>,
    pub sender: Sender,
    /// Includes `recommendationId` once sent and `statusReason` when it failed.
    pub characteristic: Vec<Characteristic>,
    #[serde(rename = "@type")]
    pub kind: String,
}

/// POST body: every field optional here so a missing one is answered with its name.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationMessageCreate {
    pub content: Option<String>,
    pub subject: Option<String>,
    pub message_type: Option<String>,
    pub priority: Option<String>,
    pub scheduled_send_time: Option<String>,
    pub receiver: Option<Vec<Receiver>>,
    pub sender: Option<Sender>,
    pub characteristic: Option<Vec<Characteristic>>,
}

/// PATCH body (only while `initial`). `state` may be `inProgress` (send now) or `cancelled`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationMessageUpdate {
    pub content: Option<String>,
    pub subject: Option<String>,
    pub priority: Option<String>,
    pub scheduled_send_time: Option<String>,
    pub state: Option<String>,
}

/// The TMF681 state for the engine's status of the message's offer.
pub fn state_for(status: Status) -> &'static str {
    match status {
        Status::Proposed | Status::Queued | Status::Deferred | Status::Unknown => "inProgress",
        Status::Sent | Status::Delivered | Status::Accepted | Status::Declined => "completed",
        Status::Failed | Status::Suppressed | Status::Expired => "failed",
    }
}

/// Sets the state from the offer's status (`statusReason` when it failed).
fn apply(m: &mut CommunicationMessage, status: Status, reason: Option<&str>) {
    m.state = state_for(status).into();
    m.characteristic.retain(|c| c.name != "statusReason");
    match m.state.as_str() {
        "completed" => m.send_time_complete = Some(now_text()),
        "failed" => m.characteristic.push(Characteristic {
            name: "statusReason".into(),
            value: reason.unwrap_or(status.as_str()).into(),
        }),
        _ => {}
    }
}

/// Brings a sent message up to its offer's later status (the channel's outcome). Returns the
/// message and its customer when its state changed, for the state change event.
pub async fn follow(
    db: &crate::store::Db,
    rec: &crate::ports::Recommendation,
) -> Result<Option<(CommunicationMessage, String, i64)>, sqlx::Error> {
    let Some(id) = rec.request_id.as_deref().filter(|_| rec.rule_id == RULE_ID) else {
        return Ok(None);
    };
    let row: Option<Row> =
        sqlx::query_as("SELECT body, customer_id, version FROM tmf_messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&db.pool)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let Ok(mut m) = serde_json::from_str::<CommunicationMessage>(&row.body) else {
        return Ok(None);
    };
    let ours = m
        .characteristic
        .iter()
        .any(|c| c.name == "recommendationId" && c.value == rec.id.as_str());
    // Scheduled or cancelled messages have no offer yet; a newer send owns the state.
    if !ours || matches!(m.state.as_str(), "initial" | "cancelled") {
        return Ok(None);
    }
    if m.state == state_for(rec.status) {
        return Ok(None);
    }
    apply(&mut m, rec.status, rec.reason.as_deref());
    let mut conn = db.pool.acquire().await?;
    match store_update(&mut conn, &m, row.version).await {
        Ok(()) => Ok(Some((m, row.customer_id, row.version + 1))),
        // Changed meanwhile (a PATCH): the next status change is applied over that.
        Err(_) => Ok(None),
    }
}

fn channel_of(message_type: &str) -> Option<&'static str> {
    match message_type.to_ascii_lowercase().as_str() {
        "sms" => Some("sms"),
        "email" => Some("email"),
        "app" | "push" => Some("app"),
        "portal" => Some("portal"),
        _ => None,
    }
}

fn validate_content(content: &str, subject: Option<&str>) -> Result<(), ApiError> {
    validate::text("content", content, 1000)?;
    validate::opt_text("subject", subject, 200)
}

#[derive(sqlx::FromRow)]
struct Row {
    body: String,
    customer_id: String,
    version: i64,
}

async fn load(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
) -> Result<(CommunicationMessage, String, i64), ApiError> {
    let from = super::scoped("tmf_messages", "m", p);
    let row: Option<Row> =
        super::find(conn, "m.body, m.customer_id, m.version", &from, "m", id).await?;
    let row = row.ok_or_else(|| ApiError::NotFound("communicationMessage".into()))?;
    let msg = serde_json::from_str(&row.body).map_err(ApiError::internal)?;
    Ok((msg, row.customer_id, row.version))
}

async fn store_update(
    conn: &mut sqlx::AnyConnection,
    m: &CommunicationMessage,
    version: i64,
) -> Result<(), ApiError> {
    let values: Vec<(&str, Arg)> = vec![
        ("state", m.state.as_str().into()),
        ("body", serde_json::to_string(m).unwrap_or_default().into()),
        ("updated_at", now_text().into()),
    ];
    let n = Sql::update_versioned("tmf_messages", &m.id, version, values)
        .execute(conn)
        .await?;
    if n == 0 {
        return Err(ApiError::PreconditionFailed);
    }
    Ok(())
}

/// Hands the message to the decision stage and sets its final state from the result.
async fn send(st: &CrmState, m: &mut CommunicationMessage) -> Result<(), ApiError> {
    let phone = m.receiver[0].phone_number.clone().unwrap_or_default();
    let msisdn: Msisdn = phone
        .parse()
        .map_err(|_| ApiError::field("receiver[0].phoneNumber", "must be an MSISDN"))?;
    let channel = channel_of(&m.message_type).unwrap_or("sms");
    let offer_code = m
        .characteristic
        .iter()
        .find(|c| c.name == "offerCode")
        .and_then(|c| c.value.as_str())
        .unwrap_or(RULE_ID)
        .to_string();
    // `category: service` (a bill, a reminder) is not marketing: no marketing caps or
    // opt-out; anything else is a marketing contact.
    let service = m
        .characteristic
        .iter()
        .any(|c| c.name == "category" && c.value.as_str() == Some("service"));
    let now = chrono::Utc::now();
    m.try_times += 1;
    m.send_time = Some(now_text());
    let recs = st
        .offers
        .propose(vec![OfferRequest {
            msisdn,
            campaign_id: None,
            request_id: Some(m.id.clone()),
            rule_id: RULE_ID.into(),
            offer_code,
            message: m.content.clone(),
            channels: vec![channel.to_string()],
            score: 1.0,
            valid_for_secs: 86_400,
            at: now.fixed_offset(),
            control_bp: None,
            service,
        }])
        .await
        .map_err(|e| ApiError::Unavailable(format!("engine: {e}")))?;
    m.characteristic
        .retain(|c| c.name != "recommendationId" && c.name != "statusReason");
    let delivered = recs.iter().find(|r| state_for(r.status) != "failed");
    if let Some(r) = delivered {
        apply(m, r.status, r.reason.as_deref());
        m.characteristic.push(Characteristic {
            name: "recommendationId".into(),
            value: r.id.clone().into(),
        });
    } else {
        m.state = "failed".into();
        let reason = recs
            .first()
            .map(|r| {
                m.characteristic.push(Characteristic {
                    name: "recommendationId".into(),
                    value: r.id.clone().into(),
                });
                r.reason
                    .clone()
                    .unwrap_or_else(|| r.status.as_str().to_string())
            })
            .unwrap_or_else(|| "no_decision".into());
        m.characteristic.push(Characteristic {
            name: "statusReason".into(),
            value: reason.into(),
        });
    }
    Ok(())
}

/// Sends and stores the outcome over `version`; returns the new version. When the engine
/// is unreachable the message is stored as `failed` (`statusReason` `engine_unavailable`)
/// rather than left `inProgress`, and the error is returned.
async fn send_and_store(
    st: &CrmState,
    m: &mut CommunicationMessage,
    customer_id: &str,
    version: i64,
) -> Result<i64, ApiError> {
    let before = m.state.clone();
    let sent = send(st, m).await;
    if sent.is_err() {
        m.state = "failed".into();
        m.characteristic.retain(|c| c.name != "statusReason");
        m.characteristic.push(Characteristic {
            name: "statusReason".into(),
            value: "engine_unavailable".into(),
        });
    }
    store_update(&mut *st.db.pool.acquire().await?, m, version).await?;
    if m.state != before {
        super::hub::message_state_changed(&st.db, m, customer_id, version + 1).await;
    }
    sent.map(|_| version + 1)
}

#[utoipa::path(post, path = "/tmf-api/communicationManagement/v4/communicationMessage", tag = "tmf681",
    request_body = CommunicationMessageCreate,
    responses((status = 201, body = CommunicationMessage), (status = 400, description = "names the missing or invalid field"),
        (status = 404, description = "receiver unknown or out of scope"), (status = 503)))]
pub async fn create(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(req): ApiJson<CommunicationMessageCreate>,
) -> Result<Tagged<CommunicationMessage>, ApiError> {
    p.require(Permission::SendMessages)?;
    let content = req
        .content
        .ok_or_else(|| ApiError::field("content", "required"))?;
    validate_content(&content, req.subject.as_deref())?;
    let message_type = req
        .message_type
        .ok_or_else(|| ApiError::field("messageType", "required"))?;
    if channel_of(&message_type).is_none() {
        return Err(ApiError::field(
            "messageType",
            "must be one of SMS, Email, App, Portal",
        ));
    }
    let sender = req
        .sender
        .ok_or_else(|| ApiError::field("sender", "required"))?;
    if sender.id.is_none() && sender.name.is_none() {
        return Err(ApiError::field("sender", "must have an id or a name"));
    }
    let receiver = req
        .receiver
        .ok_or_else(|| ApiError::field("receiver", "required"))?;
    if receiver.len() != 1 {
        return Err(ApiError::field(
            "receiver",
            "must hold exactly one receiver (send one message per subscriber)",
        ));
    }
    let phone = receiver[0]
        .phone_number
        .clone()
        .ok_or_else(|| ApiError::field("receiver[0].phoneNumber", "required"))?;
    if phone.parse::<Msisdn>().is_err() {
        return Err(ApiError::field(
            "receiver[0].phoneNumber",
            "must be an MSISDN",
        ));
    }
    validate::opt_text("priority", req.priority.as_deref(), 32)?;
    let scheduled = req
        .scheduled_send_time
        .as_deref()
        .map(|t| validate::time("scheduledSendTime", t))
        .transpose()?;
    let characteristic = req.characteristic.unwrap_or_default();
    if characteristic.len() > 20 {
        return Err(ApiError::field("characteristic", "at most 20 entries"));
    }
    let (msisdn, customer_id) = visible_line(&mut *st.db.pool.acquire().await?, &p, &phone)
        .await?
        .ok_or_else(|| ApiError::NotFound("receiver".into()))?;
    let id = new_id();
    let later = scheduled.is_some_and(|t| t > chrono::Utc::now());
    let mut m = CommunicationMessage {
        href: format!("{BASE}/{id}"),
        id,
        content,
        subject: req.subject,
        message_type,
        priority: req.priority,
        scheduled_send_time: req.scheduled_send_time,
        send_time: None,
        send_time_complete: None,
        try_times: 0,
        state: if later { "initial" } else { "inProgress" }.into(),
        receiver,
        sender,
        characteristic,
        kind: "CommunicationMessage".into(),
    };
    let now = now_text();
    let mut tx = crate::store::begin_write(&st.db).await?;
    Sql::insert(
        "tmf_messages",
        vec![
            ("id", m.id.as_str().into()),
            ("customer_id", customer_id.as_str().into()),
            ("msisdn", msisdn.into()),
            ("state", m.state.as_str().into()),
            ("body", serde_json::to_string(&m).unwrap_or_default().into()),
            ("created_by", p.id.as_str().into()),
            ("created_at", now.as_str().into()),
            ("updated_at", now.as_str().into()),
            ("seq", next_seq().into()),
            ("version", 1i64.into()),
        ],
    )
    .execute(&mut tx)
    .await?;
    audit::commit_create(
        tx,
        &p,
        "communication_message",
        &m.id,
        Some(&customer_id),
        &m,
    )
    .await?;
    let version = if later {
        1
    } else {
        send_and_store(&st, &mut m, &customer_id, 1).await?
    };
    Ok(Tagged::created(version, m))
}

#[utoipa::path(get, path = "/tmf-api/communicationManagement/v4/communicationMessage", tag = "tmf681",
    params(("fields" = Option<String>, Query, description = "comma-separated attributes to return"),
        ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query), ("state" = Option<String>, Query)),
    responses((status = 200, body = Vec<CommunicationMessage>, headers(("X-Total-Count" = i64), ("X-Result-Count" = i64)))))]
pub async fn list(
    State(st): State<CrmState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(HeaderMap, Json<serde_json::Value>), ApiError> {
    p.require(Permission::ReadRecommendations)?;
    let mut from = super::scoped("tmf_messages", "m", &p);
    if let Some(s) = q.get("state") {
        from.push(" AND m.state = ").bind(s.as_str());
    }
    list_bodies::<CommunicationMessage>(&st.db, from, "m", &q).await
}

#[utoipa::path(get, path = "/tmf-api/communicationManagement/v4/communicationMessage/{id}", tag = "tmf681",
    params(("id" = String, Path), ("fields" = Option<String>, Query, description = "comma-separated attributes to return")),
    responses((status = 200, body = CommunicationMessage), (status = 404, body = super::error::TmfError)))]
pub async fn read(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Tagged<serde_json::Value>, ApiError> {
    p.require(Permission::ReadRecommendations)?;
    let (m, _, version) = load(&mut *st.db.pool.acquire().await?, &p, &id).await?;
    Ok(Tagged::ok(version, fields_of(m, &q)?))
}

#[utoipa::path(patch, path = "/tmf-api/communicationManagement/v4/communicationMessage/{id}", tag = "tmf681",
    params(("id" = String, Path)), request_body = CommunicationMessageUpdate,
    responses((status = 200, body = CommunicationMessage), (status = 400), (status = 404),
        (status = 409, description = "no longer initial"), (status = 412)))]
pub async fn update(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<CommunicationMessageUpdate>,
) -> Result<Tagged<CommunicationMessage>, ApiError> {
    p.require(Permission::SendMessages)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    let (before, customer_id, version) = load(&mut tx, &p, &id).await?;
    crate::crud::check_if_match(&headers, version)?;
    if before.state != "initial" {
        return Err(ApiError::Conflict(format!(
            "message is {}; only initial (scheduled) messages can be changed",
            before.state
        )));
    }
    let mut after = before.clone();
    if let Some(c) = patch.content {
        after.content = c;
    }
    if let Some(s) = patch.subject {
        after.subject = Some(s);
    }
    if let Some(pr) = patch.priority {
        validate::text("priority", &pr, 32)?;
        after.priority = Some(pr);
    }
    if let Some(t) = patch.scheduled_send_time {
        validate::time("scheduledSendTime", &t)?;
        after.scheduled_send_time = Some(t);
    }
    validate_content(&after.content, after.subject.as_deref())?;
    let send_now = match patch.state.as_deref() {
        None | Some("initial") => false,
        Some("inProgress") => true,
        Some("cancelled") => {
            after.state = "cancelled".into();
            false
        }
        Some(_) => {
            return Err(ApiError::field(
                "state",
                "may only be set to inProgress (send now) or cancelled",
            ))
        }
    };
    if send_now {
        after.state = "inProgress".into();
    }
    store_update(&mut tx, &after, version).await?;
    audit::record(
        &mut tx,
        &p,
        Change {
            entity: "communication_message",
            entity_id: &id,
            action: "update",
            customer_id: Some(&customer_id),
            before: snapshot(&before),
            after: snapshot(&after),
        },
    )
    .await?;
    tx.commit().await?;
    let mut version = version + 1;
    if after.state != before.state {
        super::hub::message_state_changed(&st.db, &after, &customer_id, version).await;
    }
    if send_now {
        version = send_and_store(&st, &mut after, &customer_id, version).await?;
    }
    Ok(Tagged::ok(version, after))
}

#[utoipa::path(delete, path = "/tmf-api/communicationManagement/v4/communicationMessage/{id}", tag = "tmf681",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404), (status = 409, description = "no longer initial")))]
pub async fn remove(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    p.require(Permission::SendMessages)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    let (before, customer_id, _) = load(&mut tx, &p, &id).await?;
    if before.state != "initial" {
        return Err(ApiError::Conflict(format!(
            "message is {}; only initial (scheduled) messages can be deleted",
            before.state
        )));
    }
    let mut sql = Sql::new("DELETE FROM tmf_messages WHERE id = ");
    sql.bind(id.as_str()).push(" AND state = 'initial'");
    sql.execute(&mut tx).await?;
    audit::commit_delete(
        tx,
        &p,
        "communication_message",
        &id,
        Some(&customer_id),
        &before,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
