//! A publish of 1,000 rules reaching a running engine: how long from the publish until the
//! engine evaluates with the new set (compile the files as a publish checks them, build the
//! policy, swap), and the longest an event waits while that happens with events flowing.
//!
//! The 1,000 rules are the standard pack's rules over and over, each copy with its own id,
//! offer code and windows (so its own state series), as a large pack of look-alike
//! campaigns would be. The engine runs as a pipeline worker runs it: a batch at a time, the
//! rules and policy read from the swapped pair at the start of each batch (the swap is
//! atomic between batches), the old pair dropped at its end. The store commit is left out:
//! what is measured is what the publish costs the event path.
//!
//! `cargo bench --bench publish`

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::{DateTime, FixedOffset};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use kairos::authoring::check::{compile, Compiled};
use kairos::authoring::files::Files;
use kairos::config::Config;
use kairos::decision::Policy;
use kairos::engine::{account, MatchSettings, Shard};
use kairos::pipeline::Loaded;
use kairos::ports::{Profile, Status};
use kairos::sim::Simulator;

// The allocator the `kairos` binary runs with.
#[global_allocator]
static ALLOC: kairos::alloc::Allocator = kairos::alloc::Allocator;

const RULES: usize = 1000;
const SUBSCRIBERS: u64 = 100_000;
/// A pipeline worker's batch (`engine.batch_size`).
const BATCH: usize = 512;

