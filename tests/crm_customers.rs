//! Customers, parties, members, contacts and consents: lifecycles, validation, concurrency.

use crate::common;

use common::on_both;
use serde_json::json;

#[tokio::test]
async fn customer_lifecycle_with_versions_and_audit() {
    on_both(async |t| {
        let admin = t.admin();
        let party = t
            .post(admin, "/api/v1/parties", json!({"party_type": "individual", "given_name": "Li", "family_name": "Wei"}))
            .await
            .expect(201);
        let r = t
            .post(admin, "/api/v1/customers", json!({"name": "Li Wei", "customer_type": "individual", "party_id": party["id"], "value_tier": "silver"}))
            .await;
        assert_eq!(r.etag.as_deref(), Some("\"1\""));
        let c = r.expect(201);
        assert_eq!(c["language"], "zh");
        assert_eq!(c["timezone"], "Asia/Shanghai");
        assert_eq!(c["loyalty_points"], 0);
        let path = format!("/api/v1/customers/{}", c["id"].as_str().unwrap());

        let got = t.get(admin, &path).await;
        assert_eq!(got.etag.as_deref(), Some("\"1\""));
        let c2 = t.patch_if_match(admin, &path, "\"1\"", json!({"value_tier": "gold", "churn_score": 0.4})).await;
        assert_eq!(c2.etag.as_deref(), Some("\"2\""));
        let c2 = c2.expect(200);
        assert_eq!(c2["value_tier"], "gold");
        // A writer that read version 1 loses.
        t.patch_if_match(admin, &path, "\"1\"", json!({"segment": "youth"})).await.expect(412);
        t.patch(admin, &path, json!({"segment": "youth", "version": 1})).await.expect(412);
        t.patch(admin, &path, json!({"segment": "youth"})).await.expect_field("version");
        t.patch(admin, &path, json!({"segment": "youth", "version": 2})).await.expect(200);

        let audit = t
            .get(admin, &format!("/api/v1/audit?entity=customer&entity_id={}", c["id"].as_str().unwrap()))
            .await
            .expect(200);
        assert_eq!(audit["total"], 3);
        let newest = &audit["items"][0];
        assert_eq!(newest["action"], "update");
        assert_eq!(newest["before"]["segment"], "mass");
        assert_eq!(newest["after"]["segment"], "youth");
        assert_eq!(newest["actor_name"], "admin");
        // Parties version the same way.
        let ppath = format!("/api/v1/parties/{}", party["id"].as_str().unwrap());
        let p2 = t.patch(admin, &ppath, json!({"registration_number": "110101199001011234", "version": 1})).await.expect(200);
        assert_eq!(p2["version"], 2);
        t.patch(admin, &ppath, json!({"given_name": null, "family_name": null, "version": 2})).await.expect_field("family_name");
        t.patch(admin, &ppath, json!({"birth_date": "1990-13-45", "version": 2})).await.expect_field("birth_date");
        t.patch(admin, &ppath, json!({"nationality": "CN", "version": 1})).await.expect(412);
        assert_eq!(t.get(admin, "/api/v1/parties?q=wei").await.expect(200)["total"], 1);
        t.get(admin, "/api/v1/customers/does-not-exist").await.expect(404);
    })
    .await;
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    on_both(async |t| {
        let admin = t.admin();
        let base = json!({"name": "X", "customer_type": "individual"});
        for (field, value) in [
            ("customer_type", json!("alien")),
            ("credit_class", json!("Z")),
            ("churn_score", json!(1.5)),
            ("timezone", json!("Mars/Olympus")),
            ("home_country", json!("china")),
            ("preferred_channel", json!("pigeon")),
            ("status", json!("zombie")),
            ("name", json!("  ")),
            ("parent_customer_id", json!("nope")),
        ] {
            let mut body = base.clone();
            body[field] = value;
            t.post(admin, "/api/v1/customers", body)
                .await
                .expect_field(field);
        }
        t.post(
            admin,
            "/api/v1/parties",
            json!({"party_type": "organization"}),
        )
        .await
        .expect_field("trading_name");
        t.get(admin, "/api/v1/customers?sort=password")
            .await
            .expect_field("sort");
        t.get(admin, "/api/v1/customers?limit=9999")
            .await
            .expect_field("limit");
        t.get(admin, "/api/v1/customers?colour=red")
            .await
            .expect_field("colour");
        let r = t
            .post(admin, "/api/v1/customers", json!({"name": "X"}))
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
    })
    .await;
}

