//! Captures through the API: a sample of live events by type and number, up to a limit,
//! downloaded as NDJSON that `kairos replay` reads; only all-customers roles see them.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::world::world;
use crate::common::{on_both, on_both_with, TestApp};

const A: &str = "8613900004001";
const B: &str = "8613900004002";
const C: &str = "8613900004003";

pub fn event(id: &str, ty: &str, msisdn: &str) -> Value {
    let attrs = match ty {
        "location_update" => json!({"country": "JP", "roaming": true}),
        "sms" => json!({"direction": "out", "peer": "8613900009999"}),
        _ => json!({}),
    };
    json!({"id": id, "type": ty, "msisdn": msisdn, "ts": chrono::Utc::now().to_rfc3339(), "attrs": attrs})
}

pub async fn ingest(t: &TestApp, events: Vec<Value>) {
    let r = t
        .post(t.admin(), "/api/v1/events", Value::Array(events))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["rejected_total"], 0, "{}", r.body);
}

/// The capture once `done` holds for it (the writer records in the background).
pub async fn capture_when(t: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = t
            .get(t.admin(), &format!("/api/v1/captures/{id}"))
            .await
            .expect(200);
        if done(&c) {
            return c;
        }
        assert!(Instant::now() < deadline, "capture never got there: {c}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The capture's events as downloaded: the NDJSON text.
pub async fn download(t: &TestApp, token: &str, id: &str) -> (u16, String, String) {
    let resp = t
        .http
        .get(format!("{}/api/v1/captures/{id}/events", t.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, resp.text().await.unwrap())
}

#[tokio::test]
async fn a_capture_keeps_its_types_and_numbers_stops_at_its_limit_and_replays() {
    on_both(async |t| {
        let mk = t.user("mia", "marketer", json!({})).await;
        let c = t
            .post(
                &mk.token,
                "/api/v1/captures",
                json!({"name": "roamers", "types": ["location_update"],
                "msisdns": [A, B], "limit": 3}),
            )
            .await
            .expect(201);
        assert_eq!(
            (c["status"].as_str(), c["events"].as_i64()),
            (Some("running"), Some(0)),
            "{c}"
        );
        let id = c["id"].as_str().unwrap().to_string();
        // Mistakes are named by field.
        t.post(
            &mk.token,
            "/api/v1/captures",
            json!({"name": "x", "types": ["Location Update"], "limit": 3}),
        )
        .await
        .expect_field("types");
        t.post(
            &mk.token,
            "/api/v1/captures",
            json!({"name": "x", "msisdns": ["12ab"], "limit": 3}),
        )
        .await
        .expect_field("msisdns");
        t.post(
            &mk.token,
            "/api/v1/captures",
            json!({"name": "x", "limit": 0}),
        )
        .await
        .expect_field("limit");

        // Two of the first five are another type or number; five match, three are kept.
        ingest(
            t,
            vec![
                event("e1", "location_update", A),
                event("e2", "sms", A),
                event("e3", "location_update", C),
                event("e4", "location_update", B),
                event("e5", "location_update", A),
                event("e6", "location_update", B),
                event("e7", "location_update", A),
            ],
        )
        .await;
        let done = capture_when(t, &id, |c| c["status"] == "ended").await;
        assert_eq!(done["events"], 3, "{done}");
        assert_eq!(done["ended_because"], "limit", "{done}");
        assert_eq!(done["dropped"], 0, "{done}");
        // After the limit nothing more is kept.
        ingest(t, vec![event("e8", "location_update", A)]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = t
            .get(&mk.token, &format!("/api/v1/captures/{id}"))
            .await
            .expect(200);
        assert_eq!(after["events"], 3, "{after}");

        let (status, kind, text) = download(t, &mk.token, &id).await;
        assert_eq!(status, 200, "{text}");
        assert_eq!(kind, "application/x-ndjson");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["e1", "e4", "e5"], "{text}");
        for (l, raw) in lines.iter().zip(text.lines()) {
            assert_eq!(l["type"], "location_update");
            assert_eq!(l["attrs"]["country"], "JP");
            // Each line is an event of the contract, as the engine decodes it.
            kairos::event::decode_str(raw).unwrap();
        }

        // `kairos replay` reads the download as it is.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("captured.ndjson");
        std::fs::write(&file, &text).unwrap();
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_kairos"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("KAIROS_CONFIG")
            .args(["replay", "--events"])
            .arg(&file)
            .arg("--out")
            .arg(dir.path().join("out.ndjson"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{stderr}");
        assert!(stderr.contains("replayed 3 events"), "{stderr}");
        assert!(stderr.contains(" 0 rejected"), "{stderr}");

        // Stopped by hand, a capture keeps what it has and records nothing more.
        let all = t
            .post(
                &mk.token,
                "/api/v1/captures",
                json!({"name": "everything", "limit": 1000}),
            )
            .await
            .expect(201);
        let all_id = all["id"].as_str().unwrap().to_string();
        ingest(t, vec![event("f1", "sms", C)]).await;
        capture_when(t, &all_id, |c| c["events"] == 1).await;
        let stopped = t
            .post(
                &mk.token,
                &format!("/api/v1/captures/{all_id}/stop"),
                json!({}),
            )
            .await
            .expect(200);
        assert_eq!(
            (
                stopped["status"].as_str(),
                stopped["ended_because"].as_str()
            ),
            (Some("ended"), Some("stopped")),
            "{stopped}"
        );
        ingest(t, vec![event("f2", "sms", C)]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = t
            .get(&mk.token, &format!("/api/v1/captures/{all_id}"))
            .await
            .expect(200);
        assert_eq!(after["events"], 1, "{after}");
        let list = t.get(&mk.token, "/api/v1/captures").await.expect(200);
        assert_eq!(list["total"], 2, "{list}");
        t.delete(&mk.token, &format!("/api/v1/captures/{all_id}"))
            .await
            .expect(204);
        t.get(&mk.token, &format!("/api/v1/captures/{all_id}"))
            .await
            .expect(404);
    })
    .await;
}

#[tokio::test]
async fn a_team_scoped_role_may_not_read_or_start_captures() {
    on_both(async |t| {
        let w = world(t).await;
        let c = t
            .post(
                &w.marketer.token,
                "/api/v1/captures",
                json!({"name": "sample", "msisdns": [A], "limit": 10}),
            )
            .await
            .expect(201);
        let id = c["id"].as_str().unwrap().to_string();
        ingest(t, vec![event("g1", "sms", A)]).await;
        capture_when(t, &id, |c| c["events"] == 1).await;
        for scoped in [&w.lead, &w.head, &w.am1, &w.agent] {
            let (status, _, body) = download(t, &scoped.token, &id).await;
            assert_eq!(status, 403, "{body}");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["error"], "forbidden", "{body}");
            assert_eq!(body["permission"], "capture_events", "{body}");
            assert!(!body.to_string().contains(A), "{body}");
            let r = t
                .get(&scoped.token, &format!("/api/v1/captures/{id}"))
                .await;
            assert_eq!(r.status, 403, "{}", r.body);
            let r = t
                .post(
                    &scoped.token,
                    "/api/v1/captures",
                    json!({"name": "mine", "limit": 5}),
                )
                .await;
            assert_eq!(r.status, 403, "{}", r.body);
        }
        let (status, _, text) = download(t, &w.marketer.token, &id).await;
        assert_eq!(status, 200);
        assert!(text.contains(A), "{text}");
    })
    .await;
}

#[tokio::test]
async fn a_recorder_that_falls_behind_drops_and_counts_instead_of_holding_up_ingest() {
    on_both_with(
        |c| {
            c.capture.queue = 1;
            c.capture.poll_ms = 50;
        },
        async |t| {
            let c = t
                .post(
                    t.admin(),
                    "/api/v1/captures",
                    json!({"name": "everything", "limit": 100000}),
                )
                .await
                .expect(201);
            let id = c["id"].as_str().unwrap().to_string();
            let events: Vec<Value> = (0..2000)
                .map(|i| event(&format!("d{i}"), "sms", A))
                .collect();
            // One request: the tap sees all of them before the writer gets a turn, and the
            // queue holds one. Ingest answers all the same.
            ingest(t, events).await;
            let done = capture_when(t, &id, |c| {
                c["events"].as_i64().unwrap() + c["dropped"].as_i64().unwrap() == 2000
            })
            .await;
            assert!(done["dropped"].as_i64().unwrap() > 0, "{done}");
            assert!(done["events"].as_i64().unwrap() > 0, "{done}");
            assert_eq!(done["status"], "running", "{done}");

            // A capture with an end time ends then, whatever its limit.
            let until = (chrono::Utc::now() + chrono::Duration::milliseconds(400)).to_rfc3339();
            let timed = t
                .post(
                    t.admin(),
                    "/api/v1/captures",
                    json!({"name": "briefly", "limit": 100000, "until": until}),
                )
                .await
                .expect(201);
            let timed_id = timed["id"].as_str().unwrap().to_string();
            let ended = capture_when(t, &timed_id, |c| c["status"] == "ended").await;
            assert_eq!(ended["ended_because"], "until", "{ended}");
            let past = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
            t.post(
                t.admin(),
                "/api/v1/captures",
                json!({"name": "late", "limit": 10, "until": past}),
            )
            .await
            .expect_field("until");
        },
    )
    .await;
}
