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
//!
//! Rows older than `counts.retention_days` are deleted by the flusher, at most once a day.
//! What `/metrics` and `/api/v1/engine/stats` show survives reloads in memory (`lifetime`);
//! the reads are in `read`.

mod lifetime;
mod read;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::NaiveDate;

pub use lifetime::{Lifetime, Reading};
pub use read::{campaign_totals, per_day, totals, DayCounts, Of, Tally};

use super::Pipeline;
use crate::periodic::{Every, FirstFailure};
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
    /// Days of rows kept (0: all).
    retention_days: u32,
    /// The last day old rows were deleted on (UTC).
    pruned: tokio::sync::Mutex<Option<NaiveDate>>,
}

/// Writes this instance's per-rule counts to the database.
#[derive(Clone)]
pub struct RuleCounter(Arc<Inner>);

impl RuleCounter {
    /// Flushes every [`FLUSH_EVERY`] until `stop`; the last flush is [`RuleCounter::flush`]
    /// at shutdown, after the workers have drained. Rows older than `retention_days` (0:
    /// none) are deleted once a day.
    pub fn start(
        db: Db,
        pipeline: Pipeline,
        retention_days: u32,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        let counter = RuleCounter(Arc::new(Inner {
            db,
            pipeline,
            instance: uuid::Uuid::new_v4().to_string(),
            seen: Default::default(),
            retention_days,
            pruned: Default::default(),
        }));
        let ticker = counter.clone();
        tokio::spawn(async move {
            let (mut every, mut failing) = (Every::new(FLUSH_EVERY, stop), FirstFailure::default());
            while every.tick().await {
                let done = async {
                    ticker.flush().await?;
                    ticker.prune(chrono::Utc::now().date_naive()).await
                };
                // Unwritten deltas stay in memory and go with the next flush.
                if let Some(e) = failing.of(done.await) {
                    tracing::warn!("writing per-rule counts: {e:#}");
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

    /// Deletes the rows of days more than `retention_days` before `today`, unless that was
    /// done already for `today` or a later day (every instance's flusher calls this; the
    /// delete is idempotent, so several instances doing it the same day only repeat it).
    /// Answers how many rows went, `None` when it was not due.
    pub async fn prune(&self, today: NaiveDate) -> anyhow::Result<Option<u64>> {
        if self.0.retention_days == 0 {
            return Ok(None);
        }
        let mut pruned = self.0.pruned.lock().await;
        if pruned.is_some_and(|d| d >= today) {
            return Ok(None);
        }
        let oldest_kept = today - chrono::Duration::days(i64::from(self.0.retention_days));
        let mut conn = self
            .0
            .db
            .writer
            .acquire()
            .await
            .context("a database connection")?;
        let mut sql = Sql::new("DELETE FROM rule_counts WHERE day < ");
        sql.bind(oldest_kept.to_string());
        let gone = sql
            .execute(&mut conn)
            .await
            .context("deleting old rule_counts")?;
        *pruned = Some(today);
        Ok(Some(gone))
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
