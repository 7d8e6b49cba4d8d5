//! The CRM: customers and everything about them, behind `/api/v1`. Each feature folder owns
//! its router and SQL; this module only merges them.
//!
//! Adding a feature (see `accounts/` as the model):
//! - a migration `migrations/02xx_*.sql` in portable SQL: TEXT ids and RFC 3339 timestamps,
//!   BIGINT numbers and 0/1 flags (no BOOLEAN: `sqlx::Any` cannot decode it on SQLite), and a
//!   `version BIGINT` on every mutable table;
//! - `repo.rs` with the record struct (`sqlx::FromRow` + `utoipa::ToSchema`), its column list
//!   and SQL built with [`store::Sql`] (bound values only); reads of customer data join
//!   `customers c` and call [`scope::push_customer_scope`], so out-of-scope ids are 404s;
//! - `mod.rs` with thin handlers: `Principal::require`, [`store::ListParams`] with a
//!   whitelist [`store::ListSpec`] and [`store::fetch_page`] for lists, [`http::Tagged`] for
//!   `ETag`s, [`http::expected_version`] + [`http::check_version`] +
//!   `Sql::update_versioned` for updates, [`store::begin_write`] for the transaction and
//!   [`audit::record`] inside it; validation errors via [`validate`] or `ApiError::field`;
//! - its `router()` merged below, its handlers listed in [`openapi::ApiDoc`], its section of
//!   the 360 view in `view/sections.rs`, and tests in `tests/crm_*.rs` using
//!   `tests/common` (`on_both`, `world()`).

pub mod accounts;
pub mod agreements;
pub mod audit;
pub mod campaigns;
pub mod catalog;
pub mod consents;
pub mod contacts;
pub mod customers;
pub mod http;
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
pub mod stats;
pub mod store;
pub mod subscriptions;
pub mod tmf;
pub mod validate;
pub mod view;

use axum::Router;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(crate::auth::admin::router())
        .merge(audit::router())
        .merge(customers::router())
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
        .merge(openapi::router())
}

/// The TM Forum APIs (TMF680 recommendations, TMF681 communication), served at `/tmf-api`.
pub fn tmf_router() -> Router<AppState> {
    tmf::router()
}
