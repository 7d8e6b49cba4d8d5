//! Counts that last, with conversion and uplift against the control group, for rules and
//! campaigns alike: their decisions by outcome (`pipeline::counts`) and, where they held
//! anyone out, treated against control (`uplift`). Per day, a subscriber belongs to the
//! cohort of each day they were decided on, and what they took counts from that decision on;
//! in all, from their first decision (as `GET /api/v1/rules/{id}/results` measures it).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Serialize;

use super::repo::SENT_STATUSES;
use super::uplift::{uplift, GroupResult, Tally as Subscribers};
use crate::auth::Principal;
use crate::crm::segments::require_marketing_read;
use crate::crm::CrmState;
use crate::http::days::{Days, DaysParams};
use crate::http::ApiError;
use crate::pipeline::counts::{per_day, Of, Tally};
use crate::store::{Db, Sql};

/// Decisions read at most per request for treated against control: the newest are kept past
/// it.
const MAX_ROWS: i64 = 500_000;

/// Treated against control: who was reached and who was held out (`control_group`), how many
/// of each took the offering afterwards (a subscription to the product whose code is the
/// offer code, on their line), and the difference.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgainstControl {
    pub treated: GroupResult,
    pub control: GroupResult,
    /// Conversion of the treated minus that of the control group.
    pub uplift: Option<f64>,
    /// Its 95 % confidence interval.
    pub uplift_ci: Option<[f64; 2]>,
}

impl AgainstControl {
    /// `None` when nobody was held out: there is nothing to measure against.
    fn of(s: &Subscribers) -> Option<AgainstControl> {
        let (treated, control) = s.groups();
        if control.subscribers == 0 {
            return None;
        }
        let lift = uplift(&treated, &control);
        Some(AgainstControl {
            treated,
            control,
            uplift: lift.map(|(u, _)| u),
            uplift_ci: lift.map(|(_, ci)| ci),
        })
    }
}

/// Treated and control subscribers of the given rules or campaigns (`column` of
/// `recommendations`: `rule_id` or `campaign_id`), keyed by id and, with `by_day`, by the
/// operator's day of the decision (else ""). `days` keeps decisions of those days only.
pub async fn cohorts(
    conn: &mut sqlx::AnyConnection,
    column: &str,
    ids: &[&str],
    days: Option<Days>,
    by_day: bool,
) -> Result<HashMap<(String, String), Subscribers>, sqlx::Error> {
    let mut out: HashMap<(String, String), Subscribers> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let day = "COALESCE(r.local_day, SUBSTR(r.decided_at, 1, 10))";
    let mut sql = Sql::new(&format!(
        "SELECT r.{column}, {day}, r.msisdn, r.decided_at, \
         CAST(CASE WHEN r.reason = 'control_group' THEN 1 ELSE 0 END AS BIGINT), \
         s.id, s.created_at, po.price_cents \
         FROM recommendations r \
         LEFT JOIN lines l ON l.msisdn = r.msisdn \
         LEFT JOIN product_offerings po ON po.code = r.offer_code \
         LEFT JOIN subscriptions s ON s.line_id = l.id AND s.offering_id = po.id \
         WHERE r.{column} IN ("
    ));
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(*id);
    }
    sql.push(&format!(
        ") AND (r.reason = 'control_group' OR r.status IN {SENT_STATUSES})"
    ));
    if let Some(d) = days {
        sql.push(&format!(" AND {day} >= "))
            .bind(d.from.to_string())
            .push(&format!(" AND {day} <= "))
            .bind(d.to.to_string());
    }
    sql.push(" ORDER BY r.seq DESC LIMIT ").bind(MAX_ROWS);
    type Row = (
        String,
        String,
        String,
        String,
        i64,
        Option<String>,
        Option<String>,
        Option<i64>,
    );
    let rows: Vec<Row> = sql.query_as().fetch_all(conn).await?;
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.timestamp_millis())
    };
    for (id, d, msisdn, decided, control, sub, bought_at, price) in rows {
        let Some(at) = ms(&decided) else { continue };
        let bought = sub
            .zip(bought_at.as_deref().and_then(ms))
            .map(|(s, b)| (s, b, price.unwrap_or(0)));
        let key = (id, if by_day { d } else { String::new() });
        out.entry(key)
            .or_default()
            .add(msisdn, control == 1, at, bought);
    }
    Ok(out)
}

/// Treated against control of each rule that held anyone out, over all its decisions.
pub async fn rules_against_control(
    db: &Db,
    rules: &[&str],
) -> Result<HashMap<String, AgainstControl>, sqlx::Error> {
    if rules.is_empty() {
        return Ok(HashMap::new());
    }
    let mut conn = db.pool.acquire().await?;
    let cohorts = cohorts(&mut conn, "rule_id", rules, None, false).await?;
    Ok(cohorts
        .into_iter()
        .filter_map(|((rule, _), s)| Some((rule, AgainstControl::of(&s)?)))
        .collect())
}

/// A rule's or a campaign's counts on one day (script counts by the UTC day they were
/// counted, decisions by the operator's day).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub day: String,
    #[serde(flatten)]
    pub counts: Tally,
    /// Those decided on this day and held out against those reached; null when nobody was
    /// held out that day.
    pub against_control: Option<AgainstControl>,
}

/// Counts per day, oldest first; a day that counted nothing is left out.
pub async fn days(db: &Db, of: Of<'_>, span: Days) -> Result<Vec<Day>, ApiError> {
    let counts = per_day(db, of, &span.from.to_string(), &span.to.to_string())
        .await
        .map_err(ApiError::internal)?;
    let mut cohorts = if counts.iter().any(|d| d.counts.held_out() > 0) {
        let mut conn = db.pool.acquire().await?;
        cohorts(&mut conn, of.column(), &[of.id()], Some(span), true).await?
    } else {
        HashMap::new()
    };
    Ok(counts
        .into_iter()
        .map(|d| Day {
            against_control: cohorts
                .remove(&(of.id().to_string(), d.day.clone()))
                .and_then(|s| AgainstControl::of(&s)),
            day: d.day,
            counts: d.counts,
        })
        .collect())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignDays {
    pub campaign_id: String,
    pub from: String,
    pub to: String,
    /// Days with any decision, oldest first.
    pub days: Vec<Day>,
}

/// A campaign's decisions per day (the operator's day): sent, suppressed by reason,
/// delivered, accepted, declined, conversion (accepted over sent) and, on days with a control
/// group, uplift against it. Totals are in `GET /api/v1/campaigns/{id}/results`.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/counts", tag = "campaigns",
    params(("id" = String, Path), DaysParams),
    responses((status = 200, body = CampaignDays), (status = 400, body = crate::http::error::ErrorBody), (status = 403, body = crate::http::error::ErrorBody), (status = 404)))]
pub async fn campaign_counts(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<CampaignDays>, ApiError> {
    require_marketing_read(&p)?;
    let span = Days::parse(&q)?;
    crate::crud::load::<super::Campaign>(
        &mut *st.db.pool.acquire().await?,
        super::repo::all(),
        &id,
    )
    .await?;
    let days = days(&st.db, Of::Campaign(&id), span).await?;
    Ok(Json(CampaignDays {
        campaign_id: id,
        from: span.from.to_string(),
        to: span.to.to_string(),
        days,
    }))
}
