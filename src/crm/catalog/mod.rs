//! `/catalog/offerings`: what the operator sells (TMF620). Everyone who reads customers may
//! read the catalog; marketers and admins manage it.

pub mod repo;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

pub use repo::Offering;

use crate::audit::{self};
use crate::auth::{Permission, Principal};
use crate::crm::validate;
use crate::crm::CrmState;
use crate::http::{check_version, expected_version, nullable, Tagged};
use crate::http::{ApiError, ApiJson};
use crate::store::{
    fetch_page, new_id, now_text, unique_violation, FilterKind, ListParams, ListSpec, Page, Sql,
};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update))
}

const SPEC: ListSpec = ListSpec {
    filters: &[
        ("code", "o.code", FilterKind::Text),
        ("offering_type", "o.offering_type", FilterKind::Text),
        ("lifecycle_status", "o.lifecycle_status", FilterKind::Text),
        ("is_bundle", "o.is_bundle", FilterKind::Int),
        ("price_cents", "o.price_cents", FilterKind::Int),
    ],
    sorts: &[
        ("code", "o.code"),
        ("name", "o.name"),
        ("price_cents", "o.price_cents"),
        ("created_at", "o.created_at"),
    ],
    default_sort: "o.code",
    tiebreak: "o.id",
};

const TYPES: &[&str] = &["plan", "addon", "device", "service"];
const LIFECYCLE: &[&str] = &["in_design", "active", "retired"];

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOffering {
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub offering_type: String,
    #[serde(default)]
    pub is_bundle: bool,
    #[serde(default)]
    pub bundled_offering_ids: Vec<String>,
    pub price_cents: i64,
    pub recurring_period: Option<String>,
    #[serde(default)]
    pub market_segments: Vec<String>,
    #[serde(default)]
    pub channels: Vec<String>,
    pub lifecycle_status: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferingPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub bundled_offering_ids: Option<Vec<String>>,
    pub price_cents: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub recurring_period: Option<Option<String>>,
    pub market_segments: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub lifecycle_status: Option<String>,
    pub version: Option<i64>,
}

async fn validate(conn: &mut sqlx::AnyConnection, o: &Offering) -> Result<(), ApiError> {
    validate::text("code", &o.code, 64)?;
    if !o
        .code
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ApiError::field("code", "letters, digits, _ and - only"));
    }
    validate::text("name", &o.name, 200)?;
    validate::one_of("offering_type", &o.offering_type, TYPES)?;
    validate::non_negative("price_cents", o.price_cents)?;
    if let Some(p) = &o.recurring_period {
        validate::one_of("recurring_period", p, &["month", "year"])?;
    }
    for ch in &o.channels {
        validate::one_of("channels", ch, validate::CHANNELS)?;
    }
    validate::one_of("lifecycle_status", &o.lifecycle_status, LIFECYCLE)?;
    if o.is_bundle == o.bundled_offering_ids.is_empty() {
        return Err(ApiError::field(
            "bundled_offering_ids",
            "a bundle lists its offerings, and only a bundle does",
        ));
    }
    if o.bundled_offering_ids.contains(&o.id) {
        return Err(ApiError::field(
            "bundled_offering_ids",
            "must not contain itself",
        ));
    }
    if repo::count_existing(conn, &o.bundled_offering_ids).await? != o.bundled_offering_ids.len() {
        return Err(ApiError::field(
            "bundled_offering_ids",
            "refers to unknown offerings",
        ));
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/catalog/offerings", tag = "catalog",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query), ("sort" = Option<String>, Query),
        ("code" = Option<String>, Query), ("offering_type" = Option<String>, Query),
        ("lifecycle_status" = Option<String>, Query), ("is_bundle" = Option<i64>, Query, description = "0 or 1"),
        ("q" = Option<String>, Query, description = "substring of name or code"), ("price_cents_max" = Option<i64>, Query)),
    responses((status = 200, body = Page<Offering>)))]
pub async fn list(
    State(st): State<CrmState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<Offering>>, ApiError> {
    p.require(Permission::ReadCustomers)?;
    let params = ListParams::parse_with_search(&SPEC, &["o.name", "o.code"], &q)?;
    let page: Page<repo::Row> = fetch_page(
        &st.db.pool,
        repo::COLUMNS,
        Sql::new("product_offerings o WHERE 1=1"),
        &params,
    )
    .await?;
    Ok(Json(Page {
        items: page.items.into_iter().map(Into::into).collect(),
        total: page.total,
        limit: page.limit,
        offset: page.offset,
    }))
}

#[utoipa::path(post, path = "/api/v1/catalog/offerings", tag = "catalog", request_body = NewOffering,
    responses((status = 201, body = Offering), (status = 400), (status = 409)))]
pub async fn create(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(req): ApiJson<NewOffering>,
) -> Result<Tagged<Offering>, ApiError> {
    p.require(Permission::ManageCatalog)?;
    let now = now_text();
    let o = Offering {
        id: new_id(),
        code: req.code,
        name: req.name,
        description: req.description,
        offering_type: req.offering_type,
        is_bundle: req.is_bundle,
        bundled_offering_ids: req.bundled_offering_ids,
        price_cents: req.price_cents,
        recurring_period: req.recurring_period,
        market_segments: req.market_segments,
        channels: req.channels,
        lifecycle_status: req.lifecycle_status.unwrap_or_else(|| "active".into()),
        created_at: now.clone(),
        updated_at: now,
        version: 1,
    };
    let mut tx = crate::store::begin_write(&st.db).await?;
    validate(&mut tx, &o).await?;
    repo::insert(&mut tx, &o)
        .await
        .map_err(|e| unique_violation(e, "code"))?;
    audit::commit_create(tx, &p, "product_offering", &o.id, None, &o).await?;
    Ok(Tagged::created(1, o))
}

#[utoipa::path(get, path = "/api/v1/catalog/offerings/{id}", tag = "catalog",
    params(("id" = String, Path, description = "offering id or code")),
    responses((status = 200, body = Offering), (status = 404)))]
pub async fn read(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Tagged<Offering>, ApiError> {
    p.require(Permission::ReadCustomers)?;
    let o = repo::get(&mut *st.db.pool.acquire().await?, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound("offering".into()))?;
    Ok(Tagged::ok(o.version, o))
}

#[utoipa::path(patch, path = "/api/v1/catalog/offerings/{id}", tag = "catalog",
    params(("id" = String, Path, description = "offering id or code")), request_body = OfferingPatch,
    responses((status = 200, body = Offering), (status = 404), (status = 412)))]
pub async fn update(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<OfferingPatch>,
) -> Result<Tagged<Offering>, ApiError> {
    p.require(Permission::ManageCatalog)?;
    let expected = expected_version(&headers, patch.version)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    let before = repo::get(&mut tx, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound("offering".into()))?;
    check_version(before.version, expected)?;
    let mut after = before.clone();
    crate::apply_patch!(patch => after;
        name,
        description,
        bundled_offering_ids,
        price_cents,
        recurring_period,
        market_segments,
        channels,
        lifecycle_status
    );
    validate(&mut tx, &after).await?;
    after.updated_at = now_text();
    let n = Sql::update_versioned(
        "product_offerings",
        &before.id,
        expected,
        repo::values(&after),
    )
    .execute(&mut tx)
    .await?;
    audit::check_written(n > 0)?;
    after.version += 1;
    audit::commit_update(tx, &p, "product_offering", &after.id, None, &before, &after).await?;
    Ok(Tagged::ok(after.version, after))
}
