//! `/teams` and `/regions`: the organisation data scopes refer to.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::AdminState;
use crate::audit::{self};
use crate::auth::{Permission, Principal};
use crate::http::Tagged;
use crate::http::{ApiError, ApiJson};
use crate::store::{
    check_ref, fetch_page, new_id, now_text, unique_violation, FilterKind, ListParams, ListSpec,
    Page, Sql,
};

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
    audit::commit_create(tx, &p, "team", &team.id, None, &team).await?;
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
    audit::commit_create(tx, &p, "region", &region.id, None, &region).await?;
    Ok(Tagged::created(1, region))
}
