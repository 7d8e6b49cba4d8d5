//! A rule's lasting counts per day, for charts over time. Totals per rule come with the rule
//! list (`GET /api/v1/rules`).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Serialize;

use crate::app::AppState;
use crate::auth::{Permission, Principal};
use crate::http::ApiError;
use crate::pipeline::counts::{per_day, DayCounts};

/// The longest span one request reads, and the span when `from` is not given.
const MAX_DAYS: i64 = 366;
const DEFAULT_DAYS: i64 = 30;

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CountsParams {
    /// First day, `YYYY-MM-DD` (default: 29 days before `to`).
    pub from: Option<String>,
    /// Last day, inclusive, `YYYY-MM-DD` (default: today, UTC).
    pub to: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleDays {
    pub rule_id: String,
    pub from: String,
    pub to: String,
    /// Days with any count, oldest first; a day left out counted nothing.
    pub days: Vec<DayCounts>,
}

/// One rule's counts per day, summed over every instance: evaluated, matched and errors (by
/// the UTC day they were counted) and its decisions by outcome (by the operator's day).
#[utoipa::path(get, path = "/api/v1/rules/{id}/counts", tag = "rules",
    params(("id" = String, Path), CountsParams),
    responses((status = 200, body = RuleDays), (status = 400, body = crate::http::error::ErrorBody), (status = 401), (status = 403, body = crate::http::error::ErrorBody)), security(("bearer" = [])))]
pub async fn rule_counts(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<RuleDays>, ApiError> {
    who.require(Permission::ReadRules)?;
    let day = |field: &'static str| -> Result<Option<chrono::NaiveDate>, ApiError> {
        q.get(field)
            .map(|s| {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
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
    // This instance's latest counts first, so they show at once.
    state
        .rule_counts
        .flush()
        .await
        .map_err(ApiError::internal)?;
    let (from, to) = (from.to_string(), to.to_string());
    let days = per_day(&state.db, &id, &from, &to)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(RuleDays {
        rule_id: id,
        from,
        to,
        days,
    }))
}
