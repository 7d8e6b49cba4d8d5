//! Layered configuration: defaults, then an optional TOML file, then `KAIROS_*` env vars.
//!
//! Env vars use `__` between levels: `KAIROS_HTTP__ADDR=0.0.0.0:8080`.

use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub engine: EngineConfig,
    pub state: StateConfig,
    pub auth: AuthConfig,
    pub channels: ChannelsConfig,
    pub crm: CrmConfig,
    pub kafka: KafkaConfig,
    pub log: LogConfig,
    pub capture: CaptureConfig,
    pub backtest: BacktestConfig,
    pub counts: CountsConfig,
}

/// Per-rule counts that last (`rule_counts`, see `pipeline::counts`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CountsConfig {
    /// Days of per-rule script counts kept; older days are deleted once a day (0: kept
    /// forever). The default keeps a little over a year, for year-on-year charts.
    pub retention_days: u32,
}

impl Default for CountsConfig {
    fn default() -> Self {
        Self {
            retention_days: 400,
        }
    }
}

/// Samples of live events recorded for tests and backtests (`POST /api/v1/captures`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// The most events one capture may ask for (its `limit`).
    pub max_events: i64,
    /// Events waiting to be written at most; past it the tap drops events and counts them
    /// (on the capture, `dropped`) rather than hold up ingest.
    pub queue: usize,
    /// How often each instance looks for captures started, stopped or run out elsewhere, in
    /// milliseconds (a capture started on this instance records here at once).
    pub poll_ms: u64,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            max_events: 1_000_000,
            queue: 10_000,
            poll_ms: 1000,
        }
    }
}

/// Backtests of rule sets over recorded or uploaded events (`POST /api/v1/backtests`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BacktestConfig {
    /// The largest NDJSON event file a backtest reads from its request body (other calls
    /// keep `http.max_body_bytes`); a larger one is refused with 413.
    pub max_upload_bytes: usize,
    /// Cores a backtest's replay runs on; 0 = half of this machine's, at least one (the live
    /// engine keeps the rest).
    pub workers: usize,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        Self {
            max_upload_bytes: 64 << 20,
            workers: 0,
        }
    }
}

/// How log lines are written (which lines: `KAIROS_LOG`, e.g. `info,sqlx=warn`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` for people (the default) or `json`, one object per line, for log collectors
    /// (`KAIROS_LOG__FORMAT=json`).
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Kafka mode: events come from a topic and every decision goes out on another. On when
/// `brokers` is set (`KAIROS_KAFKA__BROKERS=host:9092`); off, ingest is HTTP only.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated; empty = Kafka mode off.
    pub brokers: String,
    pub group_id: String,
    pub events_topic: String,
    pub recommendations_topic: String,
    pub dead_letters_topic: String,
    /// Where the `kafka` channel puts offers for channel systems downstream.
    pub offers_topic: String,
    /// Batches consumed but not yet durable at most; the consumer pauses past it (a slow
    /// store or channel slows consumption; memory stays bounded).
    pub max_in_flight: usize,
    /// Events a worker takes per batch in Kafka mode, in place of `engine.batch_size`: a
    /// consumer always has a backlog to take from, and a commit per 512 events left the
    /// workers waiting on stores (47k events/s here at 512, 130k at 8192). Under light load
    /// batches stay small: a worker takes what is there.
    pub batch_size: usize,
    /// Passed to librdkafka as they are, for consumer and producer alike
    /// (`"session.timeout.ms" = "6000"`). In env vars write `_` for `.`:
    /// `KAIROS_KAFKA__CLIENT__SESSION_TIMEOUT_MS=6000`.
    pub client: std::collections::BTreeMap<String, ClientSetting>,
}

