//! Command line: `kairos serve | replay | rules check | rules test | rules publish`.

mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "kairos",
    version,
    about = "Real-time, rules-driven marketing for telecom operators"
)]
struct Cli {
    /// Configuration file (TOML). Defaults, then this file, then KAIROS_* env vars.
    #[arg(long, global = true, env = "KAIROS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the whole product: HTTP ingest and API, engine, channels.
    Serve {
        /// Also generate realistic traffic for this many subscribers.
        #[arg(long)]
        simulate: Option<u64>,
        /// Simulated events per second.
        #[arg(long, default_value_t = 2000)]
        rate: u64,
    },
    /// Check and test marketers' rules.
    Rules {
        #[command(subcommand)]
        cmd: RulesCmd,
    },
    /// Deterministic batch run over an NDJSON file of events, on event time.
    Replay {
        /// NDJSON events, one per line.
        #[arg(long)]
        events: PathBuf,
        /// Rules folder (default: engine.rules_dir).
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Where to write recommendations as NDJSON (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Optional NDJSON of profiles: {"msisdn": "...", "value_tier": "gold", ...}.
        #[arg(long)]
        profiles: Option<PathBuf>,
        /// Cores to run on (default: all). The output is the same on any number.
        #[arg(long)]
        workers: Option<usize>,
    },
}

#[derive(Subcommand)]
enum RulesCmd {
    /// Compile and validate every rule; errors name file, line and column.
    Check { dir: Option<PathBuf> },
    /// Run the test cases each rule carries.
    Test { dir: Option<PathBuf> },
    /// Publish a folder of rules (a checkout from git) as the next version, straight into
    /// the configured database: running instances swap it in within a second.
    Publish {
        dir: PathBuf,
        /// Who wrote the change (default: $USER).
        #[arg(long)]
        author: Option<String>,
        /// Why, kept with the version (a commit id is a good one).
        #[arg(long, default_value = "")]
        comment: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // After the config: it says how lines are written.
    init_tracing(config.log.format);
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = match cli.cmd {
        Cmd::Serve { simulate, rate } => rt.block_on(serve(config, simulate, rate)),
        Cmd::Rules {
            cmd: RulesCmd::Check { dir },
        } => rules_check(&config, dir),
        Cmd::Rules {
            cmd: RulesCmd::Test { dir },
        } => rules_test(&config, dir),
        Cmd::Rules {
            cmd:
                RulesCmd::Publish {
                    dir,
                    author,
                    comment,
                },
        } => rt.block_on(rules_publish(config, dir, author, comment)),
        Cmd::Replay {
            events,
            rules,
            out,
            profiles,
            workers,
        } => crate::replay::run_cli(
            &config,
            &events,
            rules.as_deref(),
            out.as_deref(),
            profiles.as_deref(),
            workers.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            }),
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: crate::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KAIROS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        crate::config::LogFormat::Text => fmt.try_init(),
        // One JSON object per line, the event's fields flattened beside `message`, for log
        // collectors that index fields.
        crate::config::LogFormat::Json => fmt.json().flatten_event(true).try_init(),
    };
}

async fn serve(config: Config, simulate: Option<u64>, rate: u64) -> anyhow::Result<ExitCode> {
    #[cfg(feature = "profile")]
    let profile = crate::profile::start();
    // JSON logs go to collectors that read every line as JSON: what is said to the person at
    // the terminal goes through the log then, and the live console (which `/metrics`
    // replaces) stays off.
    let json = config.log.format == crate::config::LogFormat::Json;
    let say = |line: String| {
        if json {
            tracing::info!("{line}");
        } else {
            println!("{line}");
        }
    };
    // Listened for before the server answers: a SIGTERM right after it is healthy (a quick
    // rollout, a test) is a clean stop, not the default action that kills it mid-write.
    let stop = stop_signal()?;
    let app = crate::app::App::start(config).await?;
    say(format!(
        "kairos listening on http://{}  (rules: {}, database: {})",
        app.addr,
        app.state.config.engine.rules_dir.display(),
        crate::store::redacted_url(&app.state.config.database.url)
    ));
    let pipeline = app.state.pipeline.clone();
    if let Some(n) = simulate {
        say(format!("simulating {n} subscribers at {rate} events/s"));
        tokio::spawn(simulate_traffic(pipeline.clone(), n, rate));
    }
    let console = (!json).then(|| tokio::spawn(console(pipeline)));
    stop.await?;
    if let Some(c) = console {
        c.abort();
    }
    say("shutting down: no new requests; finishing and committing in-flight events".into());
    app.shutdown().await?;
    #[cfg(feature = "profile")]
    if let Some(p) = profile {
        p.finish();
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGINT (Ctrl-C) or SIGTERM (what systemd and Kubernetes send): either stops cleanly. Both
/// handlers are in place when this returns; the future resolves at the first signal.
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = std::io::Result<()>>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
            Ok(())
        })
    }
    #[cfg(not(unix))]
    Ok(tokio::signal::ctrl_c())
}

