//! Login and user administration: `/auth/*`, `/users`, `/api-keys`, `/teams`, `/regions`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::db::{self, hash_secret, new_secret, UserRow, USER_COLUMNS};
use super::throttle::LoginThrottle;
use super::{too_many, AuthHandle, ClientAddr, Permission, Principal, Role};
use crate::audit::{self, snapshot, Change};
use crate::http::{check_version, expected_version, nullable, Tagged};
use crate::http::{ApiError, ApiJson};
use crate::store::Db;
use crate::store::{
    check_ref, fetch_page, new_id, now_text, unique_violation, FilterKind, ListParams, ListSpec,
    Page, Sql,
};
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
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(list_teams, create_team))
        .routes(routes!(list_regions, create_region))
}

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
    pub scope: super::Scope,
}

/// Who the caller is and what they may see.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = Me)))]
pub async fn me(p: Principal) -> Json<Me> {
    Json(Me {
        id: p.id,
        name: p.name,
        role: p.role,
        scope: p.scope,
    })
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub team_id: Option<String>,
    pub region_id: Option<String>,
    pub enterprise_customer_id: Option<String>,
    pub phone: Option<String>,
    pub active: bool,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

impl From<UserRow> for User {
    fn from(u: UserRow) -> User {
        User {
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            role: u.role,
            team_id: u.team_id,
            region_id: u.region_id,
            enterprise_customer_id: u.enterprise_customer_id,
            phone: u.phone,
            active: u.active != 0,
            created_at: u.created_at,
            updated_at: u.updated_at,
            version: u.version,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub display_name: Option<String>,
    /// admin | marketer | region_head | team_lead | account_manager | agent | system | enterprise_admin
    pub role: String,
    pub team_id: Option<String>,
    pub region_id: Option<String>,
    pub enterprise_customer_id: Option<String>,
    /// Mobile number (5 to 15 digits) for SMS notices.
    pub phone: Option<String>,
    /// Omit for system users that only use API keys.
    pub password: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub role: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub team_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub region_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub enterprise_customer_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    pub password: Option<String>,
    pub active: Option<bool>,
    pub version: Option<i64>,
}

fn parse_role(s: &str) -> Result<Role, ApiError> {
    Role::parse(s).ok_or_else(|| ApiError::field("role", "unknown role"))
}

/// Scoped roles must say what they are scoped to.
fn check_assignment(role: Role, u: &UserRow) -> Result<(), AdminError> {
    match role {
        Role::RegionHead if u.region_id.is_none() => {
            Err(AdminError::MissingAssignment("region_head", "region_id"))
        }
        Role::TeamLead if u.team_id.is_none() => {
            Err(AdminError::MissingAssignment("team_lead", "team_id"))
        }
        Role::EnterpriseAdmin if u.enterprise_customer_id.is_none() => Err(
            AdminError::MissingAssignment("enterprise_admin", "enterprise_customer_id"),
        ),
        _ => Ok(()),
    }
}

async fn check_user_refs(conn: &mut sqlx::AnyConnection, u: &UserRow) -> Result<(), ApiError> {
    check_ref(conn, "teams", "team_id", u.team_id.as_deref()).await?;
    check_ref(conn, "regions", "region_id", u.region_id.as_deref()).await?;
    if let Some(ent) = &u.enterprise_customer_id {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM customers WHERE id = $1 AND customer_type = 'enterprise'",
        )
        .bind(ent.as_str())
        .fetch_one(conn)
        .await?;
        if n == 0 {
            return Err(ApiError::field(
                "enterprise_customer_id",
                "must be an enterprise customer",
            ));
        }
    }
    Ok(())
}

fn check_password(pw: &str) -> Result<(), ApiError> {
    if pw.chars().count() < 8 {
        return Err(ApiError::field("password", "must be at least 8 characters"));
    }
    Ok(())
}

const USER_SPEC: ListSpec = ListSpec {
    filters: &[
        ("username", "u.username", FilterKind::Text),
        ("role", "u.role", FilterKind::Text),
        ("team_id", "u.team_id", FilterKind::Text),
        ("region_id", "u.region_id", FilterKind::Text),
    ],
    sorts: &[("username", "u.username"), ("created_at", "u.created_at")],
    default_sort: "u.username",
    tiebreak: "u.id",
};

#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query), ("sort" = Option<String>, Query),
        ("username" = Option<String>, Query), ("role" = Option<String>, Query), ("team_id" = Option<String>, Query), ("region_id" = Option<String>, Query)),
    responses((status = 200, body = Page<User>)))]
