//! Starting a backtest and running it in the background: the sets are resolved and checked
//! and the events read before the job is recorded (so a mistake is answered at once), then
//! the replay runs off the async threads while its progress is written every half second.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;

use super::run::{self, Rates, Sets};
use super::store::{self, Job};
use super::BacktestState;
use crate::authoring::check::Problem;
use crate::authoring::files::Files;
use crate::authoring::{publish, store as rules};
use crate::store::StoreError;

/// The set to test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tested {
    /// The published version itself.
    Published,
    /// A published version by number (an older one, to compare with the running one).
    Version(i64),
    /// The published version with these drafts applied, as a publish of them would run.
    Drafts(Vec<String>),
}

/// The events to run it on.
pub enum Events {
    Capture(String),
    Upload(Bytes),
}

/// Why a backtest was not started.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}: {1}")]
    Field(&'static str, String),
    /// The tested set does not pass its checks.
    #[error("the rule set does not pass its checks")]
    Invalid(Vec<Problem>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// How often a running job's progress is written.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Captured events read from the database per query.
const PAGE: i64 = 5000;

/// The files of the set `t` names; `active` is the published set.
async fn files_of(st: &BacktestState, t: &Tested, active: &Files) -> Result<Files, Refusal> {
    let db = st.sync.db();
    match t {
        Tested::Published => Ok(active.clone()),
        Tested::Version(n) => {
            if *n < 1 || rules::version(db, *n).await?.is_none() {
                return Err(Refusal::NotFound(format!("rule version {n}")));
            }
            Ok(rules::files_of(db, *n).await?)
        }
        Tested::Drafts(ids) => {
            let mut files = active.clone();
            let mut paths = std::collections::BTreeSet::new();
            for id in ids {
                let d = crate::store::kept::<rules::Draft>(db, id)
                    .await?
                    .ok_or_else(|| Refusal::NotFound(format!("rule draft {id}")))?;
                if !paths.insert(d.path.clone()) {
                    return Err(Refusal::Field(
                        "drafts",
                        format!("two of the drafts change {}: test one at a time", d.path),
                    ));
                }
                publish::apply(&mut files, &d);
            }
            Ok(files)
        }
    }
}

/// The events a job runs on, as far as the request reads them: a capture is read in the
/// background, so a large one does not hold up the answer.
enum Input {
    Capture { id: String, upto: i64 },
    Bytes(Vec<u8>),
}

/// The first `upto` events of a capture as one NDJSON file, in the order recorded; the job
/// is touched after each page so that it does not look abandoned while a large one loads.
async fn captured(
    db: &crate::store::Db,
    job: &str,
    id: &str,
    upto: i64,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let rows = crate::capture::store::events(db, id, after, upto, PAGE).await?;
        let Some(last) = rows.last().map(|r| r.0) else {
            break;
        };
        for (_, ev) in rows {
            out.extend_from_slice(ev.as_bytes());
            out.push(b'\n');
        }
        after = last;
        store::progress(db, job, 0).await?;
    }
    Ok(out)
}

/// The acceptance rates expected acceptances are counted with (see [`Rates`]).
async fn rates(st: &BacktestState) -> Result<Rates, Refusal> {
    let policy = st.sync.pipeline().policy();
    if let Some(learned) = &policy.propensity {
        return Ok(Rates::Learned(Arc::clone(&learned.current())));
    }
    let counts = st
        .sync
        .pipeline()
        .deps
        .recs
        .answer_counts()
        .await
        .map_err(|e| Refusal::Internal(anyhow::Error::new(e).context("reading offer answers")))?;
    let mut by_offer: HashMap<String, (u64, u64)> = HashMap::new();
    for (code, _segment, yes, no) in counts {
        let e = by_offer.entry(code).or_default();
        e.0 += yes;
        e.1 += no;
    }
    Ok(Rates::History(by_offer))
}

fn workers(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / 2).max(1)
}

