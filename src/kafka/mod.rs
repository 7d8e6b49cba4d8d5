//! Kafka mode: the event log in, the decision stream out.
//!
//! - [`source`]: a consumer group member. Each assigned partition's events go to the workers
//!   in order; a batch's offsets are committed only once its state, dedup marks and decisions
//!   are durable and its decisions are on the recommendations topic. Bad messages go to the
//!   dead-letter topic with the reason and the original bytes.
//! - [`sink`]: the producers: decisions to the recommendations topic, and (HTTP ingest in
//!   Kafka mode) events to the events topic, so a 2xx means the event is in the log.
//!
//! Ownership of subscribers follows partitions: events are keyed by msisdn, so one
//! subscriber's events are in one partition, consumed by one instance at a time. On every
//! assignment or revocation the instance finishes and commits what is in flight and drops its
//! cache; on assignment it takes a new owner epoch, which fences the state writes of any
//! instance that stalled while its partitions moved (see `state::RedisStateStore`).

pub mod sink;
pub mod source;

use rdkafka::ClientConfig;

use crate::config::KafkaConfig;

pub use sink::{producer, DecisionTopic, EventLog};
pub use source::Source;

/// The client settings both sides share: the brokers and the pass-through ones (`_` in a
/// key stands for `.`, as env vars cannot carry dots; librdkafka's keys have no `_`).
pub fn client_settings(cfg: &KafkaConfig) -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    m.insert(
        "bootstrap.servers".to_string(),
        cfg.brokers.trim().to_string(),
    );
    for (k, v) in &cfg.client {
        m.insert(k.replace('_', "."), v.to_string());
    }
    m
}

pub(crate) fn client_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in client_settings(cfg) {
        c.set(k, v);
    }
    c
}

/// A producer that writes each message once per send, in order per partition, and waits
/// for every in-sync replica.
pub(crate) fn producer_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        // Batches of decisions leave together; a few ms of lingering is most of the throughput.
        .set("linger.ms", "2")
        .set("message.timeout.ms", "30000");
    // Pass-through settings win over these defaults.
    for (k, v) in client_config(cfg).config_map() {
        c.set(k, v);
    }
    c
}

#[cfg(test)]
mod tests {
    #[test]
    fn pass_through_keys_take_dots_for_underscores() {
        let mut cfg = crate::config::KafkaConfig {
            brokers: " 127.0.0.1:9092 ".into(),
            ..Default::default()
        };
        use crate::config::ClientSetting;
        cfg.client
            .insert("session_timeout_ms".into(), ClientSetting::Int(6000));
        cfg.client
            .insert("fetch.min.bytes".into(), ClientSetting::Text("1".into()));
        let m = super::client_settings(&cfg);
        assert_eq!(m["bootstrap.servers"], "127.0.0.1:9092");
        assert_eq!(m["session.timeout.ms"], "6000");
        assert_eq!(m["fetch.min.bytes"], "1");
        let p = super::producer_config(&cfg);
        assert_eq!(p.get("enable.idempotence"), Some("true"));
        assert_eq!(p.get("session.timeout.ms"), Some("6000"));
    }
}
