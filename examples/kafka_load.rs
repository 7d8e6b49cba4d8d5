//! Load tool for Kafka mode, end to end: simulated events on a topic -> Kairos (consumer
//! group, standard rule pack, state in Redis, decisions in PostgreSQL) -> every decision on
//! the recommendations topic. In the same run and on the same broker it times a bare
//! rdkafka consumer that only counts messages, the ceiling the broker sets here, and reports
//! Kairos's rate as a share of it; then it paces events at half that rate and reports the
//! latency from an event's production to its decision on the output topic; Redis round trips
//! per event; and this process's resident memory with the subscribers cached.
//!
//! ```sh
//! tansu broker &        # or any Kafka on 127.0.0.1:9092
//! cargo run --release --example kafka_load -- --brokers 127.0.0.1:9092 \
//!     --events 1000000 --subscribers 1000000 \
//!     --redis redis://127.0.0.1:6379 --pg postgres://postgres@127.0.0.1:5432/test
//! ```
//! `--paced-rate N` paces the latency run at N events/s instead of half the bare rate;
//! `--batch N` sets `kafka.batch_size`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

#[global_allocator]
static ALLOC: kairos::alloc::Allocator = kairos::alloc::Allocator;

struct Args {
    brokers: String,
    events: usize,
    subscribers: u64,
    partitions: i32,
    redis: String,
    pg: String,
    paced_secs: u64,
    paced_rate: Option<usize>,
    batch: usize,
}

