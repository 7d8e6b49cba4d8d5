//! Product offering SQL. Lists are stored as JSON text: they are read whole, never queried.

use serde::{Deserialize, Serialize};

use crate::store::{entity, Entity, Sql, StoreError};

crate::record! {
    /// A product offering (TMF620 ProductOffering): a plan, add-on or bundle with its price.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
    pub struct Offering, new NewOffering, patch OfferingPatch {
        id: String,
        /// Stable code rules and campaigns refer to (`offer_code`).
        code: String { new },
        name: String { new, patch },
        description: Option<String> { new, patch null },
        /// plan | addon | device | service
        offering_type: String { new },
        is_bundle: bool { new default },
        /// For bundles: the offerings it contains.
        bundled_offering_ids: Vec<String> { new default, patch },
        price_cents: i64 { new, patch },
        /// month | year, or absent for a one-off price.
        recurring_period: Option<String> { new, patch null },
        market_segments: Vec<String> { new default, patch },
        /// Sales channels it may be offered through.
        channels: Vec<String> { new default, patch },
        /// in_design | active | retired
        lifecycle_status: String { new opt = "active".into(), patch },
        created_at: String,
        updated_at: String,
        version: i64,
    }
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

pub const COLUMNS: &str = <Offering as Entity>::COLUMNS;

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

/// By code only (an import's natural key).
pub async fn by_code(
    conn: &mut sqlx::AnyConnection,
    code: &str,
) -> Result<Option<Offering>, StoreError> {
    let mut from = all();
    from.push(" AND o.code = ").bind(code);
    entity::get(conn, from, code).await
}

/// Codes of the plans a line may be on (type `plan`, not retired), sorted.
pub async fn plan_codes(conn: &mut sqlx::AnyConnection) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT code FROM product_offerings WHERE offering_type = 'plan' \
         AND lifecycle_status <> 'retired' ORDER BY code",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(c,)| c).collect())
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

crate::entity! { Offering in "product_offerings" as o, kind "product_offering",
noun "offering", unique "code", row Row, key by_id_or_code;
update code, name, description, offering_type, is_bundle, bundled_offering_ids, price_cents,
    recurring_period, market_segments, channels, lifecycle_status;
stamp updated_at; insert created_at }

fn by_id_or_code(sql: &mut Sql, key: &str) {
    sql.push(" AND (o.id = ")
        .bind(key)
        .push(" OR o.code = ")
        .bind(key)
        .push(")");
}
