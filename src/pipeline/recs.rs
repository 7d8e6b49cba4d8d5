//! Recommendations as stored: idempotent inserts (the id is stable), status updates, queries.

use std::sync::{Arc, OnceLock};

use anyhow::Context;

use crate::event::{AttrValue, Attrs, Event, EventType, Known, Msisdn};
use crate::ports::{EventSink, Recommendation, Status};
use crate::store::{placeholders_after, Db, DbKind};

/// Rows per multi-row insert: 16 binds each stays far below both databases' bind limits.
const ROWS_PER_INSERT: usize = 64;

#[derive(Clone)]
pub struct RecStore {
    db: Db,
    /// The operator's zone, whose calendar day each decision is filed under (`local_day`).
    tz: chrono_tz::Tz,
    /// Where answers go on to the engine (`RecStore::feed_answers_to`).
    feedback: Arc<OnceLock<Arc<dyn EventSink>>>,
}

/// The outbox's bookkeeping for one offer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct DeliveryRecord {
    /// Delivery attempts started (each tries a few times in quick succession).
    pub attempts: u32,
    /// The provider's message id (an SMSC's), once it accepted the message.
    pub provider_id: Option<String>,
    /// When a transiently failed offer is tried again.
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A claimed delivery's outcome, to be written: `rec` carries the new status and reason;
/// `retry_at` (ms) gives it back to the outbox for a later attempt instead.
#[derive(Debug, Clone)]
pub struct Settled {
    pub rec: Recommendation,
    pub provider_id: Option<String>,
    pub retry_at: Option<i64>,
}

#[derive(Debug, Default, Clone)]
pub struct RecQuery {
    pub msisdn: Option<Msisdn>,
    pub rule_id: Option<String>,
    pub status: Option<Status>,
    pub channel: Option<String>,
    pub campaign_id: Option<String>,
    /// Only records stored after this sequence number (for polling).
    pub after_seq: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

impl Settled {
    /// A final outcome: the offer's new status, with the provider's id if one was given.
    pub fn done(rec: Recommendation, provider_id: Option<String>) -> Settled {
        Settled {
            rec,
            provider_id,
            retry_at: None,
        }
    }
}

/// The claim statement for `width` ids. The times come first in the text and the ids after
/// them as one list: SQLite's `?` are bound in the text's order (see `store::placeholders`),
/// PostgreSQL's numbered to match, so both take the same binds: the lease's end, now, (now
/// again when deferred offers may be among them), then the ids.
fn claim_sql(kind: DbKind, width: usize, deferred: bool) -> String {
    let [until, now, due] = match kind {
        DbKind::Sqlite => ["?"; 3],
        DbKind::Postgres => ["$1", "$2", "$3"],
    };
    if deferred {
        return format!(
            "UPDATE recommendations SET claimed_until = {until}, attempts = attempts + 1, status = 'queued' \
             WHERE (claimed_until IS NULL OR claimed_until < {now}) \
             AND (status = 'queued' OR (status = 'deferred' AND next_attempt_at <= {due})) \
             AND id IN {list} RETURNING id, attempts",
            list = placeholders_after(kind, 3, 1, width),
        );
    }
    // SQLite's `+status`: without statistics its planner would take the status index and
    // walk every queued offer for each claim (the whole backlog, after an outage); the `+`
    // leaves it the primary key for the ids.
    let status = match kind {
        DbKind::Sqlite => "+status",
        DbKind::Postgres => "status",
    };
    format!(
        "UPDATE recommendations SET claimed_until = {until}, attempts = attempts + 1 \
         WHERE (claimed_until IS NULL OR claimed_until < {now}) AND {status} = 'queued' \
         AND id IN {list} RETURNING id, attempts",
        list = placeholders_after(kind, 2, 1, width),
    )
}

/// The width a list of `n` is padded to: a power of two, so a few statement texts serve
/// every size.
fn padded(n: usize) -> usize {
    n.next_power_of_two()
}

fn seq_now() -> i64 {
    // Microseconds: increasing across restarts and instances, good enough for polling order.
    chrono::Utc::now().timestamp_micros()
}

impl RecStore {
    pub fn new(db: Db) -> Self {
        RecStore {
            db,
            tz: chrono_tz::Asia::Shanghai,
            feedback: Arc::default(),
        }
    }

