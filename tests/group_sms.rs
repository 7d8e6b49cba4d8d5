//! An enterprise's group SMS (seed 004): one text to its members through the decision stage
//! and the SMS outbox, within consent, scope and retries.

use serde_json::json;

use crate::common::world::world;
use crate::real_engine::on_both_engine;

#[tokio::test]
async fn an_enterprise_messages_its_members_within_consent_and_scope() {
    on_both_engine(async |t| {
        let w = world(t).await;
        // c2's line opted out of SMS marketing.
        t.post(
            t.admin(),
            &format!("/api/v1/customers/{}/consents", w.c2),
            json!({"channel": "sms", "purpose": "marketing", "granted": false}),
        )
        .await
        .expect(201);
        let members = format!("/api/v1/customers/{}/members", w.ent);
        let mut ids = Vec::new();
        for (name, msisdn, dept) in [
            ("Zhang", "8613900001001", "sales"),
            ("Wang", "8613900001002", "sales"),
            ("Liu", "8613900001003", "ops"),
        ] {
            // Employees' personal lines (c1..c3's), enrolled by the operator's staff: an
            // enterprise admin may only add the enterprise's own lines.
            let m = t
                .post(
                    t.admin(),
                    &members,
                    json!({"name": name, "msisdn": msisdn, "department": dept}),
                )
                .await
                .expect(201);
            ids.push(m["id"].as_str().unwrap().to_string());
        }
        let suspended = t
            .post(
                t.admin(),
                &members,
                json!({"name": "Gone", "msisdn": "8613900001004", "status": "suspended"}),
            )
            .await
            .expect(201);
        let send = format!("{members}/messages");
        let text = "明天上午9点全员会议，请准时参加。";

        // The department's two active members: one goes out, one is held by the opt-out.
        let r = t
            .post(
                &w.ent_admin.token,
                &send,
                json!({"text": text, "department": "sales"}),
            )
            .await
            .expect(200);
        assert_eq!(r["members"], 2, "{r}");
        assert_eq!(r["going_out"], 1, "{r}");
        assert_eq!(r["held"]["opt_out"], 1, "{r}");
        let zhang = r["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["msisdn"] == "8613900001001")
            .unwrap();
        let rec_id = zhang["recommendation_id"].as_str().unwrap().to_string();
        let rec = t
            .get(t.admin(), &format!("/api/v1/recommendations/{rec_id}"))
            .await
            .expect(200);
        assert_eq!(rec["message"], text);
        assert_eq!(rec["channel"], "sms");
        assert_eq!(rec["rule_id"], "enterprise-group-sms");
        // It reaches the SMS outbox (the embedded default) once.
        let mut outbox = serde_json::Value::Null;
        for _ in 0..100 {
            outbox = t
                .get(t.admin(), "/api/v1/channels/sms/outbox?to=8613900001001")
                .await
                .expect(200);
            if outbox["items"].as_array().is_some_and(|a| !a.is_empty()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let sent: Vec<_> = outbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["text"] == text)
            .collect();
        assert_eq!(sent.len(), 1, "{outbox}");

        // A retry with the same key sends nothing twice and answers the same.
        let body = json!({"text": "Reminder: meeting at 9", "member_ids": [ids[2]]});
        let post = |token: &str| {
            t.http
                .post(format!("{}{send}", t.base))
                .bearer_auth(token.to_string())
                .header("Idempotency-Key", "meeting-1")
                .json(&body)
                .send()
        };
        let first: serde_json::Value = post(&w.am1.token).await.unwrap().json().await.unwrap();
        let again: serde_json::Value = post(&w.am1.token).await.unwrap().json().await.unwrap();
        let first_id = first["items"][0]["recommendation_id"].clone();
        assert!(first_id.is_string(), "{first}");
        assert_eq!(first_id, again["items"][0]["recommendation_id"]);
        assert_ne!(again["items"][0]["status"], "suppressed", "{again}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let liu = t
            .get(t.admin(), "/api/v1/channels/sms/outbox?to=8613900001003")
            .await
            .expect(200);
        let n = liu["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["text"] == "Reminder: meeting at 9")
            .count();
        assert_eq!(n, 1, "sent once: {liu}");

        // Bad selections are named; other enterprises and roles without the right get nothing.
        t.post(
            &w.ent_admin.token,
            &send,
            json!({"text": "x", "member_ids": [suspended["id"]]}),
        )
        .await
        .expect_field("member_ids");
        t.post(
            &w.ent_admin.token,
            &send,
            json!({"text": "", "member_ids": [ids[0]]}),
        )
        .await
        .expect_field("text");
        t.post(&w.ent_admin.token, &send, json!({"text": "长".repeat(671)}))
            .await
            .expect_field("text");
        let theirs = format!("/api/v1/customers/{}/members/messages", w.other_ent);
        t.post(&w.ent_admin.token, &theirs, json!({"text": "hi"}))
            .await
            .expect(404);
        t.post(&w.agent.token, &send, json!({"text": "hi"}))
            .await
            .expect(403);
    })
    .await;
}
