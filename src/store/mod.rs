//! The SQL database: SQLite file by default, PostgreSQL when configured. One pool type
//! (`sqlx::Any`), one set of portable migrations, so every query and test runs on both.
//! The query kit every feature shares lives here too; it knows nothing of HTTP and answers
//! with [`StoreError`], which `http::error` maps to a status.

pub mod entity;
mod error;
mod list;
mod sql;
mod write;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

pub use entity::Entity;
pub use error::{ResultExt, StoreError};
pub use list::{
    by_uuid, fetch_page, kept, kept_page, like_pattern, table_page, written, FilterKind, Kept,
    ListParams, ListSpec, Page, DEFAULT_LIMIT, MAX_LIMIT,
};
pub use sql::{Arg, Sql};
pub use write::{begin_write, check_ref, new_id, next_seq, now_text, unique_violation};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

impl DbKind {
    /// The database behind a connection of the pool.
    pub fn of(conn: &sqlx::AnyConnection) -> DbKind {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            DbKind::Sqlite
        } else {
            DbKind::Postgres
        }
    }
}

/// How often SQLite's WAL is copied into the database ([`Db::checkpoint_in_background`]).
/// Under full ingest the WAL gains 12,000 to 19,000 pages a second, so it reaches the
/// writer's own threshold (below) within a second: whatever the background had not copied
/// by then the writer copies and syncs inside a commit. Once a second, that was a stall of
/// 50 to 65 ms (p99 of acknowledgements 66.5 ms at 60k events/s); every 50 ms, little is
/// left for the writer (p99 17.6 to 22.7 ms at 63k events/s).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    /// Where write transactions run ([`begin_write`]). On SQLite one connection: SQLite has
    /// one writer anyway, and writers waiting for each other inside SQLite sleep in its busy
    /// handler (1, 2, 5, 10 ... ms steps) instead of taking turns, which made the tail of
    /// ingest acknowledgements and the outbox's bookkeeping wait for nothing. Waiting for
    /// this pool's one connection is a queue: the next writer starts as soon as the last one
    /// commits. On PostgreSQL the same pool as `pool`.
    pub writer: AnyPool,
    pub kind: DbKind,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Db {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        let kind = if url.starts_with("sqlite:") {
            DbKind::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            DbKind::Postgres
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        let opts = AnyPoolOptions::new().max_connections(max_connections);
        let pool = Self::with_pragmas(kind, opts).connect(url).await?;
        MIGRATOR.run(&pool).await?;
        let writer = match kind {
            DbKind::Sqlite => {
                let one = AnyPoolOptions::new()
                    .max_connections(1)
                    // A large import's chunk may hold the writer for a while; the others
                    // queue behind it as they would have inside SQLite (`busy_timeout`).
                    .acquire_timeout(std::time::Duration::from_secs(60));
                Self::with_pragmas(kind, one).connect(url).await?
            }
            DbKind::Postgres => pool.clone(),
        };
        Ok(Db { pool, writer, kind })
    }

    /// On SQLite, moves most WAL checkpoint work off the writer's commits until `stop`: the writer
    /// commits every ingest batch, and an automatic checkpoint there copies the WAL into the
    /// database and syncs it inside a commit that acknowledgements wait for. A pool
    /// connection checkpoints every [`CHECKPOINT_EVERY`] instead (`PASSIVE`: it never waits
    /// for a reader or the writer; what it could not copy waits for the next round). Should
    /// the writer's connection be replaced, the new one checkpoints by itself again.
    pub async fn checkpoint_in_background(
        &self,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), sqlx::Error> {
        if self.kind != DbKind::Sqlite {
            return Ok(());
        }
        // Not off: a PASSIVE checkpoint under steady writes rarely copies the last frames,
        // and only a fully copied WAL starts over, so without this the file grew by gigabytes.
        // Past 10,000 pages (40 MB) the writer copies the few frames left itself, between
        // commits, and the WAL starts over.
        sqlx::query("PRAGMA wal_autocheckpoint = 10000")
            .execute(&self.writer)
            .await?;
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut every = crate::periodic::Every::new(CHECKPOINT_EVERY, stop);
            // Twenty rounds a second: a failing disk is reported once per run of failures.
            let mut failing = crate::periodic::FirstFailure::default();
            while every.tick().await {
                let done = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&pool)
                    .await;
                if done.is_err() && pool.is_closed() {
                    return;
                }
                if let Some(e) = failing.of(done) {
                    tracing::warn!(error = %e, "background WAL checkpoint failed; trying again");
                }
            }
        });
        Ok(())
    }

    fn with_pragmas(kind: DbKind, opts: AnyPoolOptions) -> AnyPoolOptions {
        if kind == DbKind::Sqlite {
            // A file cannot drop a connection the way a server can, so no ping before each
            // use: on the outbox's and ingest's short statements that round trip to the
            // connection's thread cost as much as the statement.
            opts.test_before_acquire(false)
                // WAL + busy timeout: readers never block the engine's batched writes.
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA foreign_keys = ON",
                            // 16 MiB of pages per connection instead of 2: a large import's
                            // random-key index inserts stop rereading pages from the OS.
                            "PRAGMA cache_size = -16384",
                            // Statement journals (a multi-row upsert keeps one) in memory,
                            // not a temporary file opened, written and closed per batch.
                            "PRAGMA temp_store = MEMORY",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                        Ok(())
                    })
                })
        } else {
            opts
        }
    }
}

