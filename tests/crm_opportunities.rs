//! Opportunities (商机): from accepted offers, agent entry and enterprise requests; enforced
//! stages, won/lost with a reason, follow-ups, scope.

use crate::common;

use common::on_both;
use common::world::{id, world};
use kairos::ports::{Recommendation, Status};
use serde_json::json;

fn rec(id: &str, msisdn: &str, status: Status) -> Recommendation {
    common::offer(id, msisdn, "2026-11-23T10:00:00+08:00", status)
}

#[tokio::test]
async fn opportunity_from_accepted_offer_through_the_stages() {
    on_both(async |t| {
        let w = world(t).await;
        t.offers.recs.lock().unwrap().extend([
            rec("r-acc", "8613900001001", Status::Accepted),
            rec("r-sent", "8613900001001", Status::Sent),
            rec("r-c3", "8613900001003", Status::Accepted),
        ]);
        let base = "/api/v1/opportunities/from-offer";
        t.post(&w.agent.token, &format!("{base}/r-acc"), json!({})).await.expect(403);
        t.post(&w.am1.token, &format!("{base}/r-sent"), json!({})).await.expect(409);
        t.post(&w.am1.token, &format!("{base}/r-c3"), json!({})).await.expect(404);
        t.post(&w.am1.token, &format!("{base}/nope"), json!({})).await.expect(404);
        // A team lead converts it; the owner is the customer's account manager.
        let o = t
            .post(&w.lead.token, &format!("{base}/r-acc"), json!({"amount_cents": 5000}))
            .await
            .expect(201);
        assert_eq!(o["customer_id"], w.c1.as_str());
        assert_eq!(o["owner_id"], w.am1.id.as_str());
        assert_eq!(o["source"], "offer");
        assert_eq!(o["offer_code"], "DATA_10G");
        assert_eq!(o["stage"], "qualification");
        assert_eq!(o["probability"], 25);
        t.post(&w.am1.token, &format!("{base}/r-acc"), json!({})).await.expect(409);
        let path = format!("/api/v1/opportunities/{}", id(&o));

        // Illegal moves: skipping stages, winning early.
        let r = t.patch(&w.am1.token, &path, json!({"stage": "won", "close_reason": "x", "version": 1})).await;
        r.expect(409);
        t.patch(&w.am1.token, &path, json!({"stage": "negotiation", "version": 1})).await.expect(409);
        let o = t.patch(&w.am1.token, &path, json!({"stage": "proposal", "version": 1})).await.expect(200);
        assert_eq!(o["probability"], 50);
        let o = t.patch(&w.am1.token, &path, json!({"stage": "negotiation", "probability": 80, "version": 2})).await.expect(200);
        assert_eq!(o["probability"], 80);
        t.patch(&w.am1.token, &path, json!({"stage": "won", "version": 3})).await.expect_field("close_reason");
        t.patch(&w.am1.token, &path, json!({"stage": "won", "close_reason": "signed", "version": 2})).await.expect(412);
        let o = t.patch(&w.am1.token, &path, json!({"stage": "won", "close_reason": "signed 2-year plan", "version": 3})).await.expect(200);
        assert_eq!(o["stage"], "won");
        assert_eq!(o["probability"], 100);
        assert!(o["closed_at"].is_string());
        // Final.
        t.patch(&w.am1.token, &path, json!({"stage": "lost", "close_reason": "x", "version": 4})).await.expect(409);
        t.patch(&w.am1.token, &path, json!({"amount_cents": 1, "version": 4})).await.expect(409);

        // Follow-ups.
        let f = t
            .post(&w.am1.token, &format!("{path}/follow-ups"), json!({"kind": "visit", "note": "met the CFO", "next_action": "send quote", "next_at": "2026-12-01"}))
            .await
            .expect(201);
        assert_eq!(f["actor_id"], w.am1.id.as_str());
        t.post(&w.am1.token, &format!("{path}/follow-ups"), json!({"kind": "fax", "note": "x"})).await.expect_field("kind");
        let list = t.get(&w.am1.token, &format!("{path}/follow-ups")).await.expect(200);
        assert_eq!(list["items"].as_array().unwrap().len(), 1);

        // Another account manager sees none of it.
        t.get(&w.am2.token, &path).await.expect(404);
        t.get(&w.am2.token, &format!("{path}/follow-ups")).await.expect(404);
        t.post(&w.am2.token, &format!("{path}/follow-ups"), json!({"kind": "call", "note": "x"})).await.expect(404);
        t.patch(&w.am2.token, &path, json!({"title": "x", "version": 4})).await.expect(404);
        let page = t.get(&w.am2.token, "/api/v1/opportunities").await.expect(200);
        assert_eq!(page["total"], 0);

        // The audit trail has every change.
        let audit = t.get(t.admin(), &format!("/api/v1/audit?entity=opportunity&entity_id={}", id(&o))).await.expect(200);
        assert_eq!(audit["total"], 4);
    })
    .await;
}