#[tokio::test]
async fn lists_paginate_filter_and_sort() {
    on_both(async |t| {
        let admin = t.admin();
        for (i, tier) in ["gold", "silver", "gold", "standard", "gold"]
            .iter()
            .enumerate()
        {
            t.customer(
                &format!("C{i}"),
                json!({"value_tier": tier, "churn_score": i as f64 / 10.0}),
            )
            .await;
        }
        let page = t
            .get(
                admin,
                "/api/v1/customers?value_tier=gold&limit=2&sort=-churn_score",
            )
            .await
            .expect(200);
        assert_eq!(page["total"], 3);
        assert_eq!(page["limit"], 2);
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        assert_eq!(page["items"][0]["name"], "C4");
        assert_eq!(page["items"][1]["name"], "C2");
        let next = t
            .get(
                admin,
                "/api/v1/customers?value_tier=gold&limit=2&offset=2&sort=-churn_score",
            )
            .await
            .expect(200);
        assert_eq!(next["items"][0]["name"], "C0");
        let all = t
            .get(admin, "/api/v1/customers?sort=name")
            .await
            .expect(200);
        assert_eq!(all["limit"], 50);
        assert_eq!(all["items"][0]["name"], "C0");
        // Filter values are bound, never interpolated.
        let evil = t
            .get(admin, "/api/v1/customers?name=x'%20OR%20'1'='1")
            .await
            .expect(200);
        assert_eq!(evil["total"], 0);
        // Ranges on numbers, substring search on names.
        let risky = t
            .get(
                admin,
                "/api/v1/customers?churn_score_min=0.2&churn_score_max=0.35",
            )
            .await
            .expect(200);
        assert_eq!(risky["total"], 2, "{risky}");
        t.get(admin, "/api/v1/customers?name_min=a")
            .await
            .expect_field("name_min");
        t.customer("Zhang 50%", json!({})).await;
        assert_eq!(
            t.get(admin, "/api/v1/customers?q=c").await.expect(200)["total"],
            5
        );
        assert_eq!(
            t.get(admin, "/api/v1/customers?q=0%25").await.expect(200)["total"],
            1
        );
        assert_eq!(
            t.get(admin, "/api/v1/customers?q=_").await.expect(200)["total"],
            0
        );
    })
    .await;
}

#[tokio::test]
async fn enterprise_hierarchy_and_members() {
    on_both(async |t| {
        let admin = t.admin();
        let ent = t.customer("Acme Group", json!({"customer_type": "enterprise", "industry": "finance"})).await;
        assert_eq!(t.get(admin, "/api/v1/customers?industry=finance").await.expect(200)["total"], 1);
        let ent_id = ent["id"].as_str().unwrap();
        let branch = t.customer("Acme Shanghai", json!({"customer_type": "enterprise", "parent_customer_id": ent_id})).await;
        assert_eq!(branch["parent_customer_id"], ent_id);
        let person = t.customer("Solo", json!({})).await;
        t.post(admin, "/api/v1/customers", json!({"name": "Bad", "customer_type": "individual", "parent_customer_id": person["id"]}))
            .await
            .expect_field("parent_customer_id");

        let members = format!("/api/v1/customers/{ent_id}/members");
        let m = t.post(admin, &members, json!({"name": "Zhang San", "msisdn": "8613900000001", "department": "Sales"})).await.expect(201);
        t.post(admin, &members, json!({"name": "Dup", "msisdn": "8613900000001"})).await.expect(409);
        t.post(admin, &members, json!({"name": "Bad", "msisdn": "+86139"})).await.expect_field("msisdn");
        let mpath = format!("{members}/{}", m["id"].as_str().unwrap());
        let m2 = t.patch(admin, &mpath, json!({"department": "Finance", "version": 1})).await.expect(200);
        assert_eq!(m2["department"], "Finance");
        t.patch(admin, &mpath, json!({"department": "Ops", "version": 1})).await.expect(412);
        assert_eq!(t.get(admin, &members).await.expect(200)["total"], 1);
        t.delete(admin, &mpath).await.expect(204);
        t.get(admin, &mpath).await.expect(404);
        let audit = t.get(admin, &format!("/api/v1/audit?entity=enterprise_member&action=delete&customer_id={ent_id}")).await.expect(200);
        assert_eq!(audit["total"], 1);
        assert_eq!(audit["items"][0]["before"]["name"], "Zhang San");
        // Members exist only under enterprises.
        t.get(admin, &format!("/api/v1/customers/{}/members", person["id"].as_str().unwrap()))
            .await
            .expect_field("customer_id");
    })
    .await;
}

