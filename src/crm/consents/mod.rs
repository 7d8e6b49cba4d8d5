//! `/customers/{id}/consents`: consent or opt-out per channel and purpose (TMF644-like).
//! Marketing refusals become the engine's `opt_outs` and service refusals its
//! `service_opt_outs`, so changes emit `profile_change`.

mod replies;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::auth::{Permission, Principal};
use crate::crm::profiles::changes::{emit_for_customer, FieldChange};
use crate::crm::scope::require_customer;
use crate::crm::validate;
use crate::crm::workflow;
use crate::crm::CrmState;
use crate::crud;
use crate::http::{expected_version, Tagged};
use crate::http::{ApiError, ApiJson};
use crate::store::{new_id, now_text, Entity, ListSpec, Page, Sql};
use utoipa_axum::{router::OpenApiRouter, routes};

pub use replies::ConsentOptOuts;

pub const PURPOSES: &[&str] = &["marketing", "service", "analytics", "third_party"];

crate::record! {
    #[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
    pub struct Consent, new NewConsent, patch ConsentPatch {
        id: String,
        customer_id: String,
        /// sms | email | portal | agent | app | call | all
        channel: String { new },
        /// marketing | service | analytics | third_party
        purpose: String { new },
        /// False records an opt-out.
        granted: bool { new, patch },
        /// Where the customer expressed it (store, hotline, app, ...).
        source: Option<String> { new, patch some },
        updated_at: String,
        version: i64,
    }
}

#[derive(sqlx::FromRow)]
pub struct Row {
    id: String,
    customer_id: String,
    channel: String,
    purpose: String,
    granted: i64,
    source: Option<String>,
    updated_at: String,
    version: i64,
}

impl From<Row> for Consent {
    fn from(r: Row) -> Consent {
        Consent {
            id: r.id,
            customer_id: r.customer_id,
            channel: r.channel,
            purpose: r.purpose,
            granted: r.granted != 0,
            source: r.source,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

crate::entity! { Consent in "consents" as k, kind "consent",
unique "consent for this channel and purpose", row Row, owner customer_id;
update granted, source; stamp updated_at; insert customer_id, channel, purpose }

const COLUMNS: &str = <Consent as Entity>::COLUMNS;

/// The consents of customer `id`: `consents k WHERE k.customer_id = id`.
fn of_customer(id: &str) -> Sql {
    let mut sql = Sql::new("consents k WHERE k.customer_id = ");
    sql.bind(id);
    sql
}

pub fn router() -> OpenApiRouter<CrmState> {
    crud_routes()
        .routes(routes!(create))
        .routes(routes!(update))
}

pub async fn for_customer(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<Vec<Consent>, sqlx::Error> {
    let mut from = of_customer(customer_id);
    from.push(" ORDER BY k.purpose, k.channel");
    workflow::all::<Row, _>(conn, COLUMNS, from).await
}

const SPEC: ListSpec = crate::list_spec!(k; text channel, purpose; int granted;
    sort channel, updated_at; default "k.purpose, k.channel");

crate::crud_handlers! { Consent in CrmState, tag "customers", routes crud_routes;
    |p, id, conn| from of_customer(&id), read p.require(Permission::ReadCustomers),
        write p.require(Permission::WriteCustomers), parent require_customer(conn, &p, &id);
    list "/api/v1/customers/{id}/consents", SPEC, (("id" = String, Path),
        ("channel" = Option<String>, Query), ("purpose" = Option<String>, Query),
        ("granted" = Option<i64>, Query, description = "0 or 1"));
}

/// The customer's refusals the engine reads: marketing (`opt_outs`) and service
/// (`service_opt_outs`).
async fn refusals(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<[Vec<String>; 2], sqlx::Error> {
    use crate::crm::profiles::{refusals, MARKETING, SERVICE};
    Ok([
        refusals(conn, customer_id, MARKETING).await?,
        refusals(conn, customer_id, SERVICE).await?,
    ])
}

fn opt_out_change(old: [Vec<String>; 2], new: [Vec<String>; 2]) -> Vec<FieldChange> {
    ["opt_outs", "service_opt_outs"]
        .into_iter()
        .zip(old.into_iter().zip(new))
        .filter(|(_, (o, n))| o != n)
        .map(|(field, (old, new))| FieldChange {
            field,
            old: old.into(),
            new: new.into(),
        })
        .collect()
}

#[utoipa::path(post, path = "/api/v1/customers/{id}/consents", tag = "customers", params(("id" = String, Path)),
    request_body = NewConsent, responses((status = 201, body = Consent), (status = 400), (status = 404), (status = 409)))]
pub async fn create(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NewConsent>,
) -> Result<Tagged<Consent>, ApiError> {
    p.require(Permission::WriteCustomers)?;
    validate::one_of("channel", &req.channel, validate::CHANNELS)?;
    validate::one_of("purpose", &req.purpose, PURPOSES)?;
    validate::opt_text("source", req.source.as_deref(), 64)?;
    let c = Consent {
        id: new_id(),
        customer_id: id.clone(),
        channel: req.channel,
        purpose: req.purpose,
        granted: req.granted,
        source: req.source,
        updated_at: now_text(),
        version: 1,
    };
    let mut tx = crate::store::begin_write(&st.db).await?;
    require_customer(&mut tx, &p, &id).await?;
    let old = refusals(&mut tx, &id).await?;
    crud::insert_in(&mut tx, &p, &c).await?;
    let new = refusals(&mut tx, &id).await?;
    tx.commit().await?;
    emit_for_customer(&st, &id, opt_out_change(old, new)).await;
    Ok(Tagged::created(1, c))
}

#[utoipa::path(patch, path = "/api/v1/customers/{id}/consents/{consent_id}", tag = "customers",
    params(("id" = String, Path), ("consent_id" = String, Path)), request_body = ConsentPatch,
    responses((status = 200, body = Consent), (status = 404), (status = 412)))]
pub async fn update(
    State(st): State<CrmState>,
    p: Principal,
    Path((id, consent_id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<ConsentPatch>,
) -> Result<Tagged<Consent>, ApiError> {
    p.require(Permission::WriteCustomers)?;
    let expected = expected_version(&headers, patch.version)?;
    validate::opt_text("source", patch.source.as_deref(), 64)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    require_customer(&mut tx, &p, &id).await?;
    let before: Consent = crud::load_at(&mut tx, of_customer(&id), &consent_id, expected).await?;
    let old = refusals(&mut tx, &id).await?;
    let mut after = before.clone();
    if let Some(g) = patch.granted {
        after.granted = g;
    }
    if patch.source.is_some() {
        after.source = patch.source;
    }
    let after = crud::write(&mut tx, &before, after).await?;
    let new = refusals(&mut tx, &id).await?;
    crud::commit(tx, &p, "update", &before, &after).await?;
    emit_for_customer(&st, &id, opt_out_change(old, new)).await;
    Ok(Tagged::ok(after.version, after))
}
