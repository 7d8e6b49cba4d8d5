//! `/auth/login`, `/auth/logout`, `/auth/me`: sessions for people.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::AdminState;
use crate::auth::db::{self, hash_secret, new_secret, UserRow, USER_COLUMNS};
use crate::auth::{too_many, ClientAddr, Principal, Role};
use crate::http::{ApiError, ApiJson};
use crate::store::{new_id, now_text, Sql};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginResponse {
    /// Bearer token for `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: String,
}

/// Exchanges a username and password for a session token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = crate::http::error::ErrorBody),
        (status = 429, description = "Too many attempts for this username, or too many failures from this address; see Retry-After", body = crate::http::error::ErrorBody)))]
pub async fn login(
    State(st): State<AdminState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    // The address check comes first: a sprayer over its budget costs no lookup or argon2.
    st.auth.guesses.check(addr).map_err(too_many)?;
    st.login_throttle.attempt(&req.username).map_err(too_many)?;
    let mut sql = Sql::new(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.username = "
    ));
    sql.bind(req.username.as_str()).push(" AND u.active = 1");
    let user: Option<UserRow> = sql.query_as().fetch_optional(&st.db.pool).await?;
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = st.auth.passwords.verify(req.password, stored).await?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            st.auth.guesses.failed(addr).map_err(too_many)?;
            return Err(ApiError::Unauthenticated);
        }
    };
    // Expired sessions are useless; clearing them here keeps the table small without a job.
    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now_text())
        .execute(&st.db.pool)
        .await?;
    let token = new_secret("kst");
    let expires_at = crate::store::ts_text(chrono::Utc::now() + db::SESSION_TTL);
    Sql::insert(
        "sessions",
        vec![
            ("id", new_id().into()),
            ("token_hash", hash_secret(&token).into()),
            ("user_id", user.id.as_str().into()),
            ("created_at", now_text().into()),
            ("expires_at", expires_at.as_str().into()),
        ],
    )
    .execute(&mut *st.db.pool.acquire().await?)
    .await?;
    Ok(Json(LoginResponse { token, expires_at }))
}

/// Ends the session whose token is presented.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204)), security(("bearer" = [])))]
pub async fn logout(
    State(st): State<AdminState>,
    _p: Principal,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim();
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(hash_secret(token))
        .execute(&st.db.pool)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    pub id: String,
    pub name: String,
    pub role: Role,
    #[schema(value_type = Object)]
    pub scope: crate::auth::Scope,
    /// What the caller may do (the role's permissions, as in `GET /auth/roles`, which says
    /// what each lets one do); whom they may see is `scope`. An enterprise admin has
    /// `write_customers` (contacts, consents, members) but not `write_operator_records`
    /// (the customer record, import, delete, lines and the rest).
    pub permissions: Vec<&'static str>,
}

/// Who the caller is, what they may do and whom they may see.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = Me)))]
pub async fn me(p: Principal) -> Json<Me> {
    Json(Me {
        permissions: names(p.role.permissions()),
        id: p.id,
        name: p.name,
        role: p.role,
        scope: p.scope,
    })
}

fn names(ps: Vec<crate::auth::Permission>) -> Vec<&'static str> {
    ps.into_iter().map(|p| p.as_str()).collect()
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RoleGrants {
    pub role: Role,
    pub permissions: Vec<&'static str>,
}

/// One permission: its name, what it lets one do, and the roles that have it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PermissionInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub roles: Vec<Role>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RoleMatrix {
    pub items: Vec<RoleGrants>,
    pub total: usize,
    /// Every permission with what it lets one do, so a name is not read for more than it
    /// grants: `write_customers` (an enterprise admin has it) covers contacts, consents and
    /// members; the customer record itself is `write_operator_records` (operator staff).
    pub permissions: Vec<PermissionInfo>,
}

/// The role matrix: every role and the permissions it has, and what each permission lets
/// one do. Data scope (which customers a user sees) is set per user, not per role.
#[utoipa::path(get, path = "/api/v1/auth/roles", tag = "auth",
    responses((status = 200, body = RoleMatrix)))]
pub async fn roles(_p: Principal) -> Json<RoleMatrix> {
    use strum::IntoEnumIterator;
    let items: Vec<RoleGrants> = Role::iter()
        .map(|role| RoleGrants {
            role,
            permissions: names(role.permissions()),
        })
        .collect();
    let permissions = crate::auth::Permission::iter()
        .map(|p| PermissionInfo {
            name: p.as_str(),
            description: p.description(),
            roles: p.roles(),
        })
        .collect();
    Json(RoleMatrix {
        total: items.len(),
        items,
        permissions,
    })
}