/// Feeds the simulator's events into the engine at `rate` per second, on wall-clock time.
async fn simulate_traffic(pipeline: crate::pipeline::Pipeline, subscribers: u64, rate: u64) {
    use crate::ports::EventSink;
    let mut sim = crate::sim::Simulator::new(subscribers, 42);
    let tz = chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset");
    let tick = std::time::Duration::from_millis(100);
    let per_tick = (rate / 10).max(1);
    let mut interval = tokio::time::interval(tick);
    loop {
        interval.tick().await;
        let now = chrono::Utc::now().with_timezone(&tz);
        let batch: Vec<_> = (0..per_tick).map(|_| sim.next_event(now)).collect();
        if pipeline.submit(batch).await.is_err() {
            return;
        }
    }
}

/// Live counts on the console every two seconds.
async fn console(pipeline: crate::pipeline::Pipeline) {
    let mut last = pipeline.deps.metrics.snapshot();
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(2));
    interval.tick().await;
    loop {
        interval.tick().await;
        let now = pipeline.deps.metrics.snapshot();
        let rules = pipeline.rules();
        let mut top: Vec<(String, u64)> = rules
            .rules
            .iter()
            .map(|r| (r.meta.id.clone(), r.stats.snapshot().1))
            .filter(|(_, m)| *m > 0)
            .collect();
        top.sort_by_key(|t| std::cmp::Reverse(t.1));
        let top: Vec<String> = top
            .iter()
            .take(6)
            .map(|(id, n)| format!("{id}={n}"))
            .collect();
        println!(
            "events {:>9} ({:>6}/s)  offers {:>7} (+{})  suppressed {:>6}  rejected {}  late {}  dup {}  rule errors {}  quarantined {}  | {}",
            now.processed,
            (now.processed - last.processed) / 2,
            now.recommendations - now.suppressed,
            (now.recommendations - now.suppressed) - (last.recommendations - last.suppressed),
            now.suppressed,
            now.rejected,
            now.late,
            now.duplicates,
            now.rule_errors,
            now.rule_quarantines,
            top.join(" ")
        );
        last = now;
    }
}

