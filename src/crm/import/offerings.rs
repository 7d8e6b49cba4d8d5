//! `POST /api/v1/import/offerings`: the product catalog in one upload, each offering upserted
//! by its `code`, checked as `POST` and `PATCH /catalog/offerings` check it.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value};

use super::record::{parse, Outcome, Report};
use super::{Cell, Upsert};
use crate::auth::{Permission, Principal};
use crate::crm::catalog::{self, repo, NewOffering, OfferingPatch};
use crate::crm::CrmState;
use crate::crud;
use crate::http::ApiError;

/// Imports catalog offerings. Each record is an offering's fields as for
/// `POST /catalog/offerings` (`code`, `name`, `offering_type`, `price_cents`, ...); an offering
/// whose `code` exists already is updated with the fields given (as `PATCH` would:
/// `offering_type` and `is_bundle` stay what they were), so sending the same file again changes
/// nothing. `bundled_offering_ids` may name the bundled offerings by id or by code, including
/// offerings earlier in the same upload.
///
/// CSV columns are the offering's fields; `is_bundle` is `true` or `false`, and
/// `bundled_offering_ids`, `market_segments` and `channels` are comma-separated in their
/// cell. Empty cells are left out.
///
/// The answer is NDJSON: a [`Report`] per record (`line`, `external_id` = the code, `result`
/// created | updated | failed, `id`, `field`, `message`) as it is written, then
/// `{"summary": {...}}`; the `Import-Records` header gives the number of records first.
#[utoipa::path(post, path = "/api/v1/import/offerings", tag = "import",
    request_body(content = Vec<Object>, content_type = "application/json",
        description = "The records as a JSON array. The same records one per line as `application/x-ndjson`, or a CSV with a header row as `text/csv`, are read the same way."),
    responses((status = 200, description = "application/x-ndjson: one Report per record, then {\"summary\": Summary}", body = Report,
            headers(("Import-Records" = usize, description = "How many records the upload holds: the report lines are the progress, n of this many"))),
        (status = 400, body = crate::http::error::ErrorBody), (status = 413, body = crate::http::error::ErrorBody), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn offerings(
    State(st): State<CrmState>,
    p: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    p.require(Permission::ManageCatalog)?;
    let records = super::upload(&st, &headers, body, csv_record).await?;
    super::answer(st, "offerings", records, Offerings { p })
}

struct Offerings {
    p: Principal,
}

impl Upsert for Offerings {
    const KEY: &'static str = "code";

    async fn write(
        &self,
        tx: &mut sqlx::AnyConnection,
        mut obj: Map<String, Value>,
    ) -> Result<(Outcome, String), ApiError> {
        let code = super::natural_key(&obj, "code", "offerings are imported by their code")?;
        bundled_by_code(tx, &mut obj).await?;
        match repo::by_code(tx, &code).await? {
            None => {
                let o = catalog::build(parse::<NewOffering>(Value::Object(obj))?);
                catalog::validate(tx, &o).await?;
                crud::insert_in(tx, &self.p, &o).await?;
                Ok((Outcome::Created, o.id))
            }
            Some(before) => {
                obj.remove("code");
                fixed(
                    &mut obj,
                    "offering_type",
                    before.offering_type.as_str().into(),
                )?;
                fixed(&mut obj, "is_bundle", before.is_bundle.into())?;
                let after =
                    catalog::apply(before.clone(), parse::<OfferingPatch>(Value::Object(obj))?);
                catalog::validate(tx, &after).await?;
                // A record that changes nothing writes no version (a re-import is a no-op).
                if after != before {
                    crud::update_in(tx, &self.p, &before, after).await?;
                }
                Ok((Outcome::Updated, before.id))
            }
        }
    }
}

/// A field an offering keeps once created: left out when the record repeats it, named when
/// the record would change it.
fn fixed(obj: &mut Map<String, Value>, field: &str, stored: Value) -> Result<(), ApiError> {
    match obj.remove(field) {
        Some(v) if v != stored => Err(ApiError::field(
            field,
            format!("is fixed once the offering is created (it is {stored})"),
        )),
        _ => Ok(()),
    }
}

/// Bundled offerings named by code become their ids; what names no offering is left for
/// validation to refuse.
async fn bundled_by_code(
    tx: &mut sqlx::AnyConnection,
    obj: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let Some(Value::Array(items)) = obj.get_mut("bundled_offering_ids") else {
        return Ok(());
    };
    for item in items {
        if let Value::String(key) = item {
            if let Some(o) = repo::get(tx, key).await? {
                *key = o.id;
            }
        }
    }
    Ok(())
}

/// One CSV row as an offering's fields.
fn csv_record(names: &[String], row: &csv::StringRecord) -> Result<Map<String, Value>, ApiError> {
    super::fields_record(names, row, |name| match name {
        "price_cents" | "version" => Cell::Number,
        "is_bundle" => Cell::Flag,
        "bundled_offering_ids" | "market_segments" | "channels" => Cell::List,
        _ => Cell::Text,
    })
}
