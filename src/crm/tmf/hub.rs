//! TMF `/hub` listeners for TMF680 and TMF681 and the notifier that calls them back.
//!
//! `POST .../hub {callback, query}` registers a listener (201 `EventSubscription`),
//! `DELETE .../hub/{id}` removes it (204). Events:
//! - TMF680 `QueryProductRecommendationCreateEvent`: a query answered through the API, and
//!   every offer the engine makes on its own (read from its store by `seq`);
//! - TMF681 `CommunicationMessageStateChangeEvent`: each change of a message's `state`, from
//!   the API or from its offer's later status (sent, delivered, failed).
//!
//! Events are queued in `tmf_hub_deliveries` (one row per event and listener) and posted by a
//! background task with retries and backoff, so neither the engine nor a request ever waits
//! on a listener. A listener only hears about customers its principal could see when it
//! registered, and `query` narrows further (`eventType=X&event.communicationMessage.state=failed`).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::communication::CommunicationMessage;
use super::recommendation::QueryProductRecommendation;
use crate::auth::{Permission, Principal};
use crate::crm::scope::push_customer_scope;
use crate::crm::CrmState;
use crate::http::{ApiError, ApiJson};
use crate::ports::{Recommendation, Status};
use crate::store::{new_id, now_text, Db, Sql};
use utoipa_axum::{router::OpenApiRouter, routes};

pub const RECOMMENDATION_API: &str = "recommendationManagement";
pub const COMMUNICATION_API: &str = "communicationManagement";
pub const RECOMMENDATION_CREATE: &str = "QueryProductRecommendationCreateEvent";
pub const MESSAGE_STATE_CHANGE: &str = "CommunicationMessageStateChangeEvent";

/// How often the notifier looks for new offers and due deliveries.
const POLL: Duration = Duration::from_millis(500);
/// Offers are read only once this old: the engine's batch commits can land slightly out of
/// `seq` order, and reading up to "now" would skip a row committed a moment later.
const SETTLE_MICROS: i64 = 1_500_000;
/// Attempts per event before it is given up: with the backoff below, about half an hour.
const MAX_ATTEMPTS: i64 = 12;
/// A claimed delivery that never finished (a crashed instance) is tried again after this.
const CLAIM_MILLIS: i64 = 30_000;
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Offers read per poll: the notifier falls behind a faster engine rather than slow it down.
const SCAN_BATCH: i64 = 500;

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new()
        .routes(routes!(register_recommendation_listener))
        .routes(routes!(unregister_recommendation_listener))
        .routes(routes!(register_communication_listener))
        .routes(routes!(unregister_communication_listener))
}

/// TMF `EventSubscriptionInput`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EventSubscriptionInput {
    /// An http(s) URL the events are POSTed to.
    pub callback: Option<String>,
    /// `name=value` pairs joined by `&` that an event must match (`eventType=...`,
    /// `event.communicationMessage.state=failed`); commas separate alternatives.
    pub query: Option<String>,
}

/// TMF `EventSubscription`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventSubscription {
    pub id: String,
    pub callback: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

fn check_callback(url: &str) -> Result<(), ApiError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| ApiError::field("callback", "must be an absolute http(s) URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ApiError::field("callback", "must be an http or https URL"));
    }
    if url.len() > 2000 {
        return Err(ApiError::field("callback", "at most 2000 characters"));
    }
    Ok(())
}

/// `query` as `(path, alternatives)`.
fn parse_query(q: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    q.trim()
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.trim().is_empty())
        .map(|part| {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not name=value"))?;
            let k = k.trim();
            if k.is_empty() {
                return Err(format!("`{part}` has no name"));
            }
            let alts = v.split(',').map(|s| s.trim().to_string()).collect();
            Ok((k.to_string(), alts))
        })
        .collect()
}

/// Whether an event envelope matches a listener's `query`: every name (a dotted path into
/// the envelope) has one of its values.
pub fn matches(query: Option<&str>, envelope: &Value) -> bool {
    let Some(q) = query.filter(|q| !q.trim().is_empty()) else {
        return true;
    };
    let Ok(terms) = parse_query(q) else {
        return false;
    };
    terms.iter().all(|(path, alts)| {
        let mut v = envelope;
        for key in path.split('.') {
            match v.get(key) {
                Some(next) => v = next,
                None => return false,
            }
        }
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        alts.contains(&text)
    })
}