fn args() -> Args {
    let mut a = Args {
        brokers: "127.0.0.1:9092".into(),
        events: 1_000_000,
        subscribers: 1_000_000,
        partitions: 4,
        redis: "redis://127.0.0.1:6379".into(),
        pg: "postgres://postgres@127.0.0.1:5432/test".into(),
        paced_secs: 10,
        paced_rate: None,
        batch: kairos::config::Config::default().kafka.batch_size,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--brokers" => a.brokers = val(),
            "--events" => a.events = val().parse().expect("--events N"),
            "--subscribers" => a.subscribers = val().parse().expect("--subscribers N"),
            "--partitions" => a.partitions = val().parse().expect("--partitions N"),
            "--redis" => a.redis = val(),
            "--pg" => a.pg = val(),
            "--paced-secs" => a.paced_secs = val().parse().expect("--paced-secs N"),
            "--paced-rate" => a.paced_rate = Some(val().parse().expect("--paced-rate N")),
            "--batch" => a.batch = val().parse().expect("--batch N"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Simulated traffic, keyed by msisdn, with ids unique to this run.
fn traffic(n: usize, subscribers: u64, seed: u64, tag: &str) -> Vec<(String, String)> {
    let mut sim = kairos::sim::Simulator::new(subscribers, seed);
    let mut clock = (chrono::Utc::now() - chrono::Duration::minutes(30)).fixed_offset();
    (0..n)
        .map(|i| {
            clock += chrono::Duration::microseconds(1500);
            let mut v = sim.next_json(clock);
            v["id"] = format!("{tag}-{i}").into();
            let key = v["msisdn"].as_str().unwrap().to_string();
            (key, v.to_string())
        })
        .collect()
}

async fn produce(p: &FutureProducer, topic: &str, msgs: &[(String, String)]) {
    for chunk in msgs.chunks(20_000) {
        let sends = chunk.iter().map(|(k, v)| {
            p.send(
                FutureRecord::to(topic).key(k).payload(v),
                Duration::from_secs(30),
            )
        });
        for r in futures::future::join_all(sends).await {
            r.map_err(|(e, _)| e).expect("produced");
        }
    }
}

/// A consumer that does nothing but count: the broker's ceiling for reading on this machine.
fn bare_consumer(brokers: &str, topic: &str, n: usize) -> f64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bare-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let mut seen = 0;
    let mut start = None;
    while seen < n {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let _ = m.payload();
            start.get_or_insert_with(Instant::now);
            seen += 1;
        }
    }
    n as f64 / start.unwrap().elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    kairos::alloc::tune();
    let a = args();
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let (events, recs, dead) = (
        format!("load-events-{tag}"),
        format!("load-recs-{tag}"),
        format!("load-dead-{tag}"),
    );
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &a.brokers)
        .create()?;
    let topics = [
        NewTopic::new(&events, a.partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&recs, a.partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&dead, 1, TopicReplication::Fixed(1)),
    ];
    for r in admin.create_topics(&topics, &AdminOptions::new()).await? {
        r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &a.brokers)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .create()?;

    println!(
        "producing {} events for {} subscribers to {events} ({} partitions)...",
        a.events, a.subscribers, a.partitions
    );
    let msgs = traffic(a.events, a.subscribers, 11, &tag);
    produce(&producer, &events, &msgs).await;
    drop(msgs);

    let brokers = a.brokers.clone();
    let (t, n) = (events.clone(), a.events);
    let bare = tokio::task::spawn_blocking(move || bare_consumer(&brokers, &t, n)).await?;
    println!("bare consumer: {bare:.0} msg/s");

    // Kairos in this process, on a database of its own.
    let db_name = format!("kairos_load_{tag}");
    let admin_db = kairos::store::Db::connect(&a.pg, 1).await?;
    sqlx::query(&format!("CREATE DATABASE {db_name}"))
        .execute(&admin_db.pool)
        .await?;
    let base = a.pg.rsplit_once('/').map(|(b, _)| b).unwrap_or(&a.pg);
    let mut cfg = kairos::config::Config::default();
    cfg.database.url = format!("{base}/{db_name}");
    cfg.database.max_connections = 16;
    cfg.kafka.batch_size = a.batch;
    cfg.http.addr = "127.0.0.1:0".into();
    cfg.auth.bootstrap_admin_key = "load-key".into();
    cfg.state.backend = "redis".into();
    cfg.state.redis_url = a.redis.clone();
    cfg.state.redis_prefix = format!("load-{tag}");
    cfg.kafka.brokers = a.brokers.clone();
    cfg.kafka.group_id = format!("kairos-load-{tag}");
    cfg.kafka.events_topic = events.clone();
    cfg.kafka.recommendations_topic = recs.clone();
    cfg.kafka.dead_letters_topic = dead.clone();
    let rss_before = rss_mb();
    let app = kairos::app::App::start(cfg).await?;
    let metrics = app.state.pipeline.deps.metrics.clone();
    let processed = || {
        let s = metrics.snapshot();
        (s.processed + s.duplicates + s.late + s.unknown_type) as usize
    };
    let mut first = None;
    while processed() < a.events {
        if first.is_none() && processed() > 0 {
            first = Some((Instant::now(), processed()));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Done when the last decisions are on the output topic (published before each commit).
    let mut last = (metrics.snapshot().published, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = metrics.snapshot().published;
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(500) {
            break;
        }
    }
    let (t0, n0) = first.unwrap_or((Instant::now(), 0));
    let kairos_rate = (a.events - n0) as f64 / (last.1 - t0).as_secs_f64();
    let snap = metrics.snapshot();
    let trips = app.state.pipeline.deps.state.round_trips();
    println!(
        "kairos: {kairos_rate:.0} events/s end to end = {:.0} % of the bare consumer; \
         {} decisions published; {:.4} Redis round trips per event; resident memory {:.0} MB \
         ({:.0} MB before start) with {} subscribers",
        100.0 * kairos_rate / bare,
        snap.published,
        trips as f64 / a.events as f64,
        rss_mb(),
        rss_before,
        a.subscribers
    );

    // Half the bare consumer's rate (or `--paced-rate`), paced, with each decision's latency from its event's
    // production to its arrival on the output topic.
    let rate = a.paced_rate.unwrap_or((bare / 2.0) as usize);
    let paced = traffic(
        rate * a.paced_secs as usize,
        a.subscribers,
        12,
        &format!("{tag}p"),
    );
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &a.brokers)
        .set("group.id", format!("latency-{tag}"))
        .set("fetch.wait.max.ms", "5")
        .set("auto.offset.reset", "latest")
        .create()?;
    reader.subscribe(&[&recs])?;
    // Joined and at the end of the topic before the paced run starts.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs(5) {
        let _ = reader.poll(Duration::from_millis(100));
    }
    let (lat_tx, lat_rx) = std::sync::mpsc::channel::<Duration>();
    let sent = sent_at.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_r = stop.clone();
    let read = std::thread::spawn(move || {
        while !stop_r.load(std::sync::atomic::Ordering::Relaxed) {
            if let Some(Ok(m)) = reader.poll(Duration::from_millis(50)) {
                let now = Instant::now();
                let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
                if let Some(t) = v["trigger_event_id"]
                    .as_str()
                    .and_then(|id| sent.lock().unwrap().get(id).copied())
                {
                    let _ = lat_tx.send(now - t);
                }
            }
        }
    });
    println!("paced: {rate} events/s for {} s...", a.paced_secs);
    let tick = Duration::from_millis(10);
    let per_tick = (rate / 100).max(1);
    let start = Instant::now();
    for (i, chunk) in paced.chunks(per_tick).enumerate() {
        let due = start + tick * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let now = Instant::now();
        {
            let mut s = sent_at.lock().unwrap();
            for (_, v) in chunk {
                let id = serde_json::from_str::<serde_json::Value>(v).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                s.insert(id, now);
            }
        }
        for (k, v) in chunk {
            // Queued without waiting: the producer batches them as a real source would.
            let _ = producer.send_result(FutureRecord::to(&events).key(k).payload(v));
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    read.join().unwrap();
    let mut lat: Vec<Duration> = lat_rx.try_iter().collect();
    lat.sort();
    if lat.is_empty() {
        println!("no decisions were read back during the paced run");
    } else {
        let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
        println!(
            "latency, event produced -> decision on the output topic, {} decisions at {rate}/s: \
             p50 {:?}  p99 {:?}  max {:?}",
            lat.len(),
            p(0.50),
            p(0.99),
            lat[lat.len() - 1]
        );
    }
    app.shutdown().await?;
    // Leave the shared Redis as it was.
    let client = redis::Client::open(a.redis.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("load-{tag}:*"))
        .query_async(&mut conn)
        .await?;
    for chunk in keys.chunks(10_000) {
        redis::cmd("DEL")
            .arg(chunk)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}