    /// Files decisions under the calendar days of `tz` (the operator's, for statistics).
    pub fn in_zone(mut self, tz: chrono_tz::Tz) -> Self {
        self.tz = tz;
        self
    }

    /// Hands every answer recorded from now on to the engine as an `offer_response` event
    /// through `sink` (the app's intake: the pipeline, or the Kafka log), so the contact
    /// policy's suppression after declines and ignores sees it, in replays too.
    pub fn feed_answers_to(&self, sink: Arc<dyn EventSink>) {
        let _ = self.feedback.set(sink);
    }

    /// Records an answer to an offer: the response, the offer's new status, then the
    /// `offer_response` event. Returns the updated offer.
    pub async fn answer(
        &self,
        rec: &Recommendation,
        outcome: Status,
        actor: &str,
        reason: Option<&str>,
    ) -> anyhow::Result<Option<Recommendation>> {
        self.record_response(rec, outcome, actor, reason)
            .await
            .context("recording the response")?;
        let updated = self
            .set_status(&rec.id, outcome, reason)
            .await
            .context("setting the offer's status")?;
        if let Some(sink) = self.feedback.get() {
            sink.submit(vec![answer_event(rec, outcome)])
                .await
                .map_err(|e| anyhow::anyhow!("handing the answer to the engine: {e}"))?;
        }
        Ok(updated)
    }

    /// Inserts new recommendations; ones already stored (same id) are left as they are.
    /// Returns the ones that were new.
    pub async fn insert(
        &self,
        recs: &[Recommendation],
    ) -> Result<Vec<Recommendation>, sqlx::Error> {
        let mut tx = self.db.pool.begin().await?;
        let fresh = self.insert_in(&mut tx, recs).await?;
        tx.commit().await?;
        Ok(fresh)
    }

