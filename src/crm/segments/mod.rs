//! `/segments`: target groups for proactive marketing, defined by [`criteria`] over customer
//! facts and offer history. Members are the active lines of matching customers; counts and
//! previews only ever see the caller's data scope.

pub mod criteria;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use crate::auth::{Permission, Principal};
use crate::crm::scope::push_customer_scope;
use crate::crm::validate;
use crate::crm::CrmState;
use crate::crud;
use crate::http::{ApiError, ApiJson};
use crate::store::{entity, ListSpec, Page, Sql, StoreError};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<CrmState> {
    crud_routes()
        .routes(routes!(count))
        .routes(routes!(count_criteria))
        .routes(routes!(preview))
}

crate::record! {
    /// A segment as stored and answered.
    #[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
    pub struct Segment, new NewSegment, patch SegmentPatch {
        id: String,
        name: String { new, patch },
        description: Option<String> { new, patch some },
        /// The criteria document.
        #[schema(value_type = Criteria)]
        criteria: serde_json::Value {
            #[schema(value_type = Criteria)]
            new,
            #[schema(value_type = Option<Criteria>)]
            patch
        },
        created_by: String,
        created_at: String,
        updated_at: String,
        version: i64,
    }
}

#[derive(sqlx::FromRow)]
pub struct SegmentRow {
    id: String,
    name: String,
    description: Option<String>,
    criteria: String,
    created_by: String,
    created_at: String,
    updated_at: String,
    version: i64,
}

impl From<SegmentRow> for Segment {
    fn from(r: SegmentRow) -> Segment {
        Segment {
            id: r.id,
            name: r.name,
            description: r.description,
            criteria: serde_json::from_str(&r.criteria).unwrap_or(serde_json::Value::Null),
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

crate::entity! { Segment in "segments" as s, kind "segment", unique "name", row SegmentRow;
update name, description, criteria; stamp updated_at; insert created_by, created_at }

fn all() -> Sql {
    Sql::new("segments s WHERE 1=1")
}

const SPEC: ListSpec = crate::list_spec!(s; text name, created_by; sort created_at, name;
    default "s.created_at");

/// The criteria language, for the API document (the parser is [`criteria`]).
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(example = json!({"all": [
    {"field": "value_tier", "op": "in", "value": ["gold", "platinum"]},
    {"field": "churn_score", "op": ">=", "value": 0.5},
    {"any": [{"field": "region_id", "op": "=", "value": "r1"},
             {"not": {"field": "plan", "op": "=", "value": "basic_39"}}]},
    {"field": "tenure_months", "op": ">=", "value": 12},
    {"history": "accepted_offers_90d", "op": ">=", "value": 1}
]}))]
pub enum Criteria {
    /// A test of one field of the customer or line.
    Field {
        /// value_tier | segment | customer_type | region_id | account_manager_id | team_id |
        /// credit_class | industry | language | home_country | preferred_channel |
        /// customer_status | plan (text); churn_score (number); arpu_cents | loyalty_points |
        /// tenure_months (whole numbers)
        field: String,
        /// `=`, `!=`, `in`, `not_in` (a list of up to 100 values), and for numbers `>`, `>=`,
        /// `<`, `<=`
        op: String,
        value: serde_json::Value,
    },
    /// A count of the line's answers to offers in a trailing window.
    History {
        /// accepted_offers_30d | accepted_offers_90d | declined_offers_30d | declined_offers_90d
        history: String,
        /// `=`, `!=`, `>`, `>=`, `<`, `<=`
        op: String,
        value: i64,
    },
    /// Every criterion holds (at most 5 levels deep, 100 tests in all).
    All {
        #[schema(no_recursion)]
        all: Vec<Criteria>,
    },
    /// At least one holds.
    Any {
        #[schema(no_recursion)]
        any: Vec<Criteria>,
    },
    /// It does not hold.
    Not {
        #[schema(no_recursion)]
        not: Box<Criteria>,
    },
}

/// Criteria not saved as a segment, to be counted as they stand (the form being edited).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountCriteria {
    #[schema(value_type = Criteria)]
    pub criteria: serde_json::Value,
}

/// The size of criteria not saved, within the caller's scope.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CriteriaCount {
    /// Distinct matching customers.
    pub customers: i64,
    /// Their active lines: the msisdns a campaign would target.
    pub lines: i64,
}

