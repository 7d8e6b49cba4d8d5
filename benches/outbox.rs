//! The outbox's own cost per recommendation, the network left out: a channel that answers at
//! once, so what is measured is the deliverer (lane, claim, status written back) on SQLite and
//! PostgreSQL (when `KAIROS_TEST_PG_URL` is set). Run: `cargo bench --bench outbox`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kairos::channels::{Channel, ChannelError, Delivery, Dispatcher, OutboxSettings, Registry};
use kairos::pipeline::RecStore;
use kairos::ports::{Recommendation, Status};
use kairos::store::Db;

struct Instant200 {
    sent: AtomicU64,
    /// Whether the provider recognises a repeat by its key (SMPP does not).
    idempotent: bool,
}

#[async_trait::async_trait]
impl Channel for Instant200 {
    fn name(&self) -> &str {
        "sms"
    }
    fn idempotent(&self) -> bool {
        self.idempotent
    }
    async fn send(&self, rec: &Recommendation) -> Result<Delivery, ChannelError> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(Delivery::sent_as(rec.id.clone()))
    }
}

fn rec(batch: u64, i: u64) -> Recommendation {
    let now = chrono::Utc::now().fixed_offset();
    Recommendation {
        id: format!("b{batch}-r{i}"),
        msisdn: kairos::event::Msisdn::parse(&format!("86139{:08}", i % 100_000_000)).unwrap(),
        rule_id: "bench".into(),
        offer_code: "BENCH".into(),
        channel: "sms".into(),
        message: "Welcome to Japan! 1 GB of data for 7 days, reply Y to buy.".into(),
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

/// The lane's channel: a gateway that recognises repeats (HTTP, portal, agent, Kafka), or
/// one that cannot with SMPP's usual window of 10 submits in flight.
#[derive(Clone, Copy)]
struct Lane {
    idempotent: bool,
    concurrency: usize,
}

const LANES: [(&str, Lane); 2] = [
    (
        "",
        Lane {
            idempotent: true,
            concurrency: 16,
        },
    ),
    (
        "_no_repeats",
        Lane {
            idempotent: false,
            concurrency: 10,
        },
    ),
];

/// Delivers `n` stored offers through a fresh deliverer; the time from hand-over to the last
/// status written.
async fn deliver(url: &str, batch: u64, n: u64, lane: Lane) -> Duration {
    let db = Db::connect(url, 8).await.unwrap();
    let store = RecStore::new(db.clone());
    let ch = Arc::new(Instant200 {
        sent: AtomicU64::new(0),
        idempotent: lane.idempotent,
    });
    let mut registry = Registry::default();
    registry.add(ch.clone());
    let c = kairos::config::ChannelsConfig {
        concurrency: lane.concurrency,
        outbox_sweep_secs: 3600,
        ..Default::default()
    };
    let (d, _) = Dispatcher::start(
        registry,
        store.clone(),
        OutboxSettings::from_config(&c, true),
    );
    // The start's sweep finds nothing to do before the offers are stored (as the engine's
    // commit stores them), so what is timed is the hand-over path alone.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let recs: Vec<Recommendation> = (0..n).map(|i| rec(batch, i)).collect();
    store.insert(&recs).await.unwrap();
    let cpu0 = cpu_time();
    let start = Instant::now();
    for r in recs {
        assert!(d.offer(r), "the lane takes the batch");
    }
    let last = format!("b{batch}-r{}", n - 1);
    loop {
        let done = ch.sent.load(Ordering::Relaxed) == n
            && store.get(&last).await.unwrap().unwrap().status == Status::Sent;
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let took = start.elapsed();
    if std::env::var("OUTBOX_CPU").is_ok() {
        let cpu = (cpu_time() - cpu0) / n as u32;
        eprintln!("per offer: {cpu:?} CPU, {:?} wall", took / n as u32);
    }
    // The outbox sweep keeps its pool until its next tick (an hour here): closed now, or
    // the runs' idle connections use up PostgreSQL's `max_connections` and the bench hangs.
    db.pool.close().await;
    db.writer.close().await;
    took
}

/// This process's CPU time so far (user + system), from /proc (Linux).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime), in clock ticks (100 a second); after the name they
    // are the 12th and 13th.
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let ticks = tick(11) + tick(12);
    Duration::from_millis(ticks * 10)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut targets = vec![(
        "sqlite",
        format!("sqlite://{}?mode=rwc", dir.path().join("b.db").display()),
    )];
    if let Ok(pg) = std::env::var("KAIROS_TEST_PG_URL") {
        targets.push(("postgres", pg));
    }
    const N: u64 = 2_000;
    let mut g = c.benchmark_group("outbox");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    let batch = AtomicU64::new(std::process::id() as u64 * 1_000_000);
    for (name, url) in targets {
        for (kind, lane) in LANES {
            g.bench_function(format!("deliver_2000_{name}{kind}"), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let url = url.clone();
                    let first = batch.fetch_add(iters, Ordering::Relaxed);
                    async move {
                        let mut total = Duration::ZERO;
                        for k in 0..iters {
                            total += deliver(&url, first + k, N, lane).await;
                        }
                        total
                    }
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
