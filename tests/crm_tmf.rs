//! TMF680 queryProductRecommendation and TMF681 communicationMessage round trips.

use crate::common;
use crate::real_engine;

use common::on_both;
use common::world::world;
use kairos::ports::{Recommendation, Status};
use real_engine::on_both_engine;
use serde_json::json;

const TMF680: &str = "/tmf-api/recommendationManagement/v4/queryProductRecommendation";
const TMF681: &str = "/tmf-api/communicationManagement/v4/communicationMessage";

/// TMF routes answer TMF `Error` bodies: the field is named at the start of `message`.
trait TmfField {
    fn expect_tmf_field(self, field: &str);
}

impl TmfField for common::Resp {
    #[track_caller]
    fn expect_tmf_field(self, field: &str) {
        assert_eq!(self.status, 400, "expected 400; body: {}", self.body);
        assert_eq!(self.body["@type"], "Error", "body: {}", self.body);
        let message = self.body["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!("{field}: ")),
            "body: {}",
            self.body
        );
    }
}

fn offer(
    id: &str,
    msisdn: &str,
    code: &str,
    channel: &str,
    score: f64,
    status: Status,
    valid_days: i64,
) -> Recommendation {
    let now = chrono::Utc::now().fixed_offset();
    Recommendation {
        id: id.into(),
        msisdn: msisdn.parse().unwrap(),
        rule_id: "roaming".into(),
        offer_code: code.into(),
        channel: channel.into(),
        message: "m".into(),
        score,
        trigger_event_id: Some("e1".into()),
        campaign_id: None,
        request_id: None,
        decided_at: now,
        expires_at: now + chrono::Duration::days(valid_days),
        not_before: None,
        status,
        reason: None,
        explanation: None,
        service: false,
    }
}

