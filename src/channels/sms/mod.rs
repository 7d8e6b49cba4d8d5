//! SMS: an outbox on the embedded default, or a Kannel-style HTTP `sendsms` gateway.

pub mod dlr;
mod gateway;
mod outbox;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use gateway::HttpGateway;
pub use outbox::{Outbox, OutboxEntry};

use super::{Channel, ChannelError, Delivery};
use crate::config::SmsConfig;
use crate::ports::Recommendation;

pub enum SmsAdapter {
    Outbox(Arc<Outbox>),
    Http(HttpGateway),
}

impl SmsAdapter {
    pub fn outbox(&self) -> Option<Arc<Outbox>> {
        match self {
            SmsAdapter::Outbox(o) => Some(o.clone()),
            SmsAdapter::Http(_) => None,
        }
    }
}

/// The SMS adapter `channels.sms.mode` names; `receipts` takes what the provider reports later.
pub fn build(c: &SmsConfig, _receipts: super::Receipts) -> Result<SmsAdapter, String> {
    match c.mode.as_str() {
        "outbox" => Ok(SmsAdapter::Outbox(Arc::new(Outbox::new(10_000)))),
        "http" => HttpGateway::new(c).map(SmsAdapter::Http),
        other => Err(format!(
            "channels.sms.mode: {other:?} is not \"outbox\" or \"http\""
        )),
    }
}

#[async_trait::async_trait]
impl Channel for SmsAdapter {
    fn name(&self) -> &str {
        "sms"
    }
    async fn send(&self, rec: &Recommendation) -> Result<Delivery, ChannelError> {
        match self {
            SmsAdapter::Outbox(o) => o.send(rec),
            SmsAdapter::Http(g) => g.send(rec).await,
        }
    }
}

/// Coding and number of parts an SMS needs: GSM 7-bit 160/153 per part, UCS-2 (Chinese)
/// 70/67 per part.
pub fn segments(text: &str) -> (&'static str, usize) {
    const GSM: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    let gsm = text.chars().all(|c| GSM.contains(c));
    let (coding, single, multi, len) = if gsm {
        ("gsm7", 160, 153, text.chars().count())
    } else {
        ("ucs2", 70, 67, text.encode_utf16().count())
    };
    let parts = if len <= single {
        1
    } else {
        len.div_ceil(multi)
    };
    (coding, parts)
}