/// A pass-through client setting: librdkafka takes every value as text, while env vars and
/// TOML may give numbers or booleans.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ClientSetting {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl std::fmt::Display for ClientSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientSetting::Text(s) => f.write_str(s),
            ClientSetting::Int(i) => write!(f, "{i}"),
            ClientSetting::Float(x) => write!(f, "{x}"),
            ClientSetting::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: String::new(),
            group_id: "kairos".into(),
            events_topic: "kairos.events".into(),
            recommendations_topic: "kairos.recommendations".into(),
            dead_letters_topic: "kairos.dead-letters".into(),
            offers_topic: "kairos.offers".into(),
            max_in_flight: 8,
            batch_size: 8192,
            client: Default::default(),
        }
    }
}

impl KafkaConfig {
    pub fn enabled(&self) -> bool {
        !self.brokers.trim().is_empty()
    }
}

/// CRM background jobs and thresholds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CrmConfig {
    /// How often the contract reminder and service-request escalation jobs run; 0 = never
    /// (trigger them through the API instead).
    pub reminder_interval_secs: u64,
    /// A churn score update crossing this value opens a retention case.
    pub churn_threshold: f64,
    /// The customer segments (`customer.segment`) the operator uses: a closed set, so a typo
    /// is refused on write instead of matching no rule or campaign.
    pub segments: Vec<String>,
    /// The largest upload the `POST /import/...` routes read (other calls keep
    /// `http.max_body_bytes`).
    pub import_max_bytes: usize,
}

impl Default for CrmConfig {
    fn default() -> Self {
        Self {
            reminder_interval_secs: 3600,
            churn_threshold: 0.7,
            segments: [
                "mass", "youth", "student", "family", "senior", "business", "vip",
            ]
            .map(String::from)
            .to_vec(),
            import_max_bytes: 256 << 20,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub addr: String,
    /// Largest accepted request body, in bytes (a batch or NDJSON upload).
    pub max_body_bytes: usize,
    /// Largest accepted single event, in bytes.
    pub max_event_bytes: usize,
    /// Rejected events of one request stored as dead letters at most; the rest are counted
    /// (so a body of junk cannot flood the store or hold up other ingest).
    pub max_dead_letters_per_request: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            max_body_bytes: 16 * 1024 * 1024,
            max_event_bytes: 64 * 1024,
            max_dead_letters_per_request: 100,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://kairos.db` (embedded default) or `postgres://...`.
    pub url: String,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://kairos.db?mode=rwc".into(),
            max_connections: 8,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    pub rules_dir: PathBuf,
    /// ISO 3166-1 alpha-2 country of the operator; roaming is "not here".
    pub home_country: String,
    /// IANA time zone used for calendar windows when the profile has none.
    pub default_timezone: String,
    /// How late (event time) an event may arrive and still be placed in its windows.
    pub lateness: String,
    /// Worker shards; subscribers are partitioned across them by msisdn.
    pub workers: usize,
    /// Events a worker takes per batch before persisting state and decisions.
    pub batch_size: usize,
    /// Queue depth per worker: ingest waits (backpressure) when it is full.
    pub queue_depth: usize,
    pub limits: ScriptLimits,
    /// Offers sent per event at most; other matches are recorded as `lost_arbitration`.
    pub max_offers_per_event: usize,
    /// Marketing messages per subscriber per local calendar day, across channels.
    pub daily_cap: u32,
    /// After a complaint, sales offers are held back this long.
    pub complaint_hold: String,
    /// How far ahead of this machine's clock an event may be stamped; later ones are
    /// rejected (one event from the year 9999 would make every later one "late").
    pub max_future_skew: String,
    /// Subscribers held in memory at most (across workers); the least recently used are
    /// evicted, their state already stored, and loaded again on their next event.
    pub max_subscribers_in_memory: usize,
    /// How long ingest waits for its events to be committed before answering 503.
    pub ack_timeout: String,
    /// Event ids are remembered this far behind a subscriber's newest event (never less than
    /// `lateness`), so a client's resend of the day is recognised; 8 bytes per id.
    pub dedup_horizon: String,
    /// Offers expire by the wall clock: one whose validity already ended when its event
    /// arrives (an event from long ago) is decided `expired`, and the outbox expires what is
    /// still undelivered past its expiry. Off only to run a historical scenario through the
    /// live pipeline (demos, tests on fixed dates), where offers then live on event time.
    pub wall_clock_expiry: bool,
    /// A rule that fails (an error or a limit hit) on this many evaluations in a row is
    /// quarantined: skipped on every later event until the rules are reloaded. 0 = never.
    pub quarantine_after: u32,
    /// A rule whose runs took more than this share of the engine's time over a second of it
    /// (all workers), averaging at least `quarantine_slow_run_us` a run, is quarantined the
    /// same way: one slow rule cannot eat the stream. 0 = never.
    pub quarantine_time_share: f64,
    /// The mean run time below which a rule is never quarantined for its time share (a rule
    /// normally runs in microseconds, and a cheap rule on every event may well take most of it).
    pub quarantine_slow_run_us: u64,
    /// Numbers the CRM has no record of: `service_only` (no marketing; service messages
    /// still go, marketing is recorded `suppressed` / `unknown_subscriber`) or `market`
    /// (treated like anyone, on the default profile).
    pub unknown_subscribers: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            rules_dir: PathBuf::from("rules"),
            home_country: "CN".into(),
            default_timezone: "Asia/Shanghai".into(),
            lateness: "1h".into(),
            workers: 2,
            batch_size: 512,
            queue_depth: 8192,
            limits: ScriptLimits::default(),
            max_offers_per_event: 1,
            daily_cap: 3,
            complaint_hold: "7d".into(),
            max_future_skew: "5m".into(),
            max_subscribers_in_memory: 1_000_000,
            ack_timeout: "10s".into(),
            dedup_horizon: "24h".into(),
            wall_clock_expiry: true,
            quarantine_after: 5,
            quarantine_time_share: 0.5,
            quarantine_slow_run_us: 100,
            unknown_subscribers: "service_only".into(),
        }
    }
}

