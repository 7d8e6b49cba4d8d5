//! TM Forum Open APIs (v4) over the engine: TMF680 `queryProductRecommendation` and TMF681
//! `communicationMessage`, each with its `/hub` listeners. Served under `/tmf-api`, not
//! `/api/v1`; resources follow the v4 shapes (`id`, `href`, `@type`, camelCase) and errors the
//! TMF `Error` shape (`error.rs`). The party or receiver decides the data scope: out-of-scope
//! parties answer 404 like missing ones. `docs/tmf.md` says what of the spec is supported.

pub mod communication;
pub mod error;
pub mod hub;
pub mod recommendation;

use axum::http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::scope::push_customer_scope;
use crate::crm::CrmState;
use crate::http::ApiError;
use crate::store::{Db, Sql};
use utoipa_axum::router::OpenApiRouter;

pub fn router() -> OpenApiRouter<CrmState> {
    OpenApiRouter::new()
        .merge(recommendation::router())
        .merge(communication::router())
        .merge(hub::router())
        // Only these routes: the rest of the API keeps its own error body.
        .layer(axum::middleware::map_response(error::to_tmf))
}

/// A TMF object of optional text attributes, each left out of the answer when absent
/// (camelCase, as TMF names them).
macro_rules! optional_fields {
    ($(#[$sm:meta])* pub struct $name:ident { $($(#[$fm:meta])* $f:ident),+ $(,)? }) => {
        $(#[$sm])*
        #[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            $($(#[$fm])*
            #[serde(skip_serializing_if = "Option::is_none")]
            pub $f: Option<String>,)+
        }
    };
}
pub(crate) use optional_fields;

/// A reference to a party (TMF `RelatedParty`; `id` and `@referredType` are required in
/// what we answer, optional in what we are sent so a missing one is answered by name).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelatedParty {
    /// A customer id or an MSISDN.
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(rename = "@referredType", skip_serializing_if = "Option::is_none")]
    pub referred_type: Option<String>,
}

/// `name` / `value` pairs (TMF `Characteristic`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Characteristic {
    pub name: String,
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
}

/// v4 has one `relatedParty` object on a QueryProductRecommendation; earlier clients (and rows
/// stored before) sent a list. Both read as a list, the first entry being the party.
pub fn one_or_many<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        Many(Vec<T>),
        One(T),
    }
    Ok(match Option::<OneOrMany<T>>::deserialize(d)? {
        None => None,
        Some(OneOrMany::Many(v)) => Some(v),
        Some(OneOrMany::One(x)) => Some(vec![x]),
    })
}

/// `?fields=a,b`: only those top-level attributes, plus `id`, `href` and `@type`, which TMF
/// always returns so the answer stays addressable. Unknown names are ignored.
pub fn select_fields(
    v: serde_json::Value,
    q: &std::collections::HashMap<String, String>,
) -> serde_json::Value {
    let Some(fields) = q.get("fields").filter(|f| !f.trim().is_empty()) else {
        return v;
    };
    let wanted: Vec<&str> = fields.split(',').map(str::trim).collect();
    let keep = |obj: serde_json::Map<String, serde_json::Value>| {
        obj.into_iter()
            .filter(|(k, _)| {
                matches!(k.as_str(), "id" | "href" | "@type") || wanted.contains(&k.as_str())
            })
            .collect::<serde_json::Map<_, _>>()
    };
    match v {
        serde_json::Value::Object(o) => serde_json::Value::Object(keep(o)),
        serde_json::Value::Array(a) => a
            .into_iter()
            .map(|x| match x {
                serde_json::Value::Object(o) => serde_json::Value::Object(keep(o)),
                other => other,
            })
            .collect(),
        other => other,
    }
}

