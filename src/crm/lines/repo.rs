//! Subscriber line SQL, scoped through the owning customer.

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::scope::push_customer_scope;
use crate::store::{Arg, Sql};

/// A subscriber line: the msisdn the engine knows, tied to a customer and a billing account.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Line {
    pub id: String,
    /// E.164 without `+`.
    pub msisdn: String,
    pub customer_id: String,
    pub account_id: Option<String>,
    /// The tariff plan code; the engine reads it as `profile.plan`.
    pub plan: String,
    /// active | suspended | terminated
    pub status: String,
    pub imsi: Option<String>,
    pub activated_at: String,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

pub const COLUMNS: &str = "l.id, l.msisdn, l.customer_id, l.account_id, l.plan, l.status, l.imsi, \
     l.activated_at, l.created_at, l.updated_at, l.version";

pub fn scoped(p: &Principal) -> Sql {
    let mut sql = Sql::new("lines l JOIN customers c ON c.id = l.customer_id WHERE 1=1");
    push_customer_scope(&mut sql, p, "c");
    sql
}

/// By id, or by msisdn when `key` is all digits (ids are UUIDs, so never all digits).
pub async fn get(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    key: &str,
) -> Result<Option<Line>, sqlx::Error> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM "));
    let from = scoped(p);
    sql.push(&from.text);
    sql.args = from.args;
    if key.bytes().all(|b| b.is_ascii_digit()) {
        sql.push(" AND l.msisdn = ").bind(key);
    } else {
        sql.push(" AND l.id = ").bind(key);
    }
    sql.query_as().fetch_optional(conn).await
}

pub async fn for_customer(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<Vec<Line>, sqlx::Error> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM lines l WHERE l.customer_id = "
    ));
    sql.bind(customer_id).push(" ORDER BY l.msisdn");
    sql.query_as().fetch_all(conn).await
}

pub fn values(l: &Line) -> Vec<(&'static str, Arg)> {
    vec![
        ("msisdn", l.msisdn.as_str().into()),
        ("account_id", (&l.account_id).into()),
        ("plan", l.plan.as_str().into()),
        ("status", l.status.as_str().into()),
        ("imsi", (&l.imsi).into()),
        ("activated_at", l.activated_at.as_str().into()),
        ("updated_at", l.updated_at.as_str().into()),
    ]
}

pub async fn insert(conn: &mut sqlx::AnyConnection, l: &Line) -> Result<(), sqlx::Error> {
    let mut v = values(l);
    v.extend([
        ("id", l.id.as_str().into()),
        ("customer_id", l.customer_id.as_str().into()),
        ("created_at", l.created_at.as_str().into()),
        ("version", 1i64.into()),
    ]);
    Sql::insert("lines", v).execute(conn).await?;
    Ok(())
}

/// The account must belong to the line's customer.
pub async fn account_belongs(
    conn: &mut sqlx::AnyConnection,
    account_id: &str,
    customer_id: &str,
) -> Result<bool, sqlx::Error> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM accounts WHERE id = $1 AND customer_id = $2")
            .bind(account_id)
            .bind(customer_id)
            .fetch_one(conn)
            .await?;
    Ok(n > 0)
}
