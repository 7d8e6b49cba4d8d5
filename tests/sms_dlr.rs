//! SMS delivery reports: authenticated by the message's signed token in the URL, nothing else.

use crate::common;

use common::world::world;
use common::{on_both, on_both_urls, sms_rec, Backend, TestApp};
use kairos::channels::sms::dlr;
use reqwest::Method;

/// The delivery-report path for `id` with `token` (when given), as the gateway calls it.
fn dlr_path(id: &str, status: u32, token: Option<&str>) -> String {
    match token {
        Some(t) => format!("/api/v1/channels/sms/dlr?id={id}&status={status}&token={t}"),
        None => format!("/api/v1/channels/sms/dlr?id={id}&status={status}"),
    }
}

fn secret(t: &TestApp) -> String {
    t.app.state.config.channels.sms.dlr_secret.clone()
}

async fn status_of(t: &TestApp, id: &str) -> String {
    let r = t
        .get(t.admin(), &format!("/api/v1/recommendations/{id}"))
        .await
        .expect(200);
    r["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn delivery_reports_need_the_messages_own_token() {
    on_both(async |t| {
        t.store_rec(&sms_rec("rec-a", "8613900001001")).await;
        t.store_rec(&sms_rec("rec-b", "8613900001003")).await;
        let key = secret(t);
        let token_b = dlr::token(&key, "rec-b");
        let forged = dlr::token("guessed-secret", "rec-a");
        for (token, why) in [
            (None, "no token"),
            (Some(forged.as_str()), "signed with another key"),
            (Some(token_b.as_str()), "another message's token"),
            (Some("zz-not-hex"), "not a token at all"),
            (Some(""), "empty token"),
        ] {
            let r = t
                .call(Method::GET, &dlr_path("rec-a", 2, token), None, None, None)
                .await;
            assert_eq!(r.status, 403, "{why}: {}", r.body);
        }
        assert_eq!(status_of(t, "rec-a").await, "sent", "nothing was touched");
        // The right token alone (no bearer) records the report, for that message only.
        let token_a = dlr::token(&key, "rec-a");
        let r = t
            .call(
                Method::GET,
                &dlr_path("rec-a", 2, Some(&token_a)),
                None,
                None,
                None,
            )
            .await;
        let body = r.expect(200);
        assert_eq!(body["status"], "failed");
        assert_eq!(body["reason"], "undelivered");
        assert_eq!(status_of(t, "rec-b").await, "sent");
        // POST works the same way (Kannel can be set to either).
        let r = t
            .call(
                Method::POST,
                &dlr_path("rec-b", 1, Some(&token_b)),
                None,
                None,
                None,
            )
            .await;
        assert_eq!(r.expect(200)["status"], "delivered");
    })
    .await;
}

#[tokio::test]
async fn a_bearer_does_not_authenticate_a_delivery_report() {
    on_both(async |t| {
        let w = world(t).await;
        // am1 manages c1 (line ...1001) and may send messages; c3 (...1003) is someone else's.
        t.store_rec(&sms_rec("rec-own", "8613900001001")).await;
        t.store_rec(&sms_rec("rec-other", "8613900001003")).await;
        for id in ["rec-own", "rec-other"] {
            for who in [w.am1.token.as_str(), w.system.token.as_str(), t.admin()] {
                let r = t.get(who, &dlr_path(id, 2, None)).await;
                assert_eq!(r.status, 403, "{id}: {}", r.body);
            }
            // Nor does a bearer make up for a wrong token.
            let wrong = dlr::token(&secret(t), "rec-none");
            let r = t.get(&w.am1.token, &dlr_path(id, 2, Some(&wrong))).await;
            assert_eq!(r.status, 403, "{id}: {}", r.body);
            assert_eq!(status_of(t, id).await, "sent", "{id}");
        }
        // The document says so too: the callback has no bearer security requirement.
        let doc = t.get(t.admin(), "/api/v1/openapi.json").await.expect(200);
        let op = &doc["paths"]["/api/v1/channels/sms/dlr"]["get"];
        assert!(op.is_object(), "dlr operation documented");
        assert!(op.get("security").is_none(), "{op}");
    })
    .await;
}

#[tokio::test]
async fn the_signing_key_is_generated_once_and_shared_by_instances() {
    on_both_urls(async |backend: Backend, url: String| {
        // A second instance on the same database while the first runs, then a restart: one
        // key throughout. (Started one after the other: first-start migrations do not race.)
        let a = TestApp::start(backend, url.clone()).await;
        let b = TestApp::start(backend, url.clone()).await;
        let key = secret(&a);
        assert_eq!(key.len(), 64, "a generated 256-bit key");
        assert_eq!(secret(&b), key);
        a.stop().await;
        b.stop().await;
        let again = TestApp::start(backend, url.clone()).await;
        assert_eq!(secret(&again), key);
        // Two instances generating at the same moment agree on the one that was stored.
        let db = again.app.state.db.clone();
        sqlx::query("DELETE FROM app_secrets")
            .execute(&db.pool)
            .await
            .unwrap();
        let (x, y) = tokio::join!(dlr::secret(&db, ""), dlr::secret(&db, ""));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(x, y);
        assert_ne!(x, key, "a new key after the old one was removed");
        again.stop().await;
        // A configured key wins over the stored one.
        let configured = TestApp::start_config(backend, url, |c| {
            c.channels.sms.dlr_secret = "from-config".into();
        })
        .await;
        assert_eq!(secret(&configured), "from-config");
        configured.stop().await;
    })
    .await;
}

#[tokio::test]
async fn sms_replies_answer_the_newest_live_offer_with_the_deployments_token() {
    on_both(async |t| {
        t.store_rec(&sms_rec("older", "8613900001101")).await;
        t.store_rec(&sms_rec("newer", "8613900001101")).await;
        t.store_rec(&sms_rec("theirs", "8613900001102")).await;
        let path = t
            .get(t.admin(), "/api/v1/channels/sms/mo-url")
            .await
            .expect(200)["path"]
            .as_str()
            .unwrap()
            .to_string();
        let token = path.rsplit_once("token=").unwrap().1.to_string();
        let mo = |from: &str, text: &str, token: Option<&str>| {
            let mut p = format!(
                "/api/v1/channels/sms/mo?from={}&text={}",
                urlencoding(from),
                urlencoding(text)
            );
            if let Some(t) = token {
                p.push_str(&format!("&token={t}"));
            }
            p
        };
        // Without the token, or with a message's delivery-report token, nothing is read.
        let dlr_token = dlr::token(&secret(t), "newer");
        for bad in [None, Some(dlr_token.as_str()), Some("00")] {
            let r = t
                .call(
                    Method::GET,
                    &mo("8613900001101", "Y", bad),
                    None,
                    None,
                    None,
                )
                .await;
            assert_eq!(r.status, 403, "{bad:?}: {}", r.body);
        }
        assert_eq!(status_of(t, "newer").await, "sent");
        // Staff other than administrators cannot read the token.
        let agent = t.user("mo-agent", "agent", serde_json::json!({})).await;
        let r = t.get(&agent.token, "/api/v1/channels/sms/mo-url").await;
        assert_eq!(r.status, 403);

        let r = t
            .call(
                Method::GET,
                &mo("+8613900001101", "Y", Some(&token)),
                None,
                None,
                None,
            )
            .await;
        assert_eq!(r.expect(200)["recommendation_id"], "newer");
        let rec = t
            .get(t.admin(), "/api/v1/recommendations/newer")
            .await
            .expect(200);
        assert_eq!(rec["status"], "accepted");
        assert_eq!(rec["reason"], "reply: Y");
        // The next answer goes to the offer still open; words that answer nothing change nothing.
        let r = t
            .call(
                Method::POST,
                &mo("8613900001101", "hello there", Some(&token)),
                None,
                None,
                None,
            )
            .await;
        assert_eq!(r.expect(200)["recommendation_id"], serde_json::Value::Null);
        let r = t
            .call(
                Method::GET,
                &mo("8613900001101", "不要", Some(&token)),
                None,
                None,
                None,
            )
            .await;
        assert_eq!(r.expect(200)["recommendation_id"], "older");
        assert_eq!(status_of(t, "older").await, "declined");
        assert_eq!(
            status_of(t, "theirs").await,
            "sent",
            "another number's offer"
        );
        // Nothing left to answer.
        let r = t
            .call(
                Method::GET,
                &mo("8613900001101", "Y", Some(&token)),
                None,
                None,
                None,
            )
            .await;
        assert_eq!(r.expect(200)["recommendation_id"], serde_json::Value::Null);
    })
    .await;
}

fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
