//! Per-rule counts that last: each instance adds what its rules counted since its last flush
//! (evaluated, matched, errors) to `rule_counts`, one row per rule, instance and day, so the
//! totals are summed across instances and survive reloads and restarts.
//!
//! Why deltas from kept `Arc<Rule>`s rather than a hook in the swap: a reload swaps in new
//! `Rule` objects whose counters start at zero, while batches in flight may still count on
//! the old ones. The flusher keeps every rule object it has seen, with what it already wrote
//! for it, until a flush has read the object after it left the running set; so what the old
//! set counted after the last flush is written by the next one, and nothing is counted twice
//! (each object's delta is its counter minus what was written for that object).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::Pipeline;
use crate::rules::Rule;
use crate::store::{Db, Sql};

/// How often each instance writes its counts.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// Evaluated, matched, errors.
type Triple = (u64, u64, u64);

struct Seen {
    rule: Arc<Rule>,
    written: Triple,
}

struct Inner {
    db: Db,
    pipeline: Pipeline,
    /// This process: a restart is a new instance, whose counters start at zero.
    instance: String,
    /// Rule objects by address, with what was written for each; one flush at a time.
    seen: tokio::sync::Mutex<HashMap<usize, Seen>>,
}

/// Writes this instance's per-rule counts to the database.
#[derive(Clone)]
pub struct RuleCounter(Arc<Inner>);

impl RuleCounter {
    /// Flushes every [`FLUSH_EVERY`] until `stop`; the last flush is [`RuleCounter::flush`]
    /// at shutdown, after the workers have drained.
    pub fn start(db: Db, pipeline: Pipeline, mut stop: tokio::sync::watch::Receiver<bool>) -> Self {
        let counter = RuleCounter(Arc::new(Inner {
            db,
            pipeline,
            instance: uuid::Uuid::new_v4().to_string(),
            seen: Default::default(),
        }));
        let ticker = counter.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                match ticker.flush().await {
                    Ok(()) => failing = false,
                    // Unwritten deltas stay in memory and go with the next flush.
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!("writing per-rule counts: {e:#}");
                    }
                    Err(_) => {}
                }
            }
        });
        counter
    }

    /// Adds what was counted since the last flush to today's (UTC) row of each rule.
    pub async fn flush(&self) -> anyhow::Result<()> {
        let mut seen = self.0.seen.lock().await;
        let set = self.0.pipeline.rules();
        let mut running = std::collections::HashSet::new();
        for r in &set.rules {
            let key = Arc::as_ptr(r) as usize;
            running.insert(key);
            seen.entry(key).or_insert_with(|| Seen {
                rule: r.clone(),
                written: (0, 0, 0),
            });
        }
        let mut deltas: BTreeMap<&str, Triple> = BTreeMap::new();
        let mut now: HashMap<usize, Triple> = HashMap::new();
        for (key, s) in seen.iter() {
            let c = s.rule.stats.snapshot();
            now.insert(*key, c);
            let d = deltas.entry(s.rule.meta.id.as_str()).or_default();
            d.0 += c.0 - s.written.0;
            d.1 += c.1 - s.written.1;
            d.2 += c.2 - s.written.2;
        }
        deltas.retain(|_, d| *d != (0, 0, 0));
        if !deltas.is_empty() {
            let day = chrono::Utc::now().date_naive().to_string();
            add(&self.0.db, &self.0.instance, &day, &deltas)
                .await
                .context("adding per-rule counts")?;
        }
        // Written: remember it, and let go of rule objects no longer running.
        for (key, c) in now {
            if let Some(s) = seen.get_mut(&key) {
                s.written = c;
            }
        }
        seen.retain(|key, _| running.contains(key));
        Ok(())
    }
}