    /// Records offers that a better one replaced in their arbitration window: only while
    /// they still wait (`deferred`), so nothing that went out is rewritten.
    pub async fn revise_in(
        conn: &mut sqlx::AnyConnection,
        recs: &[Recommendation],
    ) -> Result<(), sqlx::Error> {
        for r in recs {
            let body = serde_json::to_string(r).expect("recommendations serialize");
            sqlx::query(
                "UPDATE recommendations SET status = $1, reason = $2, body = $3, next_attempt_at = NULL \
                 WHERE id = $4 AND status = 'deferred'",
            )
            .bind(r.status.as_str())
            .bind(r.reason.clone())
            .bind(body)
            .bind(r.id.as_str())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// [`RecStore::insert`] inside the caller's transaction (the worker's batch commit).
    /// Many rows per statement: one statement per row cost more than the engine did.
    pub async fn insert_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        recs: &[Recommendation],
    ) -> Result<Vec<Recommendation>, sqlx::Error> {
        const COLS: usize = 20;
        let mut fresh_ids = std::collections::HashSet::new();
        let base = seq_now();
        let kind = crate::store::DbKind::of(conn);
        for (n, chunk) in recs.chunks(ROWS_PER_INSERT).enumerate() {
            let sql = format!(
                "INSERT INTO recommendations (id, msisdn, rule_id, offer_code, channel, message, score, trigger_event_id, \
                 campaign_id, request_id, decided_at, expires_at, status, reason, body, seq, next_attempt_at, segment, local_day, service) VALUES {} \
                 ON CONFLICT (id) DO NOTHING RETURNING id",
                crate::store::placeholders(kind, chunk.len(), COLS)
            );
            let mut q = sqlx::query_as::<_, (String,)>(&sql);
            for (i, r) in chunk.iter().enumerate() {
                let body = serde_json::to_string(r).expect("recommendations serialize");
                q = q
                    .bind(r.id.clone())
                    .bind(r.msisdn.to_string())
                    .bind(r.rule_id.clone())
                    .bind(r.offer_code.clone())
                    .bind(r.channel.clone())
                    .bind(r.message.clone())
                    .bind(r.score)
                    .bind(r.trigger_event_id.clone())
                    .bind(r.campaign_id.clone())
                    .bind(r.request_id.clone())
                    .bind(r.decided_at.to_rfc3339())
                    .bind(r.expires_at.to_rfc3339())
                    .bind(r.status.as_str())
                    .bind(r.reason.clone())
                    .bind(body)
                    .bind(base + (n * ROWS_PER_INSERT + i) as i64)
                    // A deferred offer is due at the end of its quiet hours.
                    .bind(r.not_before.map(|t| t.timestamp_millis()))
                    .bind(r.explanation.as_ref().and_then(|e| e.segment.clone()))
                    .bind(
                        r.decided_at
                            .with_timezone(&self.tz)
                            .format("%Y-%m-%d")
                            .to_string(),
                    )
                    .bind(i32::from(r.service));
            }
            fresh_ids.extend(q.fetch_all(&mut *conn).await?.into_iter().map(|(id,)| id));
        }
        Ok(recs
            .iter()
            .filter(|r| fresh_ids.contains(&r.id))
            .cloned()
            .collect())
    }

    /// Queued and deferred offers on `channel` that are due for delivery, oldest first:
    /// nobody holds a claim on them and their next attempt (after a transient failure, or
    /// the end of the quiet hours) is not in the future.
    /// Each comes with whether an earlier send was interrupted: a claim that lapsed without
    /// an outcome means a deliverer died mid-send, and the message may already be out.
    pub async fn due(
        &self,
        channel: &str,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<(Recommendation, bool)>, sqlx::Error> {
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT body, claimed_until FROM recommendations WHERE status IN ('queued', 'deferred') AND channel = $1 \
             AND (claimed_until IS NULL OR claimed_until < $2) \
             AND (next_attempt_at IS NULL OR next_attempt_at <= $2) ORDER BY seq LIMIT $3",
        )
        .bind(channel)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(b, claim)| Some((serde_json::from_str(&b).ok()?, claim.is_some())))
            .collect())
    }