/// `?limit=&offset=` of TMF lists (default 50, max 500).
pub fn paging(q: &std::collections::HashMap<String, String>) -> Result<(i64, i64), ApiError> {
    let int = |name: &str, default: i64, range: std::ops::RangeInclusive<i64>| {
        q.get(name).map_or(Ok(default), |v| {
            v.parse::<i64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| ApiError::field(name, "out of range or not an integer"))
        })
    };
    Ok((int("limit", 50, 1..=500)?, int("offset", 0, 0..=i64::MAX)?))
}

/// `v` as JSON, only the attributes `?fields=` asks for ([`select_fields`]).
pub fn fields_of<T: Serialize>(
    v: T,
    q: &std::collections::HashMap<String, String>,
) -> Result<serde_json::Value, ApiError> {
    let body = serde_json::to_value(v).map_err(ApiError::internal)?;
    Ok(select_fields(body, q))
}

/// `SELECT {what} FROM {from}`, keeping `from`'s arguments.
fn select(what: &str, from: &Sql) -> Sql {
    let mut sql = Sql::new(&format!("SELECT {what} FROM "));
    sql.push(&from.text);
    sql.args = from.args.clone();
    sql
}

/// A TMF list of stored resources: the JSON `{alias}.body` of the rows `from` (`... WHERE`,
/// scope applied) selects, newest `seq` first, paged by `?limit=&offset=`, with the count
/// headers and `?fields=`. Rows that no longer read as `T` are left out.
pub async fn list_bodies<T: Serialize + serde::de::DeserializeOwned>(
    db: &Db,
    from: Sql,
    alias: &str,
    q: &std::collections::HashMap<String, String>,
) -> Result<(HeaderMap, axum::Json<serde_json::Value>), ApiError> {
    let (limit, offset) = paging(q)?;
    let (total,): (i64,) = select("COUNT(*)", &from)
        .query_as()
        .fetch_one(&db.pool)
        .await?;
    let mut sql = select(&format!("{alias}.body"), &from);
    sql.push(&format!(" ORDER BY {alias}.seq DESC LIMIT "))
        .bind(limit)
        .push(" OFFSET ")
        .bind(offset);
    let rows: Vec<(String,)> = sql.query_as().fetch_all(&db.pool).await?;
    let items: Vec<T> = rows
        .into_iter()
        .filter_map(|(b,)| serde_json::from_str(&b).ok())
        .collect();
    let headers = count_headers(total, items.len());
    Ok((headers, axum::Json(fields_of(items, q)?)))
}

/// The row `{alias}.id = id` among `from` (scope applied): `what` of it, if any.
pub async fn find<R>(
    conn: &mut sqlx::AnyConnection,
    what: &str,
    from: &Sql,
    alias: &str,
    id: &str,
) -> Result<Option<R>, sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let mut sql = select(what, from);
    sql.push(&format!(" AND {alias}.id = ")).bind(id);
    sql.query_as().fetch_optional(conn).await
}

/// `table alias JOIN customers c ... WHERE 1=1` plus the caller's scope: the stored TMF
/// resources of customers the caller sees.
pub fn scoped(table: &str, alias: &str, p: &Principal) -> Sql {
    let mut sql = Sql::new(&format!(
        "{table} {alias} JOIN customers c ON c.id = {alias}.customer_id WHERE 1=1"
    ));
    push_customer_scope(&mut sql, p, "c");
    sql
}

/// `X-Total-Count` / `X-Result-Count`, as TMF lists answer.
pub fn count_headers(total: i64, returned: usize) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-total-count", HeaderValue::from(total));
    h.insert("x-result-count", HeaderValue::from(returned as i64));
    h
}

/// A line the caller may see: `(msisdn, customer_id)`.
pub async fn visible_line(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    msisdn: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let mut sql = Sql::new(
        "SELECT l.msisdn, l.customer_id FROM lines l JOIN customers c ON c.id = l.customer_id \
         WHERE l.deleted_at IS NULL AND l.msisdn = ",
    );
    sql.bind(msisdn);
    push_customer_scope(&mut sql, p, "c");
    sql.query_as().fetch_optional(conn).await
}
