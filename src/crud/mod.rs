//! One recipe for versioned, audited entities over HTTP. A handler checks the caller's role,
//! builds the scoped `from` clause and calls one of these; they do the paging, the ETag, the
//! optimistic version (412 when the row moved on), the audit record in the same transaction
//! and the commit. Storage is `store::entity`; the database-to-HTTP error mapping stays in
//! `http::error`. State machines use the same pieces around their own transitions.
//!
//! An entity clients create with a body implements [`Creatable`] (building, checking), one
//! they change with a PATCH [`Editable`] (patching, checking); [`crud_handlers!`]
//! (crate::crud_handlers) then writes its standard handlers and their API documentation.

mod handlers;
mod record;

use std::future::Future;

use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use sqlx::AnyConnection;

use crate::access::Principal;
use crate::audit::{self, Change};
use crate::http::{check_version, expected_version, ApiError, Tagged};
use crate::store::{begin_write, entity, now_text, Db, Entity, ListParams, Page, Sql};

/// A write transaction: the one `store::begin_write` opens.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// A PATCH body of records `R`: the fields to change, each `None` when absent
/// ([`record!`](crate::record) implements it).
pub trait Patch<R>: Send {
    /// Copies onto `record` the fields the body gives; the others stay as they were.
    fn apply_to(self, record: &mut R);
}

/// An entity clients change with a PATCH body: what its update needs beyond storage.
/// [`patch`] does the rest.
pub trait Editable: Entity {
    /// The PATCH body.
    type Patch: Patch<Self>;
    /// Copies onto the record the fields `patch` gives (what a patch means beyond copying,
    /// such as tidying a value, is an entity's own).
    fn apply(&mut self, patch: Self::Patch) {
        Patch::apply_to(patch, self)
    }
    /// The checks on the record alone, once the patch is applied (400 naming the field).
    fn validate(&self) -> Result<(), ApiError> {
        Ok(())
    }
    /// An update's checks against other rows, in its transaction, after
    /// [`Editable::validate`]; `before` is the stored version.
    fn check_in(
        &self,
        _conn: &mut AnyConnection,
        _actor: &Principal,
        _before: &Self,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        async { Ok(()) }
    }
    /// A removal's checks against other rows (what still needs the record: 409 naming it),
    /// in its transaction, before [`remove`] deletes it.
    fn check_remove(
        &self,
        _conn: &mut AnyConnection,
        _actor: &Principal,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        async { Ok(()) }
    }
}

/// An entity clients create with a POST body on its own (not under a parent the path
/// names): what its creation needs beyond storage. [`create_from`] does the rest.
pub trait Creatable: Entity {
    /// The POST body.
    type New: Send;
    /// The new record `req` describes (a fresh id, version 1, timestamps, defaults), checked
    /// on its own: 400 naming the field that is wrong.
    fn build(req: Self::New, actor: &Principal) -> Result<Self, ApiError>;
    /// The checks against other rows (the customer it names is the caller's), in the
    /// creation's transaction.
    fn check_new(
        &self,
        _conn: &mut AnyConnection,
        _actor: &Principal,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        async { Ok(()) }
    }
}

/// An entity clients create with a POST body under a parent the path names
/// (`/customers/{id}/contacts`), which the handler has checked is the caller's.
pub trait CreatableIn: Entity {
    /// The POST body.
    type New: Send;
    /// The new record `req` describes under `parent` (its id), checked on its own: 400
    /// naming the field that is wrong.
    fn build_in(parent: &str, req: Self::New, actor: &Principal) -> Result<Self, ApiError>;
    /// The checks against other rows, in the creation's transaction, after the parent's.
    fn check_new(
        &self,
        _conn: &mut AnyConnection,
        _actor: &Principal,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        async { Ok(()) }
    }
    /// The softly deleted record the new one brings back, if any (a number enrolled again),
    /// read in the creation's transaction: the creation is then its restore, the new record
    /// becoming its next life through [`CreatableIn::revive`].
    fn removed(
        &self,
        _conn: &mut AnyConnection,
    ) -> impl Future<Output = Result<Option<Self>, ApiError>> + Send {
        async { Ok(None) }
    }
    /// The new record as the next life of `removed`: its id, version and creation time.
    /// Needed only where [`CreatableIn::removed`] finds something.
    fn revive(self, _removed: &Self) -> Self {
        self
    }
}

