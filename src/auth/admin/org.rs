//! `/teams` and `/regions`: the organisation data scopes refer to.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::AdminState;
use crate::auth::{Permission, Principal};
use crate::crud;
use crate::http::Tagged;
use crate::http::{ApiError, ApiJson};
use crate::store::{
    check_ref, new_id, now_text, Entity, FilterKind, ListParams, ListSpec, Page, Sql,
};

/// A team or a region: both are a name, and teams belong to a region.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub region_id: Option<String>,
    pub created_at: String,
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
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

crate::entity! { Team in "teams" as t, kind "team", unique "name";
update name, region_id; insert created_at }

crate::entity! { Region in "regions" as t, kind "region", unique "name";
update name; insert created_at }

/// Both lists: the organisation is not scoped.
fn all(table: &str) -> Sql {
    Sql::new(&format!("{table} t WHERE 1=1"))
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
    crud::list(
        &st.db,
        all(Team::TABLE),
        &ListParams::parse(&NAME_SPEC, &q)?,
    )
    .await
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
    crud::create(tx, &p, team).await
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
    crud::list(
        &st.db,
        all(Region::TABLE),
        &ListParams::parse(&NAME_SPEC, &q)?,
    )
    .await
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
    let tx = crate::store::begin_write(&st.db).await?;
    crud::create(tx, &p, region).await
}
