//! Wires the product together: database, auth, engine, CRM, channels and the HTTP routers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::FromRef;
use axum::Router;
use tokio::net::TcpListener;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::admin::AdminState;
use crate::auth::throttle::LoginThrottle;
use crate::auth::{AuthHandle, DbAuthenticator};
use crate::authoring::AuthoringState;
use crate::backtest::BacktestState;
use crate::capture::CaptureState;
use crate::channels::{Dispatcher, OutboxSettings, Registry};
use crate::config::Config;
use crate::crm::profiles::{CrmLineScope, CrmProfiles};
use crate::crm::CrmState;
use crate::decision::Policy;
use crate::desk::DeskState;
use crate::engine::MatchSettings;
use crate::pipeline::{DeadLetters, DecisionLog, Deps, Metrics, Pipeline, RecStore};
use crate::portal::PortalState;
use crate::ports::{EventSink, LineScope, OfferBook, Profile, ProfileSource, RuleCatalog};
use crate::state::{RedisStateStore, SqlStateStore, StateStore};
use crate::store::Db;
use crate::touch::Touchpoints;

/// Everything the product runs on. Feature routers never take it whole: each declares the
/// state it needs ([`CrmState`], [`AdminState`]), built from this one by `FromRef` below.
/// The engine-facing routers (ingest, offers, ops) drive the pipeline itself and take it all.
#[derive(Clone)]
pub struct AppState {
    /// Database, config, auth and the engine's ports. Its fields read as this state's own
    /// (`state.db`) through `Deref`.
    pub crm: CrmState,
    /// The engine: ingest, workers, stores.
    pub pipeline: Pipeline,
    pub channels: Registry,
    /// Which lines a principal may see (CRM customer ownership).
    pub line_scope: Arc<dyn LineScope>,
    pub login_throttle: Arc<LoginThrottle>,
    /// Kafka mode: ingest writes events here, and the consumer hands them to the pipeline.
    pub event_log: Option<crate::kafka::EventLog>,
    /// Keeps this instance on the active rule version (publishes, polls, Redis announcements).
    pub rule_sync: crate::authoring::RuleSync,
    /// Records the running captures' events from the engine's tap.
    pub recorder: crate::capture::Recorder,
    /// Writes this instance's per-rule counts to the database, where they last.
    pub rule_counts: crate::pipeline::counts::RuleCounter,
}

impl std::ops::Deref for AppState {
    type Target = CrmState;
    fn deref(&self) -> &CrmState {
        &self.crm
    }
}

impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut CrmState {
        &mut self.crm
    }
}

crate::auth_in_state!(AppState);

impl FromRef<AppState> for CrmState {
    fn from_ref(s: &AppState) -> CrmState {
        s.crm.clone()
    }
}

impl From<AppState> for CrmState {
    fn from(s: AppState) -> CrmState {
        s.crm
    }
}

/// Each feature's state, built from the application's: `Type { field: value }`, where the
/// values read the application state as `$s`.
macro_rules! from_app_state {
    ($s:ident => $($ty:ident { $($field:ident: $value:expr),* $(,)? })*) => {$(
        impl FromRef<AppState> for $ty {
            fn from_ref($s: &AppState) -> $ty {
                $ty { $($field: $value),* }
            }
        }
    )*};
}

from_app_state! { s =>
    Touchpoints {
        pipeline: s.pipeline.clone(),
        event_log: s.event_log.clone(),
    }
    PortalState {
        config: s.config.clone(),
        auth: s.auth.clone(),
        line_scope: s.line_scope.clone(),
        pipeline: s.pipeline.clone(),
        hub: s.channels.portal.clone(),
        touch: Touchpoints::from_ref(s),
    }
    DeskState {
        auth: s.auth.clone(),
        line_scope: s.line_scope.clone(),
        pipeline: s.pipeline.clone(),
        hub: s.channels.agent.clone(),
        touch: Touchpoints::from_ref(s),
    }
    AuthoringState {
        auth: s.auth.clone(),
        sync: s.rule_sync.clone(),
    }
    CaptureState {
        auth: s.auth.clone(),
        config: s.config.clone(),
        recorder: s.recorder.clone(),
    }
    BacktestState {
        auth: s.auth.clone(),
        sync: s.rule_sync.clone(),
    }
    AdminState {
        db: s.db.clone(),
        auth: s.auth.clone(),
        login_throttle: s.login_throttle.clone(),
    }
}

