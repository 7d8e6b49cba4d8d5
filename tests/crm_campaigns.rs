//! Segments, campaigns and launches through the real engine, on SQLite and PostgreSQL.

use crate::common;
use crate::real_engine;

use common::world::{id, world};
use common::{on_both, TestApp};
use real_engine::on_both_engine;
use serde_json::{json, Value};

/// c1 gold / churn 0.8 (am1, T1, East), c2 gold / churn 0.1 (am2, T1, East),
/// c3 platinum / churn 0.9 (am3, T2, West).
async fn set_facts(t: &TestApp, w: &common::world::World) {
    for (c, tier, churn) in [
        (&w.c1, "gold", 0.8),
        (&w.c2, "gold", 0.1),
        (&w.c3, "platinum", 0.9),
    ] {
        t.patch(
            t.admin(),
            &format!("/api/v1/customers/{c}"),
            json!({"value_tier": tier, "churn_score": churn, "version": 1}),
        )
        .await
        .expect(200);
    }
}

fn period() -> (String, String) {
    let now = chrono::Utc::now();
    (
        (now - chrono::Duration::hours(1)).to_rfc3339(),
        (now + chrono::Duration::days(7)).to_rfc3339(),
    )
}

async fn campaign(t: &TestApp, token: &str, segment: &str, channels: Value) -> Value {
    let (start, end) = period();
    t.post(
        token,
        "/api/v1/campaigns",
        json!({"name": format!("Winback {}", uuid::Uuid::new_v4()), "segment_id": segment,
            "budget_cents": 500000, "offer_code": "DATA10", "message": "Hi {name}, 10GB for you",
            "channels": channels, "rule_ids": ["vip-tier-up"], "start_at": start, "end_at": end}),
    )
    .await
    .expect(201)
}

/// The catalog offering the campaigns here offer.
async fn data10(t: &TestApp) -> Value {
    t.post(
        t.admin(),
        "/api/v1/catalog/offerings",
        json!({"code": "DATA10", "name": "10GB data pack", "offering_type": "addon", "price_cents": 1500}),
    )
    .await
    .expect(201)
}

/// A segment of every individual customer.
async fn individuals(t: &TestApp, token: &str) -> Value {
    t.post(
        token,
        "/api/v1/segments",
        json!({"name": "Individuals", "criteria": {"all": [{"field": "customer_type", "op": "=", "value": "individual"}]}}),
    )
    .await
    .expect(201)
}

async fn go(t: &TestApp, token: &str, campaign: &str, to: &str) -> common::Resp {
    t.post(
        token,
        &format!("/api/v1/campaigns/{campaign}/transition"),
        json!({"to": to, "note": format!("to {to}")}),
    )
    .await
}