/// A POST under a parent the handler has checked in `tx`: [`CreatableIn::check_new`], then
/// the record inserted, or the removed record it brings back restored; audited: 201.
pub async fn create_in<E: CreatableIn>(
    mut tx: Tx,
    actor: &Principal,
    e: E,
) -> Result<Tagged<E>, ApiError> {
    e.check_new(&mut tx, actor).await?;
    match e.removed(&mut tx).await? {
        Some(removed) => {
            let after = e.revive(&removed);
            restore(tx, actor, &removed, after).await
        }
        None => create(tx, actor, e).await,
    }
}

/// A POST: the record built from `req`, checked, inserted and audited: 201 with its `ETag`.
pub async fn create_from<E: Creatable>(
    db: &Db,
    actor: &Principal,
    req: E::New,
) -> Result<Tagged<E>, ApiError> {
    let e = E::build(req, actor)?;
    let mut tx = begin_write(db).await?;
    e.check_new(&mut tx, actor).await?;
    create(tx, actor, e).await
}

/// A PATCH of the record `key` names among `from`, which the client read at `expected`
/// (`http::expected_version`), in `tx` (where the caller may have checked the parent the
/// path names first): 404 / 412, the patch applied, checked, written and audited.
pub async fn patch<E: Editable>(
    mut tx: Tx,
    actor: &Principal,
    from: Sql,
    key: &str,
    expected: i64,
    patch: E::Patch,
) -> Result<Tagged<E>, ApiError> {
    let before: E = load_at(&mut tx, from, key, expected).await?;
    let mut after = before.clone();
    after.apply(patch);
    after.validate()?;
    after.check_in(&mut tx, actor, &before).await?;
    update(tx, actor, &before, after).await
}

/// The start of a PATCH written by hand (a transition, a change with side effects): the
/// version the client read (`If-Match`, or the body's `version`: 400 without either), a
/// write transaction, and the record `key` names among `from`, still at that version (404 /
/// 412).
pub async fn begin_patch<E: Entity>(
    db: &Db,
    headers: &HeaderMap,
    version: Option<i64>,
    from: Sql,
    key: &str,
) -> Result<(Tx, E), ApiError> {
    let expected = expected_version(headers, version)?;
    let mut tx = begin_write(db).await?;
    let before = load_at(&mut tx, from, key, expected).await?;
    Ok((tx, before))
}

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
pub async fn insert_in<E: Entity>(
    tx: &mut sqlx::AnyConnection,
    actor: &Principal,
    e: &E,
) -> Result<(), ApiError> {
    entity::insert(tx, e).await?;
    audit::record(tx, actor, created(e)).await?;
    Ok(())
}

/// Brings back `removed` (a softly deleted record, read in `tx`) as `after`, whose id,
/// version and creation time the caller took from it; recorded as `restore`: 201.
pub async fn restore<E: Entity>(
    mut tx: Tx,
    actor: &Principal,
    removed: &E,
    after: E,
) -> Result<Tagged<E>, ApiError> {
    let after = restore_in(&mut tx, actor, removed, after).await?;
    tx.commit().await?;
    Ok(Tagged::created(after.version(), after))
}

/// [`restore`] without the commit (a bulk import's record).
pub async fn restore_in<E: Entity>(
    tx: &mut sqlx::AnyConnection,
    actor: &Principal,
    removed: &E,
    mut after: E,
) -> Result<E, ApiError> {
    after.next_version(now_text());
    audit::check_written(entity::restore(tx, &after, removed.version()).await?)?;
    audit::record(tx, actor, changed("restore", removed, &after)).await?;
    Ok(after)
}

/// The audit record of a change from `before` to `after`, recorded as `action`.
fn changed<'a, E: Entity>(action: &'a str, before: &'a E, after: &'a E) -> Change<'a> {
    Change {
        entity: E::KIND,
        entity_id: after.id(),
        action,
        customer_id: after.customer_id(),
        before: audit::snapshot(before),
        after: audit::snapshot(after),
    }
}