pub async fn list_users(
    State(st): State<AdminState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<User>>, ApiError> {
    p.require(Permission::ManageUsers)?;
    let params = ListParams::parse_with_search(&USER_SPEC, &["u.username", "u.display_name"], &q)?;
    let page: Page<UserRow> = fetch_page(
        &st.db.pool,
        USER_COLUMNS,
        Sql::new("users u WHERE 1=1"),
        &params,
    )
    .await?;
    Ok(Json(Page {
        items: page.items.into_iter().map(User::from).collect(),
        total: page.total,
        limit: page.limit,
        offset: page.offset,
    }))
}

async fn load_user(conn: &mut sqlx::AnyConnection, id: &str) -> Result<UserRow, ApiError> {
    let mut sql = Sql::new(&format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = "));
    sql.bind(id);
    sql.query_as()
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| ApiError::NotFound("user".into()))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = User), (status = 400, body = crate::http::error::ErrorBody), (status = 409)))]
pub async fn create_user(
    State(st): State<AdminState>,
    p: Principal,
    ApiJson(req): ApiJson<NewUser>,
) -> Result<Tagged<User>, ApiError> {
    p.require(Permission::ManageUsers)?;
    let role = parse_role(&req.role)?;
    let username = req.username.trim().to_string();
    if username.is_empty() || username.len() > 64 {
        return Err(ApiError::field("username", "must be 1 to 64 characters"));
    }
    let password_hash = match req.password {
        Some(pw) => {
            check_password(&pw)?;
            Some(st.auth.passwords.hash(pw).await?)
        }
        None => None,
    };
    let now = now_text();
    let row = UserRow {
        id: new_id(),
        display_name: req.display_name.unwrap_or_else(|| username.clone()),
        username,
        role: role.as_str().into(),
        team_id: req.team_id,
        region_id: req.region_id,
        enterprise_customer_id: req.enterprise_customer_id,
        phone: check_phone(req.phone)?,
        password_hash,
        active: 1,
        created_at: now.clone(),
        updated_at: now,
        version: 1,
    };
    check_assignment(role, &row)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    check_user_refs(&mut tx, &row).await?;
    Sql::insert(
        "users",
        vec![
            ("id", row.id.as_str().into()),
            ("username", row.username.as_str().into()),
            ("display_name", row.display_name.as_str().into()),
            ("role", row.role.as_str().into()),
            ("team_id", (&row.team_id).into()),
            ("region_id", (&row.region_id).into()),
            (
                "enterprise_customer_id",
                (&row.enterprise_customer_id).into(),
            ),
            ("phone", (&row.phone).into()),
            ("password_hash", (&row.password_hash).into()),
            ("active", 1i64.into()),
            ("created_at", row.created_at.as_str().into()),
            ("updated_at", row.updated_at.as_str().into()),
            ("version", 1i64.into()),
        ],
    )
    .execute(&mut tx)
    .await
    .map_err(|e| unique_violation(e, "username"))?;
    let user = User::from(row);
    audit::record(
        &mut tx,
        &p,
        Change {
            entity: "user",
            entity_id: &user.id,
            action: "create",
            customer_id: None,
            before: None,
            after: snapshot(&user),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Tagged::created(user.version, user))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 404)))]
