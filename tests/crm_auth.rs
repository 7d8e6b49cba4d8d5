//! Auth: login, sessions, API keys, the users API and the bootstrap admin key.

use crate::common;

use common::{on_both, on_both_urls, PASSWORD};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn unauthenticated_and_bad_credentials_get_401() {
    on_both(async |t| {
        let r = t
            .call(Method::GET, "/api/v1/customers", None, None, None)
            .await;
        assert_eq!(r.status, 401);
        assert_eq!(t.get("nope", "/api/v1/customers").await.status, 401);
        t.user("amy", "account_manager", json!({})).await;
        assert_eq!(t.login("amy", "wrong password").await.status, 401);
        assert_eq!(t.login("nobody", PASSWORD).await.status, 401);
    })
    .await;
}

#[tokio::test]
async fn password_guessing_is_throttled_per_username() {
    on_both(async |t| {
        t.user("amy", "account_manager", json!({})).await; // one login
        t.user("bob", "account_manager", json!({})).await;
        // Ten attempts a minute per name by default: nine more wrong guesses, then 429,
        // even with the right password.
        for _ in 0..9 {
            assert_eq!(t.login("amy", "guess").await.status, 401);
        }
        let r = t.login("amy", "guess").await;
        assert_eq!(r.status, 429, "{}", r.body);
        assert_eq!(r.body["error"], "too_many_requests");
        assert_eq!(t.login("AMY", PASSWORD).await.status, 429);
        // Someone else's account is not locked by it.
        t.login("bob", PASSWORD).await.expect(200);
    })
    .await;
}

#[tokio::test]
async fn login_gives_a_session_that_logout_ends() {
    on_both(async |t| {
        let amy = t
            .user("amy", "account_manager", json!({"display_name": "Amy"}))
            .await;
        let me = t.get(&amy.token, "/api/v1/auth/me").await.expect(200);
        assert_eq!(me["role"], "account_manager");
        assert_eq!(me["scope"], json!({"kind": "own", "id": amy.id}));
        t.call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&amy.token),
            None,
            None,
        )
        .await
        .expect(204);
        assert_eq!(t.get(&amy.token, "/api/v1/auth/me").await.status, 401);
    })
    .await;
}

#[tokio::test]
async fn users_api_creates_validates_and_versions() {
    on_both(async |t| {
        let admin = t.admin();
        let region = t.region("East").await;
        t.post(admin, "/api/v1/users", json!({"username": "rh", "role": "region_head"}))
            .await
            .expect_field("region_id");
        t.post(admin, "/api/v1/users", json!({"username": "x", "role": "root"}))
            .await
            .expect_field("role");
        t.post(admin, "/api/v1/users", json!({"username": "x", "role": "agent", "password": "short"}))
            .await
            .expect_field("password");
        let r = t
            .post(admin, "/api/v1/users", json!({"username": "rh", "role": "region_head", "region_id": region, "password": PASSWORD}))
            .await;
        assert_eq!(r.etag.as_deref(), Some("\"1\""));
        let user = r.expect(201);
        assert!(user.get("password_hash").is_none());
        t.post(admin, "/api/v1/users", json!({"username": "rh", "role": "agent"}))
            .await
            .expect(409);
        let path = format!("/api/v1/users/{}", user["id"].as_str().unwrap());
        t.patch(admin, &path, json!({"display_name": "Head"})).await.expect_field("version");
        let u = t.patch_if_match(admin, &path, "\"1\"", json!({"display_name": "Head"})).await.expect(200);
        assert_eq!(u["version"], 2);
        t.patch(admin, &path, json!({"display_name": "Again", "version": 1})).await.expect(412);
        let list = t.get(admin, "/api/v1/users?role=region_head").await.expect(200);
        assert_eq!(list["total"], 1);
        // Deactivation ends sessions.
        let tok = t.login("rh", PASSWORD).await.expect(200)["token"].as_str().unwrap().to_string();
        t.patch(admin, &path, json!({"active": false, "version": 2})).await.expect(200);
        assert_eq!(t.get(&tok, "/api/v1/auth/me").await.status, 401);
        let amy = t.user("amy", "account_manager", json!({})).await;
        t.get(&amy.token, "/api/v1/users").await.expect(403);
        // The last admin cannot be demoted; once there is another, they can.
        let root = t.get(admin, "/api/v1/users?username=admin").await.expect(200)["items"][0].clone();
        let root_path = format!("/api/v1/users/{}", root["id"].as_str().unwrap());
        t.patch(admin, &root_path, json!({"role": "agent", "version": root["version"]})).await.expect(409);
        t.user("admin2", "admin", json!({})).await;
        t.patch(admin, &root_path, json!({"display_name": "Root", "version": root["version"]})).await.expect(200);
        let audit = t.get(admin, "/api/v1/audit?entity=user").await.expect(200);
        assert!(audit["total"].as_i64().unwrap() >= 4, "{audit}");
    })
    .await;
}

