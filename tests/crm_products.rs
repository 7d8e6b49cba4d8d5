//! Accounts, lines, catalog, subscriptions and the loyalty ledger.

use crate::common;

use common::on_both;
use serde_json::json;

#[tokio::test]
async fn accounts_and_lines() {
    on_both(async |t| {
        let admin = t.admin();
        let c = t.customer("Chen", json!({})).await;
        let other = t.customer("Other", json!({})).await;
        let id = c["id"].as_str().unwrap();
        let acc = t
            .post(admin, "/api/v1/accounts", json!({"customer_id": id, "name": "Home", "bill_cycle_day": 5, "payment_method": "alipay"}))
            .await
            .expect(201);
        assert_eq!(acc["currency"], "CNY");
        assert_eq!(acc["account_type"], "billing");
        t.post(admin, "/api/v1/accounts", json!({"customer_id": id, "name": "X", "bill_cycle_day": 31})).await.expect_field("bill_cycle_day");
        t.post(admin, "/api/v1/accounts", json!({"customer_id": "nope", "name": "X"})).await.expect_field("customer_id");
        let apath = format!("/api/v1/accounts/{}", acc["id"].as_str().unwrap());
        t.patch(admin, &apath, json!({"state": "suspended", "version": 1})).await.expect(200);
        t.patch(admin, &apath, json!({"state": "active", "version": 1})).await.expect(412);

        // A plan is a catalog reference: refused (with the plans there are) until it exists.
        let no_plan = t
            .post(admin, "/api/v1/lines", json!({"customer_id": id, "account_id": acc["id"], "msisdn": "8613900000042", "plan": "5g_129"}))
            .await;
        assert_eq!(no_plan.body["field"], "plan", "{}", no_plan.body);
        t.plan("5g_129").await;
        t.plan("5g_199").await;
        let typo = t
            .post(admin, "/api/v1/lines", json!({"customer_id": id, "msisdn": "8613900000042", "plan": "NO-SUCH-PLAN"}))
            .await;
        assert_eq!(typo.status, 400);
        assert_eq!(typo.body["field"], "plan");
        assert!(typo.body["message"].as_str().unwrap().contains("5g_129, 5g_199"), "{}", typo.body);
        let line = t
            .post(admin, "/api/v1/lines", json!({"customer_id": id, "account_id": acc["id"], "msisdn": "8613900000042", "plan": "5g_129"}))
            .await
            .expect(201);
        t.post(admin, "/api/v1/lines", json!({"customer_id": id, "msisdn": "8613900000042", "plan": "5g_129"})).await.expect(409);
        t.post(admin, "/api/v1/lines", json!({"customer_id": id, "msisdn": "86-139", "plan": "x"})).await.expect_field("msisdn");
        t.post(admin, "/api/v1/lines", json!({"customer_id": other["id"], "account_id": acc["id"], "msisdn": "8613900000043", "plan": "5g_129"}))
            .await
            .expect_field("account_id");
        t.patch(admin, "/api/v1/lines/8613900000042", json!({"plan": "5g_999", "version": 1}))
            .await
            .expect_field("plan");
        // Addressable by msisdn and by id.
        let by_msisdn = t.get(admin, "/api/v1/lines/8613900000042").await.expect(200);
        assert_eq!(by_msisdn["id"], line["id"]);
        let lpath = format!("/api/v1/lines/{}", line["id"].as_str().unwrap());
        let l2 = t.patch(admin, &lpath, json!({"plan": "5g_199", "version": 1})).await.expect(200);
        assert_eq!(l2["plan"], "5g_199");
        let list = t.get(admin, &format!("/api/v1/lines?customer_id={id}")).await.expect(200);
        assert_eq!(list["total"], 1);
        t.get(admin, "/api/v1/lines/8613999999999").await.expect(404);
    })
    .await;
}

