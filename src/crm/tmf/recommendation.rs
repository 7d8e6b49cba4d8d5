//! TMF680 `queryProductRecommendation`: POST asks the engine for a party's current offers,
//! ranked; the answer is stored so GET by id returns it again. No PATCH (as in v4).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::communication::RULE_ID as RULE_ID_TMF681;
use super::{fields_of, list_bodies, visible_line, RelatedParty};
use crate::auth::{Permission, Principal};
use crate::crm::scope::{customer_visible, push_customer_scope};
use crate::crm::CrmState;
use crate::event::Msisdn;
use crate::http::{ApiError, ApiJson};
use crate::ports::Recommendation;
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
    /// A channel name: sms, portal, agent, email, app. Required in what we answer.
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The offering an item recommends. `id` is always the offer code (the key rules, campaigns
/// and `GET /api/v1/catalog/offerings/{code}` share); `href` is there when the catalog has it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductOfferingRef {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    pub name: String,
    #[serde(rename = "@referredType")]
    pub referred_type: String,
}

/// The recommended product by value (v4 requires `product` on every item): what taking the
/// offering would add, named after it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductValue {
    pub name: String,
    #[serde(rename = "@type")]
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecommendationItem {
    /// The engine's recommendation id (answer it through `/api/v1/recommendations/{id}/response`).
    pub id: String,
    /// 1 = best.
    pub priority: i64,
    pub product: ProductValue,
    #[serde(rename = "productOffering")]
    pub product_offering: ProductOfferingRef,
    #[serde(rename = "@type")]
    pub kind: String,
}

super::optional_fields! {
    /// TMF `TimePeriod`.
    pub struct TimePeriod { start_date_time, end_date_time }
}

/// The TMF680 resource. Asked for (POST), or made by the engine on its own (a proactive
/// offer: `instantSyncRecommendation` false, the id is the recommendation's).
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
    /// When it was made; until when its offers are valid, once known.
    #[serde(default)]
    pub valid_for: TimePeriod,
    pub channel: Vec<ChannelRef>,
    /// One party in v4 (rows stored before held a list).
    #[serde(serialize_with = "first_party", deserialize_with = "stored_party")]
    #[schema(value_type = RelatedParty)]
    pub related_party: Vec<RelatedParty>,
    pub recommendation_item: Vec<RecommendationItem>,
    #[serde(rename = "@type")]
    pub kind: String,
}

fn first_party<S: serde::Serializer>(v: &[RelatedParty], s: S) -> Result<S::Ok, S::Error> {
    v.first().serialize(s)
}

fn stored_party<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<RelatedParty>, D::Error> {
    Ok(super::one_or_many(d)?.unwrap_or_default())
}

/// POST body. Other TMF fields (`category`, `place`, `@type`, ...) are accepted and ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryProductRecommendationCreate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub recommendation_type: Option<String>,
    /// The customer (id) or subscriber (MSISDN) to recommend for. One object as in v4; a
    /// list is accepted and its first entry used.
    #[serde(default, deserialize_with = "super::one_or_many")]
    #[schema(value_type = Option<RelatedParty>)]
    pub related_party: Option<Vec<RelatedParty>>,
    /// Only offers for these channels (all when absent).
    pub channel: Option<Vec<ChannelRef>>,
}

/// Live offers: decided for a channel and not yet answered, expired or suppressed.
async fn offering(
    conn: &mut sqlx::AnyConnection,
    code: &str,
) -> Result<ProductOfferingRef, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT name FROM product_offerings WHERE code = $1")
            .bind(code)
            .fetch_optional(conn)
            .await?;
    let href = row
        .is_some()
        .then(|| format!("/api/v1/catalog/offerings/{code}"));
    let name = row.map_or_else(|| code.to_string(), |(n,)| n);
    Ok(ProductOfferingRef {
        id: code.to_string(),
        href,
        name,
        referred_type: "ProductOffering".into(),
    })
}

async fn item(
    conn: &mut sqlx::AnyConnection,
    r: &Recommendation,
    priority: i64,
) -> Result<RecommendationItem, sqlx::Error> {
    let product_offering = offering(conn, &r.offer_code).await?;
    Ok(RecommendationItem {
        id: r.id.clone(),
        priority,
        product: ProductValue {
            name: product_offering.name.clone(),
            kind: "Product".into(),
        },
        product_offering,
        kind: "RecommendationItem".into(),
    })
}

/// An offer the engine made on its own (a rule or campaign), as a TMF680 resource under its
/// own id: what `/hub` listeners are told about and what its `href` answers.
pub async fn from_engine(
    conn: &mut sqlx::AnyConnection,
    r: &Recommendation,
    customer_id: &str,
) -> Result<QueryProductRecommendation, sqlx::Error> {
    Ok(QueryProductRecommendation {
        href: format!("{BASE}/{}", r.id),
        id: r.id.clone(),
        name: Some(r.rule_id.clone()),
        description: None,
        recommendation_type: Some("proactive".into()),
        instant_sync_recommendation: false,
        state: "done".into(),
        valid_for: TimePeriod {
            start_date_time: Some(crate::ports::utc_ms::text(&r.decided_at)),
            end_date_time: Some(crate::ports::utc_ms::text(&r.expires_at)),
        },
        channel: vec![ChannelRef {
            id: Some(r.channel.clone()),
            name: None,
        }],
        related_party: vec![customer_party(customer_id)],
        recommendation_item: vec![item(conn, r, 1).await?],
        kind: "QueryProductRecommendation".into(),
    })
}

