//! Optimistic concurrency over HTTP: every record carries `version`, responses carry
//! `ETag: "<version>"`, updates name the version they read (`If-Match` or a `version` field).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::http::ApiError;

/// A record with its version, answered with an `ETag`.
pub struct Tagged<T> {
    pub version: i64,
    pub status: StatusCode,
    pub body: T,
}

impl<T> Tagged<T> {
    pub fn ok(version: i64, body: T) -> Tagged<T> {
        Tagged {
            version,
            status: StatusCode::OK,
            body,
        }
    }
    pub fn created(version: i64, body: T) -> Tagged<T> {
        Tagged {
            version,
            status: StatusCode::CREATED,
            body,
        }
    }
}

impl<T: Serialize> IntoResponse for Tagged<T> {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", self.version)) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        resp
    }
}

/// The version the client read. `If-Match` wins over the body's `version`; one is required so
/// a client cannot overwrite a change it never saw.
pub fn expected_version(headers: &HeaderMap, body_version: Option<i64>) -> Result<i64, ApiError> {
    if let Some(v) = headers.get(header::IF_MATCH) {
        let raw = v
            .to_str()
            .map_err(|_| ApiError::field("If-Match", "must be an ETag such as \"3\""))?;
        let raw = raw.trim().trim_start_matches("W/").trim_matches('"');
        return raw
            .parse()
            .map_err(|_| ApiError::field("If-Match", "must be an ETag such as \"3\""));
    }
    body_version.ok_or_else(|| ApiError::field("version", "required (or send If-Match)"))
}

/// Checks the version read against the stored one before any write.
pub fn check_version(stored: i64, expected: i64) -> Result<(), ApiError> {
    if stored == expected {
        Ok(())
    } else {
        Err(ApiError::PreconditionFailed)
    }
}

/// For PATCH fields that may be set to null: absent = `None`, `null` = `Some(None)`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// Copies onto a record each field a PATCH body sets:
/// `apply_patch!(patch => after; name, city)`. Fields absent from the body stay as they were.
#[macro_export]
macro_rules! apply_patch {
    ($patch:ident => $record:ident; $($field:ident),* $(,)?) => {
        $(if let Some(v) = $patch.$field {
            $record.$field = v;
        })*
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_wins_and_one_is_required() {
        let mut h = HeaderMap::new();
        assert!(expected_version(&h, None).is_err());
        assert_eq!(expected_version(&h, Some(2)).unwrap(), 2);
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"7\""));
        assert_eq!(expected_version(&h, Some(2)).unwrap(), 7);
        h.insert(header::IF_MATCH, HeaderValue::from_static("W/\"8\""));
        assert_eq!(expected_version(&h, None).unwrap(), 8);
    }
}