#[tokio::test]
async fn api_keys_are_shown_once_and_revocable() {
    on_both(async |t| {
        let admin = t.admin();
        let sys = t
            .post(
                admin,
                "/api/v1/users",
                json!({"username": "ingest", "role": "system"}),
            )
            .await
            .expect(201);
        let k = t
            .post(
                admin,
                "/api/v1/api-keys",
                json!({"name": "probe", "user_id": sys["id"]}),
            )
            .await
            .expect(201);
        let key = k["key"].as_str().unwrap().to_string();
        let me = t
            .call(Method::GET, "/api/v1/auth/me", None, None, None)
            .await;
        assert_eq!(me.status, 401);
        let r = t
            .http
            .get(format!("{}/api/v1/auth/me", t.base))
            .header("X-Api-Key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let list = t.get(admin, "/api/v1/api-keys").await.expect(200);
        assert!(!list.to_string().contains(&key), "keys are never listed");
        t.delete(
            admin,
            &format!("/api/v1/api-keys/{}", k["id"].as_str().unwrap()),
        )
        .await
        .expect(204);
        assert_eq!(t.get(&key, "/api/v1/auth/me").await.status, 401);
        t.post(
            admin,
            "/api/v1/api-keys",
            json!({"name": "x", "user_id": "missing"}),
        )
        .await
        .expect_field("user_id");
    })
    .await;
}

#[tokio::test]
async fn a_fresh_database_without_a_configured_key_generates_one() {
    use kairos::auth::Authenticator;
    on_both_urls(async |_, url| {
        let db = kairos::store::Db::connect(&url, 2).await.unwrap();
        let key = kairos::auth::db::bootstrap(&db, "")
            .await
            .unwrap()
            .expect("generated");
        assert!(
            kairos::auth::db::bootstrap(&db, "")
                .await
                .unwrap()
                .is_none(),
            "only once"
        );
        // A configured key is added next to the generated one, once.
        kairos::auth::db::bootstrap(&db, "kak_configured")
            .await
            .unwrap();
        kairos::auth::db::bootstrap(&db, "kak_configured")
            .await
            .unwrap();
        let auth = kairos::auth::DbAuthenticator { db: db.clone() };
        for k in [key.as_str(), "kak_configured"] {
            let p = auth.authenticate(k).await.unwrap().expect("key works");
            assert_eq!(p.role, kairos::auth::Role::Admin);
        }
        let (keys,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM api_keys")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(keys, 2);
        db.pool.close().await;
    })
    .await;
}

#[tokio::test]
async fn expired_sessions_are_rejected() {
    on_both(async |t| {
        let amy = t.user("amy", "account_manager", json!({})).await;
        t.get(&amy.token, "/api/v1/auth/me").await.expect(200);
        sqlx::query("UPDATE sessions SET expires_at = $1")
            .bind("2000-01-01T00:00:00.000Z")
            .execute(&t.app.state.db.pool)
            .await
            .unwrap();
        assert_eq!(t.get(&amy.token, "/api/v1/auth/me").await.status, 401);
    })
    .await;
}
