//! `/retention-cases`: retention (维系挽留) of customers at risk. Cases open from churn
//! warnings (挽留预警: a churn score update crossing `crm.churn_threshold`, see
//! [`open_for_churn`]), complaints recorded by staff ([`open_for_complaint`]) or long
//! inactivity the engine detected ([`open_for_inactivity`]); they carry
//! tasks, visits, call-backs (客户回访) and care records as activities, and end retained or lost.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::auth::{Permission, Principal};
use crate::crm::customers::repo::owned;
use crate::crm::notices::{self, NewNotice};
use crate::crm::scope::require_customer;
use crate::crm::validate;
use crate::crm::workflow::{self, Children};
use crate::crm::CrmState;
use crate::crud;
use crate::http::Tagged;
use crate::http::{ApiError, ApiJson};
use crate::store::{check_ref, entity, new_id, now_text, Entity, ListSpec, Page};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<CrmState> {
    crud_routes()
        .routes(routes!(create))
        .routes(routes!(list_activities, add_activity))
}

crate::record! {
    /// A retention case.
    #[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
    pub struct RetentionCase, new NewCase, patch CasePatch {
        id: String,
        customer_id: String { new },
        /// churn_score | complaint | inactivity | manual
        trigger_kind: String {
            /// complaint | inactivity | manual | churn_score
            new
        },
        /// The churn score that opened it, for churn warnings.
        churn_score: Option<f64>,
        /// open | closed
        status: String,
        /// pending | retained | lost
        outcome: String {
            /// retained or lost closes the case; pending reopens it.
            patch
        },
        owner_id: Option<String> {
            /// Defaults to the customer's account manager.
            new,
            patch null
        },
        summary: String { new, patch },
        closed_at: Option<String>,
        created_at: String,
        updated_at: String,
        version: i64,
    }
}

/// A task, visit, call-back or care record of a case.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Activity {
    pub id: String,
    pub case_id: String,
    pub customer_id: String,
    /// task | visit | call_back | care
    pub kind: String,
    pub note: String,
    pub due_at: Option<String>,
    /// 0 or 1.
    pub done: i64,
    pub actor_id: String,
    pub at: String,
}

crate::entity! { RetentionCase in "retention_cases" as k, kind "retention_case",
noun "retention case", owner customer_id;
update status, outcome, owner_id, summary, closed_at;
stamp updated_at; insert customer_id, trigger_kind, churn_score, created_at }

pub const COLUMNS: &str = <RetentionCase as Entity>::COLUMNS;
workflow::logged! { Activity in "retention_activities" as x, kind "retention_activity",
owner customer_id; id, case_id, customer_id, kind, note, due_at, done, actor_id, at }

pub const TRIGGERS: &[&str] = &["churn_score", "complaint", "inactivity", "manual"];
pub const OUTCOMES: &[&str] = &["pending", "retained", "lost"];
pub const ACTIVITY_KINDS: &[&str] = &["task", "visit", "call_back", "care"];

async fn open_case_of(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM retention_cases WHERE customer_id = $1 AND status = 'open' LIMIT 1",
    )
    .bind(customer_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.0))
}

fn new_case(
    customer_id: &str,
    trigger: &str,
    score: Option<f64>,
    owner: Option<String>,
    summary: String,
) -> RetentionCase {
    let now = now_text();
    RetentionCase {
        id: new_id(),
        customer_id: customer_id.into(),
        trigger_kind: trigger.into(),
        churn_score: score,
        status: "open".into(),
        outcome: "pending".into(),
        owner_id: owner,
        summary,
        closed_at: None,
        created_at: now.clone(),
        updated_at: now,
        version: 1,
    }
}

/// The churn warning hook, called after a customer update committed: when the score went from
/// below `crm.churn_threshold` to at or above it and the customer has no open case, opens one
/// owned by the account manager and tells them. Failures are logged (the update stands).
pub async fn on_churn_score(st: &CrmState, customer_id: &str, old: f64, new: f64) {
    let threshold = st.config.crm.churn_threshold;
    if old >= threshold || new < threshold {
        return;
    }
    if let Err(e) = open_for_churn(st, customer_id, new).await {
        tracing::warn!(error = %e, customer_id, "could not open a retention case");
    }
}

/// Opens a `churn_score` case unless one is open; returns its id when it opened one.
pub async fn open_for_churn(
    st: &CrmState,
    customer_id: &str,
    score: f64,
) -> Result<Option<String>, crate::store::StoreError> {
    let warning = Warning {
        kind: "churn_score",
        score: Some(score),
        summary: format!("Churn warning: score {score:.2}"),
        title: "Churn warning: retention case opened".into(),
        body: format!("The customer's churn score rose to {score:.2}."),
    };
    open_automatic(st, customer_id, warning, "churn-warning").await
}

