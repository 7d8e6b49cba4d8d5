//! Writes: transactions that take the write lock up front, ids, clocks and the checks that
//! turn constraint failures into errors naming the field.

use std::sync::atomic::{AtomicI64, Ordering};

use sqlx::{Any, AnyConnection};

use super::{ts_text, Db, DbKind, ResultExt, StoreError};

/// Starts a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes fails at once with
/// "database is locked" under concurrency instead of waiting out the busy timeout.
pub async fn begin_write(db: &Db) -> Result<sqlx::Transaction<'static, Any>, StoreError> {
    match db.kind {
        DbKind::Sqlite => db.writer.begin_with("BEGIN IMMEDIATE").await,
        DbKind::Postgres => db.writer.begin().await,
    }
    .context("starting a write transaction")
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn now_text() -> String {
    ts_text(chrono::Utc::now())
}

/// A strictly increasing sequence (microseconds, bumped on ties) to order records written in
/// the same millisecond without a database sequence, which SQLite lacks.
pub fn next_seq() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = chrono::Utc::now().timestamp_micros();
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

/// Whether `table` has a row with this id; `field` names the reference in the error.
/// `table` is always a literal from the caller, never user input.
pub async fn check_ref(
    conn: &mut AnyConnection,
    table: &'static str,
    field: &str,
    id: Option<&str>,
) -> Result<(), StoreError> {
    let Some(id) = id else {
        return Ok(());
    };
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table} WHERE id = $1"))
        .bind(id)
        .fetch_one(conn)
        .await
        .context(table)?;
    if n == 0 {
        return Err(StoreError::invalid(
            field,
            "refers to a record that does not exist",
        ));
    }
    Ok(())
}

/// Maps a unique-constraint violation to a 409 naming `field`; anything else passes through.
pub fn unique_violation(e: sqlx::Error, field: &str) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return StoreError::Conflict(format!("{field} already exists"));
        }
        if db.is_foreign_key_violation() {
            return StoreError::invalid(field, "refers to a record that does not exist");
        }
    }
    StoreError::Sql(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_is_strictly_increasing() {
        let a = next_seq();
        let b = next_seq();
        assert!(b > a);
    }
}
