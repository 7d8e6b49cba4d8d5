//! Rules as published versions: marketers write drafts (a change to one file), check them,
//! try them on events and run their tests; someone else publishes them as the next version,
//! which every instance runs within a second. `rules/` on disk is read once, to record the
//! first version, and `kairos rules publish DIR` publishes a folder from git.
//!
//! - `files`: a rule set as files, and reading one from a folder;
//! - `check`: the checks `kairos rules check` runs, over files in memory;
//! - `store`: versions and drafts in the database (no HTTP, no engine);
//! - `publish`: publishing, rollback and who may do what;
//! - `sync`: keeping every instance on the active version (poll + Redis pub/sub);
//! - `diff`: what a version changed;
//! - `routes`: the HTTP API.

pub mod check;
mod diff;
pub mod files;
pub mod publish;
pub mod routes;
pub mod store;
pub mod sync;

use crate::auth::AuthHandle;
pub use sync::RuleSync;

/// What the authoring routes run on: who is calling, and the instance's rule versions.
#[derive(Clone)]
pub struct AuthoringState {
    pub auth: AuthHandle,
    pub sync: RuleSync,
}

crate::auth_in_state!(AuthoringState);
