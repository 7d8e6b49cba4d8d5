//! The agent desktop's API: opening a customer is a visit the engine decides on, offers come
//! with their reasons, new ones are pushed live within the agent's data scope, and an agent
//! offer is `delivered` only once an agent's page has shown it.

use std::time::Duration;

use kairos::channels::Channel;
use serde_json::{json, Value};

use crate::common::{self, TestApp};

/// The world fixture's East customer (the East agent may see it) and West customer.
const EAST: &str = "8613900001001";
const WEST: &str = "8613900001003";

async fn status(t: &TestApp, id: &str) -> String {
    t.get(t.admin(), &format!("/api/v1/recommendations/{id}"))
        .await
        .expect(200)["status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Waits for the deliverer to record the channel's send.
async fn until_status(t: &TestApp, id: &str, want: &str) {
    for _ in 0..100 {
        if status(t, id).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} never became {want}: {}", status(t, id).await);
}

#[tokio::test]
async fn opening_a_customer_decides_offers_delivered_only_when_seen() {
    common::on_both(async |t| {
        let w = common::world::world(t).await;
        let v = t
            .post(
                &w.agent.token,
                "/api/v1/agent/visits",
                json!({"msisdn": EAST}),
            )
            .await
            .expect(200);
        assert!(
            v["event_id"].as_str().unwrap().starts_with("visit-agent-"),
            "{v}"
        );
        let offers = v["offers"].as_array().unwrap();
        let o = offers
            .iter()
            .find(|o| o["rule_id"] == "visit-best-offer")
            .unwrap_or_else(|| panic!("the visit rule decided: {v}"));
        assert_eq!(o["channel"], "agent");
        assert!(
            o["rule_name"].as_str().is_some_and(|n| !n.is_empty()),
            "{o}"
        );
        let kinds: Vec<&str> = o["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        for k in ["rule", "description", "priority", "score"] {
            assert!(kinds.contains(&k), "{k} in {kinds:?}");
        }
        let id = o["id"].as_str().unwrap();
        // Handed to the desk channel: available, but nobody has seen it yet.
        until_status(t, id, "sent").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(status(t, id).await, "sent");
        let seen = t
            .post(
                &w.agent.token,
                &format!("/api/v1/agent/offers/{id}/seen"),
                json!({}),
            )
            .await
            .expect(200);
        assert_eq!(seen["status"], "delivered");
        let listed = t
            .get(
                &w.agent.token,
                &format!("/api/v1/agent/subscribers/{EAST}/offers"),
            )
            .await
            .expect(200);
        assert!(
            listed["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["id"] == id),
            "{listed}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_desk_keeps_role_and_data_scope() {
    common::on_both(async |t| {
        let w = common::world::world(t).await;
        // A line outside the agent's region looks like an unknown one.
        t.post(
            &w.agent.token,
            "/api/v1/agent/visits",
            json!({"msisdn": WEST}),
        )
        .await
        .expect(404);
        t.get(
            &w.agent.token,
            &format!("/api/v1/agent/subscribers/{WEST}/offers"),
        )
        .await
        .expect(404);
        let s = t
            .http
            .get(format!("{}/api/v1/agent/subscribers/{WEST}/stream", t.base))
            .bearer_auth(&w.agent.token)
            .send()
            .await
            .unwrap();
        assert_eq!(s.status(), 404);
        let mut west = common::sms_rec("ag-west", WEST);
        west.channel = "agent".into();
        t.store_rec(&west).await;
        t.post(
            &w.agent.token,
            "/api/v1/agent/offers/ag-west/seen",
            json!({}),
        )
        .await
        .expect(404);
        assert_eq!(status(t, "ag-west").await, "sent");
        // Only agent-channel offers are marked seen by the desk.
        t.store_rec(&common::sms_rec("sms-east", EAST)).await;
        t.post(
            &w.agent.token,
            "/api/v1/agent/offers/sms-east/seen",
            json!({}),
        )
        .await
        .expect(404);
        // Who may not read recommendations may not use the desk.
        t.post(
            &w.ent_admin.token,
            "/api/v1/agent/visits",
            json!({"msisdn": EAST}),
        )
        .await
        .expect(403);
        let r = t
            .call(
                reqwest::Method::POST,
                "/api/v1/agent/visits",
                None,
                Some(json!({"msisdn": EAST})),
                None,
            )
            .await;
        assert_eq!(r.status, 401);
    })
    .await;
}

#[tokio::test]
async fn new_offers_are_pushed_to_the_desk_that_has_the_customer_open() {
    common::on_both(async |t| {
        let w = common::world::world(t).await;
        let mut stream = t
            .http
            .get(format!("{}/api/v1/agent/subscribers/{EAST}/stream", t.base))
            .bearer_auth(&w.agent.token)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        let mut other = common::sms_rec("ag-other", "8613900001002");
        other.channel = "agent".into();
        let mut mine = common::sms_rec("ag-mine", EAST);
        mine.channel = "agent".into();
        mine.rule_id = "complaint-care".into();
        for r in [&other, &mine] {
            t.store_rec(r).await;
            t.app.state.channels.agent.send(r).await.unwrap();
        }
        let mut got = String::new();
        while !got.contains("ag-mine") {
            let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
                .await
                .expect("pushed within 5s")
                .unwrap()
                .unwrap();
            got.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(!got.contains("ag-other"), "{got}");
        let data = got
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .expect("a data line");
        let offer: Value = serde_json::from_str(data).unwrap();
        assert_eq!(offer["id"], "ag-mine");
        assert_eq!(offer["rule_name"], "Care message after a complaint");
        // Pushing is not seeing.
        assert_eq!(status(t, "ag-mine").await, "sent");
    })
    .await;
}
