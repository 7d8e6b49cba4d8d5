//! Rules as published versions, through the API as marketers use it: a draft is checked,
//! fixed, tried, published by someone else, decides live events, and is rolled back; a set
//! with an error is refused and the running one stays; a publish on one instance reaches the
//! others within a second; `kairos rules publish` publishes a folder from git.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{create_pg_database, drop_pg_database, on_both_urls, Backend, TestApp};

/// A roaming rule offering `code`, with two test cases. The message is on line 5.
fn rule(code: &str) -> String {
    format!(
        r#"#{{
    id: "roam", name: "Roaming", kind: "dynamic",
    events: ["location_update"], when: #{{ roaming: true }}, channels: ["portal"],
    offer: #{{ code: "{code}", validity: "1d" }},
    message: "Welcome to {{country}}",
    tests: [
        #{{ name: "a roamer gets the offer", events: [#{{ type: "location_update", ts: "2026-11-23T08:15:00+08:00", attrs: #{{ country: "JP", roaming: true }} }}], expect: ["{code}"] }},
        #{{ name: "at home, nothing", events: [#{{ type: "location_update", ts: "2026-11-23T08:15:00+08:00", attrs: #{{ country: "CN", roaming: false }} }}], expect: [] }},
    ],
}};
"#
    )
}

/// The same rule with a message variable nothing fills, and where the checks must point.
fn misspelt(code: &str) -> (String, usize, usize) {
    let src = rule(code).replace("{country}", "{countr}");
    let line = src.lines().nth(4).unwrap();
    (src.clone(), 5, line.find("{countr}").unwrap() + 1)
}

fn folder(code: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("roam.rhai"), rule(code)).unwrap();
    d
}

fn engine_config(c: &mut kairos::config::Config, rules: &Path) {
    c.engine.rules_dir = rules.to_path_buf();
    // The test numbers have no CRM record: decided for as the rules alone would.
    c.engine.unknown_subscribers = "market".into();
    c.engine.workers = 2;
}

/// Sends one roaming event for `m` through the ingest API and answers the offer decided.
async fn decide(t: &TestApp, m: &str) -> String {
    let ev = json!({"id": uuid::Uuid::new_v4().to_string(), "type": "location_update", "msisdn": m,
        "ts": chrono::Utc::now().to_rfc3339(), "attrs": {"country": "JP", "roaming": true}});
    let r = t
        .post(t.admin(), "/api/v1/events?wait=true", ev)
        .await
        .expect(200);
    r["outcome"]["decisions"][0]["offer_code"]
        .as_str()
        .unwrap_or("no offer")
        .to_string()
}

async fn versions(t: &TestApp) -> Value {
    t.get(t.admin(), "/api/v1/rule-versions").await.expect(200)
}

