//! Portal pop-ups over HTTP: session tokens (who may mint them, what they open, expiry,
//! forgery), the live stream's replay after a reconnect, CORS for the portal's origins, the
//! inbox's answers and touchpoints.

use std::time::Duration;

use kairos::channels::Channel;
use kairos::event::Msisdn;
use kairos::ports::Recommendation;
use serde_json::json;

use crate::common::{self, TestApp};

const A: &str = "8613900002001";
const B: &str = "8613900002002";
const ORIGIN: &str = "https://portal.example";
const SECRET: &str = "portal-test-secret";

fn tweak(c: &mut kairos::config::Config) {
    c.channels.portal.origins = vec![ORIGIN.into()];
    c.channels.portal.token_secret = SECRET.into();
}

/// A portal offer for `msisdn`, sent, decided `age_secs` ago.
pub fn portal_rec(id: &str, msisdn: &str, age_secs: i64) -> Recommendation {
    let mut r = common::sms_rec(id, msisdn);
    r.channel = "portal".into();
    r.message = format!("Pop-up {id} for {msisdn}");
    r.decided_at -= chrono::Duration::seconds(age_secs);
    r
}

async fn mint(t: &TestApp, msisdn: &str) -> String {
    let s = t
        .post(
            t.admin(),
            "/api/v1/portal/sessions",
            json!({"msisdn": msisdn}),
        )
        .await
        .expect(201);
    assert_eq!(s["msisdn"], msisdn);
    s["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn only_systems_and_admins_mint_portal_sessions() {
    common::on_both_with(tweak, async |t| {
        let w = common::world::world(t).await;
        let body = json!({"msisdn": A});
        t.post(&w.agent.token, "/api/v1/portal/sessions", body.clone())
            .await
            .expect(403);
        t.post(&w.marketer.token, "/api/v1/portal/sessions", body.clone())
            .await
            .expect(403);
        let r = t
            .call(
                reqwest::Method::POST,
                "/api/v1/portal/sessions",
                None,
                Some(body.clone()),
                None,
            )
            .await;
        assert_eq!(r.status, 401);
        let s = t
            .post(&w.system.token, "/api/v1/portal/sessions", body)
            .await
            .expect(201);
        let expires: chrono::DateTime<chrono::Utc> =
            s["expires_at"].as_str().unwrap().parse().unwrap();
        let minutes = (expires - chrono::Utc::now()).num_minutes();
        assert!(
            (29..=30).contains(&minutes),
            "default 30 minutes, got {minutes}"
        );
        t.post(
            t.admin(),
            "/api/v1/portal/sessions",
            json!({"msisdn": "12"}),
        )
        .await
        .expect_field("msisdn");
    })
    .await;
}

#[tokio::test]
async fn a_portal_token_opens_only_its_own_offers() {
    common::on_both_with(tweak, async |t| {
        for r in [
            portal_rec("pa-1", A, 30),
            portal_rec("pa-2", A, 20),
            portal_rec("pb-1", B, 10),
        ] {
            t.store_rec(&r).await;
        }
        let mut sms = common::sms_rec("sa-1", A);
        sms.message = "an SMS, not a pop-up".into();
        t.store_rec(&sms).await;
        let token = mint(t, A).await;
        let inbox = t.get(&token, "/api/v1/portal/offers").await.expect(200);
        let ids: Vec<&str> = inbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 2, "{inbox}");
        assert!(ids.contains(&"pa-1") && ids.contains(&"pa-2"), "{ids:?}");
        // Another customer's offer (and this customer's SMS) look like unknown ones.
        for id in ["pb-1", "sa-1", "nope"] {
            for action in ["seen", "accept", "decline", "dismiss"] {
                t.post(
                    &token,
                    &format!("/api/v1/portal/offers/{id}/{action}"),
                    json!({}),
                )
                .await
                .expect(404);
            }
        }
        let b = t
            .get(t.admin(), "/api/v1/recommendations/pb-1")
            .await
            .expect(200);
        assert_eq!(b["status"], "sent", "untouched: {b}");
        // A staff key is not a portal token.
        let r = t.get(t.admin(), "/api/v1/portal/offers").await;
        assert_eq!(r.status, 401);
    })
    .await;
}

