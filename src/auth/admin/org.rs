//! `/teams` and `/regions`: the organisation data scopes refer to.

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use super::AdminState;
use crate::auth::{Permission, Principal};
use crate::crud;
use crate::http::ApiError;
use crate::store::{check_ref, Entity, FilterKind, ListSpec, Page, Sql};

// Teams and regions are not edited: the PATCH bodies the field lists also give go unused.
crate::record! {
    /// A team or a region: both are a name, and teams belong to a region.
    #[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
    pub struct Team, new NewTeam, patch TeamPatch {
        id: String,
        name: String { new },
        region_id: Option<String> { new },
        created_at: String,
        version: i64,
    }
}

crate::record! {
    #[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
    pub struct Region, new NewRegion, patch RegionPatch {
        id: String,
        name: String { new },
        created_at: String,
        version: i64,
    }
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

crate::crud_handlers! { Team in AdminState, tag "users", routes team_routes;
    |p| from all(Team::TABLE), read p.require(Permission::ReadCustomers),
        write p.require(Permission::ManageUsers);
    list "/api/v1/teams" as list_teams, NAME_SPEC, (("name" = Option<String>, Query));
    create "/api/v1/teams" as create_team, NewTeam;
}

crate::crud_handlers! { Region in AdminState, tag "users", routes region_routes;
    |p| from all(Region::TABLE), read p.require(Permission::ReadCustomers),
        write p.require(Permission::ManageUsers);
    list "/api/v1/regions" as list_regions, NAME_SPEC, (("name" = Option<String>, Query));
    create "/api/v1/regions" as create_region, NewRegion;
}

/// A team or a region needs a name.
fn named(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::field("name", "must not be empty"));
    }
    Ok(())
}

impl crud::Creatable for Team {
    type New = NewTeam;

    fn build(req: NewTeam, _: &Principal) -> Result<Team, ApiError> {
        named(&req.name)?;
        Ok(req.into_record())
    }

    async fn check_new(&self, conn: &mut AnyConnection, _: &Principal) -> Result<(), ApiError> {
        Ok(check_ref(conn, "regions", "region_id", self.region_id.as_deref()).await?)
    }
}

impl crud::Creatable for Region {
    type New = NewRegion;

    fn build(req: NewRegion, _: &Principal) -> Result<Region, ApiError> {
        named(&req.name)?;
        Ok(req.into_record())
    }
}
