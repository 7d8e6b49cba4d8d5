//! Shared harness for engine integration tests: a real app on port 0, real databases.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use kairos::app::App;
use kairos::config::Config;

pub const ADMIN: &str = "test-admin-key";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Which SQL database a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database: a SQLite file in a temp dir, or a new PostgreSQL database.
/// PostgreSQL must be reachable (`KAIROS_TEST_PG_URL`): a missing server fails the test.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

pub fn pg_admin_url() -> String {
    std::env::var("KAIROS_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub async fn fresh_db(b: Backend) -> TestDb {
    match b {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("k.db").display());
            TestDb {
                url,
                _dir: Some(dir),
                pg_name: None,
            }
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let admin = pg_admin_url();
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required for this test: {e}"));
            let name = format!("kairos_t_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
            TestDb {
                url: format!("{base}/{name}"),
                _dir: None,
                pg_name: Some(name),
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Best effort, off the async runtime: a leftover test database is harmless.
            let admin = pg_admin_url();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    use sqlx::Connection;
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                    }
                });
            })
            .join()
            .ok();
        }
    }
}

pub fn config(db_url: &str, rules: &Path) -> Config {
    let mut c = Config::default();
    c.http.addr = "127.0.0.1:0".into();
    c.database.url = db_url.to_string();
    c.database.max_connections = 4;
    c.engine.rules_dir = rules.to_path_buf();
    c.auth.bootstrap_admin_key = ADMIN.into();
    c.engine.workers = 2;
    // The scenarios here happen on fixed days of November 2026, and their offers' validity
    // has ended by the wall clock since; live traffic would decide them `expired` and the
    // outbox would expire them (both tested on their own, with events of today).
    c.engine.wall_clock_expiry = false;
    // The simulated subscribers here have no CRM record; they are decided for as if they had
    // (the default, service messages only for unknown numbers, is tested in crm_operator).
    c.engine.unknown_subscribers = "market".into();
    c
}

pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub key: String,
}

impl Client {
    pub fn new(app: &App) -> Self {
        Client {
            base: format!("http://{}", app.addr),
            http: reqwest::Client::new(),
            key: ADMIN.into(),
        }
    }
    pub fn with_key(&self, key: &str) -> Self {
        Client {
            base: self.base.clone(),
            http: self.http.clone(),
            key: key.into(),
        }
    }
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{}", self.base, path))
            .bearer_auth(&self.key)
    }
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{}", self.base, path))
            .bearer_auth(&self.key)
    }
    /// GETs `path` and reads the JSON answer, whatever its status.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path).send().await.unwrap().json().await.unwrap()
    }
    /// The items of a `{items, total}` list.
    pub async fn get_items(&self, path: &str) -> Vec<serde_json::Value> {
        let page = self.get_json(path).await;
        serde_json::from_value(page["items"].clone()).expect("a list with items")
    }
    /// Ingests and waits until processed.
    pub async fn ingest(&self, events: &[serde_json::Value]) -> serde_json::Value {
        let r = self
            .post("/api/v1/events?wait=true")
            .json(&events)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "ingest failed");
        r.json().await.unwrap()
    }
    pub async fn recs(&self, msisdn: &str) -> Vec<serde_json::Value> {
        let r = self
            .get(&format!("/api/v1/recommendations?msisdn={msisdn}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        v["items"].as_array().unwrap().clone()
    }
}

pub fn ev(
    id: &str,
    ty: &str,
    msisdn: &str,
    ts: &str,
    attrs: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({"id": id, "type": ty, "msisdn": msisdn, "ts": ts, "attrs": attrs})
}

/// The issue's acceptance scenario: a roamer, one who powers on after 3 missed calls, one
/// after 1 missed call.
pub fn three_subscribers() -> Vec<serde_json::Value> {
    use serde_json::json;
    let (a, b, c) = ("8613900000001", "8613900000002", "8613900000003");
    vec![
        ev(
            "a1",
            "location_update",
            a,
            "2026-11-23T08:15:00+08:00",
            json!({"country": "JP", "mcc": "440", "roaming": true}),
        ),
        ev(
            "b1",
            "power_off",
            b,
            "2026-11-23T22:00:00+08:00",
            json!({"imei": "356938035643809"}),
        ),
        ev(
            "b2",
            "missed_call",
            b,
            "2026-11-23T22:10:00+08:00",
            json!({"caller": "8613900000009", "reason": "powered_off"}),
        ),
        ev(
            "b3",
            "missed_call",
            b,
            "2026-11-23T23:10:00+08:00",
            json!({"caller": "8613900000008", "reason": "powered_off"}),
        ),
        ev(
            "b4",
            "missed_call",
            b,
            "2026-11-24T06:40:00+08:00",
            json!({"caller": "8613900000009", "reason": "powered_off"}),
        ),
        ev(
            "b5",
            "power_on",
            b,
            "2026-11-24T07:00:00+08:00",
            json!({"imei": "356938035643809"}),
        ),
        ev(
            "c1",
            "power_off",
            c,
            "2026-11-23T22:00:00+08:00",
            json!({"imei": "356938035643810"}),
        ),
        ev(
            "c2",
            "missed_call",
            c,
            "2026-11-23T22:30:00+08:00",
            json!({"caller": "8613900000009", "reason": "powered_off"}),
        ),
        ev(
            "c3",
            "power_on",
            c,
            "2026-11-24T07:00:00+08:00",
            json!({"imei": "356938035643810"}),
        ),
    ]
}

/// A rules folder holding just the given files.
pub fn rules_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, src) in files {
        std::fs::write(d.path().join(name), src).unwrap();
    }
    d
}