/// The CRM checks campaigns' rules against what the engine has loaded, through this port.
impl RuleCatalog for Pipeline {
    fn has_rule(&self, rule_id: &str) -> bool {
        self.rules().rules.iter().any(|r| r.meta.id == rule_id)
    }
}

/// The engine ports the CRM talks to, when a caller supplies its own (tests record them).
#[derive(Clone)]
pub struct AppParts {
    pub events: Arc<dyn EventSink>,
    pub offers: Arc<dyn OfferBook>,
}

/// The running product. Call [`App::shutdown`] to stop it cleanly.
pub struct App {
    pub state: AppState,
    pub addr: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    source: Option<crate::kafka::Source>,
}

/// Every documented route, each registered once: `routes!` takes the method and path from the
/// handler's `#[utoipa::path]`, so what is served and what is documented come from one place.
/// Each part still needs its own state.
struct ApiParts {
    admin: OpenApiRouter<AdminState>,
    crm: OpenApiRouter<CrmState>,
    engine: OpenApiRouter<AppState>,
    portal_sessions: OpenApiRouter<PortalState>,
    /// Called from customers' browsers on the portal's origin: CORS applies to these alone.
    portal_customer: OpenApiRouter<PortalState>,
    desk: OpenApiRouter<DeskState>,
    authoring: OpenApiRouter<crate::authoring::AuthoringState>,
    capture: OpenApiRouter<crate::capture::CaptureState>,
    backtest: OpenApiRouter<crate::backtest::BacktestState>,
    web: OpenApiRouter<()>,
}

fn api_parts() -> ApiParts {
    ApiParts {
        admin: crate::auth::admin::router(),
        crm: crate::crm::router().merge(crate::crm::tmf_router()),
        engine: crate::offers::router().merge(crate::ops::router()),
        portal_sessions: crate::portal::sessions_router(),
        portal_customer: crate::portal::customer_router(),
        desk: crate::desk::router(),
        authoring: crate::authoring::routes::router(),
        capture: crate::capture::routes::router(),
        backtest: crate::backtest::routes::router(),
        web: crate::web::router(),
    }
}

/// The API document: the frame, the routes' own operations and ingest's.
fn complete(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut full = crate::crm::openapi::ApiDoc::openapi();
    full.merge(std::mem::take(&mut doc));
    full.merge(crate::ops::openapi::IngestApi::openapi());
    crate::crm::openapi::finish(&mut full);
    full
}

/// The document served at `GET /api/v1/openapi.json`, without starting anything.
pub fn document() -> utoipa::openapi::OpenApi {
    let p = api_parts();
    let mut doc = p.admin.into_openapi();
    for part in [
        p.crm.into_openapi(),
        p.engine.into_openapi(),
        p.portal_sessions.into_openapi(),
        p.portal_customer.into_openapi(),
        p.desk.into_openapi(),
        p.authoring.into_openapi(),
        p.capture.into_openapi(),
        p.backtest.into_openapi(),
        p.web.into_openapi(),
    ] {
        doc.merge(part);
    }
    complete(doc)
}

