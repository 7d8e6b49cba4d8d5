//! Channels: where decided offers go. One small trait, one registry, one folder each.

pub mod agent;
mod dispatch;
pub mod kafka;
pub mod live;
pub mod portal;
pub mod replies;
pub mod sms;

use std::collections::HashMap;
use std::sync::Arc;

use crate::ports::{Recommendation, Status};

pub use dispatch::{Dispatcher, OutboxSettings};

/// What a channel did with a recommendation.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub status: Status,
    pub reason: Option<String>,
    /// The provider's id for the message (an SMSC's `message_id`), kept so its receipts find
    /// the offer.
    pub provider_id: Option<String>,
}

impl Delivery {
    pub fn sent() -> Self {
        Delivery {
            status: Status::Sent,
            reason: None,
            provider_id: None,
        }
    }

    /// Accepted by a provider under its own message id.
    pub fn sent_as(provider_id: impl Into<String>) -> Self {
        Delivery {
            provider_id: Some(provider_id.into()),
            ..Delivery::sent()
        }
    }
}

/// A channel's later word on a message it sent: an SMSC's delivery receipt, found by the
/// provider's id the send returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub channel: String,
    pub provider_id: String,
    pub status: Status,
    pub reason: Option<String>,
}

/// A subscriber's answer on a channel (an SMS reply "Y"), matched to the offer it answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub channel: String,
    pub from: crate::event::Msisdn,
    pub text: String,
}

/// What channels hear back from providers.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Receipt(Receipt),
    Reply(Reply),
}

/// Where channels report receipts and replies; the deliverer writes them to the store.
#[derive(Clone)]
pub struct Receipts {
    tx: tokio::sync::mpsc::UnboundedSender<Inbound>,
}

impl Receipts {
    pub fn new() -> (Receipts, tokio::sync::mpsc::UnboundedReceiver<Inbound>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Receipts { tx }, rx)
    }

    pub fn report(&self, r: Receipt) {
        self.send(Inbound::Receipt(r));
    }

    pub fn reply(&self, r: Reply) {
        self.send(Inbound::Reply(r));
    }

    fn send(&self, i: Inbound) {
        if self.tx.send(i).is_err() {
            tracing::warn!("a receipt or reply arrived after the deliverer stopped; dropped");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// Worth retrying (network, throttling).
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying will not help (rejected number, bad config).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// The key a channel send carries so the receiving side can recognise a repeat: the outbox
/// records its claim before each send, but a deliverer that crashes after sending and before
/// recording `sent` leaves the offer to be sent again once its claim lapses. Same offer, same
/// channel, same key, on every attempt and every instance.
pub fn idempotency_key(rec: &Recommendation, channel: &str) -> String {
    format!("{}:{channel}", rec.id)
}

#[async_trait::async_trait]
pub trait Channel: Send + Sync {
    fn name(&self) -> &str;
    /// True when sending the same offer twice does no harm: the receiving side recognises
    /// the idempotency key or the offer id. False for a provider that cannot (an SMSC): a
    /// send interrupted by a crash then becomes `unknown` instead of being sent again.
    fn idempotent(&self) -> bool {
        true
    }
    async fn send(&self, rec: &Recommendation) -> Result<Delivery, ChannelError>;
}

type ReceiptQueue = Arc<std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Inbound>>>>;

/// The channels this instance delivers to, by name.
#[derive(Clone)]
pub struct Registry {
    channels: HashMap<String, Arc<dyn Channel>>,
    pub portal: portal::PortalHub,
    pub agent: agent::AgentDesk,
    pub sms_outbox: Option<Arc<sms::Outbox>>,
    /// Handed to channels that hear back from their provider later.
    pub receipts: Receipts,
    receipt_queue: ReceiptQueue,
    /// Where subscribers' stop words are recorded (set by the app once the CRM is up).
    pub opt_outs: replies::OptOutsSlot,
    /// What each send came to, for the operator's metrics.
    pub sends: Arc<SendCounts>,
}

/// Send outcomes by `(channel, status)`: `sent`, `failed`, `expired`, `unknown`, or
/// `retrying` for a transient failure put off to a later attempt. One lock per send: sends
/// run at a channel's contracted rate, far below the engine's.
#[derive(Debug, Default)]
pub struct SendCounts(
    std::sync::Mutex<
        std::collections::BTreeMap<String, std::collections::BTreeMap<&'static str, u64>>,
    >,
);

impl SendCounts {
    pub fn add(&self, channel: &str, status: &'static str) {
        let mut m = self.0.lock().expect("send counts");
        // Found by the borrowed name: a send allocates nothing once its channel is counted.
        match m.get_mut(channel) {
            Some(by_status) => *by_status.entry(status).or_default() += 1,
            None => {
                m.insert(channel.to_string(), [(status, 1)].into());
            }
        }
    }

    pub fn snapshot(&self) -> Vec<((String, &'static str), u64)> {
        let m = self.0.lock().expect("send counts");
        m.iter()
            .flat_map(|(ch, by_status)| by_status.iter().map(move |(s, n)| ((ch.clone(), *s), *n)))
            .collect()
    }
}

/// An open agent desk or portal page on this instance is where the subscriber is now.
impl crate::ports::Reachability for Registry {
    fn here(&self, m: crate::event::Msisdn) -> Option<&'static str> {
        if self.agent.is_open(m) {
            Some("agent")
        } else if self.portal.is_open(m) {
            Some("portal")
        } else {
            None
        }
    }
}

impl Default for Registry {
    fn default() -> Self {
        let (receipts, rx) = Receipts::new();
        Registry {
            channels: HashMap::new(),
            portal: portal::PortalHub::default(),
            agent: agent::AgentDesk::default(),
            sms_outbox: None,
            receipts,
            receipt_queue: Arc::new(std::sync::Mutex::new(Some(rx))),
            opt_outs: Arc::default(),
            sends: Arc::default(),
        }
    }
}

impl Registry {
    /// The receipts channels report, for the one deliverer that records them.
    pub fn take_receipts(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Inbound>> {
        self.receipt_queue.lock().expect("receipt queue").take()
    }

    /// The built-in channels named in config.
    pub fn from_config(c: &crate::config::ChannelsConfig) -> Result<Registry, String> {
        let mut reg = Registry::default();
        for name in &c.enabled {
            match name.as_str() {
                "sms" => {
                    let adapter = sms::build(&c.sms, reg.receipts.clone())?;
                    reg.sms_outbox = adapter.outbox();
                    reg.add(Arc::new(adapter));
                }
                "portal" => reg.add(Arc::new(reg.portal.clone())),
                "agent" => reg.add(Arc::new(reg.agent.clone())),
                // Needs the instance's Kafka producer: added by the app once it has one.
                "kafka" => {}
                other => {
                    return Err(format!(
                    "channels.enabled: unknown channel {other:?} (built-ins: sms, portal, agent, kafka)"
                ))
                }
            }
        }
        Ok(reg)
    }

    pub fn add(&mut self, ch: Arc<dyn Channel>) {
        self.channels.insert(ch.name().to_string(), ch);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Channel>> {
        self.channels.get(name)
    }

    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.channels.keys().cloned().collect();
        v.sort();
        v
    }
}
