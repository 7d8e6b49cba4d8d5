//! The audit trail: every CRM change is recorded in the same transaction as the change itself,
//! so there is no write without its record. Users and sessions (`auth`) are audited the same
//! way, so this sits below both; reading the trail is a CRM endpoint (`crm::audit_log`).

use serde::Serialize;

use crate::access::Principal;
use crate::http::ApiError;
use crate::store::{new_id, next_seq, now_text, Sql};

/// One change to record.
pub struct Change<'a> {
    pub entity: &'a str,
    pub entity_id: &'a str,
    /// `create`, `update`, `delete`, or a domain verb (`earn`, `transition`, ...).
    pub action: &'a str,
    /// The customer concerned, which decides who may read the record later.
    pub customer_id: Option<&'a str>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// 412 unless a versioned write touched its row, i.e. the row was still at the version the
/// client read.
pub fn check_written(touched: bool) -> Result<(), ApiError> {
    if touched {
        Ok(())
    } else {
        Err(ApiError::PreconditionFailed)
    }
}

/// The tail of a versioned update once its write succeeded: the change recorded with both
/// snapshots, in the same transaction, then the commit.
pub async fn commit_update<T: Serialize>(
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    actor: &Principal,
    entity: &str,
    entity_id: &str,
    customer_id: Option<&str>,
    before: &T,
    after: &T,
) -> Result<(), ApiError> {
    record(
        &mut tx,
        actor,
        Change {
            entity,
            entity_id,
            action: "update",
            customer_id,
            before: snapshot(before),
            after: snapshot(after),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The tail of a create once its insert succeeded: the new record audited, then the commit.
pub async fn commit_create<T: Serialize>(
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    actor: &Principal,
    entity: &str,
    entity_id: &str,
    customer_id: Option<&str>,
    created: &T,
) -> Result<(), ApiError> {
    let change = Change {
        entity,
        entity_id,
        action: "create",
        customer_id,
        before: None,
        after: snapshot(created),
    };
    record(&mut tx, actor, change).await?;
    tx.commit().await?;
    Ok(())
}

/// The tail of a delete once its row is gone: the last state audited, then the commit.
pub async fn commit_delete<T: Serialize>(
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    actor: &Principal,
    entity: &str,
    entity_id: &str,
    customer_id: Option<&str>,
    deleted: &T,
) -> Result<(), ApiError> {
    let change = Change {
        entity,
        entity_id,
        action: "delete",
        customer_id,
        before: snapshot(deleted),
        after: None,
    };
    record(&mut tx, actor, change).await?;
    tx.commit().await?;
    Ok(())
}

/// Serializes a record for the `before`/`after` columns.
pub fn snapshot<T: Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

pub async fn record(
    conn: &mut sqlx::AnyConnection,
    actor: &Principal,
    c: Change<'_>,
) -> Result<(), sqlx::Error> {
    Sql::insert("audit_log", row(actor, c))
        .execute(conn)
        .await?;
    Ok(())
}

/// The audit row of a change, for [`record`] or a many-row insert.
pub fn row(actor: &Principal, c: Change<'_>) -> Vec<(&'static str, crate::store::Arg)> {
    let text = |v: Option<serde_json::Value>| v.map(|v| v.to_string());
    vec![
        ("id", new_id().into()),
        ("at", now_text().into()),
        ("actor_id", actor.id.as_str().into()),
        ("actor_name", actor.name.as_str().into()),
        ("entity", c.entity.into()),
        ("entity_id", c.entity_id.into()),
        ("action", c.action.into()),
        ("customer_id", c.customer_id.map(str::to_string).into()),
        ("before_json", text(c.before).into()),
        ("after_json", text(c.after).into()),
        ("seq", next_seq().into()),
    ]
}