/// Checks the request, records the job and starts it; answers the job as recorded.
pub async fn start(
    st: &BacktestState,
    who: &str,
    tested: Tested,
    events: Events,
) -> Result<Job, Refusal> {
    let db = st.sync.db();
    let (active, published_files) = publish::active_files(db).await?;
    let published_version = active.unwrap_or(0);
    let tested_files = files_of(st, &tested, &published_files).await?;
    let (source, input, total) = match events {
        Events::Capture(id) => {
            let c = crate::store::kept::<crate::capture::store::Capture>(db, &id)
                .await?
                .ok_or_else(|| Refusal::NotFound(format!("capture {id}")))?;
            if c.events == 0 {
                return Err(Refusal::Field(
                    "capture_id",
                    format!("capture {id} holds no events yet"),
                ));
            }
            let upto = c.events;
            (
                serde_json::json!({"capture_id": id}),
                Input::Capture { id, upto },
                upto as u64,
            )
        }
        Events::Upload(b) => {
            let total = run::count_events(&b);
            if total == 0 {
                return Err(Refusal::Field("body", "holds no events".into()));
            }
            (
                serde_json::json!({"upload_bytes": b.len()}),
                Input::Bytes(Vec::from(b)),
                total,
            )
        }
    };
    let config = st.sync.config().clone();
    let same = tested_files == published_files;
    let tested_set = crate::authoring::sync::compile_off_thread(tested_files, config.clone())
        .await
        .map_err(Refusal::Invalid)?;
    let published_set = if same {
        None
    } else {
        Some(
            crate::authoring::sync::compile_off_thread(published_files, config.clone())
                .await
                .map_err(|p| {
                    Refusal::Internal(anyhow::anyhow!(
                        "the published version {published_version} does not compile here: {p:?}"
                    ))
                })?,
        )
    };
    let runs = if same { 1 } else { 2 };
    let rates = rates(st).await?;
    let spec = serde_json::json!({
        "tested": match &tested {
            Tested::Published => serde_json::json!("published"),
            Tested::Version(n) => serde_json::json!({"version": n}),
            Tested::Drafts(ids) => serde_json::json!({"drafts": ids}),
        },
        "events": source,
    });
    let job = store::create(db, &spec, published_version, (total * runs) as i64, who).await?;
    let sets = Sets {
        tested: tested_set,
        published: published_set,
        published_version,
    };
    tokio::spawn(run_job(
        db.clone(),
        job.id.clone(),
        config,
        sets,
        input,
        rates,
    ));
    Ok(job)
}

async fn run_job(
    db: crate::store::Db,
    id: String,
    config: Arc<crate::config::Config>,
    sets: Sets,
    input: Input,
    rates: Rates,
) {
    let events = match input {
        Input::Bytes(b) => b,
        Input::Capture { id: capture, upto } => match captured(&db, &id, &capture, upto).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(backtest = %id, error = %e, "backtest: reading the capture failed");
                let failed = Err(format!("reading capture {capture} failed"));
                if let Err(e) = store::finish(&db, &id, 0, failed).await {
                    tracing::error!(backtest = %id, error = %e, "backtest: recording its end failed");
                }
                return;
            }
        },
    };
    let done = Arc::new(AtomicU64::new(0));
    let counter = done.clone();
    let workers = workers(config.backtest.workers);
    let mut work = tokio::task::spawn_blocking(move || {
        run::run(sets, &config, &events, workers, &rates, &counter)
    });
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    let outcome = loop {
        tokio::select! {
            joined = &mut work => break joined,
            _ = tick.tick() => {
                let n = done.load(Ordering::Relaxed) as i64;
                if let Err(e) = store::progress(&db, &id, n).await {
                    tracing::warn!(backtest = %id, error = %e, "backtest: recording progress failed");
                }
            }
        }
    };
    let outcome = match outcome {
        Ok(Ok(result)) => serde_json::to_string(&result).map_err(|e| format!("{e}")),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(e) => Err(format!("the run stopped: {e}")),
    };
    if let Err(e) = &outcome {
        tracing::warn!(backtest = %id, error = %e, "backtest failed");
    }
    let n = done.load(Ordering::Relaxed) as i64;
    if let Err(e) = store::finish(&db, &id, n, outcome).await {
        tracing::error!(backtest = %id, error = %e, "backtest: recording its end failed");
    }
}
