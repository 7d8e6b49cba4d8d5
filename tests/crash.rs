//! The real binary killed mid-stream: `kill -9` (and SIGTERM) while NDJSON batches flow, a
//! restart on the same database, then the client resends everything. Ground truth is
//! `kairos replay` over the same events: every acknowledged event has its effect at every
//! kill, and in the end the stored decisions are exactly the replay's, none twice, none
//! left queued.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::engine_support::{free_port, repo};

const KEY: &str = "crash-test-admin-key";
const BATCH: usize = 500;

struct Server {
    child: Child,
    base: String,
}

pub(crate) fn kairos() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kairos"));
    c.env("KAIROS_ENGINE__RULES_DIR", repo().join("rules"))
        .env("KAIROS_CHANNELS__DIR", repo().join("channels"))
        // The simulated subscribers have no CRM record: decide for them anyway.
        .env("KAIROS_ENGINE__UNKNOWN_SUBSCRIBERS", "market")
        .env(
            "KAIROS_LOG",
            std::env::var("KAIROS_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        );
    c
}

async fn start(db: &Path) -> Server {
    let port = free_port();
    let child = kairos()
        .arg("serve")
        .env(
            "KAIROS_DATABASE__URL",
            format!("sqlite://{}?mode=rwc", db.display()),
        )
        .env("KAIROS_HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("KAIROS_AUTH__BOOTSTRAP_ADMIN_KEY", KEY)
        // A crashed instance's delivery claims lapse quickly, so the test need not wait.
        .env("KAIROS_CHANNELS__CLAIM_SECS", "1")
        .env("KAIROS_CHANNELS__OUTBOX_SWEEP_SECS", "1")
        .stdout(Stdio::null())
        .spawn()
        .expect("the kairos binary starts");
    let (child, base) = healthy(child, port).await;
    Server { child, base }
}

/// Waits until the started binary answers `/health` on `port`; returns it and its base URL.
pub(crate) async fn healthy(mut child: Child, port: u16) -> (Child, String) {
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if http
            .get(format!("{base}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return (child, base);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kill_9(&mut child);
    panic!("kairos did not answer /health within 30 s");
}

/// Simulated traffic of the last half hour: roamers, missed calls, top-ups, bills...
pub(crate) fn events(n: usize) -> Vec<String> {
    let mut sim = kairos::sim::Simulator::new(1500, 7);
    let mut clock = (chrono::Utc::now() - chrono::Duration::minutes(40)).fixed_offset();
    (0..n)
        .map(|_| {
            clock += chrono::Duration::milliseconds(150);
            sim.next_json(clock).to_string()
        })
        .collect()
}

/// `kairos replay` on the same events: rec id -> (status, reason).
pub(crate) fn replay(file: &Path) -> BTreeMap<String, (String, Option<String>)> {
    let out = file.with_extension("recs");
    let st = kairos()
        .args(["replay", "--events"])
        .arg(file)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "replay ran");
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["id"].as_str().unwrap().to_string(),
                (
                    v["status"].as_str().unwrap().to_string(),
                    v["reason"].as_str().map(str::to_string),
                ),
            )
        })
        .collect()
}

struct Stored {
    /// id -> (status, reason, trigger event id)
    recs: BTreeMap<String, (String, Option<String>, Option<String>)>,
}

async fn stored(db: &Path) -> Stored {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let rows: Vec<(String, String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT id, status, reason, trigger_event_id FROM recommendations")
            .fetch_all(&mut c)
            .await
            .unwrap();
    Stored {
        recs: rows
            .into_iter()
            .map(|(id, s, r, t)| (id, (s, r, t)))
            .collect(),
    }
}

/// Stop the server (`how`) a moment (`delay`) after batch `at` is sent, while in flight.
struct StopAt<'a> {
    at: usize,
    delay: Duration,
    child: &'a mut Child,
    how: &'a dyn Fn(&mut Child),
}

/// Sends batches in order, one at a time, from `from`; returns how many were acknowledged
/// (2xx) before the first failure. With `kill_after` set, the server is stopped (by `stop`)
/// a moment after that batch is sent, while it is in flight.
async fn send(
    base: &str,
    batches: &[String],
    from: usize,
    kill_after: Option<StopAt<'_>>,
) -> usize {
    let http = reqwest::Client::new();
    let mut acked = from;
    let mut killer = kill_after;
    for (i, body) in batches.iter().enumerate().skip(from) {
        let req = http
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(KEY)
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send();
        let ok = match killer.take() {
            Some(k) if k.at == i => {
                let req = tokio::spawn(req);
                tokio::time::sleep(k.delay).await;
                (k.how)(k.child);
                matches!(req.await.unwrap(), Ok(r) if r.status().is_success())
            }
            other => {
                killer = other;
                matches!(req.await, Ok(r) if r.status().is_success())
            }
        };
        if !ok {
            return acked;
        }
        acked = i + 1;
    }
    acked
}

