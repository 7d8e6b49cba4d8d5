//! TMF `Error` bodies on the TMF routes. The handlers keep returning [`crate::http::ApiError`]
//! like the rest of the API; this layer rewrites every error response the TMF routers produce
//! (including the auth extractor's 401/403, body rejections and axum's bare 405) into the
//! shape TMF630 clients parse, so the rest of the API keeps its own `ErrorBody`.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

/// The TMF `Error` resource.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TmfError {
    /// Our machine-readable code: `bad_request`, `unauthenticated`, `not_found`, ...
    pub code: String,
    /// The HTTP reason phrase.
    pub reason: String,
    /// What went wrong and, for validation errors, which field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The HTTP status code, as text.
    pub status: String,
    #[serde(rename = "@type")]
    pub kind: String,
}

/// Our own error body as `http::error` writes it; `field` is folded into `message`.
#[derive(Deserialize)]
struct OurBody {
    error: String,
    message: String,
}

/// Error bodies are small; anything larger is not ours and is replaced by the bare status.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub fn body_for(status: StatusCode, code: Option<String>, message: Option<String>) -> TmfError {
    let reason = status.canonical_reason().unwrap_or("Error").to_string();
    TmfError {
        code: code.unwrap_or_else(|| {
            reason
                .to_ascii_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        }),
        reason,
        message,
        status: status.as_u16().to_string(),
        kind: "Error".into(),
    }
}

/// `axum::middleware::map_response` over the TMF routers.
pub async fn to_tmf(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let ours: Option<OurBody> = serde_json::from_slice(&bytes).ok();
    let text = (!bytes.is_empty() && ours.is_none())
        .then(|| String::from_utf8_lossy(&bytes).trim().to_string())
        .filter(|t| !t.is_empty() && t.len() <= 1000);
    let tmf = match ours {
        Some(b) => body_for(status, Some(b.error), Some(b.message)),
        None => body_for(status, None, text),
    };
    let json = serde_json::to_vec(&tmf).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    async fn mapped(resp: Response) -> (StatusCode, serde_json::Value) {
        let resp = to_tmf(resp).await;
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn our_errors_become_tmf_errors_with_the_same_status() {
        let (status, v) =
            mapped(crate::http::ApiError::field("receiver", "required").into_response()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(v["code"], "bad_request");
        assert_eq!(v["reason"], "Bad Request");
        assert_eq!(v["status"], "400");
        assert_eq!(v["@type"], "Error");
        assert!(v["message"].as_str().unwrap().contains("receiver"), "{v}");
        assert!(v.get("error").is_none(), "{v}");
    }

    #[tokio::test]
    async fn bare_statuses_get_a_body_and_successes_are_untouched() {
        let (status, v) = mapped(StatusCode::METHOD_NOT_ALLOWED.into_response()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(v["code"], "method_not_allowed");
        assert_eq!(v["status"], "405");
        let ok = to_tmf((StatusCode::CREATED, "x").into_response()).await;
        let bytes = axum::body::to_bytes(ok.into_body(), 16).await.unwrap();
        assert_eq!(&bytes[..], b"x");
    }
}
