//! Rebuilds the learned propensity model from the stored answers, every so often. All
//! instances read the same database, so they learn the same model.

use std::time::Duration;

use super::RecStore;
use crate::decision::propensity::{Learned, Model};

/// Refreshes `learned` from `store` now and then every `every_secs`, for as long as the
/// runtime lives. A failed read keeps the last model.
pub fn spawn(store: RecStore, learned: Learned, every_secs: i64) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(every_secs.max(1) as u64));
        loop {
            tick.tick().await;
            if let Err(e) = refresh(&store, &learned).await {
                tracing::warn!(error = %e, "propensity: reading the answers failed; keeping the last model");
            }
        }
    });
}

/// One refresh: the answers so far become the model.
pub async fn refresh(store: &RecStore, learned: &Learned) -> Result<(), sqlx::Error> {
    let counts = store.answer_counts().await?;
    learned.replace(Model::from_counts(counts));
    Ok(())
}
