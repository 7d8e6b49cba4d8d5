//! Every instance runs the highest published version. A publish swaps the new set in on the
//! instance that took it, tells the others over Redis pub/sub when instances share Redis,
//! and every instance also asks the database for the active number twice a second, so one
//! that missed the message (or runs without Redis) converges within a second anyway.
//!
//! A swap replaces the compiled rules and the contact policy whole between batches
//! (`Pipeline::swap`): batches in flight finish on the old set. Subscribers' state is
//! keyed by each series' fingerprint, not by rule, so the series an unchanged rule reads
//! keep their values across a swap, and a new series starts empty.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;

use super::check::{compile_with, Compiled, Problem};
use super::files::{self, Files};
use super::store::{self, NewVersion};
use crate::config::Config;
use crate::periodic::{Every, FirstFailure};
use crate::pipeline::Pipeline;
use crate::store::{Db, StoreError};

/// How often each instance asks for the active version number.
pub const POLL: Duration = Duration::from_millis(500);

/// The author recorded for the rules folder read at the first start.
pub const BOOTSTRAP: &str = "bootstrap";

/// Compiles off the async threads: a thousand rules take a while.
pub async fn compile_off_thread(
    files: Files,
    config: Arc<Config>,
) -> Result<Compiled, Vec<Problem>> {
    compile_off_thread_with(files, config, Arc::new(|_, _| {})).await
}

/// Told `(files compiled, files in all)` from the compiling thread.
pub type SharedProgress = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// [`compile_off_thread`], telling `progress` after each rule file.
///
/// The compile runs on a thread of its own at a lower priority than the workers: it takes a
/// core for a few hundred milliseconds for 1,000 rules, and at the workers' priority on a
/// machine with no idle core it takes time slices of several milliseconds from them, which
/// events wait through. With an idle core it runs as fast either way.
pub async fn compile_off_thread_with(
    files: Files,
    config: Arc<Config>,
    progress: SharedProgress,
) -> Result<Compiled, Vec<Problem>> {
    let stopped = |e: String| {
        Err(vec![Problem {
            file: String::new(),
            line: 0,
            column: 0,
            message: format!("the check stopped: {e}"),
            suggestion: None,
        }])
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("kairos-compile".into())
        .spawn(move || {
            lower_priority();
            let _ = tx.send(compile_with(&files, &config, &*progress));
        });
    if let Err(e) = spawned {
        return stopped(e.to_string());
    }
    rx.await
        .unwrap_or_else(|_| stopped("the compiling thread panicked".into()))
}

/// Nice 10 for the calling thread (a thread of its own: raising it back would need a
/// privilege): about a tenth of a core's time against a busy worker, all of an idle core.
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on this thread's own id; a failure leaves the priority.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, 10) != 0 {
            tracing::debug!("could not lower the compiling thread's priority");
        }
    }
}

