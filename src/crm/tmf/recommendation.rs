//! TMF680 `queryProductRecommendation`: POST asks the engine for a party's current offers,
//! ranked; the answer is stored so GET by id returns it again. No PATCH (as in v4).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{count_headers, paging, visible_line, RelatedParty};
use crate::auth::{Permission, Principal};
use crate::crm::scope::{customer_visible, push_customer_scope};
use crate::crm::CrmState;
use crate::event::Msisdn;
use crate::http::{ApiError, ApiJson};
use crate::ports::{Recommendation, Status};
use crate::store::{new_id, next_seq, now_text, Sql};
use utoipa_axum::{router::OpenApiRouter, routes};

pub const BASE: &str = "/tmf-api/recommendationManagement/v4/queryProductRecommendation";

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read))
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChannelRef {
    /// A channel name: sms, portal, agent, email, app.
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductOfferingRef {
    pub id: String,
    pub name: String,
    #[serde(rename = "@referredType")]
    pub referred_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecommendationItem {
    /// The engine's recommendation id (answer it through `/api/v1/recommendations/{id}/response`).
    pub id: String,
    /// 1 = best.
    pub priority: i64,
    #[serde(rename = "productOffering")]
    pub product_offering: ProductOfferingRef,
    #[serde(rename = "@type")]
    pub kind: String,
}

/// The TMF680 resource.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryProductRecommendation {
    pub id: String,
    pub href: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommendation_type: Option<String>,
    pub instant_sync_recommendation: bool,
    /// Always `done`: the engine answers synchronously.
    pub state: String,
    pub creation_date: String,
    pub channel: Vec<ChannelRef>,
    pub related_party: Vec<RelatedParty>,
    pub recommendation_item: Vec<RecommendationItem>,
    #[serde(rename = "@type")]
    pub kind: String,
}

/// POST body. Other TMF fields (`category`, `place`, `@type`, ...) are accepted and ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryProductRecommendationCreate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub recommendation_type: Option<String>,
    /// The customer (id) or subscriber (MSISDN) to recommend for; the first entry is used.
    pub related_party: Option<Vec<RelatedParty>>,
    /// Only offers for these channels (all when absent).
    pub channel: Option<Vec<ChannelRef>>,
}

/// Live offers: decided for a channel and not yet answered, expired or suppressed.
fn current(r: &Recommendation, now: chrono::DateTime<chrono::Utc>) -> bool {
    matches!(
        r.status,
        Status::Proposed | Status::Queued | Status::Deferred | Status::Sent | Status::Delivered
    ) && r.expires_at.with_timezone(&chrono::Utc) > now
}

async fn offering(
    conn: &mut sqlx::AnyConnection,
    code: &str,
) -> Result<ProductOfferingRef, sqlx::Error> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT id, name FROM product_offerings WHERE code = $1")
            .bind(code)
            .fetch_optional(conn)
            .await?;
    let (id, name) = row.unwrap_or_else(|| (code.to_string(), code.to_string()));
    Ok(ProductOfferingRef {
        id,
        name,
        referred_type: "ProductOffering".into(),
    })
}

#[utoipa::path(post, path = "/tmf-api/recommendationManagement/v4/queryProductRecommendation",
    tag = "tmf680", request_body = QueryProductRecommendationCreate,
    responses((status = 201, body = QueryProductRecommendation), (status = 400), (status = 404, description = "party unknown or out of scope"),
        (status = 503)))]
