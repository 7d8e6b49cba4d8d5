//! `/parties`: the people and organizations behind customers (TMF632).

pub mod repo;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

pub use repo::Party;

use crate::auth::{Permission, Principal};
use crate::crm::validate;
use crate::crm::CrmState;
use crate::crud;
use crate::http::{expected_version, nullable, Tagged};
use crate::http::{ApiError, ApiJson};
use crate::store::{new_id, now_text, FilterKind, ListParams, ListSpec, Page};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update))
}

const SPEC: ListSpec = ListSpec {
    filters: &[
        ("party_type", "p.party_type", FilterKind::Text),
        (
            "registration_number",
            "p.registration_number",
            FilterKind::Text,
        ),
        ("family_name", "p.family_name", FilterKind::Text),
        ("trading_name", "p.trading_name", FilterKind::Text),
    ],
    sorts: &[
        ("created_at", "p.created_at"),
        ("family_name", "p.family_name"),
        ("trading_name", "p.trading_name"),
    ],
    default_sort: "p.created_at",
    tiebreak: "p.id",
};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewParty {
    pub party_type: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub trading_name: Option<String>,
    pub registration_number: Option<String>,
    pub birth_date: Option<String>,
    pub nationality: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyPatch {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub given_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub family_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub trading_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub registration_number: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub birth_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub nationality: Option<Option<String>>,
    pub version: Option<i64>,
}

fn validate(p: &Party) -> Result<(), ApiError> {
    validate::one_of("party_type", &p.party_type, &["individual", "organization"])?;
    if p.party_type == "individual" {
        if p.given_name.is_none() && p.family_name.is_none() {
            return Err(ApiError::field("family_name", "an individual needs a name"));
        }
    } else if p.trading_name.is_none() {
        return Err(ApiError::field(
            "trading_name",
            "an organization needs a name",
        ));
    }
    validate::opt_text("given_name", p.given_name.as_deref(), 100)?;
    validate::opt_text("family_name", p.family_name.as_deref(), 100)?;
    validate::opt_text("trading_name", p.trading_name.as_deref(), 200)?;
    validate::opt_text("registration_number", p.registration_number.as_deref(), 64)?;
    if let Some(d) = &p.birth_date {
        validate::date("birth_date", d)?;
    }
    validate::opt_text("nationality", p.nationality.as_deref(), 2)
}

#[utoipa::path(get, path = "/api/v1/parties", tag = "parties",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query), ("sort" = Option<String>, Query),
        ("party_type" = Option<String>, Query), ("registration_number" = Option<String>, Query),
        ("family_name" = Option<String>, Query), ("trading_name" = Option<String>, Query), ("q" = Option<String>, Query, description = "substring of any name")),
    responses((status = 200, body = Page<Party>)))]
pub async fn list(
    State(st): State<CrmState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<Party>>, ApiError> {
    p.require(Permission::ReadCustomers)?;
    let params = ListParams::parse_with_search(
        &SPEC,
        &["p.given_name", "p.family_name", "p.trading_name"],
        &q,
    )?;
    crud::list(&st.db, repo::scoped(&p), &params).await
}

#[utoipa::path(post, path = "/api/v1/parties", tag = "parties", request_body = NewParty,
    responses((status = 201, body = Party), (status = 400)))]
pub async fn create(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(req): ApiJson<NewParty>,
) -> Result<Tagged<Party>, ApiError> {
    crate::crm::scope::require_operator_write(&p)?;
    let now = now_text();
    let party = Party {
        id: new_id(),
        party_type: req.party_type,
        given_name: req.given_name,
        family_name: req.family_name,
        trading_name: req.trading_name,
        registration_number: req.registration_number,
        birth_date: req.birth_date,
        nationality: req.nationality,
        created_by: p.id.clone(),
        created_at: now.clone(),
        updated_at: now,
        version: 1,
    };
    validate(&party)?;
    let tx = crate::store::begin_write(&st.db).await?;
    crud::create(tx, &p, party).await
}

#[utoipa::path(get, path = "/api/v1/parties/{id}", tag = "parties", params(("id" = String, Path)),
    responses((status = 200, body = Party), (status = 404)))]
pub async fn read(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Tagged<Party>, ApiError> {
    p.require(Permission::ReadCustomers)?;
    crud::read(&st.db, repo::scoped(&p), &id).await
}

#[utoipa::path(patch, path = "/api/v1/parties/{id}", tag = "parties", params(("id" = String, Path)),
    request_body = PartyPatch, responses((status = 200, body = Party), (status = 404), (status = 412)))]
pub async fn update(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<PartyPatch>,
) -> Result<Tagged<Party>, ApiError> {
    crate::crm::scope::require_operator_write(&p)?;
    let expected = expected_version(&headers, patch.version)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    let before: Party = crud::load_at(&mut tx, repo::scoped(&p), &id, expected).await?;
    let mut after = before.clone();
    crate::apply_patch!(patch => after;
        given_name,
        family_name,
        trading_name,
        registration_number,
        birth_date,
        nationality
    );
    validate(&after)?;
    crud::update(tx, &p, &before, after).await
}