#[tokio::test]
async fn inbox_answers_go_through_the_response_path() {
    common::on_both_with(tweak, async |t| {
        for r in [
            portal_rec("pa-1", A, 40),
            portal_rec("pa-2", A, 30),
            portal_rec("pa-3", A, 20),
        ] {
            t.store_rec(&r).await;
        }
        let token = mint(t, A).await;
        let seen = t
            .post(&token, "/api/v1/portal/offers/pa-1/seen", json!({}))
            .await
            .expect(200);
        assert_eq!(seen["status"], "delivered");
        let accepted = t
            .post(&token, "/api/v1/portal/offers/pa-1/accept", json!({}))
            .await
            .expect(200);
        assert_eq!(accepted["status"], "accepted");
        t.post(&token, "/api/v1/portal/offers/pa-1/decline", json!({}))
            .await
            .expect(409);
        let declined = t
            .post(&token, "/api/v1/portal/offers/pa-2/decline", json!({"reason": "too pricey"}))
            .await
            .expect(200);
        assert_eq!(declined["status"], "declined");
        assert_eq!(declined["reason"], "too pricey");
        // An empty body is fine for the actions that need nothing.
        let r = t
            .http
            .post(format!("{}/api/v1/portal/offers/pa-3/dismiss", t.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let dismissed = t.get(t.admin(), "/api/v1/recommendations/pa-3").await.expect(200);
        assert_eq!(dismissed["status"], "expired");
        assert_eq!(dismissed["reason"], "dismissed");
        t.post(&token, "/api/v1/portal/offers/pa-3/maybe", json!({}))
            .await
            .expect_field("action");
        // Recorded as responses like an agent's, with the customer as the actor.
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT recommendation_id, outcome, actor FROM offer_responses ORDER BY recommendation_id",
        )
        .fetch_all(&t.app.state.db.pool)
        .await
        .unwrap();
        let actor = format!("portal:{A}");
        assert_eq!(
            rows,
            vec![
                ("pa-1".to_string(), "accepted".to_string(), actor.clone()),
                ("pa-2".to_string(), "declined".to_string(), actor.clone()),
                ("pa-3".to_string(), "expired".to_string(), actor),
            ]
        );
        // Answered offers leave the inbox.
        let inbox = t.get(&token, "/api/v1/portal/offers").await.expect(200);
        assert_eq!(inbox["items"], json!([]));
        assert_eq!(inbox["total"], 0);
    })
    .await;
}

#[tokio::test]
async fn expired_and_forged_tokens_are_refused() {
    common::on_both_with(tweak, async |t| {
        t.store_rec(&portal_rec("pa-1", A, 10)).await;
        let a = Msisdn::parse(A).unwrap();
        let past = chrono::Utc::now() - chrono::Duration::seconds(1);
        let expired = kairos::portal::token::mint(SECRET, a, past);
        let foreign_key = kairos::portal::token::mint(
            "not-our-key",
            a,
            chrono::Utc::now() + chrono::Duration::minutes(5),
        );
        let good = mint(t, A).await;
        // The same signature on another number.
        let other_number = good.replace(A, B);
        for bad in [
            expired.as_str(),
            foreign_key.as_str(),
            other_number.as_str(),
            "kps1.x",
        ] {
            let r = t.get(bad, "/api/v1/portal/offers").await;
            assert_eq!(r.status, 401, "{bad}: {:?}", r.body);
            let r = t
                .post(bad, "/api/v1/portal/offers/pa-1/accept", json!({}))
                .await;
            assert_eq!(r.status, 401, "{bad}");
            let s = t
                .http
                .get(format!("{}/api/v1/portal/stream", t.base))
                .query(&[("token", bad)])
                .send()
                .await
                .unwrap();
            assert_eq!(s.status(), 401, "{bad}");
        }
        let r = t
            .call(
                reqwest::Method::GET,
                "/api/v1/portal/offers",
                None,
                None,
                None,
            )
            .await;
        assert_eq!(r.status, 401);
        let rec = t
            .get(t.admin(), "/api/v1/recommendations/pa-1")
            .await
            .expect(200);
        assert_eq!(rec["status"], "sent");
        t.get(&good, "/api/v1/portal/offers").await.expect(200);
    })
    .await;
}

/// Reads `stream` until every id in `want` has arrived; returns everything read.
async fn read_until(stream: &mut reqwest::Response, want: &[&str]) -> String {
    let mut got = String::new();
    while !want.iter().all(|id| got.contains(&format!("id: {id}\n"))) {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("{want:?} within 5s; got {got}"))
            .unwrap()
            .expect("stream open");
        got.push_str(&String::from_utf8_lossy(&chunk));
    }
    got
}

