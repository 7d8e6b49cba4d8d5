//! Interaction history (TMF683-like): one timeline per customer merging offers, responses,
//! recorded interactions, service requests, opportunity follow-ups and retention activities.

use crate::common;

use common::on_both;
use common::world::{id, world};
use kairos::ports::{Recommendation, Status};
use serde_json::{json, Value};

fn rec(id: &str, msisdn: &str, at: &str, status: Status) -> Recommendation {
    common::offer(id, msisdn, at, status)
}

fn sources(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["source"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn one_timeline_newest_first_paged_and_scoped() {
    on_both(async |t| {
        let w = world(t).await;
        // Engine offers on c1's line (decided in +08:00), one on c2's line.
        t.offers.recs.lock().unwrap().extend([
            rec("o-old", "8613900001001", "2026-11-01T10:00:00+08:00", Status::Declined),
            rec("o-new", "8613900001001", "2026-11-21T10:00:00+08:00", Status::Accepted),
            rec("o-c2", "8613900001002", "2026-11-22T10:00:00+08:00", Status::Sent),
        ]);
        // A response recorded by the engine.
        sqlx::query("INSERT INTO offer_responses (id, recommendation_id, msisdn, outcome, reason, actor, channel, responded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind("resp-1").bind("o-new").bind("8613900001001").bind("accepted").bind(Option::<String>::None)
            .bind("portal").bind("sms").bind("2026-11-21T03:00:00.000Z")
            .execute(&t.app.state.db.pool).await.unwrap();

        // Recorded interactions: a visit in the past (local time), a complaint now.
        t.post(&w.am1.token, "/api/v1/interactions", json!({"customer_id": w.c3, "kind": "call", "subject": "x"})).await.expect_field("customer_id");
        t.post(&w.ent_admin.token, "/api/v1/interactions", json!({"customer_id": w.ent, "kind": "call", "subject": "x"})).await.expect(403);
        t.post(&w.am1.token, "/api/v1/interactions", json!({"customer_id": w.c1, "kind": "fax", "subject": "x"})).await.expect_field("kind");
        t.post(&w.am1.token, "/api/v1/interactions", json!({"customer_id": w.c1, "kind": "visit", "direction": "outbound", "subject": "Store visit", "at": "2026-11-10T10:00:00+08:00"})).await.expect(201);
        let c = t.post(&w.agent.token, "/api/v1/interactions", json!({"customer_id": w.c1, "kind": "complaint", "channel": "call", "subject": "Dropped calls at home", "note": "since Monday"})).await.expect(201);
        assert_eq!(c["direction"], "inbound");
        assert_eq!(c["actor_id"], w.agent.id.as_str());
        // The visit and the complaint reached the engine as events on the customer's lines.
        let evs = t.events.take();
        let kinds: Vec<&str> = evs.iter().map(|e| e.kind.as_str()).collect();
        assert!(kinds.contains(&"visit") && kinds.contains(&"complaint"), "{kinds:?}");
        let complaint = evs.iter().find(|e| e.kind.as_str() == "complaint").unwrap();
        assert_eq!(complaint.attr("category").and_then(|v| v.as_str()), Some("Dropped calls at home"));
        // A service request, an opportunity follow-up, a retention activity.
        t.post(&w.agent.token, "/api/v1/service-requests", json!({"customer_id": w.c1, "request_type": "fault_report", "title": "No signal at home"})).await.expect(201);
        let o = t.post(&w.am1.token, "/api/v1/opportunities", json!({"customer_id": w.c1, "title": "Home broadband"})).await.expect(201);
        t.post(&w.am1.token, &format!("/api/v1/opportunities/{}/follow-ups", id(&o)), json!({"kind": "call", "note": "interested"})).await.expect(201);
        // The complaint opened a retention case for the account manager by itself.
        let cases = t.get(&w.am1.token, &format!("/api/v1/retention-cases?customer_id={}&trigger_kind=complaint", w.c1)).await.expect(200);
        assert_eq!(cases["total"], 1, "{cases}");
        let k = cases["items"][0].clone();
        assert_eq!(k["owner_id"], w.am1.id.as_str());
        t.post(&w.am1.token, "/api/v1/retention-cases", json!({"customer_id": w.c1, "trigger_kind": "complaint", "summary": "dropped calls"})).await.expect(409);
        t.post(&w.am1.token, &format!("/api/v1/retention-cases/{}/activities", id(&k)), json!({"kind": "call_back", "note": "called back, engineer booked"})).await.expect(201);

        let path = format!("/api/v1/customers/{}/interactions", w.c1);
        let all = t.get(&w.am1.token, &path).await.expect(200);
        assert_eq!(all["total"], 8, "{all}");
        let items = all["items"].as_array().unwrap();
        assert_eq!(items.len(), 8);
        // Newest first across sources.
        let ats: Vec<&str> = items.iter().map(|i| i["at"].as_str().unwrap()).collect();
        let mut sorted = ats.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(ats, sorted);
        // The four written now come first; then the response, the new offer, the visit, the old offer.
        assert_eq!(
            sources(&all)[4..],
            ["offer_response", "recommendation", "interaction", "recommendation"]
        );
        let mut recent = sources(&all)[..4].to_vec();
        recent.sort();
        assert_eq!(recent, ["interaction", "opportunity_follow_up", "retention_activity", "service_request"]);
        let offer = items.iter().find(|i| i["id"] == "o-new").unwrap();
        assert_eq!(offer["status"], "accepted");
        assert_eq!(offer["at"], "2026-11-21T02:00:00.000Z");
        assert_eq!(offer["msisdn"], "8613900001001");
        let visit = items.iter().find(|i| i["kind"] == "visit").unwrap();
        assert_eq!(visit["at"], "2026-11-10T02:00:00.000Z");
        assert!(!items.iter().any(|i| i["id"] == "o-c2"));

        // Paging cuts the same order.
        let page = t.get(&w.am1.token, &format!("{path}?limit=3&offset=2")).await.expect(200);
        let ids: Vec<&Value> = page["items"].as_array().unwrap().iter().map(|i| &i["id"]).collect();
        let want: Vec<&Value> = items[2..5].iter().map(|i| &i["id"]).collect();
        assert_eq!(ids, want);
        assert_eq!(page["total"], 8);
        let only = t.get(&w.am1.token, &format!("{path}?source=recommendation")).await.expect(200);
        assert_eq!(sources(&only), ["recommendation", "recommendation"]);
        let only = t.get(&w.am1.token, &format!("{path}?source=interaction&limit=1")).await.expect(200);
        assert_eq!(only["total"], 2);
        assert_eq!(only["items"][0]["kind"], "complaint");
        t.get(&w.am1.token, &format!("{path}?source=gossip")).await.expect_field("source");
        t.get(&w.am1.token, &format!("{path}?limit=0")).await.expect_field("limit");
        t.get(&w.am1.token, &format!("{path}?colour=red")).await.expect_field("colour");

        // Scope.
        t.get(&w.am2.token, &path).await.expect(404);
        t.get(&w.agent.token, &path).await.expect(200);

        // The 360 view shows the last interactions.
        let v = t.get(&w.am1.token, &format!("/api/v1/customers/{}/view", w.c1)).await.expect(200);
        assert_eq!(v["interactions"].as_array().unwrap().len(), 6);
        assert_eq!(v["open_requests"].as_array().unwrap().len(), 1);
        assert_eq!(v["opportunities"].as_array().unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn knowledge_base_and_announcements() {
    on_both(async |t| {
        let w = world(t).await;
        t.post(&w.am1.token, "/api/v1/knowledge", json!({"category": "script", "title": "x", "body": "y"})).await.expect(403);
        let a = t
            .post(&w.marketer.token, "/api/v1/knowledge", json!({"category": "script", "title": "Retention script: port-out threats", "body": "Acknowledge, then offer the loyalty bundle.", "tags": ["Retention", "script"]}))
            .await
            .expect(201);
        assert_eq!(a["tags"], json!(["retention", "script"]));
        t.post(&w.marketer.token, "/api/v1/knowledge", json!({"category": "product", "title": "5G 套餐 129", "body": "100 GB 流量, 1000 分钟", "tags": ["5g"]})).await.expect(201);
        t.post(&w.marketer.token, "/api/v1/knowledge", json!({"category": "case", "title": "Factory park win", "body": "Closed 300 lines with a 100% discount trial", "tags": ["enterprise"]})).await.expect(201);
        t.post(&w.marketer.token, "/api/v1/knowledge", json!({"category": "memo", "title": "x", "body": "y"})).await.expect_field("category");

        // Everyone authenticated reads and searches.
        let q = |s: &str| format!("/api/v1/knowledge?{s}");
        assert_eq!(t.get(&w.agent.token, &q("q=LOYALTY")).await.expect(200)["total"], 1);
        assert_eq!(t.get(&w.agent.token, &q("q=套餐")).await.expect(200)["total"], 1);
        assert_eq!(t.get(&w.agent.token, &q("q=100")).await.expect(200)["total"], 2);
        // `%` is matched literally, not as a wildcard.
        assert_eq!(t.get(&w.agent.token, &q("q=100%25")).await.expect(200)["total"], 1);
        assert_eq!(t.get(&w.agent.token, &q("q=100%25%20disc")).await.expect(200)["total"], 1);
        assert_eq!(t.get(&w.ent_admin.token, &q("tag=retention")).await.expect(200)["total"], 1);
        assert_eq!(t.get(&w.agent.token, &q("tag=script&category=script")).await.expect(200)["total"], 1);
        assert_eq!(t.get(&w.agent.token, &q("tag=scr")).await.expect(200)["total"], 0);
        t.get(&w.agent.token, &q("colour=red")).await.expect_field("colour");
        t.call(reqwest::Method::GET, "/api/v1/knowledge", None, None, None).await.expect(401);

        let p = format!("/api/v1/knowledge/{}", id(&a));
        let a2 = t.patch(&w.marketer.token, &p, json!({"tags": ["retention"], "version": 1})).await.expect(200);
        assert_eq!(a2["version"], 2);
        t.delete(&w.agent.token, &p).await.expect(403);
        t.delete(&w.marketer.token, &p).await.expect(204);
        t.get(&w.agent.token, &p).await.expect(404);
        let audit = t.get(t.admin(), &format!("/api/v1/audit?entity=knowledge_article&entity_id={}&action=delete", id(&a))).await.expect(200);
        assert_eq!(audit["items"][0]["before"]["title"], "Retention script: port-out threats");

        // Announcements: publish window and audience.
        t.post(&w.agent.token, "/api/v1/announcements", json!({"title": "x", "body": "y"})).await.expect(403);
        t.post(&w.marketer.token, "/api/v1/announcements", json!({"title": "x", "body": "y", "audience_role": "pirate"})).await.expect_field("audience_role");
        t.post(&w.marketer.token, "/api/v1/announcements", json!({"title": "All hands", "body": "Q4 targets"})).await.expect(201);
        t.post(&w.marketer.token, "/api/v1/announcements", json!({"title": "Agents only", "body": "new script", "audience_role": "agent"})).await.expect(201);
        t.post(&w.marketer.token, "/api/v1/announcements", json!({"title": "Future", "body": "x", "publish_from": "2099-01-01T00:00:00Z"})).await.expect(201);
        let old = t.post(&w.marketer.token, "/api/v1/announcements", json!({"title": "Past", "body": "x", "publish_from": "2020-01-01T00:00:00Z", "publish_until": "2020-02-01T00:00:00+08:00"})).await.expect(201);
        let titles = |v: Value| -> Vec<String> { v["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap().to_string()).collect() };
        let mut agent = titles(t.get(&w.agent.token, "/api/v1/announcements").await.expect(200));
        agent.sort();
        assert_eq!(agent, ["Agents only", "All hands"]);
        assert_eq!(titles(t.get(&w.am1.token, "/api/v1/announcements").await.expect(200)), ["All hands"]);
        t.get(&w.am1.token, "/api/v1/announcements?all=true").await.expect(403);
        assert_eq!(t.get(&w.marketer.token, "/api/v1/announcements?all=true").await.expect(200)["total"], 4);
        t.delete(&w.marketer.token, &format!("/api/v1/announcements/{}", id(&old))).await.expect(204);
        assert_eq!(t.get(&w.marketer.token, "/api/v1/announcements?all=true").await.expect(200)["total"], 3);
    })
    .await;
}
