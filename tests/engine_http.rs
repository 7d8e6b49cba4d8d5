//! The whole product in-process over HTTP: ingest -> rules -> decisions -> store, on SQLite
//! and PostgreSQL, with restarts.

use crate::engine_support;

use engine_support::*;
use kairos::app::App;
use serde_json::json;

async fn scenario_offers(backend: Backend) {
    let db = fresh_db(backend).await;
    let rules = copy_rules(&[
        "dynamic/roaming-welcome.rhai",
        "dynamic/missed-call-reminder.rhai",
    ]);
    let app = App::start(config(&db.url, rules.path())).await.unwrap();
    let c = Client::new(&app);
    let res = c.ingest(&three_subscribers()).await;
    assert_eq!(res["accepted"], 9);

    let roamer = c.recs("8613900000001").await;
    assert_eq!(roamer.len(), 1, "{roamer:?}");
    assert_eq!(roamer[0]["offer_code"], "ROAM-JP-7D");
    assert_eq!(roamer[0]["rule_id"], "roaming-welcome");
    assert_eq!(roamer[0]["trigger_event_id"], "a1");
    // One time format on output: UTC, to the millisecond (the event was stamped 08:15+08:00).
    assert_eq!(roamer[0]["decided_at"], "2026-11-23T00:15:00.000Z");
    assert_eq!(roamer[0]["expires_at"], "2026-11-30T00:15:00.000Z");
    // The profile language defaults to zh.
    assert!(
        roamer[0]["message"].as_str().unwrap().contains("日本")
            || roamer[0]["message"].as_str().unwrap().contains("Japan")
    );

    let missed = c.recs("8613900000002").await;
    assert_eq!(missed.len(), 1);
    assert_eq!(missed[0]["offer_code"], "MCR-MONTHLY");
    assert!(
        missed[0]["message"].as_str().unwrap().contains('3'),
        "{}",
        missed[0]["message"]
    );

    assert!(
        c.recs("8613900000003").await.is_empty(),
        "one missed call is not enough"
    );

    // Channels deliver asynchronously: the SMS outbox gets both, statuses move to sent.
    let mut sent = 0;
    for _ in 0..50 {
        let all: serde_json::Value = c
            .get("/api/v1/recommendations?status=sent")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        sent = all["total"].as_i64().unwrap();
        if sent == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(sent, 2);
    let outbox: Vec<serde_json::Value> = c.get_items("/api/v1/channels/sms/outbox").await;
    assert_eq!(outbox.len(), 2);

    // Re-delivering the same events changes nothing.
    let again = c.ingest(&three_subscribers()).await;
    assert_eq!(again["accepted"], 9);
    let stats: serde_json::Value = c
        .get("/api/v1/engine/stats")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["events"]["duplicates"], 9);
    assert_eq!(stats["events"]["recommendations"], 2);
    assert_eq!(c.recs("8613900000001").await.len(), 1);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn scenario_offers_on_sqlite() {
    scenario_offers(Backend::Sqlite).await;
}

#[tokio::test]
async fn scenario_offers_on_postgres() {
    scenario_offers(Backend::Postgres).await;
}

#[tokio::test]
async fn state_and_cooldowns_survive_a_restart() {
    let db = fresh_db(Backend::Sqlite).await;
    let rules = copy_rules(&[
        "dynamic/roaming-welcome.rhai",
        "dynamic/missed-call-reminder.rhai",
    ]);
    let m = "8613900000005";
    {
        let app = App::start(config(&db.url, rules.path())).await.unwrap();
        let c = Client::new(&app);
        c.ingest(&[
            ev(
                "r1",
                "location_update",
                m,
                "2026-11-23T08:00:00+08:00",
                json!({"country": "JP", "roaming": true}),
            ),
            ev("p1", "power_off", m, "2026-11-23T22:00:00+08:00", json!({})),
            ev(
                "p2",
                "missed_call",
                m,
                "2026-11-23T22:10:00+08:00",
                json!({"reason": "powered_off"}),
            ),
            ev(
                "p3",
                "missed_call",
                m,
                "2026-11-23T22:20:00+08:00",
                json!({"reason": "powered_off"}),
            ),
        ])
        .await;
        app.shutdown().await.unwrap();
    }
    let app = App::start(config(&db.url, rules.path())).await.unwrap();
    let c = Client::new(&app);
    c.ingest(&[
        ev(
            "p4",
            "missed_call",
            m,
            "2026-11-23T22:30:00+08:00",
            json!({"reason": "powered_off"}),
        ),
        ev("p5", "power_on", m, "2026-11-24T07:00:00+08:00", json!({})),
        // Same country again within the 7-day cooldown: decided, but suppressed.
        ev(
            "r2",
            "location_update",
            m,
            "2026-11-24T09:00:00+08:00",
            json!({"country": "JP", "roaming": true}),
        ),
        // An event id seen before the restart is still a duplicate.
        ev(
            "p2",
            "missed_call",
            m,
            "2026-11-23T22:10:00+08:00",
            json!({"reason": "powered_off"}),
        ),
    ])
    .await;
    let recs = c.recs(m).await;
    let codes: Vec<(&str, &str)> = recs
        .iter()
        .map(|r| {
            (
                r["offer_code"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        codes
            .iter()
            .any(|(c, s)| *c == "MCR-MONTHLY" && *s != "suppressed"),
        "missed calls counted across the restart: {codes:?}"
    );
    let again: Vec<_> = recs
        .iter()
        .filter(|r| r["trigger_event_id"] == "r2")
        .collect();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["status"], "suppressed");
    assert_eq!(again[0]["reason"], "cooldown");
    let stats: serde_json::Value = c
        .get("/api/v1/engine/stats")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["events"]["duplicates"], 1);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_events_are_rejected_with_the_field_and_kept() {
    let db = fresh_db(Backend::Sqlite).await;
    let rules = copy_rules(&["dynamic/roaming-welcome.rhai"]);
    let app = App::start(config(&db.url, rules.path())).await.unwrap();
    let c = Client::new(&app);

    // A single bad event: 400 naming the field.
    let r = c
        .post("/api/v1/events")
        .json(&json!({"id": "x", "type": "sms", "msisdn": "12ab", "ts": "2026-11-23T08:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["field"], "msisdn");

    // A batch: good ones go through, bad ones are listed.
    let batch = json!([
        {"id": "g1", "type": "location_update", "msisdn": "8613900000001", "ts": "2026-11-23T08:00:00+08:00", "attrs": {"country": "KR", "roaming": true}},
        {"id": "b1", "type": "call", "msisdn": "8613900000001", "ts": "yesterday"},
        {"id": "b2", "type": "call", "msisdn": "8613900000001", "ts": "2026-11-23T08:00:00Z", "attrs": {"duration_s": "long"}},
        "not an object"
    ]);
    let r = c
        .post("/api/v1/events?wait=true")
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], 1);
    let fields: Vec<&str> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["ts", "attrs.duration_s", "body"]);

    // NDJSON with a broken line.
    let nd = "{\"id\":\"n1\",\"type\":\"sms\",\"msisdn\":\"8613900000001\",\"ts\":\"2026-11-23T08:00:00Z\"}\n{oops\n";
    let r = c
        .post("/api/v1/events?wait=true")
        .header("content-type", "application/x-ndjson")
        .body(nd)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["rejected"][0]["at"], 2);

    // A custom type no rule listens to, and a late event, are dead-lettered by the engine.
    c.ingest(&[
        ev(
            "u1",
            "app_install",
            "8613900000001",
            "2026-11-23T08:00:00+08:00",
            json!({}),
        ),
        ev(
            "l1",
            "sms",
            "8613900000001",
            "2026-11-23T01:00:00+08:00",
            json!({}),
        ),
    ])
    .await;

    // Oversized events are refused, not truncated into something else.
    let huge = json!({"id": "h", "type": "sms", "msisdn": "8613900000001", "ts": "2026-11-23T08:00:00Z", "attrs": {"blob": "x".repeat(70_000)}});
    let r = c.post("/api/v1/events").json(&huge).send().await.unwrap();
    assert_eq!(r.status(), 400);

    let dl: serde_json::Value = c
        .get("/api/v1/dead-letters?limit=100")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dl["total"], 8, "{dl:#}");
    let reasons: Vec<String> = dl["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("unknown event type")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("lateness")),
        "{reasons:?}"
    );
    // The good event still produced its offer.
    assert_eq!(c.recs("8613900000001").await.len(), 1);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_call_is_authenticated_and_authorised() {
    let db = fresh_db(Backend::Sqlite).await;
    let rules = copy_rules(&["dynamic/roaming-welcome.rhai"]);
    let app = App::start(config(&db.url, rules.path())).await.unwrap();
    let c = Client::new(&app);
    for path in [
        "/api/v1/recommendations",
        "/api/v1/engine/stats",
        "/api/v1/rules",
        "/api/v1/dead-letters",
    ] {
        let r = c
            .http
            .get(format!("{}{}", c.base, path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let r = c.with_key("wrong").get(path).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let r = c
        .http
        .post(format!("{}/api/v1/events", c.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get("/api/v1/recommendations?status=bogus")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .get("/api/v1/recommendations?limit=0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    app.shutdown().await.unwrap();
}

const PORTAL_RULE: &str = r#"
#{
    id: "portal-roam",
    name: "Roaming pop-up",
    kind: "dynamic",
    events: ["location_update"],
    when: #{ roaming: true },
    channels: ["portal"],
    offer: #{ code: "POP-{country}", validity: "1d" },
    message: "Travelling to {country}?",
};
"#;

#[tokio::test]
async fn portal_offers_are_pushed_live_and_answers_close_the_loop() {
    let db = fresh_db(Backend::Sqlite).await;
    let rules = rules_dir(&[("portal.rhai", PORTAL_RULE)]);
    let app = App::start(config(&db.url, rules.path())).await.unwrap();
    let c = Client::new(&app);
    let m = "8613900000007";
    // Live offers are those not yet expired by the wall clock, so the events happen now.
    let now = chrono::Utc::now().to_rfc3339();
    let mut stream = c
        .get(&format!("/api/v1/portal/{m}/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    // Another subscriber's offer must not appear on this stream.
    c.ingest(&[
        ev(
            "o1",
            "location_update",
            "8613900000008",
            &now,
            json!({"country": "FR", "roaming": true}),
        ),
        ev(
            "m1",
            "location_update",
            m,
            &now,
            json!({"country": "TH", "roaming": true}),
        ),
    ])
    .await;
    let mut got = String::new();
    while !got.contains("POP-TH") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), stream.chunk())
            .await
            .expect("pushed within 5s")
            .unwrap()
            .unwrap();
        got.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(got.contains("event: offer"), "{got}");
    assert!(!got.contains("POP-FR"), "{got}");
    drop(stream);

    let nbo: Vec<serde_json::Value> = c
        .get_items(&format!("/api/v1/subscribers/{m}/next-best-offers"))
        .await;
    assert_eq!(nbo.len(), 1);
    let id = nbo[0]["id"].as_str().unwrap().to_string();
    let r = c
        .post(&format!("/api/v1/recommendations/{id}/response"))
        .json(&json!({"outcome": "accepted", "reason": "clicked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rec: serde_json::Value = r.json().await.unwrap();
    assert_eq!(rec["status"], "accepted");
    // Answered offers are no longer next-best.
    let nbo: Vec<serde_json::Value> = c
        .get_items(&format!("/api/v1/subscribers/{m}/next-best-offers"))
        .await;
    assert!(nbo.is_empty());
    let r = c
        .post(&format!("/api/v1/recommendations/{id}/response"))
        .json(&json!({"outcome": "maybe"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn rules_reload_swaps_atomically_and_refuses_broken_sets() {
    let db = fresh_db(Backend::Sqlite).await;
    let rules = rules_dir(&[("portal.rhai", PORTAL_RULE)]);
    let app = App::start(config(&db.url, rules.path())).await.unwrap();
    let c = Client::new(&app);
    std::fs::write(rules.path().join("broken.rhai"), "#{ id: \"broken\" ").unwrap();
    let r = c.post("/api/v1/rules/reload").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("broken.rhai:1:"),
        "{body}"
    );
    std::fs::remove_file(rules.path().join("broken.rhai")).unwrap();
    std::fs::write(
        rules.path().join("second.rhai"),
        PORTAL_RULE.replace("portal-roam", "portal-roam-2"),
    )
    .unwrap();
    let r = c.post("/api/v1/rules/reload").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let list: Vec<serde_json::Value> = c.get_items("/api/v1/rules").await;
    assert_eq!(list.len(), 2);
    app.shutdown().await.unwrap();
}

/// A Kannel-like gateway on loopback: records every `sendsms` request.
async fn fake_gateway(
    fail_first: usize,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<std::collections::HashMap<String, String>>>>,
) {
    use axum::extract::Query;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<HashMap<String, String>>>> = Arc::default();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let s2 = seen.clone();
    let app = axum::Router::new().route(
        "/cgi-bin/sendsms",
        axum::routing::get(move |Query(q): Query<HashMap<String, String>>| {
            let seen = s2.clone();
            let calls = calls.clone();
            async move {
                if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < fail_first {
                    return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy");
                }
                seen.lock().unwrap().push(q);
                (axum::http::StatusCode::ACCEPTED, "0: Accepted for delivery")
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/cgi-bin/sendsms"), seen)
}

#[tokio::test]
async fn sms_goes_through_an_http_gateway_with_retries_and_delivery_reports() {
    let (url, seen) = fake_gateway(1).await;
    let db = fresh_db(Backend::Sqlite).await;
    let rules = copy_rules(&["dynamic/roaming-welcome.rhai"]);
    let mut cfg = config(&db.url, rules.path());
    cfg.channels.sms.mode = "http".into();
    cfg.channels.sms.gateway_url = url;
    cfg.channels.sms.dlr_url = "http://127.0.0.1/dlr?id={id}&status=%d".into();
    let app = App::start(cfg).await.unwrap();
    let c = Client::new(&app);
    c.ingest(&[ev(
        "g1",
        "location_update",
        "8613900000011",
        "2026-11-23T08:00:00+08:00",
        json!({"country": "JP", "roaming": true}),
    )])
    .await;
    let mut got = Vec::new();
    for _ in 0..100 {
        got = seen.lock().unwrap().clone();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(got.len(), 1, "one send after one retry");
    assert_eq!(got[0]["to"], "8613900000011");
    assert_eq!(got[0]["coding"], "2", "Chinese text goes as UCS-2");
    assert!(got[0]["text"].contains("日本"), "{:?}", got[0]);
    let rec_id = c.recs("8613900000011").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The gateway gets the template filled in plus the message's signature, which is all a
    // delivery report presents (the secret was generated and stored at first start).
    let dlr_url = got[0]["dlr-url"].clone();
    let token = dlr_url
        .rsplit_once("&token=")
        .map(|(_, t)| t.to_string())
        .unwrap_or_default();
    assert!(
        token.len() == 64 && token.chars().all(|c| c.is_ascii_hexdigit()),
        "{dlr_url}"
    );
    assert_eq!(
        dlr_url,
        format!("http://127.0.0.1/dlr?id={rec_id}&status=%d&token={token}")
    );
    let gateway = reqwest::Client::new();
    let dlr = |status: u32| {
        gateway
            .get(format!(
                "{}/api/v1/channels/sms/dlr?id={rec_id}&status={status}&token={token}",
                c.base
            ))
            .send()
    };
    let mut status = String::new();
    for _ in 0..50 {
        status = c.recs("8613900000011").await[0]["status"]
            .as_str()
            .unwrap()
            .to_string();
        if status == "sent" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "sent");
    // The 503 was retried within the one attempt; the outbox counted that attempt.
    let d: serde_json::Value = c
        .get(&format!("/api/v1/recommendations/{rec_id}/delivery"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["attempts"], 1, "{d}");
    assert_eq!(d["next_attempt_at"], serde_json::Value::Null);
    let r = dlr(1).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(c.recs("8613900000011").await[0]["status"], "delivered");
    let r = dlr(99).await.unwrap();
    assert_eq!(r.status(), 400);
    app.shutdown().await.unwrap();
}

/// The loaded rules and the engine stats, by rule id.
async fn rule_views(c: &Client) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    let list: Vec<serde_json::Value> = c.get_items("/api/v1/rules").await;
    let stats: serde_json::Value = c
        .get("/api/v1/engine/stats")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let info = list.into_iter().find(|r| r["id"] == "grow-array").unwrap();
    let counts = stats["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == "grow-array")
        .unwrap()
        .clone();
    (info, counts, stats)
}

#[tokio::test]
async fn a_failing_rule_is_quarantined_shown_as_such_and_lifted_by_a_reload() {
    let db = fresh_db(Backend::Sqlite).await;
    let rules = rules_dir(&[("portal.rhai", PORTAL_RULE), ("grow.rhai", GROW_ARRAY_RULE)]);
    let app = App::start(config(&db.url, rules.path())).await.unwrap();
    let c = Client::new(&app);
    let roam = |i: usize| {
        ev(
            &format!("q{i}"),
            "location_update",
            &format!("86139002{i:05}"),
            "2026-11-23T08:15:00+08:00",
            json!({"country": "JP", "roaming": true}),
        )
    };
    // Two workers share the rule set: the five failures in a row may come from either.
    c.ingest(&(0..8).map(roam).collect::<Vec<_>>()).await;

    let (info, counts, stats) = rule_views(&c).await;
    assert_eq!(info["quarantined"], true, "{info}");
    let q = &info["quarantine"];
    assert!(
        q["reason"].as_str().unwrap().starts_with("condition()"),
        "{q}"
    );
    assert_eq!(q["failures"], 5);
    assert!(
        chrono::DateTime::parse_from_rfc3339(q["since"].as_str().unwrap()).is_ok(),
        "{q}"
    );
    assert!(q["event_id"].as_str().unwrap().starts_with('q'), "{q}");
    assert_eq!(counts["quarantined"], true);
    assert_eq!(counts["errors"], 5, "not run once quarantined: {counts}");
    assert_eq!(stats["quarantined_rules"], 1);
    assert_eq!(stats["events"]["rule_quarantines"], 1);
    assert_eq!(stats["events"]["rule_errors"], 5);
    // The other rule offered on every event.
    let portal = stats["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == "portal-roam")
        .unwrap();
    assert_eq!(portal["matched"], 8, "{portal}");

    // Fixed and reloaded: back in service, and it runs without failing.
    std::fs::write(
        rules.path().join("grow.rhai"),
        GROW_ARRAY_RULE.replace(
            "let seen = [];\n    loop { seen.push(event.country); let copy = seen; }",
            "let seen = [event.country];\n    seen.len() > 1",
        ),
    )
    .unwrap();
    let r = c.post("/api/v1/rules/reload").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (info, counts, stats) = rule_views(&c).await;
    assert_eq!(info["quarantined"], false, "{info}");
    assert!(info["quarantine"].is_null(), "{info}");
    assert_eq!(stats["quarantined_rules"], 0);
    assert_eq!(
        stats["events"]["rule_quarantines"], 1,
        "the count keeps past quarantines"
    );
    // Its counts go on from before the reload (this instance's since it started).
    assert_eq!(
        (counts["evaluated"].clone(), counts["errors"].clone()),
        (json!(5), json!(5))
    );
    c.ingest(&(8..16).map(roam).collect::<Vec<_>>()).await;
    let (info, counts, stats) = rule_views(&c).await;
    assert_eq!(info["quarantined"], false);
    assert_eq!(
        (counts["evaluated"].clone(), counts["errors"].clone()),
        (json!(13), json!(5)),
        "eight more runs, none failing"
    );
    assert_eq!(stats["events"]["rule_errors"], 5, "no new failures");
    app.shutdown().await.unwrap();
}

/// A Kannel-style gateway (a real HTTP server) that accepts each message and then calls the
/// message's delivery-report URL itself, with `%d` filled in and no credentials of any kind.
async fn kannel_like_gateway(
    report: u32,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::extract::Query;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    let called: Arc<Mutex<Vec<String>>> = Arc::default();
    let c2 = called.clone();
    let app = axum::Router::new().route(
        "/cgi-bin/sendsms",
        axum::routing::get(move |Query(q): Query<HashMap<String, String>>| {
            let called = c2.clone();
            async move {
                let url = q
                    .get("dlr-url")
                    .cloned()
                    .unwrap_or_default()
                    .replace("%d", &report.to_string());
                tokio::spawn(async move {
                    // As Kannel does: after the SMSC's receipt, a plain GET of the URL.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    let status = reqwest::get(&url)
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    called.lock().unwrap().push(format!("{status} {url}"));
                });
                (axum::http::StatusCode::ACCEPTED, "0: Accepted for delivery")
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/cgi-bin/sendsms"), called)
}

#[tokio::test]
async fn a_kannel_gateway_reports_delivery_by_calling_the_signed_url_back() {
    let (url, called) = kannel_like_gateway(2).await;
    let db = fresh_db(Backend::Sqlite).await;
    let rules = copy_rules(&["dynamic/roaming-welcome.rhai"]);
    let mut cfg = config(&db.url, rules.path());
    let port = crate::engine_support::free_port();
    cfg.http.addr = format!("127.0.0.1:{port}");
    cfg.channels.sms.mode = "http".into();
    cfg.channels.sms.gateway_url = url;
    cfg.channels.sms.dlr_url =
        format!("http://127.0.0.1:{port}/api/v1/channels/sms/dlr?id={{id}}&status=%d");
    let app = App::start(cfg).await.unwrap();
    let c = Client::new(&app);
    c.ingest(&[ev(
        "k1",
        "location_update",
        "8613900000021",
        "2026-11-23T08:00:00+08:00",
        json!({"country": "JP", "roaming": true}),
    )])
    .await;
    let mut status = serde_json::Value::Null;
    for _ in 0..100 {
        status = c.recs("8613900000021").await[0]["status"].clone();
        if status == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let calls = called.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0].starts_with("200 "),
        "the callback was taken: {calls:?}"
    );
    assert_eq!(status, "failed", "Kannel's 2 is undelivered");
    assert_eq!(c.recs("8613900000021").await[0]["reason"], "undelivered");
    app.shutdown().await.unwrap();
}

/// A roaming `location_update` of `m` in `country`, now.
fn roam_now(m: &str, id: &str, country: &str) -> serde_json::Value {
    ev(
        id,
        "location_update",
        m,
        &chrono::Utc::now().to_rfc3339(),
        json!({"country": country, "roaming": true}),
    )
}

/// Declines offer `id` over the API.
async fn decline(c: &Client, id: &str, reason: Option<&str>) {
    let r = c
        .post(&format!("/api/v1/recommendations/{id}/response"))
        .json(&json!({"outcome": "declined", "reason": reason}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// The loop closed through the real pipeline: an answer recorded over the API comes back to
/// the engine as an `offer_response` event, and the contact policy holds the declined offer
/// back while other offers still go out.
#[tokio::test]
async fn a_declined_offer_is_not_made_again_while_the_policy_holds_it() {
    let db = fresh_db(Backend::Sqlite).await;
    let rules = rules_dir(&[
        ("portal.rhai", PORTAL_RULE),
        (
            "policy.toml",
            "[[suppress]]\nafter = \"declined\"\nfor = \"14d\"\n",
        ),
    ]);
    let app = App::start(config(&db.url, rules.path())).await.unwrap();
    let c = Client::new(&app);
    let m = "8613900000021";
    let roam = |id: &str, country: &str| roam_now(m, id, country);
    let first = c.ingest(&[roam("t1", "TH")]).await;
    let offer = &first["outcome"]["decisions"][0];
    assert_eq!(offer["offer_code"], "POP-TH", "{first}");
    assert_eq!(offer["reason"], serde_json::Value::Null, "{first}");
    decline(&c, offer["id"].as_str().unwrap(), Some("not travelling")).await;
    // The API answers once the `offer_response` event is committed, so the next event of
    // the subscriber is decided with the answer in its state.
    let again = c.ingest(&[roam("t2", "TH")]).await;
    assert_eq!(
        again["outcome"]["decisions"][0]["status"], "suppressed",
        "{again}"
    );
    assert_eq!(
        again["outcome"]["decisions"][0]["reason"], "after_declined",
        "{again}"
    );
    let other = c.ingest(&[roam("t3", "FR")]).await;
    assert_eq!(
        other["outcome"]["decisions"][0]["offer_code"], "POP-FR",
        "{other}"
    );
    assert_eq!(
        other["outcome"]["decisions"][0]["reason"],
        serde_json::Value::Null,
        "{other}"
    );
    app.shutdown().await.unwrap();
}

/// The contact policy is re-read by a rule reload, with no restart: a decline that did not
/// hold the offer back before holds it back after `policy.toml` says so; a broken policy is
/// refused with its line and nothing changes.
#[tokio::test]
async fn a_policy_edit_takes_effect_on_reload_without_a_restart() {
    let db = fresh_db(Backend::Sqlite).await;
    let rules = rules_dir(&[("portal.rhai", PORTAL_RULE)]);
    let app = App::start(config(&db.url, rules.path())).await.unwrap();
    let c = Client::new(&app);
    let m = "8613900000022";
    let roam = |id: &str, country: &str| roam_now(m, id, country);

    let first = c.ingest(&[roam("p1", "TH")]).await;
    decline(
        &c,
        first["outcome"]["decisions"][0]["id"].as_str().unwrap(),
        None,
    )
    .await;
    // No policy yet: the declined offer is made again on the next trip.
    let before = c.ingest(&[roam("p2", "TH")]).await;
    let d = &before["outcome"]["decisions"][0];
    assert_eq!(d["reason"], serde_json::Value::Null, "{before}");
    decline(&c, d["id"].as_str().unwrap(), None).await;

    std::fs::write(
        rules.path().join("policy.toml"),
        "[[suppress]]\nafter = \"declined\"\nfor = \"14d\"\nwithin = \"nope\"\n",
    )
    .unwrap();
    let r = c.post("/api/v1/rules/reload").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(body.contains("policy.toml:4"), "{body}");
    let still = c.ingest(&[roam("p3", "TH")]).await;
    let d = &still["outcome"]["decisions"][0];
    assert_eq!(
        d["reason"],
        serde_json::Value::Null,
        "old policy kept: {still}"
    );
    decline(&c, d["id"].as_str().unwrap(), None).await;

    std::fs::write(
        rules.path().join("policy.toml"),
        "[[suppress]]\nafter = \"declined\"\nfor = \"14d\"\n",
    )
    .unwrap();
    let r = c.post("/api/v1/rules/reload").send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let after = c.ingest(&[roam("p4", "TH")]).await;
    assert_eq!(
        after["outcome"]["decisions"][0]["reason"], "after_declined",
        "{after}"
    );
    app.shutdown().await.unwrap();
}

/// Two SMS rules fire within the policy's arbitration window: the first waits for the window
/// to close (`deferred`, `arbitration_window`), the better second takes its place, and only
/// the second is ever sent; the first is recorded `lost_arbitration` naming it. Decided in
/// separate requests (the stored offer is revised) and in one (revised before it is stored).
#[tokio::test]
async fn within_the_arbitration_window_the_better_offer_replaces_the_waiting_one() {
    let db = fresh_db(Backend::Sqlite).await;
    let rule = |id: &str, ty: &str, priority: u32| {
        format!(
            r#"#{{ id: "{id}", name: "{id}", kind: "dynamic", events: ["{ty}"], channels: ["sms"],
                priority: {priority}, offer: #{{ code: "{id}-O", validity: "1d" }}, message: "{id} for you" }};"#
        )
    };
    let rules = rules_dir(&[
        ("data.rhai", rule("data-pack", "data_session", 40).as_str()),
        (
            "roam.rhai",
            rule("roam-pack", "location_update", 90).as_str(),
        ),
        (
            "policy.toml",
            "[arbitration]\nwindow = \"1m\"\nwindow_channels = [\"sms\"]\n",
        ),
    ]);
    let mut cfg = config(&db.url, rules.path());
    cfg.engine.wall_clock_expiry = true;
    // No sweep while the offers are decided: their windows have closed by the wall clock
    // (event times minutes back), so a sweep between two requests could send the waiting
    // offer before the better one arrives. The restart's sweep sends what is due.
    cfg.channels.outbox_sweep_secs = 3600;
    let app = App::start(cfg.clone()).await.unwrap();
    // The start's own sweep is a task of its own: on a loaded machine it could run after the
    // first request and send the waiting offer. Give it its turn first.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let c = Client::new(&app);
    let ago = |s: i64| (chrono::Utc::now() - chrono::Duration::seconds(s)).to_rfc3339();
    let data = |id: &str, m: &str, t: &str| ev(id, "data_session", m, t, json!({"mb": 10}));
    let roam = |id: &str, m: &str, t: &str| {
        ev(
            id,
            "location_update",
            m,
            t,
            json!({"country": "JP", "roaming": true}),
        )
    };
    let (a, b) = ("8613900000031", "8613900000032");
    let first = c.ingest(&[data("w1", a, &ago(180))]).await;
    let waiting = first["outcome"]["decisions"][0].clone();
    assert_eq!(waiting["status"], "deferred", "{first}");
    assert_eq!(waiting["reason"], "arbitration_window", "{first}");
    let second = c.ingest(&[roam("w2", a, &ago(160))]).await;
    let winner = second["outcome"]["decisions"][0].clone();
    assert_eq!(winner["status"], "deferred", "{second}");
    // Both of b's events in one request.
    let both = c
        .ingest(&[data("w3", b, &ago(180)), roam("w4", b, &ago(170))])
        .await;
    let (b_lost, b_won) = (
        both["outcome"]["decisions"][0].clone(),
        both["outcome"]["decisions"][1].clone(),
    );
    assert_eq!(b_lost["reason"], "lost_arbitration", "{both}");
    assert_eq!(b_lost["explanation"]["winner"], b_won["id"], "{both}");
    app.shutdown().await.unwrap();
    let app = App::start(cfg).await.unwrap();
    let c = Client::new(&app);
    let status = |m: &'static str, id: serde_json::Value| {
        let c = &c;
        async move {
            let recs = c.recs(m).await;
            recs.into_iter()
                .find(|r| r["id"] == id)
                .unwrap_or_else(|| panic!("{id} stored"))
        }
    };
    let mut sent = Vec::new();
    for _ in 0..100 {
        let outbox: Vec<serde_json::Value> = c.get_items("/api/v1/channels/sms/outbox").await;
        sent = outbox;
        if sent.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let texts: Vec<&str> = sent.iter().filter_map(|s| s["text"].as_str()).collect();
    assert_eq!(texts, vec!["roam-pack for you"; 2], "{sent:?}");
    let lost = status(a, waiting["id"].clone()).await;
    assert_eq!(
        (lost["status"].as_str(), lost["reason"].as_str()),
        (Some("suppressed"), Some("lost_arbitration")),
        "{lost}"
    );
    assert_eq!(lost["explanation"]["winner"], winner["id"], "{lost}");
    assert_eq!(lost["not_before"], serde_json::Value::Null, "{lost}");
    let won = status(a, winner["id"].clone()).await;
    assert_eq!(won["status"], "sent", "{won}");
    app.shutdown().await.unwrap();
}
