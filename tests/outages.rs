//! Losing the state store mid-stream: the engine stalls and retries, and loses nothing.

use crate::engine_support;

use std::process::{Child, Command};
use std::time::Duration;

use engine_support::*;
use serde_json::json;

/// A private Redis on its own port, so stopping it does not disturb other tests.
fn redis_on(port: u16) -> Child {
    let mut child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server must be installed (scripts/services.sh installs it)");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("redis-server did not start on {port}");
}

#[tokio::test]
async fn a_redis_outage_stalls_the_engine_and_loses_nothing() {
    let port = free_port();
    let mut redis = redis_on(port);
    let db = fresh_db(Backend::Sqlite).await;
    let rules = copy_rules(&[
        "dynamic/missed-call-reminder.rhai",
        "dynamic/roaming-welcome.rhai",
    ]);
    let mut cfg = config(&db.url, rules.path());
    cfg.state.backend = "redis".into();
    cfg.state.redis_url = format!("redis://127.0.0.1:{port}");
    cfg.engine.ack_timeout = "2s".into();
    let app = kairos::app::App::start(cfg).await.unwrap();
    let c = Client::new(&app);
    let m = "8613900000042";
    c.ingest(&[
        ev("o1", "power_off", m, "2026-11-23T22:00:00+08:00", json!({})),
        ev(
            "o2",
            "missed_call",
            m,
            "2026-11-23T22:10:00+08:00",
            json!({}),
        ),
    ])
    .await;

    // Redis goes away; events keep arriving. They are queued, but cannot be made durable, so
    // ingest answers 503 after its ack timeout instead of a 2xx (a resend would be safe).
    redis.kill().unwrap();
    redis.wait().unwrap();
    let r = c
        .post("/api/v1/events")
        .json(&json!([
            ev(
                "o3",
                "missed_call",
                m,
                "2026-11-23T22:20:00+08:00",
                json!({})
            ),
            ev(
                "o4",
                "missed_call",
                m,
                "2026-11-23T22:30:00+08:00",
                json!({})
            ),
            ev("o5", "power_on", m, "2026-11-24T07:00:00+08:00", json!({})),
            ev(
                "r1",
                "location_update",
                "8613900000043",
                "2026-11-24T07:00:00+08:00",
                json!({"country": "JP", "roaming": true})
            ),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body.to_string().contains("resending them is safe"),
        "{body}"
    );
    assert!(
        c.recs(m).await.is_empty(),
        "nothing decided while state cannot be saved"
    );
    let stats: serde_json::Value = c
        .get("/api/v1/engine/stats")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        stats["events"]["store_retries"].as_u64().unwrap() > 0,
        "{stats}"
    );

    // Redis is back (empty: it kept nothing): the batch is retried and completes.
    let mut redis = redis_on(port);
    let flushed = tokio::time::timeout(Duration::from_secs(30), app.state.pipeline.flush()).await;
    assert!(flushed.is_ok(), "engine recovered within 30 s");
    let recs = c.recs(m).await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["offer_code"], "MCR-MONTHLY");
    assert_eq!(c.recs("8613900000043").await.len(), 1);
    app.shutdown().await.unwrap();
    redis.kill().unwrap();
    let _ = redis.wait();
}

/// Readiness follows Redis: ready while it answers, 503 naming it once it is gone (the
/// database still answers), ready again when it is back.
#[tokio::test]
async fn readiness_names_redis_when_it_goes_away() {
    let port = free_port();
    let mut redis = redis_on(port);
    let db = fresh_db(Backend::Sqlite).await;
    let rules = copy_rules(&["dynamic/roaming-welcome.rhai"]);
    let mut cfg = config(&db.url, rules.path());
    cfg.state.backend = "redis".into();
    cfg.state.redis_url = format!("redis://127.0.0.1:{port}");
    let app = kairos::app::App::start(cfg).await.unwrap();
    let url = format!("http://{}/readyz", app.addr);
    let ready = reqwest::get(&url).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    let names: Vec<&str> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["database", "redis"], "{body}");

    redis.kill().unwrap();
    redis.wait().unwrap();
    let down = reqwest::get(&url).await.unwrap();
    assert_eq!(down.status(), 503);
    let body: serde_json::Value = down.json().await.unwrap();
    assert_eq!(body["status"], "not_ready", "{body}");
    assert_eq!(body["error"], "unavailable", "{body}");
    assert_eq!(body["failed"], json!(["redis"]), "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("redis"),
        "{body}"
    );
    let redis_check = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "redis")
        .unwrap();
    assert_eq!(redis_check["ok"], false, "{body}");
    assert!(!redis_check["error"].as_str().unwrap().is_empty(), "{body}");

    let mut redis = redis_on(port);
    let mut back = 0;
    for _ in 0..100 {
        back = reqwest::get(&url).await.unwrap().status().as_u16();
        if back == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(back, 200, "ready again once Redis is back");
    app.shutdown().await.unwrap();
    redis.kill().unwrap();
    redis.wait().unwrap();
}
