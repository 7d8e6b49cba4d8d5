//! Splits the engine's cost in two on a real event file: JSON decode, then matching and
//! deciding on one shard, each timed alone. The first half of the file warms the shard (most
//! subscribers get state, as in steady operation). The third quarter is measured in two
//! phases, decode then engine; the last quarter as the pipeline runs (decode a group, warm
//! it, process it) in chunks of 100k events, reported as the median and best chunk, which
//! is what to compare between two builds on a noisy machine.
//!
//! ```sh
//! cargo run --release --example simulate -- 1000000 4000000 > /tmp/ev.ndjson
//! cargo run --release --example engine_split -- /tmp/ev.ndjson
//! ```
//! `WARM_GROUP=0` turns off warming subscriber state ahead, to see what it buys.

use std::io::BufRead;
use std::sync::Arc;
use std::time::Instant;

use kairos::config::Config;
use kairos::decision::Policy;
use kairos::engine::{MatchSettings, Shard, WARM_GROUP};
use kairos::event::{decode_str, Event};
use kairos::ports::{Profile, Status};
use kairos::rules::load_dir;

// The allocator the `kairos` binary runs with.
#[global_allocator]
static ALLOC: kairos::alloc::Allocator = kairos::alloc::Allocator;

fn main() {
    kairos::alloc::tune();
    let path = std::env::args()
        .nth(1)
        .expect("usage: engine_split EVENTS.ndjson");
    let group = std::env::var("WARM_GROUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(WARM_GROUP);
    let file = std::fs::File::open(&path).expect("events file");
    let lines: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .map(|l| l.expect("readable line"))
        .collect();
    let (warm, measured) = lines.split_at(lines.len() / 2);
    let (apart, together) = measured.split_at(measured.len() / 2);

    let cfg = Config::default();
    let rules = load_dir(
        std::path::Path::new("rules"),
        &cfg.engine.limits,
        &cfg.channels.enabled,
    )
    .expect("rules/ loads");
    let mut policy = Policy::from_config(&cfg).expect("default policy");
    policy.go_status = Status::Proposed;
    policy.market_unknown = true;
    let settings = MatchSettings::from_config(&cfg.engine).expect("default settings");
    let profile = Arc::new(Profile::default());
    let mut shard = Shard::default();
    // Sized up front: growing the map mid-run would be timed as engine work.
    shard.entries.reserve(lines.len() / 2);
    let (mut recs, mut fails) = (Vec::new(), Vec::new());
    let mut run = |shard: &mut Shard, events: &[Arc<Event>]| {
        let mut offers = 0;
        for (i, ev) in events.iter().enumerate() {
            if group > 0 && i % group == 0 {
                let end = (i + group).min(events.len());
                shard.warm(events[i..end].iter().map(|e| &e.msisdn));
            }
            recs.clear();
            let _ = shard.process(
                &rules, &settings, &policy, &profile, ev, &mut recs, &mut fails,
            );
            offers += recs.len();
        }
        offers
    };

    let decode = |lines: &[String]| -> Vec<Arc<Event>> {
        lines
            .iter()
            .map(|l| Arc::new(decode_str(l).expect("valid event")))
            .collect()
    };
    let warm_events = decode(warm);
    run(&mut shard, &warm_events);
    drop(warm_events);

    let t = Instant::now();
    let events = decode(apart);
    let decode_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let offers = run(&mut shard, &events);
    let engine_secs = t.elapsed().as_secs_f64();
    let n = events.len() as f64;
    println!(
        "{} subscribers with state, ~{} bytes each",
        shard.entries.len(),
        shard.avg_state_bytes()
    );
    println!("decode: {:.0} events/s", n / decode_secs);
    println!(
        "engine: {:.0} events/s ({offers} offers, warm group {group})",
        n / engine_secs
    );
    println!("both:   {:.0} events/s", n / (decode_secs + engine_secs));
    drop(events);

    let mut rates = Vec::new();
    for chunk in together.chunks(100_000) {
        let t = Instant::now();
        for lines in chunk.chunks(group.max(1)) {
            run(&mut shard, &decode(lines));
        }
        rates.push(chunk.len() as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    if let (Some(median), Some(best)) = (rates.get(rates.len() / 2), rates.last()) {
        println!("as the pipeline runs: median {median:.0}, best {best:.0} events/s");
    }
}
