//! Campaign SQL: records, state history, runs and results from the engine's tables.

use serde::{Deserialize, Serialize};

use super::uplift::{lifts, GroupResult, Tally as Subscribers};
use crate::crm::workflow::{logged, Children};
use crate::pipeline::counts::Tally;
use crate::store::{next_seq, now_text, Sql};

crate::record! {
    /// A marketing campaign (营销计划).
    #[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
    pub struct Campaign, new NewCampaign, patch CampaignPatch {
        id: String,
        name: String { new, patch },
        description: Option<String> { new, patch some },
        /// plan | submitted | approved | rejected | active | completed | cancelled
        state: String,
        segment_id: String { new, patch },
        budget_cents: i64 { new opt, patch },
        offer_code: String { new, patch },
        /// Message template; `{name}` and `{msisdn}` are filled in per recipient.
        message: String { new, patch },
        /// Channels in order of preference.
        channels: Vec<String> { new, patch },
        /// How long each offer stays valid.
        validity_secs: i64 {
            /// Default 7 days.
            new opt,
            patch
        },
        /// Rules attached to the campaign (for reporting and follow-ups).
        rule_ids: Vec<String> { new opt, patch },
        start_at: String { new, patch },
        end_at: String { new, patch },
        /// Percent of the audience held out as a control group (0 to 50), against which
        /// results measure uplift.
        control_pct: i64 {
            /// Percent of the audience held out as a control group, 0 to 50 (default 0).
            new opt,
            patch
        },
        created_by: String,
        submitted_by: Option<String>,
        /// Who approved or rejected it.
        decided_by: Option<String>,
        created_at: String,
        updated_at: String,
        version: i64,
    }
}

#[derive(sqlx::FromRow)]
pub struct Row {
    id: String,
    name: String,
    description: Option<String>,
    state: String,
    segment_id: String,
    budget_cents: i64,
    offer_code: String,
    message: String,
    channels: String,
    validity_secs: i64,
    rule_ids: String,
    start_at: String,
    end_at: String,
    control_pct: i64,
    created_by: String,
    submitted_by: Option<String>,
    decided_by: Option<String>,
    created_at: String,
    updated_at: String,
    version: i64,
}

