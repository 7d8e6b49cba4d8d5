//! `/customers`: individual and enterprise customers, with scope enforced in SQL.

pub mod group_sms;
pub mod members;
pub mod repo;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;

pub use repo::{Customer, CustomerPatch, NewCustomer};

use crate::audit;
use crate::auth::{Permission, Principal, Role, Scope};
use crate::crm::profiles::changes::{self, FieldChange};
use crate::crm::scope::{customer_visible, require_operator_write};
use crate::crm::validate;
use crate::crm::CrmState;
use crate::crud;
use crate::http::Tagged;
use crate::http::{ApiError, ApiJson};
use crate::store::{check_ref, entity, now_text, ListParams, ListSpec, Page};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .merge(read_routes())
        .routes(routes!(update, remove))
        .merge(members::router())
        .routes(routes!(group_sms::send))
}

const SPEC: ListSpec = crate::list_spec!(c;
    text name, customer_type, status, segment, industry, value_tier, credit_class, region_id,
        account_manager_id, parent_customer_id, external_id;
    int loyalty_points, arpu_cents; float churn_score;
    sort name, created_at, churn_score, loyalty_points, arpu_cents, value_tier;
    default "c.created_at");

const TYPES: &[&str] = &["individual", "enterprise"];
const STATUSES: &[&str] = &["prospect", "active", "suspended", "inactive"];
const CREDIT: &[&str] = &["A", "B", "C", "D", "E"];

/// Field checks. Tiers, credit classes and segments are closed sets (rules and segments
/// match them exactly, so `"Gold"` would match nothing); `segments` is the operator's list.
pub fn validate(c: &Customer, segments: &[String]) -> Result<(), ApiError> {
    validate::text("name", &c.name, 200)?;
    validate::opt_text("external_id", c.external_id.as_deref(), 64)?;
    validate::one_of("customer_type", &c.customer_type, TYPES)?;
    validate::one_of("value_tier", &c.value_tier, crate::ports::VALUE_TIERS)?;
    validate::one_of("credit_class", &c.credit_class, CREDIT)?;
    validate::unit_interval("churn_score", c.churn_score)?;
    validate::non_negative("arpu_cents", c.arpu_cents)?;
    if !segments.contains(&c.segment) {
        return Err(ApiError::field(
            "segment",
            format!("must be one of {} (crm.segments)", segments.join(", ")),
        ));
    }
    validate::opt_text("industry", c.industry.as_deref(), 64)?;
    validate::text("language", &c.language, 16)?;
    validate::timezone("timezone", &c.timezone)?;
    if c.home_country.len() != 2 || !c.home_country.chars().all(|x| x.is_ascii_uppercase()) {
        return Err(ApiError::field(
            "home_country",
            "must be an ISO 3166-1 alpha-2 code",
        ));
    }
    if let Some(ch) = &c.preferred_channel {
        validate::one_of("preferred_channel", ch, validate::CHANNELS)?;
    }
    validate::one_of("status", &c.status, STATUSES)?;
    if c.parent_customer_id.as_deref() == Some(c.id.as_str()) {
        return Err(ApiError::field(
            "parent_customer_id",
            "must not be the customer itself",
        ));
    }
    Ok(())
}

/// The field that moved a record out of the writer's scope, for the error message.
pub(crate) fn scope_field(p: &Principal) -> &'static str {
    match p.scope {
        Scope::Region(_) => "region_id",
        Scope::Enterprise(_) => "parent_customer_id",
        _ => "account_manager_id",
    }
}

/// References must exist (and the party be visible) so errors name the right field.
pub(crate) async fn check_refs(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    c: &Customer,
) -> Result<(), ApiError> {
    check_ref(
        conn,
        "users",
        "account_manager_id",
        c.account_manager_id.as_deref(),
    )
    .await?;
    check_ref(conn, "regions", "region_id", c.region_id.as_deref()).await?;
    if let Some(party) = &c.party_id {
        if crate::crm::parties::repo::get(conn, p, party)
            .await?
            .is_none()
        {
            return Err(ApiError::field(
                "party_id",
                "refers to a record that does not exist",
            ));
        }
    }
    Ok(())
}

