//! Offers to a Kafka topic, for channel systems that take them from there (an operator's own
//! SMS platform, an app push service): the recommendation contract's JSON, keyed by msisdn,
//! with the idempotency key as a header. The producer is the instance's shared, idempotent
//! one; a consumer that sees an offer id twice (a crash before the send was recorded) drops
//! the repeat, so resending is safe.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::{Channel, ChannelError, Delivery};
use crate::ports::Recommendation;

/// How long a send may wait for room in the producer's queue.
const QUEUE_WAIT: Duration = Duration::from_secs(5);

pub struct KafkaChannel {
    producer: FutureProducer,
    topic: String,
}

impl KafkaChannel {
    pub fn new(producer: &FutureProducer, topic: &str) -> Self {
        KafkaChannel {
            producer: producer.clone(),
            topic: topic.to_string(),
        }
    }
}

#[async_trait::async_trait]
impl Channel for KafkaChannel {
    fn name(&self) -> &str {
        "kafka"
    }

    async fn send(&self, rec: &Recommendation) -> Result<Delivery, ChannelError> {
        let json = serde_json::to_vec(rec).expect("recommendations always serialize");
        let key = rec.msisdn.to_string();
        let idem = super::idempotency_key(rec, "kafka");
        let record = FutureRecord::to(&self.topic)
            .key(&key)
            .payload(&json)
            .headers(OwnedHeaders::new().insert(Header {
                key: "kairos-idempotency-key",
                value: Some(idem.as_bytes()),
            }));
        match self.producer.send(record, QUEUE_WAIT).await {
            // Where it landed is the provider's id: enough to find the message again.
            Ok(at) => Ok(Delivery::sent_as(format!("{}:{}", at.partition, at.offset))),
            Err((e, _)) => Err(ChannelError::Transient(format!(
                "producing to {}: {e}",
                self.topic
            ))),
        }
    }
}
