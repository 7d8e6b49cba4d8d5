//! SMS: an outbox on the embedded default, a Kannel-style HTTP `sendsms` gateway, or an SMSC
//! over SMPP v3.4.

pub mod coding;
pub mod dlr;
mod gateway;
mod outbox;
pub mod smpp;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use gateway::HttpGateway;
pub use outbox::{Outbox, OutboxEntry};
pub use smpp::SmppChannel;

use super::{Channel, ChannelError, Delivery};
use crate::config::SmsConfig;
use crate::ports::Recommendation;

pub enum SmsAdapter {
    Outbox(Arc<Outbox>),
    Http(Box<HttpGateway>),
    Smpp(SmppChannel),
}

impl SmsAdapter {
    pub fn outbox(&self) -> Option<Arc<Outbox>> {
        match self {
            SmsAdapter::Outbox(o) => Some(o.clone()),
            SmsAdapter::Http(_) | SmsAdapter::Smpp(_) => None,
        }
    }
}

/// The SMS adapter `channels.sms.mode` names; `receipts` takes what the provider reports later.
pub fn build(c: &SmsConfig, receipts: super::Receipts) -> Result<SmsAdapter, String> {
    match c.mode.as_str() {
        "outbox" => Ok(SmsAdapter::Outbox(Arc::new(Outbox::new(10_000)))),
        "http" => HttpGateway::new(c).map(|g| SmsAdapter::Http(Box::new(g))),
        "smpp" => SmppChannel::start(&c.smpp, &c.sender, receipts).map(SmsAdapter::Smpp),
        other => Err(format!(
            "channels.sms.mode: {other:?} is not \"outbox\", \"http\" or \"smpp\""
        )),
    }
}

#[async_trait::async_trait]
impl Channel for SmsAdapter {
    fn name(&self) -> &str {
        "sms"
    }
    /// An SMSC cannot tell a repeated `submit_sm` from a new message.
    fn idempotent(&self) -> bool {
        !matches!(self, SmsAdapter::Smpp(_))
    }
    async fn send(&self, rec: &Recommendation) -> Result<Delivery, ChannelError> {
        match self {
            SmsAdapter::Outbox(o) => o.send(rec),
            SmsAdapter::Http(g) => g.send(rec).await,
            SmsAdapter::Smpp(s) => s.send(rec).await,
        }
    }
}

/// Coding and number of parts an SMS needs: GSM 7-bit 160/153 septets per part (extension
/// characters such as `€` take two), UCS-2 (Chinese) 70/67 per part. The parts are those
/// [`coding::parts`] sends.
pub fn segments(text: &str) -> (&'static str, usize) {
    let coding = if coding::gsm7(text).is_some() {
        "gsm7"
    } else {
        "ucs2"
    };
    let parts = coding::parts(text, 0).map_or(usize::MAX, |p| p.len());
    (coding, parts)
}