/// Opens a `complaint` case for a complaint recorded by staff, unless one is open.
pub async fn open_for_complaint(
    st: &CrmState,
    customer_id: &str,
    subject: &str,
) -> Result<Option<String>, crate::store::StoreError> {
    let warning = Warning {
        kind: "complaint",
        score: None,
        summary: format!("Complaint: {subject}"),
        title: "Complaint: retention case opened".into(),
        body: format!("The customer complained: {subject}"),
    };
    open_automatic(st, customer_id, warning, "complaint-warning").await
}

/// Rules whose offers mean "this subscriber went quiet" (long standby, inactivity): their
/// decisions open inactivity cases. The engine detects the silence; the CRM follows up.
pub const INACTIVITY_RULES: &[&str] = &["standby-winback"];

/// Opens inactivity cases for decisions of [`INACTIVITY_RULES`] stored since the last run;
/// returns how many cases it opened. Where it got to is kept in `job_marks`.
pub async fn open_for_inactivity(st: &CrmState) -> Result<usize, crate::store::StoreError> {
    const MARK: &str = "retention_inactivity";
    let (from,): (i64,) =
        sqlx::query_as("SELECT COALESCE(MAX(value), 0) FROM job_marks WHERE name = $1")
            .bind(MARK)
            .fetch_one(&st.db.pool)
            .await?;
    let placeholders: Vec<String> = (0..INACTIVITY_RULES.len())
        .map(|i| format!("${}", i + 2))
        .collect();
    let sql = format!(
        "SELECT l.customer_id, r.msisdn, r.seq FROM recommendations r JOIN lines l ON l.msisdn = r.msisdn \
         WHERE r.seq > $1 AND r.rule_id IN ({}) ORDER BY r.seq",
        placeholders.join(",")
    );
    let mut q = sqlx::query_as::<_, (String, String, i64)>(&sql).bind(from);
    for r in INACTIVITY_RULES {
        q = q.bind(*r);
    }
    let rows = q.fetch_all(&st.db.pool).await?;
    let mut opened = 0;
    let mut last = from;
    for (customer_id, msisdn, seq) in rows {
        let warning = Warning {
            kind: "inactivity",
            score: None,
            summary: format!("Long inactivity on line {msisdn}"),
            title: "Inactivity: retention case opened".into(),
            body: format!("Line {msisdn} was inactive for a long time; a win-back offer went out."),
        };
        if open_automatic(st, &customer_id, warning, "inactivity-warning")
            .await?
            .is_some()
        {
            opened += 1;
        }
        last = seq;
    }
    if last > from {
        let mut tx = crate::store::begin_write(&st.db).await?;
        sqlx::query("DELETE FROM job_marks WHERE name = $1")
            .bind(MARK)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO job_marks (name, value) VALUES ($1, $2)")
            .bind(MARK)
            .bind(last)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(opened)
}

/// What opened an automatic case and what its owner is told.
struct Warning {
    kind: &'static str,
    score: Option<f64>,
    summary: String,
    title: String,
    body: String,
}

async fn open_automatic(
    st: &CrmState,
    customer_id: &str,
    w: Warning,
    actor: &str,
) -> Result<Option<String>, crate::store::StoreError> {
    let mut tx = crate::store::begin_write(&st.db).await?;
    if open_case_of(&mut tx, customer_id).await?.is_some() {
        return Ok(None);
    }
    let owner = crate::crm::opportunities::account_manager(&mut tx, customer_id).await?;
    let k = new_case(customer_id, w.kind, w.score, owner.clone(), w.summary);
    entity::insert(&mut tx, &k).await?;
    if let Some(user) = &owner {
        notices::notify(
            &mut tx,
            NewNotice {
                user_id: user,
                kind: "retention",
                title: w.title,
                body: w.body,
                entity: "retention_case",
                entity_id: &k.id,
                customer_id: Some(customer_id),
            },
        )
        .await?;
    }
    let change = workflow::change("create", None, &k);
    crate::audit::record(&mut tx, &notices::system(actor), change).await?;
    tx.commit().await?;
    Ok(Some(k.id))
}

const SPEC: ListSpec = crate::list_spec!(k; text customer_id, status, outcome, trigger_kind, owner_id;
    sort created_at, updated_at; default "k.created_at DESC");

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewActivity {
    /// task | visit | call_back | care
    pub kind: String,
    pub note: String,
    pub due_at: Option<String>,
    pub done: Option<bool>,
}

crate::crud_handlers! { RetentionCase in CrmState, tag "retention", routes crud_routes;
    |p| from owned::<RetentionCase>(&p), read p.require(Permission::ManageRetention),
        write p.require(Permission::ManageRetention);
    list "/api/v1/retention-cases", SPEC, (("customer_id" = Option<String>, Query),
        ("status" = Option<String>, Query), ("outcome" = Option<String>, Query),
        ("trigger_kind" = Option<String>, Query), ("owner_id" = Option<String>, Query));
    read "/api/v1/retention-cases/{id}", (("id" = String, Path));
    /// Records the outcome (retained / lost close the case) or changes owner and summary.
    update "/api/v1/retention-cases/{id}", CasePatch, (("id" = String, Path));
}

/// Opens a case by hand (complaint, inactivity, ...). 409 when the customer has an open one.
#[utoipa::path(post, path = "/api/v1/retention-cases", tag = "retention", request_body = NewCase,
    responses((status = 201, body = RetentionCase), (status = 400), (status = 409)))]
