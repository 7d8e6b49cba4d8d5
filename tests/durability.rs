//! What ingest acknowledges is durable, and bad input gets a clear answer and loses nothing:
//! events from the future, resends, floods of junk, offers that expired before they
//! arrived, offers a crash left queued, and a bounded worker cache.

use crate::engine_support;

use std::time::Duration;

use engine_support::*;
use serde_json::{json, Value};

fn at(secs_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(secs_ago))
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .to_rfc3339()
}

fn roaming(id: &str, msisdn: &str, ts: &str) -> Value {
    ev(
        id,
        "location_update",
        msisdn,
        ts,
        json!({"country": "JP", "mcc": "440", "roaming": true}),
    )
}

async fn app_with(
    backend: Backend,
    tune: impl FnOnce(&mut kairos::config::Config),
) -> (kairos::app::App, TestDb, tempfile::TempDir) {
    let db = fresh_db(backend).await;
    let rules = copy_rules(&["dynamic/roaming-welcome.rhai"]);
    let mut cfg = config(&db.url, rules.path());
    // These tests send events of today: live behaviour, offers expired on arrival included.
    cfg.engine.wall_clock_expiry = true;
    tune(&mut cfg);
    let app = kairos::app::App::start(cfg).await.unwrap();
    (app, db, rules)
}

async fn stats(c: &Client) -> Value {
    c.get_json("/api/v1/engine/stats").await
}

