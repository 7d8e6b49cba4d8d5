//! Customer 360, the engine seams (profile source, profile_change events) and the OpenAPI doc.

use crate::common;

use common::on_both;
use kairos::event::Msisdn;
use kairos::ports::{ProfileSource, Recommendation, Status};
use reqwest::Method;
use serde_json::json;

fn rec(id: &str, msisdn: &str, minute: u32) -> Recommendation {
    common::offer(
        id,
        msisdn,
        &format!("2026-11-23T10:{minute:02}:00+08:00"),
        Status::Sent,
    )
}

#[tokio::test]
async fn customer_and_line_360() {
    on_both(async |t| {
        let admin = t.admin();
        let party = t.post(admin, "/api/v1/parties", json!({"party_type": "individual", "family_name": "Zhao"})).await.expect(201);
        let c = t.customer("Zhao", json!({"party_id": party["id"], "value_tier": "gold", "credit_class": "A", "churn_score": 0.7})).await;
        let id = c["id"].as_str().unwrap();
        t.line(id, "8613900000101").await;
        t.line(id, "8613900000102").await;
        t.post(admin, &format!("/api/v1/customers/{id}/contacts"), json!({"medium_type": "email", "email_address": "z@example.cn"})).await.expect(201);
        t.post(admin, &format!("/api/v1/customers/{id}/consents"), json!({"channel": "sms", "purpose": "marketing", "granted": false})).await.expect(201);
        t.post(admin, &format!("/api/v1/customers/{id}/loyalty"), json!({"kind": "earn", "points": 50, "reason": "welcome"})).await.expect(201);
        t.post(admin, "/api/v1/catalog/offerings", json!({"code": "P1", "name": "P1", "offering_type": "plan", "price_cents": 100})).await.expect(201);
        t.post(admin, "/api/v1/subscriptions", json!({"customer_id": id, "offering_id": "P1", "status": "active"})).await.expect(201);
        t.offers.recs.lock().unwrap().extend([rec("o1", "8613900000101", 1), rec("o2", "8613900000102", 5), rec("o3", "8613900000999", 9)]);
        t.offers.usage.lock().unwrap().insert("8613900000101".into(), json!({"data_bytes_24h": 1234}));

        let v = t.get(admin, &format!("/api/v1/customers/{id}/view")).await.expect(200);
        assert_eq!(v["customer"]["id"], id);
        assert_eq!(v["party"]["family_name"], "Zhao");
        assert_eq!(v["contacts"].as_array().unwrap().len(), 1);
        assert_eq!(v["consents"][0]["granted"], false);
        assert_eq!(v["accounts"].as_array().unwrap().len(), 2);
        assert_eq!(v["lines"].as_array().unwrap().len(), 2);
        assert_eq!(v["subscriptions"][0]["status"], "active");
        assert_eq!(v["value"], json!({"value_tier": "gold", "credit_class": "A", "loyalty_points": 50, "churn_score": 0.7, "arpu_cents": 0, "segment": "mass"}));
        assert_eq!(v["loyalty_recent"][0]["delta"], 50);
        assert_eq!(v["usage"]["8613900000101"]["data_bytes_24h"], 1234);
        let offers: Vec<&str> = v["offers"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
        assert_eq!(offers, ["o2", "o1"], "newest first, only this customer's lines");
        for section in ["open_requests", "opportunities", "contracts", "interactions", "degraded"] {
            assert_eq!(v[section], json!([]), "{section}");
        }

        let lv = t.get(admin, "/api/v1/lines/8613900000102/view").await.expect(200);
        assert_eq!(lv["line"]["msisdn"], "8613900000102");
        assert_eq!(lv["customer"]["id"], id);
        t.get(admin, "/api/v1/lines/8613900000555/view").await.expect(404);
    })
    .await;
}

#[tokio::test]
async fn view_degrades_when_the_engine_is_down() {
    on_both(async |t| {
        let c = t.customer("Down", json!({})).await;
        let id = c["id"].as_str().unwrap();
        t.line(id, "8613900000401").await;
        t.offers
            .fail
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let v = t
            .get(t.admin(), &format!("/api/v1/customers/{id}/view"))
            .await
            .expect(200);
        assert_eq!(v["degraded"], json!(["usage", "offers"]));
        assert_eq!(v["lines"].as_array().unwrap().len(), 1);
        assert_eq!(v["offers"], json!([]));
    })
    .await;
}

#[tokio::test]
async fn profile_facts_changes_emit_profile_change_per_line() {
    on_both(async |t| {
        let admin = t.admin();
        let c = t.customer("Qian", json!({})).await;
        let id = c["id"].as_str().unwrap();
        t.line(id, "8613900000201").await;
        let line2 = t.line(id, "8613900000202").await;
        t.events.take();

        t.patch(
            admin,
            &format!("/api/v1/customers/{id}"),
            json!({"value_tier": "platinum", "name": "Qian Li", "version": 1}),
        )
        .await
        .expect(200);
        let evs = t.events.take();
        assert_eq!(
            evs.len(),
            2,
            "one per line, name is not a profile fact: {evs:?}"
        );
        let mut msisdns: Vec<String> = evs.iter().map(|e| e.msisdn.to_string()).collect();
        msisdns.sort();
        assert_eq!(msisdns, ["8613900000201", "8613900000202"]);
        assert_ne!(evs[0].id, evs[1].id);
        let json = serde_json::to_value(&evs[0]).unwrap();
        assert_eq!(json["type"], "profile_change");
        assert_eq!(
            json["attrs"],
            json!({"field": "value_tier", "old": "standard", "new": "platinum"})
        );

        // Plan changes concern one line.
        t.plan("5g_299").await;
        t.events.take();
        t.patch(
            admin,
            &format!("/api/v1/lines/{}", line2["id"].as_str().unwrap()),
            json!({"plan": "5g_299", "version": 1}),
        )
        .await
        .expect(200);
        let evs = t.events.take();
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].msisdn.to_string(), "8613900000202");
        assert_eq!(
            serde_json::to_value(&evs[0]).unwrap()["attrs"]["new"],
            "5g_299"
        );

        // Marketing opt-outs.
        let k = t
            .post(
                admin,
                &format!("/api/v1/customers/{id}/consents"),
                json!({"channel": "sms", "purpose": "marketing", "granted": false}),
            )
            .await
            .expect(201);
        let evs = t.events.take();
        assert_eq!(evs.len(), 2);
        assert_eq!(
            serde_json::to_value(&evs[0]).unwrap()["attrs"],
            json!({"field": "opt_outs", "old": [], "new": ["sms"]})
        );
        // A service consent is not a marketing opt-out: it is its own fact, which only
        // service notices read.
        t.post(
            admin,
            &format!("/api/v1/customers/{id}/consents"),
            json!({"channel": "sms", "purpose": "service", "granted": false}),
        )
        .await
        .expect(201);
        let evs = t.events.take();
        assert_eq!(evs.len(), 2);
        assert_eq!(
            serde_json::to_value(&evs[0]).unwrap()["attrs"],
            json!({"field": "service_opt_outs", "old": [], "new": ["sms"]})
        );
        t.patch(
            admin,
            &format!(
                "/api/v1/customers/{id}/consents/{}",
                k["id"].as_str().unwrap()
            ),
            json!({"granted": true, "version": 1}),
        )
        .await
        .expect(200);
        let evs = t.events.take();
        assert_eq!(
            serde_json::to_value(&evs[0]).unwrap()["attrs"]["new"],
            json!([])
        );
    })
    .await;
}