fn listed(problems: &[Problem], dir: Option<&std::path::Path>) -> String {
    problems
        .iter()
        .map(|p| match dir {
            Some(d) => format!(
                "{}:{}:{}: {}",
                d.join(&p.file).display(),
                p.line,
                p.column,
                p.message
            ),
            None => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The set this instance starts with: the active version when the database has one, else
/// the rules folder, recorded as version 1 (author `bootstrap`).
pub async fn bootstrap(db: &Db, config: &Arc<Config>) -> anyhow::Result<(i64, Compiled)> {
    loop {
        if let Some(n) = store::active(db).await? {
            let files = store::files_of(db, n).await?;
            let compiled = compile_off_thread(files, config.clone())
                .await
                .map_err(|p| {
                    anyhow::anyhow!(
                        "the published rule version {n} does not load here (templates in {}):\n{}",
                        config.channels.templates_dir().display(),
                        listed(&p, None)
                    )
                })?;
            tracing::info!(
                version = n,
                rules = compiled.rules.rules.len(),
                "running the published rule version"
            );
            return Ok((n, compiled));
        }
        let dir = &config.engine.rules_dir;
        let files = files::read_dir(dir)
            .with_context(|| format!("reading the rules folder {}", dir.display()))?;
        let compiled = compile_off_thread(files.clone(), config.clone())
            .await
            .map_err(|p| {
                anyhow::anyhow!(
                    "rules in {} or templates in {} do not load:\n{}",
                    dir.display(),
                    config.channels.templates_dir().display(),
                    listed(&p, Some(dir))
                )
            })?;
        let first = NewVersion {
            files: &files,
            author: BOOTSTRAP,
            approved_by: BOOTSTRAP,
            comment: "the rules folder, read at the first start",
            restores: None,
            drafts: &[],
        };
        match store::publish(db, None, first).await {
            Ok(n) => {
                tracing::info!(version = n, rules = compiled.rules.rules.len(), dir = %dir.display(), "rules folder recorded as the first version");
                return Ok((n, compiled));
            }
            // Another instance started at the same moment and recorded its folder: run that.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(anyhow::Error::new(e).context("recording the first rule version")),
        }
    }
}

/// What a swap put in place.
#[derive(Debug, Clone, Copy)]
pub struct Swapped {
    pub version: i64,
    pub rules: usize,
    pub state_series: usize,
}

/// The pub/sub channel instances announce publishes and reloads on.
pub fn topic(prefix: &str) -> String {
    format!("{prefix}:rules-reload")
}

/// Announces version `version` from outside a running instance (`kairos rules publish`):
/// answers how many instances heard it.
pub async fn announce_once(url: &str, prefix: &str, version: i64) -> anyhow::Result<i64> {
    let client = redis::Client::open(url).context("the Redis url")?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .context("connecting to Redis")?;
    let heard: i64 = redis::cmd("PUBLISH")
        .arg(topic(prefix))
        .arg(format!("cli publish {version}"))
        .query_async(&mut conn)
        .await
        .context("announcing on Redis")?;
    Ok(heard)
}

/// Keeps this instance on the active version.
#[derive(Clone)]
pub struct RuleSync(Arc<Inner>);

struct Inner {
    db: Db,
    config: Arc<Config>,
    pipeline: Pipeline,
    /// The version this instance runs.
    running: AtomicI64,
    /// The last version that did not compile here (its errors are logged once, not twice a
    /// second); the running set stays meanwhile.
    failed: AtomicI64,
    /// One swap at a time: a poll and a publish on this instance do not interleave.
    swap: tokio::sync::Mutex<()>,
    bus: OnceLock<crate::pubsub::Publisher>,
    /// This instance on the bus, so it does not act on its own announcements.
    me: String,
}

/// What an announcement asks of the other instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    /// A version was published: run it.
    Publish,
    /// Compile the active version again even if it is the one running (lifts quarantines,
    /// re-reads the message templates).
    Reload,
}

impl RuleSync {
    /// Starts keeping `pipeline` (running version `running`) on the active version: polls the
    /// database until `stop`, and listens on Redis when `redis` (url, key prefix) is given.
    pub async fn start(
        db: Db,
        config: Arc<Config>,
        pipeline: Pipeline,
        running: i64,
        redis: Option<(&str, &str)>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<RuleSync> {
        let sync = RuleSync(Arc::new(Inner {
            db,
            config,
            pipeline,
            running: AtomicI64::new(running),
            failed: AtomicI64::new(0),
            swap: tokio::sync::Mutex::new(()),
            bus: OnceLock::new(),
            me: uuid::Uuid::new_v4().to_string(),
        }));
        if let Some((url, prefix)) = redis {
            let listener = sync.clone();
            let publisher = crate::pubsub::connect(url, topic(prefix), move |bytes| {
                let sync = listener.clone();
                async move { sync.heard(&String::from_utf8_lossy(&bytes)).await }
            })
            .await
            .context("listening for rule publishes on Redis")?;
            let _ = sync.0.bus.set(publisher);
        }
        let poller = sync.clone();
        tokio::spawn(async move {
            let (mut every, mut failing) = (Every::new(POLL, stop), FirstFailure::default());
            while every.tick().await {
                if let Some(e) = failing.of(poller.converge(false).await) {
                    tracing::warn!("checking the active rule version: {e:#}");
                }
            }
        });
        Ok(sync)
    }

    /// The version this instance runs.
    pub fn running(&self) -> i64 {
        self.0.running.load(Ordering::Acquire)
    }

    pub fn db(&self) -> &Db {
        &self.0.db
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.0.config
    }

    /// The engine this keeps up to date (dry runs read the running rules and policy).
    pub fn pipeline(&self) -> &Pipeline {
        &self.0.pipeline
    }

    /// Swaps in the active version if this instance does not run it (or, with `force`, even
    /// if it does). Answers what was swapped in, if anything.
    pub async fn converge(&self, force: bool) -> anyhow::Result<Option<Swapped>> {
        let _one = self.0.swap.lock().await;
        let Some(active) = store::active(&self.0.db).await? else {
            return Ok(None);
        };
        let skip = active == self.running() || active == self.0.failed.load(Ordering::Acquire);
        if skip && !force {
            return Ok(None);
        }
        let files = store::files_of(&self.0.db, active).await?;
        match compile_off_thread(files, self.0.config.clone()).await {
            Ok(compiled) => Ok(Some(self.swap_in(active, compiled)?)),
            Err(problems) => {
                self.0.failed.store(active, Ordering::Release);
                anyhow::bail!(
                    "rule version {active} does not load here; version {} keeps running:\n{}",
                    self.running(),
                    listed(&problems, None)
                )
            }
        }
    }

    /// Swaps in `compiled`, the set of version `version` just published here, unless this
    /// instance already runs that version or a later one.
    pub async fn install(&self, version: i64, compiled: Compiled) -> anyhow::Result<Swapped> {
        self.install_if(version, compiled, |v, running| v > running)
            .await
    }

    /// Swaps in `compiled`, a fresh compile of version `version`, even if it is the running
    /// one (a reload), unless this instance already runs a later one.
    pub async fn reinstall(&self, version: i64, compiled: Compiled) -> anyhow::Result<Swapped> {
        self.install_if(version, compiled, |v, running| v >= running)
            .await
    }

    async fn install_if(
        &self,
        version: i64,
        compiled: Compiled,
        newer: impl Fn(i64, i64) -> bool,
    ) -> anyhow::Result<Swapped> {
        let _one = self.0.swap.lock().await;
        if !newer(version, self.running()) {
            let set = self.0.pipeline.rules();
            return Ok(Swapped {
                version: self.running(),
                rules: set.rules.len(),
                state_series: set.spec.defs.len(),
            });
        }
        self.swap_in(version, compiled)
    }

    fn swap_in(&self, version: i64, compiled: Compiled) -> anyhow::Result<Swapped> {
        let p = &self.0.pipeline;
        let policy = p
            .policy()
            .reloaded_with(&self.0.config, compiled.contact)
            .map_err(anyhow::Error::msg)
            .context("building the decision policy")?;
        let out = Swapped {
            version,
            rules: compiled.rules.rules.len(),
            state_series: compiled.rules.spec.defs.len(),
        };
        p.swap(compiled.rules, policy);
        self.0.running.store(version, Ordering::Release);
        tracing::info!(version, rules = out.rules, "rule version swapped in");
        Ok(out)
    }

    /// Tells the other instances; answers how many listeners heard it (this one included),
    /// or `None` without Redis or when Redis did not answer (the poll still brings them).
    pub async fn announce(&self, what: Announce, version: i64) -> Option<i64> {
        let bus = self.0.bus.get()?;
        let kind = match what {
            Announce::Publish => "publish",
            Announce::Reload => "reload",
        };
        match bus
            .publish(format!("{} {kind} {version}", self.0.me).as_bytes())
            .await
        {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!("announcing rule version {version}: {e}; instances poll for it");
                None
            }
        }
    }

    async fn heard(&self, payload: &str) {
        let mut parts = payload.split(' ');
        let (from, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if from == self.0.me {
            return;
        }
        match self.converge(kind == "reload").await {
            Ok(Some(s)) => tracing::info!(
                version = s.version,
                rules = s.rules,
                "rules swapped in (announced)"
            ),
            Ok(None) => {}
            Err(e) => tracing::error!("announced rule version not swapped in: {e:#}"),
        }
    }
}
