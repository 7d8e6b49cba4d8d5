//! Login and user administration, one file per resource: sessions (`/auth/*`), `/users`,
//! `/api-keys`, and the organisation (`/teams`, `/regions`).

mod keys;
mod org;
mod session;
mod users;

pub use super::db::ApiKey;
pub use keys::{CreatedApiKey, NewApiKey};
pub use org::{NewRegion, NewTeam, Region, Team};
pub use session::{LoginRequest, LoginResponse, Me};
pub use users::{NewUser, User, UserPatch};

use std::sync::Arc;

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

crate::auth_in_state!(AdminState);

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
        .merge(users::list_routes())
        .routes(routes!(users::create_user))
        .routes(routes!(users::get_user, users::update_user))
        .routes(routes!(keys::list_keys, keys::create_key))
        .routes(routes!(keys::revoke_key))
        .merge(org::team_routes())
        .merge(org::region_routes())
}
