//! Kafka mode for real: Tansu brokers (Kafka-compatible) started here on free ports, real
//! Redis and PostgreSQL, the kairos binary as separate instances in one consumer group, a
//! recording SMS gateway, and Python's confluent-kafka as a client no one here wrote.
//!
//! Ground truth is `kairos replay` over the same events: whatever happens to the instances,
//! the decisions (on the recommendations topic and in the database) are exactly the replay's,
//! and no offer reaches the SMS gateway twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::crash::{assert_same_decisions, events, healthy, kairos, kill_9, replay};
use crate::engine_support::{free_port, fresh_db, Backend, TestDb};

const KEY: &str = "kafka-test-admin-key";

fn tansu() -> String {
    std::env::var("KAIROS_TEST_TANSU").unwrap_or_else(|_| "tansu".into())
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A Tansu broker of its own, in memory, on a free port.
pub(crate) struct Broker {
    child: Child,
    pub port: u16,
    storage: String,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// A broker that keeps nothing: enough for every test but the restart.
    pub fn start() -> Broker {
        Broker::launch(
            free_port(),
            tempfile::tempdir().unwrap(),
            "memory://tansu/".into(),
        )
    }

    /// A broker that keeps its log in a SQLite file, so it can be restarted.
    pub fn start_persistent() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        // Relative to the broker's working directory, the temp dir.
        Broker::launch(free_port(), dir, "sqlite://tansu.db".into())
    }

    fn launch(port: u16, dir: tempfile::TempDir, storage: String) -> Broker {
        // Tansu reads a `.env` from its working directory: give it an empty one.
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu())
            .current_dir(dir.path())
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", &storage])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("the tansu broker ({}) is required: {e}", tansu()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !port_open(port) {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker {
            child,
            port,
            storage,
            _dir: dir,
        }
    }

    /// Kills the broker (SIGKILL) and starts it again on the same port and storage.
    pub fn restart(&mut self, down_for: Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down_for);
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        let again = Broker::launch(self.port, dir, self.storage.clone());
        *self = again;
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub async fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", self.addr())
            .create()
            .unwrap();
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let res = admin
            .create_topics([&topic], &AdminOptions::new())
            .await
            .expect("CreateTopics answered");
        for r in res {
            r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SMS gateway that answers like Kannel and, like any idempotent API, sends a message
/// once per `Idempotency-Key` (a repeat is answered as accepted and not sent again). It
/// remembers every request: (offer id from the delivery-report URL, idempotency key).
struct Gateway {
    url: String,
    sent: Requests,
}

/// (offer id, idempotency key) of every request the gateway took.
type Requests = Arc<Mutex<Vec<(String, String)>>>;

async fn gateway() -> Gateway {
    use axum::extract::{Query, State};
    let sent: Requests = Arc::default();
    async fn sendsms(
        State(sent): State<Requests>,
        headers: axum::http::HeaderMap,
        Query(q): Query<BTreeMap<String, String>>,
    ) -> &'static str {
        // The delivery-report URL carries the offer's id.
        let dlr = q.get("dlr-url").cloned().unwrap_or_default();
        let id = dlr
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("id="))
            .unwrap_or_default()
            .to_string();
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        sent.lock().unwrap().push((id, key));
        "0: Accepted for delivery"
    }
    let app = axum::Router::new()
        .route("/sendsms", axum::routing::get(sendsms))
        .with_state(sent.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sendsms", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Gateway { url, sent }
}

/// One deployment: topics, a group, a database, a Redis prefix, a gateway.
pub(crate) struct Deployment {
    pub brokers: String,
    pub group: String,
    pub events: String,
    pub recs: String,
    pub dead: String,
    pub redis_url: String,
    pub prefix: String,
    pub db: TestDb,
    gateway: Gateway,
}

