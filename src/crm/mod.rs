//! The CRM: customers and everything about them, behind `/api/v1`. Each feature folder owns
//! its router and SQL; this module only merges them.
//!
//! Adding an entity: the recipe in `docs/architecture.md` (model: `accounts/`).

pub mod accounts;
pub mod agreements;
pub mod audit_log;
pub mod campaigns;
pub mod catalog;
pub mod consents;
pub mod contacts;
pub mod customers;
pub mod import;
pub mod interactions;
pub mod jobs;
pub mod knowledge;
pub mod lines;
pub mod loyalty;
pub mod notices;
pub mod openapi;
pub mod opportunities;
pub mod parties;
pub mod profiles;
pub mod retention;
pub mod scope;
pub mod segments;
pub mod service_requests;
mod state;
pub mod stats;
pub mod subscriptions;
pub mod tmf;
pub mod validate;
pub mod view;
pub mod workflow;

use utoipa_axum::router::OpenApiRouter;

pub use state::CrmState;

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new()
        .merge(audit_log::router())
        .merge(customers::router())
        .merge(import::router())
        .merge(parties::router())
        .merge(contacts::router())
        .merge(consents::router())
        .merge(accounts::router())
        .merge(lines::router())
        .merge(catalog::router())
        .merge(subscriptions::router())
        .merge(loyalty::router())
        .merge(notices::router())
        .merge(opportunities::router())
        .merge(agreements::router())
        .merge(service_requests::router())
        .merge(retention::router())
        .merge(interactions::router())
        .merge(knowledge::router())
        .merge(view::router())
        .merge(segments::router())
        .merge(campaigns::router())
        .merge(stats::router())
}

/// The TM Forum APIs (TMF680 recommendations, TMF681 communication), served at `/tmf-api`.
pub fn tmf_router() -> OpenApiRouter<CrmState> {
    tmf::router()
}
