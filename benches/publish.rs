//! A publish of 1,000 rules reaching a running engine: how long from the publish until the
//! engine evaluates with the new set (compile the files as a publish checks them, build the
//! policy, swap), and the longest an event waits while that happens with events flowing.
//!
//! The 1,000 rules are the standard pack's rules over and over, each copy with its own id,
//! offer code and windows (so its own state series), as a large pack of look-alike
//! campaigns would be. The engine runs as a pipeline worker runs it: a batch at a time, the
//! rules and policy read from the swapped pair at the start of each batch (the swap is
//! atomic between batches), let go of at its end (and freed off the event path, as
//! `Pipeline::swap` frees it). The store commit is left out:
//! what is measured is what the publish costs the event path.
//!
//! `cargo bench --bench publish`

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::{DateTime, FixedOffset};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use kairos::authoring::check::{compile, Compiled};
use kairos::authoring::files::Files;
use kairos::authoring::sync::lower_priority;
use kairos::config::Config;
use kairos::decision::Policy;
use kairos::engine::{account, MatchSettings, Shard};
use kairos::pipeline::{retire, Loaded};
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

/// Every window of a state call (`"30d")` in a script, `, 30d)` in a `when` key)
/// lengthened by `more` units: the copy keeps its own state series.
fn shift_windows(src: &str, more: u32) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let after = i + digits;
        let window = digits > 0
            && i > 0
            && matches!(b[i - 1], b'"' | b' ')
            && matches!(b.get(after), Some(b'd' | b'h'))
            && (b.get(after + 1) == Some(&b')') || b[after + 1..].starts_with(b"\")"));
        if window {
            let n: u32 = src[i..after].parse().unwrap();
            out.push_str(&(n + more).to_string());
            i = after;
        } else {
            let len = src[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&src[i..i + len]);
            i += len;
        }
    }
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
    /// Which phase waits are recorded for (0: none; 1: steady; 2: the publish).
    phase: Arc<AtomicUsize>,
}

/// What the events of one phase waited.
#[derive(Default, Clone, Copy)]
struct Waits {
    /// The longest an event waited on the one before it (wall clock: on a shared machine
    /// this includes the worker thread being descheduled for other processes).
    longest: Duration,
    /// The same in the worker thread's own CPU time: what the engine itself spent.
    longest_cpu: Duration,
    /// The longest an old pair took to drop (the next batch's first event waits on it).
    longest_drop: Duration,
    events: u64,
}

/// Wall clock and this thread's CPU time.
fn now() -> (Instant, Duration) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    let cpu = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    (Instant::now(), cpu)
}

impl Worker {
    fn run(&self, settings: &MatchSettings) -> [Waits; 3] {
        let mut shard = Shard::default();
        // Room for every subscriber from the start: a table growing past 50k entries takes
        // tens of milliseconds to move, a pause of its own that a publish has nothing to do with.
        shard.entries.reserve(SUBSCRIBERS as usize);
        let mut sim = Simulator::new(SUBSCRIBERS, 11);
        let mut clock: DateTime<FixedOffset> =
            DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap();
        let profile = Arc::new(Profile::default());
        let (mut recs, mut fails) = (Vec::new(), Vec::new());
        let mut waits = [Waits::default(); 3];
        // What the first event of the next batch waits for besides itself.
        let mut carried = (Duration::ZERO, Duration::ZERO);
        while !self.stop.load(Ordering::Relaxed) {
            let batch: Vec<_> = (0..BATCH)
                .map(|_| {
                    clock += chrono::Duration::microseconds(500);
                    Arc::new(sim.next_event(clock))
                })
                .collect();
            let started = Instant::now();
            let mut last = now();
            let loaded = self.loaded.load_full();
            let (mut longest, mut longest_cpu) = (Duration::ZERO, Duration::ZERO);
            for (i, ev) in batch.iter().enumerate() {
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
                let t = now();
                let (mut wall, mut cpu) = (t.0 - last.0, t.1.saturating_sub(last.1));
                if i == 0 {
                    wall += carried.0;
                    cpu += carried.1;
                }
                last = t;
                longest = longest.max(wall);
                longest_cpu = longest_cpu.max(cpu);
            }
            account(&loaded.rules, settings, started.elapsed());
            // The old pair goes when its last batch lets go of it: the next events wait on it.
            let dropping = now();
            drop(loaded);
            let dropped = now();
            carried = (dropped.0 - dropping.0, dropped.1.saturating_sub(dropping.1));
            let w = &mut waits[self.phase.load(Ordering::Relaxed)];
            w.longest = w.longest.max(longest);
            w.longest_cpu = w.longest_cpu.max(longest_cpu);
            w.longest_drop = w.longest_drop.max(carried.0);
            w.events += BATCH as u64;
        }
        waits
    }
}

/// What events waited in steady operation on the old set, and from the start of a publish
/// until a second after its swap.
fn pause_during_publish(config: &Config, old: &Files, new: &Files) -> (Waits, Waits) {
    let settings = MatchSettings::from_config(&config.engine).unwrap();
    let mut base = Policy::from_config(config).unwrap();
    base.go_status = Status::Proposed;
    base.market_unknown = true;
    let first = compiled(old, config);
    let p = policy(config, &first, &base);
    let loaded = Arc::new(Loaded::new(first.rules, p));
    let stop = Arc::new(AtomicBool::new(false));
    let phase = Arc::new(AtomicUsize::new(0));
    let worker = Worker {
        loaded: loaded.clone(),
        stop: stop.clone(),
        phase: phase.clone(),
    };
    std::thread::scope(|s| {
        let running = s.spawn(|| worker.run(&settings));
        // Warm up: subscribers get state on the old set.
        std::thread::sleep(Duration::from_secs(3));
        phase.store(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_secs(1));
        phase.store(2, Ordering::Relaxed);
        // The publish: compiled off the event path on a thread of its own at a lower
        // priority (as `compile_off_thread` does), then swapped in whole.
        let (next, p) = s
            .spawn(|| {
                lower_priority();
                let next = compiled(new, config);
                let p = policy(config, &next, &base);
                (next, p)
            })
            .join()
            .unwrap();
        // As `Pipeline::swap` does: the old pair is freed off the event path.
        retire(loaded.swap(Arc::new(Loaded {
            rules: Arc::new(next.rules),
            policy: Arc::new(p),
        })));
        std::thread::sleep(Duration::from_secs(1));
        phase.store(0, Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        let waits = running.join().unwrap();
        assert!(waits[2].events > 0, "no events ran during the publish");
        (waits[1], waits[2])
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
                retire(loaded.swap(Arc::new(Loaded {
                    rules: Arc::new(next.rules),
                    policy: Arc::new(p),
                })));
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
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        eprintln!(
            "[publish] run {run}/{runs}: longest wait of an event, wall (engine CPU): steady \
             {:.2} ms ({:.2} ms); from the publish until a second after its swap {:.2} ms \
             ({:.2} ms); old set dropped on the worker in {:.2} ms at most; {} events then",
            ms(steady.longest),
            ms(steady.longest_cpu),
            ms(during.longest),
            ms(during.longest_cpu),
            ms(during.longest_drop),
            during.events
        );
    }
}

criterion_group!(benches, publish);
criterion_main!(benches);
