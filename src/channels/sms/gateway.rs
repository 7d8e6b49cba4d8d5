//! Kannel-style HTTP gateway: `GET sendsms?username=&password=&from=&to=&text=&coding=&dlr-mask=&dlr-url=`.
//! 2xx means accepted; 503/429 mean slow down and retry; other 4xx are permanent.

use std::time::Duration;

use super::segments;
use crate::channels::{ChannelError, Delivery};
use crate::config::SmsConfig;
use crate::ports::Recommendation;

pub struct HttpGateway {
    client: reqwest::Client,
    url: String,
    config: SmsConfig,
}

impl HttpGateway {
    pub fn new(c: &SmsConfig) -> Result<Self, String> {
        if c.gateway_url.is_empty() {
            return Err("channels.sms.gateway_url is required when mode = \"http\"".into());
        }
        if !c.dlr_url.is_empty() && c.dlr_secret.is_empty() {
            // The app fills it in (config or database) before building channels; an empty key
            // would sign every URL with a key anyone can compute.
            return Err(
                "channels.sms.dlr_secret is not set: delivery-report URLs cannot be signed".into(),
            );
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("sms gateway client: {e}"))?;
        Ok(HttpGateway {
            client,
            url: c.gateway_url.clone(),
            config: c.clone(),
        })
    }

    pub async fn send(&self, rec: &Recommendation) -> Result<Delivery, ChannelError> {
        let (coding, _) = segments(&rec.message);
        let to = rec.msisdn.to_string();
        let dlr = super::dlr::url(&self.config.dlr_url, &self.config.dlr_secret, &rec.id);
        let mut q: Vec<(&str, &str)> = vec![
            ("username", &self.config.username),
            ("password", &self.config.password),
            ("from", &self.config.sender),
            ("to", &to),
            ("text", &rec.message),
            ("charset", "UTF-8"),
            ("coding", if coding == "ucs2" { "2" } else { "0" }),
        ];
        if !dlr.is_empty() {
            q.push(("dlr-mask", "31"));
            q.push(("dlr-url", &dlr));
        }
        let resp = self
            .client
            .get(&self.url)
            .query(&q)
            .header(
                "Idempotency-Key",
                crate::channels::idempotency_key(rec, "sms"),
            )
            .send()
            .await
            .map_err(|e| ChannelError::Transient(format!("gateway unreachable: {e}")))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if status.is_success() {
            Ok(Delivery::sent())
        } else if status.as_u16() == 429 || status.is_server_error() {
            Err(ChannelError::Transient(format!(
                "gateway answered {status}: {body}"
            )))
        } else {
            Err(ChannelError::Permanent(format!(
                "gateway refused ({status}): {body}"
            )))
        }
    }
}