#[tokio::test]
async fn catalog_and_subscription_lifecycle() {
    on_both(async |t| {
        let admin = t.admin();
        let plan = t
            .post(admin, "/api/v1/catalog/offerings", json!({"code": "5G_129", "name": "5G 129", "offering_type": "plan", "price_cents": 12900, "recurring_period": "month", "market_segments": ["youth"], "channels": ["sms", "app"]}))
            .await
            .expect(201);
        assert_eq!(plan["channels"], json!(["sms", "app"]));
        let addon = t
            .post(admin, "/api/v1/catalog/offerings", json!({"code": "DATA_10G", "name": "10 GB", "offering_type": "addon", "price_cents": 3000}))
            .await
            .expect(201);
        let bundle = t
            .post(admin, "/api/v1/catalog/offerings", json!({"code": "FAMILY", "name": "Family", "offering_type": "plan", "price_cents": 19900, "is_bundle": true, "bundled_offering_ids": [plan["id"], addon["id"]]}))
            .await
            .expect(201);
        assert_eq!(bundle["is_bundle"], true);
        t.post(admin, "/api/v1/catalog/offerings", json!({"code": "5G_129", "name": "dup", "offering_type": "plan", "price_cents": 1})).await.expect(409);
        t.post(admin, "/api/v1/catalog/offerings", json!({"code": "NEG", "name": "n", "offering_type": "plan", "price_cents": -1})).await.expect_field("price_cents");
        t.post(admin, "/api/v1/catalog/offerings", json!({"code": "B2", "name": "b", "offering_type": "plan", "price_cents": 1, "is_bundle": true, "bundled_offering_ids": ["ghost"]}))
            .await
            .expect_field("bundled_offering_ids");
        assert_eq!(t.get(admin, "/api/v1/catalog/offerings/FAMILY").await.expect(200)["id"], bundle["id"]);
        assert_eq!(t.get(admin, "/api/v1/catalog/offerings?is_bundle=1").await.expect(200)["total"], 1);
        t.patch(admin, "/api/v1/catalog/offerings/DATA_10G", json!({"lifecycle_status": "retired", "version": 1})).await.expect(200);

        let c = t.customer("Sub", json!({})).await;
        let line = t.line(c["id"].as_str().unwrap(), "8613900000077").await;
        t.post(admin, "/api/v1/subscriptions", json!({"customer_id": c["id"], "offering_id": "DATA_10G"})).await.expect_field("offering_id");
        let s = t
            .post(admin, "/api/v1/subscriptions", json!({"customer_id": c["id"], "line_id": line["id"], "offering_id": "5G_129"}))
            .await
            .expect(201);
        assert_eq!(s["status"], "created");
        assert_eq!(s["offering_id"], plan["id"]);
        let path = format!("/api/v1/subscriptions/{}", s["id"].as_str().unwrap());
        t.patch(admin, &path, json!({"status": "suspended", "version": 1})).await.expect(409);
        t.patch(admin, &path, json!({"status": "bogus", "version": 1})).await.expect_field("status");
        let mut v = 1;
        for status in ["pendingActive", "active", "suspended", "active", "pendingTerminate", "terminated"] {
            let r = t.patch(admin, &path, json!({"status": status, "version": v})).await.expect(200);
            v = r["version"].as_i64().unwrap();
            assert_eq!(r["status"], status);
        }
        let done = t.get(admin, &path).await.expect(200);
        assert!(done["start_date"].is_string() && done["termination_date"].is_string());
        t.patch(admin, &path, json!({"status": "active", "version": v})).await.expect(409);
        let audit = t.get(admin, &format!("/api/v1/audit?entity_id={}&action=transition", s["id"].as_str().unwrap())).await.expect(200);
        assert_eq!(audit["total"], 6);
    })
    .await;
}

#[tokio::test]
async fn loyalty_balance_never_goes_negative() {
    on_both(async |t| {
        let admin = t.admin();
        let c = t.customer("Points", json!({})).await;
        let path = format!("/api/v1/customers/{}/loyalty", c["id"].as_str().unwrap());
        let e = t
            .post(
                admin,
                &path,
                json!({"kind": "earn", "points": 100, "reason": "bill paid"}),
            )
            .await
            .expect(201);
        assert_eq!(e["balance_after"], 100);
        let e = t
            .post(
                admin,
                &path,
                json!({"kind": "redeem", "points": 30, "reason": "data pack"}),
            )
            .await
            .expect(201);
        assert_eq!(e["balance_after"], 70);
        t.post(
            admin,
            &path,
            json!({"kind": "redeem", "points": 71, "reason": "too much"}),
        )
        .await
        .expect(409);
        t.post(
            admin,
            &path,
            json!({"kind": "earn", "points": 0, "reason": "zero"}),
        )
        .await
        .expect_field("points");
        t.post(
            admin,
            &path,
            json!({"kind": "steal", "points": 5, "reason": "x"}),
        )
        .await
        .expect_field("kind");
        // Concurrent redemptions: exactly as many succeed as the balance allows.
        let mut tasks = Vec::new();
        for _ in 0..10 {
            tasks.push(t.post(
                admin,
                &path,
                json!({"kind": "redeem", "points": 10, "reason": "race"}),
            ));
        }
        let results = futures::future::join_all(tasks).await;
        let ok = results.iter().filter(|r| r.status == 201).count();
        assert_eq!(
            ok,
            7,
            "{:?}",
            results.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        let st = t.get(admin, &path).await.expect(200);
        assert_eq!(st["balance"], 0);
        assert_eq!(st["entries"]["total"], 9);
        assert_eq!(st["entries"]["items"][0]["balance_after"], 0);
        let cust = t
            .get(
                admin,
                &format!("/api/v1/customers/{}", c["id"].as_str().unwrap()),
            )
            .await
            .expect(200);
        assert_eq!(cust["loyalty_points"], 0);
    })
    .await;
}
