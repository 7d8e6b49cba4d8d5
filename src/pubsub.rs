//! Redis pub/sub between instances: a publisher, and a listener that reconnects by itself.
//! Pub/sub keeps nothing: what is published while an instance is not listening is missed,
//! so it carries only what has a durable home elsewhere (offers in the store, rules on disk).

use futures::StreamExt;

/// Publishes on one channel.
#[derive(Clone)]
pub struct Publisher {
    conn: redis::aio::ConnectionManager,
    topic: String,
}

impl Publisher {
    /// Returns how many listeners (on every instance, this one included) got the message.
    pub async fn publish(&self, payload: &[u8]) -> redis::RedisResult<i64> {
        let mut conn = self.conn.clone();
        redis::cmd("PUBLISH")
            .arg(&self.topic)
            .arg(payload)
            .query_async(&mut conn)
            .await
    }
}

/// A Redis connection's settings with bounded waits (seconds to connect, to answer): with
/// the defaults (no timeouts) a request on a connection to a Redis that went away can hang
/// forever. Two retries, at most a second apart.
pub fn bounded(connect_secs: u64, response_secs: u64) -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(std::time::Duration::from_secs(connect_secs))
        .set_response_timeout(std::time::Duration::from_secs(response_secs))
        .set_number_of_retries(2)
        .set_max_delay(1000)
}

/// Connects a publisher on `topic` and listens on it in the background, handing each
/// message's payload to `on`; a lost connection is retried every half second.
pub async fn connect<F, Fut>(url: &str, topic: String, mut on: F) -> anyhow::Result<Publisher>
where
    F: FnMut(Vec<u8>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let client = redis::Client::open(url)?;
    // Bounded waits, as for the state store: with the defaults (no timeouts) a publish on a
    // connection to a Redis that went away and came back can hang forever, and every later
    // publish with it (the offers stay queued long after Redis is back).
    let conn =
        redis::aio::ConnectionManager::new_with_config(client.clone(), bounded(1, 1)).await?;
    let listen = topic.clone();
    tokio::spawn(async move {
        loop {
            match client.get_async_pubsub().await {
                Ok(mut ps) => match ps.subscribe(&listen).await {
                    Ok(()) => {
                        let mut msgs = ps.on_message();
                        while let Some(msg) = msgs.next().await {
                            on(msg.get_payload_bytes().to_vec()).await;
                        }
                    }
                    Err(e) => tracing::warn!(topic = %listen, "pub/sub: subscribing failed: {e}"),
                },
                Err(e) => tracing::warn!(topic = %listen, "pub/sub: Redis unavailable: {e}"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    });
    Ok(Publisher { conn, topic })
}