async fn register(
    st: &CrmState,
    p: &Principal,
    api: &str,
    req: EventSubscriptionInput,
) -> Result<(StatusCode, Json<EventSubscription>), ApiError> {
    p.require(Permission::ReadRecommendations)?;
    let callback = req
        .callback
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::field("callback", "required"))?;
    check_callback(&callback)?;
    if let Some(q) = &req.query {
        crate::crm::validate::opt_text("query", Some(q.as_str()), 1000)?;
        parse_query(q).map_err(|e| ApiError::field("query", e))?;
    }
    let sub = EventSubscription {
        id: new_id(),
        callback,
        query: req.query.filter(|q| !q.trim().is_empty()),
    };
    let principal = serde_json::to_string(p).map_err(ApiError::internal)?;
    let query_arg = match &sub.query {
        Some(q) => q.as_str().into(),
        None => crate::store::Arg::NullText,
    };
    Sql::insert(
        "tmf_hub_subscriptions",
        vec![
            ("id", sub.id.as_str().into()),
            ("api", api.into()),
            ("callback", sub.callback.as_str().into()),
            ("query", query_arg),
            ("principal", principal.into()),
            ("created_by", p.id.as_str().into()),
            ("created_at", now_text().into()),
        ],
    )
    .execute(&mut *st.db.pool.acquire().await?)
    .await?;
    Ok((StatusCode::CREATED, Json(sub)))
}

/// Only the principal that registered a listener, or one that sees everything, removes it;
/// to anyone else it does not exist.
async fn unregister(
    st: &CrmState,
    p: &Principal,
    api: &str,
    id: &str,
) -> Result<StatusCode, ApiError> {
    p.require(Permission::ReadRecommendations)?;
    let mut sql = Sql::new("DELETE FROM tmf_hub_subscriptions WHERE id = ");
    sql.bind(id).push(" AND api = ").bind(api);
    if !matches!(p.scope, crate::access::Scope::All) {
        sql.push(" AND created_by = ").bind(p.id.as_str());
    }
    let n = sql.execute(&mut *st.db.pool.acquire().await?).await?;
    if n == 0 {
        return Err(ApiError::NotFound("hub subscription".into()));
    }
    sqlx::query("DELETE FROM tmf_hub_deliveries WHERE subscription_id = $1")
        .bind(id)
        .execute(&st.db.pool)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/tmf-api/recommendationManagement/v4/hub", tag = "tmf680",
    request_body = EventSubscriptionInput,
    responses((status = 201, body = EventSubscription), (status = 400, body = super::error::TmfError),
        (status = 401, body = super::error::TmfError), (status = 403, body = super::error::TmfError)))]
pub async fn register_recommendation_listener(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(req): ApiJson<EventSubscriptionInput>,
) -> Result<(StatusCode, Json<EventSubscription>), ApiError> {
    register(&st, &p, RECOMMENDATION_API, req).await
}

#[utoipa::path(delete, path = "/tmf-api/recommendationManagement/v4/hub/{id}", tag = "tmf680",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::TmfError)))]
pub async fn unregister_recommendation_listener(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    unregister(&st, &p, RECOMMENDATION_API, &id).await
}

#[utoipa::path(post, path = "/tmf-api/communicationManagement/v4/hub", tag = "tmf681",
    request_body = EventSubscriptionInput,
    responses((status = 201, body = EventSubscription), (status = 400, body = super::error::TmfError),
        (status = 401, body = super::error::TmfError), (status = 403, body = super::error::TmfError)))]
pub async fn register_communication_listener(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(req): ApiJson<EventSubscriptionInput>,
) -> Result<(StatusCode, Json<EventSubscription>), ApiError> {
    register(&st, &p, COMMUNICATION_API, req).await
}

#[utoipa::path(delete, path = "/tmf-api/communicationManagement/v4/hub/{id}", tag = "tmf681",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::TmfError)))]
pub async fn unregister_communication_listener(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    unregister(&st, &p, COMMUNICATION_API, &id).await
}

/// The TMF event envelope.
pub fn envelope(event_type: &str, resource_name: &str, resource: Value) -> Value {
    json!({
        "eventId": new_id(),
        "eventTime": now_text(),
        "eventType": event_type,
        "event": { resource_name: resource },
    })
}

#[derive(sqlx::FromRow)]
struct Subscription {
    id: String,
    query: Option<String>,
    principal: String,
}

async fn subscriptions(db: &Db, api: &str) -> Result<Vec<Subscription>, sqlx::Error> {
    sqlx::query_as("SELECT id, query, principal FROM tmf_hub_subscriptions WHERE api = $1")
        .bind(api)
        .fetch_all(&db.pool)
        .await
}

