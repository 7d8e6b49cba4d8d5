//! Reading the counts that last: a rule's script counts from `rule_counts`, and the decisions
//! of a rule or a campaign by outcome from `recommendations`, in all or per day.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use serde::Serialize;

use crate::store::{Db, Sql};

/// Whose decisions are counted: a rule's (with its script counts) or a campaign's (whose
/// offers no script decided: it has decisions only).
#[derive(Debug, Clone, Copy)]
pub enum Of<'a> {
    Rule(&'a str),
    Campaign(&'a str),
}

impl<'a> Of<'a> {
    /// The `recommendations` column naming it.
    pub fn column(self) -> &'static str {
        match self {
            Of::Rule(_) => "rule_id",
            Of::Campaign(_) => "campaign_id",
        }
    }

    pub fn id(self) -> &'a str {
        match self {
            Of::Rule(id) | Of::Campaign(id) => id,
        }
    }
}

/// What a rule or a campaign did: its lasting script counts (rules only) and its decisions
/// by outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Tally {
    /// Events its script ran on, summed over every instance since counting began (0 for a
    /// campaign).
    pub evaluated: u64,
    /// Runs whose condition held.
    pub matched: u64,
    /// Runs that failed.
    pub errors: u64,
    /// Decisions that reached or are on their way to a channel (queued, deferred, sent,
    /// delivered, accepted, declined, expired).
    pub sent: u64,
    /// Decisions suppressed, by reason (`cooldown`, `control_group`, ...).
    pub suppressed: BTreeMap<String, u64>,
    /// Decisions delivered, or answered after delivery (accepted, declined).
    pub delivered: u64,
    pub accepted: u64,
    pub declined: u64,
    /// `accepted / sent`; null before anything was sent. Over `sent`, not `delivered`: the
    /// portal, Kafka and HTTP gateways without delivery reports never mark an offer
    /// delivered, so over `delivered` (where an answer counts as delivered) their offers
    /// would convert at nearly 100 %; every channel reports what it sent.
    pub conversion: Option<f64>,
}

impl Tally {
    /// Sets the script counts read back (evaluated, matched, errors).
    fn scripts(&mut self, evaluated: i64, matched: i64, errors: i64) {
        (self.evaluated, self.matched, self.errors) =
            (evaluated as u64, matched as u64, errors as u64);
    }

    /// Adds `n` decisions of one status and reason.
    pub fn decision(&mut self, status: &str, reason: &str, n: u64) {
        match status {
            "suppressed" => *self.suppressed.entry(reason.to_string()).or_default() += n,
            "queued" | "deferred" | "sent" | "expired" => self.sent += n,
            "delivered" => {
                self.sent += n;
                self.delivered += n;
            }
            "accepted" | "declined" => {
                self.sent += n;
                self.delivered += n;
                if status == "accepted" {
                    self.accepted += n;
                } else {
                    self.declined += n;
                }
            }
            _ => {}
        }
        self.conversion = (self.sent > 0).then(|| self.accepted as f64 / self.sent as f64);
    }

    /// Subscribers held out of the offer (reason `control_group`): only then is there an
    /// uplift to measure.
    pub fn held_out(&self) -> u64 {
        self.suppressed.get("control_group").copied().unwrap_or(0)
    }
}

/// Lasting totals of the given rules (all instances, all days kept).
pub async fn totals(db: &Db, rules: &[&str]) -> anyhow::Result<HashMap<String, Tally>> {
    let mut out: HashMap<String, Tally> = HashMap::new();
    if rules.is_empty() {
        return Ok(out);
    }
    let mut conn = db.pool.acquire().await.context("a database connection")?;
    let rows: Vec<(String, i64, i64, i64)> = of_rules(&mut conn, db.kind, rules, SCRIPT_SUMS)
        .await
        .context("summing rule_counts")?;
    for (rule, e, m, x) in rows {
        out.entry(rule).or_default().scripts(e, m, x);
    }
    let rows: Vec<(String, String, String, i64)> = of_rules(&mut conn, db.kind, rules, DECISIONS)
        .await
        .context("counting decisions per rule")?;
    for (rule, status, reason, n) in rows {
        out.entry(rule)
            .or_default()
            .decision(&status, &reason, n as u64);
    }
    Ok(out)
}

/// A campaign's decisions by outcome, in all.
pub async fn campaign_totals(db: &Db, campaign: &str) -> anyhow::Result<Tally> {
    let mut conn = db.pool.acquire().await.context("a database connection")?;
    let mut sql = Sql::new(
        "SELECT status, COALESCE(reason, ''), COUNT(*) FROM recommendations \
         WHERE campaign_id = ",
    );
    sql.bind(campaign)
        .push(" GROUP BY status, COALESCE(reason, '')");
    let rows: Vec<(String, String, i64)> = sql
        .query_as()
        .fetch_all(&mut *conn)
        .await
        .context("counting a campaign's decisions")?;
    let mut t = Tally::default();
    for (status, reason, n) in rows {
        t.decision(&status, &reason, n as u64);
    }
    Ok(t)
}

