//! `/stats/offers`: statistics (统计分析) over the engine's recommendations, grouped by
//! campaign, rule, channel, team (the account manager's team of the line's customer) or
//! period (day / week / month of the decision, on the operator's calendar:
//! `engine.default_timezone`, whatever made the offer). JSON or CSV
//! (`?format=csv` or `Accept: text/csv`). Scoped readers only count their customers' lines.
//! Service messages (bills, contract reminders, staff notices) are not offers and are not
//! counted.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::auth::{Permission, Principal, Scope};
use crate::crm::campaigns::repo::SENT_STATUSES;
use crate::crm::scope::push_customer_scope;
use crate::crm::CrmState;
use crate::http::ApiError;
use crate::store::Sql;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new().routes(routes!(offers))
}

/// One group's counts.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct StatRow {
    /// The group: a campaign id, rule id, channel, team name, or a period
    /// (`2026-11-23`, `2026-W48`, `2026-11`). Empty when the record has none (e.g. no campaign).
    pub key: String,
    pub decided: i64,
    pub sent: i64,
    pub suppressed: i64,
    pub accepted: i64,
    pub declined: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatReport {
    pub group_by: String,
    /// The operator's zone (`engine.default_timezone`) whose calendar days, weeks and months
    /// the periods and `from` / `to` are.
    pub time_zone: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub rows: Vec<StatRow>,
    pub total: StatRow,
}

const GROUPS: &[&str] = &[
    "campaign", "rule", "channel", "team", "day", "week", "month",
];

#[derive(sqlx::FromRow)]
struct Raw {
    k: Option<String>,
    decided: i64,
    sent: i64,
    suppressed: i64,
    accepted: i64,
    declined: i64,
}

fn date_param(q: &HashMap<String, String>, name: &str) -> Result<Option<String>, ApiError> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(|_| Some(v.clone()))
            .map_err(|_| ApiError::field(name, "must be a date (YYYY-MM-DD)")),
    }
}

/// `2026-11-23` -> `2026-W48` (ISO week).
fn iso_week(day: &str) -> String {
    use chrono::Datelike;
    match chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d") {
        Ok(d) => {
            let w = d.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }
        Err(_) => day.to_string(),
    }
}

fn wants_csv(q: &HashMap<String, String>, headers: &HeaderMap) -> Result<bool, ApiError> {
    match q.get("format").map(String::as_str) {
        Some("csv") => return Ok(true),
        Some("json") => return Ok(false),
        Some(_) => return Err(ApiError::field("format", "must be json or csv")),
        None => {}
    }
    Ok(headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv")))
}

pub fn to_csv(report: &StatReport) -> Result<String, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let row = |w: &mut csv::Writer<Vec<u8>>, r: &StatRow| {
        w.write_record([
            r.key.clone(),
            r.decided.to_string(),
            r.sent.to_string(),
            r.suppressed.to_string(),
            r.accepted.to_string(),
            r.declined.to_string(),
        ])
    };
    w.write_record([
        report.group_by.as_str(),
        "decided",
        "sent",
        "suppressed",
        "accepted",
        "declined",
    ])
    .map_err(ApiError::internal)?;
    for r in &report.rows {
        row(&mut w, r).map_err(ApiError::internal)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ApiError::internal(e.into_error()))?;
    String::from_utf8(bytes).map_err(ApiError::internal)
}

#[utoipa::path(get, path = "/api/v1/stats/offers", tag = "statistics",
    params(
        ("group_by" = Option<String>, Query, description = "campaign | rule | channel | team | day | week | month (default day)"),
        ("from" = Option<String>, Query, description = "first day, YYYY-MM-DD (inclusive)"),
        ("to" = Option<String>, Query, description = "last day, YYYY-MM-DD (inclusive)"),
        ("campaign_id" = Option<String>, Query), ("rule_id" = Option<String>, Query), ("channel" = Option<String>, Query),
        ("format" = Option<String>, Query, description = "json (default) or csv; `Accept: text/csv` also selects CSV")),
    responses((status = 200, description = "counts per group, as JSON or CSV",
            content((StatReport = "application/json"), (String = "text/csv"))),
        (status = 400), (status = 403)))]
