//! What a rule achieved against its control group: subscribers it reached and those it held
//! out (`control_group`), and how many of each took the offering afterwards. The same measure
//! as a campaign's, with each subscriber's own decision time as the start.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use super::counts::cohorts;
use super::uplift::{lifts, GroupResult};
use crate::auth::Principal;
use crate::crm::segments::require_marketing_read;
use crate::crm::CrmState;
use crate::http::ApiError;

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
    let tally = cohorts(&mut conn, "rule_id", &[id.as_str()], None, false)
        .await?
        .into_values()
        .next()
        .unwrap_or_default();
    let (treated, control): (GroupResult, GroupResult) = tally.groups();
    let (uplift, uplift_ci, revenue_uplift, revenue_uplift_ci) = lifts(Some((&treated, &control)));
    Ok(Json(RuleResults {
        rule_id: id,
        treated,
        control,
        uplift,
        uplift_ci,
        revenue_uplift,
        revenue_uplift_ci,
    }))
}
