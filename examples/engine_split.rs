//! Splits the engine's cost in two on a real event file: JSON decode, then matching and
//! deciding on one shard, each timed alone. The first half of the file warms the shard (most
//! subscribers get state, as in steady operation); the second half is measured.
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
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
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

    let cfg = Config::default();
    let rules = load_dir(
        std::path::Path::new("rules"),
        &cfg.engine.limits,
        &cfg.channels.enabled,
    )
    .expect("rules/ loads");
    let mut policy = Policy::from_config(&cfg).expect("default policy");
    policy.go_status = Status::Proposed;
    let settings = MatchSettings::from_config(&cfg.engine).expect("default settings");
    let profile = Arc::new(Profile::default());
    let mut shard = Shard::default();
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
    let events = decode(measured);
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
}