async fn sees_customer(db: &Db, principal: &str, customer_id: &str) -> Result<bool, sqlx::Error> {
    let Ok(p) = serde_json::from_str::<Principal>(principal) else {
        return Ok(false);
    };
    let mut sql = Sql::new("SELECT COUNT(*) FROM customers c WHERE c.id = ");
    sql.bind(customer_id);
    push_customer_scope(&mut sql, &p, "c");
    let (n,): (i64,) = sql.query_as().fetch_one(&db.pool).await?;
    Ok(n > 0)
}

/// Queues `envelope` for every listener of `api` that sees `customer_id` and whose query it
/// matches. `event_key` names the event: the same key is queued once per listener.
pub async fn publish(
    db: &Db,
    api: &str,
    customer_id: &str,
    event_key: &str,
    envelope: &Value,
) -> Result<usize, sqlx::Error> {
    let mut queued = 0;
    let body = envelope.to_string();
    let now = chrono::Utc::now().timestamp_millis();
    for sub in subscriptions(db, api).await? {
        if !matches(sub.query.as_deref(), envelope)
            || !sees_customer(db, &sub.principal, customer_id).await?
        {
            continue;
        }
        queued += sqlx::query(
            "INSERT INTO tmf_hub_deliveries (id, subscription_id, event_key, body, attempts, \
             next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 0, $5, $6) \
             ON CONFLICT (subscription_id, event_key) DO NOTHING",
        )
        .bind(new_id())
        .bind(&sub.id)
        .bind(event_key)
        .bind(&body)
        .bind(now)
        .bind(now_text())
        .execute(&db.pool)
        .await?
        .rows_affected() as usize;
    }
    Ok(queued)
}

/// A query answered through the API. Failing to queue is logged, never the caller's error:
/// the resource exists either way.
pub async fn recommendation_created(db: &Db, r: &QueryProductRecommendation, customer_id: &str) {
    let Ok(resource) = serde_json::to_value(r) else {
        return;
    };
    let env = envelope(
        RECOMMENDATION_CREATE,
        "queryProductRecommendation",
        resource,
    );
    let key = format!("create:{}", r.id);
    if let Err(e) = publish(db, RECOMMENDATION_API, customer_id, &key, &env).await {
        tracing::warn!(error = %e, id = %r.id, "TMF680 create event not queued");
    }
}

/// A message's state changed (`version` is the stored version after the change, so each
/// change is its own event).
pub async fn message_state_changed(
    db: &Db,
    m: &CommunicationMessage,
    customer_id: &str,
    version: i64,
) {
    let Ok(resource) = serde_json::to_value(m) else {
        return;
    };
    let env = envelope(MESSAGE_STATE_CHANGE, "communicationMessage", resource);
    let key = format!("state:{}:{}", m.id, version);
    if let Err(e) = publish(db, COMMUNICATION_API, customer_id, &key, &env).await {
        tracing::warn!(error = %e, id = %m.id, "TMF681 state change event not queued");
    }
}

/// Starts the notifier: reads the engine's offers after the stored cursor, queues their
/// events, and posts due deliveries. Runs until `stop`.
pub fn spawn(st: impl Into<CrmState>, stop: tokio::sync::watch::Receiver<bool>) {
    let st: CrmState = st.into();
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(CALLBACK_TIMEOUT)
            .build()
            .unwrap_or_default();
        let mut every = crate::periodic::Every::new(POLL, stop);
        let mut pruned = std::time::Instant::now();
        while every.tick().await {
            if let Err(e) = scan_offers(&st.db).await {
                tracing::warn!(error = %e, "TMF hub: reading new offers failed");
            }
            if let Err(e) = deliver_due(&st.db, &http).await {
                tracing::warn!(error = %e, "TMF hub: delivering events failed");
            }
            if pruned.elapsed() > Duration::from_secs(3600) {
                pruned = std::time::Instant::now();
                let cutoff = crate::store::ts_text(chrono::Utc::now() - chrono::Duration::days(7));
                let _ = sqlx::query(
                    "DELETE FROM tmf_hub_deliveries WHERE delivered_at IS NOT NULL AND delivered_at < $1",
                )
                .bind(cutoff)
                .execute(&st.db.pool)
                .await;
            }
        }
    });
}

const CURSOR: &str = "recommendations";