impl From<Row> for Campaign {
    fn from(r: Row) -> Campaign {
        Campaign {
            id: r.id,
            name: r.name,
            description: r.description,
            state: r.state,
            segment_id: r.segment_id,
            budget_cents: r.budget_cents,
            offer_code: r.offer_code,
            message: r.message,
            channels: serde_json::from_str(&r.channels).unwrap_or_default(),
            validity_secs: r.validity_secs,
            rule_ids: serde_json::from_str(&r.rule_ids).unwrap_or_default(),
            start_at: r.start_at,
            end_at: r.end_at,
            control_pct: r.control_pct,
            created_by: r.created_by,
            submitted_by: r.submitted_by,
            decided_by: r.decided_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

crate::entity! { Campaign in "campaigns" as k, kind "campaign", row Row;
update name, description, state, segment_id, budget_cents, offer_code, message, channels,
    validity_secs, rule_ids, start_at, end_at, control_pct, submitted_by, decided_by;
stamp updated_at; insert created_by, created_at }

/// Every campaign: campaigns are not customer data, so there is no scope to apply.
pub fn all() -> Sql {
    Sql::new("campaigns k WHERE 1=1")
}

/// One entry of a campaign's state history.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Transition {
    pub id: String,
    pub campaign_id: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub actor_id: String,
    pub note: Option<String>,
    pub at: String,
}

logged! { Transition in "campaign_transitions" as h, kind "campaign_transition";
id, campaign_id, from_state, to_state, actor_id, note, at }

impl Transition {
    /// The history entry of `campaign_id` moving `from` -> `to`, now.
    pub fn new(
        campaign_id: &str,
        from: Option<&str>,
        to: &str,
        actor_id: &str,
        note: Option<&str>,
    ) -> Transition {
        Transition {
            id: crate::store::new_id(),
            campaign_id: campaign_id.into(),
            from_state: from.map(str::to_string),
            to_state: to.into(),
            actor_id: actor_id.into(),
            note: note.map(str::to_string),
            at: now_text(),
        }
    }
}

/// A campaign's history, oldest first.
pub const HISTORY: Children = Children::log::<Transition>("campaign_id", "h.seq", "h.id");

/// One launch: what was targeted and what the decision stage made of it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Run {
    pub id: String,
    pub campaign_id: String,
    pub actor_id: String,
    pub started_at: String,
    pub finished_at: String,
    /// Segment lines in the launcher's scope.
    pub targeted: i64,
    /// Recommendations the decision stage returned.
    pub decided: i64,
    /// Queued for (or already handed to) a channel by this run.
    pub sent: i64,
    /// Segment lines an earlier run of the campaign already decided for: skipped, so a
    /// launch again resumes and sends nothing twice.
    pub already_decided: i64,
    pub suppressed: i64,
    /// Suppression reason (`opt_out`, `frequency_cap`, ...) -> count.
    #[schema(value_type = Object)]
    pub suppressed_by_reason: std::collections::BTreeMap<String, i64>,
    pub batches: i64,
}

#[derive(sqlx::FromRow)]
pub struct RunRow {
    id: String,
    campaign_id: String,
    actor_id: String,
    started_at: String,
    finished_at: String,
    targeted: i64,
    decided: i64,
    sent: i64,
    already_decided: i64,
    suppressed: i64,
    suppressed_by_reason: String,
    batches: i64,
}

pub async fn insert_run(conn: &mut sqlx::AnyConnection, r: &Run) -> Result<(), sqlx::Error> {
    Sql::insert(
        "campaign_runs",
        vec![
            ("id", r.id.as_str().into()),
            ("campaign_id", r.campaign_id.as_str().into()),
            ("actor_id", r.actor_id.as_str().into()),
            ("started_at", r.started_at.as_str().into()),
            ("finished_at", r.finished_at.as_str().into()),
            ("targeted", r.targeted.into()),
            ("decided", r.decided.into()),
            ("sent", r.sent.into()),
            ("already_decided", r.already_decided.into()),
            ("suppressed", r.suppressed.into()),
            (
                "suppressed_by_reason",
                serde_json::to_string(&r.suppressed_by_reason)
                    .unwrap_or_default()
                    .into(),
            ),
            ("batches", r.batches.into()),
            ("seq", next_seq().into()),
        ],
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Of `msisdns`, the ones the campaign has a decision for already.
pub async fn decided_for(
    conn: &mut sqlx::AnyConnection,
    campaign_id: &str,
    msisdns: &[&str],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    if msisdns.is_empty() {
        return Ok(Default::default());
    }
    let mut sql = Sql::new("SELECT DISTINCT msisdn FROM recommendations WHERE campaign_id = ");
    sql.bind(campaign_id).push(" AND msisdn IN (");
    for (i, m) in msisdns.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(*m);
    }
    sql.push(")");
    let rows: Vec<(String,)> = sql.query_as().fetch_all(conn).await?;
    Ok(rows.into_iter().map(|(m,)| m).collect())
}

/// A campaign's launches, oldest first (a campaign that is launched again and again has as
/// many runs).
pub const RUNS: Children = Children::new(
    ("campaign_runs", "r", "campaign_id"),
    "r.id, r.campaign_id, r.actor_id, r.started_at, r.finished_at, r.targeted, r.decided, \
     r.sent, r.already_decided, r.suppressed, r.suppressed_by_reason, r.batches",
    "r.seq",
    "r.id",
);

impl From<RunRow> for Run {
    fn from(r: RunRow) -> Run {
        Run {
            id: r.id,
            campaign_id: r.campaign_id,
            actor_id: r.actor_id,
            started_at: r.started_at,
            finished_at: r.finished_at,
            targeted: r.targeted,
            decided: r.decided,
            sent: r.sent,
            already_decided: r.already_decided,
            suppressed: r.suppressed,
            suppressed_by_reason: serde_json::from_str(&r.suppressed_by_reason).unwrap_or_default(),
            batches: r.batches,
        }
    }
}

/// Statuses of recommendations that reached (or are on their way to) a channel.
pub const SENT_STATUSES: &str =
    "('queued', 'deferred', 'sent', 'delivered', 'accepted', 'declined', 'expired')";

/// What a campaign achieved, from the engine's `recommendations` and `offer_responses`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Results {
    pub campaign_id: String,
    /// Every decision, whatever became of it (failed ones too).
    pub decided: i64,
    pub sent: i64,
    pub suppressed: i64,
    /// Offers answered accepted and declined, as they stand now (a corrected answer counts
    /// as corrected).
    pub accepted: i64,
    pub declined: i64,
    /// Decisions by outcome, as a rule's `totals` count them: sent, suppressed by reason,
    /// delivered, accepted, declined and conversion (accepted over sent). Per day:
    /// `GET /api/v1/campaigns/{id}/counts`.
    pub counts: Tally,
    /// Sum of the catalog price of accepted offers (offer_code joined to product offering code).
    pub revenue_cents: i64,
    /// Explains how revenue was computed or why it is partial.
    pub revenue_note: Option<String>,
    /// Conversion rate of the treated minus that of the control group (null without a
    /// control group or before a launch).
    pub uplift: Option<f64>,
    /// 95 % confidence interval of `uplift` (normal approximation for two proportions).
    pub uplift_ci: Option<[f64; 2]>,
    /// Revenue per subscriber (cents, the catalog price of what they took after the first
    /// launch) of the treated minus that of the control group.
    pub revenue_uplift: Option<f64>,
    /// 95 % confidence interval of `revenue_uplift` (Welch).
    pub revenue_uplift_ci: Option<[f64; 2]>,
    /// Those the campaign reached, and how many converted: took the offering (a subscription
    /// to the product whose code is the offer code, on their line) after the first launch.
    pub treated: Option<GroupResult>,
    /// Those held out (`control_group`), and how many converted all the same.
    pub control: Option<GroupResult>,
    pub control_pct: i64,
}

/// Treated and control subscribers of a campaign, and how many of each converted since
/// `since` (the first launch): the same measure for both groups, so the difference is the
/// campaign's effect.
async fn groups(
    conn: &mut sqlx::AnyConnection,
    campaign_id: &str,
    since: &str,
) -> Result<(GroupResult, GroupResult), sqlx::Error> {
    let mut sql = Sql::new(
        "SELECT r.msisdn, CAST(CASE WHEN r.reason = 'control_group' THEN 1 ELSE 0 END AS BIGINT), \
         s.id, po.price_cents FROM recommendations r \
         LEFT JOIN lines l ON l.msisdn = r.msisdn \
         LEFT JOIN product_offerings po ON po.code = r.offer_code \
         LEFT JOIN subscriptions s ON s.line_id = l.id AND s.offering_id = po.id AND s.created_at >= ",
    );
    sql.bind(since)
        .push(" WHERE r.campaign_id = ")
        .bind(campaign_id)
        .push(&format!(
            " AND (r.reason = 'control_group' OR r.status IN {SENT_STATUSES})"
        ));
    let rows: Vec<(String, i64, Option<String>, Option<i64>)> =
        sql.query_as().fetch_all(&mut *conn).await?;
    let mut tally = Subscribers::default();
    for (msisdn, control, sub, price) in rows {
        // Purchases count from the first launch for everyone (`since`, in the join).
        let bought = sub.map(|id| (id, 0, price.unwrap_or(0)));
        tally.add(msisdn, control == 1, 0, bought);
    }
    Ok(tally.groups())
}

/// `counts`: the campaign's decisions by outcome (`pipeline::counts::campaign_totals`).
pub async fn results(
    conn: &mut sqlx::AnyConnection,
    c: &Campaign,
    counts: Tally,
) -> Result<Results, sqlx::Error> {
    let mut sql = Sql::new("SELECT COUNT(*) FROM recommendations WHERE campaign_id = ");
    sql.bind(c.id.as_str());
    let (decided,): (i64,) = sql.query_as().fetch_one(&mut *conn).await?;
    let mut rev = Sql::new(
        "SELECT CAST(COALESCE(SUM(po.price_cents), 0) AS BIGINT), COUNT(po.id), COUNT(*) \
         FROM recommendations r LEFT JOIN product_offerings po ON po.code = r.offer_code \
         WHERE r.id IN (SELECT o.recommendation_id FROM offer_responses o WHERE o.outcome = 'accepted') \
         AND r.campaign_id = ",
    );
    rev.bind(c.id.as_str());
    let (revenue_cents, priced, total): (i64, i64, i64) =
        rev.query_as().fetch_one(&mut *conn).await?;
    let mut first_run = Sql::new("SELECT MIN(started_at) FROM campaign_runs WHERE campaign_id = ");
    first_run.bind(c.id.as_str());
    let (since,): (Option<String>,) = first_run.query_as().fetch_one(&mut *conn).await?;
    let (treated, control) = match since {
        Some(since) if c.control_pct > 0 => {
            let (t, k) = groups(conn, &c.id, &since).await?;
            (Some(t), Some(k))
        }
        _ => (None, None),
    };
    let (uplift, uplift_ci, revenue_uplift, revenue_uplift_ci) =
        lifts(treated.as_ref().zip(control.as_ref()));
    let revenue_note = if priced < total {
        Some(format!(
            "{} accepted offer(s) have no catalog offering with code {}: counted as 0",
            total - priced,
            c.offer_code
        ))
    } else {
        None
    };
    Ok(Results {
        campaign_id: c.id.clone(),
        decided,
        sent: counts.sent as i64,
        suppressed: counts.suppressed.values().sum::<u64>() as i64,
        accepted: counts.accepted as i64,
        declined: counts.declined as i64,
        counts,
        revenue_cents,
        revenue_note,
        uplift,
        uplift_ci,
        revenue_uplift,
        revenue_uplift_ci,
        treated,
        control,
        control_pct: c.control_pct,
    })
}
