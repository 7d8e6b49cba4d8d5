//! Shared integration-test harness: starts the real app in-process on SQLite and on a fresh
//! PostgreSQL database, with recording fakes for the engine's ports, and HTTP helpers.
//!
//! Every test body runs twice: `common::on_both(async |t| { ... }).await`. PostgreSQL comes
//! from `KAIROS_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`); when it is
//! unreachable the test fails.
#![allow(dead_code)]

pub mod world;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use kairos::app::{App, AppParts};
use kairos::config::Config;
use kairos::event::{Event, Msisdn};
use kairos::ports::{EventSink, OfferBook, OfferRequest, PortError, Recommendation, Status};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Connection;

pub const ADMIN_KEY: &str = "kak_test_admin_key_0123456789";
pub const PASSWORD: &str = "correct horse battery";

/// Records every event the CRM submits to the engine; with `refuse` set it fails like an
/// engine that is shutting down.
#[derive(Default)]
pub struct RecordingSink(pub Mutex<Vec<Event>>, pub AtomicBool);

#[async_trait::async_trait]
impl EventSink for RecordingSink {
    async fn submit(&self, events: Vec<Event>) -> Result<(), PortError> {
        if self.1.load(Ordering::Relaxed) {
            return Err(PortError::Closed);
        }
        self.0.lock().unwrap().extend(events);
        Ok(())
    }
}

impl RecordingSink {
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
    pub fn refuse(&self, on: bool) {
        self.1.store(on, Ordering::Relaxed);
    }
}

/// Offers and usage served from memory; `fail` makes every call fail like a down engine.
#[derive(Default)]
pub struct VecOfferBook {
    pub recs: Mutex<Vec<Recommendation>>,
    pub usage: Mutex<HashMap<String, Value>>,
    pub fail: AtomicBool,
    /// Every request handed to `propose` (SMS notifications, campaigns).
    pub proposed: Mutex<Vec<OfferRequest>>,
}

