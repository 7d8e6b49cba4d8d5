//! Argon2 off the async workers and bounded: at most `concurrency` hashes or verifications
//! run at once, so a flood of logins (spraying from many addresses) queues instead of taking
//! every core the engine needs.

use std::time::Duration;

use tokio::sync::Semaphore;

use super::db;
use crate::http::ApiError;

/// How long a login waits for a free slot before being told to come back later.
const MAX_WAIT: Duration = Duration::from_secs(10);

pub struct PasswordWork {
    slots: Semaphore,
}

impl PasswordWork {
    pub fn new(concurrency: usize) -> Self {
        PasswordWork {
            slots: Semaphore::new(concurrency.max(1)),
        }
    }

    /// [`db::verify_password`], waiting for a slot.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        self.run(move || db::verify_password(&password, stored.as_deref()))
            .await
    }

    /// [`db::hash_password`], waiting for a slot.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || db::hash_password(&password))
            .await?
            .map_err(|e| ApiError::internal(anyhow::anyhow!("password hashing failed: {e}")))
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _slot = tokio::time::timeout(MAX_WAIT, self.slots.acquire())
            .await
            .map_err(|_| ApiError::Unavailable("password checks are busy; retry shortly".into()))?
            .map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(ApiError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_limit_run_at_once() {
        let work = Arc::new(PasswordWork::new(1));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (work, running, peak) = (work.clone(), running.clone(), peak.clone());
                tokio::spawn(async move {
                    work.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(30));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn verifies_what_it_hashed() {
        let work = PasswordWork::new(2);
        let h = work.hash("s3cret!".into()).await.unwrap();
        assert!(work
            .verify("s3cret!".into(), Some(h.clone()))
            .await
            .unwrap());
        assert!(!work.verify("nope".into(), Some(h)).await.unwrap());
    }
}