pub async fn get_user(
    State(st): State<AdminState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Tagged<User>, ApiError> {
    if p.id != id {
        p.require(Permission::ManageUsers)?;
    }
    let row = load_user(&mut *st.db.pool.acquire().await?, &id).await?;
    Ok(Tagged::ok(row.version, User::from(row)))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)), request_body = UserPatch,
    responses((status = 200, body = User), (status = 404), (status = 412)))]
pub async fn update_user(
    State(st): State<AdminState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Tagged<User>, ApiError> {
    p.require(Permission::ManageUsers)?;
    let expected = expected_version(&headers, patch.version)?;
    let new_hash = match patch.password {
        Some(pw) => {
            check_password(&pw)?;
            Some(st.auth.passwords.hash(pw).await?)
        }
        None => None,
    };
    let mut tx = crate::store::begin_write(&st.db).await?;
    let before = load_user(&mut tx, &id).await?;
    check_version(before.version, expected)?;
    let mut after = before.clone();
    if let Some(v) = patch.display_name {
        after.display_name = v;
    }
    if let Some(v) = patch.role {
        after.role = parse_role(&v)?.as_str().into();
    }
    if let Some(v) = patch.team_id {
        after.team_id = v;
    }
    if let Some(v) = patch.region_id {
        after.region_id = v;
    }
    if let Some(v) = patch.enterprise_customer_id {
        after.enterprise_customer_id = v;
    }
    if let Some(v) = patch.active {
        after.active = v as i64;
    }
    if let Some(v) = patch.phone {
        after.phone = check_phone(v)?;
    }
    if new_hash.is_some() {
        after.password_hash = new_hash;
    }
    check_assignment(parse_role(&after.role)?, &after)?;
    check_user_refs(&mut tx, &after).await?;
    let admin = Role::Admin.as_str();
    if before.role == admin && before.active == 1 && (after.role != admin || after.active == 0) {
        // Demoting or deactivating the last admin would lock everyone out of user management.
        let (others,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM users WHERE role = $1 AND active = 1 AND id <> $2",
        )
        .bind(admin)
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if others == 0 {
            return Err(ApiError::Conflict("this is the last active admin".into()));
        }
    }
    after.updated_at = now_text();
    let n = Sql::update_versioned(
        "users",
        &id,
        expected,
        vec![
            ("display_name", after.display_name.as_str().into()),
            ("role", after.role.as_str().into()),
            ("team_id", (&after.team_id).into()),
            ("region_id", (&after.region_id).into()),
            (
                "enterprise_customer_id",
                (&after.enterprise_customer_id).into(),
            ),
            ("phone", (&after.phone).into()),
            ("password_hash", (&after.password_hash).into()),
            ("active", after.active.into()),
            ("updated_at", after.updated_at.as_str().into()),
        ],
    )
    .execute(&mut tx)
    .await
    .map_err(|e| unique_violation(e, "team_id"))?;
    if n == 0 {
        return Err(ApiError::PreconditionFailed);
    }
    if after.active == 0 {
        // A deactivated user's sessions end now, not when they expire.
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
    }
    after.version += 1;
    let (before, after) = (User::from(before), User::from(after));
    audit::record(
        &mut tx,
        &p,
        Change {
            entity: "user",
            entity_id: &id,
            action: "update",
            customer_id: None,
            before: snapshot(&before),
            after: snapshot(&after),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Tagged::ok(after.version, after))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
    /// The user the key acts as (usually a `system` user).
    pub user_id: String,
}

#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub key_prefix: String,
    pub user_id: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub info: ApiKey,
    /// The key itself. Shown only in this response; only its hash is stored.
    pub key: String,
}

const KEY_COLUMNS: &str = "k.id, k.name, k.key_prefix, k.user_id, k.created_at, k.revoked_at";

#[utoipa::path(post, path = "/api/v1/api-keys", tag = "users", request_body = NewApiKey,
    responses((status = 201, body = CreatedApiKey)))]
