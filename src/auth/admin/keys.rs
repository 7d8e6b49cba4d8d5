//! `/api-keys`: long-lived keys for systems, shown once at creation.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::AdminState;
use crate::audit::{self, snapshot, Change};
use crate::auth::db::{insert_key, new_secret, ApiKey};
use crate::auth::{Permission, Principal};
use crate::http::{ApiError, ApiJson};
use crate::store::{fetch_page, now_text, FilterKind, ListParams, ListSpec, Page, Sql};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
    /// The user the key acts as (usually a `system` user).
    pub user_id: String,
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
    super::users::check_user(&mut tx, &req.user_id).await?;
    let key = new_secret("kak");
    let info = ApiKey::new(req.name, req.user_id, &key);
    insert_key(&mut tx, &info, &key).await?;
    audit::commit_create(tx, &p, "api_key", &info.id, None, &info).await?;
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
