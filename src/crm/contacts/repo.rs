//! Contact medium SQL. Callers check the customer's scope first.

use serde::{Deserialize, Serialize};

use crate::http::ApiError;
use crate::store::{Arg, Sql};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContactMedium {
    pub id: String,
    pub customer_id: String,
    pub contact_name: Option<String>,
    /// phone | email | address
    pub medium_type: String,
    pub preferred: bool,
    pub phone_number: Option<String>,
    pub email_address: Option<String>,
    pub street1: Option<String>,
    pub city: Option<String>,
    pub post_code: Option<String>,
    pub country: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

/// As stored: flags are integers.
#[derive(sqlx::FromRow)]
pub struct Row {
    id: String,
    customer_id: String,
    contact_name: Option<String>,
    medium_type: String,
    preferred: i64,
    phone_number: Option<String>,
    email_address: Option<String>,
    street1: Option<String>,
    city: Option<String>,
    post_code: Option<String>,
    country: Option<String>,
    created_at: String,
    updated_at: String,
    version: i64,
}

impl From<Row> for ContactMedium {
    fn from(r: Row) -> Self {
        ContactMedium {
            id: r.id,
            customer_id: r.customer_id,
            contact_name: r.contact_name,
            medium_type: r.medium_type,
            preferred: r.preferred != 0,
            phone_number: r.phone_number,
            email_address: r.email_address,
            street1: r.street1,
            city: r.city,
            post_code: r.post_code,
            country: r.country,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

pub const COLUMNS: &str = "m.id, m.customer_id, m.contact_name, m.medium_type, m.preferred, \
     m.phone_number, m.email_address, m.street1, m.city, m.post_code, m.country, m.created_at, \
     m.updated_at, m.version";

pub async fn get(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
    id: &str,
) -> Result<ContactMedium, ApiError> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM contact_media m WHERE m.id = "
    ));
    sql.bind(id).push(" AND m.customer_id = ").bind(customer_id);
    sql.query_as::<Row>()
        .fetch_optional(conn)
        .await?
        .map(Into::into)
        .ok_or_else(|| ApiError::NotFound("contact".into()))
}

pub async fn for_customer(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<Vec<ContactMedium>, sqlx::Error> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM contact_media m WHERE m.customer_id = "
    ));
    sql.bind(customer_id).push(" ORDER BY m.created_at, m.id");
    let rows: Vec<Row> = sql.query_as().fetch_all(conn).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

fn values(m: &ContactMedium) -> Vec<(&'static str, Arg)> {
    vec![
        ("contact_name", (&m.contact_name).into()),
        ("preferred", m.preferred.into()),
        ("phone_number", (&m.phone_number).into()),
        ("email_address", (&m.email_address).into()),
        ("street1", (&m.street1).into()),
        ("city", (&m.city).into()),
        ("post_code", (&m.post_code).into()),
        ("country", (&m.country).into()),
        ("updated_at", m.updated_at.as_str().into()),
    ]
}

pub async fn insert(conn: &mut sqlx::AnyConnection, m: &ContactMedium) -> Result<(), sqlx::Error> {
    let mut v = values(m);
    v.extend([
        ("id", m.id.as_str().into()),
        ("customer_id", m.customer_id.as_str().into()),
        ("medium_type", m.medium_type.as_str().into()),
        ("created_at", m.created_at.as_str().into()),
        ("version", 1i64.into()),
    ]);
    Sql::insert("contact_media", v).execute(conn).await?;
    Ok(())
}

pub async fn update(
    conn: &mut sqlx::AnyConnection,
    m: &ContactMedium,
    expected: i64,
) -> Result<bool, sqlx::Error> {
    let n = Sql::update_versioned("contact_media", &m.id, expected, values(m))
        .execute(conn)
        .await?;
    Ok(n == 1)
}
