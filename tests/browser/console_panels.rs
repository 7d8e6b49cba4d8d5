//! The console's panels beyond the marketer's rule loop: the page in Simplified Chinese, a
//! rule's conversion per day, and segments (built and counted live, counted in each person's
//! scope, planned for, deleted unless a campaign targets them). Scenarios in `console_zh.mjs`,
//! `conversion.mjs` and `segments.mjs`.

use kairos::ports::Status;
use serde_json::{json, Value};

use super::{run, start, values, ROAM};
use crate::common::{self, TestApp};

/// An app running the roaming rule (version 1), so every panel has something to show.
async fn with_roam() -> (TestApp, tempfile::TempDir, tempfile::TempDir) {
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("roam.rhai"), ROAM).unwrap();
    let (t, db) = start(|c| c.engine.rules_dir = rules.path().to_path_buf()).await;
    (t, db, rules)
}

#[tokio::test]
async fn the_console_speaks_chinese_in_every_panel_and_remembers_the_choice() {
    let (t, _db, _rules) = with_roam().await;
    t.user("mia", "marketer", json!({"display_name": "mia"}))
        .await;
    let report = run(
        "console_zh.mjs",
        &[&t.base, "mia", common::PASSWORD],
        async || {},
    )
    .await;
    assert_eq!(values(&report, "LANG"), ["zh-CN"], "{report:?}");
    let panels: Vec<&str> = values(&report, "PANEL")
        .iter()
        .map(|p| p.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        panels,
        ["规则", "编辑器", "采集与回测", "版本", "客户群", "营销活动"],
        "{report:?}"
    );
    assert_eq!(values(&report, "REMEMBERED"), ["规则"], "{report:?}");
    assert_eq!(values(&report, "ENGLISH"), ["Rules"], "{report:?}");
    // The reference in Chinese, and in English again after switching back.
    let reference = values(&report, "REFERENCE");
    assert!(reference[0].contains("包括当前事件"), "{report:?}");
    let english = values(&report, "REFERENCE_EN");
    assert!(
        english[0].contains("including the current event"),
        "{report:?}"
    );
    // The check's problem in Chinese, at the line the API names (the events line).
    let check = values(&report, "CHECK");
    let parts: Vec<&str> = check[0].split('|').collect();
    assert_eq!(parts.len(), 3, "{report:?}");
    assert!(parts[0].starts_with("第 3 行，第 "), "{report:?}");
    assert!(
        parts[1].starts_with("事件类型 \"location_updat\" 不在事件契约中"),
        "{report:?}"
    );
    assert_eq!(parts[2], "是否应为 \"location_update\"？", "{report:?}");
    t.stop().await;
}

/// A stored decision of the roaming rule for number `n`, `days_ago` days back, in `status`.
fn answered(n: usize, days_ago: i64, status: Status) -> kairos::ports::Recommendation {
    let mut r = common::sms_rec(&format!("conv-{n}"), &format!("86139{:08}", 7_000_000 + n));
    r.rule_id = "roam".into();
    r.offer_code = "ROAM-A".into();
    r.decided_at -= chrono::Duration::days(days_ago);
    r.status = status;
    r
}

#[tokio::test]
async fn the_console_charts_a_rules_conversion_per_day_as_the_counts_api_gives_it() {
    let (t, _db, _rules) = with_roam().await;
    // Three days ago 3 of 4 offers sent were accepted; two days ago 2 were sent and never
    // answered: 0 %; yesterday 1 of 3. Conversion is the API's (accepted over sent). Not
    // today: by the operator's day, today's decisions may fall on a day after UTC's `to`.
    use Status::{Accepted, Declined, Delivered, Sent};
    let days = [
        (3, vec![Accepted, Accepted, Accepted, Declined]),
        (1, vec![Accepted, Delivered, Declined]),
        (2, vec![Sent, Sent]),
    ];
    let recs: Vec<_> = days
        .into_iter()
        .flat_map(|(ago, ss)| ss.into_iter().map(move |s| (ago, s)))
        .enumerate()
        .map(|(n, (ago, s))| answered(n, ago, s))
        .collect();
    for r in &recs {
        t.store_rec(r).await;
    }
    t.user("mia", "marketer", json!({})).await;
    let report = run(
        "conversion.mjs",
        &[&t.base, "mia", common::PASSWORD, "roam"],
        async || {},
    )
    .await;

    // What the API counts per day, as the chart should show it.
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Duration::days(29);
    let api = t
        .get(
            t.admin(),
            &format!("/api/v1/rules/roam/counts?from={from}&to={today}"),
        )
        .await
        .expect(200);
    let want: Vec<(String, f64)> = api["days"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| Some((d["day"].as_str()?.to_string(), d["conversion"].as_f64()?)))
        .collect();
    let rates: Vec<f64> = want.iter().map(|(_, r)| *r).collect();
    assert_eq!(
        rates,
        [0.75, 0.0, 1.0 / 3.0],
        "accepted over sent, per day: {api}"
    );
    let shown: Vec<(String, f64)> = values(&report, "POINT")
        .iter()
        .map(|p| {
            let (day, v) = p.split_once(' ').unwrap();
            (day.to_string(), v.parse().unwrap())
        })
        .collect();
    assert_eq!(shown, want, "{report:?}");
    let title = values(&report, "TITLE");
    assert_eq!(
        title,
        [format!("{}: 75.0 % (3 accepted of 4 sent)", want[0].0)],
        "{report:?}"
    );
    t.stop().await;
}