/// A database URL fit for a log line: its password, if it has one, as `***`.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "(a database URL that does not parse)".into(),
    }
}

/// RFC 3339 text in UTC for stored timestamps: sorts correctly as text on both databases.
pub fn ts_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `($1,$2,..),($n,..)` for a multi-row insert of `rows` rows of `cols` columns, bound in
/// order; on SQLite `(?,?,..),(?,..)`, which bind the same way.
///
/// Why not `$n` on SQLite too: sqlx places each argument by asking SQLite for its
/// parameter's name, and SQLite finds a name by walking the list of all the statement's
/// named parameters, so binding costs the square of the parameter count. At 600 parameters a
/// statement that was over a quarter of the server's CPU under HTTP ingest. `?` has no name,
/// and sqlx binds such parameters in order.
pub fn placeholders(kind: DbKind, rows: usize, cols: usize) -> String {
    placeholders_after(kind, 0, rows, cols)
}

/// [`placeholders`] for a statement whose first `before` parameters are bound ahead of the
/// list: on PostgreSQL the list's numbers start at `$before + 1`. On SQLite every parameter
/// is a `?` bound in the text's order, so what stands before the list must be bound first.
pub fn placeholders_after(kind: DbKind, before: usize, rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push(',');
            }
            match kind {
                DbKind::Sqlite => out.push('?'),
                DbKind::Postgres => {
                    out.push('$');
                    out.push_str(&(before + r * cols + c + 1).to_string());
                }
            }
        }
        out.push(')');
    }
    out
}

/// A signing key by name: the configured one, else the one in `app_secrets`, generated and
/// stored on first use (an insert that loses a race with another instance keeps the winner's),
/// so restarts and every instance share it.
pub async fn app_secret(db: &Db, name: &str, configured: &str) -> Result<String, sqlx::Error> {
    use rand::RngCore;
    if !configured.is_empty() {
        return Ok(configured.to_string());
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    sqlx::query(
        "INSERT INTO app_secrets (name, value, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(hex::encode(bytes))
    .bind(ts_text(chrono::Utc::now()))
    .execute(&db.pool)
    .await?;
    let (value,): (String,) = sqlx::query_as("SELECT value FROM app_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(&db.pool)
        .await?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_logged_database_url_keeps_no_password() {
        assert_eq!(
            super::redacted_url("postgres://kairos:s3cret@db.internal:5432/kairos"),
            "postgres://kairos:***@db.internal:5432/kairos"
        );
        let plain = "sqlite://kairos.db?mode=rwc";
        assert_eq!(super::redacted_url(plain), plain);
        assert!(!super::redacted_url("post gres://a:b@c").contains(":b@"));
    }

    #[test]
    fn placeholders_after_number_on_from_what_is_bound_before() {
        use super::{placeholders_after, DbKind};
        assert_eq!(placeholders_after(DbKind::Postgres, 3, 1, 3), "($4,$5,$6)");
        assert_eq!(placeholders_after(DbKind::Sqlite, 3, 1, 3), "(?,?,?)");
        assert_eq!(
            placeholders_after(DbKind::Postgres, 0, 2, 2),
            "($1,$2),($3,$4)"
        );
    }
}