#[tokio::test]
async fn segment_criteria_are_validated_and_counted_within_scope() {
    on_both(async |t| {
        let w = world(t).await;
        set_facts(t, &w).await;
        let mk = &w.marketer.token;
        let bad = |criteria: Value| json!({"name": "bad", "criteria": criteria});
        for (criteria, field) in [
            (
                json!({"all": [{"field": "value_tier", "op": "=", "value": "gold"}, {"field": "password", "op": "=", "value": "x"}]}),
                "criteria.all[1].field",
            ),
            (
                json!({"all": [{"field": "churn_score", "op": ">=", "value": "high"}]}),
                "criteria.all[0].value",
            ),
            (
                json!({"any": [{"field": "value_tier", "op": "like", "value": "g%"}]}),
                "criteria.any[0].op",
            ),
            (
                json!({"all": [{"history": "accepted_offers_7y", "op": ">=", "value": 1}]}),
                "criteria.all[0].history",
            ),
            (json!({"all": []}), "criteria.all"),
            (json!("value_tier = 'gold'"), "criteria"),
        ] {
            t.post(mk, "/api/v1/segments", bad(criteria))
                .await
                .expect_field(field);
        }
        t.post(
            &w.agent.token,
            "/api/v1/segments",
            json!({"name": "x", "criteria": {"all": [{"field": "plan", "op": "=", "value": "basic_39"}]}}),
        )
        .await
        .expect(403);

        let seg = t
            .post(
                mk,
                "/api/v1/segments",
                json!({"name": "At-risk high value", "criteria": {"all": [
                    {"field": "value_tier", "op": "in", "value": ["gold", "platinum"]},
                    {"field": "churn_score", "op": ">=", "value": 0.5},
                    {"field": "tenure_months", "op": ">=", "value": 0},
                    {"not": {"field": "plan", "op": "=", "value": "unlimited_199"}},
                    {"any": [{"history": "accepted_offers_90d", "op": "=", "value": 0},
                             {"field": "region_id", "op": "!=", "value": "nowhere"}]}
                ]}}),
            )
            .await
            .expect(201);
        let sid = id(&seg);
        let count = |token: String| {
            let path = format!("/api/v1/segments/{sid}/count");
            async move { t.post(&token, &path, json!({})).await.expect(200) }
        };
        let all = count(mk.clone()).await;
        assert_eq!((all["customers"].as_i64(), all["lines"].as_i64()), (Some(2), Some(2)), "{all}");
        // The team lead of T1 and the head of East only see c1.
        for token in [w.lead.token.clone(), w.head.token.clone()] {
            let n = count(token).await;
            assert_eq!(n["lines"], 1, "{n}");
        }
        let preview = t
            .get(mk, &format!("/api/v1/segments/{sid}/preview?limit=5"))
            .await
            .expect(200);
        let mut msisdns: Vec<&str> = preview["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["msisdn"].as_str().unwrap())
            .collect();
        msisdns.sort();
        assert_eq!(msisdns, ["8613900001001", "8613900001003"]);
        assert!(preview["items"][0]["customer_id"].is_string());
        let lead_view = t
            .get(&w.lead.token, &format!("/api/v1/segments/{sid}/preview"))
            .await
            .expect(200);
        assert_eq!(lead_view["items"][0]["customer_id"], w.c1.as_str());
        assert_eq!(lead_view["items"].as_array().unwrap().len(), 1);
        t.get(mk, &format!("/api/v1/segments/{sid}/preview?limit=0"))
            .await
            .expect_field("limit");
        t.get(&w.agent.token, &format!("/api/v1/segments/{sid}/preview"))
            .await
            .expect(403);

        // A history criterion runs on both databases: nobody accepted anything yet.
        let hist = t
            .post(
                mk,
                "/api/v1/segments",
                json!({"name": "Recent acceptors", "criteria": {"all": [{"history": "accepted_offers_90d", "op": ">=", "value": 1}]}}),
            )
            .await
            .expect(201);
        let n = count_of(t, mk, &id(&hist)).await;
        assert_eq!(n, 0);

        // By the account manager's team: T2 holds only c3.
        let teams: Value = t.get(t.admin(), "/api/v1/teams").await.expect(200);
        let t2 = teams["items"]
            .as_array()
            .or(teams.as_array())
            .unwrap()
            .iter()
            .find(|x| x["name"] == "T2")
            .map(|x| x["id"].as_str().unwrap().to_string())
            .unwrap();
        let by_team = t
            .post(
                mk,
                "/api/v1/segments",
                json!({"name": "West team", "criteria": {"all": [{"field": "team_id", "op": "in", "value": [t2]}]}}),
            )
            .await
            .expect(201);
        assert_eq!(count_of(t, mk, &id(&by_team)).await, 1);

        // `not` over a NULL column keeps the row: nobody has an industry here.
        let not_finance = t
            .post(
                mk,
                "/api/v1/segments",
                json!({"name": "Not finance", "criteria": {"not": {"field": "industry", "op": "=", "value": "finance"}}}),
            )
            .await
            .expect(201);
        assert_eq!(count_of(t, mk, &id(&not_finance)).await, 3);

        // Updates revalidate and are versioned.
        t.patch(
            mk,
            &format!("/api/v1/segments/{sid}"),
            json!({"criteria": {"all": [{"field": "arpu_cents", "op": ">=", "value": 1.5}]}, "version": 1}),
        )
        .await
        .expect_field("criteria.all[0].value");
        let updated = t
            .patch(
                mk,
                &format!("/api/v1/segments/{sid}"),
                json!({"criteria": {"all": [{"field": "value_tier", "op": "=", "value": "gold"}]}, "version": 1}),
            )
            .await
            .expect(200);
        assert_eq!(updated["version"], 2);
        assert_eq!(count_of(t, mk, &sid).await, 2);
    })
    .await;
}

/// Criteria counted before they are saved: checked as a create checks them, counted as the
/// saved segment would be for each person, and nothing stored.
#[tokio::test]
async fn criteria_not_saved_are_checked_and_counted_within_scope() {
    on_both(async |t| {
        let w = world(t).await;
        set_facts(t, &w).await;
        let mk = &w.marketer.token;
        for (criteria, field) in [
            (
                json!({"all": [{"field": "value_tier", "op": "=", "value": "gold"}, {"field": "password", "op": "=", "value": "x"}]}),
                "criteria.all[1].field",
            ),
            (
                json!({"all": [{"field": "churn_score", "op": ">=", "value": "high"}]}),
                "criteria.all[0].value",
            ),
            (json!({"all": []}), "criteria.all"),
            (json!("value_tier = 'gold'"), "criteria"),
        ] {
            // The same place named as a create names it.
            t.post(mk, "/api/v1/segments", json!({"name": "bad", "criteria": criteria.clone()}))
                .await
                .expect_field(field);
            t.post(mk, "/api/v1/segments/count", json!({"criteria": criteria}))
                .await
                .expect_field(field);
        }
        t.post(mk, "/api/v1/segments/count", json!({"criteria": {"all": []}, "name": "x"}))
            .await
            .expect(400);
        let criteria = json!({"all": [{"field": "value_tier", "op": "in", "value": ["gold", "platinum"]},
            {"field": "churn_score", "op": ">=", "value": 0.5}]});
        let unsaved = |token: String| {
            let body = json!({"criteria": criteria.clone()});
            async move {
                let n = t.post(&token, "/api/v1/segments/count", body).await.expect(200);
                (n["customers"].as_i64().unwrap(), n["lines"].as_i64().unwrap())
            }
        };
        // c1 and c3 for the marketer; the lead of T1 and the head of East see c1 only.
        assert_eq!(unsaved(mk.clone()).await, (2, 2));
        assert_eq!(unsaved(w.lead.token.clone()).await, (1, 1));
        assert_eq!(unsaved(w.head.token.clone()).await, (1, 1));
        t.post(&w.agent.token, "/api/v1/segments/count", json!({"criteria": criteria}))
            .await
            .expect(403);
        let listed = t.get(mk, "/api/v1/segments").await.expect(200);
        assert_eq!(listed["total"], 0, "counting saves nothing: {listed}");
        // In the API document with its body, as the delete is.
        let doc = t.get(t.admin(), "/api/v1/openapi.json").await.expect(200);
        let count_op = &doc["paths"]["/api/v1/segments/count"]["post"];
        assert!(count_op["requestBody"].is_object(), "{count_op}");
        assert!(count_op["responses"]["400"].is_object(), "{count_op}");
        let delete_op = &doc["paths"]["/api/v1/segments/{id}"]["delete"];
        assert!(delete_op["responses"]["409"].is_object(), "{delete_op}");

        // Saved, the same criteria count the same for each person.
        let seg = t
            .post(mk, "/api/v1/segments", json!({"name": "At risk", "criteria": criteria}))
            .await
            .expect(201);
        for token in [mk, &w.lead.token, &w.head.token] {
            let saved = t
                .post(token, &format!("/api/v1/segments/{}/count", id(&seg)), json!({}))
                .await
                .expect(200);
            let n = unsaved(token.clone()).await;
            assert_eq!((saved["customers"].as_i64().unwrap(), saved["lines"].as_i64().unwrap()), n, "{saved}");
        }
    })
    .await;
}

/// DELETE with an `If-Match` header, which the test client's `delete` does not send.
async fn delete_if_match(t: &TestApp, token: &str, path: &str, etag: &str) -> (u16, Value) {
    let r = t
        .http
        .delete(format!("{}{path}", t.base))
        .bearer_auth(token)
        .header("If-Match", etag)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A segment is deleted by whoever may change segments, unless a campaign targets it: then
/// the refusal names the campaigns and the segment stays. The audit trail keeps the last state.
#[tokio::test]
async fn segments_are_deleted_unless_a_campaign_targets_them() {
    on_both(async |t| {
        let w = world(t).await;
        let mk = &w.marketer.token;
        let targeted = individuals(t, mk).await;
        let tid = id(&targeted);
        let c = campaign(t, mk, &tid, json!(["sms"])).await;
        let spare = t
            .post(
                mk,
                "/api/v1/segments",
                json!({"name": "Gold", "criteria": {"all": [{"field": "value_tier", "op": "=", "value": "gold"}]}}),
            )
            .await
            .expect(201);
        let sid = id(&spare);

        let refused = t.delete(mk, &format!("/api/v1/segments/{tid}")).await;
        assert_eq!(refused.status, 409, "{}", refused.body);
        let message = refused.body["message"].as_str().unwrap_or_default().to_string();
        for named in [c["name"].as_str().unwrap(), c["id"].as_str().unwrap(), "Individuals"] {
            assert!(message.contains(named), "{message} names {named}");
        }
        t.get(mk, &format!("/api/v1/segments/{tid}")).await.expect(200);
        let c2 = t.get(mk, &format!("/api/v1/campaigns/{}", id(&c))).await.expect(200);
        assert_eq!(c2["segment_id"], tid.as_str());

        // Roles that may read segments but not change them, and those that may not read them.
        for token in [&w.lead.token, &w.head.token, &w.agent.token] {
            t.delete(token, &format!("/api/v1/segments/{sid}")).await.expect(403);
        }
        // A stale ETag loses; a bad one is named.
        let path = format!("/api/v1/segments/{sid}");
        assert_eq!(delete_if_match(t, mk, &path, "\"7\"").await.0, 412);
        let (status, body) = delete_if_match(t, mk, &path, "seven").await;
        assert_eq!((status, body["field"].as_str()), (400, Some("If-Match")), "{body}");
        t.get(mk, &path).await.expect(200);
        let (status, body) = delete_if_match(t, mk, &path, "\"1\"").await;
        assert_eq!(status, 204, "{body}");
        t.get(mk, &path).await.expect(404);
        t.delete(mk, &path).await.expect(404);
        let listed = t.get(mk, "/api/v1/segments").await.expect(200);
        assert_eq!(listed["total"], 1, "{listed}");

        let audit = t
            .get(t.admin(), &format!("/api/v1/audit?entity=segment&entity_id={sid}&action=delete"))
            .await
            .expect(200);
        assert_eq!(audit["total"], 1, "{audit}");
        let record = &audit["items"][0];
        assert_eq!(record["before"]["name"], "Gold", "{record}");
        assert_eq!(record["before"]["criteria"]["all"][0]["value"], "gold", "{record}");
        assert_eq!(record["actor_id"], w.marketer.id.as_str(), "{record}");
        assert!(record["after"].is_null(), "{record}");
    })
    .await;
}

async fn count_of(t: &TestApp, token: &str, segment: &str) -> i64 {
    t.post(
        token,
        &format!("/api/v1/segments/{segment}/count"),
        json!({}),
    )
    .await
    .expect(200)["lines"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn campaign_lifecycle_needs_a_second_person_to_approve() {
    on_both(async |t| {
        let w = world(t).await;
        let mk = &w.marketer.token;
        let seg = t
            .post(
                mk,
                "/api/v1/segments",
                json!({"name": "Everyone", "criteria": {"all": [{"field": "tenure_months", "op": ">=", "value": 0}]}}),
            )
            .await
            .expect(201);
        let sid = id(&seg);
        let (start, end) = period();
        let base = json!({"name": "Bad", "segment_id": sid, "offer_code": "DATA10", "message": "m",
            "channels": ["sms"], "start_at": start, "end_at": end});
        for (patch, field) in [
            (json!({"control_pct": 60}), "control_pct"),
            (json!({"channels": ["fax"]}), "channels[0]"),
            (json!({"end_at": start}), "end_at"),
            (json!({"segment_id": "nope"}), "segment_id"),
            (json!({"budget_cents": -1}), "budget_cents"),
            (json!({"rule_ids": ["vip-tier-up", "no-such-rule"]}), "rule_ids[1]"),
        ] {
            let mut body = base.clone();
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            t.post(mk, "/api/v1/campaigns", body)
                .await
                .expect_field(field);
        }
        t.post(&w.lead.token, "/api/v1/campaigns", base.clone())
            .await
            .expect(403);

        let c = campaign(t, mk, &sid, json!(["sms"])).await;
        let cid = id(&c);
        assert_eq!(c["state"], "plan");
        assert_eq!(c["control_pct"], 0);
        // Illegal moves are conflicts.
        go(t, &w.lead.token, &cid, "approved").await.expect(409);
        t.post(mk, &format!("/api/v1/campaigns/{cid}/launch"), json!({}))
            .await
            .expect(409);
        go(t, mk, &cid, "completed").await.expect(409);
        go(t, mk, &cid, "sideways").await.expect_field("to");

        let sub = go(t, mk, &cid, "submitted").await.expect(200);
        assert_eq!(sub["submitted_by"], w.marketer.id.as_str());
        // Marketers cannot approve; nobody edits a submitted campaign.
        go(t, mk, &cid, "approved").await.expect(403);
        t.patch(
            mk,
            &format!("/api/v1/campaigns/{cid}"),
            json!({"budget_cents": 1, "version": sub["version"]}),
        )
        .await
        .expect(409);
        let approved = go(t, &w.lead.token, &cid, "approved").await.expect(200);
        assert_eq!(approved["decided_by"], w.lead.id.as_str());
        go(t, mk, &cid, "active").await.expect(409);
        go(t, mk, &cid, "plan").await.expect(409);

        // An admin holds both permissions but cannot approve their own campaign.
        let own = campaign(t, t.admin(), &sid, json!(["sms"])).await;
        let oid = id(&own);
        go(t, t.admin(), &oid, "submitted").await.expect(200);
        go(t, t.admin(), &oid, "approved").await.expect(403);
        go(t, &w.head.token, &oid, "rejected").await.expect(200);
        go(t, t.admin(), &oid, "plan").await.expect(200);
        let edited = t
            .patch(
                t.admin(),
                &format!("/api/v1/campaigns/{oid}"),
                json!({"budget_cents": 100, "version": 4}),
            )
            .await
            .expect(200);
        assert_eq!(edited["budget_cents"], 100);
        go(t, t.admin(), &oid, "cancelled").await.expect(200);
        go(t, t.admin(), &oid, "plan").await.expect(409);

        let history = t
            .get(mk, &format!("/api/v1/campaigns/{cid}/history"))
            .await
            .expect(200);
        let states: Vec<&str> = history["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["to_state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["plan", "submitted", "approved"]);
        let list = t
            .get(mk, "/api/v1/campaigns?state=approved")
            .await
            .expect(200);
        assert_eq!(list["total"], 1);
        t.get(&w.agent.token, "/api/v1/campaigns").await.expect(403);
        let results = t
            .get(mk, &format!("/api/v1/campaigns/{cid}/results"))
            .await
            .expect(200);
        assert_eq!(results["decided"], 0);
        assert!(results["uplift"].is_null());

        // Launching makes it active; the lead (no ManageCampaigns) cannot launch.
        t.post(&w.lead.token, &format!("/api/v1/campaigns/{cid}/launch"), json!({}))
            .await
            .expect(403);
        let run = t
            .post(mk, &format!("/api/v1/campaigns/{cid}/launch"), json!({}))
            .await
            .expect(200);
        assert_eq!(run["targeted"], 3, "{run}");
        let active = t.get(mk, &format!("/api/v1/campaigns/{cid}")).await.expect(200);
        assert_eq!(active["state"], "active");
        go(t, mk, &cid, "completed").await.expect(200);
        go(t, mk, &cid, "cancelled").await.expect(409);
    })
    .await;
}

#[tokio::test]
async fn launch_sends_to_the_segment_through_the_engine() {
    on_both_engine(async |t| {
        let w = world(t).await;
        let mk = &w.marketer.token;
        // c2 refused marketing by SMS.
        t.post(
            t.admin(),
            &format!("/api/v1/customers/{}/consents", w.c2),
            json!({"channel": "sms", "purpose": "marketing", "granted": false}),
        )
        .await
        .expect(201);
        data10(t).await;
        let seg = individuals(t, mk).await;
        let c = campaign(t, mk, &id(&seg), json!(["sms"])).await;
        let cid = id(&c);
        go(t, mk, &cid, "submitted").await.expect(200);
        go(t, &w.lead.token, &cid, "approved").await.expect(200);
        let run = t
            .post(mk, &format!("/api/v1/campaigns/{cid}/launch"), json!({}))
            .await
            .expect(200);
        assert_eq!(run["targeted"], 3, "{run}");
        assert_eq!(run["decided"], 3, "{run}");
        assert_eq!(run["sent"], 2, "{run}");
        assert_eq!(run["suppressed"], 1, "{run}");
        assert_eq!(run["suppressed_by_reason"]["opt_out"], 1, "{run}");
        assert_eq!(run["batches"], 1);
        let now = t
            .get(mk, &format!("/api/v1/campaigns/{cid}"))
            .await
            .expect(200);
        assert_eq!(now["state"], "active");
        let runs = t
            .get(mk, &format!("/api/v1/campaigns/{cid}/runs"))
            .await
            .expect(200);
        assert_eq!(runs["items"].as_array().unwrap().len(), 1);

        let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT msisdn, rule_id, status, reason FROM recommendations WHERE campaign_id = $1 ORDER BY msisdn",
        )
        .bind(&cid)
        .fetch_all(&t.app.state.db.pool)
        .await
        .unwrap();
        assert_eq!(rows.len(), 3, "{rows:?}");
        for (msisdn, rule, status, reason) in &rows {
            assert_eq!(rule, &format!("campaign:{cid}"));
            if msisdn == "8613900001002" {
                assert_eq!(status, "suppressed");
                assert_eq!(reason.as_deref(), Some("opt_out"));
            } else {
                assert!(matches!(status.as_str(), "queued" | "sent" | "delivered"), "{status}");
            }
        }

        // Close the loop: c1 accepts.
        let (rec_id,): (String,) = sqlx::query_as(
            "SELECT id FROM recommendations WHERE campaign_id = $1 AND msisdn = '8613900001001'",
        )
        .bind(&cid)
        .fetch_one(&t.app.state.db.pool)
        .await
        .unwrap();
        t.app
            .state
            .offers
            .respond(&rec_id, kairos::ports::Status::Accepted, "test", None)
            .await
            .unwrap();
        let results = t
            .get(mk, &format!("/api/v1/campaigns/{cid}/results"))
            .await
            .expect(200);
        assert_eq!(results["decided"], 3, "{results}");
        assert_eq!(results["sent"], 2, "{results}");
        assert_eq!(results["suppressed"], 1, "{results}");
        assert_eq!(results["accepted"], 1, "{results}");
        assert_eq!(results["declined"], 0, "{results}");
        assert_eq!(results["revenue_cents"], 1500, "{results}");
        assert!(results["uplift"].is_null());
        // By outcome, as a rule's totals count them; and the same per day.
        let counts = &results["counts"];
        assert_eq!(counts["sent"], 2, "{results}");
        assert_eq!(counts["suppressed"]["opt_out"], 1, "{results}");
        assert_eq!(counts["accepted"], 1, "{results}");
        assert_eq!(counts["conversion"], 0.5, "accepted over sent: {results}");
        let today = chrono::Utc::now().date_naive();
        let span = format!(
            "from={}&to={}",
            today - chrono::Duration::days(1),
            today + chrono::Duration::days(1)
        );
        let per_day = t
            .get(mk, &format!("/api/v1/campaigns/{cid}/counts?{span}"))
            .await
            .expect(200);
        let days = per_day["days"].as_array().unwrap();
        assert_eq!(days.len(), 1, "launched within seconds: {per_day}");
        for k in ["sent", "suppressed", "delivered", "accepted", "declined", "conversion"] {
            assert_eq!(days[0][k], counts[k], "{k}: {per_day} against {results}");
        }
        assert_eq!(days[0]["evaluated"], 0, "no script decided it: {per_day}");
        assert!(days[0]["against_control"].is_null(), "{per_day}");
        t.get(mk, &format!("/api/v1/campaigns/{cid}/counts?from=2026-02-30"))
            .await
            .expect_field("from");
        t.get(mk, "/api/v1/campaigns/no-such-campaign/counts").await.expect(404);
        t.get(&w.agent.token, &format!("/api/v1/campaigns/{cid}/counts"))
            .await
            .expect(403);

        // Launched again, it resumes: the lines decided for are skipped, and nothing is
        // reported sent that did not go out.
        let again = t
            .post(mk, &format!("/api/v1/campaigns/{cid}/launch"), json!({}))
            .await
            .expect(200);
        assert_eq!(again["already_decided"], 3, "{again}");
        assert_eq!(again["sent"], 0, "{again}");
        assert_eq!(again["decided"], 0, "{again}");
        let runs = t.get(mk, &format!("/api/v1/campaigns/{cid}/runs")).await.expect(200);
        assert_eq!(runs["total"], 2);
        assert_eq!(runs["items"][1]["already_decided"], 3);

        // Completed campaigns cannot be launched again.
        go(t, mk, &cid, "completed").await.expect(200);
        t.post(mk, &format!("/api/v1/campaigns/{cid}/launch"), json!({}))
            .await
            .expect(409);
    })
    .await;
}

/// A campaign with a control group: a share of the segment is held out (recorded
/// `control_group`, never sent), and the results compare conversion of the two groups.
#[tokio::test]
async fn a_control_group_is_held_out_and_results_show_uplift() {
    on_both_engine(async |t| {
        let w = world(t).await;
        let mk = &w.marketer.token;
        let offering = data10(t).await;
        let mut lines = Vec::new();
        for i in 0..60 {
            let c = t.customer(&format!("u{i}"), json!({})).await;
            let cid = id(&c);
            let line = t.line(&cid, &format!("86139100{i:05}")).await;
            lines.push((cid, id(&line), line["msisdn"].as_str().unwrap().to_string()));
        }
        let seg = individuals(t, mk).await;
        let (start, end) = period();
        let c = t
            .post(
                mk,
                "/api/v1/campaigns",
                json!({"name": "Held out", "segment_id": id(&seg), "offer_code": "DATA10",
                    "message": "Hi {name}, 10GB for you", "channels": ["agent"], "control_pct": 30,
                    "start_at": start, "end_at": end}),
            )
            .await
            .expect(201);
        let cid = id(&c);
        assert_eq!(c["control_pct"], 30);
        go(t, mk, &cid, "submitted").await.expect(200);
        go(t, &w.lead.token, &cid, "approved").await.expect(200);
        let run = t
            .post(mk, &format!("/api/v1/campaigns/{cid}/launch"), json!({}))
            .await
            .expect(200);
        let held = run["suppressed_by_reason"]["control_group"]
            .as_i64()
            .unwrap_or(0);
        assert_eq!(run["decided"], 63, "{run}");
        assert!((5..=35).contains(&held), "about 30 % of 63 held out: {run}");
        assert_eq!(run["sent"].as_i64().unwrap() + held, 63, "{run}");
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT msisdn, status, reason FROM recommendations WHERE campaign_id = $1",
        )
        .bind(&cid)
        .fetch_all(&t.app.state.db.pool)
        .await
        .unwrap();
        let control: Vec<&String> = rows
            .iter()
            .filter(|(_, _, r)| r.as_deref() == Some("control_group"))
            .map(|(m, s, _)| {
                assert_eq!(s, "suppressed");
                m
            })
            .collect();
        assert_eq!(control.len() as i64, held);
        // Launching again decides nothing anew: every line has its decision, and the
        // held-out ones stay held out.
        let again = t
            .post(mk, &format!("/api/v1/campaigns/{cid}/launch"), json!({}))
            .await
            .expect(200);
        assert_eq!(again["already_decided"], 63, "{again}");
        assert_eq!(again["sent"], 0, "{again}");
        let (still,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM recommendations WHERE campaign_id = $1 AND reason = 'control_group'",
        )
        .bind(&cid)
        .fetch_one(&t.app.state.db.pool)
        .await
        .unwrap();
        assert_eq!(still, held);
        // Six treated and two held-out subscribers take the product afterwards.
        let (mut treated_buy, mut control_buy) = (0, 0);
        for (cust, line, msisdn) in &lines {
            let in_control = control.contains(&msisdn);
            let buys = if in_control {
                control_buy < 2
            } else {
                treated_buy < 6
            };
            if !buys {
                continue;
            }
            *(if in_control {
                &mut control_buy
            } else {
                &mut treated_buy
            }) += 1;
            t.post(
                t.admin(),
                "/api/v1/subscriptions",
                json!({"customer_id": cust, "line_id": line, "offering_id": offering["id"]}),
            )
            .await
            .expect(201);
        }
        assert_eq!((treated_buy, control_buy), (6, 2));
        let results = t
            .get(mk, &format!("/api/v1/campaigns/{cid}/results"))
            .await
            .expect(200);
        let n_t = 63 - held;
        assert_eq!(results["treated"]["subscribers"], n_t, "{results}");
        assert_eq!(results["treated"]["converted"], 6, "{results}");
        assert_eq!(results["control"]["subscribers"], held, "{results}");
        assert_eq!(results["control"]["converted"], 2, "{results}");
        let want = 6.0 / n_t as f64 - 2.0 / held as f64;
        let got = results["uplift"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-9, "{results}");
        let ci = results["uplift_ci"].as_array().unwrap();
        let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
        assert!(lo < got && got < hi, "{results}");
        // Revenue: each purchase is the pack's 1500 cents.
        assert_eq!(results["treated"]["revenue_cents"], 6 * 1500, "{results}");
        assert_eq!(results["control"]["revenue_cents"], 2 * 1500, "{results}");
        let want = 6.0 * 1500.0 / n_t as f64 - 2.0 * 1500.0 / held as f64;
        let got = results["revenue_uplift"].as_f64().unwrap();
        assert!((got - want).abs() < 0.01, "{results}");
        // Per day, the launch's day holds the same two groups and the same uplift (everyone
        // bought after their decision and after the launch).
        let today = chrono::Utc::now().date_naive();
        let per_day = t
            .get(mk, &format!(
                "/api/v1/campaigns/{cid}/counts?from={}&to={}",
                today - chrono::Duration::days(1),
                today + chrono::Duration::days(1)
            ))
            .await
            .expect(200);
        let days = per_day["days"].as_array().unwrap();
        assert_eq!(days.len(), 1, "{per_day}");
        assert_eq!(days[0]["sent"], n_t, "{per_day}");
        assert_eq!(days[0]["suppressed"]["control_group"], held, "{per_day}");
        let a = &days[0]["against_control"];
        for k in ["treated", "control"] {
            for f in ["subscribers", "converted"] {
                assert_eq!(a[k][f], results[k][f], "{k}.{f}: {per_day}");
            }
        }
        let got = a["uplift"].as_f64().unwrap();
        assert!((got - results["uplift"].as_f64().unwrap()).abs() < 1e-12, "{per_day}");
        let ci = results["revenue_uplift_ci"].as_array().unwrap();
        let (lo, hi) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
        assert!(lo < got && got < hi, "{results}");
    })
    .await;
}

/// A rule's results against its control group: who it reached, who it held out, and who of
/// each took the offering after the rule's decision about them.
#[tokio::test]
async fn rule_results_compare_reached_and_held_out_subscribers() {
    on_both(async |t| {
        let w = world(t).await;
        let offering = data10(t).await;
        let store = kairos::pipeline::RecStore::new(t.app.state.db.clone());
        let mut recs = Vec::new();
        let mut lines = Vec::new();
        for i in 0..10 {
            let c = t.customer(&format!("r{i}"), json!({})).await;
            let cid = id(&c);
            let msisdn = format!("86139200{i:05}");
            let line = t.line(&cid, &msisdn).await;
            let mut r = common::sms_rec(&format!("rr-{i}"), &msisdn);
            r.rule_id = "held-rule".into();
            r.offer_code = "DATA10".into();
            // Four held out, six reached.
            if i < 4 {
                r.status = kairos::ports::Status::Suppressed;
                r.reason = Some("control_group".into());
            }
            // Decided a minute ago: what they buy now counts.
            r.decided_at -= chrono::Duration::minutes(1);
            recs.push(r);
            lines.push((cid, id(&line)));
        }
        store.insert(&recs).await.unwrap();
        // One held-out and three reached subscribers take the product.
        for i in [0, 4, 5, 6] {
            let (cust, line) = &lines[i];
            t.post(
                t.admin(),
                "/api/v1/subscriptions",
                json!({"customer_id": cust, "line_id": line, "offering_id": offering["id"]}),
            )
            .await
            .expect(201);
        }
        let r = t
            .get(&w.marketer.token, "/api/v1/rules/held-rule/results")
            .await
            .expect(200);
        assert_eq!(r["treated"]["subscribers"], 6, "{r}");
        assert_eq!(r["treated"]["converted"], 3, "{r}");
        assert_eq!(r["control"]["subscribers"], 4, "{r}");
        assert_eq!(r["control"]["converted"], 1, "{r}");
        let got = r["uplift"].as_f64().unwrap();
        assert!((got - (0.5 - 0.25)).abs() < 1e-9, "{r}");
        let ci = r["uplift_ci"].as_array().unwrap();
        assert!(ci[0].as_f64().unwrap() < got && got < ci[1].as_f64().unwrap());
        // 3 x 1500 over 6 reached, 1500 over 4 held out.
        assert_eq!(r["treated"]["revenue_per_subscriber"], 750.0, "{r}");
        assert_eq!(r["control"]["revenue_per_subscriber"], 375.0, "{r}");
        assert_eq!(r["revenue_uplift"], 375.0, "{r}");
        // Agents do not read marketing results.
        t.get(&w.agent.token, "/api/v1/rules/held-rule/results")
            .await
            .expect(403);
        let none = t
            .get(&w.marketer.token, "/api/v1/rules/no-such-rule/results")
            .await
            .expect(200);
        assert!(none["uplift"].is_null(), "{none}");
    })
    .await;
}
