//! Operations: `/metrics` as Prometheus reads it (checked by `promtool check metrics`, with
//! the values the traffic should have left), readiness, and JSON logs from the real binary.

use crate::engine_support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use engine_support::*;
use kairos::app::App;
use serde_json::json;

/// A rule that fails on every run it gets: a rule error per roaming location update.
const BOOM_RULE: &str = r#"#{
    id: "boom", name: "Always fails", kind: "dynamic", events: ["location_update"],
    when: #{ roaming: true }, priority: 10, channels: ["sms"],
    offer: #{ code: "BOOM" }, message: "never",
};
fn condition(event, profile) { throw "boom"; }
"#;

/// promtool, as the tests find it: `KAIROS_TEST_PROMTOOL`, else where `scripts/services.sh`
/// puts it (`.tools/bin`), else on the PATH. Never skipped: without it the test fails.
fn promtool() -> PathBuf {
    if let Ok(p) = std::env::var("KAIROS_TEST_PROMTOOL") {
        return p.into();
    }
    let ours = repo().join(".tools/bin/promtool");
    if ours.is_file() {
        return ours;
    }
    "promtool".into()
}

/// Runs `promtool check metrics` on `text`; panics with its words unless it passes.
fn promtool_check(text: &str) {
    let tool = promtool();
    let mut child = Command::new(&tool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "promtool ({}) is required: {e}; scripts/services.sh installs it into .tools/bin",
                tool.display()
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {:?}\n{}{}\n--- metrics ---\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the one series of `name` carrying every label in `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| v.parse().unwrap())
        .collect();
    assert!(
        found.len() <= 1,
        "{name} {labels:?} is not one series: {found:?}"
    );
    found.first().copied()
}

async fn scrape(c: &Client) -> String {
    let r = c.get("/metrics").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.unwrap()
}

#[tokio::test]
async fn metrics_pass_promtool_and_count_what_the_traffic_did() {
    let db = fresh_db(Backend::Sqlite).await;
    let welcome =
        std::fs::read_to_string(repo().join("rules/dynamic/roaming-welcome.rhai")).unwrap();
    let rules = rules_dir(&[("roaming-welcome.rhai", &welcome), ("boom.rhai", BOOM_RULE)]);
    let app = App::start(config(&db.url, rules.path())).await.unwrap();
    let c = Client::new(&app);
    let m = "8613900000071";
    let roam = |id: &str, ts: &str| {
        ev(
            id,
            "location_update",
            m,
            ts,
            json!({"country": "JP", "mcc": "440", "roaming": true}),
        )
    };
    c.ingest(&[
        roam("m1", "2026-11-23T08:15:00+08:00"),
        ev(
            "m2",
            "power_off",
            "8613900000072",
            "2026-11-23T09:00:00+08:00",
            json!({}),
        ),
        // No rule listens to it and it is not in the contract: an engine dead letter.
        ev(
            "m3",
            "zzz_custom_signal",
            "8613900000073",
            "2026-11-23T09:00:00+08:00",
            json!({}),
        ),
    ])
    .await;
    // The same country again within the cooldown: decided, and suppressed.
    c.ingest(&[roam("m4", "2026-11-24T09:00:00+08:00")]).await;
    // No msisdn: refused at the door and kept as a dead letter.
    let r = c
        .post("/api/v1/events")
        .json(&json!([{"id": "bad", "type": "call", "ts": "2026-11-23T09:00:00+08:00"}]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    // Delivery is asynchronous: wait for the one offer to go out on the SMS outbox.
    let mut text = scrape(&c).await;
    for _ in 0..100 {
        if value(
            &text,
            "kairos_sends_total",
            &[("channel", "sms"), ("status", "sent")],
        )
        .is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        text = scrape(&c).await;
    }
    promtool_check(&text);

    let v = |name: &str, labels: &[(&str, &str)]| {
        value(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    assert_eq!(
        v("kairos_events_in_total", &[("type", "location_update")]),
        2.0
    );
    assert_eq!(v("kairos_events_in_total", &[("type", "power_off")]), 1.0);
    assert_eq!(v("kairos_events_in_total", &[("type", "custom")]), 1.0);
    assert_eq!(v("kairos_events_processed_total", &[]), 3.0);
    assert_eq!(
        v("kairos_events_skipped_total", &[("reason", "unknown_type")]),
        1.0
    );
    assert_eq!(v("kairos_events_rejected_total", &[]), 1.0);
    assert_eq!(v("kairos_dead_letters_total", &[("source", "http")]), 1.0);
    assert_eq!(v("kairos_dead_letters_total", &[("source", "engine")]), 1.0);
    assert_eq!(
        v(
            "kairos_decisions_total",
            &[
                ("rule", "roaming-welcome"),
                ("status", "suppressed"),
                ("reason", "cooldown")
            ]
        ),
        1.0
    );
    assert_eq!(
        v(
            "kairos_decisions_total",
            &[
                ("rule", "roaming-welcome"),
                ("status", "queued"),
                ("reason", "none")
            ]
        ),
        1.0
    );
    assert_eq!(
        v(
            "kairos_sends_total",
            &[("channel", "sms"), ("status", "sent")]
        ),
        1.0
    );
    assert_eq!(v("kairos_rule_errors_total", &[("rule", "boom")]), 2.0);
    assert_eq!(
        v("kairos_rule_errors_total", &[("rule", "roaming-welcome")]),
        0.0
    );
    assert_eq!(v("kairos_rule_quarantined", &[("rule", "boom")]), 0.0);
    // Every run of the rule is in its time histogram.
    let runs = v(
        "kairos_rule_evaluations_total",
        &[("rule", "roaming-welcome")],
    );
    assert_eq!(runs, 2.0);
    assert_eq!(
        v(
            "kairos_rule_evaluation_seconds_count",
            &[("rule", "roaming-welcome")]
        ),
        runs
    );
    assert_eq!(
        v(
            "kairos_rule_evaluation_seconds_bucket",
            &[("rule", "roaming-welcome"), ("le", "+Inf")]
        ),
        runs
    );
    assert!(v("kairos_rule_evaluation_seconds_sum", &[("rule", "boom")]) > 0.0);
    assert_eq!(v("kairos_store_retries_total", &[]), 0.0);
    assert!(
        !text.contains("kairos_kafka_"),
        "no Kafka series outside Kafka mode"
    );

    // Read like the engine's stats: a bearer token of a role that may read them.
    let anon = reqwest::get(format!("{}/metrics", c.base)).await.unwrap();
    assert_eq!(anon.status(), 401);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_are_in_the_api_document() {
    let doc = serde_json::to_value(kairos::app::document()).unwrap();
    let op = &doc["paths"]["/metrics"]["get"];
    assert!(op.is_object(), "{}", doc["paths"]["/metrics"]);
    assert!(
        op["responses"]["200"]["content"]["text/plain"].is_object(),
        "{op}"
    );
    assert!(op["security"].is_array(), "{op}");
}

#[tokio::test]
async fn a_good_app_is_ready_and_names_what_it_checked() {
    let db = fresh_db(Backend::Sqlite).await;
    let rules = copy_rules(&["dynamic/roaming-welcome.rhai"]);
    let app = App::start(config(&db.url, rules.path())).await.unwrap();
    let base = format!("http://{}", app.addr);
    // Probes carry no credentials.
    let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["checks"][0]["name"], "database", "{body}");
    assert_eq!(body["checks"][0]["ok"], true, "{body}");
    assert_eq!(
        body["checks"].as_array().unwrap().len(),
        1,
        "no Redis, no Kafka: {body}"
    );
    let live = reqwest::get(format!("{base}/health")).await.unwrap();
    assert_eq!(live.status(), 200);
    app.shutdown().await.unwrap();
}

/// `kairos serve` with `log.format = "json"` in `dir` (its database there too), with the
/// given admin key or none.
async fn serve_json(dir: &std::path::Path, key: Option<&str>) -> (std::process::Child, String) {
    let port = free_port();
    let mut cmd = crate::crash::kairos();
    cmd.arg("serve")
        .current_dir(dir)
        .env(
            "KAIROS_DATABASE__URL",
            format!("sqlite://{}?mode=rwc", dir.join("k.db").display()),
        )
        .env("KAIROS_HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("KAIROS_LOG__FORMAT", "json")
        .env("KAIROS_LOG", "info")
        .stdout(Stdio::piped());
    if let Some(key) = key {
        cmd.env("KAIROS_AUTH__BOOTSTRAP_ADMIN_KEY", key);
    }
    let child = cmd.spawn().expect("the kairos binary starts");
    crate::crash::healthy(child, port).await
}

/// Stops a server with SIGTERM; its exit status and what it printed.
async fn stop_and_read(
    mut child: std::process::Child,
) -> (std::process::ExitStatus, String, Vec<serde_json::Value>) {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = tokio::task::spawn_blocking(move || {
        let mut stdout = child.stdout.take().unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
        (child.wait().unwrap(), text)
    });
    let (status, text) = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("stops within 30 s of SIGTERM")
        .unwrap();
    let lines = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    (status, text, lines)
}

/// `kairos serve` with `log.format = "json"`: every line it prints is a JSON object, and
/// SIGTERM stops it cleanly (exit 0) after saying so.
#[tokio::test]
async fn json_logs_print_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = serve_json(dir.path(), Some("json-logs-key")).await;
    let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
    let (status, text, lines) = stop_and_read(child).await;
    assert!(
        status.success(),
        "SIGTERM is a clean stop: {status:?}\n{text}"
    );
    let said = |what: &str| {
        lines.iter().any(|l| {
            l["level"] == "INFO" && l["message"].as_str().is_some_and(|m| m.contains(what))
        })
    };
    assert!(said("kairos listening on"), "{text}");
    assert!(said("shutting down"), "{text}");
}

/// Shipped JSON logs never carry the generated admin key: it goes to a file only its owner
/// can read, the log names the file, and the key in it works.
#[tokio::test]
async fn json_logs_leave_the_generated_admin_key_in_an_owner_only_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = serve_json(dir.path(), None).await;
    let file = dir.path().join(kairos::app::GENERATED_KEY_FILE);
    let key = std::fs::read_to_string(&file).expect("the key file is written");
    let key = key.trim();
    assert!(key.len() >= 32, "a real key: {key:?}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "owner only");
    let me = reqwest::Client::new()
        .get(format!("{base}/api/v1/auth/me"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the key in the file is the admin's");
    let (_, text, lines) = stop_and_read(child).await;
    assert!(!text.contains(key), "the key is not in the log:\n{text}");
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "WARN"
                && l["file"].as_str() == Some(kairos::app::GENERATED_KEY_FILE)),
        "the log names the file: {text}"
    );
}