    /// Takes the right to deliver a queued (or due deferred) recommendation until `until_ms`,
    /// counting the attempt before anything is sent; a deferred one becomes queued. `None` when
    /// it is no longer queued or another deliverer holds an unexpired claim: then it is not
    /// sent. Otherwise the attempt number.
    pub async fn claim(
        &self,
        id: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<u32>, sqlx::Error> {
        let claimed = self.claim_many(&[id], now_ms, until_ms, true).await?;
        Ok(claimed.first().map(|(_, attempt)| *attempt))
    }

    /// [`RecStore::claim`] for many offers in one statement (the outbox claims what its lane
    /// has queued at once: a write per offer was most of the deliverer's cost): the ids
    /// claimed, each with its attempt number. `deferred`: some of them may be offers that
    /// waited for their time, which the claim makes queued again; without it only queued
    /// offers are taken (the status is then left as it is, which spares its two indexes a
    /// rewrite per offer). Offers handed over as queued are claimed without it: a deferred
    /// one among them is not taken (the sweep brings it back as deferred when it is due).
    pub async fn claim_many(
        &self,
        ids: &[&str],
        now_ms: i64,
        until_ms: i64,
        deferred: bool,
    ) -> Result<Vec<(String, u32)>, sqlx::Error> {
        let Some(last) = ids.last() else {
            return Ok(Vec::new());
        };
        let width = padded(ids.len());
        let sql = claim_sql(self.db.kind, width, deferred);
        let mut q = sqlx::query_as::<_, (String, i64)>(&sql)
            .bind(until_ms)
            .bind(now_ms);
        if deferred {
            q = q.bind(now_ms);
        }
        // The list is padded with the last id (an id twice in `IN` is one row) to a few
        // widths, so the statements stay prepared instead of parsed for every round size.
        for id in ids
            .iter()
            .chain(std::iter::repeat_n(last, width - ids.len()))
        {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(&self.db.writer).await?;
        Ok(rows.into_iter().map(|(id, n)| (id, n as u32)).collect())
    }

    /// Writes the outcomes of claimed deliveries: the final ones (status, reason and the
    /// provider's id together) in one statement per 64, the ones to try again later each in
    /// its own; in one transaction when there is more than one statement. An offer answered
    /// while its send was under way keeps its answer: only the provider's id is added to it.
    pub async fn settle(&self, outcomes: &[Settled]) -> anyhow::Result<()> {
        let finals: Vec<&Settled> = outcomes.iter().filter(|o| o.retry_at.is_none()).collect();
        let retries = outcomes.len() - finals.len();
        if retries == 0 && finals.len() <= ROWS_PER_INSERT {
            // One statement commits alone: no BEGIN and COMMIT to hand to the database.
            let mut conn = self.db.writer.acquire().await?;
            return self.settle_finals(&mut conn, &finals).await;
        }
        let mut tx = crate::store::begin_write(&self.db).await?;
        for chunk in finals.chunks(ROWS_PER_INSERT) {
            self.settle_finals(&mut tx, chunk).await?;
        }
        for o in outcomes.iter().filter(|o| o.retry_at.is_some()) {
            sqlx::query(
                "UPDATE recommendations SET claimed_until = NULL, next_attempt_at = $1, reason = $2, body = $3 \
                 WHERE id = $4 AND status = 'queued'",
            )
            .bind(o.retry_at)
            .bind(o.rec.reason.clone())
            .bind(serde_json::to_string(&o.rec).expect("recommendations serialize"))
            .bind(o.rec.id.as_str())
            .execute(&mut *tx)
            .await
            .context("rescheduling a delivery")?;
        }
        tx.commit().await.context("committing delivery outcomes")?;
        Ok(())
    }

    /// Up to 64 final outcomes in one statement, padded like the claims' lists (the same
    /// outcome twice writes the same values).
    async fn settle_finals(
        &self,
        conn: &mut sqlx::AnyConnection,
        finals: &[&Settled],
    ) -> anyhow::Result<()> {
        let Some(last) = finals.last() else {
            return Ok(());
        };
        let width = padded(finals.len());
        let rows = placeholders_after(self.db.kind, 1, width, 5);
        let seq = match self.db.kind {
            DbKind::Sqlite => "?",
            DbKind::Postgres => "$1",
        };
        // `seq` is bound, not written into the text: a text that changes with the clock is
        // parsed anew every time and crowds the prepared statements out of the cache.
        let sql = format!(
            "UPDATE recommendations SET \
             seq = {seq}, \
             provider_id = COALESCE(v.column5, recommendations.provider_id), \
             status = CASE WHEN recommendations.status = 'queued' THEN v.column2 ELSE recommendations.status END, \
             reason = CASE WHEN recommendations.status = 'queued' THEN v.column3 ELSE recommendations.reason END, \
             body = CASE WHEN recommendations.status = 'queued' THEN v.column4 ELSE recommendations.body END \
             FROM (VALUES {rows}) AS v WHERE recommendations.id = v.column1",
        );
        let mut q = sqlx::query(&sql).bind(seq_now());
        let padding = std::iter::repeat_n(last, width - finals.len());
        for o in finals.iter().chain(padding) {
            q = q
                .bind(o.rec.id.as_str())
                .bind(o.rec.status.as_str())
                .bind(o.rec.reason.clone())
                .bind(serde_json::to_string(&o.rec).expect("recommendations serialize"))
                .bind(o.provider_id.clone());
        }
        q.execute(&mut *conn)
            .await
            .context("recording delivery outcomes")?;
        Ok(())
    }

    /// Answers per offer code and segment: (code, segment, accepted, declined or ignored),
    /// what the propensity model learns from. The latest answer to an offer counts, once;
    /// offers decided without a segment count as `standard`.
    pub async fn answer_counts(&self) -> Result<Vec<(String, String, u64, u64)>, sqlx::Error> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT offer_code, COALESCE(segment, 'standard'), \
             COALESCE(SUM(CASE WHEN status = 'accepted' THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN status IN ('declined', 'expired') THEN 1 ELSE 0 END), 0) \
             FROM recommendations WHERE id IN (SELECT recommendation_id FROM offer_responses) \
             GROUP BY offer_code, COALESCE(segment, 'standard')",
        )
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(code, segment, yes, no)| (code, segment, yes.max(0) as u64, no.max(0) as u64))
            .collect())
    }

    /// How delivery of one offer stands: attempts so far, the provider's id, the next try.
    pub async fn delivery(&self, id: &str) -> Result<Option<DeliveryRecord>, sqlx::Error> {
        let row: Option<(i64, Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT attempts, provider_id, next_attempt_at FROM recommendations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.map(|(attempts, provider_id, next)| DeliveryRecord {
            attempts: attempts as u32,
            provider_id,
            next_attempt_at: next.and_then(chrono::DateTime::from_timestamp_millis),
        }))
    }

    /// Sets a new status; returns the updated record.
    pub async fn set_status(
        &self,
        id: &str,
        status: Status,
        reason: Option<&str>,
    ) -> Result<Option<Recommendation>, sqlx::Error> {
        self.set_delivery(id, status, reason, None).await
    }

    /// Records a channel's answer: the status and the provider's message id, in one write
    /// (a receipt or a reader never sees the one without the other).
    pub async fn set_delivery(
        &self,
        id: &str,
        status: Status,
        reason: Option<&str>,
        provider_id: Option<&str>,
    ) -> Result<Option<Recommendation>, sqlx::Error> {
        let Some(mut r) = self.get(id).await? else {
            return Ok(None);
        };
        r.status = status;
        r.reason = reason.map(str::to_string);
        let body = serde_json::to_string(&r).expect("recommendations serialize");
        sqlx::query(
            "UPDATE recommendations SET status = $1, reason = $2, body = $3, seq = $4, \
             provider_id = COALESCE($5, provider_id) WHERE id = $6",
        )
        .bind(status.as_str())
        .bind(r.reason.clone())
        .bind(body)
        .bind(seq_now())
        .bind(provider_id)
        .bind(id)
        .execute(&self.db.pool)
        .await?;
        Ok(Some(r))
    }

    /// The recommendation a provider knows as `provider_id` on `channel`.
    pub async fn by_provider_id(
        &self,
        channel: &str,
        provider_id: &str,
    ) -> Result<Option<Recommendation>, sqlx::Error> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT body FROM recommendations WHERE channel = $1 AND provider_id = $2",
        )
        .bind(channel)
        .bind(provider_id)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.and_then(|(b,)| serde_json::from_str(&b).ok()))
    }

    /// The provider's message id, once a channel has given one.
    pub async fn provider_id(&self, id: &str) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT provider_id FROM recommendations WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.db.pool)
                .await?;
        Ok(row.and_then(|(p,)| p))
    }

    pub async fn get(&self, id: &str) -> Result<Option<Recommendation>, sqlx::Error> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT body FROM recommendations WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.db.pool)
                .await?;
        Ok(row.and_then(|(b,)| serde_json::from_str(&b).ok()))
    }

    /// Newest first (or oldest first when polling with `after_seq`), with the total count.
    pub async fn list(&self, q: &RecQuery) -> Result<(Vec<Recommendation>, i64), sqlx::Error> {
        let mut conds = Vec::new();
        let mut args: Vec<String> = Vec::new();
        let mut push = |cond: &str, v: String| {
            args.push(v);
            conds.push(format!("{cond} = ${}", args.len()));
        };
        if let Some(m) = q.msisdn {
            push("msisdn", m.to_string());
        }
        if let Some(r) = &q.rule_id {
            push("rule_id", r.clone());
        }
        if let Some(s) = q.status {
            push("status", s.as_str().to_string());
        }
        if let Some(c) = &q.channel {
            push("channel", c.clone());
        }
        if let Some(c) = &q.campaign_id {
            push("campaign_id", c.clone());
        }
        let mut where_sql = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        if let Some(after) = q.after_seq {
            where_sql.push_str(if conds.is_empty() { " WHERE " } else { " AND " });
            where_sql.push_str(&format!("seq > {after}"));
        }
        let order = if q.after_seq.is_some() {
            "seq ASC"
        } else {
            "decided_at DESC, seq DESC"
        };
        let sql = format!(
            "SELECT body FROM recommendations{where_sql} ORDER BY {order} LIMIT {} OFFSET {}",
            q.limit.clamp(1, 1000),
            q.offset.max(0)
        );
        let count_sql = format!("SELECT COUNT(*) FROM recommendations{where_sql}");
        let mut query = sqlx::query_as::<_, (String,)>(&sql);
        let mut count = sqlx::query_as::<_, (i64,)>(&count_sql);
        for a in &args {
            query = query.bind(a.clone());
            count = count.bind(a.clone());
        }
        let rows = query.fetch_all(&self.db.pool).await?;
        let (total,) = count.fetch_one(&self.db.pool).await?;
        Ok((
            rows.into_iter()
                .filter_map(|(b,)| serde_json::from_str(&b).ok())
                .collect(),
            total,
        ))
    }

    pub async fn record_response(
        &self,
        rec: &Recommendation,
        outcome: Status,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO offer_responses (id, recommendation_id, msisdn, outcome, reason, actor, channel, responded_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&rec.id)
        .bind(rec.msisdn.to_string())
        .bind(outcome.as_str())
        .bind(reason.map(str::to_string))
        .bind(actor)
        .bind(&rec.channel)
        .bind(crate::store::ts_text(chrono::Utc::now()))
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }
}