pub async fn offers(
    State(st): State<CrmState>,
    p: Principal,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    p.require(Permission::ReadStatistics)?;
    for k in q.keys() {
        if !matches!(
            k.as_str(),
            "group_by" | "from" | "to" | "campaign_id" | "rule_id" | "channel" | "format"
        ) {
            return Err(ApiError::field(
                k.as_str(),
                "is not a parameter of statistics",
            ));
        }
    }
    // The operator's calendar day of the decision (`engine.default_timezone`), whatever
    // made it; rows stored before that was recorded fall back to their own stamp's day.
    const DAY: &str = "SUBSTR(COALESCE(r.local_day, r.decided_at), 1, 10)";
    let group_by = q.get("group_by").map(String::as_str).unwrap_or("day");
    crate::crm::validate::one_of("group_by", group_by, GROUPS)?;
    let from = date_param(&q, "from")?;
    let to = date_param(&q, "to")?;
    let csv = wants_csv(&q, &headers)?;
    let key = match group_by {
        "campaign" => "r.campaign_id",
        "rule" => "r.rule_id",
        "channel" => "r.channel",
        "team" => "t.name",
        "month" => "SUBSTR(COALESCE(r.local_day, r.decided_at), 1, 7)",
        _ => DAY,
    };
    let mut sql = Sql::new(&format!(
        "SELECT {key} AS k, COUNT(*) AS decided, \
         COALESCE(SUM(CASE WHEN r.status IN {SENT_STATUSES} THEN 1 ELSE 0 END), 0) AS sent, \
         COALESCE(SUM(CASE WHEN r.status = 'suppressed' THEN 1 ELSE 0 END), 0) AS suppressed, \
         COALESCE(SUM(CASE WHEN r.status = 'accepted' THEN 1 ELSE 0 END), 0) AS accepted, \
         COALESCE(SUM(CASE WHEN r.status = 'declined' THEN 1 ELSE 0 END), 0) AS declined \
         FROM recommendations r \
         LEFT JOIN lines l ON l.msisdn = r.msisdn \
         LEFT JOIN customers c ON c.id = l.customer_id \
         LEFT JOIN users u ON u.id = c.account_manager_id \
         LEFT JOIN teams t ON t.id = u.team_id \
         WHERE r.service = 0"
    ));
    if p.scope != Scope::All {
        // Records of lines outside the CRM (c is NULL) fail the scope predicate too.
        sql.push(" AND c.id IS NOT NULL");
        push_customer_scope(&mut sql, &p, "c");
    }
    if let Some(f) = &from {
        sql.push(" AND ").push(DAY).push(" >= ").bind(f.as_str());
    }
    if let Some(t) = &to {
        sql.push(" AND ").push(DAY).push(" <= ").bind(t.as_str());
    }
    for (param, col) in [
        ("campaign_id", "r.campaign_id"),
        ("rule_id", "r.rule_id"),
        ("channel", "r.channel"),
    ] {
        if let Some(v) = q.get(param) {
            sql.push(" AND ").push(col).push(" = ").bind(v.as_str());
        }
    }
    sql.push(&format!(" GROUP BY {key} ORDER BY {key}"));
    let raw: Vec<Raw> = sql.query_as().fetch_all(&st.db.pool).await?;
    let mut grouped: BTreeMap<String, StatRow> = BTreeMap::new();
    for r in raw {
        let k = r.k.unwrap_or_default();
        let k = if group_by == "week" { iso_week(&k) } else { k };
        let e = grouped.entry(k.clone()).or_insert_with(|| StatRow {
            key: k,
            ..StatRow::default()
        });
        e.decided += r.decided;
        e.sent += r.sent;
        e.suppressed += r.suppressed;
        e.accepted += r.accepted;
        e.declined += r.declined;
    }
    let rows: Vec<StatRow> = grouped.into_values().collect();
    let mut total = StatRow {
        key: "total".into(),
        ..StatRow::default()
    };
    for r in &rows {
        total.decided += r.decided;
        total.sent += r.sent;
        total.suppressed += r.suppressed;
        total.accepted += r.accepted;
        total.declined += r.declined;
    }
    let report = StatReport {
        group_by: group_by.to_string(),
        time_zone: st.config.engine.default_timezone.clone(),
        from,
        to,
        rows,
        total,
    };
    if csv {
        let body = to_csv(&report)?;
        let name = format!("attachment; filename=\"offers-by-{group_by}.csv\"");
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, name),
            ],
            body,
        )
            .into_response());
    }
    Ok(Json(report).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_are_iso() {
        assert_eq!(iso_week("2026-11-23"), "2026-W48");
        assert_eq!(iso_week("2027-01-01"), "2026-W53");
    }
}