#[tokio::test]
async fn the_stream_replays_after_last_event_id_and_pushes_new_offers() {
    common::on_both_with(tweak, async |t| {
        for r in [
            portal_rec("pa-1", A, 30),
            portal_rec("pa-2", A, 20),
            portal_rec("pa-3", A, 10),
            portal_rec("pb-1", B, 5),
        ] {
            t.store_rec(&r).await;
        }
        let token = mint(t, A).await;
        let url = format!("{}/api/v1/portal/stream", t.base);
        let mut first = t
            .http
            .get(&url)
            .query(&[("token", &token)])
            .send()
            .await
            .unwrap();
        assert_eq!(first.status(), 200);
        let got = read_until(&mut first, &["pa-1", "pa-2", "pa-3"]).await;
        assert!(got.contains("event: offer"), "{got}");
        // Oldest first, so a Last-Event-ID means "everything up to here".
        let pos = |id: &str| got.find(&format!("id: {id}\n")).unwrap();
        assert!(
            pos("pa-1") < pos("pa-2") && pos("pa-2") < pos("pa-3"),
            "{got}"
        );
        drop(first);

        // A reconnect after pa-1 gets pa-2 and pa-3 only.
        let mut again = t
            .http
            .get(&url)
            .query(&[("token", &token)])
            .header("Last-Event-ID", "pa-1")
            .send()
            .await
            .unwrap();
        let got = read_until(&mut again, &["pa-2", "pa-3"]).await;
        assert!(!got.contains("id: pa-1\n"), "{got}");
        // New offers arrive live; another customer's never do.
        let live_b = portal_rec("pb-2", B, 0);
        let live_a = portal_rec("pa-4", A, 0);
        for r in [&live_b, &live_a] {
            t.store_rec(r).await;
            t.app.state.channels.portal.send(r).await.unwrap();
        }
        let got = read_until(&mut again, &["pa-4"]).await;
        assert!(!got.contains("pb-"), "{got}");
        // Someone else's id as Last-Event-ID replays the whole inbox, not theirs.
        let mut third = t
            .http
            .get(&url)
            .query(&[("token", &token)])
            .header("Last-Event-ID", "pb-1")
            .send()
            .await
            .unwrap();
        let got = read_until(&mut third, &["pa-1", "pa-2", "pa-3", "pa-4"]).await;
        assert!(!got.contains("pb-"), "{got}");
    })
    .await;
}

#[tokio::test]
async fn cors_preflight_allows_the_configured_portal_origin_only() {
    common::on_both_with(tweak, async |t| {
        let preflight = |path: &'static str, origin: &'static str| {
            t.http
                .request(reqwest::Method::OPTIONS, format!("{}{path}", t.base))
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .header(
                    "Access-Control-Request-Headers",
                    "authorization, content-type",
                )
                .send()
        };
        let ok = preflight("/api/v1/portal/offers/x/accept", ORIGIN)
            .await
            .unwrap();
        assert!(ok.status().is_success(), "{}", ok.status());
        let h = ok.headers();
        assert_eq!(h["access-control-allow-origin"], ORIGIN);
        let allowed = h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_lowercase();
        assert!(allowed.contains("authorization"), "{allowed}");
        let other = preflight("/api/v1/portal/offers/x/accept", "https://evil.example")
            .await
            .unwrap();
        assert!(other.headers().get("access-control-allow-origin").is_none());
        // Minting is server to server: no browser may call it.
        let minting = preflight("/api/v1/portal/sessions", ORIGIN).await.unwrap();
        assert!(minting
            .headers()
            .get("access-control-allow-origin")
            .is_none());
        // A real request from the portal's page carries the header too.
        let token = mint(t, A).await;
        let r = t
            .http
            .get(format!("{}/api/v1/portal/offers", t.base))
            .header("Origin", ORIGIN)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["access-control-allow-origin"], ORIGIN);
    })
    .await;
}

#[tokio::test]
async fn a_portal_touchpoint_is_a_visit_the_engine_processes() {
    common::on_both_with(tweak, async |t| {
        let token = mint(t, A).await;
        let before = t.app.state.pipeline.deps.metrics.snapshot().processed;
        let r = t
            .post(
                &token,
                "/api/v1/portal/touchpoints",
                json!({"trigger": "payment"}),
            )
            .await
            .expect(202);
        assert!(
            r["event_id"].as_str().unwrap().starts_with("visit-portal-"),
            "{r}"
        );
        let after = t.app.state.pipeline.deps.metrics.snapshot().processed;
        assert_eq!(after, before + 1, "processed before the answer");
        t.post(
            &token,
            "/api/v1/portal/touchpoints",
            json!({"trigger": "lunch"}),
        )
        .await
        .expect_field("trigger");
    })
    .await;
}

/// The customer's open portal stream tells the decision stage where they are: open, the
/// portal hub counts them reachable; closed, it no longer does.
#[tokio::test]
async fn an_open_portal_stream_makes_the_customer_reachable_on_the_portal() {
    common::on_both_with(tweak, async |t| {
        let a = Msisdn::parse(A).unwrap();
        let portal = &t.app.state.channels.portal;
        assert!(!portal.is_open(a));
        let token = mint(t, A).await;
        let stream = t
            .http
            .get(format!("{}/api/v1/portal/stream", t.base))
            .query(&[("token", &token)])
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        let here = |t: &TestApp| {
            use kairos::ports::Reachability;
            t.app.state.channels.here(a)
        };
        let mut seen = None;
        for _ in 0..50 {
            seen = here(t);
            if seen.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(seen, Some("portal"));
        drop(stream);
        let mut gone = false;
        for _ in 0..100 {
            if here(t).is_none() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "closing the page forgets it");
    })
    .await;
}
