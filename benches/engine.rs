//! Engine throughput on the standard rule pack over a simulated stream of 1M subscribers,
//! single core, JSON decode included; how cost scales with unrelated rules; and what the
//! decision stage costs: the same stream with no decisions made (match only), with the
//! default policy and with every section of the contact policy on (`FULL_POLICY`).
//!
//! `cargo bench --bench engine`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::DateTime;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kairos::config::Config;
use kairos::decision::Policy;
use kairos::engine::{account, evaluate, MatchSettings, Shard, ShardEntry, WARM_GROUP};
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
                r#"#{{ id: "other-{i}", name: "other {i}", kind: "dynamic", events: ["other_type_{}"], custom_events: ["other_type_{}"], channels: ["sms"],
                offer: #{{ code: "O{i}" }}, message: "x" }};
                fn condition(event, profile) {{ count("other_type_{}", "24h") > 2 }}"#,
                i % 50,
                i % 50,
                i % 50
            );
            (PathBuf::from(format!("other-{i}.rhai")), src)
        })
        .collect()
}

/// A contact policy with every section on, learning included: what the decision stage
/// costs when a marketer uses all of it.
const FULL_POLICY: &str = r#"
[[cap]]
channels = ["sms"]
max = 1
per = "day"
[[cap]]
max = 3
per = "week"
[[cap]]
channels = ["portal"]
max = 5
per = "24h"
[[suppress]]
after = "declined"
for = "14d"
[[suppress]]
after = "ignored"
times = 2
within = "30d"
for = "60d"
[quiet_hours]
from = "21:00"
to = "08:00"
channels = ["sms"]
[control]
holdout = "5%"
[arbitration]
channel_weight = { sms = 1.0, portal = 0.8 }
lever = { roaming-welcome = 1.5 }
top_n = { sms = 1, portal = 2 }
channel_cost = { sms = 0.05, portal = 0.0, agent = 2.0 }
[capacity]
agent = 100000
[eligibility]
hold_when = { account_state = ["suspended"] }
[propensity]
learn = true
"#;

/// What decides after the match.
enum Stage {
    /// Nothing: candidates are matched and dropped (the engine's cost without decisions).
    MatchOnly,
    Default,
    FullPolicy,
}

struct Bench {
    rules: RuleSet,
    settings: MatchSettings,
    /// `None`: match only.
    policy: Option<Policy>,
    profile: Arc<Profile>,
    shard: Shard,
    sim: Simulator,
    clock: DateTime<chrono::FixedOffset>,
    candidates: Vec<kairos::engine::Candidate>,
}

impl Bench {
    fn new(sources: Vec<(PathBuf, String)>, stage: Stage) -> Bench {
        let mut cfg = Config::default();
        let rules = load_sources(sources, &cfg.engine.limits, &cfg.channels.enabled).unwrap();
        let dir = tempfile::tempdir().unwrap();
        if let Stage::FullPolicy = stage {
            std::fs::write(dir.path().join("policy.toml"), FULL_POLICY).unwrap();
            cfg.engine.rules_dir = dir.path().to_path_buf();
        }
        let policy = match stage {
            Stage::MatchOnly => None,
            _ => {
                let mut p = Policy::from_config(&cfg).unwrap();
                p.go_status = Status::Proposed;
                // Simulated numbers have no CRM record; decide for them as a replay does.
                p.market_unknown = true;
                Some(p)
            }
        };
        Bench {
            rules,
            settings: MatchSettings::from_config(&cfg.engine).unwrap(),
            policy,
            profile: Arc::new(Profile::default()),
            shard: Shard::default(),
            sim: Simulator::new(SUBSCRIBERS, 7),
            clock: DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap(),
            candidates: Vec::new(),
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
            let started = Instant::now();
            group.clear();
            group.extend(chunk.iter().map(|l| Arc::new(decode_str(l).unwrap())));
            self.shard.warm(group.iter().map(|e| &e.msisdn));
            for ev in &group {
                recs.clear();
                let Some(policy) = &self.policy else {
                    offers += self.match_only(ev, &mut fails);
                    continue;
                };
                let _ = self.shard.process(
                    &self.rules,
                    &self.settings,
                    policy,
                    &self.profile,
                    ev,
                    &mut recs,
                    &mut fails,
                );
                offers += recs.len();
            }
            // As the pipeline does: the rules' time shares are checked per group.
            account(&self.rules, &self.settings, started.elapsed());
        }
        offers
    }
}

impl Bench {
    /// What [`Shard::process`] does before deciding: the candidates, counted and dropped.
    fn match_only(
        &mut self,
        ev: &Arc<kairos::event::Event>,
        fails: &mut Vec<kairos::engine::RuleFailure>,
    ) -> usize {
        let profile = &self.profile;
        let e = self
            .shard
            .entries
            .entry(ev.msisdn)
            .or_insert_with(|| ShardEntry {
                state: Default::default(),
                profile: profile.clone(),
                dirty: false,
                touched: 0,
                owned: true,
            });
        let mut cands = std::mem::take(&mut self.candidates);
        cands.clear();
        let _ = evaluate(
            &self.rules,
            &self.settings,
            &mut e.state,
            &e.profile,
            ev,
            &mut cands,
            fails,
        );
        let n = cands.len();
        self.candidates = cands;
        n
    }
}

fn measure(c: &mut Criterion, name: &str, sources: Vec<(PathBuf, String)>) {
    measure_stage(c, name, sources, Stage::Default)
}

fn measure_stage(c: &mut Criterion, name: &str, sources: Vec<(PathBuf, String)>, stage: Stage) {
    let mut b = Bench::new(sources, stage);
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

/// A rule that never fails but takes hundreds of microseconds a run (it counts to 1,500,
/// within its limits): its time share trips its breaker in the warm-up.
fn slow() -> (PathBuf, String) {
    let src = r#"#{ id: "slow", name: "counts on every event", kind: "dynamic", events: ["location_update", "data_session", "call", "sms"],
        channels: ["sms"], offer: #{ code: "NEVER" }, message: "never" };
        fn condition(event, profile) { let n = 0; for i in 0..1500 { n += i; } n < 0 }"#;
    (PathBuf::from("slow.rhai"), src.to_string())
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
    let mut with_slow = pack_sources();
    with_slow.push(slow());
    measure(c, "standard_pack_plus_slow_rule_1M_subscribers", with_slow);
}

/// The decision stage's cost: the standard pack with no decisions, and with every section
/// of the contact policy on, beside `standard_pack_1M_subscribers` (the default policy).
fn decision_stage(c: &mut Criterion) {
    measure_stage(
        c,
        "standard_pack_match_only_1M_subscribers",
        pack_sources(),
        Stage::MatchOnly,
    );
    measure_stage(
        c,
        "standard_pack_full_policy_1M_subscribers",
        pack_sources(),
        Stage::FullPolicy,
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

criterion_group!(
    benches,
    decode_only,
    standard_pack,
    decision_stage,
    rule_scaling
);
criterion_main!(benches);