/// Segment sizes within the caller's scope.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SegmentCount {
    pub segment_id: String,
    /// Distinct matching customers.
    pub customers: i64,
    /// Their active lines: the msisdns a campaign would target.
    pub lines: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Member {
    pub line_id: String,
    pub msisdn: String,
    pub customer_id: String,
    pub customer_name: String,
}

/// A page of a segment's members (active lines in your scope), in line-id order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Preview {
    pub segment_id: String,
    pub items: Vec<Member>,
    /// Matching lines in all pages.
    pub total: i64,
    pub limit: i64,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// Reading segments and campaigns: the people who plan, approve or measure them.
pub fn require_marketing_read(p: &Principal) -> Result<(), ApiError> {
    p.require(Permission::ReadCampaigns)
}

pub async fn get_segment(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> Result<Option<Segment>, StoreError> {
    entity::get(conn, all(), id).await
}

/// `lines l JOIN customers c ... WHERE` active lines matching `node`, in `p`'s scope.
pub fn members_from(p: &Principal, node: &criteria::Node) -> Sql {
    let mut sql =
        Sql::new("lines l JOIN customers c ON c.id = l.customer_id WHERE l.status = 'active' AND ");
    criteria::push(&mut sql, node, chrono::Utc::now());
    push_customer_scope(&mut sql, p, "c");
    sql
}

/// One page of members after line id `after` (keyset paging, stable under inserts).
pub async fn member_page(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    node: &criteria::Node,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Member>, sqlx::Error> {
    let from = members_from(p, node);
    let mut sql = Sql::new(
        "SELECT l.id AS line_id, l.msisdn, c.id AS customer_id, c.name AS customer_name FROM ",
    );
    sql.push(&from.text);
    sql.args = from.args;
    if let Some(a) = after {
        sql.push(" AND l.id > ").bind(a);
    }
    sql.push(" ORDER BY l.id LIMIT ").bind(limit);
    sql.query_as().fetch_all(conn).await
}

fn parse_stored(s: &Segment) -> Result<criteria::Node, ApiError> {
    criteria::parse(&s.criteria, "criteria")
}

impl crud::Editable for Segment {
    type Patch = SegmentPatch;

    fn validate(&self) -> Result<(), ApiError> {
        validate::text("name", &self.name, 200)?;
        validate::opt_text("description", self.description.as_deref(), 2000)?;
        parse_stored(self).map(|_| ())
    }

    /// A campaign keeps its segment: one any campaign targets stays.
    async fn check_remove(&self, conn: &mut AnyConnection, _: &Principal) -> Result<(), ApiError> {
        let mut sql = Sql::new("SELECT id, name FROM campaigns WHERE segment_id = ");
        sql.bind(self.id.as_str());
        sql.push(" ORDER BY name, id");
        let targeting: Vec<(String, String)> = sql.query_as().fetch_all(conn).await?;
        if !targeting.is_empty() {
            return Err(ApiError::Conflict(still_targeted(&self.name, &targeting)));
        }
        Ok(())
    }
}

impl crud::Creatable for Segment {
    type New = NewSegment;

    fn build(req: NewSegment, p: &Principal) -> Result<Segment, ApiError> {
        let a = Segment {
            created_by: p.id.clone(),
            ..req.into_record()
        };
        crud::Editable::validate(&a)?;
        Ok(a)
    }
}

crate::crud_handlers! { Segment in CrmState, tag "segments", routes crud_routes;
    |p| from all(), read require_marketing_read(&p), write p.require(Permission::ManageCampaigns);
    list "/api/v1/segments", SPEC,
        (("name" = Option<String>, Query), ("created_by" = Option<String>, Query));
    create "/api/v1/segments", NewSegment, responses((status = 400), (status = 409));
    read "/api/v1/segments/{id}", (("id" = String, Path));
    update "/api/v1/segments/{id}", SegmentPatch, (("id" = String, Path));
    /// Deletes a segment no campaign targets; the audit record keeps its last content. A campaign
    /// keeps its segment for its whole life (its plan, launch and results name that audience), so
    /// a segment any campaign targets is refused with 409 naming the campaigns, and nothing is
    /// deleted. `If-Match` with the ETag read, when sent, must still be the stored version (412).
    remove "/api/v1/segments/{id}", (("id" = String, Path)), if_match,
        responses((status = 403, body = crate::http::error::ErrorBody),
        (status = 404, body = crate::http::error::ErrorBody),
        (status = 409, body = crate::http::error::ErrorBody),
        (status = 412, body = crate::http::error::ErrorBody));
}

/// Why a segment stays: the campaigns that target it, by name and id (the first ten).
fn still_targeted(segment: &str, campaigns: &[(String, String)]) -> String {
    const NAMED: usize = 10;
    let mut names: Vec<String> = campaigns
        .iter()
        .take(NAMED)
        .map(|(id, name)| format!("\"{name}\" ({id})"))
        .collect();
    if campaigns.len() > NAMED {
        names.push(format!("{} more", campaigns.len() - NAMED));
    }
    format!(
        "segment \"{segment}\" is the audience of {} campaign(s): {}; a campaign keeps its \
         segment, so it cannot be deleted",
        campaigns.len(),
        names.join(", ")
    )
}

/// Distinct customers and their active lines matching `node`, in `p`'s scope.
async fn count_members(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    node: &criteria::Node,
) -> Result<(i64, i64), ApiError> {
    let from = members_from(p, node);
    let mut sql = Sql::new("SELECT COUNT(DISTINCT c.id), COUNT(*) FROM ");
    sql.push(&from.text);
    sql.args = from.args;
    Ok(sql.query_as().fetch_one(conn).await?)
}

#[utoipa::path(post, path = "/api/v1/segments/{id}/count", tag = "segments", params(("id" = String, Path)),
    responses((status = 200, body = SegmentCount), (status = 404)))]