fn pack() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut out: Vec<(String, String)> = walkdir::WalkDir::new(&dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rhai"))
        .map(|e| {
            let rel = e.path().strip_prefix(&dir).unwrap();
            let rel = rel.to_string_lossy().replace('\\', "/");
            (rel, std::fs::read_to_string(e.path()).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// Every `"<n><unit>")` (a window closing a state call, like `count("call", "30d")`)
/// lengthened by `more` units: the copy keeps its own state series.
fn shift_windows(src: &str, more: u32) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(i) = rest.find('"') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let unit = rest[digits..].chars().next();
        let closes = rest[digits..].get(1..3) == Some("\")");
        if digits > 0 && matches!(unit, Some('d' | 'h')) && closes {
            let n: u32 = rest[..digits].parse().unwrap();
            out.push_str(&format!("{}{}", n + more, unit.unwrap()));
            rest = &rest[digits + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// `RULES` rules made from the standard pack; `version` changes every copy's windows, as a
/// publish that retunes them all would.
fn thousand_rules(version: u32) -> Files {
    let pack = pack();
    let mut files = Files::new();
    let policy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/policy.toml");
    files.insert(
        "policy.toml".into(),
        std::fs::read_to_string(policy).unwrap(),
    );
    for i in 0..RULES {
        let (path, src) = &pack[i % pack.len()];
        let copy = i / pack.len();
        let id_at = src.find("id: \"").unwrap() + 5;
        let id_end = id_at + src[id_at..].find('"').unwrap();
        let id = &src[id_at..id_end];
        let code_at = src.find("code: \"").unwrap() + 7;
        let code_end = code_at + src[code_at..].find('"').unwrap();
        let code = &src[code_at..code_end];
        let src = src
            .replace(&format!("\"{id}\""), &format!("\"{id}-{copy}\""))
            .replace(&format!("\"{code}\""), &format!("\"{code}-{copy}\""));
        let src = shift_windows(&src, (copy as u32 + version) % 7);
        let path = path.replace(".rhai", &format!("-{copy}.rhai"));
        files.insert(path, src);
    }
    files
}

fn config() -> Config {
    let mut c = Config::default();
    // The pack's message templates (offer codes of the copies have none: inline messages).
    c.channels.dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("channels");
    c
}

fn policy(config: &Config, compiled: &Compiled, base: &Policy) -> Policy {
    let mut p = base
        .reloaded_with(config, compiled.contact.clone())
        .unwrap();
    p.go_status = Status::Proposed;
    p.market_unknown = true;
    p
}

fn compiled(files: &Files, config: &Config) -> Compiled {
    match compile(files, config) {
        Ok(c) => c,
        Err(p) => panic!(
            "the generated set does not compile: {:?}",
            &p[..p.len().min(5)]
        ),
    }
}

/// A worker running events on whatever pair is swapped in, recording how long each event
/// waited on the one before it (its processing, plus a batch's start and the old pair's drop
/// when it is the first of a batch).
struct Worker {
    loaded: Arc<ArcSwap<Loaded>>,
    stop: Arc<AtomicBool>,
    /// While set, waits are recorded.
    recording: Arc<AtomicBool>,
}

impl Worker {
    fn run(&self, settings: &MatchSettings) -> (Duration, u64) {
        let mut shard = Shard::default();
        let mut sim = Simulator::new(SUBSCRIBERS, 11);
        let mut clock: DateTime<FixedOffset> =
            DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap();
        let profile = Arc::new(Profile::default());
        let (mut recs, mut fails) = (Vec::new(), Vec::new());
        let mut longest = Duration::ZERO;
        let mut events = 0u64;
        let mut carried = Duration::ZERO;
        while !self.stop.load(Ordering::Relaxed) {
            let batch: Vec<_> = (0..BATCH)
                .map(|_| {
                    clock += chrono::Duration::microseconds(500);
                    Arc::new(sim.next_event(clock))
                })
                .collect();
            let started = Instant::now();
            let loaded = self.loaded.load_full();
            let mut last = started;
            let wait = |last: &mut Instant, extra: Duration| {
                let now = Instant::now();
                let w = now - *last + extra;
                *last = now;
                w
            };
            let mut first = true;
            let mut batch_longest = Duration::ZERO;
            for ev in &batch {
                recs.clear();
                let _ = shard.process(
                    &loaded.rules,
                    settings,
                    &loaded.policy,
                    &profile,
                    ev,
                    &mut recs,
                    &mut fails,
                );
                fails.clear();
                let w = wait(&mut last, if first { carried } else { Duration::ZERO });
                first = false;
                batch_longest = batch_longest.max(w);
            }
            account(&loaded.rules, settings, started.elapsed());
            // The old pair goes when its last batch lets go of it: the next events wait on it.
            let dropping = Instant::now();
            drop(loaded);
            carried = dropping.elapsed();
            if self.recording.load(Ordering::Relaxed) {
                longest = longest.max(batch_longest);
                events += BATCH as u64;
            }
        }
        (longest, events)
    }
}

/// The longest wait of any event: in steady operation on the old set, and from the start of
/// a publish until a second after its swap.
fn pause_during_publish(config: &Config, old: &Files, new: &Files) -> (Duration, Duration) {
    let settings = MatchSettings::from_config(&config.engine).unwrap();
    let mut base = Policy::from_config(config).unwrap();
    base.go_status = Status::Proposed;
    base.market_unknown = true;
    let first = compiled(old, config);
    let p = policy(config, &first, &base);
    let loaded = Arc::new(Loaded::new(first.rules, p));
    let stop = Arc::new(AtomicBool::new(false));
    let recording = Arc::new(AtomicBool::new(false));
    let worker = Worker {
        loaded: loaded.clone(),
        stop: stop.clone(),
        recording: recording.clone(),
    };
    std::thread::scope(|s| {
        let running = s.spawn(|| worker.run(&settings));
        // Warm up: subscribers get state on the old set.
        std::thread::sleep(Duration::from_secs(2));
        recording.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_secs(1));
        recording.store(false, Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        let (steady, _) = running.join().unwrap();
        stop.store(false, Ordering::Relaxed);

        let running = s.spawn(|| worker.run(&settings));
        std::thread::sleep(Duration::from_millis(500));
        recording.store(true, Ordering::Relaxed);
        // The publish: compiled off the event path (a publish compiles on a blocking
        // thread), then swapped in whole.
        let next = compiled(new, config);
        let p = policy(config, &next, &base);
        loaded.store(Arc::new(kairos::pipeline::Loaded {
            rules: Arc::new(next.rules),
            policy: Arc::new(p),
        }));
        std::thread::sleep(Duration::from_secs(1));
        recording.store(false, Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        let (during, events) = running.join().unwrap();
        assert!(events > 0, "no events ran during the publish");
        (steady, during)
    })
}

fn publish(c: &mut Criterion) {
    let config = config();
    let old = thousand_rules(0);
    let new = thousand_rules(1);
    let first = compiled(&old, &config);
    assert_eq!(first.rules.rules.len(), RULES);
    eprintln!(
        "[publish] {} rules, {} state series",
        first.rules.rules.len(),
        first.rules.spec.defs.len()
    );
    let base = policy(&config, &first, &Policy::from_config(&config).unwrap());
    let loaded = ArcSwap::from_pointee(Loaded {
        rules: Arc::new(first.rules),
        policy: Arc::new(base),
    });
    let settings = MatchSettings::from_config(&config.engine).unwrap();
    let mut sim = Simulator::new(SUBSCRIBERS, 5);
    let clock = DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap();
    let ev = Arc::new(sim.next_event(clock));

    let mut g = c.benchmark_group("publish");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    // From the files of a publish to the first event evaluated on them.
    g.bench_function("1000_rules_until_evaluated", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let files = if i % 2 == 0 { &new } else { &old };
                let t = Instant::now();
                let next = compiled(files, &config);
                let p = policy(&config, &next, &loaded.load().policy);
                loaded.store(Arc::new(Loaded {
                    rules: Arc::new(next.rules),
                    policy: Arc::new(p),
                }));
                let now = loaded.load_full();
                let mut shard = Shard::default();
                let _ = shard.process(
                    &now.rules,
                    &settings,
                    &now.policy,
                    &Arc::new(Profile::default()),
                    &ev,
                    &mut Vec::new(),
                    &mut Vec::new(),
                );
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();

    // Not a duration to average: the longest single wait, printed per run.
    let runs = 3;
    for run in 1..=runs {
        let (steady, during) = pause_during_publish(&config, &old, &new);
        eprintln!(
            "[publish] run {run}/{runs}: longest wait of an event: {:.2} ms steady, {:.2} ms \
             from the publish until a second after its swap",
            steady.as_secs_f64() * 1e3,
            during.as_secs_f64() * 1e3
        );
    }
}

criterion_group!(benches, publish);
criterion_main!(benches);
