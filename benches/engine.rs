//! Engine throughput on the standard rule pack over a simulated stream of 1M subscribers,
//! single core, JSON decode included; and how cost scales with unrelated rules.
//!
//! `cargo bench --bench engine`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::DateTime;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kairos::config::Config;
use kairos::decision::Policy;
use kairos::engine::{MatchSettings, Shard, WARM_GROUP};
use kairos::event::{decode, decode_str};
use kairos::ports::{Profile, Status};
use kairos::rules::{load_sources, RuleSet};
use kairos::sim::Simulator;

// The allocator the `kairos` binary runs with.
#[global_allocator]
static ALLOC: kairos::alloc::Allocator = kairos::alloc::Allocator;

const SUBSCRIBERS: u64 = 1_000_000;
const BATCH: usize = 100_000;

fn pack_sources() -> Vec<(PathBuf, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules");
    walk(&dir)
}

fn walk(dir: &std::path::Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "rhai") {
            out.push((p.clone(), std::fs::read_to_string(&p).unwrap()));
        }
    }
    out.sort();
    out
}

/// Rules on event types the stream never carries: they must cost (almost) nothing.
fn unrelated(n: usize) -> Vec<(PathBuf, String)> {
    (0..n)
        .map(|i| {
            let src = format!(
                r#"#{{ id: "other-{i}", name: "other {i}", kind: "dynamic", events: ["other_type_{}"], channels: ["sms"],
                offer: #{{ code: "O{i}" }}, message: "x" }};
                fn condition(event, profile) {{ count("other_type_{}", "24h") > 2 }}"#,
                i % 50,
                i % 50
            );
            (PathBuf::from(format!("other-{i}.rhai")), src)
        })
        .collect()
}

struct Bench {
    rules: RuleSet,
    settings: MatchSettings,
    policy: Policy,
    profile: Arc<Profile>,
    shard: Shard,
    sim: Simulator,
    clock: DateTime<chrono::FixedOffset>,
}

impl Bench {
    fn new(sources: Vec<(PathBuf, String)>) -> Bench {
        let cfg = Config::default();
        let rules = load_sources(sources, &cfg.engine.limits, &cfg.channels.enabled).unwrap();
        let mut policy = Policy::from_config(&cfg).unwrap();
        policy.go_status = Status::Proposed;
        Bench {
            rules,
            settings: MatchSettings::from_config(&cfg.engine).unwrap(),
            policy,
            profile: Arc::new(Profile::default()),
            shard: Shard::default(),
            sim: Simulator::new(SUBSCRIBERS, 7),
            clock: DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap(),
        }
    }

    /// The next slice of the stream as NDJSON lines (not timed).
    fn lines(&mut self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                // ~2,000 events/s of simulated network time.
                self.clock += chrono::Duration::microseconds(500);
                self.sim.next_json(self.clock).to_string()
            })
            .collect()
    }

    /// Decode + match + decide, one thread (timed).
    fn run(&mut self, lines: &[String]) -> usize {
        let mut recs = Vec::new();
        let mut fails = Vec::new();
        let mut offers = 0;
        let mut group = Vec::with_capacity(WARM_GROUP);
        for chunk in lines.chunks(WARM_GROUP) {
            group.clear();
            group.extend(chunk.iter().map(|l| Arc::new(decode_str(l).unwrap())));
            self.shard.warm(group.iter().map(|e| &e.msisdn));
            for ev in &group {
                recs.clear();
                let _ = self.shard.process(
                    &self.rules,
                    &self.settings,
                    &self.policy,
                    &self.profile,
                    ev,
                    &mut recs,
                    &mut fails,
                );
                offers += recs.len();
            }
        }
        offers
    }
}

fn measure(c: &mut Criterion, name: &str, sources: Vec<(PathBuf, String)>) {
    let mut b = Bench::new(sources);
    // Warm up: most of the 1M subscribers get state, as in steady operation.
    for _ in 0..10 {
        let lines = b.lines(BATCH);
        b.run(&lines);
    }
    let quarantined: Vec<&str> = b
        .rules
        .rules
        .iter()
        .filter(|r| r.breaker.is_open())
        .map(|r| r.meta.id.as_str())
        .collect();
    eprintln!(
        "[{name}] {} rules ({} quarantined: {quarantined:?}), {} subscribers with state, ~{} bytes of state each",
        b.rules.rules.len(),
        quarantined.len(),
        b.shard.entries.len(),
        b.shard.avg_state_bytes()
    );
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function(name, |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let lines = b.lines(BATCH);
                let t = Instant::now();
                std::hint::black_box(b.run(&lines));
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
}

/// A rule that fails on every run of the stream's most common type: it grows a list until a
/// sandbox limit stops it. Its breaker trips in the warm-up; what is measured is what a
/// quarantined rule costs the stream from then on.
fn hostile() -> (PathBuf, String) {
    let src = r#"#{ id: "grow-array", name: "grows a list", kind: "dynamic", events: ["location_update", "data_session", "call", "sms"],
        channels: ["sms"], offer: #{ code: "NEVER" }, message: "never" };
        fn condition(event, profile) { let seen = []; loop { seen.push(event.type); let copy = seen; } }"#;
    (PathBuf::from("grow-array.rhai"), src.to_string())
}

fn standard_pack(c: &mut Criterion) {
    measure(c, "standard_pack_1M_subscribers", pack_sources());
    let mut with_hostile = pack_sources();
    with_hostile.push(hostile());
    measure(
        c,
        "standard_pack_plus_failing_rule_1M_subscribers",
        with_hostile,
    );
}

fn rule_scaling(c: &mut Criterion) {
    let pack = pack_sources();
    let n = pack.len();
    let mut thirty = pack.clone();
    thirty.extend(unrelated(30usize.saturating_sub(n)));
    measure(c, "30_rules", thirty);
    let mut thousand = pack;
    thousand.extend(unrelated(1000 - n));
    measure(c, "1000_rules", thousand);
}

fn decode_only(c: &mut Criterion) {
    let mut sim = Simulator::new(SUBSCRIBERS, 3);
    let t = DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap();
    let lines: Vec<String> = (0..BATCH).map(|_| sim.next_json(t).to_string()).collect();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    g.bench_function("contract_event", |b| {
        b.iter(|| {
            for l in &lines {
                std::hint::black_box(decode(l.as_bytes()).unwrap());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, decode_only, standard_pack, rule_scaling);
criterion_main!(benches);
