//! Backtest jobs in the database: what each runs, how far it is and its result, so that any
//! instance answers for a job another one runs. Knows nothing of HTTP or of the engine.

use serde::Serialize;

use crate::store::{kept, new_id, now_text, written, Db, ResultExt, StoreError};

pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";

/// A running job that has not moved for this long died with the instance that ran it.
pub const STALE: chrono::Duration = chrono::Duration::seconds(60);

/// How far a job is: events taken by the replay over events to take (each set tested
/// reads every event: the tested set, then the published one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Progress {
    pub events_done: i64,
    pub events_total: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: String,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// What was asked: the set tested and the events it ran on.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// The published version the tested set is compared with.
    pub published_version: i64,
    pub progress: Progress,
    /// Once done.
    #[schema(value_type = Option<super::run::BacktestResult>)]
    pub result: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

type Row = (
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
);

const COLUMNS: &str = "id, status, spec, published_version, events_done, events_total, result, \
     error, created_by, created_at, updated_at, finished_at";

fn job_of(r: Row) -> Job {
    let mut job = Job {
        id: r.0,
        status: r.1,
        spec: serde_json::from_str(&r.2).unwrap_or(serde_json::Value::Null),
        published_version: r.3,
        progress: Progress {
            events_done: r.4,
            events_total: r.5,
        },
        result: r.6.and_then(|t| serde_json::from_str(&t).ok()),
        error: r.7,
        created_by: r.8,
        created_at: r.9,
        updated_at: r.10,
        finished_at: r.11,
    };
    let still = chrono::DateTime::parse_from_rfc3339(&job.updated_at)
        .map(|t| chrono::Utc::now() - t.with_timezone(&chrono::Utc) < STALE)
        .unwrap_or(true);
    if job.status == RUNNING && !still {
        job.status = FAILED.into();
        job.error = Some(format!(
            "the instance running it stopped before it finished (no progress since {}); start it again",
            job.updated_at
        ));
    }
    job
}

crate::kept! { Job in "backtests", noun "backtest", row Row, columns COLUMNS,
order "created_at DESC, id", of job_of }

/// Records a job that is about to run.
pub async fn create(
    db: &Db,
    spec: &serde_json::Value,
    published_version: i64,
    events_total: i64,
    created_by: &str,
) -> Result<Job, StoreError> {
    let id = new_id();
    let now = now_text();
    sqlx::query(
        "INSERT INTO backtests (id, status, spec, published_version, events_total, events_done, \
         created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $7)",
    )
    .bind(&id)
    .bind(RUNNING)
    .bind(spec.to_string())
    .bind(published_version)
    .bind(events_total)
    .bind(created_by)
    .bind(&now)
    .execute(&db.pool)
    .await
    .context("recording a backtest")?;
    written(kept(db, &id).await?)
}

/// Records how far a running job is.
pub async fn progress(db: &Db, id: &str, events_done: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE backtests SET events_done = $1, updated_at = $2 WHERE id = $3 AND status = $4",
    )
    .bind(events_done)
    .bind(now_text())
    .bind(id)
    .bind(RUNNING)
    .execute(&db.pool)
    .await
    .context("recording a backtest's progress")?;
    Ok(())
}

/// Records the end of a job: its result (JSON), or why it failed.
pub async fn finish(
    db: &Db,
    id: &str,
    events_done: i64,
    outcome: Result<String, String>,
) -> Result<(), StoreError> {
    let now = now_text();
    let (status, result, error) = match outcome {
        Ok(r) => (DONE, Some(r), None),
        Err(e) => (FAILED, None, Some(e)),
    };
    sqlx::query(
        "UPDATE backtests SET status = $1, result = $2, error = $3, events_done = $4, \
         updated_at = $5, finished_at = $5 WHERE id = $6",
    )
    .bind(status)
    .bind(result)
    .bind(error)
    .bind(events_done)
    .bind(&now)
    .bind(id)
    .execute(&db.pool)
    .await
    .context("recording a backtest's end")?;
    Ok(())
}
