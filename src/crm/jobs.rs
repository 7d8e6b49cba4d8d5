//! The CRM's periodic jobs: contract reminders, inactivity retention cases and service-request
//! escalation, run together
//! every `crm.reminder_interval_secs` by [`spawn`] (started from `App::start`).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::crm::CrmState;

/// Runs every job once at `now`; failures are logged, not returned (the next tick retries).
pub async fn run_all(st: &CrmState, now: DateTime<Utc>) {
    match crate::crm::agreements::reminders::run_once(st, now).await {
        Ok(run) if !run.reminded.is_empty() => {
            tracing::info!(count = run.reminded.len(), "contract reminders sent")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "contract reminder job failed"),
    }
    match crate::crm::retention::open_for_inactivity(st).await {
        Ok(n) if n > 0 => tracing::info!(count = n, "inactivity retention cases opened"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "inactivity job failed"),
    }
    match crate::crm::service_requests::escalation::run_escalations(st, now).await {
        Ok(run) if !run.escalated.is_empty() => {
            tracing::info!(count = run.escalated.len(), "service requests escalated")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "escalation job failed"),
    }
}

/// One task ticking every `interval_secs` (first tick one interval after start) until `stop`
/// turns true. Nothing is spawned when the interval is 0.
pub fn spawn(st: impl Into<CrmState>, stop: tokio::sync::watch::Receiver<bool>) {
    let st: CrmState = st.into();
    let secs = st.config.crm.reminder_interval_secs;
    if secs == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut every = crate::periodic::Every::after(Duration::from_secs(secs), stop);
        while every.tick().await {
            run_all(&st, Utc::now()).await;
        }
    });
}
