//! Subscriber line SQL, scoped through the owning customer.

use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::crm::customers::repo::owned;
use crate::store::{entity, Entity, Sql, StoreError};

crate::record! {
    /// A subscriber line: the msisdn the engine knows, tied to a customer and a billing account.
    #[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
    pub struct Line, new NewLine, patch LinePatch {
        id: String,
        /// E.164 without `+`.
        msisdn: String { new },
        customer_id: String { new },
        account_id: Option<String> { new, patch null },
        /// The tariff plan code; the engine reads it as `profile.plan`.
        plan: String { new, patch },
        /// active | suspended | terminated
        status: String { new opt = "active".into(), patch },
        imsi: Option<String> { new, patch null },
        activated_at: String {
            /// Defaults to now.
            new opt
        },
        created_at: String,
        updated_at: String,
        version: i64,
    }
}

pub const COLUMNS: &str = <Line as Entity>::COLUMNS;

/// By id, or by msisdn when `key` is all digits.
pub async fn get(
    conn: &mut sqlx::AnyConnection,
    p: &Principal,
    key: &str,
) -> Result<Option<Line>, StoreError> {
    entity::get(conn, owned::<Line>(p), key).await
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

/// Deletes lines softly (kept for the audit trail and the engine's history, skipped by every
/// read) and terminates them: the line `id`, or every line of a customer when `by` is
/// `customer_id`. What goes with a line goes with it: its subscriptions are terminated and
/// its number leaves every enterprise group it was enrolled in (softly too; a restored line
/// does not bring them back, they are added again). Returns the lines as they were, for the
/// audit trail. `by` is a literal from the caller.
pub async fn soft_delete(
    conn: &mut sqlx::AnyConnection,
    by: &'static str,
    value: &str,
    now: &str,
) -> Result<Vec<Line>, sqlx::Error> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM lines l WHERE l.deleted_at IS NULL AND l.{by} = "
    ));
    sql.bind(value).push(" ORDER BY l.msisdn");
    let lines: Vec<Line> = sql.query_as().fetch_all(&mut *conn).await?;
    let live = format!("SELECT {{col}} FROM lines WHERE {by} = $2 AND deleted_at IS NULL");
    // Each binds the time ($1) and the value the lines are picked by ($2).
    let statements = [
        format!(
            "UPDATE subscriptions SET status = 'terminated', \
             termination_date = COALESCE(termination_date, $1), updated_at = $1, \
             version = version + 1 WHERE status <> 'terminated' AND line_id IN ({})",
            live.replace("{col}", "id")
        ),
        format!(
            "UPDATE enterprise_members SET deleted_at = $1, updated_at = $1, \
             version = version + 1 WHERE deleted_at IS NULL AND msisdn IN ({})",
            live.replace("{col}", "msisdn")
        ),
        format!(
            "UPDATE lines SET deleted_at = $1, status = 'terminated', updated_at = $1, \
             version = version + 1 WHERE {by} = $2 AND deleted_at IS NULL"
        ),
    ];
    for statement in statements {
        sqlx::query(&statement)
            .bind(now)
            .bind(value)
            .execute(&mut *conn)
            .await?;
    }
    Ok(lines)
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