#[tokio::test]
async fn contacts_and_consents() {
    on_both(async |t| {
        let admin = t.admin();
        let c = t.customer("Wang", json!({})).await;
        let id = c["id"].as_str().unwrap();
        let contacts = format!("/api/v1/customers/{id}/contacts");
        let phone = t.post(admin, &contacts, json!({"medium_type": "phone", "phone_number": "8613911112222", "preferred": true})).await.expect(201);
        assert_eq!(phone["preferred"], true);
        t.post(admin, &contacts, json!({"medium_type": "email", "email_address": "nope"})).await.expect_field("email_address");
        t.post(admin, &contacts, json!({"medium_type": "address"})).await.expect_field("city");
        t.post(admin, &contacts, json!({"medium_type": "email", "email_address": "wang@example.cn"})).await.expect(201);
        assert_eq!(t.get(admin, &format!("{contacts}?medium_type=email")).await.expect(200)["total"], 1);
        let ppath = format!("{contacts}/{}", phone["id"].as_str().unwrap());
        t.patch(admin, &ppath, json!({"preferred": false, "version": 1})).await.expect(200);
        t.delete(admin, &ppath).await.expect(204);
        assert_eq!(t.get(admin, &contacts).await.expect(200)["total"], 1);

        let consents = format!("/api/v1/customers/{id}/consents");
        let k = t.post(admin, &consents, json!({"channel": "sms", "purpose": "marketing", "granted": false, "source": "hotline"})).await.expect(201);
        t.post(admin, &consents, json!({"channel": "sms", "purpose": "marketing", "granted": true})).await.expect(409);
        t.post(admin, &consents, json!({"channel": "fax", "purpose": "marketing", "granted": true})).await.expect_field("channel");
        t.post(admin, &consents, json!({"channel": "sms", "purpose": "spam", "granted": true})).await.expect_field("purpose");
        let kpath = format!("{consents}/{}", k["id"].as_str().unwrap());
        let k2 = t.patch(admin, &kpath, json!({"granted": true, "version": 1})).await.expect(200);
        assert_eq!(k2["granted"], true);
        t.patch(admin, &kpath, json!({"granted": false, "version": 1})).await.expect(412);
        let list = t.get(admin, &consents).await.expect(200);
        assert_eq!(list["total"], 1);
        let granted = t.get(admin, &format!("{consents}?granted=1&purpose=marketing")).await.expect(200);
        assert_eq!(granted["items"][0]["granted"], true);
    })
    .await;
}

#[tokio::test]
async fn concurrent_writers_of_one_version_exactly_one_wins() {
    on_both(async |t| {
        let admin = t.admin();
        let c = t.customer("Race", json!({})).await;
        let path = format!("/api/v1/customers/{}", c["id"].as_str().unwrap());
        let writes: Vec<_> = (0..6)
            .map(|i| {
                t.patch_if_match(
                    admin,
                    &path,
                    "\"1\"",
                    json!({"churn_score": i as f64 / 10.0}),
                )
            })
            .collect();
        let results = futures::future::join_all(writes).await;
        let mut statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
        statuses.sort();
        assert_eq!(statuses, [200, 412, 412, 412, 412, 412]);
        let now = t.get(admin, &path).await.expect(200);
        assert_eq!(now["version"], 2);
    })
    .await;
}