impl VecOfferBook {
    fn check(&self) -> Result<(), PortError> {
        if self.fail.load(Ordering::Relaxed) {
            Err(PortError::Storage("engine down (test)".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl OfferBook for VecOfferBook {
    async fn offers_for(&self, m: Msisdn, limit: usize) -> Result<Vec<Recommendation>, PortError> {
        self.check()?;
        let recs = self.recs.lock().unwrap();
        Ok(recs
            .iter()
            .filter(|r| r.msisdn == m)
            .take(limit)
            .cloned()
            .collect())
    }
    async fn offer(&self, id: &str) -> Result<Option<Recommendation>, PortError> {
        Ok(self
            .recs
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.id == id)
            .cloned())
    }
    async fn eligible_now(
        &self,
        m: Msisdn,
        channel: Option<&str>,
    ) -> Result<Vec<Recommendation>, PortError> {
        let recs = self.offers_for(m, 200).await?;
        Ok(kairos::pipeline::rank::live(
            recs,
            channel,
            chrono::Utc::now(),
        ))
    }
    async fn propose(&self, reqs: Vec<OfferRequest>) -> Result<Vec<Recommendation>, PortError> {
        self.proposed.lock().unwrap().extend(reqs);
        Ok(Vec::new())
    }
    async fn usage(&self, m: Msisdn) -> Result<Value, PortError> {
        self.check()?;
        Ok(self
            .usage
            .lock()
            .unwrap()
            .get(&m.to_string())
            .cloned()
            .unwrap_or_else(|| json!({})))
    }
    async fn respond(
        &self,
        _: &str,
        _: Status,
        _: &str,
        _: Option<String>,
    ) -> Result<Option<Recommendation>, PortError> {
        Ok(None)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running app plus what it needs to be driven and inspected.
pub struct TestApp {
    pub app: App,
    pub backend: Backend,
    pub base: String,
    pub http: reqwest::Client,
    pub events: Arc<RecordingSink>,
    pub offers: Arc<VecOfferBook>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub etag: Option<String>,
    pub body: Value,
}

impl Resp {
    /// Asserts the status (showing the body when it differs) and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }
    /// Asserts a 400 naming `field`.
    #[track_caller]
    pub fn expect_field(self, field: &str) {
        assert_eq!(self.status, 400, "expected 400; body: {}", self.body);
        assert_eq!(self.body["field"], field, "body: {}", self.body);
    }
}

/// A user who can call the API.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: String,
    pub token: String,
}

pub fn pg_url() -> String {
    std::env::var("KAIROS_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `url` with its database name replaced.
fn with_database(url: &str, db: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match head[scheme_end..].find('/') {
        Some(i) => &head[..scheme_end + i],
        None => head,
    };
    format!("{base}/{db}{query}")
}

async fn pg_admin() -> sqlx::PgConnection {
    let url = pg_url();
    sqlx::PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} is required for these tests: {e}"))
}

fn config(url: String) -> Config {
    let mut c = Config::default();
    c.http.addr = "127.0.0.1:0".into();
    c.database.url = url;
    c.database.max_connections = 4;
    c.auth.bootstrap_admin_key = ADMIN_KEY.into();
    c
}

impl TestApp {
    /// A POST with a raw body and headers of the test's choosing: status, headers, body text.
    pub async fn post_raw(
        &self,
        token: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut req = self
            .http
            .post(format!("{}{}", self.base, path))
            .bearer_auth(token)
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        (status, h, resp.text().await.unwrap())
    }

    /// An import's status; for a 200, its reports and summary, with the `Import-Records`
    /// header checked against the reports (it says up front how many there will be). Any
    /// other status gives the body as the summary.
    pub async fn import(
        &self,
        token: &str,
        path: &str,
        content_type: &str,
        body: String,
    ) -> (u16, Vec<Value>, Value) {
        let (status, h, text) = self
            .post_raw(token, path, &[("content-type", content_type)], body)
            .await;
        if status != 200 {
            return (status, Vec::new(), Value::String(text));
        }
        assert_eq!(h["content-type"], "application/x-ndjson");
        let total: usize = h["import-records"].to_str().unwrap().parse().unwrap();
        let mut lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each answer line is JSON"))
            .collect();
        let summary = lines.pop().expect("a summary line")["summary"].clone();
        assert_eq!(lines.len(), total, "{summary}");
        (status, lines, summary)
    }

    pub async fn start(backend: Backend, url: String) -> TestApp {
        TestApp::start_config(backend, url, |_| {}).await
    }

    /// Like [`TestApp::start`], with `tweak` applied to the test config first.
    pub async fn start_config(
        backend: Backend,
        url: String,
        tweak: impl FnOnce(&mut Config),
    ) -> TestApp {
        let mut cfg = config(url);
        tweak(&mut cfg);
        let events = Arc::new(RecordingSink::default());
        let offers = Arc::new(VecOfferBook::default());
        let parts = AppParts {
            events: events.clone(),
            offers: offers.clone(),
        };
        let app = App::start_with(cfg, parts).await.expect("app starts");
        TestApp {
            base: format!("http://{}", app.addr),
            app,
            backend,
            http: reqwest::Client::new(),
            events,
            offers,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> Resp {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(v) = if_match {
            req = req.header("If-Match", v);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp { status, etag, body }
    }

    pub async fn get(&self, token: &str, path: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None, None).await
    }
    pub async fn post(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body), None)
            .await
    }
    pub async fn put(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(token), Some(body), None)
            .await
    }
    /// PATCH with the version in the body.
    pub async fn patch(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(token), Some(body), None)
            .await
    }
    pub async fn patch_if_match(&self, token: &str, path: &str, etag: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(token), Some(body), Some(etag))
            .await
    }
    pub async fn delete(&self, token: &str, path: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), None, None)
            .await
    }

    pub fn admin(&self) -> &'static str {
        ADMIN_KEY
    }

    pub async fn login(&self, username: &str, password: &str) -> Resp {
        self.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": username, "password": password})),
            None,
        )
        .await
    }

    /// Creates a user through the admin API and logs in as them.
    pub async fn user(&self, username: &str, role: &str, extra: Value) -> Actor {
        let mut body = json!({"username": username, "role": role, "password": PASSWORD});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                body[k] = v;
            }
        }
        let user = self
            .post(ADMIN_KEY, "/api/v1/users", body)
            .await
            .expect(201);
        let login = self.login(username, PASSWORD).await.expect(200);
        Actor {
            id: user["id"].as_str().unwrap().to_string(),
            token: login["token"].as_str().unwrap().to_string(),
        }
    }

    pub async fn region(&self, name: &str) -> String {
        let r = self
            .post(ADMIN_KEY, "/api/v1/regions", json!({"name": name}))
            .await
            .expect(201);
        r["id"].as_str().unwrap().to_string()
    }

    pub async fn team(&self, name: &str, region_id: &str) -> String {
        let r = self
            .post(
                ADMIN_KEY,
                "/api/v1/teams",
                json!({"name": name, "region_id": region_id}),
            )
            .await
            .expect(201);
        r["id"].as_str().unwrap().to_string()
    }

    /// Creates a customer as admin; `extra` overrides or adds fields.
    pub async fn customer(&self, name: &str, extra: Value) -> Value {
        let mut body = json!({"name": name, "customer_type": "individual"});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                body[k] = v;
            }
        }
        self.post(ADMIN_KEY, "/api/v1/customers", body)
            .await
            .expect(201)
    }

    /// Makes sure the catalog has the plan `code` (a line's plan must be one).
    pub async fn plan(&self, code: &str) {
        let path = format!("/api/v1/catalog/offerings/{code}");
        if self.get(ADMIN_KEY, &path).await.status == 404 {
            self.post(
                ADMIN_KEY,
                "/api/v1/catalog/offerings",
                json!({"code": code, "name": code, "offering_type": "plan", "price_cents": 3900, "recurring_period": "month"}),
            )
            .await
            .expect(201);
        }
    }

    /// Creates a billing account and a line for `customer_id`; returns the line.
    pub async fn line(&self, customer_id: &str, msisdn: &str) -> Value {
        self.plan("basic_39").await;
        let acc = self
            .post(
                ADMIN_KEY,
                "/api/v1/accounts",
                json!({"customer_id": customer_id, "name": "main"}),
            )
            .await
            .expect(201);
        self.post(
            ADMIN_KEY,
            "/api/v1/lines",
            json!({"customer_id": customer_id, "account_id": acc["id"], "msisdn": msisdn, "plan": "basic_39"}),
        )
        .await
        .expect(201)
    }

    /// Stores a recommendation in the engine's own store, as a decision would.
    pub async fn store_rec(&self, rec: &Recommendation) {
        self.app
            .state
            .pipeline
            .deps
            .recs
            .insert(std::slice::from_ref(rec))
            .await
            .expect("recommendation stored");
    }

    /// Drains the app first (its workers may still be committing what the test's last
    /// requests started, e.g. a CRM change's profile event), then closes the pool. Closing
    /// the pool first failed those commits and so the shutdown, now and then.
    pub async fn stop(self) {
        let pool = self.app.state.db.pool.clone();
        self.app.shutdown().await.expect("clean shutdown");
        pool.close().await;
    }
}

