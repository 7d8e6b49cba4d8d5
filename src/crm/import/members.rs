//! `POST /api/v1/import/customers/{id}/members`: an enterprise's group members in one upload,
//! each upserted by its `msisdn` within the enterprise, checked as `POST` and `PATCH
//! /customers/{id}/members` check it.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value};

use super::record::{parse, Outcome, Report};
use super::{Cell, Upsert};
use crate::auth::{Permission, Principal};
use crate::crm::customers::members::{self, Member, MemberPatch, NewMember};
use crate::crm::CrmState;
use crate::crud;
use crate::http::ApiError;
use crate::store::entity;

/// Imports an enterprise's members. Each record is a member's fields as for
/// `POST /customers/{id}/members` (`name`, `msisdn`, `department`, `title`, `email`,
/// `status`); a member of this enterprise with the same `msisdn` is updated with the fields
/// given, and a removed one is enrolled again (its record comes back), so sending the same file
/// again changes nothing. An enterprise admin may enrol only lines of their own enterprise: a
/// record of another number fails alone, naming `msisdn`.
///
/// CSV columns are the member's fields; empty cells are left out.
///
/// The answer is NDJSON: a [`Report`] per record (`line`, `external_id` = the msisdn, `result`
/// created | updated | failed, `id`, `field`, `message`) as it is written, then
/// `{"summary": {...}}`; the `Import-Records` header gives the number of records first.
#[utoipa::path(post, path = "/api/v1/import/customers/{id}/members", tag = "import",
    params(("id" = String, Path, description = "the enterprise customer")),
    request_body(content = Vec<Object>, content_type = "application/json",
        description = "The records as a JSON array. The same records one per line as `application/x-ndjson`, or a CSV with a header row as `text/csv`, are read the same way."),
    responses((status = 200, description = "application/x-ndjson: one Report per record, then {\"summary\": Summary}", body = Report,
            headers(("Import-Records" = usize, description = "How many records the upload holds: the report lines are the progress, n of this many"))),
        (status = 400, body = crate::http::error::ErrorBody), (status = 413, body = crate::http::error::ErrorBody), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub async fn members(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    p.require(Permission::WriteCustomers)?;
    members::enterprise(&mut *st.db.pool.acquire().await?, &p, &id).await?;
    let records = super::upload(&st, &headers, body, csv_record).await?;
    let import = Members { p, enterprise: id };
    super::answer(st, "members", records, import)
}

struct Members {
    p: Principal,
    enterprise: String,
}

impl Upsert for Members {
    const KEY: &'static str = "msisdn";

    async fn write(
        &self,
        tx: &mut sqlx::AnyConnection,
        mut obj: Map<String, Value>,
    ) -> Result<(Outcome, String), ApiError> {
        let (p, enterprise) = (&self.p, self.enterprise.as_str());
        let msisdn = super::natural_key(&obj, "msisdn", "members are imported by their number")?;
        match entity::find::<Member>(tx, members::with_number(enterprise, &msisdn)).await? {
            None => {
                let m = members::build(enterprise, parse::<NewMember>(Value::Object(obj))?);
                members::validate(&m)?;
                members::check_own_line(tx, p, &m.msisdn).await?;
                // A removed number enrolled again brings its record back, as `POST` does.
                let id =
                    match entity::removed(tx, members::with_number(enterprise, &m.msisdn)).await? {
                        Some(removed) => {
                            let m = members::revive(&removed, m);
                            crud::restore_in(tx, p, &removed, m).await?.id
                        }
                        None => {
                            crud::insert_in(tx, p, &m).await?;
                            m.id
                        }
                    };
                Ok((Outcome::Created, id))
            }
            Some(before) => {
                obj.remove("msisdn");
                let after =
                    members::apply(before.clone(), parse::<MemberPatch>(Value::Object(obj))?);
                members::validate(&after)?;
                // A record that changes nothing writes no version (a re-import is a no-op).
                if after != before {
                    crud::update_in(tx, p, &before, after).await?;
                }
                Ok((Outcome::Updated, before.id))
            }
        }
    }
}

/// One CSV row as a member's fields (text; `version` a number).
fn csv_record(names: &[String], row: &csv::StringRecord) -> Result<Map<String, Value>, ApiError> {
    super::fields_record(names, row, |name| match name {
        "version" => Cell::Number,
        _ => Cell::Text,
    })
}