pub fn router(state: AppState) -> Router {
    let p = api_parts();
    // Checked at start (`App::start`); an origin that does not parse opens nothing here.
    let cors = crate::portal::cors(&state.config.channels.portal.origins).unwrap_or_else(|e| {
        tracing::error!("{e}");
        tower_http::cors::CorsLayer::new()
    });
    let portal = PortalState::from_ref(&state);
    let (api, doc) = OpenApiRouter::new()
        .merge(p.admin.with_state(AdminState::from_ref(&state)))
        .merge(p.crm.with_state(CrmState::from_ref(&state)))
        .merge(p.engine)
        .merge(p.portal_sessions.with_state(portal.clone()))
        .merge(p.portal_customer.layer(cors).with_state(portal))
        .merge(p.desk.with_state(DeskState::from_ref(&state)))
        .merge(
            p.authoring
                .with_state(crate::authoring::AuthoringState::from_ref(&state)),
        )
        .merge(
            p.capture
                .with_state(crate::capture::CaptureState::from_ref(&state)),
        )
        .merge(
            p.backtest
                .with_state(crate::backtest::BacktestState::from_ref(&state)),
        )
        .merge(p.web.with_state(()))
        .split_for_parts();
    // Built from the routers actually served, once at start.
    let doc = Arc::new(complete(doc));
    Router::new()
        .route("/health", axum::routing::get(crate::ops::health::live))
        .route("/readyz", axum::routing::get(crate::ops::health::ready))
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc) }
            }),
        )
        .merge(crate::ingest::router())
        .merge(api)
        // Unknown routes and methods answer with the same JSON error body as everything else.
        .fallback(|uri: axum::http::Uri| async move {
            crate::http::ApiError::NotFound(format!("route {}", uri.path()))
        })
        .layer(axum::middleware::map_response(crate::http::error::bare_405))
        // A body over `http.max_body_bytes` answers the JSON error body too, not axum's text.
        .layer(axum::middleware::map_response_with_state(
            state.config.http.max_body_bytes,
            crate::http::error::bare_413,
        ))
        .layer(axum::middleware::from_fn_with_state(
            crate::http::idempotency::Idempotency {
                db: state.db.clone(),
                max_body_bytes: state.config.http.max_body_bytes,
            },
            crate::http::idempotency::layer,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.http.max_body_bytes,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// The engine and everything it needs, built from config, running the rule set `rules`
/// (compiled with its contact policy: the published version, see `authoring::sync`).
pub async fn build_pipeline(
    config: &Config,
    db: &Db,
    rules: crate::authoring::check::Compiled,
    profiles: Arc<dyn ProfileSource>,
    producer: Option<&rdkafka::producer::FutureProducer>,
) -> anyhow::Result<(Pipeline, Registry)> {
    let crate::authoring::check::Compiled { rules, contact } = rules;
    let settings = MatchSettings::from_config(&config.engine).map_err(anyhow::Error::msg)?;
    let mut policy = Policy::with_contact(config, contact).map_err(anyhow::Error::msg)?;
    // Live traffic: an offer already expired by the wall clock is never sent.
    policy.expire_on_arrival = config.engine.wall_clock_expiry;
    let mut registry = Registry::from_config(&config.channels).map_err(anyhow::Error::msg)?;
    if config.channels.enabled.iter().any(|c| c == "kafka") {
        let Some(producer) = producer else {
            anyhow::bail!("channels.enabled names kafka, but kafka.brokers is not set");
        };
        registry.add(Arc::new(crate::channels::kafka::KafkaChannel::new(
            producer,
            &config.kafka.offers_topic,
        )));
    }
    if config.state.backend == "redis" {
        // Instances share Redis: a portal session sees offers decided on any of them.
        registry
            .portal
            .relay_over_redis(&config.state.redis_url, &config.state.redis_prefix)
            .await?;
        // And an agent desk sees offers for its open customer from any of them.
        registry
            .agent
            .relay_over_redis(&config.state.redis_url, &config.state.redis_prefix)
            .await?;
    }
    let recs =
        RecStore::new(db.clone()).in_zone(config.engine.default_tz().map_err(anyhow::Error::msg)?);
    let (dispatcher, _task) = Dispatcher::start(
        registry.clone(),
        recs.clone(),
        OutboxSettings::from_config(&config.channels, config.engine.wall_clock_expiry),
    );
    let state: Arc<dyn StateStore> = match config.state.backend.as_str() {
        "embedded" => Arc::new(SqlStateStore::new(db.clone())),
        "redis" => Arc::new(
            RedisStateStore::connect(&config.state.redis_url, &config.state.redis_prefix).await?,
        ),
        other => anyhow::bail!("state.backend: {other:?} is not \"embedded\" or \"redis\""),
    };
    let default_profile = Arc::new(Profile {
        home_country: config.engine.home_country.clone().into(),
        timezone: config.engine.default_timezone.clone().into(),
        ..Profile::default()
    });
    let deps = Deps {
        loaded: crate::pipeline::Loaded::new(rules, policy),
        settings,
        state,
        profiles,
        recs,
        dead_letters: DeadLetters::new(db.clone()),
        dispatcher: Some(Arc::new(dispatcher)),
        metrics: Arc::new(Metrics::default()),
        default_profile,
        batch_size: if config.kafka.enabled() {
            config.kafka.batch_size
        } else {
            config.engine.batch_size
        }
        .max(1),
        db: db.clone(),
        max_cached_per_worker: (config.engine.max_subscribers_in_memory
            / config.engine.workers.max(1))
        .max(1),
        events_own: config.kafka.enabled(),
        reachable: Some(Arc::new(registry.clone())),
        decision_log: producer.map(|p| {
            Arc::new(crate::kafka::DecisionTopic::new(p, &config.kafka)) as Arc<dyn DecisionLog>
        }),
        ack_timeout: std::time::Duration::from_secs(
            crate::state::parse_duration_secs(&config.engine.ack_timeout)
                .map_err(|e| anyhow::anyhow!("engine.ack_timeout: {e}"))?
                .max(1) as u64,
        ),
    };
    let (pipeline, _workers) =
        Pipeline::start(deps, config.engine.workers, config.engine.queue_depth);
    crate::pipeline::learn::spawn(pipeline.deps.clone());
    Ok((pipeline, registry))
}

impl App {
    /// Builds everything from config and starts serving on `config.http.addr` (port 0 works).
    pub async fn start(config: Config) -> anyhow::Result<App> {
        App::start_inner(config, None).await
    }

    /// Like [`App::start`], with the CRM's engine ports supplied by the caller.
    pub async fn start_with(config: Config, parts: AppParts) -> anyhow::Result<App> {
        App::start_inner(config, Some(parts)).await
    }

    async fn start_inner(mut config: Config, parts: Option<AppParts>) -> anyhow::Result<App> {
        let db = Db::connect(&config.database.url, config.database.max_connections).await?;
        // Resolved before channels are built: the gateway signs delivery-report URLs with it
        // and the callback verifies them with the same key.
        config.channels.sms.dlr_secret =
            crate::channels::sms::dlr::secret(&db, &config.channels.sms.dlr_secret).await?;
        // Every instance signs and checks portal sessions with the same key.
        config.channels.portal.token_secret =
            crate::portal::token::secret(&db, &config.channels.portal.token_secret).await?;
        crate::portal::cors(&config.channels.portal.origins)
            .map(drop)
            .map_err(anyhow::Error::msg)?;
        if let Some(key) = crate::auth::db::bootstrap(&db, &config.auth.bootstrap_admin_key).await?
        {
            show_generated_key(&key, config.log.format)?;
        }
        // Kafka mode: one producer for decisions, events from HTTP and dead letters.
        let producer = if config.kafka.enabled() {
            Some(crate::kafka::producer(&config.kafka)?)
        } else {
            None
        };
        // The published rule version, or the rules folder recorded as the first one.
        let shared = Arc::new(config.clone());
        let (version, rules) = crate::authoring::sync::bootstrap(&db, &shared).await?;
        let (pipeline, channels) = build_pipeline(
            &config,
            &db,
            rules,
            Arc::new(CrmProfiles { db: db.clone() }),
            producer.as_ref(),
        )
        .await?;
        if config.kafka.enabled() && config.state.backend != "redis" {
            tracing::warn!(
                "Kafka mode with state in the database: run one instance only \
                 (several instances need state.backend = \"redis\", which fences a stalled owner)"
            );
        }
        let event_log = producer
            .as_ref()
            .map(|p| crate::kafka::EventLog::new(p, &config.kafka));
        let parts = parts.unwrap_or_else(|| AppParts {
            // In Kafka mode the CRM's events go through the log like everyone else's.
            events: match &event_log {
                Some(log) => Arc::new(log.clone()),
                None => Arc::new(pipeline.clone()),
            },
            offers: Arc::new(pipeline.clone()),
        });
        let crm = CrmState {
            config: shared,
            auth: AuthHandle::new(Arc::new(DbAuthenticator { db: db.clone() }), &config.auth)
                .map_err(anyhow::Error::msg)?,
            db: db.clone(),
            events: parts.events,
            offers: parts.offers,
            rules: Arc::new(pipeline.clone()),
        };
        // Answers to offers go back into the stream like the CRM's own events.
        pipeline.deps.recs.feed_answers_to(crm.events.clone());
        // Stop words in replies withdraw the customer's consent for the channel.
        let _ = channels
            .opt_outs
            .set(Arc::new(crate::crm::consents::ConsentOptOuts(crm.clone())));
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        // Instances sharing Redis hear each other's publishes at once; all of them poll.
        let redis = (config.state.backend == "redis").then_some((
            config.state.redis_url.as_str(),
            config.state.redis_prefix.as_str(),
        ));
        let rule_sync = crate::authoring::RuleSync::start(
            db.clone(),
            crm.config.clone(),
            pipeline.clone(),
            version,
            redis,
            rx.clone(),
        )
        .await?;
        // Captures record from the engine's tap on every instance.
        let recorder = crate::capture::Recorder::start(
            db.clone(),
            pipeline.clone(),
            &config.capture,
            rx.clone(),
        );
        db.checkpoint_in_background(rx.clone()).await.map_err(|e| {
            anyhow::anyhow!("moving SQLite's checkpoints off the batch commits: {e}")
        })?;
        let rule_counts = crate::pipeline::counts::RuleCounter::start(
            db.clone(),
            pipeline.clone(),
            config.counts.retention_days,
            rx.clone(),
        );
        let state = AppState {
            rule_sync,
            recorder,
            rule_counts,
            crm,
            line_scope: Arc::new(CrmLineScope { db }),
            pipeline,
            channels,
            login_throttle: Arc::new(LoginThrottle::new(config.auth.login_attempts_per_minute)),
            event_log,
        };
        let listener = TcpListener::bind(&config.http.addr).await?;
        let addr = listener.local_addr()?;
        // Contract reminders and service-request escalation, every crm.reminder_interval_secs.
        crate::crm::jobs::spawn(state.crm.clone(), rx.clone());
        // TMF /hub listeners: new offers and message state changes, posted in the background.
        crate::crm::tmf::hub::spawn(state.crm.clone(), rx.clone());
        let app = router(state.clone());
        let server = tokio::spawn(async move {
            // Connection info gives handlers the client address the guess throttle keys on.
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await
        });
        let source = match &producer {
            Some(p) => Some(crate::kafka::Source::start(
                &config.kafka,
                config.http.max_event_bytes,
                state.pipeline.clone(),
                p,
                tokio::runtime::Handle::current(),
            )?),
            None => None,
        };
        Ok(App {
            state,
            addr,
            shutdown: tx,
            server,
            source,
        })
    }

    /// Stops accepting requests, finishes in-flight ones and persists the engine's work.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        if let Some(source) = self.source.take() {
            // Finishes and commits what it consumed, then leaves the group.
            tokio::task::spawn_blocking(move || source.stop()).await?;
        }
        // Long-lived streams (portal SSE) would hold graceful shutdown open forever.
        match tokio::time::timeout(std::time::Duration::from_secs(5), self.server).await {
            Ok(joined) => joined??,
            Err(_) => tracing::warn!("open connections did not close within 5s; stopping anyway"),
        }
        self.state.pipeline.flush().await?;
        // After the drain, so the last events' counts are in; a failure loses only the
        // counts since the last periodic write, so it does not fail the shutdown.
        if let Err(e) = self.state.rule_counts.flush().await {
            tracing::warn!("writing per-rule counts at shutdown: {e:#}");
        }
        Ok(())
    }
}