pub fn copy_rules(names: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for n in names {
        let src = std::fs::read_to_string(repo().join("rules").join(n)).unwrap();
        std::fs::write(d.path().join(Path::new(n).file_name().unwrap()), src).unwrap();
    }
    d
}

/// A rule that grows a list on every run until a sandbox limit stops it (the list's size,
/// the operation bound or the deadline): the one that once stalled a replay for minutes.
pub const GROW_ARRAY_RULE: &str = r#"#{
    id: "grow-array", name: "Grows a list", kind: "dynamic", events: ["location_update"],
    when: #{ roaming: true }, priority: 90, channels: ["sms"],
    offer: #{ code: "NEVER" }, message: "never",
};
fn condition(event, profile) {
    let seen = [];
    loop { seen.push(event.country); let copy = seen; }
}
"#;

/// `n` roaming location updates over 400 subscribers and a handful of countries, a minute
/// apart, as NDJSON lines.
pub fn roaming_events(n: usize) -> Vec<String> {
    use serde_json::json;
    let countries = [
        ("JP", "440"),
        ("KR", "450"),
        ("TH", "520"),
        ("US", "310"),
        ("FR", "208"),
    ];
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-23T08:00:00+08:00").unwrap();
    (0..n)
        .map(|i| {
            let (country, mcc) = countries[(i / 400 + i % 3) % countries.len()];
            let ts = start + chrono::Duration::minutes(i as i64);
            ev(
                &format!("r{i}"),
                "location_update",
                &format!("86139001{:05}", i % 400),
                &ts.to_rfc3339(),
                json!({"country": country, "mcc": mcc, "roaming": true}),
            )
            .to_string()
        })
        .collect()
}

/// A copy of the standard pack (subfolders included) plus the given files.
pub fn pack_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            let target = to.join(p.file_name().unwrap());
            if p.is_dir() {
                copy(&p, &target);
            } else {
                std::fs::copy(&p, &target).unwrap();
            }
        }
    }
    let d = tempfile::tempdir().unwrap();
    copy(&repo().join("rules"), d.path());
    for (name, src) in files {
        std::fs::write(d.path().join(name), src).unwrap();
    }
    d
}

/// A port nothing listens on right now, for a server or broker a test starts itself.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
