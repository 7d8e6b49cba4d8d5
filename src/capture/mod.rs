//! Captures: samples of live events (by type and/or number, up to a limit or a time),
//! recorded for rule tests and backtests and read back as NDJSON in the event contract.
//!
//! Raw events are personal data of every subscriber: only roles that see all customers may
//! start captures or read them (`Permission::CaptureEvents`).
//!
//! - `filter`: which events a capture keeps;
//! - `recorder`: the engine's tap (`pipeline::tap`) and the background writer;
//! - `store`: captures and their events in the database (no HTTP);
//! - `routes`: the HTTP API.

pub mod filter;
pub mod recorder;
pub mod routes;
pub mod store;

use std::sync::Arc;

use crate::auth::AuthHandle;
use crate::config::Config;
pub use recorder::Recorder;

/// What the capture routes run on.
#[derive(Clone)]
pub struct CaptureState {
    pub auth: AuthHandle,
    pub config: Arc<Config>,
    pub recorder: Recorder,
}

crate::auth_in_state!(CaptureState);