/// Runs `body` against a fresh SQLite file and a fresh PostgreSQL database.
pub async fn on_both(body: impl AsyncFn(&TestApp)) {
    on_both_with(|_| {}, body).await;
}

/// [`on_both`] with `tweak` applied to each app's config.
pub async fn on_both_with(tweak: impl Fn(&mut Config), body: impl AsyncFn(&TestApp)) {
    on_both_urls(async |backend, url| {
        let t = TestApp::start_config(backend, url, &tweak).await;
        body(&t).await;
        t.stop().await;
    })
    .await;
}

/// An SMS offer for `msisdn`, queued, valid for a day from now.
pub fn sms_rec(id: &str, msisdn: &str) -> Recommendation {
    let now = chrono::Utc::now().fixed_offset();
    Recommendation {
        id: id.into(),
        msisdn: Msisdn::parse(msisdn).expect("test msisdn"),
        rule_id: "test-rule".into(),
        offer_code: "TEST-OFFER".into(),
        channel: "sms".into(),
        message: format!("Offer for {msisdn}"),
        score: 0.5,
        trigger_event_id: None,
        campaign_id: None,
        request_id: None,
        decided_at: now,
        expires_at: now + chrono::Duration::days(1),
        not_before: None,
        // Already handed to the gateway, as any message a delivery report is about: a queued
        // one would be picked up and delivered by the outbox sweep meanwhile.
        status: Status::Sent,
        reason: None,
        explanation: None,
        service: false,
    }
}

/// Runs `body` with the URL of a fresh, empty database on each backend (for tests that need
/// the database without the app, e.g. startup behaviour). PostgreSQL databases are dropped
/// afterwards.
pub async fn on_both_urls(body: impl AsyncFn(Backend, String)) {
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("kairos.db").display()
        );
        body(Backend::Sqlite, url).await;
    }
    {
        let (name, url) = create_pg_database().await;
        body(Backend::Postgres, url).await;
        drop_pg_database(&name).await;
    }
}

/// A fresh, empty PostgreSQL database for a test that runs several apps on one database:
/// its name (for [`drop_pg_database`]) and its URL.
pub async fn create_pg_database() -> (String, String) {
    let name = format!("kairos_t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut pg_admin().await)
        .await
        .expect("create test database");
    let url = with_database(&pg_url(), &name);
    (name, url)
}

pub async fn drop_pg_database(name: &str) {
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut pg_admin().await)
        .await
        .expect("drop test database");
}

/// A sent-by-SMS offer decided at `at` (RFC 3339), valid for a day, for tests that need
/// recommendations in the store without running the engine.
pub fn offer(
    id: &str,
    msisdn: &str,
    at: &str,
    status: kairos::ports::Status,
) -> kairos::ports::Recommendation {
    let at = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    kairos::ports::Recommendation {
        id: id.into(),
        msisdn: kairos::event::Msisdn::parse(msisdn).unwrap(),
        rule_id: "r1".into(),
        offer_code: "DATA_10G".into(),
        channel: "sms".into(),
        message: "10 GB for 30".into(),
        score: 0.9,
        trigger_event_id: None,
        campaign_id: None,
        request_id: None,
        decided_at: at,
        expires_at: at + chrono::Duration::days(1),
        not_before: None,
        status,
        reason: None,
        explanation: None,
        service: false,
    }
}