#[tokio::test]
async fn a_draft_is_checked_fixed_published_by_another_and_rolled_back() {
    on_both_urls(async |backend, url| {
        let rules = folder("ROAM-A");
        let t = TestApp::start_config(backend, url, |c| engine_config(c, rules.path())).await;
        // The rules folder was recorded as the first version.
        let v = versions(&t).await;
        assert_eq!(v["total"], 1, "{v}");
        assert_eq!(v["items"][0]["number"], 1, "{v}");
        assert_eq!(v["items"][0]["author"], "bootstrap", "{v}");
        assert_eq!(decide(&t, "8613900007001").await, "ROAM-A");

        let ana = t.user("ana", "marketer", json!({})).await;
        let ben = t.user("ben", "marketer", json!({})).await;
        let carl = t.user("carl", "agent", json!({})).await;
        let denied = t
            .post(&carl.token, "/api/v1/rule-drafts", json!({"path": "roam.rhai", "content": rule("X")}))
            .await
            .expect(403);
        assert_eq!(denied["permission"], "edit_rules", "{denied}");

        // A draft with a mistake: the check names its file, line and column, and a fix.
        let (broken, line, column) = misspelt("ROAM-B");
        let draft = t
            .post(&ana.token, "/api/v1/rule-drafts",
                json!({"path": "roam.rhai", "content": broken, "comment": "a new roaming offer"}))
            .await
            .expect(201);
        let id = draft["id"].as_str().unwrap().to_string();
        assert_eq!(draft["author"], ana.id.as_str(), "{draft}");
        assert_eq!(draft["base_version"], 1, "{draft}");
        let check = t
            .post(&ana.token, &format!("/api/v1/rule-drafts/{id}/validate"), json!({}))
            .await
            .expect(200);
        assert_eq!(check["ok"], false, "{check}");
        let e = &check["errors"][0];
        assert_eq!(e["file"], "roam.rhai", "{check}");
        assert_eq!((e["line"].as_u64(), e["column"].as_u64()), (Some(line as u64), Some(column as u64)), "{check}");
        assert!(e["message"].as_str().unwrap().contains("nothing fills `{countr}`"), "{check}");
        assert_eq!(e["suggestion"], "Did you mean `{country}`?", "{check}");
        // The same check on a text that is not stored, as an editor asks while one types.
        let typed = t
            .post(&ana.token, "/api/v1/rules/validate", json!({"path": "roam.rhai", "content": broken}))
            .await
            .expect(200);
        assert_eq!(typed["errors"], check["errors"], "{typed}");
        // Published as it is, it is refused with the same problem, and nothing changes.
        let refused = t
            .post(&ben.token, "/api/v1/rule-versions", json!({"drafts": [id]}))
            .await
            .expect(400);
        assert_eq!(refused["problems"][0]["line"], line as u64, "{refused}");
        assert!(refused["message"].as_str().unwrap().contains(&format!("roam.rhai:{line}:{column}")), "{refused}");
        assert_eq!(versions(&t).await["total"], 1);
        assert_eq!(decide(&t, "8613900007002").await, "ROAM-A");

        // Only the author rewrites a draft; the author fixes it.
        let fixed = json!({"path": "roam.rhai", "content": rule("ROAM-B"), "comment": "a new roaming offer"});
        let not_yours = t.put(&ben.token, &format!("/api/v1/rule-drafts/{id}"), fixed.clone()).await.expect(403);
        assert!(not_yours["message"].as_str().unwrap().contains("only the author"), "{not_yours}");
        t.put(&ana.token, &format!("/api/v1/rule-drafts/{id}"), fixed).await.expect(200);
        let check = t
            .post(&ana.token, &format!("/api/v1/rule-drafts/{id}/validate"), json!({}))
            .await
            .expect(200);
        assert_eq!((check["ok"].clone(), check["rules"].clone()), (json!(true), json!(1)), "{check}");

        // Tried on events, and its own tests run, before anyone publishes it.
        let now = chrono::Utc::now().to_rfc3339();
        let tried = t
            .post(&ana.token, "/api/v1/rules/dry-run", json!({"draft_id": id, "events": [
                {"type": "location_update", "ts": now, "attrs": {"country": "JP", "roaming": true}},
                {"type": "location_update", "ts": now, "attrs": {"country": "CN", "roaming": false}}]}))
            .await
            .expect(200);
        let decided: Vec<&str> = tried["decisions"].as_array().unwrap().iter()
            .map(|d| d["offer_code"].as_str().unwrap()).collect();
        assert_eq!(decided, ["ROAM-B"], "{tried}");
        assert_eq!(tried["decisions"][0]["status"], "proposed", "{tried}");
        let tests = t.post(&ana.token, "/api/v1/rules/test", json!({"draft_id": id})).await.expect(200);
        assert_eq!((tests["passed"].clone(), tests["failed"].clone()), (json!(2), json!(0)), "{tests}");
        let wrong = rule("ROAM-B").replace("expect: [\"ROAM-B\"]", "expect: [\"ROAM-Z\"]");
        let tests = t.post(&ana.token, "/api/v1/rules/test", json!({"source": wrong})).await.expect(200);
        assert_eq!(tests["failed"], 1, "{tests}");
        assert!(tests["cases"][0]["failure"].as_str().unwrap().contains("ROAM-Z"), "{tests}");

        // Four eyes: the author's own publish is refused, saying why.
        let own = t
            .post(&ana.token, "/api/v1/rule-versions", json!({"drafts": [id], "comment": "mine"}))
            .await
            .expect(403);
        assert!(own["message"].as_str().unwrap().contains("author of a change cannot approve it"), "{own}");
        assert_eq!(own["permission"], "publish_rules", "{own}");
        assert_eq!(decide(&t, "8613900007003").await, "ROAM-A");

        let published = t
            .post(&ben.token, "/api/v1/rule-versions", json!({"drafts": [id], "comment": "approved"}))
            .await
            .expect(201);
        assert_eq!(published["number"], 2, "{published}");
        assert_eq!(published["author"], ana.id.as_str(), "{published}");
        assert_eq!(published["approved_by"], ben.id.as_str(), "{published}");
        assert_eq!(published["rules"], 1, "{published}");
        t.get(t.admin(), &format!("/api/v1/rule-drafts/{id}")).await.expect(404);
        assert_eq!(decide(&t, "8613900007004").await, "ROAM-B");
        let v2 = t.get(t.admin(), "/api/v1/rule-versions/2").await.expect(200);
        assert_eq!(v2["active"], true, "{v2}");
        assert_eq!(v2["changed"], json!(["roam.rhai"]), "{v2}");
        let diff = v2["diff"].as_str().unwrap();
        assert!(diff.contains("--- a/roam.rhai\n+++ b/roam.rhai\n"), "{diff}");
        assert!(diff.contains("-    offer: #{ code: \"ROAM-A\", validity: \"1d\" },\n+    offer: #{ code: \"ROAM-B\", validity: \"1d\" },\n"), "{diff}");
        assert_eq!(v2["files"][0]["path"], "roam.rhai", "{v2}");

        // Rolled back: a new version equal to the first, and the old offer again.
        let back = t
            .post(&ben.token, "/api/v1/rule-versions/1/rollback", json!({"comment": "the old offer sold better"}))
            .await
            .expect(201);
        assert_eq!((back["number"].clone(), back["restores"].clone()), (json!(3), json!(1)), "{back}");
        assert_eq!(decide(&t, "8613900007005").await, "ROAM-A");
        let v3 = t.get(t.admin(), "/api/v1/rule-versions/3").await.expect(200);
        assert!(v3["diff"].as_str().unwrap().contains("+    offer: #{ code: \"ROAM-A\""), "{v3}");
        t.post(&ben.token, "/api/v1/rule-versions/3/rollback", json!({})).await.expect(409);
        t.post(&carl.token, "/api/v1/rule-versions/1/rollback", json!({})).await.expect(403);
        let list = versions(&t).await;
        let numbers: Vec<i64> = list["items"].as_array().unwrap().iter().map(|v| v["number"].as_i64().unwrap()).collect();
        assert_eq!(numbers, [3, 2, 1], "{list}");
        t.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_set_with_an_error_is_refused_and_the_running_set_stays() {
    on_both_urls(async |backend, url| {
        let rules = folder("ROAM-A");
        let t = TestApp::start_config(backend, url, |c| engine_config(c, rules.path())).await;
        let ana = t.user("ana", "marketer", json!({})).await;
        let ben = t.user("ben", "marketer", json!({})).await;
        // A second rule that is fine, and a contact policy with a mistake on line 3: the
        // whole set is checked, so the publish of both together is refused.
        let other = rule("DATA-1").replace("id: \"roam\"", "id: \"other\"");
        let good = t
            .post(&ana.token, "/api/v1/rule-drafts", json!({"path": "more/other.rhai", "content": other}))
            .await
            .expect(201);
        let bad = t
            .post(&ana.token, "/api/v1/rule-drafts",
                json!({"path": "policy.toml", "content": "[[suppress]]\nafter = \"declined\"\nfor = \"a fortnight\"\n"}))
            .await
            .expect(201);
        let r = t
            .post(&ben.token, "/api/v1/rule-versions", json!({"drafts": [good["id"], bad["id"]]}))
            .await
            .expect(400);
        let p = &r["problems"][0];
        assert_eq!((p["file"].as_str(), p["line"].as_u64()), (Some("policy.toml"), Some(3)), "{r}");
        assert_eq!(versions(&t).await["total"], 1);
        assert_eq!(t.app.state.rule_sync.running(), 1);
        assert_eq!(t.app.state.pipeline.rules().rules.len(), 1);
        assert_eq!(decide(&t, "8613900007101").await, "ROAM-A");
        // Without the bad policy the good draft goes through, and the set grows.
        t.post(&ben.token, "/api/v1/rule-versions", json!({"drafts": [good["id"]]}))
            .await
            .expect(201);
        assert_eq!(t.app.state.pipeline.rules().rules.len(), 2);
        // Deleting a file is a draft too.
        let gone = t
            .post(&ana.token, "/api/v1/rule-drafts", json!({"path": "more/other.rhai", "delete": true}))
            .await
            .expect(201);
        t.post(&ben.token, "/api/v1/rule-versions", json!({"drafts": [gone["id"]]}))
            .await
            .expect(201);
        assert_eq!(t.app.state.pipeline.rules().rules.len(), 1);
        t.stop().await;
    })
    .await;
}

/// Two instances on one PostgreSQL database: a publish on A reaches B within a second, over
/// Redis when instances share it, and by B's own poll when they do not.
async fn a_publish_on_one_instance_reaches_the_other(redis: bool) {
    let (name, url) = create_pg_database().await;
    let rules = folder("ROAM-A");
    let prefix = format!("kairos-test-{}", uuid::Uuid::new_v4().simple());
    let tweak = |c: &mut kairos::config::Config| {
        engine_config(c, rules.path());
        if redis {
            c.state.backend = "redis".into();
            c.state.redis_url = std::env::var("KAIROS_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
            c.state.redis_prefix = prefix.clone();
        }
    };
    let a = TestApp::start_config(Backend::Postgres, url.clone(), tweak).await;
    let b = TestApp::start_config(Backend::Postgres, url.clone(), tweak).await;
    assert_eq!(
        b.app.state.rule_sync.running(),
        1,
        "B runs the version A recorded"
    );
    assert_eq!(decide(&b, "8613900007201").await, "ROAM-A");
    let ana = a.user("ana", "marketer", json!({})).await;
    let ben = a.user("ben", "marketer", json!({})).await;
    let d = a
        .post(
            &ana.token,
            "/api/v1/rule-drafts",
            json!({"path": "roam.rhai", "content": rule("ROAM-B")}),
        )
        .await
        .expect(201);
    let p = a
        .post(
            &ben.token,
            "/api/v1/rule-versions",
            json!({"drafts": [d["id"]]}),
        )
        .await
        .expect(201);
    let published = Instant::now();
    if redis {
        assert!(p["instances_notified"].as_i64().unwrap() >= 1, "{p}");
    } else {
        assert!(p["instances_notified"].is_null(), "{p}");
    }
    while b.app.state.rule_sync.running() != 2 {
        assert!(
            published.elapsed() < Duration::from_secs(1),
            "B still runs version {} a second after the publish",
            b.app.state.rule_sync.running()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(decide(&b, "8613900007202").await, "ROAM-B");
    a.stop().await;
    b.stop().await;
    drop_pg_database(&name).await;
}

#[tokio::test]
async fn a_publish_on_one_instance_reaches_another_within_a_second_over_redis() {
    a_publish_on_one_instance_reaches_the_other(true).await;
}

#[tokio::test]
async fn a_publish_on_one_instance_reaches_another_within_a_second_by_polling() {
    a_publish_on_one_instance_reaches_the_other(false).await;
}

fn kairos(db_url: &str) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_kairos"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("KAIROS_CONFIG");
    c.env("KAIROS_DATABASE__URL", db_url);
    c.env("KAIROS_STATE__BACKEND", "embedded");
    c
}

#[tokio::test]
async fn the_cli_publishes_a_folder_and_running_instances_take_it() {
    on_both_urls(async |backend, url| {
        let first = folder("ROAM-A");
        let t =
            TestApp::start_config(backend, url.clone(), |c| engine_config(c, first.path())).await;
        // A folder with a mistake: refused with its place, nothing published.
        let (broken, line, column) = misspelt("ROAM-B");
        let bad = tempfile::tempdir().unwrap();
        std::fs::write(bad.path().join("roam.rhai"), broken).unwrap();
        let run = kairos(&url)
            .args(["rules", "publish"])
            .arg(bad.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("roam.rhai:{line}:{column}: nothing fills")),
            "{stderr}"
        );
        assert_eq!(versions(&t).await["total"], 1);

        let next = folder("ROAM-B");
        let run = kairos(&url)
            .args([
                "rules",
                "publish",
                "--author",
                "dana",
                "--comment",
                "commit 1a2b3c",
            ])
            .arg(next.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(stdout.contains("published version 2 (1 rules)"), "{stdout}");
        let published = Instant::now();
        while t.app.state.rule_sync.running() != 2 {
            assert!(
                published.elapsed() < Duration::from_secs(2),
                "the instance never took version 2"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(decide(&t, "8613900007301").await, "ROAM-B");
        let v = versions(&t).await;
        assert_eq!(
            (
                v["items"][0]["author"].as_str(),
                v["items"][0]["approved_by"].as_str(),
                v["items"][0]["comment"].as_str()
            ),
            (Some("dana"), Some("cli"), Some("commit 1a2b3c")),
            "{v}"
        );
        // The same folder again publishes nothing.
        let run = kairos(&url)
            .args(["rules", "publish"])
            .arg(next.path())
            .output()
            .unwrap();
        assert!(run.status.success());
        assert!(String::from_utf8_lossy(&run.stdout).contains("active version 2 already"));
        assert_eq!(versions(&t).await["total"], 2);
        t.stop().await;
        // Started again on its old folder, the instance runs the published version.
        let t = TestApp::start_config(backend, url, |c| engine_config(c, first.path())).await;
        assert_eq!(t.app.state.rule_sync.running(), 2);
        assert_eq!(decide(&t, "8613900007302").await, "ROAM-B");
        t.stop().await;
    })
    .await;
}

/// A counting rule: it offers `code` from the `need`th roaming update within `span`.
fn counting(code: &str, span: &str, need: u32) -> String {
    rule(code).replace(
        "when: #{ roaming: true }",
        &format!("when: #{{ roaming: true, \"count(location_update, {span})\": \">= {need}\" }}"),
    )
}

/// Subscribers' state is kept per series across a publish: a window an unchanged condition
/// reads keeps the events seen before it, and a window the new version adds starts empty.
#[tokio::test]
async fn a_publish_keeps_the_state_unchanged_rules_read_and_new_windows_start_empty() {
    on_both_urls(async |backend, url| {
        let rules = tempfile::tempdir().unwrap();
        std::fs::write(
            rules.path().join("roam.rhai"),
            counting("TWICE-A", "24h", 2),
        )
        .unwrap();
        let t = TestApp::start_config(backend, url, |c| engine_config(c, rules.path())).await;
        let ana = t.user("ana", "marketer", json!({})).await;
        let ben = t.user("ben", "marketer", json!({})).await;
        let publish = async |content: String| {
            let d = t
                .post(
                    &ana.token,
                    "/api/v1/rule-drafts",
                    json!({"path": "roam.rhai", "content": content}),
                )
                .await
                .expect(201);
            t.post(
                &ben.token,
                "/api/v1/rule-versions",
                json!({"drafts": [d["id"]]}),
            )
            .await
            .expect(201);
        };
        let m = "8613900007401";
        assert_eq!(decide(&t, m).await, "no offer", "one update is not two");
        // Only the offer changes: the 24h count is the same series and keeps the first update.
        publish(counting("TWICE-B", "24h", 2)).await;
        assert_eq!(
            decide(&t, m).await,
            "TWICE-B",
            "the update before the publish counts"
        );
        // A new window (1h) starts empty: two updates seen before it do not count.
        publish(counting("TWICE-C", "1h", 2)).await;
        assert_eq!(
            decide(&t, m).await,
            "no offer",
            "the new window holds this update only"
        );
        assert_eq!(decide(&t, m).await, "TWICE-C");
        t.stop().await;
    })
    .await;
}