#[tokio::test]
async fn an_accepted_answer_comes_after_the_decisions_are_stored() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (app, _db, _r) = app_with(backend, |_| {}).await;
        let c = Client::new(&app);
        let m = "8613900000501";
        // No `wait`: the 202 itself means processed and committed.
        let r = c
            .post("/api/v1/events")
            .json(&roaming("d1", m, &at(60)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["accepted"], 1);
        assert_eq!(body["outcome"]["processed"], 1);
        assert!(body["outcome"].get("decisions").is_none(), "{body}");
        let recs = c.recs(m).await;
        assert_eq!(recs.len(), 1, "stored before the answer: {recs:?}");
        // With `wait`, the answer carries the decisions too.
        let r: Value = c.ingest(&[roaming("d2", m, &at(30))]).await;
        assert_eq!(r["outcome"]["decisions"][0]["reason"], "cooldown", "{r}");
        app.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn an_event_from_the_future_is_refused_and_does_not_poison_its_subscriber() {
    let (app, _db, _r) = app_with(Backend::Sqlite, |_| {}).await;
    let c = Client::new(&app);
    let m = "8613900000502";
    let r = c
        .post("/api/v1/events")
        .json(&roaming("f1", m, "9999-12-31T23:59:59Z"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body.to_string().contains("ahead of this server's clock"),
        "{body}"
    );
    assert!(body.to_string().contains("ts"), "{body}");
    // The subscriber's normal events still count: nothing was made "late".
    let r = c.ingest(&[roaming("f2", m, &at(10))]).await;
    assert_eq!(r["outcome"]["processed"], 1, "{r}");
    assert_eq!(r["outcome"]["late"], 0, "{r}");
    assert_eq!(c.recs(m).await.len(), 1);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_resend_is_recognised_for_the_whole_lateness_window_not_the_last_eight() {
    let (app, _db, _r) = app_with(Backend::Sqlite, |_| {}).await;
    let c = Client::new(&app);
    let m = "8613900000503";
    let mut evs = vec![roaming("w0", m, &at(1800))];
    for i in 1..20 {
        evs.push(ev(
            &format!("w{i}"),
            "sms",
            m,
            &at(1800 - i * 60),
            json!({"peer": "8613900000999"}),
        ));
    }
    let r = c.ingest(&evs).await;
    assert_eq!(r["outcome"]["processed"], 20, "{r}");
    // The oldest one, twenty events back, half an hour ago: still known.
    let r = c.ingest(&[evs[0].clone(), evs[9].clone()]).await;
    assert_eq!(r["outcome"]["duplicates"], 2, "{r}");
    assert_eq!(r["outcome"]["processed"], 0, "{r}");
    let recs = c.recs(m).await;
    assert_eq!(
        recs.len(),
        1,
        "the resent roaming event decided nothing new"
    );
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_flood_of_junk_lines_stores_a_sample_and_answers_small() {
    let (app, _db, _r) = app_with(Backend::Sqlite, |_| {}).await;
    let c = Client::new(&app);
    let lines = 300_000;
    let mut body = "junk\n".repeat(lines);
    body.push_str(&roaming("j1", "8613900000504", &at(5)).to_string());
    let r = c
        .post("/api/v1/events")
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let text = r.text().await.unwrap();
    assert!(
        text.len() < 64 * 1024,
        "answer stays small: {} bytes",
        text.len()
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["rejected_total"], lines);
    assert_eq!(v["rejected"].as_array().unwrap().len(), 100);
    let dl = c.get_json("/api/v1/dead-letters?limit=1").await;
    assert_eq!(dl["total"], 100, "a sample is stored, the rest counted");
    assert_eq!(stats(&c).await["events"]["rejected"], lines);
    assert_eq!(
        c.recs("8613900000504").await.len(),
        1,
        "the good line went on"
    );
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_offer_expired_before_its_event_arrived_is_decided_expired_and_never_sent() {
    let (app, _db, _r) = app_with(Backend::Sqlite, |_| {}).await;
    let c = Client::new(&app);
    let m = "8613900000505";
    let r = c
        .ingest(&[roaming("x1", m, "1970-01-02T08:00:00+08:00")])
        .await;
    let d = &r["outcome"]["decisions"][0];
    assert_eq!(d["status"], "expired", "{r}");
    assert_eq!(d["reason"], "expired_on_arrival");
    // Later sweeps of the outbox leave it alone.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let recs = c.recs(m).await;
    assert_eq!(recs[0]["status"], "expired");
    let outbox = c
        .get_json(&format!("/api/v1/channels/sms/outbox?to={m}"))
        .await;
    assert_eq!(
        outbox["items"].as_array().map(Vec::len),
        Some(0),
        "{outbox}"
    );
    assert_eq!(outbox["total"], 0, "{outbox}");
    app.shutdown().await.unwrap();
}

fn rec(id: &str, msisdn: &str, expires_in_secs: i64) -> kairos::ports::Recommendation {
    let now = chrono::Utc::now().fixed_offset();
    kairos::ports::Recommendation {
        id: id.into(),
        msisdn: kairos::event::Msisdn::parse(msisdn).unwrap(),
        rule_id: "roaming-welcome".into(),
        offer_code: "ROAM-JP-7D".into(),
        channel: "sms".into(),
        message: "Welcome to Japan".into(),
        score: 1.0,
        trigger_event_id: Some(format!("ev-{id}")),
        campaign_id: None,
        request_id: None,
        decided_at: now - chrono::Duration::hours(1),
        expires_at: now + chrono::Duration::seconds(expires_in_secs),
        not_before: None,
        status: kairos::ports::Status::Queued,
        reason: None,
        explanation: None,
        service: false,
    }
}

#[tokio::test]
async fn offers_a_crash_left_queued_are_delivered_at_start_and_expired_ones_expire() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let db = fresh_db(backend).await;
        {
            // What a crashed instance left: stored, queued, never handed to a channel.
            let store = kairos::store::Db::connect(&db.url, 2).await.unwrap();
            let recs = kairos::pipeline::RecStore::new(store.clone());
            let fresh = recs
                .insert(&[
                    rec("r-left-live", "8613900000506", 3600),
                    rec("r-left-dead", "8613900000507", -60),
                ])
                .await
                .unwrap();
            assert_eq!(fresh.len(), 2);
            store.pool.close().await;
        }
        let rules = copy_rules(&["dynamic/roaming-welcome.rhai"]);
        let mut cfg = config(&db.url, rules.path());
        cfg.channels.outbox_sweep_secs = 1;
        cfg.engine.wall_clock_expiry = true;
        let app = kairos::app::App::start(cfg).await.unwrap();
        let c = Client::new(&app);
        let mut statuses = (Value::Null, Value::Null);
        for _ in 0..100 {
            let live = c.recs("8613900000506").await;
            let dead = c.recs("8613900000507").await;
            statuses = (live[0]["status"].clone(), dead[0]["status"].clone());
            if statuses.0 != "queued" && statuses.1 != "queued" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            statuses.0 == "sent" || statuses.0 == "delivered",
            "{backend:?}: {statuses:?}"
        );
        assert_eq!(statuses.1, "expired", "{backend:?}");
        let dead = c.recs("8613900000507").await;
        assert_eq!(dead[0]["reason"], "expired_undelivered");
        app.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn the_worker_cache_is_bounded_and_evicted_state_comes_back_from_the_store() {
    let (app, _db, _r) = app_with(Backend::Sqlite, |c| {
        c.engine.max_subscribers_in_memory = 4;
    })
    .await;
    let c = Client::new(&app);
    let subs: Vec<String> = (0..40).map(|i| format!("86139000006{i:02}")).collect();
    for (i, m) in subs.iter().enumerate() {
        let r = c.ingest(&[roaming(&format!("e{i}"), m, &at(600))]).await;
        assert_eq!(r["outcome"]["processed"], 1);
    }
    let s = stats(&c).await;
    assert!(
        s["events"]["evicted"].as_u64().unwrap() >= 30,
        "at most 4 of 40 stay in memory: {s}"
    );
    // The first subscriber was evicted long ago: its dedup marks and cooldown come back.
    let r = c
        .ingest(&[
            roaming("e0", &subs[0], &at(600)),
            roaming("e0-again", &subs[0], &at(300)),
        ])
        .await;
    assert_eq!(r["outcome"]["duplicates"], 1, "{r}");
    assert_eq!(r["outcome"]["decisions"][0]["reason"], "cooldown", "{r}");
    app.shutdown().await.unwrap();
}