impl Deployment {
    pub async fn new(broker: &Broker, partitions: i32) -> Deployment {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
        let d = Deployment {
            brokers: broker.addr(),
            group: format!("kairos-{tag}"),
            events: format!("events-{tag}"),
            recs: format!("recs-{tag}"),
            dead: format!("dead-{tag}"),
            redis_url: std::env::var("KAIROS_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            prefix: format!("kafka-test-{tag}"),
            db: fresh_db(Backend::Postgres).await,
            gateway: gateway().await,
        };
        broker.create_topic(&d.events, partitions).await;
        broker.create_topic(&d.recs, partitions).await;
        broker.create_topic(&d.dead, 1).await;
        d
    }

    /// Starts an instance and waits until it answers.
    pub async fn instance(&self) -> Instance {
        self.instance_with(&[]).await
    }

    /// An instance with more settings (env vars) on top of the deployment's.
    pub async fn instance_with(&self, extra: &[(&str, String)]) -> Instance {
        let port = free_port();
        let mut cmd = kairos();
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd
            .arg("serve")
            .env("KAIROS_DATABASE__URL", &self.db.url)
            .env("KAIROS_HTTP__ADDR", format!("127.0.0.1:{port}"))
            .env("KAIROS_AUTH__BOOTSTRAP_ADMIN_KEY", KEY)
            .env("KAIROS_STATE__BACKEND", "redis")
            .env("KAIROS_STATE__REDIS_URL", &self.redis_url)
            .env("KAIROS_STATE__REDIS_PREFIX", &self.prefix)
            .env("KAIROS_KAFKA__BROKERS", &self.brokers)
            .env("KAIROS_KAFKA__GROUP_ID", &self.group)
            .env("KAIROS_KAFKA__EVENTS_TOPIC", &self.events)
            .env("KAIROS_KAFKA__RECOMMENDATIONS_TOPIC", &self.recs)
            .env("KAIROS_KAFKA__DEAD_LETTERS_TOPIC", &self.dead)
            // A dead or frozen member's partitions move after 6 s, not 45.
            .env("KAIROS_KAFKA__CLIENT__SESSION_TIMEOUT_MS", "6000")
            .env("KAIROS_KAFKA__CLIENT__HEARTBEAT_INTERVAL_MS", "1000")
            .env("KAIROS_CHANNELS__SMS__MODE", "http")
            .env("KAIROS_CHANNELS__SMS__GATEWAY_URL", &self.gateway.url)
            .env(
                "KAIROS_CHANNELS__SMS__DLR_URL",
                "http://127.0.0.1:9/dlr?id={id}",
            )
            .env("KAIROS_CHANNELS__SMS__DLR_SECRET", "kafka-test-secret")
            // A killed instance's delivery claims lapse quickly, so the test need not wait.
            .env("KAIROS_CHANNELS__CLAIM_SECS", "2")
            .env("KAIROS_CHANNELS__OUTBOX_SWEEP_SECS", "1")
            // Later attempts after a transient failure (the portal relay while Redis is down)
            // come within seconds, and keep coming through an outage the length of a test.
            .env("KAIROS_CHANNELS__RETRY_BASE_MS", "200")
            .env("KAIROS_CHANNELS__RETRY_MAX_SECS", "2")
            .env("KAIROS_CHANNELS__MAX_ATTEMPTS", "100")
            // Logs (on stdout) only when asked for: KAIROS_TEST_LOG=info.
            .stdout(if std::env::var_os("KAIROS_TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("the kairos binary starts");
        let (child, base) = healthy(child, port).await;
        Instance { child, base }
    }

    pub async fn produce(&self, lines: &[String]) {
        let p: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("linger.ms", "5")
            .create()
            .unwrap();
        let sends = lines.iter().map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let key = v["msisdn"].as_str().unwrap().to_string();
            let p = p.clone();
            let topic = self.events.clone();
            let l = l.clone();
            async move {
                p.send(
                    FutureRecord::to(&topic).key(&key).payload(&l),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
                .unwrap();
            }
        });
        futures::future::join_all(sends).await;
    }

    /// Every message of a topic from the beginning, read until nothing new for `idle`.
    pub fn read_all(&self, topic: &str, idle: Duration) -> Vec<rdkafka::message::OwnedMessage> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let md = c
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in md.topics()[0].partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .unwrap();
        }
        c.assign(&tpl).unwrap();
        let mut out = Vec::new();
        let mut last = Instant::now();
        while last.elapsed() < idle {
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    out.push(m.detach());
                    last = Instant::now();
                }
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => {}
            }
        }
        out
    }

    /// Recommendation id -> how many times it is on the recommendations topic.
    pub fn published(&self) -> BTreeMap<String, usize> {
        let mut n = BTreeMap::new();
        for m in self.read_all(&self.recs, Duration::from_secs(2)) {
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            let key = std::str::from_utf8(m.key().unwrap()).unwrap().to_string();
            assert_eq!(v["msisdn"], key, "decisions are keyed by msisdn");
            *n.entry(v["id"].as_str().unwrap().to_string()).or_insert(0) += 1;
        }
        n
    }

    /// id -> (status, reason) as stored.
    pub async fn stored(&self) -> BTreeMap<String, (String, Option<String>)> {
        let db = kairos::store::Db::connect(&self.db.url, 2).await.unwrap();
        let rows: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT id, status, reason FROM recommendations")
                .fetch_all(&db.pool)
                .await
                .unwrap();
        rows.into_iter().map(|(i, s, r)| (i, (s, r))).collect()
    }

    pub fn sms_sent(&self) -> Vec<(String, String)> {
        self.gateway.sent.lock().unwrap().clone()
    }

    /// Waits until every replayed decision is published and nothing is left queued.
    pub async fn settle(&self, truth: &BTreeMap<String, (String, Option<String>)>, within: u64) {
        let deadline = Instant::now() + Duration::from_secs(within);
        loop {
            let got = self.stored().await;
            let missing = truth.keys().filter(|id| !got.contains_key(*id)).count();
            let queued = got.values().filter(|(s, _)| s == "queued").count();
            if missing == 0 && queued == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "after {within} s: {missing} of {} decisions not stored, {queued} still queued",
                truth.len()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// The stored decisions, the topic and the gateway agree with the replay; returns how
    /// many ids are on the topic more than once.
    pub async fn assert_matches(
        &self,
        truth: &BTreeMap<String, (String, Option<String>)>,
    ) -> usize {
        let got = self.stored().await;
        assert_same_decisions(truth, &got);
        let published = self.published();
        let on_topic: BTreeSet<&String> = published.keys().collect();
        let expected: BTreeSet<&String> = truth.keys().collect();
        assert_eq!(
            on_topic, expected,
            "the recommendations topic holds every decision"
        );
        let attempts = self.sms_sent();
        assert!(!attempts.is_empty(), "the traffic sends SMS");
        for (id, key) in &attempts {
            assert_eq!(
                key,
                &format!("{id}:sms"),
                "every send carries its idempotency key"
            );
            assert_eq!(
                truth.get(id).map(|(s, _)| s.as_str()),
                Some("proposed"),
                "{id}: only offers the replay sends reach the gateway"
            );
        }
        // What reaches phones: one message per key.
        let keys: BTreeSet<&String> = attempts.iter().map(|(_, k)| k).collect();
        let repeats = attempts.len() - keys.len();
        eprintln!(
            "sms: {} sent, {repeats} repeated sends recognised by their key",
            keys.len()
        );
        published.values().filter(|n| **n > 1).count()
    }
}

pub(crate) struct Instance {
    pub child: Child,
    pub base: String,
}

impl Instance {
    pub async fn stats(&self) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("{}/api/v1/engine/stats", self.base))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes events to a file and replays them: the ground truth.
fn truth_of(dir: &Path, lines: &[String]) -> BTreeMap<String, (String, Option<String>)> {
    let file = dir.join("events.ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let truth = replay(&file);
    assert!(
        truth.len() > 50,
        "the traffic triggers offers: {}",
        truth.len()
    );
    truth
}

/// Waits until the instances own all `partitions` between them, each some.
async fn wait_split(instances: &[&Instance], partitions: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut owned = Vec::new();
        for i in instances {
            owned.push(
                i.stats().await["events"]["partitions_owned"]
                    .as_u64()
                    .unwrap(),
            );
        }
        if owned.iter().sum::<u64>() == partitions && owned.iter().all(|n| *n > 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "partitions never split: {owned:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_processed(i: &Instance, at_least: u64, within: u64) {
    let deadline = Instant::now() + Duration::from_secs(within);
    loop {
        let s = i.stats().await;
        if s["events"]["processed"].as_u64().unwrap_or(0) >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {at_least} events processed after {within} s: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An outside client (Python confluent-kafka) writes events and bad messages and reads the
/// decisions back; bad messages end on the dead-letter topic with their reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_client_feeds_events_and_reads_decisions() {
    let broker = Broker::start();
    let d = Deployment::new(&broker, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let lines = events(3000);
    let truth = truth_of(dir.path(), &lines);
    let a = d.instance().await;
    let script = dir.path().join("client.py");
    std::fs::write(&script, PY_CLIENT).unwrap();
    let events_file = dir.path().join("events.ndjson");
    let out = Command::new("python3")
        .arg(&script)
        .args([&d.brokers, &d.events, &d.recs])
        .arg(&events_file)
        .arg(truth.len().to_string())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: BTreeSet<String> = report["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = truth.keys().cloned().collect();
    assert_eq!(ids, expected, "the outside client reads every decision");

    let dead = d.read_all(&d.dead, Duration::from_secs(2));
    // (field, reason, original bytes) of each refused message.
    let refused: Vec<(String, String, Vec<u8>)> = dead
        .iter()
        .map(|m| {
            let h = m.headers().expect("dead letters carry headers");
            let get = |name: &str| {
                h.iter()
                    .find(|x| x.key == name)
                    .and_then(|x| x.value)
                    .map(|v| String::from_utf8_lossy(v).to_string())
                    .unwrap_or_default()
            };
            (
                get("kairos-field"),
                get("kairos-reason"),
                m.payload().unwrap_or_default().to_vec(),
            )
        })
        .collect();
    assert_eq!(refused.len(), 4, "four bad messages: {refused:?}");
    let by_payload = |start: &[u8]| {
        refused
            .iter()
            .find(|(_, _, p)| p.starts_with(start))
            .unwrap_or_else(|| panic!("{:?} is a dead letter", String::from_utf8_lossy(start)))
    };
    assert_eq!(by_payload(b"{not json").0, "body");
    let big = by_payload(br#"{"id": "big""#);
    assert!(big.1.contains("over the limit"), "{:?}", big.1);
    assert!(big.2.len() > 70_000, "the original bytes are kept whole");
    let wrong = by_payload(br#"{"id": "wrong-key""#);
    assert_eq!(wrong.0, "key");
    assert!(wrong.1.contains("keyed by msisdn"), "{:?}", wrong.1);
    assert_eq!(by_payload(br#"{"id":"bad-1""#).0, "msisdn");
    d.settle(&truth, 60).await;
    let twice = d.assert_matches(&truth).await;
    assert_eq!(
        twice, 0,
        "one instance, no crash: every decision published once"
    );

    // HTTP ingest in Kafka mode answers once the event is in the log; the consumer takes it.
    let before = a.stats().await["events"]["processed"].as_u64().unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/events", a.base))
        .bearer_auth(KEY)
        .json(&serde_json::json!({"id": "via-http-1", "type": "power_on",
            "msisdn": "8613900000077", "ts": chrono::Utc::now().to_rfc3339()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["outcome"]["logged"], 1, "{body}");
    wait_processed(&a, before + 1, 30).await;
    let on_log = d.read_all(&d.events, Duration::from_secs(1));
    assert!(on_log
        .iter()
        .any(|m| m.key() == Some(b"8613900000077".as_slice())));
}

/// Tansu 0.6 drops a member whose session expired without starting a new generation, so
/// the survivors keep their old assignment and the dead member's partitions wait for the
/// next member to join (the heartbeat of a formed group removes the member in place; a
/// clean leave or a new member does rebalance). Kafka itself hands them to the survivor.
/// The failure tests therefore start a replacement once the dead member's session is over.
const SESSION_OVER: Duration = Duration::from_secs(8);

/// Two instances split the partitions; one is killed with SIGKILL mid-stream; its
/// partitions move (to the survivor and a replacement) from the committed offsets and the
/// state in Redis, and the outcome is exactly the replay's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_one_of_two_instances_loses_and_doubles_nothing() {
    let broker = Broker::start();
    let d = Deployment::new(&broker, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let lines = events(8000);
    let truth = truth_of(dir.path(), &lines);
    let mut a = d.instance().await;
    let b = d.instance().await;
    wait_split(&[&a, &b], 4).await;
    d.produce(&lines[..4000]).await;
    // Both are working when one dies.
    wait_processed(&a, 300, 60).await;
    wait_processed(&b, 300, 60).await;
    kill_9(&mut a.child);
    d.produce(&lines[4000..6000]).await;
    tokio::time::sleep(SESSION_OVER).await;
    let c = d.instance().await;
    wait_split(&[&b, &c], 4).await;
    d.produce(&lines[6000..]).await;
    d.settle(&truth, 90).await;
    let twice = d.assert_matches(&truth).await;
    eprintln!("kafka sigkill: {twice} recommendation ids published twice");
}

/// An instance frozen (SIGSTOP) until its partitions move, then resumed: the new owners'
/// state stands (its stale writes are fenced) and the outcome is still exactly the replay's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_instance_cannot_overwrite_the_new_owner() {
    let broker = Broker::start();
    let d = Deployment::new(&broker, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let lines = events(8000);
    let truth = truth_of(dir.path(), &lines);
    let a = d.instance().await;
    let b = d.instance().await;
    wait_split(&[&a, &b], 4).await;
    d.produce(&lines[..4000]).await;
    wait_processed(&a, 300, 60).await;
    wait_processed(&b, 300, 60).await;
    a.signal("-STOP");
    tokio::time::sleep(SESSION_OVER).await;
    let c = d.instance().await;
    wait_split(&[&b, &c], 4).await;
    d.produce(&lines[4000..]).await;
    wait_processed(&c, 300, 90).await;
    a.signal("-CONT");
    d.settle(&truth, 90).await;
    // A rejoins and may get partitions back; let it finish whatever it resumed with.
    tokio::time::sleep(Duration::from_secs(3)).await;
    d.settle(&truth, 30).await;
    let twice = d.assert_matches(&truth).await;
    let fenced = a.stats().await["events"]["state_fenced"].as_u64().unwrap();
    eprintln!("kafka sigstop: {twice} ids published twice, {fenced} stale writes fenced");
}

/// Redis goes away mid-stream and comes back (from its append-only file): the engine stops
/// committing and waits, never decides on missing state, and resumes cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_stalls_and_resumes_without_loss() {
    let broker = Broker::start();
    let mut d = Deployment::new(&broker, 2).await;
    let rdir = tempfile::tempdir().unwrap();
    let port = free_port();
    let redis = |dir: &Path| {
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs")
    };
    let mut r = redis(rdir.path());
    while !port_open(port) {
        std::thread::sleep(Duration::from_millis(20));
    }
    d.redis_url = format!("redis://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let lines = events(6000);
    let truth = truth_of(dir.path(), &lines);
    let a = d.instance().await;
    d.produce(&lines[..3000]).await;
    wait_processed(&a, 500, 60).await;
    kill_9(&mut r);
    d.produce(&lines[3000..]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = a.stats().await["events"].clone();
    assert!(during["store_retries"].as_u64().unwrap() > 0, "{during}");
    let mut r = redis(rdir.path());
    d.settle(&truth, 90).await;
    let twice = d.assert_matches(&truth).await;
    eprintln!("kafka redis outage: {twice} ids published twice");
    kill_9(&mut r);
}

/// The broker is killed and restarted mid-stream: the producer and the consumer reconnect,
/// consumption resumes from the committed offsets, and nothing is lost or applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_and_doubles_nothing() {
    let mut broker = Broker::start_persistent();
    let d = Deployment::new(&broker, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let lines = events(6000);
    let truth = truth_of(dir.path(), &lines);
    let a = d.instance().await;
    wait_split(&[&a], 2).await;
    d.produce(&lines[..3000]).await;
    wait_processed(&a, 500, 60).await;
    broker.restart(Duration::from_secs(2));
    d.produce(&lines[3000..]).await;
    d.settle(&truth, 90).await;
    let twice = d.assert_matches(&truth).await;
    eprintln!("kafka broker restart: {twice} ids published twice");
}

/// The outside client: produces the events (keyed by msisdn) and four bad messages, then
/// reads the recommendations topic until it has seen the expected number of distinct ids.
const PY_CLIENT: &str = r#"
import json, sys, time
from confluent_kafka import Consumer, Producer
brokers, events_topic, recs_topic, events_file, expected = sys.argv[1:6]
p = Producer({"bootstrap.servers": brokers})
for line in open(events_file):
    line = line.strip()
    if line:
        p.produce(events_topic, key=json.loads(line)["msisdn"], value=line)
p.produce(events_topic, key="8613900000000", value=b"{not json")
p.produce(events_topic, key="8613900000000", value=json.dumps({"id": "big", "type": "sms_sent", "msisdn": "8613900000000", "ts": "2026-11-20T10:00:00+08:00", "attrs": {"pad": "x" * 70000}}))
p.produce(events_topic, key="8613911111111", value=json.dumps({"id": "wrong-key", "type": "sms_sent", "msisdn": "8613900000000", "ts": "2026-11-20T10:00:00+08:00"}))
p.produce(events_topic, key="8613900000000", value=b'{"id":"bad-1","type":"sms_sent","msisdn":"not-a-number","ts":"2026-11-20T10:00:00+08:00"}')
p.flush(30)
c = Consumer({"bootstrap.servers": brokers, "group.id": "outside-reader", "auto.offset.reset": "earliest"})
c.subscribe([recs_topic])
ids = set()
deadline = time.time() + 90
while len(ids) < int(expected) and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    ids.add(json.loads(m.value())["id"])
c.close()
print(json.dumps({"ids": sorted(ids)}))
"#;

/// The `kafka` channel: offers a rule sends there reach the offers topic once each, as the
/// contract's JSON keyed by msisdn with the idempotency key, and are recorded `sent` with
/// where they landed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_on_the_kafka_channel_reach_the_offers_topic_once() {
    let broker = Broker::start();
    let d = Deployment::new(&broker, 2).await;
    let offers = format!("{}-offers", d.events);
    broker.create_topic(&offers, 2).await;
    let rules = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/dynamic/roaming-welcome.rhai"),
    )
    .unwrap();
    let to_kafka = src.replace(r#"channels: ["sms", "portal"]"#, r#"channels: ["kafka"]"#);
    assert_ne!(src, to_kafka, "the rule names its channels");
    std::fs::write(rules.path().join("roaming-welcome.rhai"), to_kafka).unwrap();
    let _a = d
        .instance_with(&[
            (
                "KAIROS_ENGINE__RULES_DIR",
                rules.path().display().to_string(),
            ),
            (
                "KAIROS_CHANNELS__ENABLED",
                "[sms,portal,agent,kafka]".into(),
            ),
            ("KAIROS_KAFKA__OFFERS_TOPIC", offers.clone()),
        ])
        .await;
    let now = chrono::Utc::now().to_rfc3339();
    let lines: Vec<String> = (0..20)
        .map(|i| {
            serde_json::json!({"id": format!("roam-{i}"), "type": "location_update",
                "msisdn": format!("86139000090{i:02}"), "ts": now,
                "attrs": {"country": "JP", "roaming": true}})
            .to_string()
        })
        .collect();
    d.produce(&lines).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::new();
    while Instant::now() < deadline {
        got = d.read_all(&offers, Duration::from_secs(1));
        if got.len() >= 20 {
            break;
        }
    }
    let mut ids = BTreeSet::new();
    for m in &got {
        let rec: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        assert_eq!(m.key(), Some(rec["msisdn"].as_str().unwrap().as_bytes()));
        assert_eq!(rec["channel"], "kafka");
        assert_eq!(rec["offer_code"], "ROAM-JP-7D");
        let h = m.headers().expect("headers");
        let idem = h
            .iter()
            .find(|x| x.key == "kairos-idempotency-key")
            .and_then(|x| x.value)
            .expect("the idempotency key");
        let id = rec["id"].as_str().unwrap().to_string();
        assert_eq!(idem, format!("{id}:kafka").as_bytes());
        assert!(ids.insert(id), "each offer once");
    }
    assert_eq!(ids.len(), 20, "one offer per roamer on the topic");
    // Stored as sent (the outbox records it after the broker has it).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stored = d.stored().await;
        let sent = ids
            .iter()
            .filter(|id| stored.get(*id).is_some_and(|(s, _)| s == "sent"))
            .count();
        if sent == ids.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{sent} of {} recorded sent",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
