//! Product offering SQL. Lists are stored as JSON text: they are read whole, never queried.

use serde::{Deserialize, Serialize};

use crate::store::{entity, Arg, Entity, Sql, StoreError};

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

/// Every offering: the catalog is not scoped.
pub fn all() -> Sql {
    Sql::new("product_offerings o WHERE 1=1")
}

/// By id or by code.
pub async fn get(
    conn: &mut sqlx::AnyConnection,
    key: &str,
) -> Result<Option<Offering>, StoreError> {
    entity::get(conn, all(), key).await
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

impl Entity for Offering {
    type Row = Row;
    const TABLE: &'static str = "product_offerings";
    const COLUMNS: &'static str = COLUMNS;
    const ID: &'static str = "o.id";
    const KIND: &'static str = "product_offering";
    const NOUN: &'static str = "offering";
    const UNIQUE: Option<&'static str> = Some("code");

    fn id(&self) -> &str {
        &self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn next_version(&mut self, now: String) {
        self.updated_at = now;
        self.version += 1;
    }
    fn push_key(sql: &mut Sql, key: &str) {
        sql.push(" AND (o.id = ")
            .bind(key)
            .push(" OR o.code = ")
            .bind(key)
            .push(")");
    }
    fn values(&self) -> Vec<(&'static str, Arg)> {
        vec![
            ("code", self.code.as_str().into()),
            ("name", self.name.as_str().into()),
            ("description", (&self.description).into()),
            ("offering_type", self.offering_type.as_str().into()),
            ("is_bundle", self.is_bundle.into()),
            ("bundled_offering_ids", json(&self.bundled_offering_ids)),
            ("price_cents", self.price_cents.into()),
            ("recurring_period", (&self.recurring_period).into()),
            ("market_segments", json(&self.market_segments)),
            ("channels", json(&self.channels)),
            ("lifecycle_status", self.lifecycle_status.as_str().into()),
            ("updated_at", self.updated_at.as_str().into()),
        ]
    }
    fn insert_only(&self) -> Vec<(&'static str, Arg)> {
        vec![("created_at", self.created_at.as_str().into())]
    }
}