fn rules_check(config: &Config, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| config.engine.rules_dir.clone());
    let templates = config.channels.templates_dir();
    let bar = progress::bar("compiling");
    let loaded = crate::rules::load_all_with(
        &dir,
        &templates,
        crate::rules::templates::Offers::MustBeOffered,
        &config.engine.limits,
        &config.channels.enabled,
        &|done, total| progress::tick(&bar, done, total),
    );
    bar.finish_and_clear();
    // The contact policy beside the rules is checked with them.
    let policy = crate::decision::contact::load(&dir, &config.channels.enabled);
    let loaded = match (loaded, policy) {
        (Ok(set), Ok(p)) => {
            println!(
                "contact policy OK in {}: {} cap(s), quiet hours {}, control group {}%",
                dir.join(crate::decision::contact::FILE).display(),
                p.caps.len(),
                p.quiet.as_ref().map_or("off".to_string(), |q| format!(
                    "{}-{} on {}",
                    q.from.format("%H:%M"),
                    q.to.format("%H:%M"),
                    q.channels.join(",")
                )),
                f64::from(p.holdout_bp) / 100.0
            );
            Ok(set)
        }
        (Ok(_), Err(e)) => Err(crate::rules::RuleErrors(vec![e])),
        (Err(mut errs), Err(e)) => {
            errs.0.push(e);
            Err(errs)
        }
        (Err(errs), Ok(_)) => Err(errs),
    };
    match loaded {
        Ok(set) => {
            let tests: usize = set.rules.iter().map(|r| r.tests.len()).sum();
            println!(
                "{} rules OK in {} ({} test cases, {} state series); {} message templates OK in {}",
                set.rules.len(),
                dir.display(),
                tests,
                set.spec.defs.len(),
                set.templates.len(),
                templates.display()
            );
            // Loaded, but a rule that never fires is what marketers miss most: said, not fatal.
            for w in set.rules.iter().flat_map(|r| &r.warnings) {
                println!("warning: {w}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errs) => {
            eprintln!("{errs}");
            eprintln!(
                "{} problem(s) in {} or {}",
                errs.0.len(),
                dir.display(),
                templates.display()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn rules_test(config: &Config, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| config.engine.rules_dir.clone());
    let bar = progress::bar("compiling");
    let set = match crate::rules::load_all_with(
        &dir,
        &config.channels.templates_dir(),
        crate::rules::templates::Offers::MayBeElsewhere,
        &config.engine.limits,
        &config.channels.enabled,
        &|done, total| progress::tick(&bar, done, total),
    ) {
        Ok(s) => s,
        Err(errs) => {
            bar.finish_and_clear();
            eprintln!("{errs}");
            return Ok(ExitCode::FAILURE);
        }
    };
    bar.finish_and_clear();
    let bar = progress::bar("testing");
    let mut outcomes = Vec::new();
    for (i, rule) in set.rules.iter().enumerate() {
        outcomes.extend(crate::engine::run_tests_of(rule, config));
        progress::tick(&bar, i + 1, set.rules.len());
    }
    bar.finish_and_clear();
    let mut failed = 0;
    for o in &outcomes {
        match &o.failure {
            None => println!("ok    {} :: {}", o.rule_id, o.name),
            Some(f) => {
                failed += 1;
                println!("FAIL  {} :: {}\n      {}: {f}", o.rule_id, o.name, o.file);
            }
        }
    }
    println!("rules: {} passed, {failed} failed", outcomes.len() - failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `kairos rules publish DIR`: the folder is checked as a publish over the API checks it and
/// recorded as the next version with the database credentials of the configuration (so only
/// who operates the deployment can). The review happened in git: the version is recorded as
/// approved by `cli`.
async fn rules_publish(
    config: Config,
    dir: PathBuf,
    author: Option<String>,
    comment: String,
) -> anyhow::Result<ExitCode> {
    use crate::authoring::publish::{self, Change, Refusal};
    use anyhow::Context;
    let files = crate::authoring::files::read_dir(&dir)
        .with_context(|| format!("reading the rules folder {}", dir.display()))?;
    let db = crate::store::Db::connect(&config.database.url, 2)
        .await
        .context("connecting to the database")?;
    let (after, active) = publish::active_files(&db)
        .await
        .context("reading the active rule version")?;
    if after.is_some() && files == active {
        println!(
            "{} is the active version {} already; nothing published",
            dir.display(),
            after.unwrap_or(0)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let author = author
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".into());
    let comment = if comment.is_empty() {
        format!("published from {}", dir.display())
    } else {
        comment
    };
    let change = Change {
        files,
        author,
        approved_by: "cli".into(),
        comment,
        restores: None,
        drafts: Vec::new(),
        after,
    };
    let config = std::sync::Arc::new(config);
    let bar = progress::bar("compiling");
    let ticks = bar.clone();
    let recorded = publish::record_with(
        &db,
        &config,
        change,
        std::sync::Arc::new(move |done, total| progress::tick(&ticks, done, total)),
    )
    .await;
    bar.finish_and_clear();
    match recorded {
        Ok((version, compiled)) => {
            println!(
                "published version {} ({} rules) from {}; running instances swap it in within a second",
                version.number,
                compiled.rules.rules.len(),
                dir.display()
            );
            if config.state.backend == "redis" {
                let heard = crate::authoring::sync::announce_once(
                    &config.state.redis_url,
                    &config.state.redis_prefix,
                    version.number,
                )
                .await;
                match heard {
                    Ok(n) => println!("{n} instance(s) told at once"),
                    Err(e) => eprintln!("warning: {e:#}; instances find the version by polling"),
                }
            }
            db.pool.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Err(Refusal::Invalid(problems)) => {
            for p in &problems {
                eprintln!(
                    "{}:{}:{}: {}",
                    dir.join(&p.file).display(),
                    p.line,
                    p.column,
                    p.message
                );
            }
            eprintln!(
                "{} problem(s) in {}; nothing published",
                problems.len(),
                dir.display()
            );
            Ok(ExitCode::FAILURE)
        }
        Err(other) => Err(anyhow::Error::new(other).context("publishing")),
    }
}