/// One upsert that adds each rule's delta to its row (portable: SQLite and PostgreSQL both
/// take `ON CONFLICT ... DO UPDATE` with `excluded`).
async fn add(
    db: &Db,
    instance: &str,
    day: &str,
    deltas: &BTreeMap<&str, Triple>,
) -> anyhow::Result<()> {
    let rows = deltas
        .iter()
        .map(|(rule, (e, m, x))| {
            vec![
                (*rule).into(),
                instance.into(),
                day.into(),
                (*e as i64).into(),
                (*m as i64).into(),
                (*x as i64).into(),
            ]
        })
        .collect();
    let mut sql = Sql::insert_many(
        "rule_counts",
        &[
            "rule_id",
            "instance_id",
            "day",
            "evaluated",
            "matched",
            "errors",
        ],
        rows,
    );
    sql.push(
        " ON CONFLICT (rule_id, instance_id, day) DO UPDATE SET \
         evaluated = rule_counts.evaluated + excluded.evaluated, \
         matched = rule_counts.matched + excluded.matched, \
         errors = rule_counts.errors + excluded.errors",
    );
    let mut conn = db.writer.acquire().await.context("a database connection")?;
    sql.execute(&mut conn)
        .await
        .context("upserting rule_counts")?;
    Ok(())
}

/// What a rule did: its lasting script counts and its decisions by outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Tally {
    /// Events its script ran on, summed over every instance since counting began.
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
}

impl Tally {
    fn decision(&mut self, status: &str, reason: &str, n: u64) {
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
    }
}

/// Lasting totals of the given rules (all instances, all days).
pub async fn totals(db: &Db, rules: &[&str]) -> anyhow::Result<HashMap<String, Tally>> {
    let mut out: HashMap<String, Tally> = HashMap::new();
    if rules.is_empty() {
        return Ok(out);
    }
    let mut conn = db.pool.acquire().await.context("a database connection")?;
    let mut sql = Sql::for_db(
        db.kind,
        "SELECT rule_id, CAST(SUM(evaluated) AS BIGINT), CAST(SUM(matched) AS BIGINT), \
         CAST(SUM(errors) AS BIGINT) FROM rule_counts WHERE rule_id IN (",
    );
    in_list(&mut sql, rules);
    sql.push(") GROUP BY rule_id");
    let rows: Vec<(String, i64, i64, i64)> = sql
        .query_as()
        .fetch_all(&mut *conn)
        .await
        .context("summing rule_counts")?;
    for (rule, e, m, x) in rows {
        let t = out.entry(rule).or_default();
        (t.evaluated, t.matched, t.errors) = (e as u64, m as u64, x as u64);
    }
    let mut sql = Sql::for_db(
        db.kind,
        "SELECT rule_id, status, COALESCE(reason, ''), COUNT(*) FROM recommendations \
         WHERE rule_id IN (",
    );
    in_list(&mut sql, rules);
    sql.push(") GROUP BY rule_id, status, COALESCE(reason, '')");
    let rows: Vec<(String, String, String, i64)> = sql
        .query_as()
        .fetch_all(&mut *conn)
        .await
        .context("counting decisions per rule")?;
    for (rule, status, reason, n) in rows {
        out.entry(rule)
            .or_default()
            .decision(&status, &reason, n as u64);
    }
    Ok(out)
}

/// A rule's counts on one day (UTC for script counts, the operator's day for decisions).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DayCounts {
    /// `YYYY-MM-DD`.
    pub day: String,
    #[serde(flatten)]
    pub counts: Tally,
}

/// One rule's counts per day from `from` to `to` (inclusive, `YYYY-MM-DD`), days with
/// nothing left out, oldest first.
pub async fn per_day(db: &Db, rule: &str, from: &str, to: &str) -> anyhow::Result<Vec<DayCounts>> {
    let mut days: BTreeMap<String, Tally> = BTreeMap::new();
    let mut conn = db.pool.acquire().await.context("a database connection")?;
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
        let t = days.entry(day).or_default();
        (t.evaluated, t.matched, t.errors) = (e as u64, m as u64, x as u64);
    }
    // Rows from before `local_day` existed are bucketed by their own stamp's date.
    let rows: Vec<(String, String, String, i64)> = Sql::new(
        "SELECT d, status, reason, COUNT(*) FROM (SELECT \
         COALESCE(local_day, SUBSTR(decided_at, 1, 10)) AS d, status, \
         COALESCE(reason, '') AS reason FROM recommendations WHERE rule_id = $1) x \
         WHERE d >= $2 AND d <= $3 GROUP BY d, status, reason",
    )
    .bind_all([rule, from, to])
    .query_as()
    .fetch_all(&mut *conn)
    .await
    .context("counting a rule's decisions per day")?;
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
    }
}
