//! `/users`: people and systems, their roles and data scopes.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::AdminError;
use super::AdminState;
use crate::auth::db::UserRow;
use crate::auth::{Permission, Principal, Role};
use crate::crud;
use crate::http::{expected_version, nullable, Tagged};
use crate::http::{ApiError, ApiJson};
use crate::store::{begin_write, check_ref, new_id, now_text, FilterKind, ListSpec, Page, Sql};

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
    /// Read and written, never shown nor audited.
    #[serde(skip)]
    pub password_hash: Option<String>,
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
            password_hash: u.password_hash,
            active: u.active != 0,
            created_at: u.created_at,
            updated_at: u.updated_at,
            version: u.version,
        }
    }
}

crate::entity! { User in "users" as u, kind "user", unique "username", row UserRow;
update display_name, role, team_id, region_id, enterprise_customer_id, phone, password_hash,
    active;
stamp updated_at; insert username, created_at }

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
fn check_assignment(role: Role, u: &User) -> Result<(), AdminError> {
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

async fn check_user_refs(conn: &mut sqlx::AnyConnection, u: &User) -> Result<(), ApiError> {
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

/// Users are not scoped: only those who manage users list or change them.
fn all() -> Sql {
    Sql::new("users u WHERE 1=1")
}

crate::crud_handlers! { User in AdminState, tag "users", routes list_routes;
    |p| from all(), read p.require(Permission::ManageUsers), write p.require(Permission::ManageUsers);
    list "/api/v1/users" as list_users, USER_SPEC, search ["u.username", "u.display_name"],
        (("username" = Option<String>, Query), ("role" = Option<String>, Query),
            ("team_id" = Option<String>, Query), ("region_id" = Option<String>, Query));
}

/// The user `id` names: 400 naming `user_id` when there is none.
pub(super) async fn check_user(conn: &mut sqlx::AnyConnection, id: &str) -> Result<(), ApiError> {
    crud::load::<User>(conn, all(), id)
        .await
        .map_err(|_| ApiError::field("user_id", "no such user"))?;
    Ok(())
}

/// The hash of a new password, checked first.
async fn password_hash(st: &AdminState, pw: Option<String>) -> Result<Option<String>, ApiError> {
    match pw {
        Some(pw) => {
            check_password(&pw)?;
            Ok(Some(st.auth.passwords.hash(pw).await?))
        }
        None => Ok(None),
    }
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
    let password_hash = password_hash(&st, req.password).await?;
    let now = now_text();
    let user = User {
        id: new_id(),
        display_name: req.display_name.unwrap_or_else(|| username.clone()),
        username,
        role: role.as_str().into(),
        team_id: req.team_id,
        region_id: req.region_id,
        enterprise_customer_id: req.enterprise_customer_id,
        phone: check_phone(req.phone)?,
        password_hash,
        active: true,
        created_at: now.clone(),
        updated_at: now,
        version: 1,
    };
    check_assignment(role, &user)?;
    let mut tx = begin_write(&st.db).await?;
    check_user_refs(&mut tx, &user).await?;
    crud::create(tx, &p, user).await
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
    crud::read(&st.db, all(), &id).await
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
    let new_hash = password_hash(&st, patch.password).await?;
    let mut tx = begin_write(&st.db).await?;
    let before: User = crud::load_at(&mut tx, all(), &id, expected).await?;
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
        after.active = v;
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
    if before.role == admin && before.active && (after.role != admin || !after.active) {
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
    let after = crud::write(&mut tx, &before, after).await?;
    if !after.active {
        // A deactivated user's sessions end now, not when they expire.
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
    }
    crud::commit(tx, &p, "update", &before, &after).await?;
    Ok(Tagged::ok(after.version, after))
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
