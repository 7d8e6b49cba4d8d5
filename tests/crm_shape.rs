//! One shape everywhere and permissions one can read: every 403 names the permission and the
//! roles that may, `/auth/me` claims no more than the role may do, lists that grow are paged
//! with a real total, a body over the limit answers the JSON error body, and an idempotent
//! replay keeps the first answer's headers. On both databases.

use serde_json::{json, Value};

use crate::common::world::{id, world};
use crate::common::{on_both, on_both_with, TestApp};

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

const OPERATOR_STAFF: [&str; 4] = ["admin", "region_head", "team_lead", "account_manager"];

#[tokio::test]
async fn an_enterprise_admins_403_on_a_customer_edit_names_the_permission_and_who_may() {
    on_both(async |t| {
        let w = world(t).await;
        let ent = &w.ent_admin.token;
        let edit = t
            .patch(
                ent,
                &format!("/api/v1/customers/{}", w.ent),
                json!({"name": "Mine now", "version": 1}),
            )
            .await;
        assert_eq!(edit.status, 403, "{}", edit.body);
        assert_eq!(edit.body["error"], "forbidden");
        assert_eq!(edit.body["permission"], "write_operator_records");
        assert_eq!(strings(&edit.body["allowed_roles"]), OPERATOR_STAFF);
        let message = edit.body["message"].as_str().unwrap();
        assert!(
            message.contains("enterprise_admin") && message.contains("account_manager"),
            "{message}"
        );
        // Delete and import say the same; the record is unchanged.
        let gone = t.delete(ent, &format!("/api/v1/customers/{}", w.ent)).await;
        assert_eq!(gone.status, 403, "{}", gone.body);
        assert_eq!(gone.body["permission"], "write_operator_records");
        let (s, _, body) = t
            .post_raw(
                ent,
                "/api/v1/import/customers",
                &[("content-type", "application/x-ndjson")],
                json!({"external_id": "E-1", "name": "x", "customer_type": "individual"})
                    .to_string(),
            )
            .await;
        assert_eq!(s, 403, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(strings(&body["allowed_roles"]), OPERATOR_STAFF);
        let c = t
            .get(t.admin(), &format!("/api/v1/customers/{}", w.ent))
            .await
            .expect(200);
        assert_eq!(c["name"], "ent");
        // What they may do still works: a contact of their enterprise.
        t.post(
            ent,
            &format!("/api/v1/customers/{}/contacts", w.ent),
            json!({"medium_type": "email", "email_address": "it@ent.example"}),
        )
        .await
        .expect(201);
    })
    .await;
}

#[tokio::test]
async fn auth_me_lists_the_operator_write_permission_only_for_operator_staff() {
    on_both(async |t| {
        let w = world(t).await;
        let perms = async |token: &str| {
            let me = t.get(token, "/api/v1/auth/me").await.expect(200);
            strings(&me["permissions"])
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let ent = perms(&w.ent_admin.token).await;
        assert!(
            !ent.iter().any(|p| p == "write_operator_records"),
            "{ent:?}"
        );
        assert!(ent.iter().any(|p| p == "write_customers"), "{ent:?}");
        for staff in [&w.am1, &w.lead, &w.head] {
            let mine = perms(&staff.token).await;
            assert!(
                mine.iter().any(|p| p == "write_operator_records"),
                "{mine:?}"
            );
        }
        // The matrix says what each permission covers and who has it.
        let matrix = t
            .get(&w.agent.token, "/api/v1/auth/roles")
            .await
            .expect(200);
        let about = |name: &str| {
            matrix["permissions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("{name} in {matrix}"))
        };
        let write = about("write_customers");
        assert!(write["description"]
            .as_str()
            .unwrap()
            .contains("not the customer record"));
        assert!(strings(&write["roles"]).contains(&"enterprise_admin"));
        assert_eq!(
            strings(&about("write_operator_records")["roles"]),
            OPERATOR_STAFF
        );
    })
    .await;
}

#[tokio::test]
async fn role_refusals_name_the_permission_and_the_roles_that_may() {
    on_both(async |t| {
        let w = world(t).await;
        let check = |r: crate::common::Resp, permission: &str, roles: &[&str]| {
            assert_eq!(r.status, 403, "{}", r.body);
            assert_eq!(r.body["permission"], permission, "{}", r.body);
            assert_eq!(strings(&r.body["allowed_roles"]), roles, "{}", r.body);
        };
        // Admin-only work.
        check(
            t.put(
                &w.lead.token,
                "/api/v1/workflows/repair",
                json!({"steps": ["team_lead"], "sla_hours": 4, "version": 1}),
            )
            .await,
            "manage_workflows",
            &["admin"],
        );
        check(
            t.post(
                &w.am1.token,
                "/api/v1/service-requests/escalations/run",
                json!({}),
            )
            .await,
            "run_jobs",
            &["admin"],
        );
        check(
            t.post(&w.am1.token, "/api/v1/agreements/reminders/run", json!({}))
                .await,
            "run_jobs",
            &["admin"],
        );
        // Dead letters are for all-customers roles.
        check(
            t.get(&w.lead.token, "/api/v1/dead-letters").await,
            "read_dead_letters",
            &["admin", "marketer"],
        );
        // Reading campaigns: whoever plans, approves or measures them.
        check(
            t.get(&w.agent.token, "/api/v1/campaigns").await,
            "read_campaigns",
            &["admin", "marketer", "region_head", "team_lead"],
        );
        // An enterprise admin holds the permission, but interactions are operator staff's.
        let r = t
            .post(
                &w.ent_admin.token,
                "/api/v1/interactions",
                json!({"customer_id": w.ent, "kind": "call", "subject": "x"}),
            )
            .await;
        check(
            r,
            "raise_service_requests",
            &[
                "admin",
                "region_head",
                "team_lead",
                "account_manager",
                "agent",
            ],
        );
    })
    .await;
}

/// A catalog offering, a segment and an approved campaign, by the marketer and the lead.
async fn approved_campaign(t: &TestApp, w: &crate::common::world::World) -> String {
    let mk = &w.marketer.token;
    t.post(
        t.admin(),
        "/api/v1/catalog/offerings",
        json!({"code": "DATA10", "name": "10GB data pack", "offering_type": "addon", "price_cents": 1500}),
    )
    .await
    .expect(201);
    let seg = t
        .post(
            mk,
            "/api/v1/segments",
            json!({"name": "Individuals", "criteria": {"all": [{"field": "customer_type", "op": "=", "value": "individual"}]}}),
        )
        .await
        .expect(201);
    let now = chrono::Utc::now();
    let c = t
        .post(
            mk,
            "/api/v1/campaigns",
            json!({"name": "Paged", "segment_id": id(&seg), "offer_code": "DATA10", "message": "m",
                "channels": ["sms"], "start_at": (now - chrono::Duration::hours(1)).to_rfc3339(),
                "end_at": (now + chrono::Duration::days(7)).to_rfc3339()}),
        )
        .await
        .expect(201);
    let cid = id(&c);
    for (token, to) in [(mk, "submitted"), (&w.lead.token, "approved")] {
        t.post(
            token,
            &format!("/api/v1/campaigns/{cid}/transition"),
            json!({"to": to}),
        )
        .await
        .expect(200);
    }
    cid
}

#[tokio::test]
async fn campaign_runs_and_history_are_paged_with_the_real_total() {
    on_both(async |t| {
        let w = world(t).await;
        let mk = &w.marketer.token;
        let cid = approved_campaign(t, &w).await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            let run = t
                .post(mk, &format!("/api/v1/campaigns/{cid}/launch"), json!({}))
                .await
                .expect(200);
            ids.push(run["id"].clone());
        }
        let runs = format!("/api/v1/campaigns/{cid}/runs");
        let first = t.get(mk, &format!("{runs}?limit=1")).await.expect(200);
        assert_eq!(first["items"].as_array().unwrap().len(), 1, "{first}");
        assert_eq!(
            (first["total"].as_i64(), first["limit"].as_i64()),
            (Some(3), Some(1)),
            "{first}"
        );
        assert_eq!(first["items"][0]["id"], ids[0], "oldest first");
        let last = t
            .get(mk, &format!("{runs}?limit=1&offset=2"))
            .await
            .expect(200);
        assert_eq!(last["items"][0]["id"], ids[2], "{last}");
        assert_eq!(last["total"], 3);
        let past = t.get(mk, &format!("{runs}?offset=3")).await.expect(200);
        assert_eq!(
            (
                past["items"].as_array().unwrap().len(),
                past["total"].as_i64()
            ),
            (0, Some(3))
        );
        t.get(mk, &format!("{runs}?limit=0"))
            .await
            .expect_field("limit");
        t.get(mk, &format!("{runs}?sort=id"))
            .await
            .expect_field("sort");

        let history = format!("/api/v1/campaigns/{cid}/history");
        let all = t.get(mk, &history).await.expect(200);
        let n = all["items"].as_array().unwrap().len() as i64;
        assert!(n >= 3, "{all}");
        assert_eq!(all["total"], n);
        let one = t
            .get(mk, &format!("{history}?limit=1&offset=1"))
            .await
            .expect(200);
        assert_eq!(one["items"].as_array().unwrap().len(), 1);
        assert_eq!(one["total"], n);
        assert_eq!(one["items"][0], all["items"][1]);
    })
    .await;
}

#[tokio::test]
async fn a_service_requests_history_is_paged_with_the_real_total() {
    on_both(async |t| {
        let w = world(t).await;
        let r = t
            .post(
                &w.am1.token,
                "/api/v1/service-requests",
                json!({"customer_id": w.c1, "request_type": "repair", "title": "No signal"}),
            )
            .await
            .expect(201);
        let path = format!("/api/v1/service-requests/{}", id(&r));
        t.post(
            &w.am1.token,
            &format!("{path}/transition"),
            json!({"to": "cancelled"}),
        )
        .await
        .expect(200);
        let all = t
            .get(&w.am1.token, &format!("{path}/history"))
            .await
            .expect(200);
        let n = all["items"].as_array().unwrap().len() as i64;
        assert!(n >= 2, "{all}");
        let page = t
            .get(&w.am1.token, &format!("{path}/history?limit=1"))
            .await
            .expect(200);
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        assert_eq!(page["total"], n);
    })
    .await;
}

#[tokio::test]
async fn a_body_over_the_limit_answers_the_json_error_body() {
    on_both_with(
        |c| c.http.max_body_bytes = 2048,
        async |t| {
            let big = json!({"name": "x".repeat(4096), "customer_type": "individual"}).to_string();
            let json_ct = [("content-type", "application/json")];
            // A JSON body, a raw body, and one buffered for an Idempotency-Key.
            for (path, headers) in [
                ("/api/v1/customers", &json_ct[..]),
                ("/api/v1/service-requests/any/approve", &json_ct[..]),
                (
                    "/api/v1/customers",
                    &[
                        ("content-type", "application/json"),
                        ("idempotency-key", "big-1"),
                    ][..],
                ),
            ] {
                let (s, h, body) = t.post_raw(t.admin(), path, headers, big.clone()).await;
                assert_eq!(s, 413, "{path}: {body}");
                assert!(
                    h["content-type"]
                        .to_str()
                        .unwrap()
                        .starts_with("application/json"),
                    "{path}: {h:?}"
                );
                let v: Value = serde_json::from_str(&body)
                    .unwrap_or_else(|_| panic!("{path}: JSON, not {body}"));
                assert_eq!(v["error"], "payload_too_large", "{path}: {v}");
                assert!(
                    v["message"]
                        .as_str()
                        .unwrap()
                        .contains("http.max_body_bytes"),
                    "{v}"
                );
            }
            // Under the limit all is as before.
            let (s, _, body) = t
                .post_raw(
                    t.admin(),
                    "/api/v1/customers",
                    &json_ct,
                    json!({"name": "small", "customer_type": "individual"}).to_string(),
                )
                .await;
            assert_eq!(s, 201, "{body}");
        },
    )
    .await;
}

#[tokio::test]
async fn an_idempotent_replay_keeps_the_content_type_and_import_records() {
    on_both(async |t| {
        let admin = t.admin();
        let upload = [
            json!({"external_id": "R-1", "name": "Replay one", "customer_type": "individual"}),
            json!({"external_id": "R-2", "name": "Replay two", "customer_type": "individual"}),
        ]
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
        let headers = [
            ("content-type", "application/x-ndjson"),
            ("idempotency-key", "imp-1"),
        ];
        let (s1, h1, b1) = t
            .post_raw(admin, "/api/v1/import/customers", &headers, upload.clone())
            .await;
        let (s2, h2, b2) = t
            .post_raw(admin, "/api/v1/import/customers", &headers, upload)
            .await;
        assert_eq!((s1, s2), (200, 200), "{b1}\n{b2}");
        assert_eq!(b1, b2, "the first answer, replayed");
        assert_eq!(h2["idempotent-replayed"], "true");
        assert_eq!(h1["content-type"], "application/x-ndjson");
        assert_eq!(h2["content-type"], h1["content-type"]);
        assert_eq!(h1["import-records"], "2");
        assert_eq!(h2["import-records"], h1["import-records"]);
        let list = t.get(admin, "/api/v1/customers?q=Replay").await.expect(200);
        assert_eq!(list["total"], 2, "imported once");

        // A JSON answer replays as JSON.
        let headers = [
            ("content-type", "application/json"),
            ("idempotency-key", "c-1"),
        ];
        let body = json!({"name": "Once", "customer_type": "individual"}).to_string();
        let (_, h1, _) = t
            .post_raw(admin, "/api/v1/customers", &headers, body.clone())
            .await;
        let (s, h2, _) = t.post_raw(admin, "/api/v1/customers", &headers, body).await;
        assert_eq!(s, 201);
        assert_eq!(h2["idempotent-replayed"], "true");
        assert_eq!(h2["content-type"], h1["content-type"]);
        assert!(h2.get("import-records").is_none());
    })
    .await;
}
