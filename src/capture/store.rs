//! Captures and their events in the database. Knows nothing of HTTP or of the tap: it keeps
//! what was asked for, and appends events without ever passing a capture's limit, even with
//! several instances recording into it at once.

use serde::Serialize;

use crate::store::{
    begin_write, kept, new_id, now_text, placeholders, written, Db, ResultExt, StoreError,
};

/// A capture as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Capture {
    pub id: String,
    pub name: String,
    /// The event types recorded; absent: every type.
    pub types: Option<Vec<String>>,
    /// The numbers recorded; absent: every number.
    pub msisdns: Option<Vec<String>>,
    /// Recording ends after this many events.
    pub limit: i64,
    /// Recording ends at this time, if the limit is not reached first.
    pub until: Option<String>,
    /// `running` or `ended`.
    pub status: String,
    /// Why it ended: `limit`, `until` or `stopped`.
    pub ended_because: Option<String>,
    /// Events recorded so far.
    pub events: i64,
    /// Events that matched but were dropped because the recorder fell behind (ingest is never
    /// held up for a capture).
    pub dropped: i64,
    pub created_by: String,
    pub created_at: String,
    pub ended_at: Option<String>,
}

pub const RUNNING: &str = "running";
pub const ENDED: &str = "ended";

type Row = (
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
    String,
    Option<String>,
    i64,
    i64,
    String,
    String,
    Option<String>,
);

const COLUMNS: &str = "id, name, types, msisdns, max_events, stop_at, status, ended_because, \
     events, dropped, created_by, created_at, ended_at";

fn list_of(text: Option<String>) -> Option<Vec<String>> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn capture_of(r: Row) -> Capture {
    Capture {
        id: r.0,
        name: r.1,
        types: list_of(r.2),
        msisdns: list_of(r.3),
        limit: r.4,
        until: r.5,
        status: r.6,
        ended_because: r.7,
        events: r.8,
        dropped: r.9,
        created_by: r.10,
        created_at: r.11,
        ended_at: r.12,
    }
}

crate::kept! { Capture in "captures", noun "capture", row Row, columns COLUMNS,
order "created_at DESC, id", of capture_of }

/// What a new capture records.
pub struct NewCapture<'a> {
    pub name: &'a str,
    pub types: Option<&'a [String]>,
    pub msisdns: Option<&'a [String]>,
    pub limit: i64,
    /// RFC 3339 in UTC (`store::ts_text`).
    pub until: Option<String>,
    pub created_by: &'a str,
}

pub async fn create(db: &Db, c: NewCapture<'_>) -> Result<Capture, StoreError> {
    let id = new_id();
    let json = |l: Option<&[String]>| l.map(|l| serde_json::Value::from(l).to_string());
    sqlx::query(
        "INSERT INTO captures (id, name, types, msisdns, max_events, stop_at, status, events, \
         dropped, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, $8, $9)",
    )
    .bind(&id)
    .bind(c.name)
    .bind(json(c.types))
    .bind(json(c.msisdns))
    .bind(c.limit)
    .bind(c.until)
    .bind(RUNNING)
    .bind(c.created_by)
    .bind(now_text())
    .execute(&db.pool)
    .await
    .context("recording a capture")?;
    written(kept(db, &id).await?)
}

