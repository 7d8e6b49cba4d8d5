//! The CRM as an operator's integration engineer meets it, through the API only: bulk import,
//! retries that change nothing, reference data checked, search by phone, answers that are
//! final, permissions one can read and one shape for lists and errors. On both databases.

use serde_json::{json, Value};

use crate::common::world::{id, world};
use crate::common::{on_both, sms_rec, TestApp};

/// A POST with headers of the test's choosing; the status and the body as JSON.
async fn post_raw(
    t: &TestApp,
    token: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let (status, h, text) = t.post_raw(token, path, headers, body).await;
    (
        status,
        h,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A customer import's answer: the reports, then the summary.
async fn import(t: &TestApp, token: &str, content_type: &str, body: String) -> (Vec<Value>, Value) {
    let (status, lines, summary) = t
        .import(token, "/api/v1/import/customers", content_type, body)
        .await;
    assert_eq!(status, 200, "{summary}");
    (lines, summary)
}

/// The offers decided for `msisdn`, waited for a few seconds (the engine decides off the
/// request's path); empty when none came.
async fn decided_for(t: &TestApp, msisdn: &str) -> Vec<Value> {
    for _ in 0..50 {
        let recs = t
            .get(
                t.admin(),
                &format!("/api/v1/recommendations?msisdn={msisdn}"),
            )
            .await
            .expect(200);
        let items = recs["items"].as_array().unwrap().clone();
        if !items.is_empty() {
            return items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Vec::new()
}

fn customer_line(i: usize) -> Value {
    json!({
        "external_id": format!("BOSS-{i:04}"),
        "name": format!("Customer {i}"),
        "customer_type": "individual",
        "value_tier": if i.is_multiple_of(10) { "gold" } else { "standard" },
        "arpu_cents": 1000 + i as i64,
        "accounts": [{"name": "home", "bill_cycle_day": 5}],
        "lines": [{"msisdn": format!("86139200{i:05}"), "plan": "basic_39", "account": "home"}],
        "contacts": [{"medium_type": "email", "email_address": format!("c{i}@example.com")}],
    })
}

#[tokio::test]
async fn two_hundred_customers_import_in_one_upload_and_a_retry_changes_nothing() {
    on_both(async |t| {
        t.plan("basic_39").await;
        let admin = t.admin();
        // One bad record among them (line 101, inside a transaction of good ones) fails
        // alone, naming the field in the record; so does a line that is not JSON.
        let line = |i: usize| format!("{}\n", customer_line(i));
        let mut body: String = (0..100).map(line).collect();
        body.push_str(
            &json!({"external_id": "BOSS-BAD", "name": "Bad", "customer_type": "individual",
                "lines": [{"msisdn": "8613930000001", "plan": "NO-SUCH-PLAN"}]})
            .to_string(),
        );
        body.push('\n');
        body.extend((100..200).map(line));
        body.push_str("not json\n");
        let (reports, summary) = import(t, admin, "application/x-ndjson", body.clone()).await;
        assert_eq!(
            summary,
            json!({"records": 202, "created": 200, "updated": 0, "failed": 2})
        );
        assert_eq!(reports[0]["line"], 1);
        assert_eq!(reports[0]["result"], "created");
        assert_eq!(reports[0]["external_id"], "BOSS-0000");
        assert_eq!(reports[100]["line"], 101);
        assert_eq!(reports[100]["result"], "failed");
        assert_eq!(reports[100]["field"], "lines[0].plan");
        assert!(reports[100]["message"]
            .as_str()
            .unwrap()
            .contains("basic_39"));
        assert_eq!(reports[101]["result"], "created");
        assert_eq!(reports[101]["external_id"], "BOSS-0100");
        assert_eq!(reports[201]["line"], 202);
        assert_eq!(reports[201]["result"], "failed");
        // The failed record left nothing behind.
        let bad = t
            .get(admin, "/api/v1/customers?external_id=BOSS-BAD")
            .await
            .expect(200);
        assert_eq!(bad["total"], 0);

        let all = t.get(admin, "/api/v1/customers?limit=1").await.expect(200);
        assert_eq!(all["total"], 200);
        let lines = t.get(admin, "/api/v1/lines?limit=1").await.expect(200);
        assert_eq!(lines["total"], 200);
        let one = &reports[7];
        let cid = one["id"].as_str().unwrap();
        let contacts = t
            .get(admin, &format!("/api/v1/customers/{cid}/contacts"))
            .await
            .expect(200);
        assert_eq!(contacts["total"], 1);

        // The same upload again: every record is found by its external id; nothing doubles.
        let (again, summary) = import(t, admin, "application/x-ndjson", body).await;
        assert_eq!(
            summary,
            json!({"records": 202, "created": 0, "updated": 200, "failed": 2})
        );
        assert_eq!(again[7]["id"], one["id"]);
        assert_eq!(
            t.get(admin, "/api/v1/customers?limit=1").await.expect(200)["total"],
            200
        );
        assert_eq!(
            t.get(admin, "/api/v1/lines?limit=1").await.expect(200)["total"],
            200
        );
        let accounts = t
            .get(admin, &format!("/api/v1/accounts?customer_id={cid}"))
            .await
            .expect(200);
        assert_eq!(accounts["total"], 1);
        let contacts = t
            .get(admin, &format!("/api/v1/customers/{cid}/contacts"))
            .await
            .expect(200);
        assert_eq!(contacts["total"], 1);

        // An update through the import is an update: the tier changes and is audited.
        let change = json!({"external_id": "BOSS-0007", "value_tier": "platinum"});
        let (r, _) = import(t, admin, "application/json", json!([change]).to_string()).await;
        assert_eq!(r[0]["result"], "updated");
        let c = t
            .get(admin, &format!("/api/v1/customers/{cid}"))
            .await
            .expect(200);
        assert_eq!(c["value_tier"], "platinum");
        assert_eq!(c["name"], "Customer 7", "fields not given stay");
        let audit = t
            .get(
                admin,
                &format!("/api/v1/audit?entity=customer&action=update&customer_id={cid}"),
            )
            .await
            .expect(200);
        assert_eq!(audit["total"], 1);

        // Two records of one number in one upload, and one customer twice: the upload's
        // fast path gives way to record-by-record writes, with the same answers.
        let twins = json!([
            {"external_id": "X-1", "name": "Twin one", "customer_type": "individual",
             "lines": [{"msisdn": "8613950000001", "plan": "basic_39"}]},
            {"external_id": "X-2", "name": "Twin two", "customer_type": "individual",
             "lines": [{"msisdn": "8613950000001", "plan": "basic_39"}]},
            {"external_id": "X-1", "name": "Twin one", "customer_type": "individual", "value_tier": "gold"},
        ]);
        let (r, summary) = import(t, admin, "application/json", twins.to_string()).await;
        let results: Vec<&str> = r.iter().map(|x| x["result"].as_str().unwrap()).collect();
        assert_eq!(results, ["created", "failed", "updated"], "{r:?}");
        assert_eq!(r[1]["field"], "lines[0].msisdn");
        assert_eq!(summary["failed"], 1);
        let x2 = t.get(admin, "/api/v1/customers?external_id=X-2").await.expect(200);
        assert_eq!(x2["total"], 0, "the failed twin left nothing");

        // CSV, a customer per row with its line and email; a line of another customer is refused.
        let csv = "external_id,name,customer_type,value_tier,churn_score,msisdn,plan,email\n\
                   CSV-1,Csv One,individual,silver,0.2,8613940000001,basic_39,one@example.com\n\
                   CSV-2,Csv Two,individual,silver,0.1,8613920000003,basic_39,\n";
        let (r, summary) = import(t, admin, "text/csv", csv.to_string()).await;
        assert_eq!(summary["created"], 1, "{r:?}");
        assert_eq!(r[0]["line"], 2);
        assert_eq!(r[1]["line"], 3);
        assert_eq!(r[1]["field"], "lines[0].msisdn");
        let found = t
            .get(admin, "/api/v1/customers?q=8613940000001")
            .await
            .expect(200);
        assert_eq!(found["items"][0]["name"], "Csv One");
        assert_eq!(found["items"][0]["churn_score"], 0.2);

        // Formats it cannot read are named.
        let (status, _, e) = post_raw(
            t,
            admin,
            "/api/v1/import/customers",
            &[("content-type", "text/plain")],
            "x".into(),
        )
        .await;
        assert_eq!(status, 400);
        assert!(e["message"].as_str().unwrap().contains("text/csv"), "{e}");
        // Roles that may not write customers may not import them.
        let w = world(t).await;
        let (status, _, e) = post_raw(
            t,
            &w.marketer.token,
            "/api/v1/import/customers",
            &[("content-type", "application/x-ndjson")],
            customer_line(999).to_string(),
        )
        .await;
        assert_eq!(status, 403, "{e}");
    })
    .await;
}

#[tokio::test]
async fn a_retried_post_with_its_idempotency_key_creates_one_record() {
    on_both(async |t| {
        let admin = t.admin();
        let body = json!({"name": "Retry", "customer_type": "individual"}).to_string();
        let headers = [
            ("content-type", "application/json"),
            ("idempotency-key", "k-1"),
        ];
        let (s1, h1, first) = post_raw(t, admin, "/api/v1/customers", &headers, body.clone()).await;
        let (s2, h2, second) =
            post_raw(t, admin, "/api/v1/customers", &headers, body.clone()).await;
        assert_eq!((s1, s2), (201, 201));
        assert_eq!(first, second, "the first response, replayed");
        assert_eq!(h1["etag"], h2["etag"]);
        assert!(h1.get("idempotent-replayed").is_none());
        assert_eq!(h2["idempotent-replayed"], "true");
        let list = t
            .get(admin, "/api/v1/customers?name=Retry")
            .await
            .expect(200);
        assert_eq!(list["total"], 1);

        // The same key with another body is a mistake, said plainly.
        let other = json!({"name": "Other", "customer_type": "individual"}).to_string();
        let (s, _, e) = post_raw(t, admin, "/api/v1/customers", &headers, other.clone()).await;
        assert_eq!(s, 422, "{e}");
        assert!(
            e["message"].as_str().unwrap().contains("Idempotency-Key"),
            "{e}"
        );
        // Another caller's key of the same name is theirs alone.
        let w = world(t).await;
        let (s, _, mine) = post_raw(t, &w.am1.token, "/api/v1/customers", &headers, other).await;
        assert_eq!(s, 201, "{mine}");
        assert_ne!(mine["id"], first["id"]);
        // Client errors are kept too: the retry of a refused request is refused the same way.
        let bad =
            json!({"name": "Bad", "customer_type": "individual", "value_tier": "Gold"}).to_string();
        let k2 = [
            ("content-type", "application/json"),
            ("idempotency-key", "k-2"),
        ];
        let (s, _, e1) = post_raw(t, admin, "/api/v1/customers", &k2, bad.clone()).await;
        let (s2, _, e2) = post_raw(t, admin, "/api/v1/customers", &k2, bad).await;
        assert_eq!((s, s2), (400, 400));
        assert_eq!(e1, e2);
        // Without a key, two POSTs are two customers.
        for _ in 0..2 {
            post_raw(
                t,
                admin,
                "/api/v1/customers",
                &[("content-type", "application/json")],
                body.clone(),
            )
            .await;
        }
        let list = t
            .get(admin, "/api/v1/customers?name=Retry")
            .await
            .expect(200);
        assert_eq!(list["total"], 3);
    })
    .await;
}

#[tokio::test]
async fn reference_data_is_checked_on_write_with_the_allowed_values() {
    on_both(async |t| {
        let admin = t.admin();
        for (field, value) in [
            ("value_tier", "platinium"),
            ("value_tier", "Gold"),
            ("segment", "yuth"),
            ("credit_class", "Z"),
        ] {
            let r = t
                .post(
                    admin,
                    "/api/v1/customers",
                    json!({"name": "x", "customer_type": "individual", field: value}),
                )
                .await;
            assert_eq!(r.status, 400, "{field}={value}: {}", r.body);
            assert_eq!(r.body["field"], field);
        }
        let r = t
            .post(
                admin,
                "/api/v1/customers",
                json!({"name": "x", "customer_type": "individual", "value_tier": "Gold"}),
            )
            .await;
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("basic, standard, silver, gold, platinum, diamond"),
            "{}",
            r.body
        );
        let c = t
            .customer("ok", json!({"value_tier": "gold", "segment": "youth"}))
            .await;
        t.patch(
            admin,
            &format!("/api/v1/customers/{}", id(&c)),
            json!({"value_tier": "GOLD", "version": 1}),
        )
        .await
        .expect_field("value_tier");
    })
    .await;
}

#[tokio::test]
async fn customers_are_found_by_phone_number_external_id_and_name() {
    on_both(async |t| {
        let admin = t.admin();
        let a = t
            .customer(
                "Zhao Lei",
                json!({"external_id": "EXT-9", "value_tier": "gold", "arpu_cents": 500}),
            )
            .await;
        let b = t
            .customer(
                "Qian Hua",
                json!({"value_tier": "platinum", "arpu_cents": 900}),
            )
            .await;
        t.customer(
            "Sun Mei",
            json!({"value_tier": "standard", "arpu_cents": 100}),
        )
        .await;
        t.line(&id(&a), "8613920000042").await;
        let names = |v: &Value| -> Vec<String> {
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        };
        for q in [
            "8613920000042",
            "86139200",
            "+8613920000042",
            "EXT-9",
            "zhao",
        ] {
            let r = t
                .get(
                    admin,
                    &format!("/api/v1/customers?q={}", q.replace('+', "%2B")),
                )
                .await
                .expect(200);
            assert_eq!(names(&r), ["Zhao Lei"], "q={q}");
        }
        let none = t
            .get(admin, "/api/v1/customers?q=8613999")
            .await
            .expect(200);
        assert_eq!(none["total"], 0);
        // Several values of one filter: either; sorted by a number.
        let r = t
            .get(
                admin,
                "/api/v1/customers?value_tier=gold,platinum&sort=-arpu_cents",
            )
            .await
            .expect(200);
        assert_eq!(names(&r), ["Qian Hua", "Zhao Lei"]);
        assert_eq!(r["total"], 2);
        t.get(admin, "/api/v1/customers?arpu_cents=1,x")
            .await
            .expect_field("arpu_cents");
        // The search stays inside the caller's scope.
        let w = world(t).await;
        let r = t
            .get(&w.am1.token, "/api/v1/customers?q=8613920000042")
            .await
            .expect(200);
        assert_eq!(r["total"], 0);
        let _ = b;
    })
    .await;
}

#[tokio::test]
async fn accepted_and_declined_are_final_and_the_reason_reaches_the_timeline() {
    on_both(async |t| {
        let w = world(t).await;
        t.store_rec(&sms_rec("r-final", "8613900001001")).await;
        let path = "/api/v1/recommendations/r-final/response";
        let tok = &w.am1.token;
        let r = t
            .post(
                tok,
                path,
                json!({"outcome": "accepted", "reason": "wants the 5G upgrade"}),
            )
            .await
            .expect(200);
        assert_eq!(r["status"], "accepted");
        // The same answer again is a retry: no change, no second response recorded.
        t.post(tok, path, json!({"outcome": "accepted"}))
            .await
            .expect(200);
        let flip = t.post(tok, path, json!({"outcome": "declined"})).await;
        assert_eq!(flip.status, 409, "{}", flip.body);
        assert!(flip.body["message"].as_str().unwrap().contains("final"));
        let now = t
            .get(tok, "/api/v1/recommendations/r-final")
            .await
            .expect(200);
        assert_eq!(now["status"], "accepted");
        let timeline = t
            .get(
                tok,
                &format!(
                    "/api/v1/customers/{}/interactions?source=offer_response",
                    w.c1
                ),
            )
            .await
            .expect(200);
        assert_eq!(timeline["total"], 1, "{timeline}");
        assert_eq!(
            timeline["items"][0]["summary"],
            "accepted: wants the 5G upgrade"
        );
    })
    .await;
}

#[tokio::test]
async fn permissions_can_be_read_and_a_403_says_who_may() {
    on_both(async |t| {
        let w = world(t).await;
        let me = t.get(&w.agent.token, "/api/v1/auth/me").await.expect(200);
        let perms: Vec<&str> = me["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(
            perms,
            [
                "read_recommendations",
                "respond_to_offers",
                "read_customers",
                "raise_service_requests"
            ]
        );
        let matrix = t
            .get(&w.agent.token, "/api/v1/auth/roles")
            .await
            .expect(200);
        assert_eq!(matrix["total"], 8);
        let marketer = matrix["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["role"] == "marketer")
            .unwrap();
        assert!(marketer["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("manage_campaigns")));

        let denied = t
            .post(
                &w.agent.token,
                "/api/v1/catalog/offerings",
                json!({"code": "X", "name": "x", "offering_type": "plan", "price_cents": 1}),
            )
            .await;
        assert_eq!(denied.status, 403);
        assert_eq!(denied.body["permission"], "manage_catalog");
        assert_eq!(denied.body["allowed_roles"], json!(["admin", "marketer"]));
        assert!(denied.body["message"]
            .as_str()
            .unwrap()
            .contains("roles that have it: admin, marketer"));
    })
    .await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_with_the_error_body_and_lists_are_pages() {
    on_both(async |t| {
        let admin = t.admin();
        let r = t.get(admin, "/api/v1/no-such-thing").await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["error"], "not_found");
        let r = t
            .call(
                reqwest::Method::DELETE,
                "/api/v1/customers",
                Some(admin),
                None,
                None,
            )
            .await;
        assert_eq!(r.status, 405);
        assert_eq!(r.body["error"], "method_not_allowed");
        // Lists that were bare arrays are pages like every other list.
        let w = world(t).await;
        for path in [
            "/api/v1/rules".to_string(),
            "/api/v1/workflows".to_string(),
            "/api/v1/subscribers/8613900001001/next-best-offers".to_string(),
            "/api/v1/channels/sms/outbox".to_string(),
            "/api/v1/agent/subscribers/8613900001001/offers".to_string(),
        ] {
            let page = t.get(admin, &path).await.expect(200);
            assert!(page["items"].is_array(), "{path}: {page}");
            assert_eq!(
                page["total"].as_u64().unwrap() as usize,
                page["items"].as_array().unwrap().len(),
                "{path}"
            );
        }
        let _ = w;
    })
    .await;
}

#[tokio::test]
async fn ingest_says_what_became_of_each_event_and_unknown_numbers_get_no_marketing() {
    crate::real_engine::on_both_engine(async |t| {
        let rules = &t.app.state.config.engine.rules_dir;
        std::fs::write(
            rules.join("roam-sale.rhai"),
            r#"#{ id: "roam-sale", name: "Roaming pack", kind: "dynamic", priority: 90,
                events: ["location_update"], channels: ["sms"],
                when: #{ roaming: true, "count(location_update[roaming=true], 7d)": ">= 1" },
                offer: #{ code: "ROAM-{country}", validity: "1d" }, message: "Roaming in {country}?" };"#,
        )
        .unwrap();
        std::fs::write(
            rules.join("roam-notice.rhai"),
            r#"#{ id: "roam-notice", name: "Roaming tariff notice", kind: "dynamic", category: "service",
                events: ["location_update"], when: #{ roaming: true }, channels: ["portal"],
                offer: #{ code: "NOTICE-ROAMING", validity: "1d" }, message: "Roaming rates apply in {country}." };"#,
        )
        .unwrap();
        t.post(t.admin(), "/api/v1/rules/reload", json!({})).await.expect(200);
        let c = t.customer("Known", json!({})).await;
        t.line(&id(&c), "8613900007701").await;
        let now = chrono::Utc::now();
        let ev = |id: &str, m: &str, ts: chrono::DateTime<chrono::Utc>| {
            json!({"id": id, "type": "location_update", "msisdn": m, "ts": ts.to_rfc3339(),
                "attrs": {"country": "JP", "roaming": true}})
        };
        let batch = json!([
            ev("k-1", "8613900007701", now),
            ev("u-1", "8613999990001", now),
            ev("k-1", "8613900007701", now),
            ev("k-old", "8613900007701", now - chrono::Duration::hours(5)),
            {"id": "bad", "type": "location_update"},
        ]);
        let r = t.post(t.admin(), "/api/v1/events?wait=true", batch).await.expect(200);
        let per: Vec<(u64, &str)> = r["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["at"].as_u64().unwrap(), e["result"].as_str().unwrap()))
            .collect();
        assert_eq!(
            per,
            [(0, "accepted"), (1, "accepted"), (2, "duplicate"), (3, "late")],
            "{r}"
        );
        assert!(r["events"][3]["reason"].as_str().unwrap().contains("behind"), "{r}");
        assert_eq!(r["rejected"][0]["at"], 4);
        assert_eq!(r["outcome"]["duplicates"], 1);
        assert_eq!(r["outcome"]["late"], 1);
        // The known line gets the roaming pack; the number the CRM does not know gets the
        // service notice only, the sale recorded as suppressed with its reason.
        let decisions = r["outcome"]["decisions"].as_array().unwrap();
        let of = |m: &str, rule: &str| {
            decisions
                .iter()
                .find(|d| d["msisdn"] == m && d["rule_id"] == rule)
                .cloned()
                .unwrap_or_else(|| panic!("no {rule} decision for {m}: {r}"))
        };
        assert_eq!(of("8613900007701", "roam-sale")["reason"], Value::Null);
        let sale = of("8613999990001", "roam-sale");
        assert_eq!(sale["status"], "suppressed");
        assert_eq!(sale["reason"], "unknown_subscriber");
        assert_eq!(of("8613999990001", "roam-notice")["reason"], Value::Null);
        // The 360 view's usage names say what they count, over what, in words.
        let view = t.get(t.admin(), &format!("/api/v1/customers/{}/view", id(&c))).await.expect(200);
        let usage = view["usage"]["8613900007701"].as_object().expect("usage of the line");
        // Written like every other time: UTC, to the millisecond.
        let last = usage["last_event_at"].as_str().expect("last_event_at");
        assert!(last.len() == 24 && last.ends_with(".000Z"), "{last}");
        assert_eq!(usage["location_update_roaming_count_7d"], 1.0, "{usage:?}");
        for key in usage.keys() {
            assert!(
                key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{key} reads as a name"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn customers_and_lines_are_deleted_softly_audited_and_with_their_lines() {
    on_both(async |t| {
        let w = world(t).await;
        let admin = t.admin();
        // Who may not write customers, or does not see this one, cannot delete it.
        t.delete(&w.agent.token, &format!("/api/v1/customers/{}", w.c1))
            .await
            .expect(403);
        t.delete(&w.am2.token, &format!("/api/v1/customers/{}", w.c1))
            .await
            .expect(404);
        t.delete(&w.ent_admin.token, &format!("/api/v1/customers/{}", w.ent))
            .await
            .expect(403);
        // An enterprise with a subsidiary is refused, saying what to do.
        let r = t
            .delete(admin, &format!("/api/v1/customers/{}", w.ent))
            .await;
        assert_eq!(r.status, 409, "{}", r.body);
        assert!(r.body["message"].as_str().unwrap().contains("subsidiaries"));

        t.events.take();
        t.delete(&w.am1.token, &format!("/api/v1/customers/{}", w.c1))
            .await
            .expect(204);
        t.get(admin, &format!("/api/v1/customers/{}", w.c1))
            .await
            .expect(404);
        t.get(admin, "/api/v1/lines/8613900001001")
            .await
            .expect(404);
        let names: Vec<String> = t
            .get(admin, "/api/v1/customers?limit=100")
            .await
            .expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        assert!(!names.contains(&"c1".to_string()), "{names:?}");
        // The engine hears that the number is the CRM's no more.
        let evs = t.events.take();
        assert_eq!(evs.len(), 1);
        let ev = serde_json::to_value(&evs[0]).unwrap();
        assert_eq!(ev["msisdn"], "8613900001001");
        assert_eq!(
            ev["attrs"],
            json!({"field": "known", "old": true, "new": false})
        );
        let audit = t
            .get(
                admin,
                &format!(
                    "/api/v1/audit?entity=customer&action=delete&customer_id={}",
                    w.c1
                ),
            )
            .await
            .expect(200);
        assert_eq!(audit["total"], 1);
        assert_eq!(audit["items"][0]["before"]["name"], "c1");
        t.delete(admin, &format!("/api/v1/customers/{}", w.c1))
            .await
            .expect(404);

        // A line alone: the customer stays.
        t.delete(&w.am2.token, "/api/v1/lines/8613900001002")
            .await
            .expect(204);
        t.get(admin, "/api/v1/lines/8613900001002")
            .await
            .expect(404);
        t.get(admin, &format!("/api/v1/customers/{}", w.c2))
            .await
            .expect(200);
        let lines = t
            .get(admin, &format!("/api/v1/lines?customer_id={}", w.c2))
            .await
            .expect(200);
        assert_eq!(lines["total"], 0);
        let audit = t
            .get(admin, "/api/v1/audit?entity=line&action=delete")
            .await
            .expect(200);
        assert_eq!(audit["items"][0]["before"]["msisdn"], "8613900001002");
        let view = t
            .get(admin, &format!("/api/v1/customers/{}/view", w.c2))
            .await
            .expect(200);
        assert_eq!(view["lines"], json!([]), "a deleted line is not in the 360 view");

        // The number of a deleted line: another customer may not take it (its history would
        // pass with it), on the API or in an import; its own customer takes the line back.
        let gone_id = audit["items"][0]["before"]["id"].as_str().unwrap().to_string();
        let new_line = |c: &str| json!({"customer_id": c, "msisdn": "8613900001002", "plan": "basic_39"});
        let r = t.post(admin, "/api/v1/lines", new_line(&w.c3)).await;
        assert_eq!(r.status, 409, "{}", r.body);
        assert!(r.body["message"].as_str().unwrap().contains("another customer"), "{}", r.body);
        let (reports, _) = import(t, admin, "application/x-ndjson", json!({"external_id": "X-1", "name": "x",
            "customer_type": "individual", "lines": [{"msisdn": "8613900001002", "plan": "basic_39"}]}).to_string()).await;
        assert_eq!((reports[0]["result"].as_str(), reports[0]["field"].as_str()), (Some("failed"), Some("lines[0].msisdn")), "{reports:?}");
        let back = t.post(admin, "/api/v1/lines", new_line(&w.c2)).await.expect(201);
        assert_eq!(back["id"], gone_id.as_str());
        assert_eq!(back["status"], "active");
        t.get(admin, "/api/v1/lines/8613900001002").await.expect(200);
        let restored = t
            .get(admin, &format!("/api/v1/audit?entity=line&action=restore&entity_id={gone_id}"))
            .await
            .expect(200);
        assert_eq!(restored["total"], 1);
    })
    .await;
}

#[tokio::test]
async fn the_segment_grammar_is_in_the_document_and_previews_page() {
    on_both(async |t| {
        let doc = t.get(t.admin(), "/api/v1/openapi.json").await.expect(200);
        let criteria = &doc["components"]["schemas"]["Criteria"];
        let shapes = criteria["oneOf"].as_array().expect("criteria is one of its shapes");
        assert_eq!(shapes.len(), 5, "{criteria}");
        let text = criteria.to_string();
        for name in ["value_tier", "tenure_months", "accepted_offers_90d", "not_in"] {
            assert!(text.contains(name), "{name} is documented: {text}");
        }
        assert!(criteria["example"]["all"].is_array(), "{criteria}");
        let new_segment = &doc["components"]["schemas"]["NewSegment"]["properties"]["criteria"];
        assert_eq!(new_segment["$ref"], "#/components/schemas/Criteria");

        let w = world(t).await;
        let seg = t
            .post(&w.marketer.token, "/api/v1/segments",
                json!({"name": "Everyone", "criteria": {"all": [{"field": "customer_type", "op": "=", "value": "individual"}]}}))
            .await
            .expect(201);
        let path = format!("/api/v1/segments/{}/preview", id(&seg));
        let first = t.get(&w.marketer.token, &format!("{path}?limit=2")).await.expect(200);
        assert_eq!(first["total"], 3, "{first}");
        assert_eq!(first["items"].as_array().unwrap().len(), 2);
        let after = first["next_after"].as_str().expect("a next page");
        let second = t.get(&w.marketer.token, &format!("{path}?limit=2&after={after}")).await.expect(200);
        assert_eq!(second["items"].as_array().unwrap().len(), 1);
        assert!(second.get("next_after").is_none(), "{second}");
        let all: Vec<&Value> = first["items"].as_array().unwrap().iter().chain(second["items"].as_array().unwrap()).collect();
        let mut msisdns: Vec<&str> = all.iter().map(|m| m["msisdn"].as_str().unwrap()).collect();
        msisdns.sort();
        assert_eq!(msisdns, ["8613900001001", "8613900001002", "8613900001003"]);
        t.get(&w.marketer.token, &format!("{path}?offset=2")).await.expect_field("offset");
    })
    .await;
}

/// The operator's first two hours, through the documented API only: an organisation, a
/// catalog, 200 customers in one upload (and the retry), search by phone, a segment campaign
/// with four-eyes approval, events, the agent and the account manager at work, and the
/// statistics exported.
#[tokio::test]
async fn an_operators_first_two_hours_work_the_first_time() {
    crate::real_engine::on_both_engine(async |t| {
        let admin = t.admin();
        // Organisation and people.
        let east = t.region("East").await;
        let team = t.team("Gold desk", &east).await;
        let am = t.user("li.am", "account_manager", json!({"team_id": team, "region_id": east})).await;
        let lead = t.user("wang.lead", "team_lead", json!({"team_id": team})).await;
        let mk = t.user("zhao.mk", "marketer", json!({})).await;
        let agent = t.user("sun.agent", "agent", json!({"region_id": east})).await;
        let me = t.get(&mk.token, "/api/v1/auth/me").await.expect(200);
        assert!(me["permissions"].as_array().unwrap().contains(&json!("manage_campaigns")));
        // Catalog.
        t.plan("basic_39").await;
        t.post(admin, "/api/v1/catalog/offerings",
            json!({"code": "DATA10", "name": "10GB data pack", "offering_type": "addon", "price_cents": 1500}))
            .await
            .expect(201);
        // 200 customers, each with an account, a line and an email, in one upload.
        let body: String = (0..200)
            .map(|i| {
                let mut r = customer_line(i);
                r["account_manager_id"] = json!(am.id);
                r["region_id"] = json!(east);
                format!("{r}\n")
            })
            .collect();
        let (_, summary) = import(t, admin, "application/x-ndjson", body.clone()).await;
        assert_eq!(summary, json!({"records": 200, "created": 200, "updated": 0, "failed": 0}));
        let (_, summary) = import(t, admin, "application/x-ndjson", body).await;
        assert_eq!(summary["created"], 0);
        assert_eq!(summary["updated"], 200);
        // The agent finds a caller by the number they call from.
        let found = t.get(&agent.token, "/api/v1/customers?q=8613920000040").await.expect(200);
        assert_eq!(found["total"], 1);
        assert_eq!(found["items"][0]["external_id"], "BOSS-0040");
        let cid = found["items"][0]["id"].as_str().unwrap().to_string();
        // A segment campaign to the gold customers, approved by a second person.
        let seg = t
            .post(&mk.token, "/api/v1/segments",
                json!({"name": "Gold", "criteria": {"all": [{"field": "value_tier", "op": "=", "value": "gold"}]}}))
            .await
            .expect(201);
        let preview = t.get(&mk.token, &format!("/api/v1/segments/{}/preview?limit=5", id(&seg))).await.expect(200);
        assert_eq!(preview["total"], 20);
        let now = chrono::Utc::now();
        let c = t
            .post(&mk.token, "/api/v1/campaigns",
                json!({"name": "Gold data", "segment_id": id(&seg), "budget_cents": 100000,
                    "offer_code": "DATA10", "message": "Hi {name}, 10GB for you", "channels": ["sms"],
                    "rule_ids": [], "start_at": (now - chrono::Duration::hours(1)).to_rfc3339(),
                    "end_at": (now + chrono::Duration::days(7)).to_rfc3339()}))
            .await
            .expect(201);
        let transition = format!("/api/v1/campaigns/{}/transition", id(&c));
        let go = async |who: &str, to: &str| {
            t.post(who, &transition, json!({"to": to, "note": to})).await
        };
        go(&mk.token, "submitted").await.expect(200);
        let selfish = go(&mk.token, "approved").await;
        assert_eq!(selfish.status, 403, "{}", selfish.body);
        go(&lead.token, "approved").await.expect(200);
        let run = t.post(&mk.token, &format!("/api/v1/campaigns/{}/launch", id(&c)), json!({})).await.expect(200);
        assert_eq!(run["targeted"], 20, "{run}");
        assert_eq!(run["sent"], 20, "{run}");
        // Events: one answer per event.
        let ev = json!({"id": "walk-1", "type": "location_update", "msisdn": "8613920000040",
            "ts": chrono::Utc::now().to_rfc3339(), "attrs": {"country": "JP", "roaming": true}});
        let r = t.post(admin, "/api/v1/events?wait=true", ev).await.expect(200);
        assert_eq!(r["events"][0]["result"], "accepted", "{r}");
        // The agent at the desk: the 360 view, the next-best offers, an answer with its reason.
        let view = t.get(&agent.token, &format!("/api/v1/customers/{cid}/view")).await.expect(200);
        assert_eq!(view["customer"]["name"], "Customer 40");
        let offers = t.get(&agent.token, "/api/v1/agent/subscribers/8613920000040/offers").await.expect(200);
        assert!(offers["items"].is_array(), "{offers}");
        let recs = t.get(&agent.token, "/api/v1/recommendations?msisdn=8613920000040").await.expect(200);
        let rec = recs["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["offer_code"] == "DATA10")
            .cloned()
            .unwrap_or_else(|| panic!("the campaign offer: {recs}"));
        let rid = rec["id"].as_str().unwrap();
        t.post(&agent.token, &format!("/api/v1/recommendations/{rid}/response"),
            json!({"outcome": "accepted", "reason": "upgrading for the trip"}))
            .await
            .expect(200);
        let timeline = t.get(&am.token, &format!("/api/v1/customers/{cid}/interactions?source=offer_response")).await.expect(200);
        assert_eq!(timeline["items"][0]["summary"], "accepted: upgrading for the trip");
        // The account manager sees their 200 customers; the agent may not change them.
        let mine = t.get(&am.token, "/api/v1/customers?limit=1").await.expect(200);
        assert_eq!(mine["total"], 200);
        let denied = t.patch(&agent.token, &format!("/api/v1/customers/{cid}"), json!({"value_tier": "gold", "version": 1})).await;
        assert_eq!(denied.status, 403);
        assert!(denied.body["allowed_roles"].as_array().unwrap().contains(&json!("account_manager")));
        // Statistics, exported.
        let csv = t.get(&mk.token, "/api/v1/stats/offers?group_by=rule&format=csv").await.expect(200);
        let text = csv.as_str().unwrap();
        assert!(text.lines().count() >= 2, "{text}");
        assert!(text.contains(&format!("campaign:{}", id(&c))), "{text}");
    })
    .await;
}

#[tokio::test]
async fn an_imported_line_brings_its_products_once() {
    on_both(async |t| {
        let admin = t.admin();
        t.plan("basic_39").await;
        let pack = t
            .post(admin, "/api/v1/catalog/offerings",
                json!({"code": "DATA10", "name": "10GB data pack", "offering_type": "addon", "price_cents": 1500}))
            .await
            .expect(201);
        let record = json!({"external_id": "P-1", "name": "With pack", "customer_type": "individual",
            "lines": [{"msisdn": "8613960000001", "plan": "basic_39", "products": ["DATA10"]}]});
        for _ in 0..2 {
            let (r, _) = import(t, admin, "application/json", json!([record]).to_string()).await;
            assert_ne!(r[0]["result"], "failed", "{r:?}");
        }
        let cid = import(t, admin, "application/json", json!([record]).to_string()).await.0[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let subs = t.get(admin, &format!("/api/v1/subscriptions?customer_id={cid}")).await.expect(200);
        assert_eq!(subs["total"], 1, "{subs}");
        assert_eq!(subs["items"][0]["offering_id"], pack["id"]);
        assert_eq!(subs["items"][0]["status"], "active");
        let bad = json!({"external_id": "P-2", "name": "Typo", "customer_type": "individual",
            "lines": [{"msisdn": "8613960000002", "plan": "basic_39", "products": ["DATA100"]}]});
        let (r, _) = import(t, admin, "application/json", json!([bad]).to_string()).await;
        assert_eq!(r[0]["field"], "lines[0].products[0]", "{r:?}");
    })
    .await;
}

#[tokio::test]
async fn service_messages_reach_the_right_party_show_no_ids_and_are_not_offers() {
    crate::real_engine::on_both_engine(async |t| {
        let w = world(t).await;
        let st = &t.app.state;
        let now = chrono::Utc::now();
        let day = |d: i64| (now + chrono::Duration::days(d)).format("%Y-%m-%d").to_string();
        // The enterprise has an employee's line; its contract is not that employee's business.
        t.line(&w.ent, "8613900002001").await;
        let g = t
            .post(&w.am1.token, "/api/v1/agreements", json!({"customer_id": w.ent,
                "name": "Fleet 2026", "start_date": day(-300), "end_date": day(20), "reminder_days": 30}))
            .await
            .expect(201);
        let gid = id(&g);
        t.events.take();
        let run = kairos::crm::agreements::reminders::run_once(st, now).await.unwrap();
        let r = &run.reminded[0];
        assert_eq!((r.addressed, r.event_id.as_deref()), ("none", None), "{run:?}");

        // A contract contact: a phone contact with the role `contract` (roles are a closed set).
        let contacts = format!("/api/v1/customers/{}/contacts", w.ent);
        t.post(&w.am1.token, &contacts, json!({"medium_type": "phone", "phone_number": "8613700000009", "role": "boss"}))
            .await
            .expect_field("role");
        let c = t
            .post(&w.am1.token, &contacts, json!({"medium_type": "phone", "phone_number": "8613700000009",
                "role": "contract", "contact_name": "Ms Li"}))
            .await
            .expect(201);
        assert_eq!(c["role"], "contract");
        // The next period is reminded to the contract contact.
        let v = t.get(&w.am1.token, &format!("/api/v1/agreements/{gid}")).await.expect(200)["version"]
            .as_i64()
            .unwrap();
        t.patch(&w.am1.token, &format!("/api/v1/agreements/{gid}"), json!({"end_date": day(21), "version": v}))
            .await
            .expect(200);
        let run = kairos::crm::agreements::reminders::run_once(st, now).await.unwrap();
        let r = &run.reminded[0];
        assert_eq!(r.addressed, "contract_contact", "{run:?}");
        assert_eq!(r.event_msisdn.as_deref(), Some("8613700000009"));
        assert!(r.event_id.is_some(), "{run:?}");

        // The engine's reminder names the contract as the customer knows it, never its id.
        let messages = decided_for(t, "8613700000009").await;
        let m = &messages.first().expect("a contract reminder was decided")["message"];
        let m = m.as_str().unwrap();
        assert!(m.contains("Fleet 2026") && m.contains(&day(21)), "{m}");
        assert!(!m.contains(&gid), "{m}");
        assert_eq!(messages[0]["service"], true);

        // Service messages are not offers: the statistics count none of them.
        let stats = t
            .get(&w.marketer.token, "/api/v1/stats/offers?group_by=rule")
            .await
            .expect(200);
        assert_eq!(stats["rows"], json!([]), "{stats}");
    })
    .await;
}

#[tokio::test]
async fn contacts_and_members_are_deleted_softly_and_a_member_enrolled_again_comes_back() {
    on_both(async |t| {
        let w = world(t).await;
        let admin = t.admin();
        let contacts = format!("/api/v1/customers/{}/contacts", w.c1);
        let c = t
            .post(
                &w.am1.token,
                &contacts,
                json!({"medium_type": "email", "email_address": "a@b.cn"}),
            )
            .await
            .expect(201);
        assert_eq!(c["role"], "general");
        t.delete(&w.am1.token, &format!("{contacts}/{}", id(&c)))
            .await
            .expect(204);
        t.get(admin, &format!("{contacts}/{}", id(&c)))
            .await
            .expect(404);
        assert_eq!(t.get(admin, &contacts).await.expect(200)["total"], 0);
        let view = t
            .get(admin, &format!("/api/v1/customers/{}/view", w.c1))
            .await
            .expect(200);
        assert_eq!(view["contacts"], json!([]), "{view}");
        let audit = t
            .get(
                admin,
                &format!(
                    "/api/v1/audit?entity=contact_medium&action=delete&entity_id={}",
                    id(&c)
                ),
            )
            .await
            .expect(200);
        assert_eq!(audit["items"][0]["before"]["email_address"], "a@b.cn");

        // A member removed, then enrolled again: one record, its history one trail.
        let members = format!("/api/v1/customers/{}/members", w.ent);
        t.line(&w.ent, "8613900002002").await;
        let m = t
            .post(
                admin,
                &members,
                json!({"name": "Wang", "msisdn": "8613900002002"}),
            )
            .await
            .expect(201);
        t.delete(admin, &format!("{members}/{}", id(&m)))
            .await
            .expect(204);
        t.get(admin, &format!("{members}/{}", id(&m)))
            .await
            .expect(404);
        let before = t.get(admin, &members).await.expect(200)["total"]
            .as_i64()
            .unwrap();
        let again = t
            .post(
                admin,
                &members,
                json!({"name": "Wang Wei", "msisdn": "8613900002002", "department": "Sales"}),
            )
            .await
            .expect(201);
        assert_eq!(id(&again), id(&m));
        assert_eq!(
            (again["name"].as_str(), again["version"].as_i64()),
            (Some("Wang Wei"), Some(3))
        );
        assert_eq!(
            t.get(admin, &members).await.expect(200)["total"]
                .as_i64()
                .unwrap(),
            before + 1
        );
        let trail: Vec<String> = t
            .get(
                admin,
                &format!(
                    "/api/v1/audit?entity=enterprise_member&entity_id={}&sort=at",
                    id(&m)
                ),
            )
            .await
            .expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap().to_string())
            .collect();
        let mut sorted = trail.clone();
        sorted.sort();
        assert_eq!(sorted, ["create", "delete", "restore"], "{trail:?}");
    })
    .await;
}

/// What goes with a deleted line goes with it: its subscriptions end, its number leaves the
/// enterprise groups it was enrolled in, and a customer deleted with its lines leaves an
/// audit record for each line as well as for itself.
#[tokio::test]
async fn a_deleted_line_takes_its_subscriptions_and_memberships_with_it() {
    on_both(async |t| {
        let w = world(t).await;
        let admin = t.admin();
        t.post(
            admin,
            "/api/v1/catalog/offerings",
            json!({"code": "DATA_5G", "name": "5 GB",
            "offering_type": "addon", "price_cents": 1500}),
        )
        .await
        .expect(201);
        let line = t
            .get(admin, "/api/v1/lines/8613900001002")
            .await
            .expect(200);
        let on_line = t
            .post(
                admin,
                "/api/v1/subscriptions",
                json!({"customer_id": w.c2,
                "line_id": line["id"], "offering_id": "DATA_5G", "status": "active"}),
            )
            .await
            .expect(201);
        let members = format!("/api/v1/customers/{}/members", w.ent);
        t.post(
            admin,
            &members,
            json!({"name": "Wang", "msisdn": "8613900001002"}),
        )
        .await
        .expect(201);
        assert_eq!(t.get(admin, &members).await.expect(200)["total"], 1);

        t.delete(admin, "/api/v1/lines/8613900001002")
            .await
            .expect(204);
        let s = t
            .get(admin, &format!("/api/v1/subscriptions/{}", id(&on_line)))
            .await
            .expect(200);
        assert_eq!(s["status"], "terminated", "{s}");
        assert!(s["termination_date"].is_string(), "{s}");
        assert_eq!(t.get(admin, &members).await.expect(200)["total"], 0);

        // A customer with two lines and a subscription on none: all of it ends, each audited.
        t.line(&w.c1, "8613900001011").await;
        let off_line = t
            .post(
                admin,
                "/api/v1/subscriptions",
                json!({"customer_id": w.c1,
                "offering_id": "DATA_5G", "status": "active"}),
            )
            .await
            .expect(201);
        t.delete(admin, &format!("/api/v1/customers/{}", w.c1))
            .await
            .expect(204);
        // The API hides a deleted customer's records; the rows stay, ended.
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, status FROM subscriptions WHERE customer_id = $1 ORDER BY id",
        )
        .bind(&w.c1)
        .fetch_all(&t.app.state.db.pool)
        .await
        .unwrap();
        assert!(rows.iter().any(|(i, _)| *i == id(&off_line)), "{rows:?}");
        assert!(rows.iter().all(|(_, s)| s == "terminated"), "{rows:?}");
        let audit = t
            .get(
                admin,
                &format!(
                    "/api/v1/audit?entity=line&action=delete&customer_id={}",
                    w.c1
                ),
            )
            .await
            .expect(200);
        let mut gone: Vec<&str> = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["before"]["msisdn"].as_str().unwrap())
            .collect();
        gone.sort();
        assert_eq!(gone, ["8613900001001", "8613900001011"], "{audit}");
    })
    .await;
}

/// Dates are written one way (`YYYY-MM-DD`); a field that may be a day or a moment keeps a
/// day as it is and writes a moment in UTC to the millisecond, as every time on output.
#[tokio::test]
async fn dates_and_times_are_written_one_way() {
    on_both(async |t| {
        let admin = t.admin();
        t.post(
            admin,
            "/api/v1/parties",
            json!({"party_type": "individual", "given_name": "Li",
            "family_name": "Wei", "birth_date": "1990-05-01T00:00:00+08:00"}),
        )
        .await
        .expect_field("birth_date");
        let p = t
            .post(
                admin,
                "/api/v1/parties",
                json!({"party_type": "individual", "given_name": "Li",
                "family_name": "Wei", "birth_date": "1990-05-01"}),
            )
            .await
            .expect(201);
        assert_eq!(p["birth_date"], "1990-05-01");
        let c = t.customer("timed", json!({})).await;
        let l = t
            .post(
                admin,
                "/api/v1/lines",
                json!({"customer_id": id(&c), "msisdn": "8613900007001",
                "plan": "basic_39", "activated_at": "2026-12-01T09:30:00+08:00"}),
            )
            .await;
        // The plan exists once any line was made through the kit; make one if not.
        let l = if l.status == 400 {
            t.line(&id(&c), "8613900007002").await;
            t.post(
                admin,
                "/api/v1/lines",
                json!({"customer_id": id(&c), "msisdn": "8613900007001",
                "plan": "basic_39", "activated_at": "2026-12-01T09:30:00+08:00"}),
            )
            .await
            .expect(201)
        } else {
            l.expect(201)
        };
        assert_eq!(l["activated_at"], "2026-12-01T01:30:00.000Z", "{l}");
        t.post(
            admin,
            "/api/v1/lines",
            json!({"customer_id": id(&c), "msisdn": "8613900007003",
            "plan": "basic_39", "activated_at": "1st of December"}),
        )
        .await
        .expect_field("activated_at");
    })
    .await;
}

/// A customer is found by the id document of its party, exactly; the allowed values are in
/// the error for every closed set, not only tiers.
#[tokio::test]
async fn customers_are_found_by_id_document_and_every_closed_set_says_its_values() {
    on_both(async |t| {
        let admin = t.admin();
        let party = t
            .post(
                admin,
                "/api/v1/parties",
                json!({"party_type": "organization",
                "trading_name": "Acme", "registration_number": "91310000MA1K"}),
            )
            .await
            .expect(201);
        t.customer(
            "Acme Ltd",
            json!({"customer_type": "enterprise", "party_id": party["id"]}),
        )
        .await;
        t.customer("Other", json!({})).await;
        let r = t
            .get(admin, "/api/v1/customers?q=91310000MA1K")
            .await
            .expect(200);
        assert_eq!(r["total"], 1, "{r}");
        assert_eq!(r["items"][0]["name"], "Acme Ltd");
        for (field, value, allowed) in [
            ("segment", "yuth", "must be one of "),
            ("credit_class", "Z", "must be one of A, B, C, D, E"),
        ] {
            let r = t
                .post(
                    admin,
                    "/api/v1/customers",
                    json!({"name": "x", "customer_type": "individual", field: value}),
                )
                .await;
            assert_eq!(r.status, 400, "{}", r.body);
            assert_eq!(r.body["field"], field);
            let m = r.body["message"].as_str().unwrap();
            assert!(m.contains(allowed), "{field}: {m}");
            if field == "segment" {
                assert!(
                    m.contains("youth"),
                    "the operator's segments are listed: {m}"
                );
            }
        }
    })
    .await;
}

/// The account manager's own notice: an in-app notice, and an SMS to their phone marked as a
/// service message, which the offer statistics do not count.
#[tokio::test]
async fn the_account_managers_contract_notice_is_a_service_message_not_an_offer() {
    crate::real_engine::on_both_engine(async |t| {
        let w = world(t).await;
        let st = &t.app.state;
        let now = chrono::Utc::now();
        let day = |d: i64| (now + chrono::Duration::days(d)).format("%Y-%m-%d").to_string();
        let user = t
            .get(t.admin(), &format!("/api/v1/users/{}", w.am1.id))
            .await
            .expect(200);
        t.patch(t.admin(), &format!("/api/v1/users/{}", w.am1.id),
            json!({"phone": "8613800000071", "version": user["version"]}))
            .await
            .expect(200);
        t.post(&w.am1.token, "/api/v1/agreements", json!({"customer_id": w.c1,
            "name": "Home 2026", "start_date": day(-300), "end_date": day(10), "reminder_days": 30}))
            .await
            .expect(201);
        let run = kairos::crm::agreements::reminders::run_once(st, now).await.unwrap();
        assert_eq!(run.reminded.len(), 1, "{run:?}");
        assert_eq!(run.reminded[0].notified_user_id.as_deref(), Some(w.am1.id.as_str()));
        let notices = t.get(&w.am1.token, "/api/v1/notices").await.expect(200);
        assert_eq!(notices["total"], 1, "{notices}");
        let sms = decided_for(t, "8613800000071")
            .await
            .first()
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(sms["service"], true, "{sms}");
        assert_eq!(sms["channel"], "sms", "{sms}");
        assert!(sms["message"].as_str().unwrap().contains("Home 2026"), "{sms}");
        let stats = t
            .get(&w.marketer.token, "/api/v1/stats/offers?group_by=rule")
            .await
            .expect(200);
        assert_eq!(stats["rows"], json!([]), "{stats}");
    })
    .await;
}

/// A final answer recorded wrongly is corrected by its own action: for a team lead, with a
/// reason, on the timeline and in the audit trail; not by the account manager who answered.
#[tokio::test]
async fn a_wrong_answer_is_corrected_by_an_audited_action() {
    on_both(async |t| {
        let w = world(t).await;
        t.store_rec(&sms_rec("r-fix", "8613900001001")).await;
        let fix = "/api/v1/recommendations/r-fix/correction";
        // Nothing to correct before an answer.
        let r = t
            .post(
                &w.lead.token,
                fix,
                json!({"outcome": "declined", "reason": "x"}),
            )
            .await;
        assert_eq!(r.status, 409, "{}", r.body);
        t.post(
            &w.am1.token,
            "/api/v1/recommendations/r-fix/response",
            json!({"outcome": "accepted", "reason": "pressed by mistake"}),
        )
        .await
        .expect(200);
        let denied = t
            .post(
                &w.am1.token,
                fix,
                json!({"outcome": "declined", "reason": "wrong button"}),
            )
            .await;
        assert_eq!(denied.status, 403, "{}", denied.body);
        assert_eq!(denied.body["permission"], "correct_answers");
        t.post(&w.lead.token, fix, json!({"outcome": "declined"}))
            .await
            .expect(400);
        t.post(
            &w.lead.token,
            fix,
            json!({"outcome": "ignored", "reason": "x"}),
        )
        .await
        .expect_field("outcome");
        let r = t
            .post(
                &w.lead.token,
                fix,
                json!({"outcome": "declined", "reason": "agent pressed accept for a decline"}),
            )
            .await
            .expect(200);
        assert_eq!(r["status"], "declined");
        let again = t
            .post(
                &w.lead.token,
                fix,
                json!({"outcome": "declined", "reason": "again"}),
            )
            .await;
        assert_eq!(again.status, 409, "{}", again.body);
        let timeline = t
            .get(
                &w.am1.token,
                &format!(
                    "/api/v1/customers/{}/interactions?source=offer_response",
                    w.c1
                ),
            )
            .await
            .expect(200);
        assert_eq!(timeline["total"], 2, "{timeline}");
        let summaries: Vec<&str> = timeline["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["summary"].as_str().unwrap())
            .collect();
        assert!(
            summaries.contains(&"declined: agent pressed accept for a decline"),
            "{summaries:?}"
        );
        let audit = t
            .get(
                t.admin(),
                "/api/v1/audit?entity=recommendation&action=correct",
            )
            .await
            .expect(200);
        assert_eq!(audit["total"], 1, "{audit}");
        assert_eq!(audit["items"][0]["before"]["status"], "accepted");
        assert_eq!(
            audit["items"][0]["after"]["recommendation"]["status"],
            "declined"
        );
        assert_eq!(audit["items"][0]["actor_id"], w.lead.id.as_str());
    })
    .await;
}

/// A customer deleted here whom the operator's system sends again comes back, audited, with
/// the lines the record lists (its other deleted lines stay deleted); an upload over the
/// import limit is a 413 with the JSON error body naming the setting.
#[tokio::test]
async fn a_deleted_customer_sent_again_by_an_import_comes_back() {
    on_both(async |t| {
        let admin = t.admin();
        t.plan("basic_39").await;
        let mut rec = customer_line(7);
        rec["lines"]
            .as_array_mut()
            .unwrap()
            .push(json!({"msisdn": "8613920099999", "plan": "basic_39", "account": "home"}));
        let (r, _) = import(t, admin, "application/x-ndjson", rec.to_string()).await;
        assert_eq!(r[0]["result"], "created", "{r:?}");
        let cid = r[0]["id"].as_str().unwrap().to_string();
        t.delete(admin, &format!("/api/v1/customers/{cid}"))
            .await
            .expect(204);
        t.get(admin, &format!("/api/v1/customers/{cid}"))
            .await
            .expect(404);

        // The record again, with only its first line.
        let again = customer_line(7);
        let (r, summary) = import(t, admin, "application/x-ndjson", again.to_string()).await;
        assert_eq!(r[0]["result"], "updated", "{r:?}");
        assert_eq!(r[0]["id"], cid.as_str(), "the same customer, not a new one");
        assert_eq!(summary["failed"], 0);
        let c = t
            .get(admin, &format!("/api/v1/customers/{cid}"))
            .await
            .expect(200);
        assert_eq!(c["status"], "active");
        t.get(admin, "/api/v1/lines/8613920000007")
            .await
            .expect(200);
        t.get(admin, "/api/v1/lines/8613920099999")
            .await
            .expect(404);
        let audit = t
            .get(
                admin,
                &format!("/api/v1/audit?entity=customer&action=restore&customer_id={cid}"),
            )
            .await
            .expect(200);
        assert_eq!(audit["total"], 1, "{audit}");
        // The same file once more changes nothing.
        let v = c["version"].clone();
        import(t, admin, "application/x-ndjson", again.to_string()).await;
        let c = t
            .get(admin, &format!("/api/v1/customers/{cid}"))
            .await
            .expect(200);
        assert_eq!(c["version"], v);
    })
    .await;
    crate::common::on_both_with(
        |c| c.crm.import_max_bytes = 64,
        async |t| {
            let resp = t
                .http
                .post(format!("{}/api/v1/import/customers", t.base))
                .bearer_auth(t.admin())
                .header("content-type", "application/x-ndjson")
                .body(customer_line(1).to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 413);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "payload_too_large", "{body}");
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("crm.import_max_bytes"),
                "{body}"
            );
        },
    )
    .await;
}
