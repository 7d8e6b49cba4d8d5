//! Customer SQL. Every read goes through the caller's scope.

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::scope::push_customer_scope;
use crate::store::{Arg, Sql};

/// A customer (TMF629): the role a party plays towards the operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Customer {
    pub id: String,
    pub name: String,
    /// individual | enterprise
    pub customer_type: String,
    /// The party (TMF632 individual or organization) engaged as this customer.
    pub party_id: Option<String>,
    /// Enterprise hierarchy: the group customer this one belongs to.
    pub parent_customer_id: Option<String>,
    pub account_manager_id: Option<String>,
    pub region_id: Option<String>,
    pub value_tier: String,
    /// A (best) to E.
    pub credit_class: String,
    /// Balance of the loyalty ledger; changed only through `/loyalty`.
    pub loyalty_points: i64,
    /// Churn propensity, 0 to 1.
    pub churn_score: f64,
    pub arpu_cents: i64,
    pub segment: String,
    /// For enterprises: the industry (government, education, finance, ...).
    pub industry: Option<String>,
    pub language: String,
    pub timezone: String,
    pub home_country: String,
    pub preferred_channel: Option<String>,
    /// prospect | active | suspended | inactive
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

pub const COLUMNS: &str = "c.id, c.name, c.customer_type, c.party_id, c.parent_customer_id, \
     c.account_manager_id, c.region_id, c.value_tier, c.credit_class, c.loyalty_points, \
     c.churn_score, c.arpu_cents, c.segment, c.industry, c.language, c.timezone, c.home_country, \
     c.preferred_channel, c.status, c.created_at, c.updated_at, c.version";

pub async fn get(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
) -> Result<Option<Customer>, sqlx::Error> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM customers c WHERE c.id = "));
    sql.bind(id);
    push_customer_scope(&mut sql, p, "c");
    sql.query_as().fetch_optional(conn).await
}

fn values(c: &Customer) -> Vec<(&'static str, Arg)> {
    vec![
        ("name", c.name.as_str().into()),
        ("customer_type", c.customer_type.as_str().into()),
        ("party_id", (&c.party_id).into()),
        ("parent_customer_id", (&c.parent_customer_id).into()),
        ("account_manager_id", (&c.account_manager_id).into()),
        ("region_id", (&c.region_id).into()),
        ("value_tier", c.value_tier.as_str().into()),
        ("credit_class", c.credit_class.as_str().into()),
        ("churn_score", c.churn_score.into()),
        ("arpu_cents", c.arpu_cents.into()),
        ("segment", c.segment.as_str().into()),
        ("industry", (&c.industry).into()),
        ("language", c.language.as_str().into()),
        ("timezone", c.timezone.as_str().into()),
        ("home_country", c.home_country.as_str().into()),
        ("preferred_channel", (&c.preferred_channel).into()),
        ("status", c.status.as_str().into()),
        ("updated_at", c.updated_at.as_str().into()),
    ]
}

pub async fn insert(conn: &mut sqlx::AnyConnection, c: &Customer) -> Result<(), sqlx::Error> {
    let mut v = values(c);
    v.extend([
        ("id", c.id.as_str().into()),
        ("loyalty_points", c.loyalty_points.into()),
        ("created_at", c.created_at.as_str().into()),
        ("version", c.version.into()),
    ]);
    Sql::insert("customers", v).execute(conn).await?;
    Ok(())
}

/// Writes `c` if the stored version is still `expected`; returns whether it did.
pub async fn update(
    conn: &mut sqlx::AnyConnection,
    c: &Customer,
    expected: i64,
) -> Result<bool, sqlx::Error> {
    let n = Sql::update_versioned("customers", &c.id, expected, values(c))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Direct subsidiaries of an enterprise that the caller can see.
pub async fn children(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
) -> Result<Vec<Customer>, sqlx::Error> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM customers c WHERE c.parent_customer_id = "
    ));
    sql.bind(id);
    push_customer_scope(&mut sql, p, "c");
    sql.push(" ORDER BY c.name, c.id LIMIT 200");
    sql.query_as().fetch_all(conn).await
}

/// Msisdns of a customer's lines, for `profile_change` events.
pub async fn msisdns(pool: &sqlx::AnyPool, customer_id: &str) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT msisdn FROM lines WHERE customer_id = $1 ORDER BY msisdn")
            .bind(customer_id)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|(m,)| m).collect())
}
