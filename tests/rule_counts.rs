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

/// The same rule holding `control` of its matches out as its control group.
fn write_rule_with_control(dir: &Path, code: &str, control: &str) {
    let text = rule(code).replace(
        "channels: [\"portal\"],",
        &format!("channels: [\"portal\"], control: \"{control}\","),
    );
    assert!(text.contains("control:"), "{text}");
    std::fs::write(dir.join("roam.rhai"), text).unwrap();
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
        // Sent, none accepted; nobody held out, so nothing to measure against.
        assert_eq!(after_publish["conversion"], 0.0, "{after_publish}");
        assert!(after_publish["against_control"].is_null(), "{after_publish}");
        // This instance's own view goes on through the publish too, as `/metrics` does.
        let live = roam_stats(&t).await;
        assert_eq!(live, [6.0, 2.0], "engine/stats kept the counts from before the publish");
        assert_eq!(live, roam_metrics(&t).await[..2], "engine/stats and /metrics agree");

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

/// The value of one Prometheus sample, by its exact name and labels.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The rule's per-rule series in `/metrics`: runs, matches, decisions (every status and
/// reason) and timed runs.
async fn roam_metrics(t: &TestApp) -> [f64; 4] {
    let text = t.get(t.admin(), "/metrics").await.expect(200);
    let text = text.as_str().unwrap();
    let one = |series: &str| sample(text, series).unwrap_or(0.0);
    let decisions: f64 = text
        .lines()
        .filter(|l| l.starts_with("kairos_decisions_total{") && l.contains("rule=\"roam\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    [
        one("kairos_rule_evaluations_total{rule=\"roam\"}"),
        one("kairos_rule_matches_total{rule=\"roam\"}"),
        decisions,
        one("kairos_rule_evaluation_seconds_count{rule=\"roam\"}"),
    ]
}

/// The rule's runs and matches in `GET /api/v1/engine/stats`.
async fn roam_stats(t: &TestApp) -> [f64; 2] {
    let stats = t.get(t.admin(), "/api/v1/engine/stats").await.expect(200);
    let live = stats["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_id"] == "roam")
        .unwrap_or_else(|| panic!("roam is running: {stats}"));
    [
        live["evaluated"].as_f64().unwrap(),
        live["matched"].as_f64().unwrap(),
    ]
}

/// Publishes while events flow: Prometheus counters may only grow while the process lives,
/// so the per-rule ones go on from where the swapped-out rule objects left off, and end at
/// exactly the events sent; `engine/stats` reads the same counts, so it does not drop either.
#[tokio::test]
async fn metrics_per_rule_do_not_drop_when_a_publish_swaps_the_rules() {
    let rules = tempfile::tempdir().unwrap();
    write_rule(rules.path(), "ROAM-A");
    let db = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        db.path().join("kairos.db").display()
    );
    let t = TestApp::start_config(Backend::Sqlite, url, |c| engine_config(c, rules.path())).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stream = {
        let (http, base) = (t.http.clone(), t.base.clone());
        let (stop, sent) = (stop.clone(), sent.clone());
        let admin = t.admin().to_string();
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let ev = json!({"id": uuid::Uuid::new_v4().to_string(), "type": "location_update",
                    "msisdn": (8613900009000u64 + n).to_string(), "ts": chrono::Utc::now().to_rfc3339(),
                    "attrs": {"country": "JP", "roaming": true}});
                let r = http
                    .post(format!("{base}/api/v1/events?wait=true"))
                    .bearer_auth(&admin)
                    .json(&ev)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                n += 1;
                sent.store(n, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    let wait_for = async |at_least: u64| {
        while sent.load(std::sync::atomic::Ordering::SeqCst) < at_least {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    let (mut last, mut last_stats) = ([0.0; 4], [0.0; 2]);
    for (i, code) in ["ROAM-B", "ROAM-C", "ROAM-D"].iter().enumerate() {
        wait_for(5 * (i as u64 + 1)).await;
        write_rule(rules.path(), code);
        t.post(t.admin(), "/api/v1/rules/reload", json!({}))
            .await
            .expect(200);
        let now = roam_metrics(&t).await;
        assert!(
            now.iter().zip(&last).all(|(n, l)| n >= l),
            "a publish made a counter drop: {last:?} -> {now:?}"
        );
        assert!(now[0] >= 5.0 * (i as f64 + 1.0), "{now:?}");
        // Read after `/metrics` while events still flow: at least what it said, never less
        // than before the publish.
        let stats = roam_stats(&t).await;
        assert!(
            stats.iter().zip(&last_stats).all(|(n, l)| n >= l),
            "a publish made engine/stats drop: {last_stats:?} -> {stats:?}"
        );
        assert!(
            stats[0] >= now[0] && stats[1] >= now[1],
            "engine/stats behind /metrics: {stats:?} / {now:?}"
        );
        (last, last_stats) = (now, stats);
    }
    wait_for(20).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    stream.await.unwrap();
    let n = sent.load(std::sync::atomic::Ordering::SeqCst) as f64;
    // Every event was evaluated once, matched, decided and timed, across four rule objects.
    assert_eq!(roam_metrics(&t).await, [n, n, n, n]);
    // The engine's own view counts the same, across the four rule objects.
    assert_eq!(roam_stats(&t).await, [n, n]);
    t.stop().await;
}

/// Rows of days older than `counts.retention_days` go, once a day; the rest stay.
#[tokio::test]
async fn old_days_of_counts_are_deleted_once_a_day() {
    on_both_urls(async |backend, url| {
        let rules = tempfile::tempdir().unwrap();
        write_rule(rules.path(), "ROAM-A");
        let t = TestApp::start_config(backend, url, |c| {
            engine_config(c, rules.path());
            c.counts.retention_days = 10;
        })
        .await;
        // Days far from today, so the flusher's own daily pass (today) touches none of them.
        let today = chrono::NaiveDate::from_ymd_opt(2031, 6, 20).unwrap();
        let day = |back: i64| (today - chrono::Duration::days(back)).to_string();
        let insert = async |instance: &str, d: &str| {
            sqlx::query("INSERT INTO rule_counts (rule_id, instance_id, day, evaluated, matched, errors) VALUES ('roam', $1, $2, 1, 0, 0)")
                .bind(instance).bind(d)
                .execute(&t.app.state.db.pool).await.unwrap();
        };
        for (instance, back) in [("a", 12), ("b", 11), ("a", 10), ("a", 9), ("b", 0)] {
            insert(instance, &day(back)).await;
        }
        let days = async || {
            let rows: Vec<(String,)> = sqlx::query_as("SELECT day FROM rule_counts WHERE rule_id = 'roam' AND day > '2031' ORDER BY day, instance_id")
                .fetch_all(&t.app.state.db.pool).await.unwrap();
            rows.into_iter().map(|(d,)| d).collect::<Vec<_>>()
        };
        let counter = &t.app.state.rule_counts;
        assert_eq!(counter.prune(today).await.unwrap(), Some(2), "the two days before the tenth");
        assert_eq!(days().await, [day(10), day(9), day(0)]);
        // Once a day: a second pass the same day deletes nothing, even what has become old.
        insert("c", &day(30)).await;
        assert_eq!(counter.prune(today).await.unwrap(), None);
        assert!(days().await.contains(&day(30)));
        let tomorrow = today + chrono::Duration::days(1);
        assert_eq!(counter.prune(tomorrow).await.unwrap(), Some(2), "day 30 and day 10 go");
        assert_eq!(days().await, [day(9), day(0)]);
        // Lasting totals read what is kept.
        let (n,): (i64,) = sqlx::query_as("SELECT CAST(SUM(evaluated) AS BIGINT) FROM rule_counts WHERE rule_id = 'roam'")
            .fetch_one(&t.app.state.db.pool).await.unwrap();
        assert_eq!(script_counts(&totals(&t).await).0, n as u64);
        t.stop().await;
    })
    .await;
}

/// A rule with a control group: its totals and its days carry conversion (accepted over sent)
/// and the uplift of those it reached over those it held out.
#[tokio::test]
async fn rule_counts_show_conversion_and_uplift_against_control() {
    on_both_urls(async |backend, url| {
        let rules = tempfile::tempdir().unwrap();
        write_rule_with_control(rules.path(), "ROAM-A", "50%");
        let t = TestApp::start_config(backend, url, |c| engine_config(c, rules.path())).await;
        let offering = t
            .post(t.admin(), "/api/v1/catalog/offerings",
                json!({"code": "ROAM-A", "name": "Roaming pack", "offering_type": "addon", "price_cents": 900}))
            .await
            .expect(201);
        let mut lines = Vec::new();
        for i in 0..30 {
            let c = t.customer(&format!("r{i}"), json!({})).await;
            let cid = c["id"].as_str().unwrap().to_string();
            let msisdn = format!("86139300000{i:02}");
            let line = t.line(&cid, &msisdn).await;
            lines.push((cid, line["id"].as_str().unwrap().to_string(), msisdn));
        }
        for (_, _, msisdn) in &lines {
            let ev = json!({"id": uuid::Uuid::new_v4().to_string(), "type": "location_update",
                "msisdn": msisdn, "ts": chrono::Utc::now().to_rfc3339(),
                "attrs": {"country": "JP", "roaming": true}});
            t.post(t.admin(), "/api/v1/events?wait=true", ev).await.expect(200);
        }
        let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, msisdn, status, reason FROM recommendations WHERE rule_id = 'roam' ORDER BY msisdn")
            .fetch_all(&t.app.state.db.pool).await.unwrap();
        assert_eq!(rows.len(), 30, "{rows:?}");
        let held: Vec<&(String, String, String, Option<String>)> =
            rows.iter().filter(|r| r.3.as_deref() == Some("control_group")).collect();
        let reached: Vec<&(String, String, String, Option<String>)> =
            rows.iter().filter(|r| r.3.as_deref() != Some("control_group")).collect();
        let (n_c, n_t) = (held.len() as u64, reached.len() as u64);
        assert!(n_c >= 2 && n_t >= 2, "half held out: {rows:?}");
        // Two of the reached accept; one reached and one held out take the pack.
        for r in &reached[..2] {
            let engine = &t.app.state.pipeline;
            kairos::ports::OfferBook::respond(engine, &r.0, kairos::ports::Status::Accepted, "test", None)
                .await
                .unwrap()
                .expect("the offer is there");
        }
        for msisdn in [&reached[0].1, &held[0].1] {
            let (cust, line, _) = lines.iter().find(|l| &l.2 == msisdn).unwrap();
            t.post(t.admin(), "/api/v1/subscriptions",
                json!({"customer_id": cust, "line_id": line, "offering_id": offering["id"]}))
                .await
                .expect(201);
        }
        let uplift = 1.0 / n_t as f64 - 1.0 / n_c as f64;
        let check = |what: &str, v: &Value| {
            assert_eq!(v["sent"], n_t, "{what}: {v}");
            assert_eq!(v["suppressed"]["control_group"], n_c, "{what}: {v}");
            assert_eq!(v["accepted"], 2, "{what}: {v}");
            let conversion = v["conversion"].as_f64().unwrap();
            assert!((conversion - 2.0 / n_t as f64).abs() < 1e-12, "{what}: {v}");
            let a = &v["against_control"];
            assert_eq!(a["treated"]["subscribers"], n_t, "{what}: {v}");
            assert_eq!(a["treated"]["converted"], 1, "{what}: {v}");
            assert_eq!(a["control"]["subscribers"], n_c, "{what}: {v}");
            assert_eq!(a["control"]["converted"], 1, "{what}: {v}");
            assert!((a["uplift"].as_f64().unwrap() - uplift).abs() < 1e-12, "{what}: {v}");
            assert_eq!(a["uplift_ci"].as_array().unwrap().len(), 2, "{what}: {v}");
        };
        check("totals", &totals(&t).await);
        let today = chrono::Utc::now().date_naive();
        let (from, to) = (today - chrono::Duration::days(1), today + chrono::Duration::days(1));
        let series = t
            .get(t.admin(), &format!("/api/v1/rules/roam/counts?from={from}&to={to}"))
            .await
            .expect(200);
        let decided_days: Vec<&Value> = series["days"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| decided(d) > 0)
            .collect();
        assert_eq!(decided_days.len(), 1, "decided within seconds: {series}");
        check("the day", decided_days[0]);
        t.stop().await;
    })
    .await;
}