pub async fn create_key(
    State(st): State<AdminState>,
    p: Principal,
    ApiJson(req): ApiJson<NewApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    p.require(Permission::ManageUsers)?;
    if req.name.trim().is_empty() {
        return Err(ApiError::field("name", "must not be empty"));
    }
    let mut tx = crate::store::begin_write(&st.db).await?;
    load_user(&mut tx, &req.user_id)
        .await
        .map_err(|_| ApiError::field("user_id", "no such user"))?;
    let key = new_secret("kak");
    let info = ApiKey {
        id: new_id(),
        name: req.name,
        key_prefix: key.chars().take(8).collect(),
        user_id: req.user_id,
        created_at: now_text(),
        revoked_at: None,
    };
    Sql::insert(
        "api_keys",
        vec![
            ("id", info.id.as_str().into()),
            ("name", info.name.as_str().into()),
            ("key_hash", hash_secret(&key).into()),
            ("key_prefix", info.key_prefix.as_str().into()),
            ("user_id", info.user_id.as_str().into()),
            ("created_at", info.created_at.as_str().into()),
        ],
    )
    .execute(&mut tx)
    .await?;
    audit::record(
        &mut tx,
        &p,
        Change {
            entity: "api_key",
            entity_id: &info.id,
            action: "create",
            customer_id: None,
            before: None,
            after: snapshot(&info),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(CreatedApiKey { info, key })))
}

const KEY_SPEC: ListSpec = ListSpec {
    filters: &[("user_id", "k.user_id", FilterKind::Text)],
    sorts: &[("created_at", "k.created_at"), ("name", "k.name")],
    default_sort: "k.created_at",
    tiebreak: "k.id",
};

#[utoipa::path(get, path = "/api/v1/api-keys", tag = "users",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query), ("sort" = Option<String>, Query), ("user_id" = Option<String>, Query)),
    responses((status = 200, body = Page<ApiKey>)))]
pub async fn list_keys(
    State(st): State<AdminState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<ApiKey>>, ApiError> {
    p.require(Permission::ManageUsers)?;
    let params = ListParams::parse(&KEY_SPEC, &q)?;
    Ok(Json(
        fetch_page(
            &st.db.pool,
            KEY_COLUMNS,
            Sql::new("api_keys k WHERE 1=1"),
            &params,
        )
        .await?,
    ))
}

/// Revokes a key; the record stays for the audit trail.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn revoke_key(
    State(st): State<AdminState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    p.require(Permission::ManageUsers)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    let mut sql = Sql::new(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.id = "
    ));
    sql.bind(id.as_str()).push(" AND k.revoked_at IS NULL");
    let before: ApiKey = sql
        .query_as()
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ApiError::NotFound("api key".into()))?;
    let now = now_text();
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2")
        .bind(now.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    let after = ApiKey {
        revoked_at: Some(now),
        ..before
    };
    audit::record(
        &mut tx,
        &p,
        Change {
            entity: "api_key",
            entity_id: &id,
            action: "revoke",
            customer_id: None,
            before: None,
            after: snapshot(&after),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A team or a region: both are a name, and teams belong to a region.
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub region_id: Option<String>,
    pub created_at: String,
    pub version: i64,
}

#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Region {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub version: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    pub name: String,
    pub region_id: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRegion {
    pub name: String,
}

const NAME_SPEC: ListSpec = ListSpec {
    filters: &[("name", "t.name", FilterKind::Text)],
    sorts: &[("name", "t.name")],
    default_sort: "t.name",
    tiebreak: "t.id",
};

#[utoipa::path(get, path = "/api/v1/teams", tag = "users",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query), ("sort" = Option<String>, Query), ("name" = Option<String>, Query)),
    responses((status = 200, body = Page<Team>)))]