impl EngineConfig {
    /// `default_timezone` as a zone; the matcher and the contact policy both need it.
    pub fn default_tz(&self) -> Result<chrono_tz::Tz, String> {
        self.default_timezone.parse().map_err(|_| {
            format!(
                "engine.default_timezone: {:?} is not an IANA time zone",
                self.default_timezone
            )
        })
    }
}

/// Sandbox limits applied to every rule script evaluation. The defaults fit a streaming
/// engine: the standard pack needs under 100 operations a run (microseconds), so a run that
/// needs 100 times that is a bug, and its cost is paid on every event of its type.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScriptLimits {
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_string_bytes: usize,
    pub max_array_len: usize,
    pub max_map_len: usize,
    /// Wall-clock budget of one evaluation, in milliseconds.
    pub deadline_ms: u64,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        Self {
            max_operations: 10_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_string_bytes: 64 * 1024,
            // Every assignment of a list copies it, so with long lists one operation costs
            // as much as thousands: the operation bound alone would not bound the time.
            max_array_len: 1_000,
            max_map_len: 1_000,
            deadline_ms: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// `embedded` (in-process, persisted to the database) or `redis`.
    pub backend: String,
    pub redis_url: String,
    /// Key prefix in Redis: instances of one deployment share it, two deployments on one
    /// Redis do not.
    pub redis_prefix: String,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            backend: "embedded".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_prefix: "kairos".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// API key of the built-in admin, created at first start. When empty a random key is
    /// generated and printed once.
    pub bootstrap_admin_key: String,
    /// Password logins allowed per username per minute; more get `429` until it refills.
    pub login_attempts_per_minute: u32,
    /// Failed credentials (wrong API key, unknown token, wrong password) allowed per client
    /// address per minute, all at once if need be. Past it the address gets `429` with
    /// `Retry-After` for every credential until the budget refills. Successes cost nothing.
    pub failed_attempts_per_address_per_minute: u32,
    /// Reverse proxies (IP addresses) whose `X-Forwarded-For` names the client; without them
    /// every client behind a proxy would share one failure budget.
    pub trusted_proxies: Vec<String>,
    /// Argon2 password hashes or checks running at once at most; more wait their turn.
    pub password_hash_concurrency: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            bootstrap_admin_key: String::new(),
            login_attempts_per_minute: 10,
            failed_attempts_per_address_per_minute: 30,
            trusted_proxies: Vec::new(),
            password_hash_concurrency: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelsConfig {
    /// Folder with message templates per offer and language.
    pub dir: PathBuf,
    /// Channels enabled; the built-ins are `sms`, `portal`, `agent`, `log`.
    pub enabled: Vec<String>,
    pub sms: SmsConfig,
    pub portal: PortalConfig,
    /// Messages per second per channel at most (governor); 0 = unlimited.
    pub max_per_second: u32,
    /// How often the outbox is swept for queued offers nobody is delivering.
    pub outbox_sweep_secs: u64,
    /// How long a delivery claim holds: a crashed instance's offers are delivered after it.
    pub claim_secs: u64,
    /// Sends in flight per channel at once (each channel has its own workers, so a slow
    /// gateway holds up only its own offers).
    pub concurrency: usize,
    /// Attempts per offer before it is `failed`: a few quick ones, then later ones from the
    /// outbox with exponential backoff, never past the offer's expiry.
    pub max_attempts: u32,
    /// First wait before a later attempt; doubles each time (with jitter) up to `retry_max_secs`.
    pub retry_base_ms: u64,
    pub retry_max_secs: u64,
    /// Per-channel overrides of `max_per_second` and `concurrency`, by channel name
    /// (`[channels.delivery.sms] max_per_second = 500`: the SMSC's contracted TPS).
    pub delivery: std::collections::BTreeMap<String, ChannelDelivery>,
}

impl ChannelsConfig {
    /// Where the message templates are: `templates/` under `channels.dir`.
    pub fn templates_dir(&self) -> PathBuf {
        self.dir.join("templates")
    }
}

/// One channel's delivery limits; unset fields take the `[channels]` defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelDelivery {
    pub max_per_second: Option<u32>,
    pub concurrency: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// `outbox` (embedded: kept for inspection, nothing leaves the machine), `http`
    /// (a Kannel-style `sendsms` gateway) or `smpp` (an SMSC over SMPP v3.4, `[channels.sms.smpp]`).
    pub mode: String,
    pub gateway_url: String,
    pub username: String,
    pub password: String,
    /// The sender id (a short code like `10086`: from an env var it reads as a number).
    #[serde(deserialize_with = "text_or_number")]
    pub sender: String,
    /// Delivery reports come back to this URL: `{id}` becomes the message id, `{token}` its
    /// signature (appended as `token=` when the template has no `{token}`), `%d` the status
    /// (filled in by the gateway). Example:
    /// `https://kairos.example/api/v1/channels/sms/dlr?id={id}&token={token}&status=%d`.
    pub dlr_url: String,
    /// Key that signs delivery-report URLs. Empty: one is generated at first start and kept
    /// in the database, so restarts and other instances share it.
    pub dlr_secret: String,
    /// The SMSC when `mode = "smpp"`.
    pub smpp: SmppConfig,
}