#[tokio::test]
async fn tmf680_recommends_ranked_current_offers_for_a_party() {
    on_both(async |t| {
        let w = world(t).await;
        let po = t
            .post(
                t.admin(),
                "/api/v1/catalog/offerings",
                json!({"code": "ROAM_JP", "name": "Japan roaming pass", "offering_type": "addon", "price_cents": 3000}),
            )
            .await
            .expect(201);
        {
            let mut recs = t.offers.recs.lock().unwrap();
            recs.push(offer("r-low", "8613900001001", "DATA10", "sms", 0.4, Status::Sent, 3));
            recs.push(offer("r-high", "8613900001001", "ROAM_JP", "portal", 0.9, Status::Queued, 3));
            recs.push(offer("r-old", "8613900001001", "OLD", "sms", 0.99, Status::Sent, -1));
            recs.push(offer("r-supp", "8613900001001", "NOPE", "sms", 0.95, Status::Suppressed, 3));
            recs.push(offer("r-c3", "8613900001003", "DATA10", "sms", 0.5, Status::Sent, 3));
        }
        let q = t
            .post(
                &w.agent.token,
                TMF680,
                json!({"name": "at the counter", "relatedParty": {"id": w.c1, "@referredType": "Customer"}, "@type": "QueryProductRecommendation"}),
            )
            .await
            .expect(201);
        assert_eq!(q["state"], "done");
        assert_eq!(q["instantSyncRecommendation"], true);
        assert_eq!(q["@type"], "QueryProductRecommendation");
        let qid = q["id"].as_str().unwrap();
        assert_eq!(q["href"], format!("{TMF680}/{qid}"));
        let items = q["recommendationItem"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{q}");
        assert_eq!(items[0]["id"], "r-high");
        assert_eq!(items[0]["priority"], 1);
        // One rule for the id: the offer code, whether the catalog has it (then with its
        // href and name) or not.
        assert_eq!(items[0]["productOffering"]["id"], po["code"]);
        assert_eq!(
            items[0]["productOffering"]["href"],
            format!("/api/v1/catalog/offerings/{}", po["code"].as_str().unwrap())
        );
        assert_eq!(items[0]["productOffering"]["name"], "Japan roaming pass");
        assert_eq!(items[1]["priority"], 2);
        assert_eq!(items[1]["productOffering"]["id"], "DATA10");
        assert!(items[1]["productOffering"].get("href").is_none());

        // Stored: GET by id answers the same; the list has it.
        let again = t.get(&w.agent.token, &format!("{TMF680}/{qid}")).await.expect(200);
        assert_eq!(again, q);
        let list = t.get(&w.agent.token, TMF680).await.expect(200);
        assert_eq!(list.as_array().unwrap().len(), 1);

        // By MSISDN, filtered by channel.
        let by_line = t
            .post(
                t.admin(),
                TMF680,
                json!({"relatedParty": [{"id": "8613900001001"}], "channel": [{"id": "sms"}]}),
            )
            .await
            .expect(201);
        let items = by_line["recommendationItem"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["id"], "r-low");

        // Scope: am3 (West) neither queries c1 nor reads the stored query; no PATCH exists.
        t.post(&w.am3.token, TMF680, json!({"relatedParty": [{"id": w.c1}]}))
            .await
            .expect(404);
        t.get(&w.am3.token, &format!("{TMF680}/{qid}")).await.expect(404);
        let mine = t.get(&w.am3.token, TMF680).await.expect(200);
        assert_eq!(mine.as_array().unwrap().len(), 0);
        assert_eq!(
            t.patch(t.admin(), &format!("{TMF680}/{qid}"), json!({"state": "accepted"})).await.status,
            405
        );

        // Validation.
        t.post(t.admin(), TMF680, json!({"name": "x"})).await.expect_tmf_field("relatedParty");
        t.post(t.admin(), TMF680, json!({"relatedParty": [{"name": "no id"}]}))
            .await
            .expect_tmf_field("relatedParty.id");
        t.post(t.admin(), TMF680, json!({"relatedParty": [{"id": w.c1}], "channel": [{"id": "fax"}]}))
            .await
            .expect_tmf_field("channel[0].id");
        t.post(t.admin(), TMF680, json!({"relatedParty": [{"id": "nobody"}]})).await.expect(404);
        t.post(&w.ent_admin.token, TMF680, json!({"relatedParty": [{"id": w.c1}]}))
            .await
            .expect(403);
    })
    .await;
}

/// "TD" (回复TD退订) in reply to an SMS: the offer it answers is declined, the customer's
/// refusal of SMS marketing is recorded as a consent (audited, sourced to the reply), and
/// the engine stops marketing to the number at once. A repeat changes nothing; a number no
/// customer has is answered without a record.
#[tokio::test]
async fn a_stop_word_in_an_sms_reply_records_the_opt_out_and_the_engine_honours_it() {
    on_both_engine(async |t| {
        let w = world(t).await;
        let msg = |phone: &str| {
            json!({"content": "20 GB for 30 yuan, reply Y to buy, TD to stop", "messageType": "SMS",
                "sender": {"id": "10086", "name": "Kairos"},
                "receiver": [{"phoneNumber": phone}], "@type": "CommunicationMessage"})
        };
        let rec_of = |m: &serde_json::Value| {
            m["characteristic"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == "recommendationId")
                .map(|c| c["value"].as_str().unwrap().to_string())
                .expect("recommendation id")
        };
        let sent = t
            .post(t.admin(), TMF681, msg("8613900001001"))
            .await
            .expect(201);
        let rec_id = rec_of(&sent);
        let status = async |id: &str| -> String {
            sqlx::query_scalar("SELECT status FROM recommendations WHERE id = $1")
                .bind(id)
                .fetch_one(&t.app.state.db.pool)
                .await
                .unwrap()
        };
        for _ in 0..100 {
            if status(&rec_id).await == "sent" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(status(&rec_id).await, "sent");
        let path = t
            .get(t.admin(), "/api/v1/channels/sms/mo-url")
            .await
            .expect(200)["path"]
            .as_str()
            .unwrap()
            .to_string();
        let token = path.rsplit_once("token=").unwrap().1.to_string();
        let mo = async |from: &str, text: &str| {
            let text: String = text
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            t.call(
                reqwest::Method::GET,
                &format!("/api/v1/channels/sms/mo?from={from}&text={text}&token={token}"),
                None,
                None,
                None,
            )
            .await
            .expect(200)
        };
        let r = mo("8613900001001", "TD").await;
        assert_eq!(r, json!({"recommendation_id": rec_id, "opted_out": true}));
        let rec = t
            .get(t.admin(), &format!("/api/v1/recommendations/{rec_id}"))
            .await
            .expect(200);
        assert_eq!(
            (rec["status"].as_str(), rec["reason"].as_str()),
            (Some("declined"), Some("reply: TD")),
            "{rec}"
        );
        let consents = t
            .get(t.admin(), &format!("/api/v1/customers/{}/consents", w.c1))
            .await
            .expect(200);
        let items = consents["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{consents}");
        assert_eq!(
            (
                &items[0]["channel"],
                &items[0]["purpose"],
                &items[0]["granted"],
                &items[0]["source"]
            ),
            (
                &json!("sms"),
                &json!("marketing"),
                &json!(false),
                &json!("sms reply: TD")
            ),
            "{consents}"
        );
        let (actor,): (String,) = sqlx::query_as(
            "SELECT actor_id FROM audit_log WHERE entity = 'consent' AND entity_id = $1",
        )
        .bind(items[0]["id"].as_str().unwrap())
        .fetch_one(&t.app.state.db.pool)
        .await
        .unwrap();
        assert_eq!(actor, "system:sms-reply");

        // The engine heard: the next marketing SMS to the number is suppressed.
        let refused = t
            .post(t.admin(), TMF681, msg("8613900001001"))
            .await
            .expect(201);
        assert_eq!(refused["state"], "failed", "{refused}");
        assert_eq!(status(&rec_of(&refused)).await, "suppressed");
        // Said again (in Chinese), nothing more is written; the other customer is untouched.
        let r = mo("8613900001001", "退订").await;
        assert_eq!(r, json!({"recommendation_id": null, "opted_out": true}));
        let again = t
            .get(t.admin(), &format!("/api/v1/customers/{}/consents", w.c1))
            .await
            .expect(200);
        assert_eq!(again["items"], consents["items"]);
        let other = t
            .post(t.admin(), TMF681, msg("8613900001002"))
            .await
            .expect(201);
        assert_ne!(other["state"], "failed", "{other}");
        // A number no customer has: answered, nothing to record it on.
        let r = mo("8613999999999", "STOP").await;
        assert_eq!(r, json!({"recommendation_id": null, "opted_out": false}));
    })
    .await;
}

#[tokio::test]
async fn tmf681_messages_go_through_the_engine_with_caps_and_opt_outs() {
    on_both_engine(async |t| {
        let w = world(t).await;
        t.post(
            t.admin(),
            &format!("/api/v1/customers/{}/consents", w.c2),
            json!({"channel": "sms", "purpose": "marketing", "granted": false}),
        )
        .await
        .expect(201);
        let msg = |phone: &str| {
            json!({"content": "Your bill is ready", "messageType": "SMS", "sender": {"id": "10086", "name": "Kairos"},
                "receiver": [{"phoneNumber": phone}], "@type": "CommunicationMessage"})
        };

        let sent = t.post(&w.am1.token, TMF681, msg("8613900001001")).await.expect(201);
        // Completed once a channel took it; in progress while it waits in the outbox.
        assert!(matches!(sent["state"].as_str(), Some("inProgress" | "completed")), "{sent}");
        assert_eq!(sent["@type"], "CommunicationMessage");
        assert_eq!(sent["tryTimes"], 1);
        let id = sent["id"].as_str().unwrap().to_string();
        assert_eq!(sent["href"], format!("{TMF681}/{id}"));
        let rec_id = sent["characteristic"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "recommendationId")
            .map(|c| c["value"].as_str().unwrap().to_string())
            .expect("recommendation id");
        let (rule, status): (String, String) =
            sqlx::query_as("SELECT rule_id, status FROM recommendations WHERE id = $1")
                .bind(&rec_id)
                .fetch_one(&t.app.state.db.pool)
                .await
                .unwrap();
        assert_eq!(rule, "tmf681");
        assert!(matches!(status.as_str(), "queued" | "sent" | "delivered"), "{status}");
        let read = t.get(&w.am1.token, &format!("{TMF681}/{id}")).await.expect(200);
        assert_eq!(read, sent);

        // Opted out of SMS marketing: the engine suppresses it, the message fails.
        let refused = t.post(t.admin(), TMF681, msg("8613900001002")).await.expect(201);
        assert_eq!(refused["state"], "failed", "{refused}");
        assert!(refused["characteristic"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "statusReason" && c["value"] == "opt_out"));

        // Sent messages cannot be changed or deleted.
        t.delete(&w.am1.token, &format!("{TMF681}/{id}")).await.expect(409);
        t.patch(&w.am1.token, &format!("{TMF681}/{id}"), json!({"content": "x"}))
            .await
            .expect(409);

        // A scheduled message stays initial, can be edited, then deleted (audited).
        let later = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
        let mut body = msg("8613900001001");
        body["scheduledSendTime"] = json!(later);
        let sched = t.post(&w.am1.token, TMF681, body).await.expect(201);
        assert_eq!(sched["state"], "initial");
        let sid = sched["id"].as_str().unwrap().to_string();
        let edited = t
            .patch(&w.am1.token, &format!("{TMF681}/{sid}"), json!({"content": "Bill ready (updated)"}))
            .await
            .expect(200);
        assert_eq!(edited["content"], "Bill ready (updated)");
        assert_eq!(edited["state"], "initial");
        t.patch(&w.am1.token, &format!("{TMF681}/{sid}"), json!({"state": "completed"}))
            .await
            .expect_tmf_field("state");
        t.get(&w.am3.token, &format!("{TMF681}/{sid}")).await.expect(404);
        t.delete(&w.am3.token, &format!("{TMF681}/{sid}")).await.expect(404);
        let gone = t.delete(&w.am1.token, &format!("{TMF681}/{sid}")).await;
        assert_eq!(gone.status, 204, "{}", gone.body);
        t.get(&w.am1.token, &format!("{TMF681}/{sid}")).await.expect(404);
        let audit = t
            .get(t.admin(), &format!("/api/v1/audit?entity=communication_message&entity_id={sid}&action=delete"))
            .await
            .expect(200);
        assert_eq!(audit["total"], 1, "{audit}");

        // A second scheduled message is sent now through PATCH state=inProgress.
        let mut body = msg("8613900001001");
        body["scheduledSendTime"] = json!(later);
        body["content"] = json!("second");
        let s2 = t.post(&w.am1.token, TMF681, body).await.expect(201);
        let now = t
            .patch(&w.am1.token, &format!("{TMF681}/{}", s2["id"].as_str().unwrap()), json!({"state": "inProgress"}))
            .await
            .expect(200);
        assert!(matches!(now["state"].as_str(), Some("inProgress" | "completed" | "failed")), "{now}");

        // Lists are scoped: am3 sees none of these.
        let all = t.get(t.admin(), TMF681).await.expect(200);
        assert_eq!(all.as_array().unwrap().len(), 3);
        let am3 = t.get(&w.am3.token, TMF681).await.expect(200);
        assert_eq!(am3.as_array().unwrap().len(), 0);
        let failed = t.get(t.admin(), &format!("{TMF681}?state=failed")).await.expect(200);
        assert!(!failed.as_array().unwrap().is_empty());

        // Validation names the field; scope and permissions.
        let admin = t.admin();
        for (drop, field) in [("content", "content"), ("messageType", "messageType"), ("sender", "sender"), ("receiver", "receiver")] {
            let mut b = msg("8613900001001");
            b.as_object_mut().unwrap().remove(drop);
            t.post(admin, TMF681, b).await.expect_tmf_field(field);
        }
        let mut b = msg("8613900001001");
        b["messageType"] = json!("pigeon");
        t.post(admin, TMF681, b).await.expect_tmf_field("messageType");
        let mut b = msg("8613900001001");
        b["receiver"] = json!([{"email": "a@b.cn"}]);
        t.post(admin, TMF681, b).await.expect_tmf_field("receiver[0].phoneNumber");
        let mut b = msg("8613900001001");
        b["scheduledSendTime"] = json!("tomorrow");
        t.post(admin, TMF681, b).await.expect_tmf_field("scheduledSendTime");
        t.post(&w.am3.token, TMF681, msg("8613900001001")).await.expect(404);
        t.post(admin, TMF681, msg("8613999999999")).await.expect(404);
        t.post(&w.agent.token, TMF681, msg("8613900001001")).await.expect(403);
    })
    .await;
}

#[tokio::test]
async fn tmf681_service_messages_are_not_held_by_marketing_caps() {
    on_both_engine(async |t| {
        let w = world(t).await;
        let msg = |category: Option<&str>| {
            let mut m = json!({"content": "Your bill is ready", "messageType": "SMS",
                "sender": {"id": "10086", "name": "Kairos"},
                "receiver": [{"phoneNumber": "8613900001003"}], "@type": "CommunicationMessage"});
            if let Some(c) = category {
                m["characteristic"] = json!([{"name": "category", "value": c}]);
            }
            m
        };
        let state = |m: &serde_json::Value| m["state"].as_str().unwrap().to_string();
        // Five bills in a day: none is marketing, none meets the daily cap (3).
        for i in 0..5 {
            let m = t
                .post(t.admin(), TMF681, msg(Some("service")))
                .await
                .expect(201);
            assert_ne!(state(&m), "failed", "bill {i}: {m}");
        }
        // Marketing messages to the same line are capped as before: the fourth is held.
        let mut states = Vec::new();
        for _ in 0..4 {
            states.push(state(
                &t.post(t.admin(), TMF681, msg(None)).await.expect(201),
            ));
        }
        assert_ne!(states[2], "failed", "{states:?}");
        assert_eq!(states[3], "failed", "{states:?}");
        // The bills are stored as service messages and are not offers in the statistics:
        // only the four marketing messages are counted.
        let recs = t
            .get(
                t.admin(),
                "/api/v1/recommendations?msisdn=8613900001003&limit=50",
            )
            .await
            .expect(200);
        let items = recs["items"].as_array().unwrap();
        let service = items.iter().filter(|r| r["service"] == true).count();
        assert_eq!((items.len(), service), (9, 5), "{recs}");
        let stats = t
            .get(&w.marketer.token, "/api/v1/stats/offers?group_by=channel")
            .await
            .expect(200);
        let decided: i64 = stats["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["decided"].as_i64().unwrap())
            .sum();
        assert_eq!(decided, 4, "{stats}");
    })
    .await;
}