/// Counts on one day (UTC for script counts, the operator's day for decisions).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DayCounts {
    /// `YYYY-MM-DD`.
    pub day: String,
    #[serde(flatten)]
    pub counts: Tally,
}

/// The day a decision falls on: the operator's (`local_day`); rows from before `local_day`
/// existed by their own stamp's date.
const DECISION_DAY: &str = "COALESCE(local_day, SUBSTR(decided_at, 1, 10))";

/// Counts per day from `from` to `to` (inclusive, `YYYY-MM-DD`), days with nothing left
/// out, oldest first.
pub async fn per_day(db: &Db, of: Of<'_>, from: &str, to: &str) -> anyhow::Result<Vec<DayCounts>> {
    let mut days: BTreeMap<String, Tally> = BTreeMap::new();
    let mut conn = db.pool.acquire().await.context("a database connection")?;
    if let Of::Rule(rule) = of {
        let rows: Vec<(String, i64, i64, i64)> = Sql::new(
            "SELECT day, CAST(SUM(evaluated) AS BIGINT), CAST(SUM(matched) AS BIGINT), \
             CAST(SUM(errors) AS BIGINT) FROM rule_counts \
             WHERE rule_id = $1 AND day >= $2 AND day <= $3 GROUP BY day",
        )
        .bind_all([rule, from, to])
        .query_as()
        .fetch_all(&mut *conn)
        .await
        .context("reading rule_counts per day")?;
        for (day, e, m, x) in rows {
            days.entry(day).or_default().scripts(e, m, x);
        }
    }
    let rows: Vec<(String, String, String, i64)> = Sql::new(&format!(
        "SELECT d, status, reason, COUNT(*) FROM (SELECT {DECISION_DAY} AS d, status, \
         COALESCE(reason, '') AS reason FROM recommendations WHERE {} = $1) x \
         WHERE d >= $2 AND d <= $3 GROUP BY d, status, reason",
        of.column()
    ))
    .bind_all([of.id(), from, to])
    .query_as()
    .fetch_all(&mut *conn)
    .await
    .context("counting decisions per day")?;
    for (day, status, reason, n) in rows {
        days.entry(day)
            .or_default()
            .decision(&status, &reason, n as u64);
    }
    Ok(days
        .into_iter()
        .map(|(day, counts)| DayCounts { day, counts })
        .collect())
}

/// Per rule: its script counts summed, then its decisions by status and reason. Each query
/// is the text before and after the list of rule ids.
const SCRIPT_SUMS: (&str, &str) = (
    "SELECT rule_id, CAST(SUM(evaluated) AS BIGINT), CAST(SUM(matched) AS BIGINT), \
     CAST(SUM(errors) AS BIGINT) FROM rule_counts WHERE rule_id IN (",
    ") GROUP BY rule_id",
);
const DECISIONS: (&str, &str) = (
    "SELECT rule_id, status, COALESCE(reason, ''), COUNT(*) FROM recommendations \
     WHERE rule_id IN (",
    ") GROUP BY rule_id, status, COALESCE(reason, '')",
);

/// The rows of a query of `rules` (see [`SCRIPT_SUMS`]), each rule id bound.
async fn of_rules<R>(
    conn: &mut sqlx::AnyConnection,
    kind: crate::store::DbKind,
    rules: &[&str],
    (head, tail): (&str, &str),
) -> Result<Vec<R>, sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let mut sql = Sql::for_db(kind, head);
    in_list(&mut sql, rules);
    sql.push(tail);
    sql.query_as().fetch_all(conn).await
}

fn in_list(sql: &mut Sql, items: &[&str]) {
    for (i, r) in items.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(*r);
    }
}

trait BindAll {
    fn bind_all<const N: usize>(self, values: [&str; N]) -> Sql;
}

impl BindAll for Sql {
    /// Binds `values` to `$1..$N` already in the text.
    fn bind_all<const N: usize>(mut self, values: [&str; N]) -> Sql {
        self.args.extend(values.map(Into::into));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_count_by_outcome_and_suppressions_by_reason() {
        let mut t = Tally::default();
        assert_eq!(t.conversion, None, "nothing sent: no rate");
        t.decision("sent", "", 2);
        t.decision("delivered", "", 3);
        t.decision("accepted", "", 1);
        t.decision("declined", "", 4);
        t.decision("suppressed", "cooldown", 5);
        t.decision("suppressed", "control_group", 6);
        t.decision("failed", "", 7);
        assert_eq!((t.sent, t.delivered, t.accepted, t.declined), (10, 8, 1, 4));
        assert_eq!(t.suppressed["cooldown"], 5);
        assert_eq!(t.suppressed["control_group"], 6);
        assert_eq!(t.suppressed.len(), 2);
        assert_eq!(t.held_out(), 6);
        assert_eq!(t.conversion, Some(0.1), "accepted over sent");
    }
}
