//! One recipe for versioned, audited entities over HTTP. A handler checks the caller's role,
//! builds the scoped `from` clause and calls one of these; they do the paging, the ETag, the
//! optimistic version (412 when the row moved on), the audit record in the same transaction
//! and the commit. Storage is `store::entity`; the database-to-HTTP error mapping stays in
//! `http::error`. State machines use the same pieces around their own transitions.

use axum::http::StatusCode;
use axum::Json;

use crate::access::Principal;
use crate::audit::{self, Change};
use crate::http::{check_version, ApiError, Tagged};
use crate::store::{entity, now_text, Db, Entity, ListParams, Page, Sql};

/// A write transaction: the one `store::begin_write` opens.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// One page of `from` as JSON.
pub async fn list<E: Entity>(
    db: &Db,
    from: Sql,
    params: &ListParams,
) -> Result<Json<Page<E>>, ApiError> {
    Ok(Json(entity::page(&db.pool, from, params).await?))
}

/// The record `key` names among `from`; 404 (named `E::NOUN`) when it is missing or out of
/// scope, which look the same.
pub async fn load<E: Entity>(
    conn: &mut sqlx::AnyConnection,
    from: Sql,
    key: &str,
) -> Result<E, ApiError> {
    entity::get(conn, from, key)
        .await?
        .ok_or_else(|| ApiError::NotFound(E::NOUN.into()))
}

/// [`load`], then 412 unless it is still at the version the client read.
pub async fn load_at<E: Entity>(
    conn: &mut sqlx::AnyConnection,
    from: Sql,
    key: &str,
    expected: i64,
) -> Result<E, ApiError> {
    let e: E = load(conn, from, key).await?;
    check_version(e.version(), expected)?;
    Ok(e)
}

/// A GET of one record, answered with its `ETag`.
pub async fn read<E: Entity>(db: &Db, from: Sql, key: &str) -> Result<Tagged<E>, ApiError> {
    let e: E = load(&mut *db.pool.acquire().await?, from, key).await?;
    Ok(Tagged::ok(e.version(), e))
}

/// Inserts `e`, records its creation beside it and commits: 201 with its `ETag`.
pub async fn create<E: Entity>(mut tx: Tx, actor: &Principal, e: E) -> Result<Tagged<E>, ApiError> {
    entity::insert(&mut tx, &e).await?;
    audit::commit_create(tx, actor, E::KIND, e.id(), e.customer_id(), &e).await?;
    Ok(Tagged::created(e.version(), e))
}

/// [`create`] without the commit, for a handler that writes several records in one
/// transaction (a bulk import's record): the row and its audit record.
pub async fn insert_in<E: Entity>(tx: &mut Tx, actor: &Principal, e: &E) -> Result<(), ApiError> {
    entity::insert(tx, e).await?;
    let change = Change {
        entity: E::KIND,
        entity_id: e.id(),
        action: "create",
        customer_id: e.customer_id(),
        before: None,
        after: audit::snapshot(e),
    };
    audit::record(tx, actor, change).await?;
    Ok(())
}

/// [`update`] without the commit: the next version written and audited in `tx`.
pub async fn update_in<E: Entity>(
    tx: &mut Tx,
    actor: &Principal,
    before: &E,
    after: E,
) -> Result<E, ApiError> {
    let after = write(tx, before, after).await?;
    let change = Change {
        entity: E::KIND,
        entity_id: after.id(),
        action: "update",
        customer_id: after.customer_id(),
        before: audit::snapshot(before),
        after: audit::snapshot(&after),
    };
    audit::record(tx, actor, change).await?;
    Ok(after)
}

/// Writes `after` as the next version of `before` (read with [`load_at`] in `tx`), records
/// both and commits.
pub async fn update<E: Entity>(
    tx: Tx,
    actor: &Principal,
    before: &E,
    after: E,
) -> Result<Tagged<E>, ApiError> {
    save(tx, actor, "update", before, after).await
}

/// [`update`] recorded as `action` (`transition`, ...) instead of `update`.
pub async fn save<E: Entity>(
    mut tx: Tx,
    actor: &Principal,
    action: &str,
    before: &E,
    after: E,
) -> Result<Tagged<E>, ApiError> {
    let after = write(&mut tx, before, after).await?;
    commit(tx, actor, action, before, &after).await?;
    Ok(Tagged::ok(after.version(), after))
}

/// The write half of an update, for handlers that check something between writing and
/// committing: `after` becomes the next version of `before`, or 412 if the row moved on.
pub async fn write<E: Entity>(tx: &mut Tx, before: &E, mut after: E) -> Result<E, ApiError> {
    after.next_version(now_text());
    audit::check_written(entity::update(tx, &after, before.version()).await?)?;
    Ok(after)
}

/// The other half: the change recorded with both versions, then the commit.
pub async fn commit<E: Entity>(
    mut tx: Tx,
    actor: &Principal,
    action: &str,
    before: &E,
    after: &E,
) -> Result<(), ApiError> {
    let change = Change {
        entity: E::KIND,
        entity_id: after.id(),
        action,
        customer_id: after.customer_id(),
        before: audit::snapshot(before),
        after: audit::snapshot(after),
    };
    audit::record(&mut tx, actor, change).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes `before` (read in `tx`), records its last state and commits: 204.
pub async fn delete<E: Entity>(
    mut tx: Tx,
    actor: &Principal,
    before: &E,
) -> Result<StatusCode, ApiError> {
    entity::delete::<E>(&mut tx, before.id()).await?;
    audit::commit_delete(
        tx,
        actor,
        E::KIND,
        before.id(),
        before.customer_id(),
        before,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
