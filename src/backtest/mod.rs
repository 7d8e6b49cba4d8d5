//! Backtests over HTTP: a draft set (the published version with drafts applied, or another
//! version) runs over a capture or an uploaded NDJSON event file on the replay engine, as a
//! background job whose progress and result are in the database, so any instance answers
//! for it. The result: hits per rule, offers per channel, suppressions by reason, expected
//! acceptances, and the difference from the published set on the same events.
//!
//! - `run`: the run itself, tallies and comparison (no database, no HTTP);
//! - `job`: resolving the sets and events, and running in the background;
//! - `store`: jobs in the database;
//! - `routes`: the HTTP API.

pub mod job;
pub mod routes;
pub mod run;
pub mod store;

use crate::auth::AuthHandle;
use crate::authoring::RuleSync;

/// What the backtest routes run on: who is calling, and the instance's rule versions (the
/// database, config and the running policy behind them).
#[derive(Clone)]
pub struct BacktestState {
    pub auth: AuthHandle,
    pub sync: RuleSync,
}

crate::auth_in_state!(BacktestState);