/// An SMSC over SMPP v3.4. The source address of every message is `channels.sms.sender`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SmppConfig {
    pub host: String,
    pub port: u16,
    /// Bind credentials the SMSC gave this ESME (digits from an env var read as text).
    #[serde(deserialize_with = "text_or_number")]
    pub system_id: String,
    #[serde(deserialize_with = "text_or_number")]
    pub password: String,
    #[serde(deserialize_with = "text_or_number")]
    pub system_type: String,
    /// `transceiver` (submits and delivery receipts on one connection) or `transmitter`
    /// (submits on one connection; Kairos binds a receiver beside it for receipts and replies).
    pub bind: String,
    /// Submits awaiting their `submit_sm_resp` at most (the SMSC's window).
    pub window: usize,
    /// Keepalive: an `enquire_link` this often; 0 = never.
    pub enquire_link_secs: u64,
    /// How long a written `submit_sm` waits for its response; past it the offer is `unknown`
    /// (it may have gone out) and never resent blindly.
    pub submit_timeout_secs: u64,
    /// Wait before reconnecting after the connection drops or a bind fails; doubles on each
    /// failure up to 30 times this (at most 5 minutes), back to this after a bind.
    pub reconnect_secs: u64,
}

impl Default for SmppConfig {
    fn default() -> Self {
        SmppConfig {
            host: String::new(),
            port: 2775,
            system_id: String::new(),
            password: String::new(),
            system_type: String::new(),
            bind: "transceiver".into(),
            window: 10,
            enquire_link_secs: 30,
            submit_timeout_secs: 10,
            reconnect_secs: 1,
        }
    }
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            mode: "outbox".into(),
            gateway_url: String::new(),
            username: String::new(),
            password: String::new(),
            sender: "10086".into(),
            dlr_url: String::new(),
            dlr_secret: String::new(),
            smpp: SmppConfig::default(),
        }
    }
}