/// The captures recording now, after ending those whose time is up. Reads only, unless
/// one's time is up: every instance asks every `capture.poll_ms`.
pub async fn running(db: &Db) -> Result<Vec<Capture>, StoreError> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM captures WHERE status = $1 ORDER BY created_at, id"
    ))
    .bind(RUNNING)
    .fetch_all(&db.pool)
    .await
    .context("listing running captures")?;
    let now = now_text();
    let mut out = Vec::with_capacity(rows.len());
    for c in rows.into_iter().map(capture_of) {
        // Both are `store::ts_text`, which sorts as time.
        if c.until.as_ref().is_some_and(|u| *u <= now) {
            end(db, &c.id, "until").await?;
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Ends a running capture (`because`: `stopped`); an ended one stays as it is.
pub async fn end(db: &Db, id: &str, because: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE captures SET status = $1, ended_because = $2, ended_at = $3 \
         WHERE id = $4 AND status = $5",
    )
    .bind(ENDED)
    .bind(because)
    .bind(now_text())
    .bind(id)
    .bind(RUNNING)
    .execute(&db.writer)
    .await
    .context("ending a capture")?;
    Ok(())
}

/// Removes a capture and its events; false when there was none.
pub async fn delete(db: &Db, id: &str) -> Result<bool, StoreError> {
    let mut tx = begin_write(db).await?;
    // The row first: an append under way finishes before, and one after finds no capture
    // (else its events could land between the two deletes and block the second).
    sqlx::query("UPDATE captures SET status = $1 WHERE id = $2")
        .bind(ENDED)
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("locking a capture")?;
    sqlx::query("DELETE FROM capture_events WHERE capture_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("removing a capture's events")?;
    let done = sqlx::query("DELETE FROM captures WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("removing a capture")?;
    tx.commit()
        .await
        .context("committing a capture's removal")?;
    Ok(done.rows_affected() > 0)
}

/// Counts events dropped by an instance's tap.
pub async fn add_dropped(db: &Db, id: &str, n: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE captures SET dropped = dropped + $1 WHERE id = $2")
        .bind(n)
        .bind(id)
        .execute(&db.writer)
        .await
        .context("counting a capture's dropped events")?;
    Ok(())
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Events written (fewer than given when the limit came first).
    pub taken: usize,
    /// The capture records no more: it reached its limit now, or had ended before.
    pub ended: bool,
}

/// Rows per insert statement: 4 parameters each, well under either database's bound.
const ROWS_PER_INSERT: usize = 200;

/// Appends `events` (number, event JSON), in order, to a running capture, up to its limit;
/// reaching the limit ends it. Instances appending at once take turns on the capture's row.
pub async fn append(
    db: &Db,
    id: &str,
    events: &[(String, String)],
) -> Result<Appended, StoreError> {
    let mut tx = begin_write(db).await?;
    // A write first: on PostgreSQL it locks the row, so a concurrent append waits and then
    // reads the count this one leaves (SQLite has one writer anyway).
    sqlx::query("UPDATE captures SET events = events WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("locking a capture")?;
    let row: Option<(i64, i64, String)> =
        sqlx::query_as("SELECT events, max_events, status FROM captures WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .context("reading a capture's count")?;
    let Some((count, max, status)) = row else {
        return Ok(Appended {
            taken: 0,
            ended: true,
        });
    };
    if status != RUNNING {
        return Ok(Appended {
            taken: 0,
            ended: true,
        });
    }
    let room = (max - count).max(0) as usize;
    let take = &events[..events.len().min(room)];
    for (i, part) in take.chunks(ROWS_PER_INSERT).enumerate() {
        let sql = format!(
            "INSERT INTO capture_events (capture_id, seq, msisdn, event) VALUES {}",
            placeholders(db.kind, part.len(), 4)
        );
        let mut q = sqlx::query(&sql);
        for (j, (msisdn, event)) in part.iter().enumerate() {
            let seq = count + (i * ROWS_PER_INSERT + j) as i64 + 1;
            q = q.bind(id).bind(seq).bind(msisdn).bind(event);
        }
        q.execute(&mut *tx)
            .await
            .context("recording captured events")?;
    }
    let now = count + take.len() as i64;
    let full = now >= max;
    sqlx::query(
        "UPDATE captures SET events = $1, status = $2, ended_because = $3, ended_at = $4 \
         WHERE id = $5",
    )
    .bind(now)
    .bind(if full { ENDED } else { RUNNING })
    .bind(full.then_some("limit"))
    .bind(full.then(now_text))
    .bind(id)
    .execute(&mut *tx)
    .await
    .context("counting captured events")?;
    tx.commit().await.context("committing captured events")?;
    Ok(Appended {
        taken: take.len(),
        ended: full,
    })
}

/// Up to `limit` events after number `after` and at most number `upto`, in order, each
/// with its number.
pub async fn events(
    db: &Db,
    id: &str,
    after: i64,
    upto: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, StoreError> {
    sqlx::query_as(
        "SELECT seq, event FROM capture_events WHERE capture_id = $1 AND seq > $2 AND seq <= $3 \
         ORDER BY seq LIMIT $4",
    )
    .bind(id)
    .bind(after)
    .bind(upto)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
    .context("reading captured events")
}
