//! The one HTTP error type: tells the client what it did wrong, logs internals, never leaks them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        field: Option<String>,
        message: String,
    },
    /// Submitted files that do not pass their checks (rule sources, a contact policy): each
    /// problem at its place, as well as listed in the message.
    #[error("{message}")]
    Invalid {
        message: String,
        problems: Vec<SourceProblem>,
    },
    #[error("authentication required")]
    Unauthenticated,
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// The caller's role lacks a permission: says which, and who has it.
    #[error("not allowed: role {role} lacks the permission {permission}; roles that have it: {}", allowed.join(", "))]
    Denied {
        role: &'static str,
        permission: &'static str,
        allowed: Vec<&'static str>,
    },
    /// The caller's role holds the permission, but this step or record is for other roles or
    /// another person (an approval step of another role, work for operator staff, four eyes):
    /// says why, which permission, and the roles that may.
    #[error("not allowed: {reason}; roles that may: {}", allowed.join(", "))]
    Refused {
        reason: String,
        permission: &'static str,
        allowed: Vec<&'static str>,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} does not accept this method; see the Allow header")]
    MethodNotAllowed(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request body is over a size limit: `setting` names it (`http.max_body_bytes`,
    /// `crm.import_max_bytes`), `max_bytes` is its value when known here.
    #[error("the request body is larger than {} ({setting}); split it", max_bytes.map_or("the server accepts".to_string(), |n| format!("{n} bytes")))]
    PayloadTooLarge {
        max_bytes: Option<usize>,
        setting: &'static str,
    },
    /// Well-formed, but refused as it stands (a reused idempotency key).
    #[error("{0}")]
    Unprocessable(String),
    #[error("version mismatch: the record changed since you read it")]
    PreconditionFailed,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("too many attempts: try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code: `bad_request`, `unauthenticated`, `forbidden`,
    /// `payload_too_large`, ...
    pub error: &'static str,
    /// What went wrong, in words.
    pub message: String,
    /// The offending field, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `forbidden`: the permission the call needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<&'static str>,
    /// For `forbidden`: the roles that may do what was refused (those with the permission, or
    /// the narrower set a step or record needs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_roles: Option<Vec<&'static str>>,
    /// For files that do not pass their checks: each problem at its place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<SourceProblem>>,
}

/// A problem in a submitted file, where it is, in plain words, with what to try.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SourceProblem {
    pub file: String,
    /// 1-based; 0 when the problem is about the file as a whole.
    pub line: usize,
    pub column: usize,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl ApiError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{}: {}", field, message.into());
        ApiError::BadRequest {
            field: Some(field),
            message,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: None,
            message: message.into(),
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { .. } | ApiError::Invalid { .. } => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) | ApiError::Denied { .. } | ApiError::Refused { .. } => {
                (StatusCode::FORBIDDEN, "forbidden")
            }
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ApiError::PreconditionFailed => (StatusCode::PRECONDITION_FAILED, "version_mismatch"),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        if let ApiError::Internal(err) = &self {
            tracing::error!(error = ?err, "internal error serving request");
        }
        let field = match &self {
            ApiError::BadRequest { field, .. } => field.clone(),
            _ => None,
        };
        let (permission, allowed_roles) = match &self {
            ApiError::Denied {
                permission,
                allowed,
                ..
            }
            | ApiError::Refused {
                permission,
                allowed,
                ..
            } => (Some(*permission), Some(allowed.clone())),
            _ => (None, None),
        };
        let problems = match &self {
            ApiError::Invalid { problems, .. } => Some(problems.clone()),
            _ => None,
        };
        let mut resp = (
            status,
            Json(ErrorBody {
                error: code,
                message: self.to_string(),
                field,
                permission,
                allowed_roles,
                problems,
            }),
        )
            .into_response();
        if let ApiError::TooManyRequests { retry_after_secs } = &self {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after_secs),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// Routing's own 405 has an empty body; this gives it the JSON error body every other error
/// has (the `Allow` header stays). Routers that shape their errors otherwise (TMF) have
/// already filled the body, so it is left alone.
pub async fn bare_405(resp: Response) -> Response {
    let empty = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_none();
    if resp.status() != StatusCode::METHOD_NOT_ALLOWED || !empty {
        return resp;
    }
    let (parts, _) = resp.into_parts();
    let mut ours = ApiError::MethodNotAllowed("this route".into()).into_response();
    if let Some(allow) = parts.headers.get(axum::http::header::ALLOW) {
        ours.headers_mut()
            .insert(axum::http::header::ALLOW, allow.clone());
    }
    ours
}

/// A 413 from a body extractor (axum's `DefaultBodyLimit`) is plain text; this gives it the
/// JSON error body. Bodies already JSON (ours, TMF's) are left alone.
pub async fn bare_413(
    axum::extract::State(max_bytes): axum::extract::State<usize>,
    resp: Response,
) -> Response {
    let json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if resp.status() != StatusCode::PAYLOAD_TOO_LARGE || json {
        return resp;
    }
    ApiError::PayloadTooLarge {
        max_bytes: Some(max_bytes),
        setting: BODY_LIMIT,
    }
    .into_response()
}

/// The setting that bounds every API request's body.
pub const BODY_LIMIT: &str = "http.max_body_bytes";

/// Database failures: the ones a client can fix become 4xx; the rest are 500s whose log names
/// the operation that failed.
impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Sql(sqlx::Error::RowNotFound)
            | StoreError::Query {
                source: sqlx::Error::RowNotFound,
                ..
            } => ApiError::NotFound("record".into()),
            StoreError::Invalid { field, message } => ApiError::field(field, message),
            StoreError::Conflict(message) => ApiError::Conflict(message),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => ApiError::NotFound("record".into()),
            other => ApiError::Internal(other.into()),
        }
    }
}

/// JSON body extractor whose rejection is an [`ApiError`] naming the problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            // Over the body limit: a 413 like every other too-large body, not a 400.
            Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge {
                    max_bytes: None,
                    setting: BODY_LIMIT,
                })
            }
            Err(rej) => Err(ApiError::bad_request(rej.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_errors_hide_details() {
        let resp = ApiError::internal(anyhow::anyhow!("db password is hunter2")).into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[tokio::test]
    async fn validation_errors_name_the_field() {
        let resp = ApiError::field("msisdn", "must be 5 to 15 digits").into_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["field"], "msisdn");
    }
}
