//! Load tool for durable HTTP ingest: posts NDJSON batches of simulated traffic to a running
//! `kairos serve` from several connections, and reports the acknowledged rate and the
//! acknowledgement latency (every 2xx means committed). It also runs the in-process engine
//! (decode + rules + decisions, one core, no I/O) over the same events, so the two rates
//! are compared in one run on one machine.
//!
//! ```sh
//! KAIROS_AUTH__BOOTSTRAP_ADMIN_KEY=load-key cargo run --release -- serve &
//! cargo run --release --example ingest_load -- --key load-key --events 1000000 \
//!     --subscribers 200000 --concurrency 8 --batch 500            # full speed
//! cargo run --release --example ingest_load -- --key load-key --rate 50000   # paced
//! ```
//! `--pid PID` samples the server's resident memory while it runs (Linux): the peak, and the
//! resident size at every tenth of the events acknowledged (flat over many distinct
//! subscribers is the goal), and the CPU time the server used per event.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: kairos::alloc::Allocator = kairos::alloc::Allocator;

struct Args {
    url: String,
    key: String,
    events: usize,
    subscribers: u64,
    concurrency: usize,
    batch: usize,
    rate: u64,
    pid: Option<u32>,
    rules: String,
}

fn args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:8080".into(),
        key: std::env::var("KAIROS_KEY").unwrap_or_default(),
        events: 500_000,
        subscribers: 100_000,
        concurrency: 8,
        batch: 500,
        rate: 0,
        pid: None,
        rules: "rules".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = val(),
            "--key" => a.key = val(),
            "--events" => a.events = val().parse().expect("--events N"),
            "--subscribers" => a.subscribers = val().parse().expect("--subscribers N"),
            "--concurrency" => a.concurrency = val().parse().expect("--concurrency N"),
            "--batch" => a.batch = val().parse().expect("--batch N"),
            "--rate" => a.rate = val().parse().expect("--rate EVENTS_PER_SEC"),
            "--pid" => a.pid = Some(val().parse().expect("--pid PID")),
            "--rules" => a.rules = val(),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// Traffic of the last minutes, in NDJSON batches: every subscriber appears once before any