pub async fn create(
    State(st): State<CrmState>,
    p: Principal,
    ApiJson(req): ApiJson<QueryProductRecommendationCreate>,
) -> Result<(StatusCode, Json<QueryProductRecommendation>), ApiError> {
    p.require(Permission::ReadRecommendations)?;
    let parties = req
        .related_party
        .clone()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::field("relatedParty", "required: the customer or MSISDN"))?;
    let party_id = parties[0]
        .id
        .clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::field("relatedParty[0].id", "required"))?;
    let mut channels = Vec::new();
    for (i, c) in req.channel.iter().flatten().enumerate() {
        let name =
            c.id.clone()
                .or_else(|| c.name.clone())
                .ok_or_else(|| ApiError::field(format!("channel[{i}].id"), "required"))?;
        crate::crm::validate::one_of(
            &format!("channel[{i}].id"),
            &name,
            &["sms", "email", "portal", "agent", "app"],
        )?;
        channels.push(name);
    }
    let mut conn = st.db.pool.acquire().await?;
    // An MSISDN names one line; anything else is a customer id (all their lines).
    let (customer_id, msisdns) = match visible_line(&mut conn, &p, &party_id).await? {
        Some((m, c)) => (c, vec![m]),
        None => {
            if !customer_visible(&mut conn, &p, &party_id).await? {
                return Err(ApiError::NotFound("relatedParty".into()));
            }
            let lines: Vec<(String,)> = sqlx::query_as(
                "SELECT msisdn FROM lines WHERE customer_id = $1 AND status = 'active' ORDER BY msisdn LIMIT 20",
            )
            .bind(&party_id)
            .fetch_all(&mut *conn)
            .await?;
            (party_id.clone(), lines.into_iter().map(|(m,)| m).collect())
        }
    };
    let now = chrono::Utc::now();
    let mut recs = Vec::new();
    for m in &msisdns {
        let Ok(msisdn) = m.parse::<Msisdn>() else {
            continue;
        };
        let offers = st
            .offers
            .offers_for(msisdn, 50)
            .await
            .map_err(|e| ApiError::Unavailable(format!("engine: {e}")))?;
        recs.extend(
            offers
                .into_iter()
                .filter(|r| current(r, now))
                .filter(|r| channels.is_empty() || channels.contains(&r.channel)),
        );
    }
    recs.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.decided_at.cmp(&a.decided_at))
    });
    let mut seen = std::collections::HashSet::new();
    recs.retain(|r| seen.insert(r.offer_code.clone()));
    let mut items = Vec::with_capacity(recs.len());
    for (i, r) in recs.iter().enumerate() {
        items.push(RecommendationItem {
            id: r.id.clone(),
            priority: i as i64 + 1,
            product_offering: offering(&mut conn, &r.offer_code).await?,
            kind: "RecommendationItem".into(),
        });
    }
    let id = new_id();
    let resource = QueryProductRecommendation {
        href: format!("{BASE}/{id}"),
        id,
        name: req.name,
        description: req.description,
        recommendation_type: req.recommendation_type,
        instant_sync_recommendation: true,
        state: "done".into(),
        creation_date: now_text(),
        channel: req.channel.unwrap_or_default(),
        related_party: parties,
        recommendation_item: items,
        kind: "QueryProductRecommendation".into(),
    };
    drop(conn);
    Sql::insert(
        "tmf_recommendation_queries",
        vec![
            ("id", resource.id.as_str().into()),
            ("customer_id", customer_id.into()),
            (
                "body",
                serde_json::to_string(&resource).unwrap_or_default().into(),
            ),
            ("created_by", p.id.as_str().into()),
            ("created_at", resource.creation_date.as_str().into()),
            ("seq", next_seq().into()),
        ],
    )
    .execute(&mut *st.db.pool.acquire().await?)
    .await?;
    Ok((StatusCode::CREATED, Json(resource)))
}

fn scoped(p: &Principal) -> Sql {
    let mut sql =
        Sql::new("tmf_recommendation_queries q JOIN customers c ON c.id = q.customer_id WHERE 1=1");
    push_customer_scope(&mut sql, p, "c");
    sql
}

#[utoipa::path(get, path = "/tmf-api/recommendationManagement/v4/queryProductRecommendation",
    tag = "tmf680", params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Vec<QueryProductRecommendation>)))]
pub async fn list(
    State(st): State<CrmState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(HeaderMap, Json<Vec<QueryProductRecommendation>>), ApiError> {
    p.require(Permission::ReadRecommendations)?;
    let (limit, offset) = paging(&q)?;
    let from = scoped(&p);
    let mut count = Sql::new("SELECT COUNT(*) FROM ");
    count.push(&from.text);
    count.args = from.args.clone();
    let (total,): (i64,) = count.query_as().fetch_one(&st.db.pool).await?;
    let mut sql = Sql::new("SELECT q.body FROM ");
    sql.push(&from.text);
    sql.args = from.args;
    sql.push(" ORDER BY q.seq DESC LIMIT ")
        .bind(limit)
        .push(" OFFSET ")
        .bind(offset);
    let rows: Vec<(String,)> = sql.query_as().fetch_all(&st.db.pool).await?;
    let items: Vec<QueryProductRecommendation> = rows
        .into_iter()
        .filter_map(|(b,)| serde_json::from_str(&b).ok())
        .collect();
    Ok((count_headers(total, items.len()), Json(items)))
}

#[utoipa::path(get, path = "/tmf-api/recommendationManagement/v4/queryProductRecommendation/{id}",
    tag = "tmf680", params(("id" = String, Path)),
    responses((status = 200, body = QueryProductRecommendation), (status = 404)))]
pub async fn read(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<QueryProductRecommendation>, ApiError> {
    p.require(Permission::ReadRecommendations)?;
    let from = scoped(&p);
    let mut sql = Sql::new("SELECT q.body FROM ");
    sql.push(&from.text);
    sql.args = from.args;
    sql.push(" AND q.id = ").bind(id.as_str());
    let row: Option<(String,)> = sql.query_as().fetch_optional(&st.db.pool).await?;
    row.and_then(|(b,)| serde_json::from_str(&b).ok())
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("queryProductRecommendation".into()))
}
