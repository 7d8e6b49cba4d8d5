//! `GET /metrics`: the engine's counters in Prometheus's text format, read when scraped.
//!
//! Nothing here runs on the engine's path: the pipeline, the rules and the channels keep
//! plain atomics and per-batch tallies, and this module turns a reading of them into metric
//! families. Counts are this instance's since it started, per-rule ones too (through rule
//! reloads: `Pipeline::rule_lifetimes`); Prometheus sums instances and takes the reset of a
//! restart in its stride.
//!
//! Who may read it: the same callers as `/api/v1/engine/stats` (`read_engine_stats`), with
//! a bearer token like every other call. A scraper gets an API key of such a role.

mod families;

use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::auth::{Permission, Principal};
use crate::http::ApiError;
use crate::pipeline::counts::Reading;
use crate::rules::RUN_BUCKETS_NS;
use families::{Families, HistogramReading};

/// Engine counters, per-rule counts and evaluation times, sends, errors and dead letters, and
/// the consumer lag in Kafka mode, in Prometheus's text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "engine",
    responses(
        (status = 200, description = "Prometheus text exposition format, version 0.0.4", content_type = "text/plain", body = String),
        (status = 401, body = crate::http::error::ErrorBody),
        (status = 403, body = crate::http::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn metrics(State(state): State<AppState>, who: Principal) -> Result<Response, ApiError> {
    who.require(Permission::ReadEngineStats)?;
    let text = gather(&state).encode().map_err(ApiError::internal)?;
    Ok(([(CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response())
}

/// Every family, read now.
fn gather(state: &AppState) -> Families {
    let mut f = Families::default();
    let deps = &state.pipeline.deps;
    let m = &deps.metrics;
    let one = |v: &std::sync::atomic::AtomicU64| [(vec![], v.load(Relaxed) as f64)];
    // Counts under one label, a series per value.
    let by = |label: &'static str, counts: [(&'static str, &std::sync::atomic::AtomicU64); 3]| {
        counts.map(|(value, v)| (vec![(label, value)], v.load(Relaxed) as f64))
    };

    let by_type = m.events_by_type.snapshot();
    f.counter(
        "kairos_events_in_total",
        "Events handed to this instance's engine, by type (custom types together).",
        by_type
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(ty, n)| (vec![("type", *ty)], *n as f64)),
    );
    f.counter(
        "kairos_events_processed_total",
        "Events the rules ran on.",
        one(&m.processed),
    );
    f.counter(
        "kairos_events_skipped_total",
        "Events taken but not run, by reason: duplicate, late or unknown_type.",
        by(
            "reason",
            [
                ("duplicate", &m.duplicates),
                ("late", &m.late),
                ("unknown_type", &m.unknown_type),
            ],
        ),
    );
    f.counter(
        "kairos_events_rejected_total",
        "Events refused as invalid (HTTP ingest, or the events topic in Kafka mode).",
        one(&m.rejected),
    );
    f.counter(
        "kairos_dead_letters_total",
        "Rejected events kept for inspection, by where they were kept from: http, engine or kafka.",
        by(
            "source",
            [
                ("http", &m.dead_letters_http),
                ("engine", &m.dead_letters_engine),
                ("kafka", &m.dead_letters_kafka),
            ],
        ),
    );

    let decisions = m.decisions.snapshot();
    f.counter(
        "kairos_decisions_total",
        "Decisions stored, by rule, status (queued, deferred, suppressed, ...) and reason (none when there is none).",
        decisions.iter().map(|((rule, status, reason), n)| {
            (
                vec![("rule", rule.as_str()), ("status", *status), ("reason", reason.as_str())],
                *n as f64,
            )
        }),
    );
    let sends = state.channels.sends.snapshot();
    f.counter(
        "kairos_sends_total",
        "Send attempts' outcomes by channel and status (retrying: a transient failure put off).",
        sends
            .iter()
            .map(|((ch, st), n)| (vec![("channel", ch.as_str()), ("status", *st)], *n as f64)),
    );

    // Counted since this process started, through rule reloads: a publish swaps in new rule
    // objects, whose counts start at zero, and a Prometheus counter must not go down.
    let lifetimes = state.pipeline.rule_lifetimes();
    let per_rule = |pick: fn(&Reading) -> u64| {
        lifetimes
            .iter()
            .map(move |(id, r)| (vec![("rule", id.as_str())], pick(r) as f64))
    };
    type Pick = fn(&Reading) -> u64;
    let rule_counts: [(&str, &str, Pick); 3] = [
        (
            "kairos_rule_evaluations_total",
            "Runs of each rule's script since this instance started (rule reloads included).",
            |r| r.evaluated,
        ),
        (
            "kairos_rule_matches_total",
            "Runs that proposed an offer, per rule, since this instance started.",
            |r| r.matched,
        ),
        (
            "kairos_rule_errors_total",
            "Runs that failed (the rule was skipped for the event), per rule, since this instance started.",
            |r| r.errors,
        ),
    ];
    for (name, help, pick) in rule_counts {
        f.counter(name, help, per_rule(pick));
    }
    let rules = state.pipeline.rules();
    f.gauge(
        "kairos_rule_quarantined",
        "1 while a rule is quarantined (skipped until the rules are reloaded), else 0.",
        rules.rules.iter().map(|r| {
            (
                vec![("rule", r.meta.id.as_str())],
                f64::from(u8::from(r.breaker.is_open())),
            )
        }),
    );
    let bounds: Vec<f64> = RUN_BUCKETS_NS.iter().map(|ns| *ns as f64 / 1e9).collect();
    f.histogram(
        "kairos_rule_evaluation_seconds",
        "How long each run of a rule's script took, since this instance started.",
        lifetimes.iter().map(|(id, r)| {
            (
                vec![("rule", id.as_str())],
                HistogramReading {
                    bounds: &bounds,
                    counts: &r.time.counts,
                    sum: r.time.sum_ns as f64 / 1e9,
                },
            )
        }),
    );
    f.counter(
        "kairos_rule_quarantines_total",
        "Rules quarantined since start (a reload lifts quarantines, not this count).",
        one(&m.rule_quarantines),
    );

    let load = |v: &std::sync::atomic::AtomicU64| v.load(Relaxed);
    for (name, help, n) in [
        (
            "kairos_store_retries_total",
            "Failed storage calls the engine retried (an outage stalls it rather than lose work).",
            load(&m.store_retries),
        ),
        (
            "kairos_state_round_trips_total",
            "Requests sent to the state store (a pipelined batch counts once).",
            deps.state.round_trips(),
        ),
        (
            "kairos_subscribers_evicted_total",
            "Subscribers dropped from memory (their state is stored).",
            load(&m.evicted),
        ),
        (
            "kairos_state_fenced_total",
            "State writes refused because a newer owner of the subscriber had written since.",
            load(&m.state_fenced),
        ),
    ] {
        f.counter(name, help, [(vec![], n as f64)]);
    }

    if state.config.kafka.enabled() {
        f.counter(
            "kairos_kafka_decisions_published_total",
            "Decisions produced to the recommendations topic.",
            one(&m.published),
        );
        f.counter(
            "kairos_kafka_cache_drops_total",
            "Caches dropped on a partition assignment or revocation.",
            one(&m.cache_drops),
        );
        f.gauge(
            "kairos_kafka_partitions_owned",
            "Partitions of the events topic this instance consumes now.",
            one(&m.partitions_owned),
        );
        let lag: Vec<(String, i64)> = m
            .consumer_lag
            .lock()
            .expect("consumer lag")
            .iter()
            .map(|(p, l)| (p.to_string(), *l))
            .collect();
        f.gauge(
            "kairos_kafka_consumer_lag",
            "Messages of the events topic not yet consumed, per owned partition (as the client last reported).",
            lag.iter()
                .map(|(p, l)| (vec![("partition", p.as_str())], *l as f64)),
        );
    }
    f
}
