//! Load tool for the SMS outbox over SMPP: does the deliverer hold the SMSC's contracted rate
//! (`[channels.delivery.sms] max_per_second`) without losing or repeating a message?
//!
//! It starts the SMSC the SMPP tests use (`tests/peers/smsc.js`, node, on a free port), stores
//! `--offers` queued SMS offers (each to its own number) in a fresh SQLite database (or
//! `--db postgres://...`), and hands them to a deliverer whose SMS lane is SMPP at `--tps`
//! with the session's `--window`. Everything is stored first, then handed over as fast as the
//! lane takes it (its in-memory queue holds 4096; what does not fit waits in the store), like a
//! campaign released at once. With `--paced` offers are stored and handed over at `--tps`
//! instead, as a steady stream of decisions would be: the latency then is the deliverer's own.
//!
//! From the SMSC's record it reports the submits per second (steady state: without the first
//! and last second; the throttle lets a second's worth through at once at the start), the
//! total time, what was submitted against what was stored (each offer once, none lost, none
//! twice), the receipts the SMSC sent and the offers they made `delivered`, and the time from
//! hand-over to submit (p50/p99; the last part's submit for a long message). It exits 1 if an
//! offer was lost (never submitted, or not `sent`/`delivered` in the store) or submitted twice.
//!
//! ```sh
//! (cd tests/peers && npm ci)
//! cargo build --release --example smpp_load
//! target/release/examples/smpp_load --offers 15000 --tps 500 --window 10
//! ```
//! Other flags: `--concurrency N` (the lane's sends in flight, default 10), `--chinese`
//! (UCS-2 text in two parts instead of one GSM 7-bit part), `--dlr-delay-ms N` (the SMSC's
//! wait before a receipt, default 300), `--db URL`, `--record FILE` (keep the SMSC's record).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kairos::channels::{Dispatcher, OutboxSettings, Registry};
use kairos::config::{ChannelDelivery, ChannelsConfig, SmppConfig};
use kairos::pipeline::RecStore;
use kairos::ports::{Recommendation, Status};
use kairos::store::Db;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

#[global_allocator]
static ALLOC: kairos::alloc::Allocator = kairos::alloc::Allocator;

const SHORT: &str = "Kairos: 1 GB of data for 7 days at 5 yuan. Reply Y to buy, TD to stop.";
/// 78 UCS-2 characters: two parts (67 + 11).
const CHINESE: &str = "【中国移动】尊敬的客户，您本月的流量即将用完。回复Y即可订购10GB流量包，每月30元，立即生效，次月自动续订；回复TD退订。详询10086，感谢您的支持！";

struct Args {
    offers: usize,
    tps: u32,
    window: usize,
    concurrency: usize,
    db: Option<String>,
    chinese: bool,
    paced: bool,
    dlr_delay_ms: u64,
    record: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        offers: 15_000,
        tps: 500,
        window: 10,
        concurrency: 10,
        db: None,
        chinese: false,
        paced: false,
        dlr_delay_ms: 300,
        record: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--offers" => a.offers = val().parse().expect("--offers N"),
            "--tps" => a.tps = val().parse().expect("--tps N"),
            "--window" => a.window = val().parse().expect("--window N"),
            "--concurrency" => a.concurrency = val().parse().expect("--concurrency N"),
            "--db" => a.db = Some(val()),
            "--chinese" => a.chinese = true,
            "--paced" => a.paced = true,
            "--dlr-delay-ms" => a.dlr_delay_ms = val().parse().expect("--dlr-delay-ms N"),
            "--record" => a.record = Some(PathBuf::from(val())),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(a.offers > 0 && a.offers < 10_000_000, "--offers 1..9999999");
    assert!(a.tps > 0, "--tps N > 0");
    a
}

/// Now as Unix milliseconds (the SMSC records its times the same way).
fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// The test SMSC on a free port, killed when dropped.
struct Smsc {
    port: u16,
    record: PathBuf,
    _child: tokio::process::Child,
}

