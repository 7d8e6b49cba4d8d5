//! Durable homes for subscriber state: the SQL database (embedded default) or Redis (cluster).

use crate::event::Msisdn;
use crate::store::Db;

#[derive(Debug, thiserror::Error)]
pub enum StateStoreError {
    #[error("state database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("state redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("stored state for {0} is unreadable: {1}")]
    Corrupt(String, String),
}

/// Batched load/save of encoded subscriber state, keyed by msisdn.
#[async_trait::async_trait]
pub trait StateStore: Send + Sync {
    /// One entry per input, in order; `None` for subscribers never seen.
    async fn load(&self, keys: &[Msisdn]) -> Result<Vec<Option<Vec<u8>>>, StateStoreError>;
    /// Writes all entries atomically: a crash keeps either all old or all new.
    async fn save(&self, entries: &[(Msisdn, Vec<u8>)]) -> Result<(), StateStoreError>;
    /// Saves inside the caller's database transaction when the state lives in that
    /// database, so state and the batch's decisions commit together; returns false when it
    /// lives elsewhere, and the caller calls [`StateStore::save`] after its commit.
    async fn save_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        entries: &[(Msisdn, Vec<u8>)],
    ) -> Result<bool, StateStoreError>;
}

pub struct SqlStateStore {
    db: Db,
}

impl SqlStateStore {
    pub fn new(db: Db) -> Self {
        SqlStateStore { db }
    }
}

#[async_trait::async_trait]
impl StateStore for SqlStateStore {
    async fn load(&self, keys: &[Msisdn]) -> Result<Vec<Option<Vec<u8>>>, StateStoreError> {
        let mut out = Vec::with_capacity(keys.len());
        // Chunked IN lists keep one round trip per ~hundred subscribers on both databases.
        for chunk in keys.chunks(200) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT msisdn, state FROM subscriber_state WHERE msisdn IN ({})",
                placeholders.join(",")
            );
            let mut q = sqlx::query_as::<_, (String, Vec<u8>)>(&sql);
            for k in chunk {
                q = q.bind(k.to_string());
            }
            let rows = q.fetch_all(&self.db.pool).await?;
            let mut map: std::collections::HashMap<String, Vec<u8>> = rows.into_iter().collect();
            out.extend(chunk.iter().map(|k| map.remove(&k.to_string())));
        }
        Ok(out)
    }

    async fn save(&self, entries: &[(Msisdn, Vec<u8>)]) -> Result<(), StateStoreError> {
        let mut tx = self.db.pool.begin().await?;
        self.save_in(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn save_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        entries: &[(Msisdn, Vec<u8>)],
    ) -> Result<bool, StateStoreError> {
        let now = crate::store::ts_text(chrono::Utc::now());
        // Many rows per statement: a statement per subscriber cost more than the engine.
        for chunk in entries.chunks(200) {
            let sql = format!(
                "INSERT INTO subscriber_state (msisdn, state, updated_at) VALUES {} \
                 ON CONFLICT (msisdn) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                crate::store::placeholders(chunk.len(), 3)
            );
            let mut q = sqlx::query(&sql);
            for (k, v) in chunk {
                q = q.bind(k.to_string()).bind(v.clone()).bind(now.clone());
            }
            q.execute(&mut *conn).await?;
        }
        Ok(true)
    }
}

/// Shared real-time state for many instances. Keys are hash-tagged (`{msisdn}`) so one
/// subscriber's keys stay in one Redis Cluster slot.
pub struct RedisStateStore {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

impl RedisStateStore {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StateStoreError> {
        let client = redis::Client::open(url)?;
        // Bounded waits: without them a request on a connection to a Redis that went away
        // can wait forever, and the worker's own retry loop (which logs and counts) never
        // gets to run again.
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(std::time::Duration::from_secs(2))
            .set_response_timeout(std::time::Duration::from_secs(5))
            .set_number_of_retries(2)
            .set_max_delay(1000);
        let conn = redis::aio::ConnectionManager::new_with_config(client, cfg).await?;
        Ok(RedisStateStore {
            conn,
            prefix: prefix.to_string(),
        })
    }

    fn key(&self, m: &Msisdn) -> String {
        format!("{}:{{{}}}:state", self.prefix, m)
    }
}

#[async_trait::async_trait]
impl StateStore for RedisStateStore {
    async fn load(&self, keys: &[Msisdn]) -> Result<Vec<Option<Vec<u8>>>, StateStoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.get(self.key(k));
        }
        let mut conn = self.conn.clone();
        Ok(pipe.query_async(&mut conn).await?)
    }

    async fn save(&self, entries: &[(Msisdn, Vec<u8>)]) -> Result<(), StateStoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (k, v) in entries {
            pipe.set(self.key(k), v.as_slice()).ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn save_in(
        &self,
        _conn: &mut sqlx::AnyConnection,
        _entries: &[(Msisdn, Vec<u8>)],
    ) -> Result<bool, StateStoreError> {
        Ok(false)
    }
}
