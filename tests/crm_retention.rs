//! Retention (维系挽留): cases opened by churn warnings and by hand, activities (tasks,
//! visits, call-backs, care), outcomes, scope.

use crate::common;

use common::world::{id, world};
use common::{on_both, TestApp};
use serde_json::json;

async fn set_churn(t: &TestApp, customer: &str, score: f64) {
    let c = t
        .get(t.admin(), &format!("/api/v1/customers/{customer}"))
        .await
        .expect(200);
    t.patch(
        t.admin(),
        &format!("/api/v1/customers/{customer}"),
        json!({"churn_score": score, "version": c["version"]}),
    )
    .await
    .expect(200);
}

async fn cases(t: &TestApp, token: &str, customer: &str) -> serde_json::Value {
    t.get(
        token,
        &format!("/api/v1/retention-cases?customer_id={customer}&sort=created_at"),
    )
    .await
    .expect(200)
}

#[tokio::test]
async fn churn_score_crossing_the_threshold_opens_one_case() {
    on_both(async |t| {
        let w = world(t).await;
        set_churn(t, &w.c1, 0.5).await;
        assert_eq!(cases(t, &w.am1.token, &w.c1).await["total"], 0);
        set_churn(t, &w.c1, 0.82).await;
        let page = cases(t, &w.am1.token, &w.c1).await;
        assert_eq!(page["total"], 1);
        let k = page["items"][0].clone();
        assert_eq!(k["trigger_kind"], "churn_score");
        assert_eq!(k["churn_score"], 0.82);
        assert_eq!(k["status"], "open");
        assert_eq!(k["outcome"], "pending");
        assert_eq!(k["owner_id"], w.am1.id.as_str());
        // The account manager is told.
        let n = t
            .get(&w.am1.token, "/api/v1/notices?kind=retention")
            .await
            .expect(200);
        assert_eq!(n["total"], 1);
        assert_eq!(n["items"][0]["entity_id"], k["id"]);
        // Staying above, or crossing again while a case is open: no second case.
        set_churn(t, &w.c1, 0.9).await;
        set_churn(t, &w.c1, 0.3).await;
        set_churn(t, &w.c1, 0.75).await;
        assert_eq!(cases(t, &w.am1.token, &w.c1).await["total"], 1);
        let audit = t
            .get(
                t.admin(),
                &format!("/api/v1/audit?entity=retention_case&entity_id={}", id(&k)),
            )
            .await
            .expect(200);
        assert_eq!(audit["items"][0]["actor_id"], "system:churn-warning");

        // Call-backs and care records, then retained: closed.
        let p = format!("/api/v1/retention-cases/{}", id(&k));
        t.post(
            &w.am1.token,
            &format!("{p}/activities"),
            json!({"kind": "call_back", "note": "offered 20% off for 12 months", "done": true}),
        )
        .await
        .expect(201);
        t.post(
            &w.am1.token,
            &format!("{p}/activities"),
            json!({"kind": "visit", "note": "home visit", "due_at": "2026-12-02"}),
        )
        .await
        .expect(201);
        t.post(
            &w.am1.token,
            &format!("{p}/activities"),
            json!({"kind": "care", "note": "birthday gift sent"}),
        )
        .await
        .expect(201);
        t.post(
            &w.am1.token,
            &format!("{p}/activities"),
            json!({"kind": "party", "note": "x"}),
        )
        .await
        .expect_field("kind");
        let acts = t
            .get(&w.am1.token, &format!("{p}/activities"))
            .await
            .expect(200);
        let kinds: Vec<&str> = acts["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["care", "visit", "call_back"]);
        assert_eq!(acts["items"][2]["done"], 1);
        t.patch(&w.am1.token, &p, json!({"outcome": "saved", "version": 1}))
            .await
            .expect_field("outcome");
        let k = t
            .patch(
                &w.am1.token,
                &p,
                json!({"outcome": "retained", "version": 1}),
            )
            .await
            .expect(200);
        assert_eq!(k["status"], "closed");
        assert!(k["closed_at"].is_string());

        // Once closed, a new crossing opens a new case.
        set_churn(t, &w.c1, 0.2).await;
        set_churn(t, &w.c1, 0.95).await;
        let page = cases(t, &w.am1.token, &w.c1).await;
        assert_eq!(page["total"], 2);
        assert_eq!(page["items"][1]["status"], "open");
    })
    .await;
}

#[tokio::test]
async fn manual_cases_outcomes_and_scope() {
    on_both(async |t| {
        let w = world(t).await;
        // Agents have no retention permission.
        t.get(&w.agent.token, "/api/v1/retention-cases").await.expect(403);
        t.post(&w.agent.token, "/api/v1/retention-cases", json!({"customer_id": w.c2, "trigger_kind": "complaint", "summary": "x"})).await.expect(403);
        t.post(&w.am1.token, "/api/v1/retention-cases", json!({"customer_id": w.c2, "trigger_kind": "complaint", "summary": "x"})).await.expect_field("customer_id");
        let k = t
            .post(&w.am2.token, "/api/v1/retention-cases", json!({"customer_id": w.c2, "trigger_kind": "complaint", "summary": "Billing complaint, threatens to port out"}))
            .await
            .expect(201);
        assert_eq!(k["owner_id"], w.am2.id.as_str());
        t.post(&w.am2.token, "/api/v1/retention-cases", json!({"customer_id": w.c2, "trigger_kind": "inactivity", "summary": "x"})).await.expect(409);
        let p = format!("/api/v1/retention-cases/{}", id(&k));
        // Another manager sees nothing of it; the team lead does.
        t.get(&w.am1.token, &p).await.expect(404);
        t.get(&w.am1.token, &format!("{p}/activities")).await.expect(404);
        t.post(&w.am1.token, &format!("{p}/activities"), json!({"kind": "task", "note": "x"})).await.expect(404);
        t.patch(&w.am1.token, &p, json!({"outcome": "lost", "version": 1})).await.expect(404);
        assert_eq!(t.get(&w.am1.token, "/api/v1/retention-cases").await.expect(200)["total"], 0);
        t.get(&w.lead.token, &p).await.expect(200);
        let k = t.patch(&w.lead.token, &p, json!({"outcome": "lost", "summary": "ported to a competitor", "version": 1})).await.expect(200);
        assert_eq!(k["status"], "closed");
        assert_eq!(k["outcome"], "lost");
        t.patch(&w.lead.token, &p, json!({"outcome": "lost", "version": 1})).await.expect(412);
        // Reopen.
        let k = t.patch(&w.am2.token, &p, json!({"outcome": "pending", "version": 2})).await.expect(200);
        assert_eq!(k["status"], "open");
        assert_eq!(t.get(&w.lead.token, "/api/v1/retention-cases?status=open").await.expect(200)["total"], 1);
    })
    .await;
}

/// A win-back decision from the engine (long standby) for one of the customer's lines.
fn winback(msisdn: &str, trigger: &str) -> kairos::ports::Recommendation {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap();
    kairos::ports::Recommendation {
        id: format!("r-{trigger}"),
        msisdn: kairos::event::Msisdn::parse(msisdn).unwrap(),
        rule_id: "standby-winback".into(),
        offer_code: "WINBACK".into(),
        channel: "sms".into(),
        message: "We missed you".into(),
        score: 0.5,
        trigger_event_id: Some(trigger.into()),
        campaign_id: None,
        request_id: None,
        decided_at: at,
        expires_at: at,
        not_before: None,
        status: kairos::ports::Status::Queued,
        reason: None,
        explanation: None,
        service: false,
    }
}

#[tokio::test]
async fn long_inactivity_detected_by_the_engine_opens_a_case_once() {
    on_both(async |t| {
        let w = world(t).await;
        let st = &t.app.state;
        let recs = kairos::pipeline::RecStore::new(st.db.clone());
        recs.insert(&[winback("8613900001001", "p1")])
            .await
            .unwrap();
        assert_eq!(
            kairos::crm::retention::open_for_inactivity(st)
                .await
                .unwrap(),
            1
        );
        let page = cases(t, &w.am1.token, &w.c1).await;
        assert_eq!(page["total"], 1, "{page}");
        assert_eq!(page["items"][0]["trigger_kind"], "inactivity");
        assert_eq!(page["items"][0]["owner_id"], w.am1.id.as_str());
        // The same decision is not read twice; a new one while the case is open adds none.
        assert_eq!(
            kairos::crm::retention::open_for_inactivity(st)
                .await
                .unwrap(),
            0
        );
        recs.insert(&[winback("8613900001001", "p2")])
            .await
            .unwrap();
        assert_eq!(
            kairos::crm::retention::open_for_inactivity(st)
                .await
                .unwrap(),
            0
        );
        assert_eq!(cases(t, &w.am1.token, &w.c1).await["total"], 1);
        // Another customer's line gets its own case, which am1 cannot see.
        recs.insert(&[winback("8613900001003", "p3")])
            .await
            .unwrap();
        assert_eq!(
            kairos::crm::retention::open_for_inactivity(st)
                .await
                .unwrap(),
            1
        );
        assert_eq!(cases(t, &w.am1.token, &w.c3).await["total"], 0);
    })
    .await;
}
