//! Login and user administration, one file per resource: sessions (`/auth/*`), `/users`,
//! `/api-keys`, and the organisation (`/teams`, `/regions`).

mod keys;
mod org;
mod session;
mod users;

pub use keys::{ApiKey, CreatedApiKey, NewApiKey};
pub use org::{NewRegion, NewTeam, Region, Team};
pub use session::{LoginRequest, LoginResponse, Me};
pub use users::{NewUser, User, UserPatch};

use std::sync::Arc;

use axum::extract::FromRef;

use super::throttle::LoginThrottle;
use super::AuthHandle;
use crate::http::ApiError;
use crate::store::Db;
use utoipa_axum::{router::OpenApiRouter, routes};

/// What logins and user administration need: the user store, the credential checks and the
/// per-username login throttle.
#[derive(Clone)]
pub struct AdminState {
    pub db: Db,
    pub auth: AuthHandle,
    pub login_throttle: Arc<LoginThrottle>,
}

impl FromRef<AdminState> for AuthHandle {
    fn from_ref(s: &AdminState) -> AuthHandle {
        s.auth.clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("role {0} needs {1}")]
    MissingAssignment(&'static str, &'static str),
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> ApiError {
        match &e {
            AdminError::MissingAssignment(_, field) => ApiError::field(*field, e.to_string()),
        }
    }
}

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(session::login))
        .routes(routes!(session::logout))
        .routes(routes!(session::me))
        .routes(routes!(session::roles))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(users::get_user, users::update_user))
        .routes(routes!(keys::list_keys, keys::create_key))
        .routes(routes!(keys::revoke_key))
        .merge(org::team_routes())
        .merge(org::region_routes())
}
