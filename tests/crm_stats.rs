//! Offer statistics by campaign, rule, channel, team and period; JSON and CSV; scoped.

use crate::common;

use common::world::world;
use common::{on_both, TestApp};
use kairos::pipeline::RecStore;
use kairos::ports::{Recommendation, Status};
use serde_json::Value;

fn rec(
    n: u32,
    msisdn: &str,
    rule: &str,
    campaign: Option<&str>,
    channel: &str,
    status: Status,
    at: &str,
) -> Recommendation {
    let decided_at = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    Recommendation {
        id: format!("r-stats-{n}"),
        msisdn: msisdn.parse().unwrap(),
        rule_id: rule.into(),
        offer_code: "DATA10".into(),
        channel: channel.into(),
        message: "m".into(),
        score: 1.0,
        trigger_event_id: None,
        campaign_id: campaign.map(str::to_string),
        request_id: None,
        decided_at,
        expires_at: decided_at + chrono::Duration::days(7),
        not_before: None,
        status,
        reason: (status == Status::Suppressed).then(|| "opt_out".to_string()),
        explanation: None,
        service: false,
    }
}

/// Five decisions over three CRM lines and one unknown line.
async fn seed(t: &TestApp) {
    let recs = vec![
        rec(
            1,
            "8613900001001",
            "campaign:K1",
            Some("K1"),
            "sms",
            Status::Queued,
            "2026-11-20T10:00:00+08:00",
        ),
        rec(
            2,
            "8613900001002",
            "campaign:K1",
            Some("K1"),
            "sms",
            Status::Suppressed,
            "2026-11-20T10:00:00+08:00",
        ),
        rec(
            3,
            "8613900001003",
            "roaming",
            None,
            "portal",
            Status::Accepted,
            "2026-11-24T09:00:00+08:00",
        ),
        rec(
            4,
            "8613900001001",
            "roaming",
            None,
            "portal",
            Status::Declined,
            "2026-12-02T09:00:00+08:00",
        ),
        rec(
            5,
            "8613999999999",
            "roaming",
            None,
            "sms",
            Status::Sent,
            "2026-12-02T11:00:00+08:00",
        ),
    ];
    RecStore::new(t.app.state.db.clone())
        .insert(&recs)
        .await
        .unwrap();
}

