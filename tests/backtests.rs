//! Backtests through the API: a draft that adds a rule, run over a capture, counts exactly
//! what the replay engine counts on the same events, and the comparison with the published
//! set shows the new rule alone; progress shows while it runs; uploads are bounded.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::captures::{capture_when, download, ingest};
use crate::common::{on_both, on_both_with, TestApp};
use crate::engine_support::three_subscribers;

/// A rule the published pack lacks: a portal offer on every missed call.
const NEW_RULE: &str = r#"#{
    id: "missed-call-thanks", name: "Missed call thanks", kind: "dynamic",
    events: ["missed_call"], channels: ["portal"],
    offer: #{ code: "THANKS-1", validity: "1d" },
    message: "Sorry we missed you",
};
"#;

pub async fn job_when(t: &TestApp, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = t
            .get(token, &format!("/api/v1/backtests/{id}"))
            .await
            .expect(200);
        if j["status"] != "running" {
            return j;
        }
        assert!(Instant::now() < deadline, "backtest never finished: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What `replay_on` counts for the rule set in `dir` over `events`: rule -> (matched,
/// proposed, suppressed by reason).
fn replayed(t: &TestApp, dir: &Path, events: &str) -> HashMap<String, (u64, u64, Value)> {
    let mut config = (*t.app.state.config).clone();
    config.engine.rules_dir = dir.to_path_buf();
    let rules = kairos::rules::load_all(
        dir,
        &config.channels.templates_dir(),
        kairos::rules::templates::Offers::MayBeElsewhere,
        &config.engine.limits,
        &config.channels.enabled,
    )
    .unwrap();
    let s = kairos::replay::replay_on(
        &rules,
        &config,
        events.as_bytes(),
        std::io::sink(),
        HashMap::new(),
        |_| {},
        2,
    )
    .unwrap();
    s.per_rule
        .into_iter()
        .map(|(id, r)| (id, (r.matched, r.proposed, json!(r.suppressed))))
        .collect()
}

/// Writes a version's files into a folder, as `kairos replay` reads a rules folder.
async fn version_folder(t: &TestApp, number: i64, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let v = t
        .get(t.admin(), &format!("/api/v1/rule-versions/{number}"))
        .await
        .expect(200);
    let dir = tempfile::tempdir().unwrap();
    let files = v["files"].as_array().unwrap().iter().map(|f| {
        (
            f["path"].as_str().unwrap().to_string(),
            f["content"].as_str().unwrap().to_string(),
        )
    });
    let extra = extra.iter().map(|(p, c)| (p.to_string(), c.to_string()));
    for (path, content) in files.chain(extra) {
        let to = dir.path().join(path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, content).unwrap();
    }
    dir
}

/// One stored answer to an offer of `code`.
async fn answered(t: &TestApp, id: &str, code: &str, outcome: kairos::ports::Status) {
    let mut rec = crate::common::sms_rec(id, "8613900004100");
    rec.offer_code = code.into();
    t.store_rec(&rec).await;
    use kairos::ports::OfferBook;
    t.app
        .state
        .pipeline
        .respond(id, outcome, "test", None)
        .await
        .unwrap()
        .expect("the offer is stored");
}

#[tokio::test]
async fn a_backtest_over_a_capture_counts_what_replay_counts_and_shows_the_added_rule() {
    on_both(async |t| {
        let ana = t.user("ana", "marketer", json!({})).await;
        // THANKS-1 was taken once in two answers: expected acceptances count it at 0.5.
        answered(t, "ans-1", "THANKS-1", kairos::ports::Status::Accepted).await;
        answered(t, "ans-2", "THANKS-1", kairos::ports::Status::Declined).await;

        let c = t
            .post(
                &ana.token,
                "/api/v1/captures",
                json!({"name": "backtest sample", "limit": 1000}),
            )
            .await
            .expect(201);
        let capture = c["id"].as_str().unwrap().to_string();
        let events = three_subscribers();
        let n = events.len();
        ingest(t, events).await;
        capture_when(t, &capture, |c| c["events"] == n as i64).await;
        t.post(
            &ana.token,
            &format!("/api/v1/captures/{capture}/stop"),
            json!({}),
        )
        .await
        .expect(200);

        let draft = t
            .post(
                &ana.token,
                "/api/v1/rule-drafts",
                json!({"path": "dynamic/missed-call-thanks.rhai", "content": NEW_RULE}),
            )
            .await
            .expect(201);
        let draft_id = draft["id"].as_str().unwrap().to_string();

        let started = t
            .post(
                &ana.token,
                "/api/v1/backtests",
                json!({"drafts": [draft_id], "capture_id": capture}),
            )
            .await
            .expect(202);
        // Progress is there from the start: two runs (the draft set, the published set) of
        // every event.
        assert_eq!(started["status"], "running", "{started}");
        assert_eq!(
            started["progress"]["events_total"],
            2 * n as i64,
            "{started}"
        );
        assert!(started["progress"]["events_done"].as_i64().unwrap() <= 2 * n as i64);
        let id = started["id"].as_str().unwrap().to_string();
        let job = job_when(t, &ana.token, &id).await;
        assert_eq!(job["status"], "done", "{job}");
        assert_eq!(
            job["progress"]["events_done"], job["progress"]["events_total"],
            "{job}"
        );
        let r = &job["result"];
        assert_eq!(r["events"], n as i64, "{r}");
        assert_eq!(r["rejected"], 0, "{r}");

        // Exactly what the replay engine counts, for each set, on the downloaded events.
        let (_, _, text) = download(t, &ana.token, &capture).await;
        let published_dir = version_folder(t, 1, &[]).await;
        let tested_dir =
            version_folder(t, 1, &[("dynamic/missed-call-thanks.rhai", NEW_RULE)]).await;
        let published = replayed(t, published_dir.path(), &text);
        let tested = replayed(t, tested_dir.path(), &text);
        assert!(
            tested.get("missed-call-thanks").is_some_and(|r| r.0 > 0),
            "{tested:?}"
        );
        let rules = r["rules"].as_array().unwrap();
        for (rule, (matched, proposed, suppressed)) in &tested {
            let got = rules
                .iter()
                .find(|x| x["rule_id"] == rule.as_str())
                .unwrap_or_else(|| panic!("{rule} missing from {r}"));
            assert_eq!(got["matched"], *matched, "{rule}: {got}");
            assert_eq!(got["offers"], *proposed, "{rule}: {got}");
            assert_eq!(got["suppressed"], *suppressed, "{rule}: {got}");
        }
        let offers: u64 = tested.values().map(|v| v.1).sum();
        assert_eq!(r["offers"], offers, "{r}");
        let per_channel: u64 = r["offers_per_channel"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(per_channel, offers, "{r}");
        assert!(
            r["offers_per_channel"]["portal"].as_u64().unwrap() >= tested["missed-call-thanks"].1,
            "{r}"
        );
        // Only THANKS-1 has answers (a rate of 0.5); the others count nothing.
        assert!(tested["missed-call-thanks"].1 > 0, "{tested:?}");
        let thanks = rules
            .iter()
            .find(|x| x["rule_id"] == "missed-call-thanks")
            .unwrap();
        let expected = 0.5 * tested["missed-call-thanks"].1 as f64;
        assert_eq!(
            thanks["expected_acceptances"].as_f64().unwrap(),
            expected,
            "{thanks}"
        );
        assert_eq!(r["expected_acceptances"]["source"], "answer_history", "{r}");
        assert_eq!(
            r["expected_acceptances"]["total"].as_f64().unwrap(),
            expected,
            "{r}"
        );
        assert_eq!(
            r["expected_acceptances"]["offers_without_history"],
            offers - tested["missed-call-thanks"].1,
            "{r}"
        );

        // The comparison: the new rule is added, every other rule as the published set has it.
        let diff = &r["diff"];
        assert_eq!(diff["published_version"], 1, "{diff}");
        for d in diff["rules"].as_array().unwrap() {
            let rule = d["rule_id"].as_str().unwrap();
            let side = |m: &HashMap<String, (u64, u64, Value)>| {
                m.get(rule).map_or(
                    json!({"matched": 0, "offers": 0}),
                    |v| json!({"matched": v.0, "offers": v.1}),
                )
            };
            assert_eq!(d["tested"], side(&tested), "{d}");
            assert_eq!(d["published"], side(&published), "{d}");
            let delta =
                |k: &str| d["tested"][k].as_i64().unwrap() - d["published"][k].as_i64().unwrap();
            assert_eq!(
                d["delta"],
                json!({"matched": delta("matched"), "offers": delta("offers")}),
                "{d}"
            );
            if rule == "missed-call-thanks" {
                assert_eq!(d["change"], "added", "{d}");
                assert_eq!(d["published"], json!({"matched": 0, "offers": 0}), "{d}");
                assert!(d["delta"]["matched"].as_i64().unwrap() > 0, "{d}");
            } else {
                assert_eq!(d["change"], "kept", "{d}");
            }
        }
        assert!(
            diff["rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["rule_id"] == "missed-call-thanks"),
            "{diff}"
        );
        // The list shows it too; an unknown one is 404.
        let list = t.get(&ana.token, "/api/v1/backtests").await.expect(200);
        assert_eq!(list["total"], 1, "{list}");
        t.get(
            &ana.token,
            "/api/v1/backtests/00000000-0000-0000-0000-000000000000",
        )
        .await
        .expect(404);
    })
    .await;
}

fn lines(events: &[Value]) -> String {
    events.iter().map(|e| e.to_string() + "\n").collect()
}

#[tokio::test]
async fn an_upload_runs_within_its_bound_and_a_larger_one_is_refused_with_413() {
    on_both_with(
        |c| c.backtest.max_upload_bytes = 4096,
        async |t| {
            let small = lines(&three_subscribers());
            assert!(small.len() < 4096);
            let (status, _, body) = t
                .post_raw(
                    t.admin(),
                    "/api/v1/backtests?version=1",
                    &[("content-type", "application/x-ndjson")],
                    small,
                )
                .await;
            assert_eq!(status, 202, "{body}");
            let started: Value = serde_json::from_str(&body).unwrap();
            // Version 1 is the published set: one run.
            assert_eq!(started["progress"]["events_total"], 9, "{started}");
            let job = job_when(t, t.admin(), started["id"].as_str().unwrap()).await;
            assert_eq!(job["status"], "done", "{job}");
            assert_eq!(job["result"]["events"], 9, "{job}");
            assert!(
                job["result"]["diff"]["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|d| d["delta"] == json!({"matched": 0, "offers": 0})),
                "{job}"
            );

            let mut big = String::new();
            while big.len() <= 4096 {
                big.push_str(&lines(&three_subscribers()));
            }
            let (status, headers, body) = t
                .post_raw(
                    t.admin(),
                    "/api/v1/backtests",
                    &[("content-type", "application/x-ndjson")],
                    big,
                )
                .await;
            assert_eq!(status, 413, "{body}");
            assert!(headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"));
            let err: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(err["error"], "payload_too_large", "{err}");
            assert!(
                err["message"]
                    .as_str()
                    .unwrap()
                    .contains("backtest.max_upload_bytes"),
                "{err}"
            );

            // Backtests are for roles that write rule drafts.
            let agent = t.user("al", "agent", json!({})).await;
            let r = t
                .post(
                    &agent.token,
                    "/api/v1/backtests",
                    json!({"capture_id": "x"}),
                )
                .await;
            assert_eq!(r.status, 403, "{}", r.body);
            assert_eq!(r.body["permission"], "edit_rules", "{}", r.body);
            // A capture that does not exist, and a request naming both a version and drafts.
            t.post(
                t.admin(),
                "/api/v1/backtests",
                json!({"capture_id": "00000000-0000-0000-0000-000000000000"}),
            )
            .await
            .expect(404);
            let r = t
                .post(
                    t.admin(),
                    "/api/v1/backtests",
                    json!({"capture_id": "x", "version": 1, "drafts": ["d"]}),
                )
                .await;
            assert_eq!(r.status, 400, "{}", r.body);
        },
    )
    .await;
}

/// `n` roaming events, one per subscriber.
fn roamers(n: usize) -> String {
    let ts = "2026-11-23T08:15:00+08:00";
    (0..n)
        .map(|i| {
            json!({"id": format!("r{i}"), "type": "location_update", "msisdn": format!("86139{i:08}"),
                "ts": ts, "attrs": {"country": "JP", "mcc": "440", "roaming": true}})
            .to_string()
                + "\n"
        })
        .collect()
}

#[tokio::test]
async fn progress_moves_while_a_backtest_runs() {
    on_both(async |t| {
        let events = roamers(20_000);
        let (status, _, body) = t
            .post_raw(
                t.admin(),
                "/api/v1/backtests",
                &[("content-type", "application/x-ndjson")],
                events,
            )
            .await;
        assert_eq!(status, 202, "{body}");
        let started: Value = serde_json::from_str(&body).unwrap();
        let id = started["id"].as_str().unwrap().to_string();
        let total = started["progress"]["events_total"].as_i64().unwrap();
        assert_eq!(total, 20_000, "{started}");
        let mut seen = vec![started["progress"]["events_done"].as_i64().unwrap()];
        let deadline = Instant::now() + Duration::from_secs(120);
        let last = loop {
            let j = t
                .get(t.admin(), &format!("/api/v1/backtests/{id}"))
                .await
                .expect(200);
            seen.push(j["progress"]["events_done"].as_i64().unwrap());
            if j["status"] != "running" {
                break j;
            }
            assert!(Instant::now() < deadline, "{j}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(last["status"], "done", "{last}");
        assert_eq!(last["result"]["events"], 20_000, "{last}");
        assert!(
            seen.windows(2).all(|w| w[0] <= w[1]),
            "progress went back: {seen:?}"
        );
        assert_eq!(*seen.last().unwrap(), total);
        assert!(
            seen.iter().any(|d| 0 < *d && *d < total),
            "no progress seen between start and end: {seen:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_capture_records_on_every_instance_and_a_backtest_answers_on_any() {
    crate::common::on_both_urls(async |backend, url| {
        let tweak = |c: &mut kairos::config::Config| c.capture.poll_ms = 100;
        let a = TestApp::start_config(backend, url.clone(), tweak).await;
        let b = TestApp::start_config(backend, url.clone(), tweak).await;
        let c = a
            .post(
                a.admin(),
                "/api/v1/captures",
                json!({"name": "both", "limit": 3}),
            )
            .await
            .expect(201);
        let id = c["id"].as_str().unwrap().to_string();
        // B finds the capture A started within its poll.
        let deadline = Instant::now() + Duration::from_secs(10);
        while b.app.state.pipeline.tap().active().is_none() {
            assert!(Instant::now() < deadline, "B never started recording");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ev = crate::captures::event;
        ingest(
            &b,
            vec![
                ev("m1", "sms", "8613900004201"),
                ev("m2", "sms", "8613900004202"),
            ],
        )
        .await;
        capture_when(&a, &id, |c| c["events"] == 2).await;
        ingest(
            &a,
            vec![
                ev("m3", "sms", "8613900004203"),
                ev("m4", "sms", "8613900004204"),
            ],
        )
        .await;
        // The limit holds whichever instance records.
        let done = capture_when(&b, &id, |c| c["status"] == "ended").await;
        assert_eq!(done["events"], 3, "{done}");
        assert_eq!(done["ended_because"], "limit", "{done}");
        // Both instances stop recording once it ended.
        let deadline = Instant::now() + Duration::from_secs(10);
        while a.app.state.pipeline.tap().active().is_some()
            || b.app.state.pipeline.tap().active().is_some()
        {
            assert!(
                Instant::now() < deadline,
                "a tap stayed on after the capture ended"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Started on B, followed on A.
        let started = b
            .post(b.admin(), "/api/v1/backtests", json!({"capture_id": id}))
            .await
            .expect(202);
        let job = job_when(&a, a.admin(), started["id"].as_str().unwrap()).await;
        assert_eq!(job["status"], "done", "{job}");
        assert_eq!(job["result"]["events"], 3, "{job}");
        assert_eq!(job["spec"]["events"]["capture_id"], id.as_str(), "{job}");
        b.stop().await;
        a.stop().await;
    })
    .await;
}
