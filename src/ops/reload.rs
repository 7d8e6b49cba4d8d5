//! Rule reloads across instances: the instance that is asked reloads its rules folder and,
//! when instances share Redis, tells the others over pub/sub to reload theirs (every
//! instance runs the same rules folder, from one deployment).

use futures::StreamExt;

use crate::config::Config;
use crate::pipeline::Pipeline;

/// What a reload loaded.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Loaded {
    pub rules: usize,
    pub state_series: usize,
}

/// Recompiles the rules folder and swaps the rule set in; on any error nothing changes.
pub async fn load_and_swap(cfg: &Config, pipeline: &Pipeline) -> Result<Loaded, String> {
    let cfg = cfg.clone();
    let set = tokio::task::spawn_blocking(move || {
        crate::rules::load_dir(
            &cfg.engine.rules_dir,
            &cfg.engine.limits,
            &cfg.channels.enabled,
        )
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let out = Loaded {
        rules: set.rules.len(),
        state_series: set.spec.defs.len(),
    };
    pipeline.swap_rules(set);
    Ok(out)
}

/// The pub/sub channel instances announce reloads on.
#[derive(Clone)]
pub struct ReloadBus {
    conn: redis::aio::ConnectionManager,
    topic: String,
    /// This instance, so it does not reload twice on its own announcement.
    me: String,
}

impl ReloadBus {
    /// Connects, and listens for other instances' reloads (reconnecting when Redis goes away).
    pub async fn start(
        url: &str,
        prefix: &str,
        cfg: std::sync::Arc<Config>,
        pipeline: Pipeline,
    ) -> anyhow::Result<ReloadBus> {
        let client = redis::Client::open(url)?;
        let conn = redis::aio::ConnectionManager::new(client.clone()).await?;
        let topic = format!("{prefix}:rules-reload");
        let listen = topic.clone();
        let me = uuid::Uuid::new_v4().to_string();
        let myself = me.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(mut ps) = client.get_async_pubsub().await {
                    if ps.subscribe(&listen).await.is_ok() {
                        let mut msgs = ps.on_message();
                        while let Some(msg) = msgs.next().await {
                            let payload: String = msg.get_payload().unwrap_or_default();
                            let (from, by) = payload.split_once(' ').unwrap_or(("", &payload));
                            if from == myself {
                                continue;
                            }
                            match load_and_swap(&cfg, &pipeline).await {
                                Ok(l) => {
                                    tracing::info!(rules = l.rules, %by, "rules reloaded (announced)")
                                }
                                Err(e) => {
                                    tracing::error!(%by, "announced reload failed here; old rules kept:\n{e}")
                                }
                            }
                        }
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        });
        Ok(ReloadBus { conn, topic, me })
    }

    /// Tells every instance listening to reload; returns how many heard it (this one included).
    pub async fn announce(&self, by: &str) -> anyhow::Result<i64> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("PUBLISH")
            .arg(&self.topic)
            .arg(format!("{} {by}", self.me))
            .query_async(&mut conn)
            .await?)
    }
}
