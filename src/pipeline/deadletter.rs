//! Rejected events, kept whole with the reason, where an operator can inspect them.

use crate::store::Db;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub id: String,
    pub received_at: String,
    /// `http`, `ndjson`, `engine`, ...
    pub source: String,
    pub field: Option<String>,
    pub reason: String,
    pub payload: String,
}

#[derive(Clone)]
pub struct DeadLetters {
    db: Db,
}

/// Payloads are kept up to this size; the rest is cut (the reason says why it was rejected).
const MAX_PAYLOAD: usize = 64 * 1024;

impl DeadLetters {
    pub fn new(db: Db) -> Self {
        DeadLetters { db }
    }

    pub async fn put(
        &self,
        source: &str,
        field: Option<&str>,
        reason: &str,
        payload: &[u8],
    ) -> Result<String, sqlx::Error> {
        self.put_many(&[(
            source.to_string(),
            field.map(str::to_string),
            reason.to_string(),
            payload.to_vec(),
        )])
        .await
        .map(|mut v| v.remove(0))
    }

    pub async fn put_many(
        &self,
        items: &[(String, Option<String>, String, Vec<u8>)],
    ) -> Result<Vec<String>, sqlx::Error> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.db.pool.begin().await?;
        let ids = Self::put_in(&mut tx, items).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// [`DeadLetters::put_many`] inside the caller's transaction (the worker's batch commit).
    pub async fn put_in(
        conn: &mut sqlx::AnyConnection,
        items: &[(String, Option<String>, String, Vec<u8>)],
    ) -> Result<Vec<String>, sqlx::Error> {
        let mut ids = Vec::with_capacity(items.len());
        let now = crate::store::ts_text(chrono::Utc::now());
        let kind = crate::store::DbKind::of(conn);
        for chunk in items.chunks(100) {
            let sql = format!(
                "INSERT INTO dead_letters (id, received_at, source, field, reason, payload) VALUES {}",
                crate::store::placeholders(kind, chunk.len(), 6)
            );
            let mut q = sqlx::query(&sql);
            for (source, field, reason, payload) in chunk {
                let id = format!("dl-{}", uuid::Uuid::new_v4().simple());
                let cut = &payload[..payload.len().min(MAX_PAYLOAD)];
                q = q
                    .bind(id.clone())
                    .bind(now.clone())
                    .bind(source.clone())
                    .bind(field.clone())
                    .bind(reason.clone())
                    .bind(String::from_utf8_lossy(cut).into_owned());
                ids.push(id);
            }
            q.execute(&mut *conn).await?;
        }
        Ok(ids)
    }

    pub async fn list(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<DeadLetter>, i64), sqlx::Error> {
        let rows: Vec<(String, String, String, Option<String>, String, String)> = sqlx::query_as(
            "SELECT id, received_at, source, field, reason, payload FROM dead_letters ORDER BY received_at DESC, id LIMIT $1 OFFSET $2",
        )
        .bind(limit.clamp(1, 1000))
        .bind(offset.max(0))
        .fetch_all(&self.db.pool)
        .await?;
        let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM dead_letters")
            .fetch_one(&self.db.pool)
            .await?;
        Ok((
            rows.into_iter()
                .map(
                    |(id, received_at, source, field, reason, payload)| DeadLetter {
                        id,
                        received_at,
                        source,
                        field,
                        reason,
                        payload,
                    },
                )
                .collect(),
            total,
        ))
    }
}