impl Smsc {
    async fn start(record: PathBuf, dlr_delay_ms: u64) -> anyhow::Result<Smsc> {
        let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
        anyhow::ensure!(
            peers.join("node_modules/smpp").is_dir(),
            "tests/peers/node_modules is missing: run `npm ci` in tests/peers"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let _ = std::fs::remove_file(&record);
        let mut child = tokio::process::Command::new("node")
            .arg(peers.join("smsc.js"))
            .arg("--port")
            .arg(port.to_string())
            .arg("--record")
            .arg(&record)
            .arg(format!("--dlr-delay-ms={dlr_delay_ms}"))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting node: {e}"))?;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await??;
        anyhow::ensure!(
            first.as_deref() == Some(format!("listening {port}").as_str()),
            "the SMSC said {first:?}"
        );
        Ok(Smsc {
            port,
            record,
            _child: child,
        })
    }

    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// Offer `i` of run `run`: its own number, so the SMSC's record tells the offers apart.
fn offer(run: u32, i: usize, text: &str) -> Recommendation {
    let now = chrono::Utc::now().fixed_offset();
    Recommendation {
        id: format!("load-{run}-{i}"),
        msisdn: kairos::event::Msisdn::parse(&destination(run, i)).unwrap(),
        rule_id: "smpp-load".into(),
        offer_code: "LOAD-1GB".into(),
        channel: "sms".into(),
        message: text.into(),
        score: 0.5,
        trigger_event_id: None,
        campaign_id: None,
        request_id: None,
        decided_at: now,
        expires_at: now + chrono::Duration::days(1),
        not_before: None,
        status: Status::Queued,
        reason: None,
        explanation: None,
        service: false,
    }
}

fn destination(run: u32, i: usize) -> String {
    format!("86{run:04}{i:07}")
}

async fn status_counts(db: &Db, run: u32) -> anyhow::Result<BTreeMap<String, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, COUNT(*) FROM recommendations WHERE id LIKE $1 GROUP BY status",
    )
    .bind(format!("load-{run}-%"))
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().collect())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    kairos::alloc::tune();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KAIROS_LOG")
                // A long message's later parts have receipts no offer is filed under.
                .unwrap_or_else(|_| "warn,kairos::channels::dispatch=error".into()),
        )
        .init();
    let a = args();
    let text = if a.chinese { CHINESE } else { SHORT };
    let (coding, parts) = kairos::channels::sms::segments(text);
    let dir = tempfile::tempdir()?;
    let record = a
        .record
        .clone()
        .unwrap_or_else(|| dir.path().join("smsc.jsonl"));
    let smsc = Smsc::start(record, a.dlr_delay_ms).await?;
    let url = a.db.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("kairos.db").display()
        )
    });
    let db = Db::connect(&url, 8).await?;
    let store = RecStore::new(db.clone());
    let run = (SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() % 10_000) as u32;

    let mut channels = ChannelsConfig {
        enabled: vec!["sms".into()],
        outbox_sweep_secs: 1,
        ..Default::default()
    };
    channels.sms.mode = "smpp".into();
    channels.sms.sender = "10086".into();
    channels.sms.smpp = SmppConfig {
        host: "127.0.0.1".into(),
        port: smsc.port,
        system_id: "kairos".into(),
        password: "secret".into(),
        window: a.window,
        ..SmppConfig::default()
    };
    channels.delivery.insert(
        "sms".into(),
        ChannelDelivery {
            max_per_second: Some(a.tps),
            concurrency: Some(a.concurrency),
        },
    );
    let registry = Registry::from_config(&channels).map_err(anyhow::Error::msg)?;
    let (dispatcher, _task) = Dispatcher::start(
        registry,
        store.clone(),
        OutboxSettings::from_config(&channels, true),
    );
    // Bound before anything is handed over (a send before the bind is only retried later).
    let until = Instant::now() + Duration::from_secs(10);
    while !smsc
        .lines()
        .iter()
        .any(|l| l["type"] == "bind" && l["accepted"] == true)
    {
        anyhow::ensure!(Instant::now() < until, "no bind within 10s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    println!(
        "smpp_load: {} offers ({coding}, {parts} part(s) each), {} TPS, window {}, concurrency {}, {}, {}",
        a.offers,
        a.tps,
        a.window,
        a.concurrency,
        if a.paced { "paced at the TPS" } else { "all at once" },
        if url.starts_with("sqlite:") { "SQLite" } else { "PostgreSQL" },
    );
    let mut handed = vec![f64::NAN; a.offers];
    let started = Instant::now();
    let first_hand_over;
    if a.paced {
        // Every 10 ms the offers due by then: stored (one batch commit), then handed over.
        let per_tick = a.tps as f64 / 100.0;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut next = 0usize;
        let mut ticks = 0u64;
        first_hand_over = now_ms();
        while next < a.offers {
            tick.tick().await;
            ticks += 1;
            let due = ((ticks as f64 * per_tick) as usize).min(a.offers);
            if due == next {
                continue;
            }
            let batch: Vec<Recommendation> = (next..due).map(|i| offer(run, i, text)).collect();
            store.insert(&batch).await?;
            for (k, r) in batch.into_iter().enumerate() {
                // A full lane leaves it to the sweep (it is stored); counted from here anyway.
                dispatcher.offer(r);
                handed[next + k] = now_ms();
            }
            next = due;
        }
    } else {
        for chunk in (0..a.offers).collect::<Vec<_>>().chunks(1000) {
            let batch: Vec<Recommendation> = chunk.iter().map(|&i| offer(run, i, text)).collect();
            store.insert(&batch).await?;
        }
        println!(
            "stored in {:.1} s; handing over",
            started.elapsed().as_secs_f64()
        );
        first_hand_over = now_ms();
        for (i, at) in handed.iter_mut().enumerate() {
            let r = offer(run, i, text);
            // The lane's queue is full: wait for room (the sweep may take it meanwhile).
            while !dispatcher.offer(r.clone()) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            *at = now_ms();
        }
    }

    // Until every offer has an outcome, then until the receipts stop changing anything.
    let n = a.offers as i64;
    let settled = |c: &BTreeMap<String, i64>| {
        c.iter()
            .filter(|(s, _)| !matches!(s.as_str(), "queued" | "deferred"))
            .map(|(_, k)| k)
            .sum::<i64>()
    };
    let mut last = (-1, -1);
    let mut changed = Instant::now();
    loop {
        let c = status_counts(&db, run).await?;
        let now = (settled(&c), c.get("delivered").copied().unwrap_or(0));
        if now != last {
            last = now;
            changed = Instant::now();
        }
        let receipts_done = now.0 == n && c.get("sent").copied().unwrap_or(0) == 0;
        if receipts_done {
            break;
        }
        let quiet = changed.elapsed();
        if (now.0 == n && quiet > Duration::from_secs(5)) || quiet > Duration::from_secs(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The last receipts' answers reach the record.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let counts = status_counts(&db, run).await?;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, status FROM recommendations WHERE id LIKE $1")
            .bind(format!("load-{run}-%"))
            .fetch_all(&db.pool)
            .await?;
    let prefix = format!("load-{run}-");
    let mut status = vec![String::new(); a.offers];
    for (id, s) in rows {
        if let Some(i) = id
            .strip_prefix(&prefix)
            .and_then(|i| i.parse::<usize>().ok())
        {
            status[i] = s;
        }
    }
    drop(dispatcher);

    report(
        &a,
        run,
        parts,
        &smsc,
        &handed,
        first_hand_over,
        &counts,
        &status,
    )
}

#[allow(clippy::too_many_arguments)]
fn report(
    a: &Args,
    run: u32,
    parts: usize,
    smsc: &Smsc,
    handed: &[f64],
    first_hand_over: f64,
    counts: &BTreeMap<String, i64>,
    status: &[String],
) -> anyhow::Result<()> {
    let lines = smsc.lines();
    let by_dest: HashMap<String, usize> = (0..a.offers).map(|i| (destination(run, i), i)).collect();
    let mut first_parts = vec![0usize; a.offers];
    let mut all_parts = vec![0usize; a.offers];
    let mut submitted_at = vec![f64::NAN; a.offers];
    let (mut messages_at, mut pdus_at) = (Vec::new(), Vec::new());
    let (mut refused, mut unanswered, mut foreign) = (BTreeMap::new(), 0, 0);
    for l in lines.iter().filter(|l| l["type"] == "submit_sm") {
        match l["status"].as_u64() {
            Some(0) => {}
            Some(s) => {
                *refused.entry(format!("{s:#04x}")).or_insert(0) += 1;
                continue;
            }
            None => {
                unanswered += 1;
                continue;
            }
        }
        let at = l["at"].as_f64().expect("the SMSC records `at`");
        let Some(&i) = l["destination"].as_str().and_then(|d| by_dest.get(d)) else {
            foreign += 1;
            continue;
        };
        let first = l["udh"]["part"].as_u64().is_none_or(|p| p == 1);
        pdus_at.push(at);
        all_parts[i] += 1;
        if first {
            first_parts[i] += 1;
            messages_at.push(at);
        }
        if submitted_at[i].is_nan() || at > submitted_at[i] {
            submitted_at[i] = at;
        }
    }
    let deliver_sm = lines.iter().filter(|l| l["type"] == "deliver_sm").count();
    let deliver_sm_ok = lines
        .iter()
        .filter(|l| l["type"] == "deliver_sm_resp" && l["status"] == 0)
        .count();

    let never = first_parts.iter().filter(|&&k| k == 0).count();
    let twice = first_parts.iter().filter(|&&k| k > 1).count();
    let incomplete = (0..a.offers)
        .filter(|&i| first_parts[i] == 1 && all_parts[i] != parts)
        .count();
    let once = (0..a.offers)
        .filter(|&i| first_parts[i] == 1 && all_parts[i] == parts)
        .count();
    // Lost: never submitted, or not `sent`/`delivered` in the store (or not stored at all).
    let lost = (0..a.offers)
        .filter(|&i| first_parts[i] == 0 || !matches!(status[i].as_str(), "sent" | "delivered"))
        .count();

    // Submits per second, from the first accepted submit.
    messages_at.sort_by(f64::total_cmp);
    pdus_at.sort_by(f64::total_cmp);
    let t0 = messages_at.first().copied().unwrap_or(0.0);
    let t_end = pdus_at.last().copied().unwrap_or(t0);
    let mut per_sec: Vec<usize> = Vec::new();
    for at in &messages_at {
        let b = ((at - t0) / 1000.0) as usize;
        if per_sec.len() <= b {
            per_sec.resize(b + 1, 0);
        }
        per_sec[b] += 1;
    }
    let steady = if per_sec.len() >= 3 {
        &per_sec[1..per_sec.len() - 1]
    } else {
        &per_sec[..]
    };
    let steady_rate = steady.iter().sum::<usize>() as f64 / steady.len().max(1) as f64;
    let (steady_min, steady_max) = (
        steady.iter().min().copied().unwrap_or(0),
        steady.iter().max().copied().unwrap_or(0),
    );
    let mut latency: Vec<f64> = (0..a.offers)
        .filter(|&i| !submitted_at[i].is_nan() && !handed[i].is_nan())
        .map(|i| submitted_at[i] - handed[i])
        .collect();
    latency.sort_by(f64::total_cmp);

    println!(
        "submits/s:     {}",
        per_sec
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "steady state:  {steady_rate:.1} msg/s over {} s (min {steady_min}, max {steady_max}; first and last second left out); {} submit_sm PDUs in all",
        steady.len(),
        pdus_at.len()
    );
    println!(
        "total:         {:.2} s from the first hand-over to the last submit ({:.1} msg/s overall)",
        (t_end - first_hand_over) / 1000.0,
        messages_at.len() as f64 / ((t_end - first_hand_over) / 1000.0)
    );
    println!(
        "offers:        {} stored, {once} submitted once, {never} never, {twice} more than once, {incomplete} with missing parts; {foreign} submits to numbers not of this run",
        a.offers
    );
    println!("SMSC refused:  {refused:?}, unanswered {unanswered}");
    println!("store:         {counts:?}");
    println!(
        "receipts:      {deliver_sm} sent by the SMSC, {deliver_sm_ok} answered, {} offers delivered",
        counts.get("delivered").copied().unwrap_or(0)
    );
    println!(
        "hand-over to submit: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latency, 0.50),
        percentile(&latency, 0.99),
        latency.last().copied().unwrap_or(f64::NAN)
    );
    println!("lost {lost}, sent twice {twice}");
    if lost > 0 || twice > 0 || incomplete > 0 {
        std::process::exit(1);
    }
    Ok(())
}
