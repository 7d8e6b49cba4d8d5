//! Offers pushed live to open pages (the portal's pop-ups, the agent desktop): a broadcast
//! per instance, relayed between instances over Redis pub/sub.
//!
//! With several instances a page is connected to one instance and the offer may be decided
//! on another, so every instance publishes what it delivers and hands what it hears to its
//! own pages. Pub/sub keeps nothing: a page that was not connected reads the store when it
//! connects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::broadcast;

use crate::event::Msisdn;
use crate::ports::Recommendation;
use crate::pubsub::Publisher;

use super::ChannelError;

/// A channel's hub: a [`LiveHub`] on `topic`, under its own type.
#[macro_export]
macro_rules! live_hub {
    ($name:ident, $topic:literal) => {
        #[derive(Clone)]
        pub struct $name($crate::channels::live::LiveHub);

        impl Default for $name {
            fn default() -> Self {
                $name($crate::channels::live::LiveHub::new($topic))
            }
        }

        impl std::ops::Deref for $name {
            type Target = $crate::channels::live::LiveHub;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }
    };
}

#[derive(Clone)]
pub struct LiveHub {
    /// Names the Redis channel (`{prefix}:{topic}`), so each page kind hears only its own.
    topic: &'static str,
    tx: broadcast::Sender<Recommendation>,
    relay: Arc<OnceLock<Publisher>>,
    /// Pages open on this instance, by subscriber: where they can be reached right now.
    open: Arc<Mutex<HashMap<Msisdn, usize>>>,
}

/// A page of the subscriber's that is open; closing it (dropping this) forgets it.
pub struct Watching {
    open: Arc<Mutex<HashMap<Msisdn, usize>>>,
    m: Msisdn,
}

impl Drop for Watching {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.m) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.m);
            }
        }
    }
}

impl LiveHub {
    pub fn new(topic: &'static str) -> Self {
        // Slow pages skip ahead (lagged) rather than holding back delivery to others.
        let (tx, _) = broadcast::channel(4096);
        LiveHub {
            topic,
            tx,
            relay: Arc::new(OnceLock::new()),
            open: Arc::default(),
        }
    }

    /// Counts a page of `m`'s open until the returned guard is dropped (the stream ends).
    pub fn watch(&self, m: Msisdn) -> Watching {
        *self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(m)
            .or_default() += 1;
        Watching {
            open: self.open.clone(),
            m,
        }
    }

    /// Whether a page of `m`'s is open on this instance now.
    pub fn is_open(&self, m: Msisdn) -> bool {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.contains_key(&m)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Recommendation> {
        self.tx.subscribe()
    }

    /// Relays offers between instances over Redis pub/sub on `{prefix}:{topic}`.
    pub async fn relay_over_redis(&self, url: &str, prefix: &str) -> anyhow::Result<()> {
        let tx = self.tx.clone();
        let topic = self.topic;
        let publisher = crate::pubsub::connect(url, format!("{prefix}:{topic}"), move |bytes| {
            match serde_json::from_slice::<Recommendation>(&bytes) {
                Ok(r) => {
                    let _ = tx.send(r);
                }
                Err(e) => tracing::warn!("{topic} relay: unreadable offer: {e}"),
            }
            async {}
        })
        .await?;
        let _ = self.relay.set(publisher);
        Ok(())
    }

    /// Hands `rec` to every open page, on every instance when relayed.
    pub async fn publish(&self, rec: &Recommendation) -> Result<(), ChannelError> {
        match self.relay.get() {
            Some(relay) => {
                let json = serde_json::to_vec(rec).expect("recommendations always serialize");
                relay
                    .publish(&json)
                    .await
                    .map_err(|e| ChannelError::Transient(format!("{} relay: {e}", self.topic)))?;
            }
            // No open page is fine: the offer waits in the store until it expires.
            None => {
                let _ = self.tx.send(rec.clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_counts_as_open_until_its_last_stream_ends() {
        let hub = LiveHub::new("portal");
        let m = Msisdn::parse("8613900000001").unwrap();
        assert!(!hub.is_open(m));
        let a = hub.watch(m);
        let b = hub.watch(m);
        assert!(hub.is_open(m));
        drop(a);
        assert!(hub.is_open(m), "one tab still open");
        drop(b);
        assert!(!hub.is_open(m));
    }
}
