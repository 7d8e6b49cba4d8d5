//! The portal widget, the agent desktop and the console in headless Chromium: the scenarios in
//! `tests/browser/*.mjs` (playwright-core) run against a real app on port 0. Chromium and the
//! node modules come from `scripts/services.sh`; without them these tests fail, never skip.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kairos::channels::Channel;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::{self, Backend, TestApp};
use crate::portal::portal_rec;

mod console_panels;

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
    let mut on_ready = Some(on_ready);
    talk(script, args, async |word: String, _value: String| {
        if word == "READY" {
            if let Some(f) = on_ready.take() {
                f().await;
            }
        }
        None
    })
    .await
}

/// Runs `node <script> <args>`, calling `on_line(word, value)` for each report line; an
/// answer it returns is written to the script's stdin (the script's `ask`). Returns the
/// report once the script exits successfully.
async fn talk(
    script: &str,
    args: &[&str],
    mut on_line: impl AsyncFnMut(String, String) -> Option<String>,
) -> Vec<(String, String)> {
    check_tools();
    let mut child = tokio::process::Command::new("node")
        .arg(dir().join(script))
        .args(args)
        .current_dir(dir())
        .env("KAIROS_CHROMIUM", chromium())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (install Node.js 18 or later)");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let err = tokio::spawn(async move {
        let mut s = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut s).await;
        s
    });
    let mut report = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.expect("node's output") {
            let (word, value) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            report.push((word.to_string(), value.trim().to_string()));
            if let Some(answer) = on_line(word.to_string(), value.trim().to_string()).await {
                // A script that already failed reads nothing: its stderr says why.
                let _ = stdin.write_all(format!("{answer}\n").as_bytes()).await;
                let _ = stdin.flush().await;
            }
        }
    };
    let outcome = tokio::time::timeout(Duration::from_secs(180), read).await;
    if outcome.is_err() {
        let _ = child.start_kill();
        let stderr = err.await.unwrap_or_default();
        panic!("{script} did not finish within 180 s; so far: {report:?}\n{stderr}");
    }
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

/// The running rule of the bootstrap folder (version 1): roaming welcomes.
const ROAM: &str = r#"#{
    id: "roam", name: "Roaming", kind: "dynamic",
    events: ["location_update"], when: #{ roaming: true }, channels: ["portal"],
    offer: #{ code: "ROAM-A", validity: "1d" },
    message: "Welcome to {country}",
};
"#;

/// A top-up of a fresh number (so no contact cap or cooldown decides for it), answered with
/// the decisions it caused.
async fn top_up(http: &reqwest::Client, base: &str, id: &str, n: usize) -> serde_json::Value {
    let ev = json!({"id": id, "type": "topup", "msisdn": format!("86139{:08}", 8_000_000 + n),
        "ts": chrono::Utc::now().to_rfc3339(), "attrs": {"amount_cents": 5000, "channel": "app"}});
    let resp = http
        .post(format!("{base}/api/v1/events?wait=true"))
        .bearer_auth(common::ADMIN_KEY)
        .json(&ev)
        .send()
        .await
        .expect("event sent");
    assert_eq!(resp.status(), 200, "event {id}");
    resp.json().await.unwrap()
}