/// The audit record of `e`'s creation.
fn created<E: Entity>(e: &E) -> Change<'_> {
    Change {
        entity: E::KIND,
        entity_id: e.id(),
        action: "create",
        customer_id: e.customer_id(),
        before: None,
        after: audit::snapshot(e),
    }
}

/// [`update`] without the commit: the next version written and audited in `tx`.
pub async fn update_in<E: Entity>(
    tx: &mut sqlx::AnyConnection,
    actor: &Principal,
    before: &E,
    after: E,
) -> Result<E, ApiError> {
    let after = write(tx, before, after).await?;
    audit::record(tx, actor, changed("update", before, &after)).await?;
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
pub async fn write<E: Entity>(
    conn: &mut sqlx::AnyConnection,
    before: &E,
    mut after: E,
) -> Result<E, ApiError> {
    after.next_version(now_text());
    audit::check_written(entity::update(conn, &after, before.version()).await?)?;
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
    audit::record(&mut tx, actor, changed(action, before, after)).await?;
    tx.commit().await?;
    Ok(())
}

/// A DELETE of the record `key` names among `from`, in `tx` (where the caller may have
/// checked the parent the path names first): 404; with `if_match` (the request's headers,
/// for an entity whose delete takes one), 412 unless an `If-Match` sent is still the stored
/// version; [`Editable::check_remove`]; then [`delete`].
pub async fn remove<E: Editable>(
    mut tx: Tx,
    actor: &Principal,
    from: Sql,
    key: &str,
    if_match: Option<&HeaderMap>,
) -> Result<StatusCode, ApiError> {
    let before: E = load(&mut tx, from, key).await?;
    if let Some(headers) = if_match {
        check_if_match(headers, before.version())?;
    }
    before.check_remove(&mut tx, actor).await?;
    delete(tx, actor, &before).await
}

/// 412 when the request sends an `If-Match` that is not the `stored` version. Optional where
/// it is used: a client that sends none changes whatever version is stored.
pub fn check_if_match(headers: &HeaderMap, stored: i64) -> Result<(), ApiError> {
    if headers.contains_key(header::IF_MATCH) {
        check_version(stored, expected_version(headers, None)?)?;
    }
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

/// Creations gathered to be written together (a bulk import's chunk): each record with its
/// audit record, written as one many-row `INSERT` per table, tables in the order first
/// gathered (so parents, gathered first, go in before the rows that refer to them).
#[derive(Default)]
pub struct Deferred {
    rows: Vec<(&'static str, Vec<(&'static str, crate::store::Arg)>)>,
}

impl Deferred {
    /// What [`insert_in`] would write, kept for [`Deferred::flush`].
    pub fn insert<E: Entity>(&mut self, actor: &Principal, e: &E) {
        self.rows.push((E::TABLE, entity::row(e)));
        self.rows.push(("audit_log", audit::row(actor, created(e))));
    }

    pub fn append(&mut self, other: Deferred) {
        self.rows.extend(other.rows);
    }

    /// Writes everything gathered. A constraint failure fails the whole flush: the caller
    /// rolls back and writes the records one at a time instead.
    pub async fn flush(
        self,
        conn: &mut sqlx::AnyConnection,
    ) -> Result<(), crate::store::StoreError> {
        use crate::store::ResultExt;
        type Rows = Vec<Vec<crate::store::Arg>>;
        let mut tables: Vec<(&'static str, Vec<&'static str>, Rows)> = Vec::new();
        for (table, row) in self.rows {
            let (cols, values): (Vec<&'static str>, Vec<_>) = row.into_iter().unzip();
            match tables
                .iter_mut()
                .find(|(t, c, _)| *t == table && *c == cols)
            {
                Some((_, _, rows)) => rows.push(values),
                None => tables.push((table, cols, vec![values])),
            }
        }
        // SQLite looks `$n` parameters up by name, so a statement's cost grows with the square
        // of its parameters: many statements of a few hundred beat one of thousands.
        const MAX_PARAMS: usize = 500;
        for (table, cols, rows) in tables {
            let per = (MAX_PARAMS / cols.len().max(1)).max(1);
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let part: Rows = rows.by_ref().take(per).collect();
                Sql::insert_many(table, &cols, part)
                    .execute(&mut *conn)
                    .await
                    .with_context(|| format!("inserting many rows into {table}"))?;
            }
        }
        Ok(())
    }
}