/// The parent must be an enterprise the caller can see.
pub(crate) async fn check_parent(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    parent: Option<&str>,
) -> Result<(), ApiError> {
    if let Some(parent) = parent {
        match repo::get(conn, p, parent).await? {
            Some(c) if c.customer_type == "enterprise" => {}
            _ => {
                return Err(ApiError::field(
                    "parent_customer_id",
                    "must be an enterprise customer",
                ))
            }
        }
    }
    Ok(())
}

/// Lists the customers in your scope. Every equality filter takes one value or several
/// separated by commas, meaning any of them (`value_tier=gold,platinum`); `q` searches by
/// phone number, external id, id document or name.
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers",
    params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query),
        ("sort" = Option<String>, Query, description = "name | created_at | churn_score | loyalty_points | arpu_cents | value_tier, prefix - for descending"),
        ("name" = Option<String>, Query), ("customer_type" = Option<String>, Query), ("status" = Option<String>, Query),
        ("segment" = Option<String>, Query), ("industry" = Option<String>, Query), ("value_tier" = Option<String>, Query, description = "one tier or several, comma-separated: gold,platinum"), ("credit_class" = Option<String>, Query),
        ("region_id" = Option<String>, Query), ("account_manager_id" = Option<String>, Query), ("parent_customer_id" = Option<String>, Query),
        ("q" = Option<String>, Query, description = "search: a phone number's leading digits (any of the customer's lines), the exact external id or id document (the party's registration number), or a case-insensitive part of the name"),
        ("external_id" = Option<String>, Query),
        ("churn_score_min" = Option<f64>, Query), ("churn_score_max" = Option<f64>, Query),
        ("loyalty_points_min" = Option<i64>, Query), ("arpu_cents_min" = Option<i64>, Query)),
    responses((status = 200, body = Page<Customer>)))]
pub async fn list(
    State(st): State<CrmState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<Customer>>, ApiError> {
    p.require(Permission::ReadCustomers)?;
    let mut q = q;
    let search = q.remove("q");
    let params = ListParams::parse(&SPEC, &q)?;
    let mut from = repo::scoped(&p);
    if let Some(text) = search.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        repo::push_search(&mut from, text);
    }
    crud::list(&st.db, from, &params).await
}

/// A new customer from a create request, with the defaults filled in (an account manager
/// creating one manages it).
pub(crate) fn build(st: &CrmState, p: &Principal, mut req: NewCustomer) -> Customer {
    let engine = &st.config.engine;
    let timezone = req.timezone.take();
    let home_country = req.home_country.take();
    let mut c = Customer {
        timezone: timezone.unwrap_or_else(|| engine.default_timezone.clone()),
        home_country: home_country.unwrap_or_else(|| engine.home_country.clone()),
        ..req.into_record()
    };
    if c.account_manager_id.is_none() && p.role == Role::AccountManager {
        c.account_manager_id = Some(p.id.clone());
    }
    c
}

#[utoipa::path(post, path = "/api/v1/customers", tag = "customers", request_body = NewCustomer,
    responses((status = 201, body = Customer), (status = 400, body = crate::http::error::ErrorBody)))]
pub async fn create(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(req): ApiJson<NewCustomer>,
) -> Result<Tagged<Customer>, ApiError> {
    require_operator_write(&p)?;
    let c = build(&st, &p, req);
    validate(&c, &st.config.crm.segments)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    check_parent(&mut tx, &p, c.parent_customer_id.as_deref()).await?;
    check_refs(&mut tx, &p, &c).await?;
    entity::insert(&mut tx, &c).await?;
    if !customer_visible(&mut tx, &p, &c.id).await? {
        return Err(ApiError::field(
            scope_field(&p),
            "would put the customer outside your data scope",
        ));
    }
    audit::commit_create(tx, &p, "customer", &c.id, Some(&c.id), &c).await?;
    Ok(Tagged::created(c.version, c))
}

crate::crud_handlers! { Customer in CrmState, tag "customers", routes read_routes;
    |p| from repo::scoped(&p), read p.require(Permission::ReadCustomers),
        write require_operator_write(&p);
    read "/api/v1/customers/{id}", (("id" = String, Path));
}

pub(crate) fn apply(mut c: Customer, patch: CustomerPatch) -> Customer {
    patch.apply_to(&mut c);
    c
}

/// The profile facts the engine reads, as `(field, value)`.
fn profile_facts(c: &Customer) -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("value_tier", c.value_tier.clone().into()),
        ("credit_class", c.credit_class.clone().into()),
        ("segment", c.segment.clone().into()),
        ("churn_score", c.churn_score.into()),
        ("language", c.language.clone().into()),
        ("timezone", c.timezone.clone().into()),
        ("home_country", c.home_country.clone().into()),
        ("arpu_cents", c.arpu_cents.into()),
    ]
}

