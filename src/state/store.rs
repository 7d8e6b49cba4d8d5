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
    /// Writes all entries atomically enough that a crash keeps either old or new per key.
    async fn save(&self, entries: &[(Msisdn, Vec<u8>)]) -> Result<(), StateStoreError>;
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
        if entries.is_empty() {
            return Ok(());
        }
        let now = crate::store::ts_text(chrono::Utc::now());
        let mut tx = self.db.pool.begin().await?;
        for (k, v) in entries {
            sqlx::query(
                "INSERT INTO subscriber_state (msisdn, state, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (msisdn) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            )
            .bind(k.to_string())
            .bind(v.clone())
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
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
        let conn = redis::aio::ConnectionManager::new(client).await?;
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
}