/// The customer portal: the sessions its backend mints and the pages allowed to call in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// Web origins (`https://my.operator.example`) whose pages may call the portal routes
    /// from the browser (CORS). Empty: only pages served by Kairos itself.
    pub origins: Vec<String>,
    /// How long a minted portal session token is valid, in minutes.
    pub session_minutes: u64,
    /// Key that signs portal session tokens. Empty: one is generated at first start and kept
    /// in the database, so restarts and other instances share it.
    pub token_secret: String,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            origins: Vec::new(),
            session_minutes: 30,
            token_secret: String::new(),
        }
    }
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("channels"),
            enabled: vec!["sms".into(), "portal".into(), "agent".into()],
            sms: SmsConfig::default(),
            portal: PortalConfig::default(),
            max_per_second: 0,
            outbox_sweep_secs: 5,
            claim_secs: 60,
            concurrency: 4,
            max_attempts: 8,
            retry_base_ms: 2_000,
            retry_max_secs: 300,
            delivery: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
}

/// Text that may have been written as a number (`KAIROS_CHANNELS__SMS__SENDER=10086`).
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum T {
        S(String),
        U(u64),
        I(i64),
    }
    Ok(match T::deserialize(d)? {
        T::S(s) => s,
        T::U(n) => n.to_string(),
        T::I(n) => n.to_string(),
    })
}

