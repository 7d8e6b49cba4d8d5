//! Durable homes for subscriber state: the SQL database (embedded default) or Redis (cluster).

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

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
    /// Writes all entries atomically: a crash keeps either all old or all new. Returns the
    /// subscribers whose write was refused because a newer owner has written them since
    /// (see [`StateStore::take_ownership`]); their cached state is stale and must be dropped.
    async fn save(&self, entries: &[(Msisdn, Vec<u8>)]) -> Result<Vec<Msisdn>, StateStoreError>;
    /// Saves inside the caller's database transaction when the state lives in that
    /// database, so state and the batch's decisions commit together; returns false when it
    /// lives elsewhere, and the caller calls [`StateStore::save`] after its commit.
    async fn save_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        entries: &[(Msisdn, Vec<u8>)],
    ) -> Result<bool, StateStoreError>;
    /// Called when this instance is assigned partitions (Kafka mode), after it dropped its
    /// cache: from now on its writes carry a new owner epoch, higher than any before it, and a
    /// store that is shared between instances refuses a write carrying an older epoch over
    /// one carrying a newer. A stalled instance that lost its partitions therefore cannot
    /// overwrite the new owner's state when it wakes up. A store of one process ignores it.
    async fn take_ownership(&self) -> Result<u64, StateStoreError> {
        Ok(0)
    }
    /// Requests sent to the store so far (a pipelined batch counts once).
    fn round_trips(&self) -> u64 {
        0
    }
    /// Whether the store answers now (readiness). A store inside the database is checked
    /// with the database.
    async fn ping(&self) -> Result<(), StateStoreError> {
        Ok(())
    }
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
            // One row of `chunk.len()` columns is the IN list (`?` on SQLite: see there).
            let list = crate::store::placeholders(self.db.kind, 1, chunk.len());
            let sql = format!("SELECT msisdn, state FROM subscriber_state WHERE msisdn IN {list}");
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

    async fn save(&self, entries: &[(Msisdn, Vec<u8>)]) -> Result<Vec<Msisdn>, StateStoreError> {
        let mut tx = self.db.pool.begin().await?;
        self.save_in(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(Vec::new())
    }

    async fn save_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        entries: &[(Msisdn, Vec<u8>)],
    ) -> Result<bool, StateStoreError> {
        let now = crate::store::ts_text(chrono::Utc::now());
        let kind = crate::store::DbKind::of(conn);
        // Many rows per statement: a statement per subscriber cost more than the engine.
        for chunk in entries.chunks(200) {
            let sql = format!(
                "INSERT INTO subscriber_state (msisdn, state, updated_at) VALUES {} \
                 ON CONFLICT (msisdn) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                crate::store::placeholders(kind, chunk.len(), 3)
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
///
/// A stored value is framed with the epoch of the owner that wrote it: `0xFE`, the epoch as
/// 16 hex digits, then the encoded state. A script compares epochs and sets in one step, so
/// of two instances that both believe they own a subscriber, the newer owner always wins.
pub struct RedisStateStore {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    epoch: AtomicU64,
    trips: AtomicU64,
    fenced_write: redis::Script,
}

const FRAME: u8 = 0xFE;

/// KEYS[1] the state key; ARGV[1] the writer's epoch (16 hex digits), ARGV[2] the framed value.
/// Returns 0 when a newer owner's write is already there (nothing is written).
const FENCED_WRITE: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and string.byte(cur, 1) == 254 and string.sub(cur, 2, 17) > ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
";

impl RedisStateStore {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StateStoreError> {
        let client = redis::Client::open(url)?;
        // Bounded waits: without them a request on a connection to a Redis that went away
        // can wait forever, and the worker's own retry loop (which logs and counts) never
        // gets to run again.
        let cfg = crate::pubsub::bounded(2, 5);
        let conn = redis::aio::ConnectionManager::new_with_config(client, cfg).await?;
        Ok(RedisStateStore {
            conn,
            prefix: prefix.to_string(),
            epoch: AtomicU64::new(0),
            trips: AtomicU64::new(0),
            fenced_write: redis::Script::new(FENCED_WRITE),
        })
    }

    fn key(&self, m: &Msisdn) -> String {
        format!("{}:{{{}}}:state", self.prefix, m)
    }

    fn epoch_hex(&self) -> String {
        format!("{:016x}", self.epoch.load(Relaxed))
    }
}

/// The state inside a stored value, framed or (written before epochs) bare.
fn unframe(mut v: Vec<u8>) -> Vec<u8> {
    if v.first() == Some(&FRAME) && v.len() >= 17 {
        v.drain(..17);
    }
    v
}

#[async_trait::async_trait]
impl StateStore for RedisStateStore {
    async fn ping(&self) -> Result<(), StateStoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn load(&self, keys: &[Msisdn]) -> Result<Vec<Option<Vec<u8>>>, StateStoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.get(self.key(k));
        }
        let mut conn = self.conn.clone();
        self.trips.fetch_add(1, Relaxed);
        let got: Vec<Option<Vec<u8>>> = pipe.query_async(&mut conn).await?;
        Ok(got.into_iter().map(|v| v.map(unframe)).collect())
    }

    async fn save(&self, entries: &[(Msisdn, Vec<u8>)]) -> Result<Vec<Msisdn>, StateStoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let epoch = self.epoch_hex();
        let mut pipe = redis::pipe();
        // One subscriber per script call keeps every call within one cluster slot; MULTI makes
        // the batch all-or-nothing on a single Redis.
        pipe.atomic();
        // Loaded with every batch, not once: a restarted Redis has forgotten its scripts, and
        // the script is a few hundred bytes beside a batch of states.
        pipe.load_script(&self.fenced_write).ignore();
        for (k, v) in entries {
            let mut framed = Vec::with_capacity(17 + v.len());
            framed.push(FRAME);
            framed.extend_from_slice(epoch.as_bytes());
            framed.extend_from_slice(v);
            pipe.invoke_script(self.fenced_write.key(self.key(k)).arg(&epoch).arg(framed));
        }
        let mut conn = self.conn.clone();
        self.trips.fetch_add(1, Relaxed);
        let written: Vec<i64> = pipe.query_async(&mut conn).await?;
        Ok(entries
            .iter()
            .zip(written)
            .filter(|(_, w)| *w == 0)
            .map(|((m, _), _)| *m)
            .collect())
    }

    async fn save_in(
        &self,
        _conn: &mut sqlx::AnyConnection,
        _entries: &[(Msisdn, Vec<u8>)],
    ) -> Result<bool, StateStoreError> {
        Ok(false)
    }

    async fn take_ownership(&self) -> Result<u64, StateStoreError> {
        let mut conn = self.conn.clone();
        self.trips.fetch_add(1, Relaxed);
        let e: u64 = redis::cmd("INCR")
            .arg(format!("{}:owner-epoch", self.prefix))
            .query_async(&mut conn)
            .await?;
        self.epoch.store(e, Relaxed);
        Ok(e)
    }

    fn round_trips(&self) -> u64 {
        self.trips.load(Relaxed)
    }
}