/// New and changed offers since the cursor (a status change moves an offer's `seq`): new
/// ones become TMF680 create events, TMF681 messages' ones move the message's state.
async fn scan_offers(db: &Db) -> Result<(), sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT seq FROM tmf_hub_cursor WHERE name = $1")
        .bind(CURSOR)
        .fetch_optional(&db.pool)
        .await?;
    let Some((after,)) = row else {
        // First start: listeners hear about what happens from now on, not the history.
        let (max,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM recommendations")
            .fetch_one(&db.pool)
            .await?;
        sqlx::query(
            "INSERT INTO tmf_hub_cursor (name, seq) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(CURSOR)
        .bind(max.unwrap_or(0))
        .execute(&db.pool)
        .await?;
        return Ok(());
    };
    let until = chrono::Utc::now().timestamp_micros() - SETTLE_MICROS;
    if until <= after {
        return Ok(());
    }
    let (listeners,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM tmf_hub_subscriptions WHERE api = $1")
            .bind(RECOMMENDATION_API)
            .fetch_one(&db.pool)
            .await?;
    // Without TMF680 listeners only messages' offers matter: the rest is not even read.
    let mut sql = Sql::new("SELECT body, seq FROM recommendations WHERE seq > ");
    sql.bind(after).push(" AND seq <= ").bind(until);
    if listeners == 0 {
        sql.push(" AND rule_id = ")
            .bind(super::communication::RULE_ID);
    }
    sql.push(&format!(" ORDER BY seq LIMIT {SCAN_BATCH}"));
    let rows: Vec<(String, i64)> = sql.query_as().fetch_all(&db.pool).await?;
    for (body, _) in &rows {
        let Ok(rec) = serde_json::from_str::<Recommendation>(body) else {
            continue;
        };
        if rec.rule_id == super::communication::RULE_ID {
            // Messages follow their offer whether or not anyone listens.
            if let Some((m, customer_id, version)) = super::communication::follow(db, &rec).await? {
                message_state_changed(db, &m, &customer_id, version).await;
            }
        } else if listeners > 0 {
            offer_created(db, &rec).await?;
        }
    }
    // A full batch may have more behind it; a short one read everything up to `until`.
    let upto = match rows.last() {
        Some((_, seq)) if rows.len() as i64 == SCAN_BATCH => *seq,
        _ => until,
    };
    // Only moves forward: two instances scanning the same rows queue each event once anyway
    // (the event key is unique per listener).
    sqlx::query("UPDATE tmf_hub_cursor SET seq = $1 WHERE name = $2 AND seq < $1")
        .bind(upto)
        .bind(CURSOR)
        .execute(&db.pool)
        .await?;
    Ok(())
}

async fn offer_created(db: &Db, rec: &Recommendation) -> Result<(), sqlx::Error> {
    // Decisions that never became an offer (opt-outs, caps) and messages are nothing to
    // announce as recommendations.
    if matches!(
        rec.status,
        Status::Suppressed | Status::Failed | Status::Expired
    ) || rec.service
        || super::recommendation::NOT_OFFERS.contains(&rec.rule_id.as_str())
    {
        return Ok(());
    }
    let row: Option<(String,)> =
        sqlx::query_as("SELECT customer_id FROM lines WHERE msisdn = $1 AND deleted_at IS NULL")
            .bind(rec.msisdn.to_string())
            .fetch_optional(&db.pool)
            .await?;
    // A line the CRM does not know belongs to no customer anyone is scoped to.
    let Some((customer_id,)) = row else {
        return Ok(());
    };
    let mut conn = db.pool.acquire().await?;
    let resource = super::recommendation::from_engine(&mut conn, rec, &customer_id).await?;
    drop(conn);
    let Ok(value) = serde_json::to_value(&resource) else {
        return Ok(());
    };
    let env = envelope(RECOMMENDATION_CREATE, "queryProductRecommendation", value);
    // Keyed by the offer: its later status changes pass by here again and queue nothing.
    publish(
        db,
        RECOMMENDATION_API,
        &customer_id,
        &format!("create:{}", rec.id),
        &env,
    )
    .await?;
    Ok(())
}

/// Delay before attempt `n + 1` (n >= 1): 1 s, 2 s, 4 s, ... at most an hour.
fn backoff_millis(attempts: i64) -> i64 {
    1000i64
        .saturating_mul(1 << attempts.clamp(1, 12).saturating_sub(1))
        .min(3_600_000)
}

#[derive(sqlx::FromRow)]
struct Due {
    id: String,
    body: String,
    attempts: i64,
    next_attempt_at: i64,
    callback: String,
}

async fn deliver_due(db: &Db, http: &reqwest::Client) -> Result<(), sqlx::Error> {
    let now = chrono::Utc::now().timestamp_millis();
    let due: Vec<Due> = sqlx::query_as(
        "SELECT d.id, d.body, d.attempts, d.next_attempt_at, s.callback FROM tmf_hub_deliveries d \
         JOIN tmf_hub_subscriptions s ON s.id = d.subscription_id \
         WHERE d.delivered_at IS NULL AND d.next_attempt_at <= $1 ORDER BY d.next_attempt_at LIMIT 100",
    )
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    use futures::StreamExt;
    futures::stream::iter(due)
        .for_each_concurrent(8, |d| async move {
            if let Err(e) = deliver(db, http, d, now).await {
                tracing::warn!(error = %e, "TMF hub: recording a delivery failed");
            }
        })
        .await;
    Ok(())
}

async fn deliver(db: &Db, http: &reqwest::Client, d: Due, now: i64) -> Result<(), sqlx::Error> {
    // Claimed by moving the due time: another instance that read the same row loses the race.
    let claimed = sqlx::query(
        "UPDATE tmf_hub_deliveries SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at = $3 \
         AND delivered_at IS NULL",
    )
    .bind(now + CLAIM_MILLIS)
    .bind(&d.id)
    .bind(d.next_attempt_at)
    .execute(&db.pool)
    .await?
    .rows_affected();
    if claimed == 0 {
        return Ok(());
    }
    let outcome = http
        .post(&d.callback)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(d.body)
        .send()
        .await;
    let error = match outcome {
        Ok(r) if r.status().is_success() => None,
        Ok(r) => Some(format!("callback answered {}", r.status())),
        Err(e) => Some(format!("callback unreachable: {e}")),
    };
    let attempts = d.attempts + 1;
    match error {
        None => {
            sqlx::query("UPDATE tmf_hub_deliveries SET delivered_at = $1, attempts = $2, last_error = NULL WHERE id = $3")
                .bind(now_text())
                .bind(attempts)
                .bind(&d.id)
                .execute(&db.pool)
                .await?;
        }
        Some(err) if attempts >= MAX_ATTEMPTS => {
            tracing::warn!(callback = %d.callback, error = %err, "TMF hub: event given up after {attempts} attempts");
            // Kept as done so the same event is not queued again; last_error says why.
            sqlx::query("UPDATE tmf_hub_deliveries SET delivered_at = $1, attempts = $2, last_error = $3 WHERE id = $4")
                .bind(now_text())
                .bind(attempts)
                .bind(format!("given up: {err}"))
                .bind(&d.id)
                .execute(&db.pool)
                .await?;
        }
        Some(err) => {
            let next = chrono::Utc::now().timestamp_millis() + backoff_millis(attempts);
            sqlx::query("UPDATE tmf_hub_deliveries SET next_attempt_at = $1, attempts = $2, last_error = $3 WHERE id = $4")
                .bind(next)
                .bind(attempts)
                .bind(err)
                .bind(&d.id)
                .execute(&db.pool)
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_match_dotted_paths_and_alternatives() {
        let env = envelope(
            MESSAGE_STATE_CHANGE,
            "communicationMessage",
            json!({"id": "m1", "state": "failed", "tryTimes": 1}),
        );
        assert!(matches(None, &env));
        assert!(matches(
            Some("eventType=CommunicationMessageStateChangeEvent"),
            &env
        ));
        assert!(matches(
            Some("event.communicationMessage.state=completed,failed"),
            &env
        ));
        assert!(matches(Some("event.communicationMessage.tryTimes=1"), &env));
        assert!(!matches(
            Some("event.communicationMessage.state=completed"),
            &env
        ));
        assert!(!matches(
            Some("eventType=QueryProductRecommendationCreateEvent"),
            &env
        ));
        assert!(!matches(Some("event.nothing=x"), &env));
        assert!(parse_query("state").is_err());
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff_millis(1), 1000);
        assert_eq!(backoff_millis(2), 2000);
        assert_eq!(backoff_millis(4), 8000);
        assert_eq!(backoff_millis(12), 2_048_000);
        assert!(backoff_millis(100) <= 3_600_000);
    }

    #[test]
    fn callbacks_must_be_http_urls() {
        assert!(check_callback("https://crm.example/listener").is_ok());
        assert!(check_callback("http://10.0.0.5:8080/cb").is_ok());
        assert!(check_callback("ftp://x/y").is_err());
        assert!(check_callback("file:///etc/passwd").is_err());
        assert!(check_callback("/relative").is_err());
    }
}
