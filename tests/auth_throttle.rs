//! Guessing is throttled per client address: failed API keys, tokens and passwords spend a
//! budget; past it the address gets 429 until it refills. Valid traffic spends nothing.

use crate::common;

use common::{on_both, on_both_with, TestApp, PASSWORD};
use serde_json::json;

/// GET `/api/v1/auth/me` with `key`, claiming to come from `client` through our proxy.
async fn me(t: &TestApp, key: &str, client: Option<&str>) -> reqwest::Response {
    let mut req = t
        .http
        .get(format!("{}/api/v1/auth/me", t.base))
        .bearer_auth(key);
    if let Some(ip) = client {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.expect("request sent")
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn guessing_api_keys_gets_429_after_the_budget_other_addresses_are_unaffected() {
    // Three failures a minute; the test client's loopback is a trusted proxy so the test can
    // speak for several client addresses.
    let tweak = |c: &mut kairos::config::Config| {
        c.auth.failed_attempts_per_address_per_minute = 3;
        c.auth.trusted_proxies = vec!["127.0.0.1".into()];
    };
    on_both_with(tweak, async |t| {
        let guesser = Some("203.0.113.5");
        for i in 0..3 {
            let r = me(t, &format!("kak_guess_{i}"), guesser).await;
            assert_eq!(r.status(), 401, "guess {i} within the budget");
        }
        let r = me(t, "kak_guess_3", guesser).await;
        assert_eq!(r.status(), 429);
        let wait = retry_after(&r);
        assert!((1..=20).contains(&wait), "Retry-After {wait}");
        // Blocked means blocked: even the right key is not checked from that address.
        assert_eq!(me(t, t.admin(), guesser).await.status(), 429);
        // Everyone else carries on.
        assert_eq!(me(t, t.admin(), Some("203.0.113.6")).await.status(), 200);
        assert_eq!(me(t, t.admin(), None).await.status(), 200);
        assert_eq!(me(t, "kak_typo", Some("203.0.113.6")).await.status(), 401);
    })
    .await;
}

#[tokio::test]
async fn spraying_passwords_across_usernames_hits_the_per_address_limit() {
    let tweak = |c: &mut kairos::config::Config| c.auth.failed_attempts_per_address_per_minute = 3;
    on_both_with(tweak, async |t| {
        // Five successful logins (one per user created) spend none of the budget of three.
        for i in 0..5 {
            t.user(&format!("user{i}"), "agent", json!({})).await;
        }
        // One wrong password per name: the per-username limit never sees more than one.
        for i in 0..3 {
            assert_eq!(
                t.login(&format!("user{i}"), "Winter2026!").await.status,
                401
            );
        }
        let r = t.login("user3", "Winter2026!").await;
        assert_eq!(r.status, 429, "{}", r.body);
        assert_eq!(r.body["error"], "too_many_requests");
        // And while blocked, the right password for a fresh name is refused unchecked.
        assert_eq!(t.login("user4", PASSWORD).await.status, 429);
        // API keys from the same address are blocked too: it is one budget per address.
        assert_eq!(t.get(t.admin(), "/api/v1/auth/me").await.status, 429);
    })
    .await;
}

#[tokio::test]
async fn valid_traffic_is_not_slowed_by_the_default_budget() {
    on_both(async |t| {
        let amy = t.user("amy", "account_manager", json!({})).await;
        // Far more valid calls than the failure budget, with a few typos mixed in.
        for i in 0..120 {
            let who = if i % 2 == 0 {
                t.admin()
            } else {
                amy.token.as_str()
            };
            assert_eq!(t.get(who, "/api/v1/auth/me").await.status, 200, "call {i}");
            if i % 10 == 0 {
                assert_eq!(t.get("kak_typo", "/api/v1/auth/me").await.status, 401);
            }
        }
        assert_eq!(t.login("amy", "typo").await.status, 401);
        t.login("amy", PASSWORD).await.expect(200);
    })
    .await;
}
