//! Times a backtest of the standard rule pack over an NDJSON event file as a backtest job
//! runs it (`backtest::run::run` on the replay engine: no database, no HTTP), three times,
//! and prints each run and the median. The file is read into memory first, as the job holds
//! an upload or a capture, and that is not timed.
//!
//! ```sh
//! cargo run --release --example simulate -- 1000000 10000000 > /tmp/ev10m.ndjson
//! cargo run --release --example backtest_load -- /tmp/ev10m.ndjson --workers 2
//! ```
//! `--workers N` (default: every core) is `backtest.workers`; `--compare` also runs the
//! published set (the pack again), as a backtest against a published version does.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use kairos::authoring::check::{compile, Compiled};
use kairos::backtest::run::{run, Rates, Sets};
use kairos::config::Config;

// The allocator the `kairos` binary runs with.
#[global_allocator]
static ALLOC: kairos::alloc::Allocator = kairos::alloc::Allocator;

fn main() -> anyhow::Result<()> {
    kairos::alloc::tune();
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let mut workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut compare = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--workers" => {
                workers = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| anyhow::anyhow!("--workers takes a number"))?
            }
            "--compare" => compare = true,
            _ => path = Some(PathBuf::from(a)),
        }
    }
    let path = path.ok_or_else(|| {
        anyhow::anyhow!("usage: backtest_load EVENTS.ndjson [--workers N] [--compare]")
    })?;
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut config = Config::default();
    config.channels.dir = repo.join("channels");
    let files = kairos::authoring::files::read_dir(&repo.join("rules"))?;
    let set = || -> anyhow::Result<Compiled> {
        compile(&files, &config).map_err(|p| anyhow::anyhow!("the pack does not compile: {p:?}"))
    };
    let events = std::fs::read(&path)?;
    let counting = Instant::now();
    let lines = kairos::backtest::run::count_events(&events);
    eprintln!(
        "{lines} events counted in {:.0} ms",
        counting.elapsed().as_secs_f64() * 1e3
    );
    eprintln!(
        "{}: {} MB; {workers} worker(s){}",
        path.display(),
        events.len() >> 20,
        if compare {
            ", tested and published"
        } else {
            ""
        }
    );
    let mut took = Vec::new();
    for i in 1..=3 {
        let sets = Sets {
            tested: set()?,
            published: if compare { Some(set()?) } else { None },
            published_version: 1,
        };
        let rates = Rates::History(Default::default());
        let done = AtomicU64::new(0);
        let started = Instant::now();
        let r = run(sets, &config, &events, workers, &rates, &done)?;
        let t = started.elapsed();
        eprintln!(
            "run {i}: {:.2} s, {} events ({:.0}/s), {} offers, {} rejected, {} duplicates, {} late",
            t.as_secs_f64(),
            r.events,
            r.events as f64 / t.as_secs_f64(),
            r.offers,
            r.rejected,
            r.duplicates,
            r.late
        );
        took.push(t);
    }
    took.sort();
    let secs = |d: Duration| d.as_secs_f64();
    eprintln!(
        "min {:.2} s, median {:.2} s",
        secs(took[0]),
        secs(took[took.len() / 2])
    );
    Ok(())
}
