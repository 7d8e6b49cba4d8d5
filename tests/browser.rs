//! The portal widget and the agent desktop in headless Chromium: the scenarios in
//! `tests/browser/*.mjs` (playwright-core) run against a real app on port 0. Chromium and the
//! node modules come from `scripts/services.sh`; without them these tests fail, never skip.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kairos::channels::Channel;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{self, Backend, TestApp};
use crate::portal::portal_rec;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn chromium() -> String {
    std::env::var("KAIROS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// Fails with what to run when the browser or the driver is missing.
fn check_tools() {
    assert!(
        Path::new(&chromium()).exists(),
        "Chromium not found at {} (install it with scripts/services.sh)",
        chromium()
    );
    assert!(
        dir().join("node_modules/playwright-core").exists(),
        "playwright-core is not installed in tests/browser (run scripts/services.sh)"
    );
}

/// Runs `node <script> <args>`; `on_ready` runs when the script prints `READY`. Returns the
/// script's report lines (`WORD value`) once it exits successfully.
async fn run(script: &str, args: &[&str], on_ready: impl AsyncFnOnce()) -> Vec<(String, String)> {
    check_tools();
    let mut child = tokio::process::Command::new("node")
        .arg(dir().join(script))
        .args(args)
        .current_dir(dir())
        .env("KAIROS_CHROMIUM", chromium())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (install Node.js 18 or later)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let err = tokio::spawn(async move {
        let mut s = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut s).await;
        s
    });
    let mut report = Vec::new();
    let mut on_ready = Some(on_ready);
    let read = async {
        while let Some(line) = lines.next_line().await.expect("node's output") {
            let (word, value) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            report.push((word.to_string(), value.trim().to_string()));
            if word == "READY" {
                if let Some(f) = on_ready.take() {
                    f().await;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within 120 s; so far: {report:?}"));
    let status = child.wait().await.expect("node exits");
    let stderr = err.await.unwrap();
    assert!(
        status.success(),
        "{script} failed ({status}): {stderr}\nreport: {report:?}"
    );
    assert_eq!(
        report.last().map(|(w, _)| w.as_str()),
        Some("DONE"),
        "{report:?}"
    );
    report
}

fn values<'a>(report: &'a [(String, String)], word: &str) -> Vec<&'a str> {
    report
        .iter()
        .filter(|(w, _)| w == word)
        .map(|(_, v)| v.as_str())
        .collect()
}

async fn start(tweak: impl FnOnce(&mut kairos::config::Config)) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("kairos.db").display()
    );
    (
        TestApp::start_config(Backend::Sqlite, url, tweak).await,
        dir,
    )
}

async fn status(t: &TestApp, id: &str) -> serde_json::Value {
    t.get(t.admin(), &format!("/api/v1/recommendations/{id}"))
        .await
        .expect(200)
}

#[tokio::test]
async fn the_portal_widget_shows_only_its_customers_offers_and_reports_answers() {
    // The test page is served from another origin, as the operator's portal would be.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (t, _db) =
        start(|c| c.channels.portal.origins = vec![format!("http://127.0.0.1:{port}")]).await;
    let (a, b) = ("8613900003001", "8613900003002");
    t.store_rec(&portal_rec("pa-1", a, 60)).await;
    // Decided later than A's: were it shown to A, it would be the newest pop-up.
    t.store_rec(&portal_rec("pb-1", b, 5)).await;
    let token = t
        .post(t.admin(), "/api/v1/portal/sessions", json!({"msisdn": a}))
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let port_s = port.to_string();
    let report = run("portal.mjs", &[&t.base, &token, &port_s], async || {
        // Decided while the customer's page is open: pushed to it. B's never is.
        for r in [portal_rec("pb-2", b, 0), portal_rec("pa-2", a, 0)] {
            t.store_rec(&r).await;
            t.app.state.channels.portal.send(&r).await.unwrap();
        }
    })
    .await;
    assert_eq!(values(&report, "SHOWN"), vec!["pa-1", "pa-2"], "{report:?}");
    assert_eq!(values(&report, "ACCEPTED"), vec!["pa-1"]);
    assert_eq!(values(&report, "DISMISSED"), vec!["pa-2"]);
    // The answers reached the engine.
    assert_eq!(status(&t, "pa-1").await["status"], "accepted");
    let dismissed = status(&t, "pa-2").await;
    assert_eq!(dismissed["status"], "expired", "{dismissed}");
    for id in ["pb-1", "pb-2"] {
        assert_eq!(status(&t, id).await["status"], "sent", "{id} untouched");
    }
    t.stop().await;
}

#[tokio::test]
async fn the_agent_desktop_shows_a_live_offer_and_declines_it_with_a_reason() {
    let (t, _db) = start(|_| {}).await;
    let w = common::world::world(&t).await;
    let msisdn = "8613900001001";
    let report = run(
        "agent_desk.mjs",
        &[&t.base, "agent", common::PASSWORD, msisdn],
        async || {
            // A serious complaint while the customer is open: the engine asks the desk to
            // call back.
            let ev = json!({
                "id": "complaint-browser-1",
                "type": "complaint",
                "msisdn": msisdn,
                "ts": chrono::Utc::now().to_rfc3339(),
                "attrs": {"category": "network", "severity": "high"},
            });
            t.post(t.admin(), "/api/v1/events", ev).await.expect(202);
        },
    )
    .await;
    assert!(!values(&report, "SUMMARY").is_empty(), "{report:?}");
    let opened = values(&report, "OFFER");
    assert!(!opened.is_empty(), "the visit decided an offer: {report:?}");
    for id in &opened {
        // Shown on the desk: delivered.
        assert_eq!(status(&t, id).await["status"], "delivered", "{id}");
    }
    let live = values(&report, "LIVE");
    assert_eq!(live.len(), 1, "{report:?}");
    assert_eq!(values(&report, "DECLINED"), live);
    let rec = status(&t, live[0]).await;
    assert_eq!(rec["rule_id"], "complaint-care", "{rec}");
    assert_eq!(rec["status"], "declined");
    assert_eq!(rec["reason"], "price");
    let (reason, actor): (Option<String>, String) =
        sqlx::query_as("SELECT reason, actor FROM offer_responses WHERE recommendation_id = $1")
            .bind(live[0])
            .fetch_one(&t.app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(reason.as_deref(), Some("price"));
    assert_eq!(actor, w.agent.id);
    t.stop().await;
}