/// The `offer_response` event of an answer, at the time it was given. Its id is stable per
/// offer and outcome, so a repeated answer is recognised as a duplicate.
pub fn answer_event(rec: &Recommendation, outcome: Status) -> Event {
    let kind = match outcome {
        Status::Accepted => "accepted",
        Status::Declined => "declined",
        _ => "ignored",
    };
    let mut attrs = Attrs::default();
    for (k, v) in [
        ("recommendation_id", rec.id.as_str()),
        ("rule_id", rec.rule_id.as_str()),
        ("offer_code", rec.offer_code.as_str()),
        ("outcome", kind),
        ("channel", rec.channel.as_str()),
    ] {
        attrs.insert(k, AttrValue::Str(v.into()));
    }
    Event {
        id: format!("answer-{}-{kind}", rec.id).into(),
        kind: EventType::Known(Known::OfferResponse),
        msisdn: rec.msisdn,
        ts: chrono::Utc::now().with_timezone(rec.decided_at.offset()),
        attrs,
    }
}

#[cfg(test)]
mod claim_tests {
    use super::*;

    /// A claim finds its offers by id, whatever the backlog: on SQLite (no statistics) the
    /// planner once took the status index and walked every queued offer for each claim.
    #[tokio::test]
    async fn a_claim_looks_its_offers_up_by_id_not_through_the_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
        let db = Db::connect(&url, 1).await.unwrap();
        for deferred in [false, true] {
            let sql = format!(
                "EXPLAIN QUERY PLAN {}",
                claim_sql(DbKind::Sqlite, 4, deferred)
            );
            let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&sql)
                .bind(1_i64)
                .bind(1_i64);
            if deferred {
                q = q.bind(1_i64);
            }
            for id in ["a", "b", "c", "d"] {
                q = q.bind(id);
            }
            let plan: Vec<String> = q
                .fetch_all(&db.pool)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.3)
                .collect();
            assert!(
                plan.iter()
                    .any(|p| p.contains("sqlite_autoindex_recommendations_1")),
                "deferred {deferred}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|p| p.contains("recommendations_status")),
                "deferred {deferred}: {plan:?}"
            );
        }
    }
}