pub async fn create(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(req): ApiJson<NewCase>,
) -> Result<Tagged<RetentionCase>, ApiError> {
    p.require(Permission::ManageRetention)?;
    validate::one_of("trigger_kind", &req.trigger_kind, TRIGGERS)?;
    validate::text("summary", &req.summary, 2000)?;
    let mut tx = crate::store::begin_write(&st.db).await?;
    require_customer(&mut tx, &p, &req.customer_id)
        .await
        .map_err(|_| ApiError::field("customer_id", "no such customer"))?;
    if let Some(open) = open_case_of(&mut tx, &req.customer_id).await? {
        return Err(ApiError::Conflict(format!(
            "the customer already has open retention case {open}"
        )));
    }
    check_ref(&mut tx, "users", "owner_id", req.owner_id.as_deref()).await?;
    let owner = match req.owner_id {
        Some(o) => Some(o),
        None => crate::crm::opportunities::account_manager(&mut tx, &req.customer_id).await?,
    };
    let k = new_case(
        &req.customer_id,
        &req.trigger_kind,
        None,
        owner,
        req.summary,
    );
    crud::create(tx, &p, k).await
}

/// The checks run in the update's transaction, in the order a hand-written update made them.
impl crud::Editable for RetentionCase {
    type Patch = CasePatch;

    fn apply(&mut self, patch: CasePatch) {
        if let Some(o) = patch.outcome {
            if o == "pending" {
                self.status = "open".into();
                self.closed_at = None;
            } else {
                self.status = "closed".into();
                self.closed_at = Some(now_text());
            }
            self.outcome = o;
        }
        crate::apply_patch!(patch => self; summary, owner_id);
    }

    async fn check_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        _: &Principal,
        before: &RetentionCase,
    ) -> Result<(), ApiError> {
        validate::one_of("outcome", &self.outcome, OUTCOMES)?;
        let reopened = self.outcome == "pending" && before.status != "open";
        if reopened && open_case_of(conn, &before.customer_id).await?.is_some() {
            return Err(ApiError::Conflict(
                "the customer has another open retention case".into(),
            ));
        }
        validate::text("summary", &self.summary, 2000)?;
        if self.owner_id != before.owner_id {
            check_ref(conn, "users", "owner_id", self.owner_id.as_deref()).await?;
        }
        Ok(())
    }
}

/// A case's activities, newest first.
const ACTIVITIES: Children = Children::log::<Activity>("case_id", "x.seq DESC", "x.id");

workflow::children_route! {
    /// The case's activities, newest first, a page at a time.
    #[utoipa::path(get, path = "/api/v1/retention-cases/{id}/activities", tag = "retention",
        params(("id" = String, Path), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
        responses((status = 200, body = Page<Activity>), (status = 400, body = crate::http::error::ErrorBody), (status = 404)))]
    list_activities: Activity as Activity, of RetentionCase, in ACTIVITIES;
    |p| p.require(Permission::ManageRetention), owned::<RetentionCase>(&p)
}

/// Records a task, visit, call-back (回访) or care record.
#[utoipa::path(post, path = "/api/v1/retention-cases/{id}/activities", tag = "retention", params(("id" = String, Path)),
    request_body = NewActivity, responses((status = 201, body = Activity), (status = 404)))]
pub async fn add_activity(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NewActivity>,
) -> Result<(axum::http::StatusCode, Json<Activity>), ApiError> {
    p.require(Permission::ManageRetention)?;
    workflow::check_note(ACTIVITY_KINDS, &req.kind, &req.note)?;
    let due_at = req
        .due_at
        .as_deref()
        .map(|d| validate::day_or_time("due_at", d))
        .transpose()?;
    workflow::add_to(
        &st.db,
        &p,
        owned::<RetentionCase>(&p),
        &id,
        |k: &RetentionCase| Activity {
            id: new_id(),
            case_id: k.id.clone(),
            customer_id: k.customer_id.clone(),
            kind: req.kind,
            note: req.note,
            due_at,
            done: req.done.unwrap_or(false) as i64,
            actor_id: p.id.clone(),
            at: now_text(),
        },
    )
    .await
}