/// The rule ids of the decisions an ingested event caused.
fn decided_by(outcome: &serde_json::Value) -> Vec<String> {
    outcome["outcome"]["decisions"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .map(|d| d["rule_id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// One Prometheus sample's value, by its exact name and labels.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// Events streamed while the rule is published: each one's id and the rules that decided it.
type Streamed = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<String>)>>>;

#[tokio::test]
async fn the_console_walks_a_rule_from_an_error_to_publish_counts_and_rollback() {
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("roam.rhai"), ROAM).unwrap();
    let (t, _db) = start(|c| {
        c.engine.rules_dir = rules.path().to_path_buf();
        // The test numbers have no CRM record: decided for as the rules alone would.
        c.engine.unknown_subscribers = "market".into();
        c.engine.workers = 2;
    })
    .await;
    let mia = t
        .user("mia", "marketer", json!({"display_name": "mia"}))
        .await;
    let ben = t
        .user("ben", "marketer", json!({"display_name": "ben"}))
        .await;
    let before = t.get(t.admin(), "/api/v1/engine/stats").await.expect(200);

    let streamed: Streamed = Default::default();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut stream: Option<tokio::task::JoinHandle<()>> = None;
    let mut captured = 0;
    let report = talk(
        "console.mjs",
        &[&t.base, "mia", "ben", common::PASSWORD],
        async |word: String, _value: String| match word.as_str() {
            "CAPTURE" => {
                // Live top-ups while the capture records: no rule listens to them yet.
                for i in 0..6 {
                    let r = top_up(&t.http, &t.base, &format!("cap-{i}"), i).await;
                    assert!(decided_by(&r).is_empty(), "{r}");
                    captured += 1;
                }
                Some(captured.to_string())
            }
            "STREAM" => {
                let (http, base) = (t.http.clone(), t.base.clone());
                let (seen, stop) = (streamed.clone(), stop.clone());
                stream = Some(tokio::spawn(async move {
                    let mut i = 0;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let id = format!("live-{i}");
                        let r = top_up(&http, &base, &id, 1000 + i).await;
                        seen.lock().unwrap().push((id, decided_by(&r)));
                        i += 1;
                    }
                }));
                // The stream runs before the publish, so it spans the swap.
                while streamed.lock().unwrap().len() < 3 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Some("streaming".into())
            }
            "STOP" => {
                // And after it, for a while.
                let after_swap = || {
                    let s = streamed.lock().unwrap();
                    s.iter().filter(|(_, by)| !by.is_empty()).count()
                };
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                while after_swap() < 5 && std::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                stream.take().unwrap().await.unwrap();
                // `/metrics` counts the new rule's runs as the stream saw them.
                let k = after_swap();
                let metrics = t.get(t.admin(), "/metrics").await.expect(200);
                let metrics = metrics.as_str().unwrap();
                for family in ["kairos_rule_evaluations_total", "kairos_rule_matches_total"] {
                    assert_eq!(
                        sample(metrics, &format!("{family}{{rule=\"topup-bonus\"}}")),
                        Some(k as f64),
                        "{family}: {metrics}"
                    );
                }
                Some(k.to_string())
            }
            _ => None,
        },
    )
    .await;

    // The console's policy: its own scripts only.
    let csp = values(&report, "CSP");
    assert!(csp[0].contains("default-src 'self'"), "{csp:?}");
    assert!(!csp[0].contains("unsafe-inline"), "{csp:?}");
    // The error showed at its line, with the fix; fixed, its tests passed.
    assert_eq!(values(&report, "ERROR_LINE"), ["5"], "{report:?}");
    assert_eq!(
        values(&report, "SUGGESTION"),
        ["Did you mean `{amount_cents}`?"]
    );
    assert_eq!(values(&report, "TESTS"), ["2 passed, 0 failed"]);
    assert_eq!(values(&report, "FOUR_EYES").len(), 1);
    // Tried and backtested on the six captured top-ups: each one an offer of the new rule.
    assert_eq!(values(&report, "CAPTURED"), ["6"]);
    assert_eq!(values(&report, "DRY"), ["6"]);
    assert_eq!(values(&report, "BACKTEST"), ["6 added"]);

    // Published while the stream ran: every streamed event was evaluated once, by the old
    // set (no decision) or the new one (one offer of the new rule), and the swap is one
    // point in the stream: nothing after it went to the old set, nothing was lost or doubled.
    let streamed = streamed.lock().unwrap().clone();
    let flags: Vec<bool> = streamed.iter().map(|(_, by)| !by.is_empty()).collect();
    let swap = flags.iter().position(|d| *d).expect("the new rule decided");
    assert!(swap >= 3, "the stream began before the publish: {flags:?}");
    assert!(flags[swap..].iter().all(|d| *d), "{flags:?}");
    for (id, by) in &streamed {
        assert!(
            by.is_empty() || by == &["topup-bonus".to_string()],
            "{id}: {by:?}"
        );
    }
    let decided: Vec<&str> = streamed[swap..].iter().map(|(id, _)| id.as_str()).collect();
    let k = decided.len();
    let mut stored: Vec<(String,)> = sqlx::query_as(
        "SELECT trigger_event_id FROM recommendations WHERE rule_id = $1 ORDER BY trigger_event_id",
    )
    .bind("topup-bonus")
    .fetch_all(&t.app.state.db.pool)
    .await
    .unwrap();
    stored.sort();
    let mut want: Vec<String> = decided.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(
        stored.into_iter().map(|(id,)| id).collect::<Vec<_>>(),
        want,
        "one stored decision per event after the swap"
    );
    // The console showed the same counts the engine keeps.
    assert_eq!(values(&report, "COUNT"), [format!("{k} {k}")], "{report:?}");
    let after = t.get(t.admin(), "/api/v1/engine/stats").await.expect(200);
    let processed = |s: &serde_json::Value| s["events"]["processed"].as_u64().unwrap();
    assert_eq!(
        processed(&after) - processed(&before),
        (captured + streamed.len()) as u64,
        "every ingested event processed once: {after}"
    );
    assert_eq!(values(&report, "ROLLED_BACK"), ["3"]);

    // /metrics saw them too (the rolled-back rule's counts stay in the decisions family).
    let metrics = t
        .get(t.admin(), "/metrics")
        .await
        .expect(200)
        .as_str()
        .unwrap()
        .to_string();
    let decisions: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("kairos_decisions_total{") && l.contains("rule=\"topup-bonus\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(decisions, k as f64, "{metrics}");
    assert_eq!(
        sample(&metrics, "kairos_events_in_total{type=\"topup\"}"),
        Some((captured + streamed.len()) as f64),
        "{metrics}"
    );

    // Rolled back: version 3 restores 1, and a top-up decides nothing again.
    let v = t.get(&ben.token, "/api/v1/rule-versions").await.expect(200);
    assert_eq!(v["items"][0]["number"], 3, "{v}");
    assert_eq!(v["items"][0]["restores"], 1, "{v}");
    assert_eq!(v["items"][1]["author"], mia.id.as_str(), "{v}");
    assert_eq!(v["items"][1]["approved_by"], ben.id.as_str(), "{v}");
    let r = top_up(&t.http, &t.base, "after-rollback", 9999).await;
    assert!(decided_by(&r).is_empty(), "{r}");
    t.stop().await;
}

#[tokio::test]
async fn the_console_plans_a_campaign_another_approves_then_launches_and_reads_results() {
    // The real engine behind the launch: its decisions are stored and counted in the results.
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("kairos.db").display()
    );
    let t = crate::real_engine::start(Backend::Sqlite, url, dir.path()).await;
    let w = common::world::world(&t).await;
    t.post(
        t.admin(),
        "/api/v1/catalog/offerings",
        json!({"code": "DATA10", "name": "10GB data pack", "offering_type": "addon", "price_cents": 1500}),
    )
    .await
    .expect(201);
    t.post(
        &w.marketer.token,
        "/api/v1/segments",
        json!({"name": "Individuals", "criteria": {"all": [{"field": "customer_type", "op": "=", "value": "individual"}]}}),
    )
    .await
    .expect(201);
    let report = run(
        "campaigns.mjs",
        &[&t.base, "mk", "lead", common::PASSWORD, "Individuals"],
        async || {},
    )
    .await;
    let id = values(&report, "PLANNED")[0].to_string();
    for step in [
        "SUBMITTED",
        "ROLE_AWARE",
        "APPROVED",
        "LAUNCHED",
        "COMPLETED",
    ] {
        assert_eq!(values(&report, step).len(), 1, "{step}: {report:?}");
    }
    // The page showed what the campaign API answers, and the approval is the lead's.
    let results = t
        .get(
            &w.marketer.token,
            &format!("/api/v1/campaigns/{id}/results"),
        )
        .await
        .expect(200);
    assert!(results["decided"].as_i64().unwrap() > 0, "{results}");
    assert_eq!(values(&report, "DECIDED"), [results["decided"].to_string()]);
    let c = t
        .get(&w.marketer.token, &format!("/api/v1/campaigns/{id}"))
        .await
        .expect(200);
    assert_eq!(c["state"], "completed", "{c}");
    assert_eq!(c["decided_by"], w.lead.id.as_str(), "{c}");
    assert_eq!(c["created_by"], w.marketer.id.as_str(), "{c}");
    crate::real_engine::stop(t).await;
}
