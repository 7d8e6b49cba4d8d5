//! What the CRM's handlers and jobs need, and nothing more: the database, configuration,
//! authentication and the engine's ports. `app.rs` builds it; the CRM never sees the engine
//! itself, only the traits in `ports.rs`.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::auth::AuthHandle;
use crate::config::Config;
use crate::ports::{EventSink, OfferBook, RuleCatalog};
use crate::store::Db;

#[derive(Clone)]
pub struct CrmState {
    pub config: Arc<Config>,
    pub db: Db,
    pub auth: AuthHandle,
    /// Where CRM changes (`profile_change`, ...) go: the engine's ingest.
    pub events: Arc<dyn EventSink>,
    /// The engine's offers and usage, for the 360 view and campaigns.
    pub offers: Arc<dyn OfferBook>,
    /// The rules the engine has loaded, which campaigns may attach.
    pub rules: Arc<dyn RuleCatalog>,
}

impl FromRef<CrmState> for AuthHandle {
    fn from_ref(s: &CrmState) -> AuthHandle {
        s.auth.clone()
    }
}
