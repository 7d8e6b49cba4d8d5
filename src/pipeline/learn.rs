//! Rebuilds the learned propensity model from the stored answers, every so often. All
//! instances read the same database, so they learn the same model.

use std::sync::Arc;
use std::time::Duration;

use super::{Deps, RecStore};
use crate::decision::propensity::{Learned, Model};

/// How often a policy that does not learn is looked at again (a reload may switch it on).
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// While the current policy learns (`[propensity] learn`, which a reload may switch on or
/// off), refreshes its model from the stored answers at once and then every `refresh`, for
/// as long as the runtime lives. A failed read keeps the last model.
pub fn spawn(deps: Arc<Deps>) {
    tokio::spawn(async move {
        loop {
            let policy = deps.policy();
            let (Some(learned), Some(every)) =
                (&policy.propensity, policy.contact.learn_every_secs)
            else {
                tokio::time::sleep(IDLE_CHECK).await;
                continue;
            };
            if let Err(e) = refresh(&deps.recs, learned).await {
                tracing::warn!(error = %e, "propensity: reading the answers failed; keeping the last model");
            }
            tokio::time::sleep(Duration::from_secs(every.max(1) as u64)).await;
        }
    });
}

/// One refresh: the answers so far become the model.
pub async fn refresh(store: &RecStore, learned: &Learned) -> Result<(), sqlx::Error> {
    let counts = store.answer_counts().await?;
    learned.replace(Model::from_counts(counts));
    Ok(())
}
