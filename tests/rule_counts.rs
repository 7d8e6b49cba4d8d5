//! Per-rule counts that last: evaluated, matched and errors are written to the database by
//! every instance, so they survive a publish (which swaps in new rule objects) and a restart,
//! and read the same, summed, from any instance; decisions are counted by outcome.

use std::path::Path;

use serde_json::{json, Value};

use crate::common::{create_pg_database, drop_pg_database, on_both_urls, Backend, TestApp};

/// Matches a roamer, passes over a subscriber at home and fails on country "XX".
fn rule(code: &str) -> String {
    format!(
        r#"#{{
    id: "roam", name: "Roaming", kind: "dynamic",
    events: ["location_update"], channels: ["portal"],
    offer: #{{ code: "{code}", validity: "1d" }},
    message: "Welcome to {{country}}",
}};
fn condition(event, profile) {{
    if event.country == "XX" {{ throw "no such country"; }}
    event.roaming
}}
"#
    )
}

fn write_rule(dir: &Path, code: &str) {
    std::fs::write(dir.join("roam.rhai"), rule(code)).unwrap();
}

fn engine_config(c: &mut kairos::config::Config, rules: &Path) {
    c.engine.rules_dir = rules.to_path_buf();
    // The test numbers have no CRM record: decided for as the rules alone would.
    c.engine.unknown_subscribers = "market".into();
    c.engine.workers = 2;
}

/// One match, one pass and one error, each for a number of its own (`base`, `base+1`, ...).
async fn round(t: &TestApp, base: u64) {
    for (i, (country, roaming)) in [("JP", true), ("CN", false), ("XX", true)]
        .iter()
        .enumerate()
    {
        let ev = json!({"id": uuid::Uuid::new_v4().to_string(), "type": "location_update",
            "msisdn": (base + i as u64).to_string(), "ts": chrono::Utc::now().to_rfc3339(),
            "attrs": {"country": country, "roaming": roaming}});
        t.post(t.admin(), "/api/v1/events?wait=true", ev)
            .await
            .expect(200);
    }
}

async fn totals(t: &TestApp) -> Value {
    let list = t.get(t.admin(), "/api/v1/rules").await.expect(200);
    let r = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "roam")
        .unwrap();
    r["totals"].clone()
}

fn script_counts(totals: &Value) -> (u64, u64, u64) {
    let n = |k: &str| totals[k].as_u64().unwrap();
    (n("evaluated"), n("matched"), n("errors"))
}

