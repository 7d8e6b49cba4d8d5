//! The permission matrix and data scopes: who may do what, and whom they may see. Out-of-scope
//! records must look exactly like missing ones (404), in gets, updates, lists and filters.

use crate::common;

use common::world::{id, world};
use common::{on_both, Actor, TestApp};
use reqwest::Method;
use serde_json::json;

/// Names of the customers `who` can list (optionally with a query string).
async fn visible(t: &TestApp, who: &Actor, query: &str) -> Vec<String> {
    let page = t
        .get(&who.token, &format!("/api/v1/customers?sort=name&{query}"))
        .await
        .expect(200);
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn account_managers_see_and_change_only_their_customers() {
    on_both(async |t| {
        let w = world(t).await;
        assert_eq!(visible(t, &w.am1, "").await, ["c1", "ent", "ent-child"]);
        assert_eq!(visible(t, &w.am2, "").await, ["c2"]);
        // Filters cannot widen the scope.
        assert!(
            visible(t, &w.am1, &format!("account_manager_id={}", w.am2.id))
                .await
                .is_empty()
        );
        assert!(visible(t, &w.am1, "name=c2").await.is_empty());

        let tok = &w.am1.token;
        for path in [
            format!("/api/v1/customers/{}", w.c2),
            format!("/api/v1/customers/{}/view", w.c2),
            format!("/api/v1/customers/{}/contacts", w.c2),
            format!("/api/v1/customers/{}/consents", w.c2),
            format!("/api/v1/customers/{}/loyalty", w.c2),
            "/api/v1/lines/8613900001002".to_string(),
            "/api/v1/lines/8613900001002/view".to_string(),
        ] {
            t.get(tok, &path).await.expect(404);
        }
        t.patch(
            tok,
            &format!("/api/v1/customers/{}", w.c2),
            json!({"segment": "x", "version": 1}),
        )
        .await
        .expect(404);
        t.post(
            tok,
            &format!("/api/v1/customers/{}/loyalty", w.c2),
            json!({"kind": "earn", "points": 1, "reason": "x"}),
        )
        .await
        .expect(404);
        t.post(
            tok,
            "/api/v1/accounts",
            json!({"customer_id": w.c2, "name": "x"}),
        )
        .await
        .expect_field("customer_id");
        let lines = t.get(tok, "/api/v1/lines").await.expect(200);
        assert_eq!(lines["total"], 1);
        assert_eq!(lines["items"][0]["msisdn"], "8613900001001");
        let accounts = t
            .get(tok, &format!("/api/v1/accounts?customer_id={}", w.c2))
            .await
            .expect(200);
        assert_eq!(accounts["total"], 0);

        // Own customers: read, change; new ones default to the creator.
        t.patch(
            tok,
            &format!("/api/v1/customers/{}", w.c1),
            json!({"segment": "youth", "version": 1}),
        )
        .await
        .expect(200);
        let mine = t
            .post(
                tok,
                "/api/v1/customers",
                json!({"name": "mine", "customer_type": "individual"}),
            )
            .await
            .expect(201);
        assert_eq!(mine["account_manager_id"], w.am1.id.as_str());
        // Handing a customer to someone else would leave the writer's scope: refused, unchanged.
        t.post(
            tok,
            "/api/v1/customers",
            json!({"name": "gift", "customer_type": "individual", "account_manager_id": w.am2.id}),
        )
        .await
        .expect_field("account_manager_id");
        t.patch(
            tok,
            &format!("/api/v1/customers/{}", w.c1),
            json!({"account_manager_id": w.am2.id, "version": 2}),
        )
        .await
        .expect_field("account_manager_id");
        assert_eq!(
            t.get(&w.am2.token, &format!("/api/v1/customers/{}", w.c1))
                .await
                .status,
            404
        );
        // Account managers do not read the audit log or manage users.
        t.get(tok, "/api/v1/audit").await.expect(403);
        t.get(tok, "/api/v1/users").await.expect(403);
    })
    .await;
}

#[tokio::test]
async fn team_leads_see_their_team_and_region_heads_their_region() {
    on_both(async |t| {
        let w = world(t).await;
        assert_eq!(
            visible(t, &w.lead, "").await,
            ["c1", "c2", "ent", "ent-child"]
        );
        t.get(&w.lead.token, &format!("/api/v1/customers/{}", w.c3))
            .await
            .expect(404);
        t.patch(
            &w.lead.token,
            &format!("/api/v1/customers/{}", w.c2),
            json!({"value_tier": "gold", "version": 1}),
        )
        .await
        .expect(200);
        assert_eq!(
            visible(t, &w.head, "").await,
            ["c1", "c2", "ent", "ent-child"]
        );
        t.get(&w.head.token, &format!("/api/v1/customers/{}/view", w.c3))
            .await
            .expect(404);
        // Moving a customer out of the region is refused for a region head.
        t.patch(
            &w.head.token,
            &format!("/api/v1/customers/{}", w.c1),
            json!({"region_id": null, "version": 1}),
        )
        .await
        .expect_field("region_id");
        // Scoped audit: the lead sees c2's history, not c3's.
        let audit = t
            .get(
                &w.lead.token,
                &format!("/api/v1/audit?customer_id={}", w.c2),
            )
            .await
            .expect(200);
        assert!(audit["total"].as_i64().unwrap() >= 2, "{audit}");
        let hidden = t
            .get(
                &w.lead.token,
                &format!("/api/v1/audit?customer_id={}", w.c3),
            )
            .await
            .expect(200);
        assert_eq!(hidden["total"], 0);
        let users = t
            .get(&w.lead.token, "/api/v1/audit?entity=user")
            .await
            .expect(200);
        assert_eq!(
            users["total"], 0,
            "user administration is not customer history"
        );
    })
    .await;
}

#[tokio::test]
async fn agents_read_but_cannot_write() {
    on_both(async |t| {
        let w = world(t).await;
        let tok = &w.agent.token;
        assert_eq!(
            visible(t, &w.agent, "").await,
            ["c1", "c2", "ent", "ent-child"]
        );
        t.get(tok, &format!("/api/v1/customers/{}/view", w.c1))
            .await
            .expect(200);
        t.post(
            tok,
            "/api/v1/customers",
            json!({"name": "x", "customer_type": "individual"}),
        )
        .await
        .expect(403);
        t.patch(
            tok,
            &format!("/api/v1/customers/{}", w.c1),
            json!({"segment": "x", "version": 1}),
        )
        .await
        .expect(403);
        t.post(
            tok,
            &format!("/api/v1/customers/{}/contacts", w.c1),
            json!({"medium_type": "email", "email_address": "a@b.c"}),
        )
        .await
        .expect(403);
        t.post(
            tok,
            &format!("/api/v1/customers/{}/loyalty", w.c1),
            json!({"kind": "earn", "points": 5, "reason": "x"}),
        )
        .await
        .expect(403);
        t.post(
            tok,
            "/api/v1/catalog/offerings",
            json!({"code": "X", "name": "x", "offering_type": "plan", "price_cents": 1}),
        )
        .await
        .expect(403);
        // Marketers manage the catalog but not customers.
        t.post(
            &w.marketer.token,
            "/api/v1/catalog/offerings",
            json!({"code": "X", "name": "x", "offering_type": "plan", "price_cents": 1}),
        )
        .await
        .expect(201);
        t.patch(
            &w.marketer.token,
            &format!("/api/v1/customers/{}", w.c1),
            json!({"segment": "x", "version": 1}),
        )
        .await
        .expect(403);
    })
    .await;
}

#[tokio::test]
async fn enterprise_admins_see_only_their_enterprise_and_manage_its_members() {
    on_both(async |t| {
        let w = world(t).await;
        let tok = &w.ent_admin.token;
        assert_eq!(visible(t, &w.ent_admin, "").await, ["ent", "ent-child"]);
        t.get(tok, &format!("/api/v1/customers/{}", w.c1))
            .await
            .expect(404);
        t.get(tok, &format!("/api/v1/customers/{}/members", w.other_ent))
            .await
            .expect(404);
        t.post(
            tok,
            &format!("/api/v1/customers/{}/members", w.other_ent),
            json!({"name": "x", "msisdn": "8613900002000"}),
        )
        .await
        .expect(404);

        let members = format!("/api/v1/customers/{}/members", w.ent);
        // Only the enterprise's own lines: another customer's line, or a number the CRM does
        // not hold, is refused naming the field; the operator's staff may enrol any line.
        t.line(&w.ent, "8613900002001").await;
        t.line(&w.ent_child, "8613900002002").await;
        for other in ["8613900001002", "8613900002999"] {
            t.post(tok, &members, json!({"name": "Wu", "msisdn": other}))
                .await
                .expect_field("msisdn");
        }
        t.post(
            &w.am1.token,
            &members,
            json!({"name": "Personal", "msisdn": "8613900001001"}),
        )
        .await
        .expect(201);
        let m = t
            .post(
                tok,
                &members,
                json!({"name": "Wu", "msisdn": "8613900002001"}),
            )
            .await
            .expect(201);
        t.patch(
            tok,
            &format!("{members}/{}", m["id"].as_str().unwrap()),
            json!({"msisdn": "8613900001003", "version": 1}),
        )
        .await
        .expect_field("msisdn");
        let mpath = format!("{members}/{}", m["id"].as_str().unwrap());
        t.patch(tok, &mpath, json!({"title": "CFO", "version": 1}))
            .await
            .expect(200);
        t.post(
            tok,
            &format!("/api/v1/customers/{}/members", w.ent_child),
            json!({"name": "Ma", "msisdn": "8613900002002"}),
        )
        .await
        .expect(201);
        t.delete(tok, &mpath).await.expect(204);
        // Customer records themselves are the operator's.
        t.patch(
            tok,
            &format!("/api/v1/customers/{}", w.ent),
            json!({"value_tier": "vip", "version": 1}),
        )
        .await
        .expect(403);
        t.post(
            tok,
            "/api/v1/customers",
            json!({"name": "x", "customer_type": "individual"}),
        )
        .await
        .expect(403);
        // The enterprise's 360 shows its subsidiary and members, not other customers.
        let v = t
            .get(tok, &format!("/api/v1/customers/{}/view", w.ent))
            .await
            .expect(200);
        assert_eq!(v["children"].as_array().unwrap().len(), 1);
        assert_eq!(v["children"][0]["name"], "ent-child");
        // The personal line the account manager enrolled; the admin's own member was removed.
        assert_eq!(v["members_total"], 1);
        let child = t
            .get(tok, &format!("/api/v1/customers/{}/view", w.ent_child))
            .await
            .expect(200);
        assert_eq!(child["parent"]["name"], "ent");
        // The account manager of the enterprise sees what the admin did.
        let audit = t
            .get(
                t.admin(),
                &format!(
                    "/api/v1/audit?customer_id={}&entity=enterprise_member",
                    w.ent
                ),
            )
            .await
            .expect(200);
        // The admin's create, update and delete of Wu, and the account manager's enrolment.
        assert_eq!(audit["total"], 4);
        assert_eq!(audit["items"][0]["actor_id"], w.ent_admin.id.as_str());
    })
    .await;
}

#[tokio::test]
async fn every_crm_endpoint_requires_authentication() {
    on_both(async |t| {
        let w = world(t).await;
        for path in [
            "/api/v1/customers".to_string(),
            format!("/api/v1/customers/{}", w.c1),
            format!("/api/v1/customers/{}/view", w.c1),
            "/api/v1/lines/8613900001001/view".to_string(),
            "/api/v1/accounts".to_string(),
            "/api/v1/subscriptions".to_string(),
            "/api/v1/catalog/offerings".to_string(),
            "/api/v1/parties".to_string(),
            "/api/v1/audit".to_string(),
            "/api/v1/users".to_string(),
        ] {
            let r = t.call(Method::GET, &path, None, None, None).await;
            assert_eq!(r.status, 401, "{path}");
        }
        let r = t
            .call(
                Method::POST,
                "/api/v1/customers",
                None,
                Some(json!({"name": "x", "customer_type": "individual"})),
                None,
            )
            .await;
        assert_eq!(r.status, 401);
    })
    .await;
}

#[tokio::test]
async fn parties_follow_their_customers_scope() {
    on_both(async |t| {
        let w = world(t).await;
        let admin = t.admin();
        let p2 = t
            .post(
                admin,
                "/api/v1/parties",
                json!({"party_type": "individual", "family_name": "Two"}),
            )
            .await
            .expect(201);
        t.patch(
            admin,
            &format!("/api/v1/customers/{}", w.c2),
            json!({"party_id": p2["id"], "version": 1}),
        )
        .await
        .expect(200);
        t.get(&w.am1.token, &format!("/api/v1/parties/{}", id(&p2)))
            .await
            .expect(404);
        t.get(&w.am2.token, &format!("/api/v1/parties/{}", id(&p2)))
            .await
            .expect(200);
        let own = t
            .post(
                &w.am1.token,
                "/api/v1/parties",
                json!({"party_type": "organization", "trading_name": "Mine Ltd"}),
            )
            .await
            .expect(201);
        let list = t.get(&w.am1.token, "/api/v1/parties").await.expect(200);
        assert_eq!(list["total"], 1);
        assert_eq!(list["items"][0]["id"], own["id"]);
    })
    .await;
}

#[tokio::test]
async fn line_scope_follows_customer_scope() {
    use kairos::ports::LineScope;
    on_both(async |t| {
        let w = world(t).await;
        let scope = kairos::crm::profiles::CrmLineScope {
            db: t.app.state.db.clone(),
        };
        let m = |s: &str| kairos::event::Msisdn::parse(s).unwrap();
        let me = async |a: &Actor| {
            let v = t.get(&a.token, "/api/v1/auth/me").await.expect(200);
            kairos::auth::Principal {
                id: v["id"].as_str().unwrap().into(),
                name: v["name"].as_str().unwrap().into(),
                role: serde_json::from_value(v["role"].clone()).unwrap(),
                scope: serde_json::from_value(v["scope"].clone()).unwrap(),
            }
        };
        let am1 = me(&w.am1).await;
        assert!(scope.may_see(&am1, m("8613900001001")).await.unwrap());
        assert!(!scope.may_see(&am1, m("8613900001002")).await.unwrap());
        assert!(!scope.may_see(&am1, m("8613900009999")).await.unwrap());
        let lead = me(&w.lead).await;
        assert!(scope.may_see(&lead, m("8613900001002")).await.unwrap());
        assert!(!scope.may_see(&lead, m("8613900001003")).await.unwrap());
        let sys = me(&w.system).await;
        assert!(scope.may_see(&sys, m("8613900001003")).await.unwrap());
    })
    .await;
}
