//! Rule reloads across instances: the instance that is asked reloads its rules folder and,
//! when instances share Redis, tells the others over pub/sub to reload theirs (every
//! instance runs the same rules folder, from one deployment).

use crate::config::Config;
use crate::pipeline::Pipeline;

/// What a reload loaded.
#[derive(Debug)]
pub struct Loaded {
    pub rules: usize,
    pub state_series: usize,
}

/// Recompiles the rules folder and re-reads its contact policy (`policy.toml`), then swaps
/// both in; on any error in either nothing changes.
pub async fn load_and_swap(cfg: &Config, pipeline: &Pipeline) -> Result<Loaded, String> {
    let policy = pipeline.policy().reloaded(cfg)?;
    let cfg = cfg.clone();
    let set = tokio::task::spawn_blocking(move || {
        crate::rules::load_all(
            &cfg.engine.rules_dir,
            &cfg.channels.templates_dir(),
            crate::rules::templates::Offers::MayBeElsewhere,
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
    pipeline.swap_policy(policy);
    Ok(out)
}

/// The pub/sub channel instances announce reloads on.
#[derive(Clone)]
pub struct ReloadBus {
    publisher: crate::pubsub::Publisher,
    /// This instance, so it does not reload twice on its own announcement.
    me: String,
}

impl ReloadBus {
    /// Connects, and listens for other instances' reloads.
    pub async fn start(
        url: &str,
        prefix: &str,
        cfg: std::sync::Arc<Config>,
        pipeline: Pipeline,
    ) -> anyhow::Result<ReloadBus> {
        let me = uuid::Uuid::new_v4().to_string();
        let myself = me.clone();
        let publisher =
            crate::pubsub::connect(url, format!("{prefix}:rules-reload"), move |bytes| {
                let (cfg, pipeline, myself) = (cfg.clone(), pipeline.clone(), myself.clone());
                async move {
                    let payload = String::from_utf8_lossy(&bytes);
                    let (from, by) = payload.split_once(' ').unwrap_or(("", &payload));
                    if from == myself {
                        return;
                    }
                    match load_and_swap(&cfg, &pipeline).await {
                        Ok(l) => tracing::info!(rules = l.rules, %by, "rules reloaded (announced)"),
                        Err(e) => tracing::error!(%by, "announced reload failed here; old rules kept:\n{e}"),
                    }
                }
            })
            .await?;
        Ok(ReloadBus { publisher, me })
    }

    /// Tells every instance listening to reload; returns how many heard it (this one included).
    pub async fn announce(&self, by: &str) -> anyhow::Result<i64> {
        Ok(self
            .publisher
            .publish(format!("{} {by}", self.me).as_bytes())
            .await?)
    }
}