async fn region_of(t: &TestApp, customer: &str) -> String {
    let c = t
        .get(t.admin(), &format!("/api/v1/customers/{customer}"))
        .await
        .expect(200);
    c["region_id"].as_str().unwrap().to_string()
}

async fn count(t: &TestApp, token: &str, id: &str) -> String {
    let c: Value = t
        .post(token, &format!("/api/v1/segments/{id}/count"), json!({}))
        .await
        .expect(200);
    format!("{} {}", c["customers"], c["lines"])
}

#[tokio::test]
async fn the_console_builds_a_segment_counts_its_members_and_plans_a_campaign_for_it() {
    let (t, _db) = start(|_| {}).await;
    let w = common::world::world(&t).await;
    let (east, west) = (region_of(&t, &w.c1).await, region_of(&t, &w.c3).await);
    let report = run(
        "segments.mjs",
        &[&t.base, "mk", "lead", common::PASSWORD, &east, &west],
        async || {},
    )
    .await;
    // The wrong value was refused with its place named, live and on saving, and nothing was
    // stored for it.
    let refused = values(&report, "REFUSED");
    assert!(refused[0].contains("criteria.all[2].value"), "{report:?}");
    let live_refused = values(&report, "LIVE_REFUSED");
    assert!(
        live_refused[0].contains("criteria.all[2].value"),
        "{report:?}"
    );
    // Counted live before any save, as the API counts those criteria for the marketer.
    for word in ["LIVE_ONE", "LIVE"] {
        let shown = values(&report, word);
        assert_eq!(shown.len(), 1, "{word}: {report:?}");
        let mut parts = shown[0].splitn(3, ' ');
        let (customers, lines) = (parts.next().unwrap(), parts.next().unwrap());
        let criteria: Value = serde_json::from_str(parts.next().unwrap()).unwrap();
        let api = t
            .post(
                &w.marketer.token,
                "/api/v1/segments/count",
                json!({ "criteria": criteria }),
            )
            .await
            .expect(200);
        assert_eq!(
            format!("{customers} {lines}"),
            format!("{} {}", api["customers"], api["lines"]),
            "{word}: {report:?}"
        );
    }
    assert_eq!(
        values(&report, "LIVE_ONE")[0].split(' ').nth(2),
        Some(r#"{"all":[{"field":"customer_type","op":"=","value":"individual"}]}"#),
        "{report:?}"
    );
    let id = values(&report, "SEGMENT")[0].to_string();
    let all = t
        .get(&w.marketer.token, "/api/v1/segments")
        .await
        .expect(200);
    assert_eq!(all["items"].as_array().unwrap().len(), 1, "{all}");

    // Stored as the builder showed it.
    let s = t
        .get(&w.marketer.token, &format!("/api/v1/segments/{id}"))
        .await
        .expect(200);
    let criteria = json!({"all": [
        {"field": "customer_type", "op": "=", "value": "individual"},
        {"field": "region_id", "op": "in", "value": [east, west]},
    ]});
    assert_eq!(s["criteria"], criteria, "{s}");
    let shown: Value = serde_json::from_str(values(&report, "CRITERIA")[0]).unwrap();
    assert_eq!(shown, criteria);
    let live = values(&report, "LIVE")[0].splitn(3, ' ').nth(2).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(live).unwrap(),
        criteria,
        "the saved criteria were counted live"
    );
    assert_eq!(s["description"], "every individual of both regions");

    // Counted as the API counts for each person: c1..c3 for the marketer, the lead's team's
    // customers (c1, c2) for the lead.
    let mine = count(&t, &w.marketer.token, &id).await;
    assert_eq!(mine, "3 3");
    assert_eq!(values(&report, "COUNT"), [mine.as_str()], "{report:?}");
    assert_eq!(values(&report, "LISTED"), ["3"], "{report:?}");
    let leads = count(&t, &w.lead.token, &id).await;
    assert_eq!(leads, "2 2");
    assert_eq!(
        values(&report, "LEAD_COUNT"),
        [leads.as_str()],
        "{report:?}"
    );
    assert_eq!(values(&report, "READ_ONLY").len(), 1, "{report:?}");

    // The campaign planned from it targets it.
    assert_eq!(values(&report, "PRESELECTED"), [id.as_str()], "{report:?}");
    let campaign = values(&report, "PLANNED")[0];
    let c = t
        .get(&w.marketer.token, &format!("/api/v1/campaigns/{campaign}"))
        .await
        .expect(200);
    assert_eq!(c["segment_id"], id.as_str(), "{c}");
    assert_eq!(c["state"], "plan", "{c}");

    // Deleting the segment it targets was refused, naming it; the segment is still there (read
    // above). The other one was deleted, and the audit trail says by whom.
    let kept = values(&report, "KEPT");
    assert!(kept[0].contains("Data for individuals"), "{report:?}");
    // In the console's words (the campaigns read from the API), not the API's.
    assert!(
        kept[0].starts_with("Segment Individuals east and west is not deleted"),
        "{report:?}"
    );
    let gone = values(&report, "DELETED")[0];
    assert_ne!(gone, id);
    t.get(&w.marketer.token, &format!("/api/v1/segments/{gone}"))
        .await
        .expect(404);
    let audit = t
        .get(
            t.admin(),
            &format!("/api/v1/audit?entity=segment&entity_id={gone}&action=delete"),
        )
        .await
        .expect(200);
    assert_eq!(audit["total"], 1, "{audit}");
    assert_eq!(
        audit["items"][0]["actor_id"],
        w.marketer.id.as_str(),
        "{audit}"
    );
    t.stop().await;
}
