//! `Idempotency-Key` on any POST: a retry with the same key and the same request gets the
//! first response again (marked `Idempotent-Replayed: true`) and changes nothing; the same key
//! with another request is a 422. Keys belong to the credential that sent them and are kept
//! [`KEEP`]. A key whose first request is still running answers 409 until it ends; one whose
//! request died with its process (a claim older than [`ABANDONED`]) is taken over.
//!
//! Server errors are not kept: a 5xx leaves the key free, so the retry runs again.
//!
//! A replay has the first answer's status, body, `Content-Type`, `ETag`, `Location` and the
//! other headers a client reads ([`REPLAYED_HEADERS`]).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use sha2::{Digest, Sha256};

use crate::http::ApiError;
use crate::store::{ts_text, Db};

/// How long a key is remembered.
pub const KEEP: Duration = Duration::hours(24);
/// A claim with no response after this long belongs to a request that will never answer.
pub const ABANDONED: Duration = Duration::minutes(5);

/// Response headers kept with the answer and replayed, besides content-type, ETag and
/// Location: `Import-Records` (how many records an import's report covers).
pub const REPLAYED_HEADERS: &[&str] = &["import-records"];

/// What the layer needs: the database and the largest body it may buffer.
#[derive(Clone)]
pub struct Idempotency {
    pub db: Db,
    pub max_body_bytes: usize,
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// The credential as sent, hashed: keys are per caller without authenticating twice (the
/// handler still authenticates; an unknown credential gets its 401 there).
fn owner(headers: &HeaderMap) -> Option<String> {
    let cred = headers
        .get(header::AUTHORIZATION)
        .or_else(|| headers.get("x-api-key"))?;
    Some(sha256_hex(&[cred.as_bytes()]))
}

#[derive(sqlx::FromRow)]
struct Kept {
    fingerprint: String,
    status: Option<i64>,
    content_type: Option<String>,
    etag: Option<String>,
    location: Option<String>,
    /// [`REPLAYED_HEADERS`] present on the answer, as a JSON object.
    headers: Option<String>,
    body: Option<String>,
    created_at: String,
}

pub async fn layer(State(idem): State<Idempotency>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw_key) = req.headers().get("idempotency-key") else {
        return next.run(req).await;
    };
    let key = match raw_key.to_str() {
        Ok(k) if (1..=200).contains(&k.trim().len()) => k.trim().to_string(),
        _ => {
            return ApiError::field("Idempotency-Key", "must be 1 to 200 characters of text")
                .into_response()
        }
    };
    let Some(owner) = owner(req.headers()) else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, idem.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::PayloadTooLarge {
                max_bytes: Some(idem.max_body_bytes),
                setting: crate::http::error::BODY_LIMIT,
            }
            .into_response()
        }
    };
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let fingerprint = sha256_hex(&[target.as_bytes(), &bytes]);
    match claim(&idem.db, &owner, &key, &fingerprint).await {
        Ok(Claim::Ours) => {}
        Ok(Claim::Replay(resp)) => return resp,
        Ok(Claim::Refused(e)) => return e.into_response(),
        Err(e) => {
            return ApiError::internal(e.context("claiming an idempotency key")).into_response()
        }
    }
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    match keep(&idem.db, &owner, &key, resp).await {
        Ok(resp) => resp,
        Err(e) => ApiError::internal(e.context("keeping an idempotent response")).into_response(),
    }
}

enum Claim {
    Ours,
    Replay(Response),
    Refused(ApiError),
}

async fn claim(db: &Db, owner: &str, key: &str, fingerprint: &str) -> anyhow::Result<Claim> {
    let now = Utc::now();
    sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(ts_text(now - KEEP))
        .execute(&db.pool)
        .await?;
    for _ in 0..3 {
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (owner, idem_key, fingerprint, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (owner, idem_key) DO NOTHING",
        )
        .bind(owner)
        .bind(key)
        .bind(fingerprint)
        .bind(ts_text(now))
        .execute(&db.pool)
        .await?
        .rows_affected();
        if claimed == 1 {
            return Ok(Claim::Ours);
        }
        let kept: Option<Kept> = sqlx::query_as(
            "SELECT fingerprint, status, content_type, etag, location, headers, body, created_at \
             FROM idempotency_keys WHERE owner = $1 AND idem_key = $2",
        )
        .bind(owner)
        .bind(key)
        .fetch_optional(&db.pool)
        .await?;
        let Some(kept) = kept else {
            continue; // expired and deleted in between: claim again
        };
        if kept.fingerprint != fingerprint {
            return Ok(Claim::Refused(ApiError::Unprocessable(
                "Idempotency-Key was already used for a different request (another path or body); use a new key"
                    .into(),
            )));
        }
        let Some(status) = kept.status else {
            let started = chrono::DateTime::parse_from_rfc3339(&kept.created_at)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(now);
            if now - started > ABANDONED {
                // Its request died with its process: take the key over.
                let taken = sqlx::query(
                    "UPDATE idempotency_keys SET created_at = $1 \
                     WHERE owner = $2 AND idem_key = $3 AND status IS NULL AND created_at = $4",
                )
                .bind(ts_text(now))
                .bind(owner)
                .bind(key)
                .bind(&kept.created_at)
                .execute(&db.pool)
                .await?
                .rows_affected();
                if taken == 1 {
                    return Ok(Claim::Ours);
                }
                continue;
            }
            return Ok(Claim::Refused(ApiError::Conflict(
                "a request with this Idempotency-Key is still running; retry when it has answered"
                    .into(),
            )));
        };
        return Ok(Claim::Replay(replay(status, kept)));
    }
    anyhow::bail!("the key kept changing hands")
}

fn replay(status: i64, kept: Kept) -> Response {
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    let mut resp = Response::new(Body::from(kept.body.unwrap_or_default()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, kept.content_type),
        (header::ETAG, kept.etag),
        (header::LOCATION, kept.location),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            h.insert(name, v);
        }
    }
    let others: std::collections::BTreeMap<String, String> = kept
        .headers
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default();
    for (name, value) in others {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            h.insert(n, v);
        }
    }
    h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}

/// Stores the answer under the key, or frees the key when the answer is a server error (or
/// not text), so that a retry runs again.
async fn keep(db: &Db, owner: &str, key: &str, resp: Response) -> anyhow::Result<Response> {
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await?;
    let text = std::str::from_utf8(&bytes).ok();
    if parts.status.is_server_error() || text.is_none() {
        sqlx::query("DELETE FROM idempotency_keys WHERE owner = $1 AND idem_key = $2")
            .bind(owner)
            .bind(key)
            .execute(&db.pool)
            .await?;
    } else {
        let header_text = |name: header::HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let others: std::collections::BTreeMap<&str, String> = REPLAYED_HEADERS
            .iter()
            .filter_map(|name| Some((*name, header_text(header::HeaderName::from_static(name))?)))
            .collect();
        let others = (!others.is_empty())
            .then(|| serde_json::to_string(&others))
            .transpose()?;
        sqlx::query(
            "UPDATE idempotency_keys SET status = $1, content_type = $2, etag = $3, \
             location = $4, headers = $5, body = $6 WHERE owner = $7 AND idem_key = $8",
        )
        .bind(parts.status.as_u16() as i64)
        .bind(header_text(header::CONTENT_TYPE))
        .bind(header_text(header::ETAG))
        .bind(header_text(header::LOCATION))
        .bind(others)
        .bind(text)
        .bind(owner)
        .bind(key)
        .execute(&db.pool)
        .await?;
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
