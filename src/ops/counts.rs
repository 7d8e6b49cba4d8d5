//! A rule's lasting counts per day, for charts over time. Totals per rule come with the rule
//! list (`GET /api/v1/rules`).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Serialize;

use crate::app::AppState;
use crate::auth::{Permission, Principal};
use crate::crm::campaigns::counts::{days, AgainstControl, Day};
use crate::http::days::{Days, DaysParams};
use crate::http::ApiError;
use crate::pipeline::counts::{Of, Tally};

/// A rule's lasting totals in the rule list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleTotals {
    #[serde(flatten)]
    pub counts: Tally,
    /// Those the rule reached against those it held out, over all its decisions; null when it
    /// never held anyone out (its own `control`, or the policy's `[control] holdout`).
    pub against_control: Option<AgainstControl>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleDays {
    pub rule_id: String,
    pub from: String,
    pub to: String,
    /// Days with any count, oldest first; a day left out counted nothing.
    pub days: Vec<Day>,
}

/// One rule's counts per day, summed over every instance: evaluated, matched and errors (by
/// the UTC day they were counted), its decisions by outcome with conversion (accepted over
/// sent), and uplift against its control group on days it held anyone out (by the operator's
/// day).
#[utoipa::path(get, path = "/api/v1/rules/{id}/counts", tag = "rules",
    params(("id" = String, Path), DaysParams),
    responses((status = 200, body = RuleDays), (status = 400, body = crate::http::error::ErrorBody), (status = 401), (status = 403, body = crate::http::error::ErrorBody)), security(("bearer" = [])))]
pub async fn rule_counts(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<RuleDays>, ApiError> {
    who.require(Permission::ReadRules)?;
    let span = Days::parse(&q)?;
    // This instance's latest counts first, so they show at once.
    state
        .rule_counts
        .flush()
        .await
        .map_err(ApiError::internal)?;
    let days = days(&state.db, Of::Rule(&id), span).await?;
    Ok(Json(RuleDays {
        rule_id: id,
        from: span.from.to_string(),
        to: span.to.to_string(),
        days,
    }))
}

/// Lasting totals of the given rules, each with treated against control when it held anyone
/// out.
pub async fn rule_totals(
    state: &AppState,
    ids: &[&str],
) -> anyhow::Result<HashMap<String, RuleTotals>> {
    let mut totals = crate::pipeline::counts::totals(&state.db, ids).await?;
    // Only rules with a control group: the rest have nothing to measure against, and the
    // list (which the console polls) need not read their decisions twice.
    let held: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| totals.get(*id).is_some_and(|t| t.held_out() > 0))
        .collect();
    let mut against =
        crate::crm::campaigns::counts::rules_against_control(&state.db, &held).await?;
    Ok(ids
        .iter()
        .map(|id| {
            (
                id.to_string(),
                RuleTotals {
                    counts: totals.remove(*id).unwrap_or_default(),
                    against_control: against.remove(*id),
                },
            )
        })
        .collect())
}