fn rows(report: &Value) -> Vec<(String, i64)> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                r["decided"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, i64)]) -> Vec<(String, i64)> {
    v.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

#[tokio::test]
async fn statistics_group_count_and_export() {
    on_both(async |t| {
        let w = world(t).await;
        seed(t).await;
        let mk = &w.marketer.token;

        let by_campaign = t
            .get(mk, "/api/v1/stats/offers?group_by=campaign")
            .await
            .expect(200);
        assert_eq!(
            rows(&by_campaign),
            pairs(&[("", 3), ("K1", 2)]),
            "{by_campaign}"
        );
        let k1 = &by_campaign["rows"][1];
        assert_eq!(
            (k1["sent"].as_i64(), k1["suppressed"].as_i64()),
            (Some(1), Some(1))
        );
        let none = &by_campaign["rows"][0];
        assert_eq!(
            (
                none["accepted"].as_i64(),
                none["declined"].as_i64(),
                none["sent"].as_i64()
            ),
            (Some(1), Some(1), Some(3))
        );
        assert_eq!(by_campaign["total"]["decided"], 5);

        let by_rule = t
            .get(mk, "/api/v1/stats/offers?group_by=rule")
            .await
            .expect(200);
        assert_eq!(rows(&by_rule), pairs(&[("campaign:K1", 2), ("roaming", 3)]));
        let by_team = t
            .get(mk, "/api/v1/stats/offers?group_by=team")
            .await
            .expect(200);
        assert_eq!(
            rows(&by_team),
            pairs(&[("", 1), ("T1", 3), ("T2", 1)]),
            "{by_team}"
        );
        let by_day = t.get(mk, "/api/v1/stats/offers").await.expect(200);
        assert_eq!(by_day["group_by"], "day");
        assert_eq!(
            rows(&by_day),
            pairs(&[("2026-11-20", 2), ("2026-11-24", 1), ("2026-12-02", 2)])
        );
        let by_week = t
            .get(mk, "/api/v1/stats/offers?group_by=week")
            .await
            .expect(200);
        assert_eq!(
            rows(&by_week),
            pairs(&[("2026-W47", 2), ("2026-W48", 1), ("2026-W49", 2)])
        );
        let by_month = t
            .get(mk, "/api/v1/stats/offers?group_by=month")
            .await
            .expect(200);
        assert_eq!(rows(&by_month), pairs(&[("2026-11", 3), ("2026-12", 2)]));
        let window = t
            .get(
                mk,
                "/api/v1/stats/offers?group_by=channel&from=2026-11-21&to=2026-11-30",
            )
            .await
            .expect(200);
        assert_eq!(rows(&window), pairs(&[("portal", 1)]));
        let filtered = t
            .get(mk, "/api/v1/stats/offers?group_by=channel&campaign_id=K1")
            .await
            .expect(200);
        assert_eq!(rows(&filtered), pairs(&[("sms", 2)]));

        // The T1 lead counts only T1's customers (c1, c2): no c3, no unknown line.
        let lead = t
            .get(&w.lead.token, "/api/v1/stats/offers?group_by=channel")
            .await
            .expect(200);
        assert_eq!(rows(&lead), pairs(&[("portal", 1), ("sms", 2)]), "{lead}");

        // CSV by parameter and by Accept header.
        let csv = t
            .get(mk, "/api/v1/stats/offers?group_by=rule&format=csv")
            .await
            .expect(200);
        let text = csv.as_str().unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "rule,decided,sent,suppressed,accepted,declined");
        assert_eq!(lines[1], "campaign:K1,2,1,1,0,0");
        assert_eq!(lines[2], "roaming,3,3,0,1,1");
        let resp = t
            .http
            .get(format!("{}/api/v1/stats/offers?group_by=month", t.base))
            .bearer_auth(mk)
            .header("Accept", "text/csv")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        let body = resp.text().await.unwrap();
        assert!(body.starts_with("month,decided"), "{body}");
        assert!(body.contains("2026-12,2,"), "{body}");

        // Validation and permissions.
        t.get(mk, "/api/v1/stats/offers?group_by=year")
            .await
            .expect_field("group_by");
        t.get(mk, "/api/v1/stats/offers?from=yesterday")
            .await
            .expect_field("from");
        t.get(mk, "/api/v1/stats/offers?format=xml")
            .await
            .expect_field("format");
        t.get(mk, "/api/v1/stats/offers?colour=red")
            .await
            .expect_field("colour");
        t.get(&w.am1.token, "/api/v1/stats/offers")
            .await
            .expect(403);
        t.get(&w.agent.token, "/api/v1/stats/offers")
            .await
            .expect(403);
    })
    .await;
}

/// One four-minute session around midnight UTC (08:00 in Shanghai): an offer made by an event
/// (stamped +08:00) and one made through the API a minute before it (stamped UTC, the day
/// before by UTC) fall on the operator's same calendar day.
#[tokio::test]
async fn daily_statistics_follow_the_operators_calendar_whatever_made_the_offer() {
    on_both(async |t| {
        let w = world(t).await;
        let from_event = rec(
            10,
            "8613900001001",
            "roaming",
            None,
            "sms",
            Status::Sent,
            "2026-12-03T07:58:00+08:00",
        );
        let from_api = rec(
            11,
            "8613900001001",
            "roaming",
            None,
            "portal",
            Status::Sent,
            "2026-12-02T23:57:00Z",
        );
        t.store_rec(&from_event).await;
        t.store_rec(&from_api).await;
        let by_day = t
            .get(&w.marketer.token, "/api/v1/stats/offers")
            .await
            .expect(200);
        assert_eq!(rows(&by_day), pairs(&[("2026-12-03", 2)]), "{by_day}");
        assert_eq!(
            by_day["time_zone"], "Asia/Shanghai",
            "the days are the operator's"
        );
        let only = t
            .get(
                &w.marketer.token,
                "/api/v1/stats/offers?from=2026-12-03&to=2026-12-03",
            )
            .await
            .expect(200);
        assert_eq!(rows(&only), pairs(&[("2026-12-03", 2)]));
    })
    .await;
}