#[tokio::test]
async fn crm_profiles_load_in_input_order() {
    on_both(async |t| {
        let admin = t.admin();
        let c = t.customer("Sun", json!({"value_tier": "gold", "segment": "youth", "language": "en", "churn_score": 0.3, "arpu_cents": 8800})).await;
        let id = c["id"].as_str().unwrap();
        t.line(id, "8613900000301").await;
        for ch in ["sms", "email"] {
            t.post(admin, &format!("/api/v1/customers/{id}/consents"), json!({"channel": ch, "purpose": "marketing", "granted": false})).await.expect(201);
        }
        let src = kairos::crm::profiles::CrmProfiles { db: t.app.state.db.clone() };
        let m = |s: &str| Msisdn::parse(s).unwrap();
        let got = src.load(&[m("8613900000999"), m("8613900000301"), m("8613900000301")]).await.unwrap();
        assert_eq!(got.len(), 3);
        assert!(got[0].is_none());
        let p = got[1].as_ref().unwrap();
        assert_eq!(got[1], got[2]);
        assert!(p.known);
        assert_eq!(p.customer_id.as_deref(), Some(id));
        assert_eq!((p.value_tier.as_str(), p.segment.as_str(), p.language.as_str()), ("gold", "youth", "en"));
        assert_eq!(p.plan, "basic_39");
        assert_eq!(p.arpu_cents, 8800);
        assert_eq!(p.churn_score, 0.3);
        assert_eq!(p.opt_outs, ["email", "sms"]);
        assert_eq!(p.extra["customer_type"], "individual");
        assert!(src.load(&[]).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn openapi_document_is_served_without_auth() {
    on_both(async |t| {
        let doc = t
            .call(Method::GET, "/api/v1/openapi.json", None, None, None)
            .await
            .expect(200);
        assert_eq!(
            doc["openapi"].as_str().map(|v| v.starts_with('3')),
            Some(true)
        );
        assert!(doc["paths"]["/api/v1/customers/{id}/members"].is_object());
        assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    })
    .await;
}