fn customer_party(customer_id: &str) -> RelatedParty {
    RelatedParty {
        id: Some(customer_id.to_string()),
        href: None,
        name: None,
        role: Some("customer".into()),
        referred_type: Some("Customer".into()),
    }
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
        .ok_or_else(|| ApiError::field("relatedParty.id", "required"))?;
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
    let mut recs = Vec::new();
    for m in &msisdns {
        let Ok(msisdn) = m.parse::<Msisdn>() else {
            continue;
        };
        // Through the decision stages again now, not only as decided earlier.
        let offers = st
            .offers
            .eligible_now(msisdn, None)
            .await
            .map_err(|e| ApiError::Unavailable(format!("engine: {e}")))?;
        recs.extend(
            offers
                .into_iter()
                .filter(|r| channels.is_empty() || channels.contains(&r.channel)),
        );
    }
    crate::pipeline::rank::sort(&mut recs);
    let mut seen = std::collections::HashSet::new();
    recs.retain(|r| seen.insert(r.offer_code.clone()));
    let mut items = Vec::with_capacity(recs.len());
    for (i, r) in recs.iter().enumerate() {
        items.push(item(&mut conn, r, i as i64 + 1).await?);
    }
    let valid_until = recs.iter().map(|r| r.expires_at).min();
    // The party as asked, completed so it is a valid v4 RelatedParty (`@referredType`).
    let mut party = parties[0].clone();
    if party.referred_type.is_none() {
        party.referred_type = Some(if msisdns.len() == 1 && msisdns[0] == party_id {
            "Subscriber".into()
        } else {
            "Customer".into()
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
        valid_for: TimePeriod {
            start_date_time: Some(now_text()),
            end_date_time: valid_until.map(|t| crate::ports::utc_ms::text(&t)),
        },
        channel: req.channel.unwrap_or_default(),
        related_party: vec![party],
        recommendation_item: items,
        kind: "QueryProductRecommendation".into(),
    };
    let created_at = now_text();
    drop(conn);
    Sql::insert(
        "tmf_recommendation_queries",
        vec![
            ("id", resource.id.as_str().into()),
            ("customer_id", customer_id.as_str().into()),
            (
                "body",
                serde_json::to_string(&resource).unwrap_or_default().into(),
            ),
            ("created_by", p.id.as_str().into()),
            ("created_at", created_at.as_str().into()),
            ("seq", next_seq().into()),
        ],
    )
    .execute(&mut *st.db.pool.acquire().await?)
    .await?;
    super::hub::recommendation_created(&st.db, &resource, &customer_id).await;
    Ok((StatusCode::CREATED, Json(resource)))
}

#[utoipa::path(get, path = "/tmf-api/recommendationManagement/v4/queryProductRecommendation",
    tag = "tmf680", params(("fields" = Option<String>, Query, description = "comma-separated attributes to return"),
        ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Vec<QueryProductRecommendation>, headers(("X-Total-Count" = i64), ("X-Result-Count" = i64)))))]
pub async fn list(
    State(st): State<CrmState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(HeaderMap, Json<serde_json::Value>), ApiError> {
    p.require(Permission::ReadRecommendations)?;
    let from = super::scoped("tmf_recommendation_queries", "q", &p);
    list_bodies::<QueryProductRecommendation>(&st.db, from, "q", &q).await
}

#[utoipa::path(get, path = "/tmf-api/recommendationManagement/v4/queryProductRecommendation/{id}",
    tag = "tmf680", params(("id" = String, Path), ("fields" = Option<String>, Query, description = "comma-separated attributes to return")),
    responses((status = 200, body = QueryProductRecommendation), (status = 404, body = super::error::TmfError)))]
pub async fn read(
    State(st): State<CrmState>,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require(Permission::ReadRecommendations)?;
    let from = super::scoped("tmf_recommendation_queries", "q", &p);
    let mut conn = st.db.pool.acquire().await?;
    let row: Option<(String,)> = super::find(&mut conn, "q.body", &from, "q", &id).await?;
    let found = match row.and_then(|(b,)| serde_json::from_str(&b).ok()) {
        Some(r) => Some(r),
        None => engine_made(&mut conn, &p, &id).await?,
    };
    let found = found.ok_or_else(|| ApiError::NotFound("queryProductRecommendation".into()))?;
    Ok(Json(fields_of(found, &q)?))
}

/// Rules whose "offers" are messages someone sent (TMF681, enterprise group SMS), not
/// recommendations: never TMF680 resources.
pub const NOT_OFFERS: [&str; 2] = [RULE_ID_TMF681, crate::crm::customers::group_sms::RULE_ID];

/// A recommendation the engine made on its own, if the caller sees its line's customer.
/// Messages ([`NOT_OFFERS`]) are not answered here.
async fn engine_made(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
) -> Result<Option<QueryProductRecommendation>, sqlx::Error> {
    let mut sql = Sql::new(
        "SELECT r.body, c.id FROM recommendations r JOIN lines l ON l.msisdn = r.msisdn \
         JOIN customers c ON c.id = l.customer_id WHERE r.id = ",
    );
    sql.bind(id).push(" AND r.service = 0");
    for rule in NOT_OFFERS {
        sql.push(" AND r.rule_id <> ").bind(rule);
    }
    push_customer_scope(&mut sql, p, "c");
    let row: Option<(String, String)> = sql.query_as().fetch_optional(&mut *conn).await?;
    let Some((body, customer_id)) = row else {
        return Ok(None);
    };
    let Ok(r) = serde_json::from_str::<Recommendation>(&body) else {
        return Ok(None);
    };
    from_engine(conn, &r, &customer_id).await.map(Some)
}