/// The operator needs the generated admin key to create real users, once. On a terminal
/// (text logs) it is printed; where logs are JSON they are shipped and kept elsewhere, so
/// the key goes to a file only its owner can read and the log names the file.
fn show_generated_key(key: &str, format: crate::config::LogFormat) -> anyhow::Result<()> {
    if format != crate::config::LogFormat::Json {
        println!("kairos: generated admin API key (shown once, store it now): {key}");
        return Ok(());
    }
    use anyhow::Context;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = std::path::Path::new(GENERATED_KEY_FILE);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing the generated admin key to {}", path.display()))?;
    writeln!(f, "{key}").context("writing the generated admin key")?;
    tracing::warn!(
        file = %path.display(),
        "generated an admin API key; it is in this file (owner only): read it, store it, delete the file"
    );
    Ok(())
}

/// Where JSON-logging instances leave a generated admin key, in the working directory.
pub const GENERATED_KEY_FILE: &str = "kairos-admin-key";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lists_every_feature_and_the_security_schemes() {
        let doc = serde_json::to_value(document()).unwrap();
        for path in [
            "/api/v1/customers",
            "/api/v1/customers/{id}/view",
            "/api/v1/lines/{line}/view",
            "/api/v1/auth/login",
            "/api/v1/subscriptions/{id}",
            "/api/v1/opportunities/from-offer/{recommendation_id}",
            "/api/v1/agreements/reminders/run",
            "/api/v1/service-requests/{id}/history",
            "/api/v1/retention-cases/{id}/activities",
            "/api/v1/customers/{id}/interactions",
            "/api/v1/knowledge",
            "/api/v1/announcements",
            "/api/v1/notices",
            "/api/v1/segments/{id}/preview",
            "/api/v1/campaigns/{id}/launch",
            "/api/v1/stats/offers",
            "/api/v1/portal/sessions",
            "/api/v1/portal/stream",
            "/api/v1/portal/offers/{id}/{action}",
            "/api/v1/portal/touchpoints",
            "/api/v1/agent/visits",
            "/api/v1/agent/subscribers/{msisdn}/stream",
            "/portal.js",
            "/agent/",
            "/console/",
            "/tmf-api/recommendationManagement/v4/queryProductRecommendation/{id}",
            "/tmf-api/communicationManagement/v4/communicationMessage/{id}",
            "/tmf-api/recommendationManagement/v4/hub/{id}",
            "/tmf-api/communicationManagement/v4/hub",
            "/metrics",
            "/api/v1/captures/{id}/events",
            "/api/v1/backtests/{id}",
        ] {
            assert!(doc["paths"].get(path).is_some(), "missing {path}");
        }
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        assert!(doc["components"]["schemas"]["Customer"].is_object());
        let mut ids = Vec::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                if let Some(id) = op.get("operationId").and_then(|v| v.as_str()) {
                    ids.push(id.to_string());
                }
            }
        }
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "operation ids must be unique");
        assert!(
            ids.contains(&"getCustomersByIdMembers".to_string()),
            "{ids:?}"
        );
    }

    /// Routes registered with a bare `.route(..)` instead of `routes!`, which the document does
    /// not see by itself. Each is either on purpose outside the document or listed beside it.
    const BARE_ROUTES: &[(&str, &str)] = &[
        (
            "/health",
            "a liveness probe for load balancers, not part of the API",
        ),
        (
            "/readyz",
            "a readiness probe for load balancers, not part of the API",
        ),
        ("/api/v1/openapi.json", "the document itself"),
        (
            "/api/v1/events",
            "ingest keeps its own router; its operation is in `IngestApi`",
        ),
    ];

    fn sources(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                // Tests register nothing that is served.
                let served = text.split("#[cfg(test)]").next().unwrap_or_default();
                out.push((path.display().to_string(), served.to_string()));
            }
        }
    }

    /// The macros that write handlers, with the method of each of their sections.
    const HANDLER_MACROS: [(&str, &[(&str, &str)]); 2] = [
        (
            "crud_handlers",
            &[
                ("list", "get"),
                ("create", "post"),
                ("read", "get"),
                ("update", "patch"),
                ("remove", "delete"),
            ],
        ),
        ("table_handlers", &[("list", "get"), ("read", "get")]),
    ];

    /// The served routes, derived from the code: every `routes!` registration is in the
    /// document by construction, so what remains are bare `.route(..)` calls (each must be
    /// listed above) and handlers documented but never registered (each must be in the
    /// document, or it is not served).
    #[test]
    fn every_served_route_is_in_the_document() {
        let doc = serde_json::to_value(document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let mut files = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut problems = Vec::new();
        // Operations the annotations declare: one per method, so `method(get, post)` is two.
        let mut annotated = 0;
        for (file, text) in &files {
            for (i, _) in text.match_indices(".route(") {
                let rest = text[i + ".route(".len()..].trim_start();
                let Some(path) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) else {
                    problems.push(format!("{file}: a route whose path is not a literal"));
                    continue;
                };
                match BARE_ROUTES.iter().find(|(p, _)| *p == path) {
                    None => problems.push(format!(
                        "{file}: {path} is registered with .route(..), not routes!, and is not in the document"
                    )),
                    Some(_) if path == "/api/v1/events" && paths.get(path).is_none() => {
                        problems.push(format!("{file}: {path} is missing from the document"))
                    }
                    Some(_) => {}
                }
            }
            // Handlers `crud_handlers!` and `table_handlers!` write: one operation per section.
            for (writer, sections) in HANDLER_MACROS {
                let mut rest = text.as_str();
                while let Some(i) = rest.find(&format!("crate::{writer}! {{")) {
                    rest = &rest[i..];
                    let end = rest.find("\n}").unwrap_or(rest.len());
                    for line in rest[..end].lines().map(str::trim_start) {
                        let method = sections
                            .iter()
                            .find(|(s, _)| line.starts_with(&format!("{s} \"")))
                            .map(|(_, m)| m);
                        let Some(m) = method else { continue };
                        annotated += 1;
                        let path = line.split('"').nth(1).unwrap_or_default();
                        if paths.get(path).and_then(|p| p.get(*m)).is_none() {
                            problems.push(format!(
                                "{file}: {m} {path} is written by {writer}! but not served (not in routes!)"
                            ));
                        }
                    }
                    rest = &rest[end..];
                }
            }
            let mut rest = text.as_str();
            while let Some(i) = rest.find("#[utoipa::path(") {
                rest = &rest[i + "#[utoipa::path(".len()..];
                let head: String = rest.chars().take(300).collect();
                if head.contains("path = $path") {
                    // The templates in the macros, counted where they are used (above).
                    continue;
                }
                let methods: Vec<&str> = ["get", "post", "put", "patch", "delete"]
                    .into_iter()
                    .filter(|m| {
                        head.starts_with(&format!("{m},"))
                            || head.starts_with(&format!("method({m}"))
                            || head.contains(&format!(" {m})"))
                            || head.contains(&format!(" {m},"))
                    })
                    .collect();
                annotated += methods.len();
                let path = head
                    .split("path = \"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or_default();
                for m in methods {
                    if paths.get(path).and_then(|p| p.get(m)).is_none() {
                        problems.push(format!(
                            "{file}: {m} {path} is documented on its handler but not served (not in routes!)"
                        ));
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        let operations: usize = paths
            .values()
            .map(|item| {
                ["get", "post", "put", "patch", "delete"]
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .count()
            })
            .sum();
        assert_eq!(operations, annotated, "operations in the document");
    }
}
