//! Writes simulated network traffic as NDJSON, for `kairos replay` and load tests.
//!
//! `cargo run --release --example simulate -- SUBSCRIBERS EVENTS > events.ndjson`

use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    let subscribers: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let events: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut sim = kairos::sim::Simulator::new(subscribers, 42);
    let mut clock =
        chrono::DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").expect("valid time");
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out.lock());
    for _ in 0..events {
        clock += chrono::Duration::microseconds(500);
        serde_json::to_writer(&mut out, &sim.next_json(clock)).expect("stdout");
        out.write_all(b"\n").expect("stdout");
    }
    out.flush().expect("stdout");
}