#[utoipa::path(patch, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = String, Path),
        ("If-Match" = Option<String>, Header, description = "ETag of the version read")), request_body = CustomerPatch,
    responses((status = 200, body = Customer), (status = 404), (status = 412)))]
pub async fn update(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<CustomerPatch>,
) -> Result<Tagged<Customer>, ApiError> {
    require_operator_write(&p)?;
    let (mut tx, before): (_, Customer) =
        crud::begin_patch(&st.db, &headers, patch.version, repo::scoped(&p), &id).await?;
    let after = apply(before.clone(), patch);
    validate(&after, &st.config.crm.segments)?;
    if after.parent_customer_id != before.parent_customer_id {
        check_parent(&mut tx, &p, after.parent_customer_id.as_deref()).await?;
    }
    check_refs(&mut tx, &p, &after).await?;
    let after = crud::write(&mut tx, &before, after).await?;
    if !customer_visible(&mut tx, &p, &id).await? {
        return Err(ApiError::field(
            scope_field(&p),
            "would put the customer outside your data scope",
        ));
    }
    crud::commit(tx, &p, "update", &before, &after).await?;
    announce(&st, &before, &after).await;
    Ok(Tagged::ok(after.version, after))
}

/// After a committed change of a customer (a PATCH, an import): the engine hears of the
/// profile facts that moved, and crossing `crm.churn_threshold` opens a retention case.
pub(crate) async fn announce(st: &CrmState, before: &Customer, after: &Customer) {
    let diffs: Vec<FieldChange> = profile_facts(before)
        .into_iter()
        .zip(profile_facts(after))
        .filter(|((_, old), (_, new))| old != new)
        .map(|((field, old), (_, new))| FieldChange { field, old, new })
        .collect();
    changes::emit_for_customer(st, &after.id, diffs).await;
    crate::crm::retention::on_churn_score(st, &after.id, before.churn_score, after.churn_score)
        .await;
}

/// Deletes a customer, softly: the customer is made inactive and hidden from every read, its
/// lines are deleted with it (terminated, their numbers known to the engine no more), and the
/// audit trail keeps the last state. An enterprise with subsidiaries is refused: delete or
/// move them first.
#[utoipa::path(delete, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::http::error::ErrorBody), (status = 409, body = crate::http::error::ErrorBody), (status = 403)))]
pub async fn remove(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    require_operator_write(&p)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    let before: Customer = crud::load(&mut tx, repo::scoped(&p), &id).await?;
    let (children,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM customers WHERE parent_customer_id = $1 AND deleted_at IS NULL",
    )
    .bind(&id)
    .fetch_one(&mut *tx)
    .await?;
    if children > 0 {
        return Err(ApiError::Conflict(format!(
            "the enterprise has {children} subsidiaries; delete them or move them to another parent first"
        )));
    }
    let now = now_text();
    sqlx::query(
        "UPDATE customers SET deleted_at = $1, status = 'inactive', updated_at = $1, \
         version = version + 1 WHERE id = $2",
    )
    .bind(&now)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    // Subscriptions that are on no line end with the customer (the lines' go with them).
    sqlx::query(
        "UPDATE subscriptions SET status = 'terminated', \
         termination_date = COALESCE(termination_date, $1), updated_at = $1, \
         version = version + 1 WHERE customer_id = $2 AND status <> 'terminated'",
    )
    .bind(&now)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    let lines = crate::crm::lines::repo::soft_delete(&mut tx, "customer_id", &id, &now).await?;
    // Each line leaves its own record in the audit trail, as a line deleted alone does.
    for line in &lines {
        let change = audit::Change {
            entity: "line",
            entity_id: &line.id,
            action: "delete",
            customer_id: Some(&id),
            before: audit::snapshot(line),
            after: None,
        };
        audit::record(&mut tx, &p, change).await?;
    }
    let msisdns: Vec<String> = lines.into_iter().map(|l| l.msisdn).collect();
    audit::commit_delete(tx, &p, "customer", &id, Some(&id), &before).await?;
    changes::emit_for_lines(&st, &msisdns, vec![crate::crm::lines::no_longer_known()]).await;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
