//! Who is calling, and what they may do and see.
//!
//! Every request carries `Authorization: Bearer <token>` (a person's session token or a
//! system's API key) or `X-Api-Key: <key>`. A [`Role`] decides what one may do; a data
//! [`Scope`] decides whom one may see. Failed credentials are throttled per client address
//! ([`throttle::GuessThrottle`]).

pub mod admin;
pub mod db;
pub mod passwords;
pub mod throttle;

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

pub use crate::access::{Permission, Principal, Role, Scope};
use crate::http::ApiError;

pub use db::DbAuthenticator;

impl Principal {
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.role.allows(p) {
            Ok(())
        } else {
            Err(ApiError::Denied {
                role: self.role.as_str(),
                permission: p.as_str(),
                allowed: p.roles().into_iter().map(Role::as_str).collect(),
            })
        }
    }

    /// [`Principal::require`], and a scope over all customers: for what holds every
    /// subscriber's raw data, where a narrower scope could not be filtered (`why` says so).
    pub fn require_all_customers(&self, p: Permission, why: &str) -> Result<(), ApiError> {
        self.require(p)?;
        if self.scope != Scope::All {
            return Err(self.refuse(p, why, p.roles()));
        }
        Ok(())
    }

    /// The 403 for a caller whose role holds `p` but may not use it here (`reason` says
    /// why): names `p` and the roles in `may`, those that can do this.
    pub fn refuse(
        &self,
        p: Permission,
        reason: impl Into<String>,
        may: impl IntoIterator<Item = Role>,
    ) -> ApiError {
        ApiError::Refused {
            reason: reason.into(),
            permission: p.as_str(),
            allowed: may.into_iter().map(Role::as_str).collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

/// Resolves a presented credential to a principal. The CRM's user store implements it.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync {
    async fn authenticate(&self, token: &str) -> Result<Option<Principal>, AuthError>;
}

/// What the app state hands to extractors: who a credential is, how many failures each
/// address has left, and the bounded argon2 runner.
#[derive(Clone)]
pub struct AuthHandle {
    pub authenticator: Arc<dyn Authenticator>,
    pub guesses: Arc<throttle::GuessThrottle>,
    pub passwords: Arc<passwords::PasswordWork>,
}

/// Lets handlers of each state named take a `Principal`: the state holds the handle in its
/// `auth` field, which `impl FromRef<State> for AuthHandle` hands out.
#[macro_export]
macro_rules! auth_in_state {
    ($($S:ty),+ $(,)?) => {$(
        impl ::axum::extract::FromRef<$S> for $crate::auth::AuthHandle {
            fn from_ref(s: &$S) -> $crate::auth::AuthHandle {
                s.auth.clone()
            }
        }
    )+};
}

impl AuthHandle {
    /// From the `auth` config section; an unparsable trusted proxy address is an error.
    pub fn new(
        authenticator: Arc<dyn Authenticator>,
        c: &crate::config::AuthConfig,
    ) -> Result<AuthHandle, String> {
        let proxies = c
            .trusted_proxies
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|_| format!("auth.trusted_proxies: {s:?} is not an IP address"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AuthHandle {
            authenticator,
            guesses: Arc::new(throttle::GuessThrottle::new(
                c.failed_attempts_per_address_per_minute,
                proxies,
            )),
            passwords: Arc::new(passwords::PasswordWork::new(c.password_hash_concurrency)),
        })
    }
}

/// `429` with the wait rounded up to whole seconds (`Retry-After`).
pub fn too_many(wait: std::time::Duration) -> ApiError {
    ApiError::TooManyRequests {
        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

fn credential(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        return v.strip_prefix("Bearer ").map(str::trim);
    }
    parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl<S> FromRequestParts<S> for Principal
where
    S: Send + Sync,
    AuthHandle: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = credential(parts).ok_or(ApiError::Unauthenticated)?;
        if token.is_empty() {
            return Err(ApiError::Unauthenticated);
        }
        let auth = AuthHandle::from_ref(state);
        let addr = auth.guesses.client(parts);
        auth.guesses.check(addr).map_err(too_many)?;
        match auth.authenticator.authenticate(token).await {
            Ok(Some(p)) => Ok(p),
            Ok(None) => {
                auth.guesses.failed(addr).map_err(too_many)?;
                Err(ApiError::Unauthenticated)
            }
            Err(e) => Err(ApiError::internal(e)),
        }
    }
}

/// The caller's address as the guess throttle sees it (see [`throttle::GuessThrottle::client`]).
pub struct ClientAddr(pub std::net::IpAddr);

impl<S> FromRequestParts<S> for ClientAddr
where
    S: Send + Sync,
    AuthHandle: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            AuthHandle::from_ref(state).guesses.client(parts),
        ))
    }
}

/// Compares without an early exit, so response time does not leak how much of a key matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_cannot_manage_rules_admins_can() {
        assert!(!Role::Agent.allows(Permission::ManageRules));
        assert!(Role::Admin.allows(Permission::ManageRules));
        assert!(Role::System.allows(Permission::IngestEvents));
        assert!(!Role::Marketer.allows(Permission::IngestEvents));
    }

    #[test]
    fn role_round_trips_through_text() {
        for r in [Role::Admin, Role::AccountManager, Role::EnterpriseAdmin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn constant_time_eq_matches_only_equal() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
