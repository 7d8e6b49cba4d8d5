//! Subscriber line SQL, scoped through the owning customer.

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::scope::push_customer_scope;
use crate::store::{entity, Entity, Sql, StoreError};

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

pub const COLUMNS: &str = <Line as Entity>::COLUMNS;

pub fn scoped(p: &Principal) -> Sql {
    let mut sql =
        Sql::new("lines l JOIN customers c ON c.id = l.customer_id WHERE l.deleted_at IS NULL");
    push_customer_scope(&mut sql, p, "c");
    sql
}

/// By id, or by msisdn when `key` is all digits.
pub async fn get(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    key: &str,
) -> Result<Option<Line>, StoreError> {
    entity::get(conn, scoped(p), key).await
}

/// The deleted line that holds `msisdn`, if there is one (see `lines::reclaim`).
pub async fn deleted_with(
    conn: &mut sqlx::AnyConnection,
    msisdn: &str,
) -> Result<Option<Line>, StoreError> {
    let mut sql = Sql::new("lines l WHERE l.msisdn = ");
    sql.bind(msisdn);
    entity::removed(conn, sql).await
}

pub async fn for_customer(
    conn: &mut sqlx::AnyConnection,
    customer_id: &str,
) -> Result<Vec<Line>, sqlx::Error> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM lines l WHERE l.deleted_at IS NULL AND l.customer_id = "
    ));
    sql.bind(customer_id).push(" ORDER BY l.msisdn");
    sql.query_as().fetch_all(conn).await
}

/// Deletes lines softly (kept for the audit trail and the engine's history, skipped by every
/// read) and terminates them: the line `id`, or every line of a customer when `by` is
/// `customer_id`. Returns their numbers. `by` is a literal from the caller.
pub async fn soft_delete(
    conn: &mut sqlx::AnyConnection,
    by: &'static str,
    value: &str,
    now: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(&format!(
        "SELECT msisdn FROM lines WHERE {by} = $1 AND deleted_at IS NULL ORDER BY msisdn"
    ))
    .bind(value)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "UPDATE lines SET deleted_at = $1, status = 'terminated', updated_at = $1, \
         version = version + 1 WHERE {by} = $2 AND deleted_at IS NULL"
    ))
    .bind(now)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(rows.into_iter().map(|(m,)| m).collect())
}

crate::entity! { Line in "lines" as l, kind "line", unique "msisdn", owner customer_id,
key by_id_or_msisdn, soft deleted_at;
update msisdn, account_id, plan, status, imsi, activated_at;
stamp updated_at; insert customer_id, created_at }

/// Ids are UUIDs, so never all digits: an all-digit key is an msisdn.
fn by_id_or_msisdn(sql: &mut Sql, key: &str) {
    let col = if key.bytes().all(|b| b.is_ascii_digit()) {
        " AND l.msisdn = "
    } else {
        " AND l.id = "
    };
    sql.push(col).bind(key);
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
