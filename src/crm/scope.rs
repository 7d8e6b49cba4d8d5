//! Data scope in SQL: lists, gets and updates all filter through here, so no filter or guessed
//! id reaches a customer outside the caller's scope.

use crate::auth::{Permission, Principal, Scope};
use crate::store::Sql;

/// Appends ` AND (...)` restricting customer alias `c` to the principal's scope, and to
/// customers not deleted (deletion is soft: the row stays for the audit trail).
pub fn push_customer_scope(sql: &mut Sql, p: &Principal, c: &str) {
    sql.push(&format!(" AND {c}.deleted_at IS NULL"));
    push_scope_with_deleted(sql, p, c);
}

/// The principal's scope alone, deleted customers included: for the audit trail, which
/// keeps what was deleted.
pub fn push_scope_with_deleted(sql: &mut Sql, p: &Principal, c: &str) {
    match &p.scope {
        Scope::All => {}
        Scope::Own(user) => {
            sql.push(&format!(" AND {c}.account_manager_id = "))
                .bind(user.as_str());
        }
        Scope::Team(team) => {
            sql.push(&format!(
                " AND {c}.account_manager_id IN (SELECT su.id FROM users su WHERE su.team_id = "
            ))
            .bind(team.as_str())
            .push(")");
        }
        Scope::Region(region) => {
            sql.push(&format!(" AND {c}.region_id = "))
                .bind(region.as_str());
        }
        Scope::Enterprise(ent) => {
            sql.push(&format!(" AND ({c}.id = "))
                .bind(ent.as_str())
                .push(&format!(" OR {c}.parent_customer_id = "))
                .bind(ent.as_str())
                .push(")");
        }
    }
}

/// True when the principal sees customer `id` (used inside write transactions).
pub async fn customer_visible(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let mut sql = Sql::new("SELECT COUNT(*) FROM customers c WHERE c.id = ");
    sql.bind(id);
    push_customer_scope(&mut sql, p, "c");
    let (n,): (i64,) = sql.query_as().fetch_one(conn).await?;
    Ok(n > 0)
}

/// 404 unless customer `id` exists and is in scope: out-of-scope ids look like missing ones.
pub async fn require_customer(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
) -> Result<(), crate::http::ApiError> {
    if customer_visible(conn, p, id).await? {
        Ok(())
    } else {
        Err(crate::http::ApiError::NotFound("customer".into()))
    }
}

/// [`require_customer`] for the customer a new record's body names: 400 on `customer_id`.
pub async fn require_named_customer(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    id: &str,
) -> Result<(), crate::http::ApiError> {
    require_customer(conn, p, id)
        .await
        .map_err(|_| crate::http::ApiError::field("customer_id", "no such customer"))
}

/// Writes to operator-owned records (customer attributes, create, delete and import, parties,
/// accounts, lines, products, loyalty): `WriteOperatorRecords`. Enterprise admins hold
/// `WriteCustomers` only to manage their enterprise's members, contacts and consents; with
/// this they could grant themselves points or change their own credit and billing data, so
/// they do not have it, and their 403 names it and the operator roles that do.
pub fn require_operator_write(p: &Principal) -> Result<(), crate::http::ApiError> {
    p.require(Permission::WriteOperatorRecords)
}