/// Decisions made, whatever became of them.
fn decided(counts: &Value) -> u64 {
    let suppressed: u64 = counts["suppressed"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    counts["sent"].as_u64().unwrap() + suppressed
}

#[tokio::test]
async fn counts_survive_a_publish_and_a_restart_and_read_per_day() {
    on_both_urls(async |backend, url| {
        let rules = tempfile::tempdir().unwrap();
        write_rule(rules.path(), "ROAM-A");
        let t = TestApp::start_config(backend, url.clone(), |c| engine_config(c, rules.path())).await;
        round(&t, 8613900008000).await;
        // Counted before the publish and not yet written: the swap must not lose them.
        write_rule(rules.path(), "ROAM-B");
        let r = t.post(t.admin(), "/api/v1/rules/reload", json!({})).await.expect(200);
        assert_eq!(r["version"], 2, "a new version was published: {r}");
        round(&t, 8613900008010).await;
        let after_publish = totals(&t).await;
        assert_eq!(script_counts(&after_publish), (6, 2, 2), "{after_publish}");
        assert_eq!(decided(&after_publish), 2, "one decision per match: {after_publish}");
        // The in-memory view still starts again at a reload, as it always did.
        let stats = t.get(t.admin(), "/api/v1/engine/stats").await.expect(200);
        let live = stats["rules"].as_array().unwrap().iter().find(|r| r["rule_id"] == "roam").unwrap();
        assert_eq!(live["evaluated"], 3, "{stats}");

        // Counted and not yet written when the app stops: shutdown writes them.
        round(&t, 8613900008020).await;
        let TestApp { app, .. } = t;
        app.shutdown().await.expect("clean shutdown");
        let t = TestApp::start_config(backend, url, |c| engine_config(c, rules.path())).await;
        let after_restart = totals(&t).await;
        assert_eq!(script_counts(&after_restart), (9, 3, 3), "{after_restart}");
        assert_eq!(decided(&after_restart), 3, "{after_restart}");

        // Per day: today's script counts (UTC) are all of them; decisions fall on the
        // operator's day, within a day of it.
        let today = chrono::Utc::now().date_naive();
        let (from, to) = (today - chrono::Duration::days(1), today + chrono::Duration::days(1));
        let series = t
            .get(t.admin(), &format!("/api/v1/rules/roam/counts?from={from}&to={to}"))
            .await
            .expect(200);
        let days = series["days"].as_array().unwrap();
        let on_today = days.iter().find(|d| d["day"] == today.to_string()).expect("today counted");
        assert_eq!(script_counts(on_today), (9, 3, 3), "{series}");
        assert_eq!(days.iter().map(decided).sum::<u64>(), 3, "{series}");
        // Earlier days, as two instances wrote them, are summed per day and kept apart.
        for (instance, day, n) in [("a", "2026-01-01", 10), ("b", "2026-01-01", 5), ("a", "2026-01-03", 7)] {
            sqlx::query("INSERT INTO rule_counts (rule_id, instance_id, day, evaluated, matched, errors) VALUES ('roam', $1, $2, $3, $4, 0)")
                .bind(instance).bind(day).bind(n as i64).bind(1_i64)
                .execute(&t.app.state.db.pool).await.unwrap();
        }
        let series = t
            .get(t.admin(), "/api/v1/rules/roam/counts?from=2026-01-01&to=2026-01-02")
            .await
            .expect(200);
        assert_eq!(series["days"].as_array().unwrap().len(), 1, "2026-01-03 is outside: {series}");
        assert_eq!(series["days"][0]["day"], "2026-01-01", "{series}");
        assert_eq!(script_counts(&series["days"][0]), (15, 2, 0), "{series}");
        assert_eq!(script_counts(&totals(&t).await), (9 + 22, 3 + 3, 3), "totals take every day");
        t.get(t.admin(), "/api/v1/rules/roam/counts?from=2026-13-01").await.expect(400);
        t.get(t.admin(), "/api/v1/rules/roam/counts?from=2026-01-02&to=2026-01-01").await.expect(400);
        let carl = t.user("carl", "agent", json!({})).await;
        t.get(&carl.token, "/api/v1/rules/roam/counts").await.expect(403);
        t.stop().await;
    })
    .await;
}

/// Two instances on one PostgreSQL database: each counts its own events, and either answers
/// the sum.
#[tokio::test]
async fn two_instances_on_one_database_read_the_sum() {
    let (name, url) = create_pg_database().await;
    let rules = tempfile::tempdir().unwrap();
    write_rule(rules.path(), "ROAM-A");
    let a = TestApp::start_config(Backend::Postgres, url.clone(), |c| {
        engine_config(c, rules.path())
    })
    .await;
    let b = TestApp::start_config(Backend::Postgres, url.clone(), |c| {
        engine_config(c, rules.path())
    })
    .await;
    round(&a, 8613900008100).await;
    round(&b, 8613900008110).await;
    round(&b, 8613900008120).await;
    // B writes its counts on its own every few seconds; here at once.
    b.app.state.rule_counts.flush().await.unwrap();
    for t in [&a, &b] {
        let sum = totals(t).await;
        assert_eq!(script_counts(&sum), (9, 3, 3), "{sum}");
        assert_eq!(decided(&sum), 3, "{sum}");
    }
    a.stop().await;
    b.stop().await;
    drop_pg_database(&name).await;
}
