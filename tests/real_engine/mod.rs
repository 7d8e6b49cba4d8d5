//! The `tests/common` harness, but with the REAL engine behind `AppState::offers`: campaign
//! launches and TMF681 messages go through the decision stage, caps, opt-outs and channels.
#![allow(dead_code)]

use std::sync::Arc;

use kairos::app::App;
use kairos::config::Config;
use sqlx::Connection;

use crate::common::{pg_url, Backend, RecordingSink, TestApp, VecOfferBook, ADMIN_KEY};

fn config(url: String, rules: &std::path::Path, channels: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.http.addr = "127.0.0.1:0".into();
    c.database.url = url;
    c.database.max_connections = 4;
    c.auth.bootstrap_admin_key = ADMIN_KEY.into();
    c.engine.rules_dir = rules.to_path_buf();
    c.engine.workers = 2;
    c.channels.dir = channels.to_path_buf();
    c
}

pub async fn start(backend: Backend, url: String, dir: &std::path::Path) -> TestApp {
    let rules = dir.join("rules");
    let channels = dir.join("channels");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::create_dir_all(&channels).unwrap();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for rule in ["vip-tier-up", "contract-renewal"] {
        std::fs::copy(
            root.join(format!("rules/static/{rule}.rhai")),
            rules.join(format!("{rule}.rhai")),
        )
        .unwrap();
    }
    let app = App::start(config(url, &rules, &channels))
        .await
        .expect("app with the real engine starts");
    TestApp {
        base: format!("http://{}", app.addr),
        app,
        backend,
        http: reqwest::Client::new(),
        // Unused: the real engine stands behind both ports.
        events: Arc::new(RecordingSink::default()),
        offers: Arc::new(VecOfferBook::default()),
    }
}

pub async fn stop(t: TestApp) {
    let pool = t.app.state.db.pool.clone();
    t.app.shutdown().await.expect("clean shutdown");
    pool.close().await;
}

/// Like `common::on_both`, with the real engine.
pub async fn on_both_engine(body: impl AsyncFn(&TestApp)) {
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("kairos.db").display()
        );
        let t = start(Backend::Sqlite, url, dir.path()).await;
        body(&t).await;
        stop(t).await;
    }
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let name = format!("kairos_t_{}", uuid::Uuid::new_v4().simple());
        let admin_url = pg_url();
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is required: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let (head, query) = match admin_url.split_once('?') {
            Some((h, q)) => (h.to_string(), format!("?{q}")),
            None => (admin_url.clone(), String::new()),
        };
        let base = head.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
        let t = start(
            Backend::Postgres,
            format!("{base}/{name}{query}"),
            dir.path(),
        )
        .await;
        body(&t).await;
        stop(t).await;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .expect("drop test database");
    }
}
