//! A span of days asked for in a query (`?from=YYYY-MM-DD&to=YYYY-MM-DD`), as the counts
//! routes take it.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::ApiError;

/// The longest span one request reads, and the span when `from` is not given.
pub const MAX_DAYS: i64 = 366;
pub const DEFAULT_DAYS: i64 = 30;

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysParams {
    /// First day, `YYYY-MM-DD` (default: 29 days before `to`).
    pub from: Option<String>,
    /// Last day, inclusive, `YYYY-MM-DD` (default: today, UTC).
    pub to: Option<String>,
}

/// `from` to `to`, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Days {
    /// Reads `from` and `to`; a bad day, `from` after `to` or more than [`MAX_DAYS`] is a 400
    /// naming the field.
    pub fn parse(q: &HashMap<String, String>) -> Result<Days, ApiError> {
        let day = |field: &'static str| -> Result<Option<NaiveDate>, ApiError> {
            q.get(field)
                .map(|s| {
                    NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .map_err(|_| ApiError::field(field, "must be a day, YYYY-MM-DD"))
                })
                .transpose()
        };
        let to = day("to")?.unwrap_or_else(|| chrono::Utc::now().date_naive());
        let from = day("from")?.unwrap_or(to - chrono::Duration::days(DEFAULT_DAYS - 1));
        if from > to {
            return Err(ApiError::field("from", "must not be after `to`"));
        }
        if (to - from).num_days() >= MAX_DAYS {
            return Err(ApiError::field(
                "from",
                format!("at most {MAX_DAYS} days at a time"),
            ));
        }
        Ok(Days { from, to })
    }
}