pub(crate) fn kill_9(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn sigterm(child: &mut Child) {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(code) = child.try_wait().unwrap() {
            assert!(code.success(), "SIGTERM is a clean stop: {code:?}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every decision the replay made for an acknowledged event is stored.
fn assert_acked_have_effect(
    truth: &BTreeMap<String, (String, Option<String>)>,
    truth_trigger: &BTreeMap<String, String>,
    acked_events: &HashSet<String>,
    got: &Stored,
    when: &str,
) {
    let missing: Vec<&String> = truth
        .keys()
        .filter(|id| acked_events.contains(&truth_trigger[*id]) && !got.recs.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{when}: {} decisions of acknowledged events are missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

async fn crash_and_resend(stop: &dyn Fn(&mut Child), kill_points: &[(usize, u64)]) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let lines = events(12_000);
    let file: PathBuf = dir.path().join("events.ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let truth = replay(&file);
    assert!(
        truth.len() > 100,
        "the traffic triggers offers: {}",
        truth.len()
    );
    // Which event triggered each replayed decision.
    let ids: Vec<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .map(|s| s.trim_matches('"').to_string())
        .collect();
    let recs_file = std::fs::read_to_string(file.with_extension("recs")).unwrap();
    let truth_trigger: BTreeMap<String, String> = recs_file
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["id"].as_str().unwrap().to_string(),
                v["trigger_event_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let batches: Vec<String> = lines.chunks(BATCH).map(|c| c.join("\n")).collect();

    let mut next = 0;
    let mut kills = 0;
    for &(at, delay_ms) in kill_points {
        let mut server = start(&db).await;
        let base = server.base.clone();
        let acked = send(
            &base,
            &batches,
            next,
            Some(StopAt {
                at,
                delay: Duration::from_millis(delay_ms),
                child: &mut server.child,
                how: stop,
            }),
        )
        .await;
        // The server is down now; whatever was acknowledged must be in the database.
        let _ = server.child.try_wait();
        assert!(acked >= at, "batches before the stop were acknowledged");
        kills += 1;
        let acked_events: HashSet<String> = ids[..(acked * BATCH).min(ids.len())]
            .iter()
            .cloned()
            .collect();
        let got = stored(&db).await;
        assert_acked_have_effect(
            &truth,
            &truth_trigger,
            &acked_events,
            &got,
            &format!("after stop {kills}"),
        );
        next = acked;
    }

    // Restart and resend everything, from the first line.
    let mut server = start(&db).await;
    let acked = send(&server.base, &batches, 0, None).await;
    assert_eq!(acked, batches.len(), "every batch acknowledged on resend");
    // The outbox delivers what is queued (including what the stops left claimed).
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = stored(&db).await;
        let queued = got.recs.values().filter(|(s, ..)| s == "queued").count();
        if queued == 0 {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "{queued} offers still queued 30 s after the resend"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    kill_9(&mut server.child);

    let got: BTreeMap<String, (String, Option<String>)> = got
        .recs
        .into_iter()
        .map(|(id, (s, r, _))| (id, (s, r)))
        .collect();
    assert_same_decisions(&truth, &got);
}

/// The stored decisions (id -> status, reason) are exactly the replay's: none lost, none
/// extra, each with the replay's status and reason (what the replay would send is sent).
pub(crate) fn assert_same_decisions(
    truth: &BTreeMap<String, (String, Option<String>)>,
    got: &BTreeMap<String, (String, Option<String>)>,
) {
    let lost: Vec<&String> = truth.keys().filter(|id| !got.contains_key(*id)).collect();
    let extra: Vec<&String> = got.keys().filter(|id| !truth.contains_key(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} offers lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(
        extra.is_empty(),
        "{} decisions the replay did not make (an event applied twice?): {:?}",
        extra.len(),
        &extra[..extra.len().min(5)]
    );
    for (id, (status, reason)) in truth {
        let (s, r) = &got[id];
        if status == "proposed" {
            assert!(
                matches!(s.as_str(), "sent" | "delivered"),
                "{id}: replay would send it, stored {s} ({r:?})"
            );
        } else {
            assert_eq!(
                (s, r),
                (status, reason),
                "{id}: same decision as the replay"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_nothing_and_a_resend_doubles_nothing() {
    // Three kills at different batches and moments within the request.
    crash_and_resend(&kill_9, &[(3, 5), (8, 40), (15, 0)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_stops_cleanly_and_loses_nothing() {
    crash_and_resend(&sigterm, &[(4, 10), (12, 60)]).await;
}