#[tokio::test]
async fn agent_entry_enterprise_requests_and_lost_deals() {
    on_both(async |t| {
        let w = world(t).await;
        // Agents cannot enter leads; account managers only for their customers.
        t.post(&w.agent.token, "/api/v1/opportunities", json!({"customer_id": w.c1, "title": "x"})).await.expect(403);
        t.post(&w.am1.token, "/api/v1/opportunities", json!({"customer_id": w.c3, "title": "x"})).await.expect_field("customer_id");
        t.post(&w.am1.token, "/api/v1/opportunities", json!({"customer_id": w.c1, "title": "x", "stage": "won"})).await.expect_field("stage");
        let o = t
            .post(&w.am1.token, "/api/v1/opportunities", json!({"customer_id": w.c1, "title": "Fibre upgrade", "amount_cents": 12000, "expected_close": "2026-12-31"}))
            .await
            .expect(201);
        assert_eq!(o["source"], "agent");
        assert_eq!(o["owner_id"], w.am1.id.as_str());
        assert_eq!(o["stage"], "prospecting");
        let path = format!("/api/v1/opportunities/{}", id(&o));
        t.patch(&w.am1.token, &path, json!({"close_reason": "early", "version": 1})).await.expect_field("close_reason");
        t.patch(&w.am1.token, &path, json!({"stage": "lost", "version": 1})).await.expect_field("close_reason");
        let lost = t.patch(&w.am1.token, &path, json!({"stage": "lost", "close_reason": "went to a competitor", "version": 1})).await.expect(200);
        assert_eq!(lost["stage"], "lost");
        assert_eq!(lost["probability"], 0);
        assert_eq!(lost["close_reason"], "went to a competitor");

        // An enterprise admin requests one for their enterprise; not for another.
        let e = t
            .post(&w.ent_admin.token, "/api/v1/opportunities", json!({"customer_id": w.ent, "title": "100 new lines", "stage": "negotiation"}))
            .await
            .expect(201);
        assert_eq!(e["source"], "enterprise");
        assert_eq!(e["stage"], "prospecting");
        assert_eq!(e["owner_id"], w.am1.id.as_str());
        t.post(&w.ent_admin.token, "/api/v1/opportunities", json!({"customer_id": w.other_ent, "title": "x"})).await.expect_field("customer_id");
        // ...but cannot work it.
        t.patch(&w.ent_admin.token, &format!("/api/v1/opportunities/{}", id(&e)), json!({"stage": "qualification", "version": 1})).await.expect(403);

        let mine = t.get(&w.am1.token, "/api/v1/opportunities?stage=prospecting").await.expect(200);
        assert_eq!(mine["total"], 1);
        let all = t.get(&w.lead.token, "/api/v1/opportunities?sort=-amount_cents").await.expect(200);
        assert_eq!(all["total"], 2);
        assert_eq!(all["items"][0]["title"], "Fibre upgrade");
        // The 360 view lists open ones only.
        let v = t.get(&w.am1.token, &format!("/api/v1/customers/{}/view", w.ent)).await.expect(200);
        assert_eq!(v["opportunities"].as_array().unwrap().len(), 1);
        let v = t.get(&w.am1.token, &format!("/api/v1/customers/{}/view", w.c1)).await.expect(200);
        assert_eq!(v["opportunities"], json!([]));
    })
    .await;
}