impl Config {
    /// Defaults, then `file` if given, then `KAIROS_*` environment variables.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            fig = fig.merge(Toml::file_exact(path));
        }
        // The operators' channel settings live beside the templates, in `channels.dir`:
        // `channels.toml` holds what `[channels]` would, and wins over the main file.
        let dir: PathBuf = fig
            .extract_inner("channels.dir")
            .map_err(|e| ConfigError::Invalid(Box::new(e)))?;
        let settings = dir.join("channels.toml");
        if settings.is_file() {
            let text = std::fs::read_to_string(&settings).map_err(|e| {
                ConfigError::Invalid(Box::new(figment::Error::from(format!(
                    "{}: {e}",
                    settings.display()
                ))))
            })?;
            let table: toml::Table = toml::from_str(&text).map_err(|e| {
                ConfigError::Invalid(Box::new(figment::Error::from(format!(
                    "{}: {}",
                    settings.display(),
                    e.message()
                ))))
            })?;
            fig = fig.merge(Serialized::default("channels", table));
        }
        // KAIROS_LOG, KAIROS_CONFIG, KAIROS_PROFILE (src/profile.rs) and KAIROS_TEST_* belong
        // to the binary and the tests.
        let env = Env::prefixed("KAIROS_")
            .filter(|k| {
                let k = k.as_str().to_ascii_lowercase();
                k != "log" && k != "config" && k != "profile" && !k.starts_with("test_")
            })
            .split("__");
        fig = fig.merge(env);
        fig.extract().map_err(|e| ConfigError::Invalid(Box::new(e)))
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_embedded() {
        let c = Config::default();
        assert!(c.database.url.starts_with("sqlite:"));
        assert_eq!(c.state.backend, "embedded");
        assert_eq!(c.engine.home_country, "CN");
    }

    #[test]
    fn file_then_env_override() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("k.toml", "[engine]\nhome_country = \"DE\"\nworkers = 4\n")?;
            jail.set_env("KAIROS_ENGINE__WORKERS", "8");
            jail.set_env("KAIROS_LOG", "debug");
            jail.set_env("KAIROS_TEST_PG_URL", "postgres://x");
            let c = Config::load(Some(std::path::Path::new("k.toml"))).unwrap();
            assert_eq!(c.engine.home_country, "DE");
            assert_eq!(c.engine.workers, 8);
            Ok(())
        });
    }

    #[test]
    fn channel_settings_come_from_the_channels_folder_under_env() {
        figment::Jail::expect_with(|jail| {
            jail.create_dir("ops")?;
            jail.create_file(
                "ops/channels.toml",
                "max_per_second = 50\n[delivery.sms]\nmax_per_second = 500\n[sms]\nsender = \"1065\"\n",
            )?;
            jail.create_file("k.toml", "[channels]\ndir = \"ops\"\nmax_per_second = 10\n")?;
            jail.set_env("KAIROS_CHANNELS__SMS__SENDER", "10086");
            let c = Config::load(Some(std::path::Path::new("k.toml"))).unwrap();
            assert_eq!(
                c.channels.max_per_second, 50,
                "the folder wins over the file"
            );
            assert_eq!(c.channels.delivery["sms"].max_per_second, Some(500));
            assert_eq!(c.channels.sms.sender, "10086", "env wins over both");
            jail.create_file("ops/channels.toml", "max_per_secnd = 5\n")?;
            let err = Config::load(Some(std::path::Path::new("k.toml"))).unwrap_err();
            assert!(err.to_string().contains("max_per_secnd"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn crm_section_has_defaults_and_rejects_typos() {
        assert_eq!(Config::default().crm.reminder_interval_secs, 3600);
        figment::Jail::expect_with(|jail| {
            jail.create_file("k.toml", "[crm]\nreminder_interval_secs = 60\n")?;
            let c = Config::load(Some(std::path::Path::new("k.toml"))).unwrap();
            assert_eq!(c.crm.reminder_interval_secs, 60);
            assert_eq!(c.crm.churn_threshold, 0.7);
            jail.create_file("k.toml", "[crm]\nreminder_interval = 60\n")?;
            assert!(Config::load(Some(std::path::Path::new("k.toml"))).is_err());
            Ok(())
        });
    }

    #[test]
    fn the_portal_section_has_defaults_and_reads_origins() {
        let d = Config::default().channels.portal;
        assert!(
            d.origins.is_empty(),
            "no foreign page is trusted by default"
        );
        assert_eq!(d.session_minutes, 30);
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "k.toml",
                "[channels.portal]\norigins = [\"https://my.example\"]\nsession_minutes = 5\n",
            )?;
            let c = Config::load(Some(std::path::Path::new("k.toml"))).unwrap();
            assert_eq!(c.channels.portal.origins, vec!["https://my.example"]);
            assert_eq!(c.channels.portal.session_minutes, 5);
            Ok(())
        });
    }

    #[test]
    fn log_format_is_text_unless_set_to_json() {
        figment::Jail::expect_with(|jail| {
            assert_eq!(Config::load(None).unwrap().log.format, LogFormat::Text);
            jail.set_env("KAIROS_LOG__FORMAT", "json");
            assert_eq!(Config::load(None).unwrap().log.format, LogFormat::Json);
            jail.set_env("KAIROS_LOG__FORMAT", "xml");
            assert!(Config::load(None).is_err(), "an unknown format is refused");
            Ok(())
        });
    }

    #[test]
    fn unknown_fields_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("k.toml", "[engine]\nhome_contry = \"DE\"\n")?;
            let err = Config::load(Some(std::path::Path::new("k.toml"))).unwrap_err();
            assert!(err.to_string().contains("home_contry"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn kafka_mode_is_off_by_default_and_on_by_env() {
        assert!(!Config::default().kafka.enabled());
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "k.toml",
                "[kafka]\ngroup_id = \"g\"\n[kafka.client]\n\"fetch.min.bytes\" = \"1\"\n",
            )?;
            jail.set_env("KAIROS_KAFKA__BROKERS", "127.0.0.1:9092");
            jail.set_env("KAIROS_KAFKA__CLIENT__SESSION_TIMEOUT_MS", "6000");
            let c = Config::load(Some(std::path::Path::new("k.toml"))).unwrap();
            assert!(c.kafka.enabled());
            assert_eq!(c.kafka.group_id, "g");
            assert_eq!(c.kafka.events_topic, "kairos.events");
            assert_eq!(c.kafka.client["session_timeout_ms"].to_string(), "6000");
            assert_eq!(c.kafka.client["fetch.min.bytes"].to_string(), "1");
            Ok(())
        });
    }

    #[test]
    fn smpp_section_has_defaults_env_and_rejects_typos() {
        let d = SmppConfig::default();
        assert_eq!(
            (d.port, d.bind.as_str(), d.window),
            (2775, "transceiver", 10)
        );
        assert_eq!((d.enquire_link_secs, d.submit_timeout_secs), (30, 10));
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "k.toml",
                "[channels.sms]\nmode = \"smpp\"\n[channels.sms.smpp]\nhost = \"smsc\"\nsystem_id = \"kairos\"\n",
            )?;
            jail.set_env("KAIROS_CHANNELS__SMS__SMPP__PASSWORD", "123456");
            jail.set_env("KAIROS_CHANNELS__SMS__SMPP__WINDOW", "4");
            let c = Config::load(Some(std::path::Path::new("k.toml"))).unwrap();
            let s = &c.channels.sms.smpp;
            assert_eq!((s.host.as_str(), s.system_id.as_str()), ("smsc", "kairos"));
            assert_eq!((s.password.as_str(), s.window, s.port), ("123456", 4, 2775));
            jail.create_file("k.toml", "[channels.sms.smpp]\nsystemid = \"x\"\n")?;
            let err = Config::load(Some(std::path::Path::new("k.toml"))).unwrap_err();
            assert!(err.to_string().contains("systemid"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_smpp_example_loads() {
        figment::Jail::expect_with(|_| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/smpp.toml");
            let c = Config::load(Some(&path)).unwrap();
            assert_eq!(c.channels.sms.mode, "smpp");
            assert_eq!(c.channels.sms.smpp.port, 2775);
            assert!(!c.channels.sms.smpp.host.is_empty());
            assert_eq!(c.channels.delivery["sms"].max_per_second, Some(50));
            Ok(())
        });
    }

    #[test]
    fn the_cluster_example_loads() {
        // In a jail: other tests set KAIROS_* variables.
        figment::Jail::expect_with(|_| {
            let path =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster.toml");
            let c = Config::load(Some(&path)).unwrap();
            assert!(c.kafka.enabled());
            assert_eq!(c.state.backend, "redis");
            assert_eq!(c.kafka.client["session.timeout.ms"].to_string(), "10000");
            Ok(())
        });
    }
}