pub async fn count(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<SegmentCount>, ApiError> {
    require_marketing_read(&p)?;
    let mut conn = st.db.pool.acquire().await?;
    let s: Segment = crud::load(&mut conn, all(), &id).await?;
    let node = parse_stored(&s)?;
    let (customers, lines) = count_members(&mut conn, &p, &node).await?;
    Ok(Json(SegmentCount {
        segment_id: id,
        customers,
        lines,
    }))
}

/// Counts criteria not saved as a segment, as a saved one is counted (in the caller's scope):
/// the console shows a segment's size while it is being edited. The criteria are checked as
/// a create checks them (400 naming the field, e.g. `criteria.all[1].value`).
#[utoipa::path(post, path = "/api/v1/segments/count", tag = "segments", request_body = CountCriteria,
    responses((status = 200, body = CriteriaCount), (status = 400, body = crate::http::error::ErrorBody),
        (status = 403, body = crate::http::error::ErrorBody)))]
pub async fn count_criteria(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(req): ApiJson<CountCriteria>,
) -> Result<Json<CriteriaCount>, ApiError> {
    require_marketing_read(&p)?;
    let node = criteria::parse(&req.criteria, "criteria")?;
    let mut conn = st.db.pool.acquire().await?;
    let (customers, lines) = count_members(&mut conn, &p, &node).await?;
    Ok(Json(CriteriaCount { customers, lines }))
}

#[utoipa::path(get, path = "/api/v1/segments/{id}/preview", tag = "segments",
    params(("id" = String, Path), ("limit" = Option<i64>, Query, description = "1 to 500, default 50"),
        ("after" = Option<String>, Query, description = "the `next_after` of the page before")),
    responses((status = 200, body = Preview), (status = 400, body = crate::http::error::ErrorBody), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn preview(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Preview>, ApiError> {
    require_marketing_read(&p)?;
    for k in q.keys() {
        if k != "limit" && k != "after" {
            return Err(ApiError::field(
                k.as_str(),
                "is not a parameter of preview (limit, after)",
            ));
        }
    }
    let limit = match q.get("limit") {
        None => 50,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| ApiError::field("limit", "must be an integer between 1 and 500"))?,
    };
    let mut conn = st.db.pool.acquire().await?;
    let s: Segment = crud::load(&mut conn, all(), &id).await?;
    let node = parse_stored(&s)?;
    let items = member_page(
        &mut conn,
        &p,
        &node,
        q.get("after").map(String::as_str),
        limit,
    )
    .await?;
    let from = members_from(&p, &node);
    let mut sql = Sql::new("SELECT COUNT(*) FROM ");
    sql.push(&from.text);
    sql.args = from.args;
    let (total,): (i64,) = sql.query_as().fetch_one(&mut *conn).await?;
    let next_after = (items.len() as i64 == limit)
        .then(|| items.last().map(|m| m.line_id.clone()))
        .flatten();
    Ok(Json(Preview {
        segment_id: id,
        items,
        total,
        limit,
        next_after,
    }))
}
