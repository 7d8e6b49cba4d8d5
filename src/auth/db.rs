//! The database-backed authenticator: people log in with a password (argon2) and get a session
//! token; systems present an API key. Only SHA-256 hashes of tokens and keys are stored; they
//! are random 256-bit values, so a fast hash is enough and lets us look them up by equality.

use std::sync::OnceLock;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use rand::RngCore;
use sha2::{Digest, Sha256};

use serde::{Deserialize, Serialize};

use super::{AuthError, Authenticator, Principal, Role, Scope};
use crate::store::Db;
use crate::store::{new_id, now_text, Entity, Sql};

/// The columns a user is read with.
pub const USER_COLUMNS: &str = <super::admin::User as Entity>::COLUMNS;

/// How long a login session lasts.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(12);

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub team_id: Option<String>,
    pub region_id: Option<String>,
    pub enterprise_customer_id: Option<String>,
    /// Mobile number (msisdn) for staff notices by SMS, such as contract reminders.
    pub phone: Option<String>,
    pub password_hash: Option<String>,
    pub active: i64,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

/// The data scope a user's role and assignment give. Missing assignments fall back to the
/// narrowest scope rather than to `All`.
pub fn principal_for(u: &UserRow) -> Option<Principal> {
    let role = Role::parse(&u.role)?;
    let own = Scope::Own(u.id.clone());
    let scope = match role {
        Role::Admin | Role::Marketer | Role::System => Scope::All,
        Role::RegionHead => u.region_id.clone().map(Scope::Region).unwrap_or(own),
        Role::TeamLead => u.team_id.clone().map(Scope::Team).unwrap_or(own),
        Role::AccountManager => own,
        // Call-centre agents serve whoever calls, within their region when they have one.
        Role::Agent => u.region_id.clone().map(Scope::Region).unwrap_or(Scope::All),
        Role::EnterpriseAdmin => u
            .enterprise_customer_id
            .clone()
            .map(Scope::Enterprise)
            .unwrap_or(own),
    };
    Some(Principal {
        id: u.id.clone(),
        name: u.username.clone(),
        role,
        scope,
    })
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh random credential such as `kak_3f9a...` (prefix tells keys from session tokens).
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
}

pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Verifies against `stored`, or against a dummy hash when there is no user, so a missing
/// username costs the same time as a wrong password.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not-a-password").unwrap_or_default());
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let ok = PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    ok && real
}

pub struct DbAuthenticator {
    pub db: Db,
}

#[async_trait::async_trait]
impl Authenticator for DbAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Option<Principal>, AuthError> {
        let hash = hash_secret(token);
        let mut sql = Sql::new(&format!(
            "SELECT {USER_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = "
        ));
        sql.bind(hash.as_str())
            .push(" AND s.expires_at > ")
            .bind(now_text())
            .push(" AND u.active = 1");
        let mut user: Option<UserRow> = sql.query_as().fetch_optional(&self.db.pool).await?;
        if user.is_none() {
            let mut sql = Sql::new(&format!(
                "SELECT {USER_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id \
                 WHERE k.key_hash = "
            ));
            sql.bind(hash.as_str())
                .push(" AND k.revoked_at IS NULL AND u.active = 1");
            user = sql.query_as().fetch_optional(&self.db.pool).await?;
        }
        Ok(user.as_ref().and_then(principal_for))
    }
}

/// Stores a new API key as `record` describes it, with the hash of `key` (never the key).
pub async fn insert_key(
    conn: &mut sqlx::AnyConnection,
    record: &ApiKey,
    key: &str,
) -> Result<(), sqlx::Error> {
    Sql::insert(
        "api_keys",
        vec![
            ("id", record.id.as_str().into()),
            ("name", record.name.as_str().into()),
            ("key_hash", hash_secret(key).into()),
            ("key_prefix", record.key_prefix.as_str().into()),
            ("user_id", record.user_id.as_str().into()),
            ("created_at", record.created_at.as_str().into()),
        ],
    )
    .execute(conn)
    .await?;
    Ok(())
}

// A key's record: never the key itself (only its hash is stored), only its first characters.
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub key_prefix: String,
    pub user_id: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl ApiKey {
    /// The record of a new `key` for `user_id`.
    pub fn new(name: String, user_id: String, key: &str) -> ApiKey {
        ApiKey {
            id: new_id(),
            name,
            key_prefix: key.chars().take(8).collect(),
            user_id,
            created_at: now_text(),
            revoked_at: None,
        }
    }
}

async fn ensure_admin_user(db: &Db) -> Result<String, sqlx::Error> {
    let existing: Option<(String,)> = sqlx::query_as("SELECT id FROM users WHERE username = $1")
        .bind("admin")
        .fetch_optional(&db.pool)
        .await?;
    if let Some((id,)) = existing {
        return Ok(id);
    }
    let id = new_id();
    let now = now_text();
    Sql::insert(
        "users",
        vec![
            ("id", id.as_str().into()),
            ("username", "admin".into()),
            ("display_name", "Administrator".into()),
            ("role", Role::Admin.as_str().into()),
            ("active", 1i64.into()),
            ("created_at", now.as_str().into()),
            ("updated_at", now.as_str().into()),
            ("version", 1i64.into()),
        ],
    )
    .execute(&mut *db.pool.acquire().await?)
    .await?;
    Ok(id)
}

/// Makes sure an administrator can get in. With a configured key, that key works (created if
/// missing). Without one, and with no active admin, a key is generated and returned so the
/// caller can show it once.
pub async fn bootstrap(db: &Db, configured_key: &str) -> Result<Option<String>, sqlx::Error> {
    if !configured_key.is_empty() {
        let found: Option<(String,)> =
            sqlx::query_as("SELECT id FROM api_keys WHERE key_hash = $1")
                .bind(hash_secret(configured_key))
                .fetch_optional(&db.pool)
                .await?;
        if found.is_none() {
            let admin = ensure_admin_user(db).await?;
            let record = ApiKey::new("bootstrap".into(), admin, configured_key);
            insert_key(&mut *db.pool.acquire().await?, &record, configured_key).await?;
        }
        return Ok(None);
    }
    let (admins,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = $1 AND active = 1")
            .bind(Role::Admin.as_str())
            .fetch_one(&db.pool)
            .await?;
    if admins > 0 {
        return Ok(None);
    }
    let admin = ensure_admin_user(db).await?;
    let key = new_secret("kak");
    let record = ApiKey::new("bootstrap".into(), admin, &key);
    insert_key(&mut *db.pool.acquire().await?, &record, &key).await?;
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_when_right() {
        let h = hash_password("s3cret!").unwrap();
        assert!(verify_password("s3cret!", Some(&h)));
        assert!(!verify_password("wrong", Some(&h)));
        assert!(!verify_password("not-a-password", None));
    }

    #[test]
    fn secrets_are_random_and_hashes_stable() {
        let a = new_secret("kak");
        assert!(a.starts_with("kak_") && a.len() == 68);
        assert_ne!(a, new_secret("kak"));
        assert_eq!(hash_secret("x"), hash_secret("x"));
    }
}