/// appears twice, so `--subscribers` distinct ones are reached after that many events.
fn batches(a: &Args) -> Vec<String> {
    let mut sim = kairos::sim::Simulator::new(a.subscribers, 42);
    let span = chrono::Duration::minutes(20);
    let start = (chrono::Utc::now() - span).fixed_offset();
    let step = span.num_microseconds().unwrap() / a.events.max(1) as i64;
    let mut out = Vec::with_capacity(a.events / a.batch + 1);
    let mut cur = String::with_capacity(a.batch * 200);
    for i in 0..a.events {
        let t = start + chrono::Duration::microseconds(step * i as i64);
        let mut v = sim.next_json(t);
        // Spread over all subscribers in turn (the simulator alone favours scenario ones).
        v["msisdn"] = serde_json::json!(sim.msisdn(i as u64 % a.subscribers));
        cur.push_str(&v.to_string());
        cur.push('\n');
        if (i + 1) % a.batch == 0 {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// CPU seconds (user + system) the process has used so far, from `/proc/PID/stat`.
fn cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) end at its closing parenthesis;
    // utime and stime are fields 14 and 15, in clock ticks (100 a second on Linux).
    let rest = &s[s.rfind(')')? + 2..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: f64 = f.next()?.parse().ok()?;
    let stime: f64 = f.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn rss_mb(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The engine alone on the same events: one core, decode included, no I/O.
fn engine_rate(a: &Args, batches: &[String]) -> f64 {
    let config = kairos::config::Config::default();
    let rules = kairos::rules::load_dir(
        std::path::Path::new(&a.rules),
        &config.engine.limits,
        &config.channels.enabled,
    )
    .expect("rules load");
    let input = batches.concat();
    let t = Instant::now();
    // On one core.
    let summary = kairos::replay::replay_on(
        &rules,
        &config,
        std::io::BufReader::new(input.as_bytes()),
        std::io::sink(),
        Default::default(),
        |_| {},
        1,
    )
    .expect("replay");
    summary.events as f64 / t.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    kairos::alloc::tune();
    let a = args();
    eprintln!(
        "generating {} events over {} subscribers...",
        a.events, a.subscribers
    );
    let batches = Arc::new(batches(&a));
    let engine = engine_rate(&a, &batches);
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let lat = Arc::new(Mutex::new(Vec::<Duration>::with_capacity(batches.len())));
    let failed = Arc::new(AtomicUsize::new(0));
    let peak_rss = Arc::new(Mutex::new(0f64));
    // Resident size when each tenth of the batches had been taken by a sender.
    let rss_by_tenth = Arc::new(Mutex::new(Vec::<f64>::new()));
    let cpu_before = a.pid.and_then(cpu_secs);
    if let Some(pid) = a.pid {
        let (peak, tenths, next, total) = (
            peak_rss.clone(),
            rss_by_tenth.clone(),
            next.clone(),
            batches.len(),
        );
        tokio::spawn(async move {
            loop {
                if let Some(m) = rss_mb(pid) {
                    let mut p = peak.lock().unwrap();
                    *p = p.max(m);
                    let mut t = tenths.lock().unwrap();
                    let done = next.load(Ordering::Relaxed).min(total);
                    while t.len() < 10 && done * 10 >= (t.len() + 1) * total {
                        t.push(m);
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }
    let started = Instant::now();
    // Paced runs send batch i no earlier than i * batch / rate seconds after the start.
    let pace = (a.rate > 0).then(|| Duration::from_secs_f64(a.batch as f64 / a.rate as f64));
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (http, batches, next, lat, failed) = (
            http.clone(),
            batches.clone(),
            next.clone(),
            lat.clone(),
            failed.clone(),
        );
        let (url, key) = (format!("{}/api/v1/events", a.url), a.key.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = batches.get(i) else { break };
                if let Some(p) = pace {
                    let due = started + p * i as u32;
                    tokio::time::sleep_until(due.into()).await;
                }
                let t = Instant::now();
                let r = http
                    .post(&url)
                    .bearer_auth(&key)
                    .header("content-type", "application/x-ndjson")
                    .body(body.clone())
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.lock().unwrap().push(t.elapsed());
                    }
                    Ok(r) => {
                        let n = failed.fetch_add(1, Ordering::Relaxed);
                        if n < 3 {
                            eprintln!("batch {i}: {}", r.status());
                        }
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("batch {i}: {e}");
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_used = a
        .pid
        .and_then(cpu_secs)
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let mut lat = lat.lock().unwrap().clone();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(f64::NAN)
    };
    let acked = lat.len() * a.batch;
    let rate = acked as f64 / secs;
    println!(
        "ingest: {acked} events acknowledged in {secs:.1}s = {rate:.0} events/s \
         ({} batches of {}, {} connections, {} failed)",
        lat.len(),
        a.batch,
        a.concurrency,
        failed.load(Ordering::Relaxed)
    );
    println!(
        "ack latency per batch: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "in-process engine on the same events (1 core): {engine:.0} events/s; ingest is {:.2}x of it",
        rate / engine
    );
    if a.pid.is_some() {
        let tenths: Vec<String> = rss_by_tenth
            .lock()
            .unwrap()
            .iter()
            .map(|m| format!("{m:.0}"))
            .collect();
        println!(
            "server peak RSS: {:.0} MB; at each tenth of the events: {} MB",
            *peak_rss.lock().unwrap(),
            tenths.join(" ")
        );
    }
    if let Some(cpu) = cpu_used {
        println!(
            "server CPU: {cpu:.1} s over {secs:.1} s ({:.2} cores), {:.1} us per acknowledged event",
            cpu / secs,
            cpu * 1e6 / acked.max(1) as f64
        );
    }
}
