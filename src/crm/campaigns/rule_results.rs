//! What a rule achieved against its control group: subscribers it reached and those it held
//! out (`control_group`), and how many of each took the offering afterwards. The same measure
//! as a campaign's, with each subscriber's own decision time as the start.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use super::repo::SENT_STATUSES;
use super::uplift::{revenue_uplift, uplift, GroupResult, Tally};
use crate::auth::Principal;
use crate::crm::segments::require_marketing_read;
use crate::crm::CrmState;
use crate::http::ApiError;
use crate::store::Sql;

/// Decisions read at most per request: the newest are kept past it.
const MAX_ROWS: i64 = 500_000;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleResults {
    pub rule_id: String,
    /// Subscribers the rule reached, and how many took the offering (a subscription to the
    /// product whose code is the offer code, on their line) after its decision.
    pub treated: GroupResult,
    /// Subscribers held out, and how many took the offering all the same.
    pub control: GroupResult,
    /// Conversion of the treated minus that of the control group; null without both.
    pub uplift: Option<f64>,
    /// Its 95 % confidence interval.
    pub uplift_ci: Option<[f64; 2]>,
    /// Revenue per subscriber (cents: the catalog price of what they took afterwards) of
    /// the treated minus that of the control group.
    pub revenue_uplift: Option<f64>,
    /// Its 95 % confidence interval (Welch).
    pub revenue_uplift_ci: Option<[f64; 2]>,
}

#[utoipa::path(get, path = "/api/v1/rules/{id}/results", tag = "rules", params(("id" = String, Path)),
    responses((status = 200, body = RuleResults), (status = 401), (status = 403)))]
pub async fn results(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<RuleResults>, ApiError> {
    require_marketing_read(&p)?;
    let mut conn = st.db.pool.acquire().await?;
    let mut sql = Sql::new(
        "SELECT r.msisdn, r.decided_at, \
         CAST(CASE WHEN r.reason = 'control_group' THEN 1 ELSE 0 END AS BIGINT), \
         s.id, s.created_at, po.price_cents \
         FROM recommendations r \
         LEFT JOIN lines l ON l.msisdn = r.msisdn \
         LEFT JOIN product_offerings po ON po.code = r.offer_code \
         LEFT JOIN subscriptions s ON s.line_id = l.id AND s.offering_id = po.id \
         WHERE r.rule_id = ",
    );
    sql.bind(id.as_str()).push(&format!(
        " AND (r.reason = 'control_group' OR r.status IN {SENT_STATUSES}) ORDER BY r.seq DESC LIMIT "
    ));
    sql.bind(MAX_ROWS);
    type Row = (
        String,
        String,
        i64,
        Option<String>,
        Option<String>,
        Option<i64>,
    );
    let rows: Vec<Row> = sql.query_as().fetch_all(&mut *conn).await?;
    // Per subscriber: held out or not, decided when (the first time), what they took after.
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.timestamp_millis())
    };
    let mut tally = Tally::default();
    for (msisdn, decided, control, sub, bought_at, price) in rows {
        let Some(at) = ms(&decided) else { continue };
        let bought = sub
            .zip(bought_at.as_deref().and_then(ms))
            .map(|(s, b)| (s, b, price.unwrap_or(0)));
        tally.add(msisdn, control == 1, at, bought);
    }
    let (treated, control): (GroupResult, GroupResult) = tally.groups();
    let lift = uplift(&treated, &control);
    let revenue_lift = revenue_uplift(&treated, &control);
    Ok(Json(RuleResults {
        rule_id: id,
        treated,
        control,
        uplift: lift.map(|(u, _)| u),
        uplift_ci: lift.map(|(_, ci)| ci),
        revenue_uplift: revenue_lift.map(|(u, _)| u),
        revenue_uplift_ci: revenue_lift.map(|(_, ci)| ci),
    }))
}
