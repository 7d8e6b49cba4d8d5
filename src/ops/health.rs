//! Probes. `/health` is liveness: the process serves requests, and answers `ok` whatever its
//! dependencies do (restarting it would not bring them back). `/readyz` is readiness: the
//! database, and Redis and Kafka when configured, answer now; if one does not, 503 with a
//! body naming it, so a load balancer sends traffic to instances that can take it.
//!
//! Both are open to anyone: probes carry no credentials, and what they tell (which kind of
//! dependency is down) is no one's data.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use crate::app::AppState;

/// How long one check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// Why it failed (empty when it did not).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// The readiness answer. When not ready it carries `error` and `message` like every other
/// error body (`http::error::ErrorBody`), and `failed` names the dependencies that did not
/// answer.
#[derive(Debug, Serialize)]
pub struct Readiness {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<&'static str>,
    pub checks: Vec<Check>,
}

pub async fn live() -> &'static str {
    "ok"
}

pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let db = state.db.clone();
    let mut checks = vec![
        check("database", async move {
            sqlx::query("SELECT 1")
                .execute(&db.pool)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await,
    ];
    if state.config.state.backend == "redis" {
        let store = state.pipeline.deps.state.clone();
        checks.push(
            check("redis", async move {
                store.ping().await.map_err(|e| e.to_string())
            })
            .await,
        );
    }
    if let Some(log) = state.event_log.clone() {
        checks.push(
            check("kafka", async move {
                log.reachable(CHECK_TIMEOUT)
                    .await
                    .map_err(|e| format!("{e:#}"))
            })
            .await,
        );
    }
    let failed: Vec<&'static str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
    if failed.is_empty() {
        return (
            StatusCode::OK,
            Json(Readiness {
                status: "ready",
                error: None,
                message: None,
                failed,
                checks,
            }),
        );
    }
    tracing::warn!(failed = ?failed, "not ready");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(Readiness {
            status: "not_ready",
            error: Some("unavailable"),
            message: Some(format!("not ready: {} did not answer", failed.join(", "))),
            failed,
            checks,
        }),
    )
}

async fn check(
    name: &'static str,
    probe: impl std::future::Future<Output = Result<(), String>>,
) -> Check {
    let error = match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(())) => String::new(),
        Ok(Err(e)) => e,
        Err(_) => format!("no answer within {CHECK_TIMEOUT:?}"),
    };
    Check {
        name,
        ok: error.is_empty(),
        error,
    }
}
