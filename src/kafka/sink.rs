//! Producers: decisions out, events in (HTTP ingest in Kafka mode), bad messages aside.

use std::time::Duration;

use anyhow::Context;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::config::KafkaConfig;
use crate::event::Event;
use crate::pipeline::DecisionLog;
use crate::ports::{EventSink, PortError, Recommendation};

/// How long a send may wait for room in the producer's queue before it counts as failed.
const QUEUE_WAIT: Duration = Duration::from_secs(5);

/// The one producer an instance writes decisions, events and dead letters with (a producer
/// is a client with its own connections and threads; clones share it).
pub fn producer(cfg: &KafkaConfig) -> anyhow::Result<FutureProducer> {
    super::producer_config(cfg)
        .create()
        .context("creating the Kafka producer")
}

/// Sends every `(key, payload)` and waits until the broker has each one.
async fn send_all(
    producer: &FutureProducer,
    topic: &str,
    msgs: &[(String, Vec<u8>)],
) -> anyhow::Result<()> {
    let sends = msgs.iter().map(|(k, p)| {
        producer.send(
            FutureRecord::to(topic)
                .key(k.as_str())
                .payload(p.as_slice()),
            QUEUE_WAIT,
        )
    });
    for r in futures::future::join_all(sends).await {
        r.map_err(|(e, _)| e)
            .with_context(|| format!("producing to {topic}"))?;
    }
    Ok(())
}

/// The recommendations topic: every decision as the contract's JSON, keyed by msisdn.
#[derive(Clone)]
pub struct DecisionTopic {
    producer: FutureProducer,
    topic: String,
}

impl DecisionTopic {
    pub fn new(producer: &FutureProducer, cfg: &KafkaConfig) -> Self {
        DecisionTopic {
            producer: producer.clone(),
            topic: cfg.recommendations_topic.clone(),
        }
    }
}

#[async_trait::async_trait]
impl DecisionLog for DecisionTopic {
    async fn publish(&self, recs: &[Recommendation]) -> anyhow::Result<()> {
        let msgs: Vec<(String, Vec<u8>)> = recs
            .iter()
            .map(|r| {
                let json = serde_json::to_vec(r).expect("recommendations always serialize");
                (r.msisdn.to_string(), json)
            })
            .collect();
        send_all(&self.producer, &self.topic, &msgs).await
    }
}

/// The events topic, for events that arrive over HTTP (or from the CRM) in Kafka mode: they
/// are answered once the broker has them, and processed by whichever instance owns their
/// partition.
#[derive(Clone)]
pub struct EventLog {
    producer: FutureProducer,
    topic: String,
}

impl EventLog {
    pub fn new(producer: &FutureProducer, cfg: &KafkaConfig) -> Self {
        EventLog {
            producer: producer.clone(),
            topic: cfg.events_topic.clone(),
        }
    }

    /// Whether the brokers answer now (readiness): the cluster's metadata within `timeout`.
    pub async fn reachable(&self, timeout: Duration) -> anyhow::Result<()> {
        let producer = self.producer.clone();
        // librdkafka blocks for the answer: off the async threads.
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .map(drop)
                .context("fetching the cluster's metadata")
        })
        .await
        .context("the metadata request did not finish")?
    }

    /// Writes the events to the log, each keyed by its msisdn (so a subscriber's events stay
    /// in one partition, in order).
    pub async fn append(&self, events: &[Event]) -> Result<usize, PortError> {
        let msgs: Vec<(String, Vec<u8>)> = events
            .iter()
            .map(|e| (e.msisdn.to_string(), e.to_json().into_bytes()))
            .collect();
        send_all(&self.producer, &self.topic, &msgs)
            .await
            .map_err(|e| {
                PortError::Unavailable(format!(
                    "the event log did not take the events ({e:#}); resending them is safe"
                ))
            })?;
        Ok(events.len())
    }
}

#[async_trait::async_trait]
impl EventSink for EventLog {
    async fn submit(&self, events: Vec<Event>) -> Result<(), PortError> {
        self.append(&events).await.map(|_| ())
    }
}

/// The dead-letter topic: the original bytes under the original key, with why they were
/// refused and where they came from in headers.
#[derive(Clone)]
pub struct DeadLetterTopic {
    producer: FutureProducer,
    topic: String,
}

/// One refused message.
pub struct Refused<'a> {
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    pub field: String,
    pub reason: String,
    /// `topic/partition/offset` of the original.
    pub origin: String,
}

impl DeadLetterTopic {
    pub fn new(producer: &FutureProducer, cfg: &KafkaConfig) -> Self {
        DeadLetterTopic {
            producer: producer.clone(),
            topic: cfg.dead_letters_topic.clone(),
        }
    }

    pub async fn put(&self, r: &Refused<'_>) -> anyhow::Result<()> {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "kairos-reason",
                value: Some(&r.reason),
            })
            .insert(Header {
                key: "kairos-field",
                value: Some(&r.field),
            })
            .insert(Header {
                key: "kairos-origin",
                value: Some(&r.origin),
            });
        let mut rec = FutureRecord::<[u8], [u8]>::to(&self.topic)
            .payload(r.payload)
            .headers(headers);
        if let Some(k) = r.key {
            rec = rec.key(k);
        }
        self.producer
            .send(rec, QUEUE_WAIT)
            .await
            .map_err(|(e, _)| e)
            .with_context(|| format!("producing to {}", self.topic))?;
        Ok(())
    }
}