pub async fn list_teams(
    State(st): State<AdminState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<Team>>, ApiError> {
    p.require(Permission::ReadCustomers)?;
    let params = ListParams::parse(&NAME_SPEC, &q)?;
    let cols = "t.id, t.name, t.region_id, t.created_at, t.version";
    Ok(Json(
        fetch_page(&st.db.pool, cols, Sql::new("teams t WHERE 1=1"), &params).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/teams", tag = "users", request_body = NewTeam,
    responses((status = 201, body = Team)))]
pub async fn create_team(
    State(st): State<AdminState>,
    p: Principal,
    ApiJson(req): ApiJson<NewTeam>,
) -> Result<Tagged<Team>, ApiError> {
    p.require(Permission::ManageUsers)?;
    if req.name.trim().is_empty() {
        return Err(ApiError::field("name", "must not be empty"));
    }
    let team = Team {
        id: new_id(),
        name: req.name,
        region_id: req.region_id,
        created_at: now_text(),
        version: 1,
    };
    let mut tx = crate::store::begin_write(&st.db).await?;
    check_ref(&mut tx, "regions", "region_id", team.region_id.as_deref()).await?;
    Sql::insert(
        "teams",
        vec![
            ("id", team.id.as_str().into()),
            ("name", team.name.as_str().into()),
            ("region_id", (&team.region_id).into()),
            ("created_at", team.created_at.as_str().into()),
            ("version", 1i64.into()),
        ],
    )
    .execute(&mut tx)
    .await
    .map_err(|e| unique_violation(e, "name"))?;
    audit::record(
        &mut tx,
        &p,
        Change {
            entity: "team",
            entity_id: &team.id,
            action: "create",
            customer_id: None,
            before: None,
            after: snapshot(&team),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Tagged::created(1, team))
}

#[utoipa::path(get, path = "/api/v1/regions", tag = "users",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query), ("sort" = Option<String>, Query), ("name" = Option<String>, Query)),
    responses((status = 200, body = Page<Region>)))]
pub async fn list_regions(
    State(st): State<AdminState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<Region>>, ApiError> {
    p.require(Permission::ReadCustomers)?;
    let params = ListParams::parse(&NAME_SPEC, &q)?;
    let cols = "t.id, t.name, t.created_at, t.version";
    Ok(Json(
        fetch_page(&st.db.pool, cols, Sql::new("regions t WHERE 1=1"), &params).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/regions", tag = "users", request_body = NewRegion,
    responses((status = 201, body = Region)))]
pub async fn create_region(
    State(st): State<AdminState>,
    p: Principal,
    ApiJson(req): ApiJson<NewRegion>,
) -> Result<Tagged<Region>, ApiError> {
    p.require(Permission::ManageUsers)?;
    if req.name.trim().is_empty() {
        return Err(ApiError::field("name", "must not be empty"));
    }
    let region = Region {
        id: new_id(),
        name: req.name,
        created_at: now_text(),
        version: 1,
    };
    let mut tx = crate::store::begin_write(&st.db).await?;
    Sql::insert(
        "regions",
        vec![
            ("id", region.id.as_str().into()),
            ("name", region.name.as_str().into()),
            ("created_at", region.created_at.as_str().into()),
            ("version", 1i64.into()),
        ],
    )
    .execute(&mut tx)
    .await
    .map_err(|e| unique_violation(e, "name"))?;
    audit::record(
        &mut tx,
        &p,
        Change {
            entity: "region",
            entity_id: &region.id,
            action: "create",
            customer_id: None,
            before: None,
            after: snapshot(&region),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Tagged::created(1, region))
}

/// Staff phones are subscriber numbers: the same 5-15 digit rule as every msisdn.
fn check_phone(phone: Option<String>) -> Result<Option<String>, ApiError> {
    match phone {
        None => Ok(None),
        Some(p) => crate::event::Msisdn::parse(p.trim())
            .map(|m| Some(m.to_string()))
            .map_err(|e| ApiError::field("phone", e.to_string())),
    }
}
