//! What a rule achieved against its control group: subscribers it reached and those it held
//! out (`control_group`), and how many of each took the offering afterwards. The same measure
//! as a campaign's, with each subscriber's own decision time as the start.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use super::repo::{uplift, GroupResult, SENT_STATUSES};
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
         CAST(CASE WHEN r.reason = 'control_group' THEN 1 ELSE 0 END AS BIGINT), s.created_at \
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
    let rows: Vec<(String, String, i64, Option<String>)> =
        sql.query_as().fetch_all(&mut *conn).await?;
    // Per subscriber: held out or not, decided when (the first time), converted after it.
    let time = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let mut by: HashMap<String, (bool, i64, Vec<i64>)> = HashMap::new();
    for (msisdn, decided, control, bought) in rows {
        let Some(at) = time(&decided) else { continue };
        let e = by
            .entry(msisdn)
            .or_insert((control == 1, i64::MAX, Vec::new()));
        e.1 = e.1.min(at.timestamp_millis());
        if let Some(b) = bought.as_deref().and_then(time) {
            e.2.push(b.timestamp_millis());
        }
    }
    let (mut t, mut c) = ((0, 0), (0, 0));
    for (control, first, bought) in by.values() {
        let group = if *control { &mut c } else { &mut t };
        group.0 += 1;
        if bought.iter().any(|b| b >= first) {
            group.1 += 1;
        }
    }
    let (treated, control) = (GroupResult::new(t.0, t.1), GroupResult::new(c.0, c.1));
    let lift = uplift(&treated, &control);
    Ok(Json(RuleResults {
        rule_id: id,
        treated,
        control,
        uplift: lift.map(|(u, _)| u),
        uplift_ci: lift.map(|(_, ci)| ci),
    }))
}
