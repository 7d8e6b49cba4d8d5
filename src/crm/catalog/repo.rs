//! Product offering SQL. Lists are stored as JSON text: they are read whole, never queried.

use serde::{Deserialize, Serialize};

use crate::store::{Arg, Sql};

/// A product offering (TMF620 ProductOffering): a plan, add-on or bundle with its price.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Offering {
    pub id: String,
    /// Stable code rules and campaigns refer to (`offer_code`).
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    /// plan | addon | device | service
    pub offering_type: String,
    pub is_bundle: bool,
    /// For bundles: the offerings it contains.
    pub bundled_offering_ids: Vec<String>,
    pub price_cents: i64,
    /// month | year, or absent for a one-off price.
    pub recurring_period: Option<String>,
    pub market_segments: Vec<String>,
    /// Sales channels it may be offered through.
    pub channels: Vec<String>,
    /// in_design | active | retired
    pub lifecycle_status: String,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

#[derive(sqlx::FromRow)]
pub struct Row {
    id: String,
    code: String,
    name: String,
    description: Option<String>,
    offering_type: String,
    is_bundle: i64,
    bundled_offering_ids: String,
    price_cents: i64,
    recurring_period: Option<String>,
    market_segments: String,
    channels: String,
    lifecycle_status: String,
    created_at: String,
    updated_at: String,
    version: i64,
}

fn list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

impl From<Row> for Offering {
    fn from(r: Row) -> Offering {
        Offering {
            id: r.id,
            code: r.code,
            name: r.name,
            description: r.description,
            offering_type: r.offering_type,
            is_bundle: r.is_bundle != 0,
            bundled_offering_ids: list(&r.bundled_offering_ids),
            price_cents: r.price_cents,
            recurring_period: r.recurring_period,
            market_segments: list(&r.market_segments),
            channels: list(&r.channels),
            lifecycle_status: r.lifecycle_status,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

pub const COLUMNS: &str = "o.id, o.code, o.name, o.description, o.offering_type, o.is_bundle, \
     o.bundled_offering_ids, o.price_cents, o.recurring_period, o.market_segments, o.channels, \
     o.lifecycle_status, o.created_at, o.updated_at, o.version";

/// By id or by code.
pub async fn get(
    conn: &mut sqlx::AnyConnection,
    key: &str,
) -> Result<Option<Offering>, sqlx::Error> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM product_offerings o WHERE o.id = "
    ));
    sql.bind(key).push(" OR o.code = ").bind(key);
    Ok(sql
        .query_as::<Row>()
        .fetch_optional(conn)
        .await?
        .map(Into::into))
}

pub async fn count_existing(
    conn: &mut sqlx::AnyConnection,
    ids: &[String],
) -> Result<usize, sqlx::Error> {
    let mut n = 0;
    for id in ids {
        let (c,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM product_offerings WHERE id = $1")
            .bind(id.as_str())
            .fetch_one(&mut *conn)
            .await?;
        n += c as usize;
    }
    Ok(n)
}

fn json(v: &[String]) -> Arg {
    Arg::Text(serde_json::to_string(v).unwrap_or_else(|_| "[]".into()))
}

pub fn values(o: &Offering) -> Vec<(&'static str, Arg)> {
    vec![
        ("code", o.code.as_str().into()),
        ("name", o.name.as_str().into()),
        ("description", (&o.description).into()),
        ("offering_type", o.offering_type.as_str().into()),
        ("is_bundle", o.is_bundle.into()),
        ("bundled_offering_ids", json(&o.bundled_offering_ids)),
        ("price_cents", o.price_cents.into()),
        ("recurring_period", (&o.recurring_period).into()),
        ("market_segments", json(&o.market_segments)),
        ("channels", json(&o.channels)),
        ("lifecycle_status", o.lifecycle_status.as_str().into()),
        ("updated_at", o.updated_at.as_str().into()),
    ]
}

pub async fn insert(conn: &mut sqlx::AnyConnection, o: &Offering) -> Result<(), sqlx::Error> {
    let mut v = values(o);
    v.extend([
        ("id", o.id.as_str().into()),
        ("created_at", o.created_at.as_str().into()),
        ("version", 1i64.into()),
    ]);
    Sql::insert("product_offerings", v).execute(conn).await?;
    Ok(())
}
