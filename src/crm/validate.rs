//! Field validation shared by the CRM features; every error names its field.

use crate::http::ApiError;

pub fn text(field: &str, v: &str, max: usize) -> Result<(), ApiError> {
    let n = v.trim().chars().count();
    if n == 0 {
        return Err(ApiError::field(field, "must not be empty"));
    }
    if n > max {
        return Err(ApiError::field(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

pub fn opt_text(field: &str, v: Option<&str>, max: usize) -> Result<(), ApiError> {
    v.map_or(Ok(()), |v| text(field, v, max))
}

pub fn one_of(field: &str, v: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(ApiError::field(
            field,
            format!("must be one of {}", allowed.join(", ")),
        ))
    }
}

pub fn timezone(field: &str, v: &str) -> Result<(), ApiError> {
    v.parse::<chrono_tz::Tz>()
        .map(|_| ())
        .map_err(|_| ApiError::field(field, "must be an IANA time zone such as Asia/Shanghai"))
}

pub fn unit_interval(field: &str, v: f64) -> Result<(), ApiError> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(ApiError::field(field, "must be between 0 and 1"))
    }
}

pub fn non_negative(field: &str, v: i64) -> Result<(), ApiError> {
    if v >= 0 {
        Ok(())
    } else {
        Err(ApiError::field(field, "must not be negative"))
    }
}

/// An RFC 3339 time, as UTC.
pub fn time(field: &str, v: &str) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| ApiError::field(field, "must be an RFC 3339 time"))
}

/// An RFC 3339 time, as the text Kairos stores (UTC, to the millisecond).
pub fn utc_text(field: &str, v: &str) -> Result<String, ApiError> {
    time(field, v).map(crate::store::ts_text)
}

/// A calendar date, written `YYYY-MM-DD` (a birth date, a close date): one way in, so one
/// way out.
pub fn date(field: &str, v: &str) -> Result<(), ApiError> {
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map(|_| ())
        .map_err(|_| ApiError::field(field, "must be a date written YYYY-MM-DD"))
}

/// A day (`YYYY-MM-DD`, kept as it is) or a moment (any RFC 3339 time, kept in UTC to the
/// millisecond like every time Kairos writes), for fields that may be either (a follow-up
/// due on a day or at an hour). Returns the text to store, so output has one form of each.
pub fn day_or_time(field: &str, v: &str) -> Result<String, ApiError> {
    if chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok() {
        return Ok(v.to_string());
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| crate::store::ts_text(t.with_timezone(&chrono::Utc)))
        .map_err(|_| {
            ApiError::field(
                field,
                "must be a date (YYYY-MM-DD) or an RFC 3339 time (2026-12-01T09:30:00+08:00)",
            )
        })
}

/// Channels a customer can be reached on, for consents and preferences.
pub const CHANNELS: &[&str] = &["sms", "email", "portal", "agent", "app", "call", "all"];
