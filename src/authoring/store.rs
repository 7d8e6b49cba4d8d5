//! Published versions and drafts in the database. Knows nothing of HTTP or of the engine:
//! it stores files and who did what, and numbers versions without gaps.

use serde::Serialize;

use super::files::Files;
use crate::store::{
    begin_write, kept, new_id, now_text, table_page, written, Db, ResultExt, StoreError,
};

/// A published version, without its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Version {
    /// 1, 2, ...: the highest is the one every instance runs.
    pub number: i64,
    /// Who wrote the change: the drafts' authors; `bootstrap` for the rules folder read at
    /// the first start; the publisher for a rollback or a reload of the rules folder.
    pub author: String,
    pub approved_by: String,
    pub comment: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The older version a rollback restored.
    pub restores: Option<i64>,
    /// Files in the set.
    pub files: i64,
}

type VersionRow = (i64, String, String, String, String, Option<i64>, i64);

fn version_of(r: VersionRow) -> Version {
    Version {
        number: r.0,
        author: r.1,
        approved_by: r.2,
        comment: r.3,
        created_at: r.4,
        restores: r.5,
        files: r.6,
    }
}

const VERSION_COLUMNS: &str = "v.number, v.author, v.approved_by, v.comment, v.created_at, \
     v.restores, (SELECT COUNT(*) FROM rule_version_files f WHERE f.version = v.number)";

/// The number of the version every instance should run: the highest. Cheap (the primary
/// key's index), so every instance asks it twice a second.
pub async fn active(db: &Db) -> Result<Option<i64>, StoreError> {
    let (n,): (Option<i64>,) = sqlx::query_as("SELECT MAX(number) FROM rule_versions")
        .fetch_one(&db.pool)
        .await
        .context("reading the active rule version")?;
    Ok(n)
}

pub async fn version(db: &Db, number: i64) -> Result<Option<Version>, StoreError> {
    let row: Option<VersionRow> = sqlx::query_as(&format!(
        "SELECT {VERSION_COLUMNS} FROM rule_versions v WHERE v.number = $1"
    ))
    .bind(number)
    .fetch_optional(&db.pool)
    .await
    .context("reading a rule version")?;
    Ok(row.map(version_of))
}

/// Versions, newest first, a page at a time, and how many there are.
pub async fn versions(db: &Db, limit: i64, offset: i64) -> Result<(Vec<Version>, i64), StoreError> {
    let select = format!("SELECT {VERSION_COLUMNS} FROM rule_versions v ORDER BY v.number DESC");
    table_page(db, &select, "rule_versions", (limit, offset), version_of).await
}

/// The files of version `number` (empty for a version that does not exist).
pub async fn files_of(db: &Db, number: i64) -> Result<Files, StoreError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT path, content FROM rule_version_files WHERE version = $1")
            .bind(number)
            .fetch_all(&db.pool)
            .await
            .context("reading a rule version's files")?;
    Ok(rows.into_iter().collect())
}

/// A version to record.
pub struct NewVersion<'a> {
    pub files: &'a Files,
    pub author: &'a str,
    pub approved_by: &'a str,
    pub comment: &'a str,
    pub restores: Option<i64>,
    /// Drafts the version publishes: they are removed with the same commit.
    pub drafts: &'a [String],
}

/// Records `v` as the version after `after` (`None`: the first) and returns its number.
/// When another version was published since `after`, nothing is written and the answer is
/// a conflict: the caller checked its set against `after`, not against the newer one.
pub async fn publish(db: &Db, after: Option<i64>, v: NewVersion<'_>) -> Result<i64, StoreError> {
    let mut tx = begin_write(db).await?;
    let (now,): (Option<i64>,) = sqlx::query_as("SELECT MAX(number) FROM rule_versions")
        .fetch_one(&mut *tx)
        .await
        .context("reading the active rule version")?;
    if now != after {
        return Err(StoreError::Conflict(format!(
            "version {} was published meanwhile; check the change against it and publish again",
            now.unwrap_or(0)
        )));
    }
    let number = after.unwrap_or(0) + 1;
    sqlx::query(
        "INSERT INTO rule_versions (number, author, approved_by, comment, created_at, restores) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(number)
    .bind(v.author)
    .bind(v.approved_by)
    .bind(v.comment)
    .bind(now_text())
    .bind(v.restores)
    .execute(&mut *tx)
    .await
    // Two publishers on PostgreSQL can both read the same highest number: one insert wins.
    .map_err(|e| match crate::store::unique_violation(e, "version") {
        StoreError::Conflict(_) => StoreError::Conflict(
            "another version was published at the same moment; publish again".into(),
        ),
        other => other,
    })?;
    for (path, content) in v.files {
        sqlx::query("INSERT INTO rule_version_files (version, path, content) VALUES ($1, $2, $3)")
            .bind(number)
            .bind(path)
            .bind(content)
            .execute(&mut *tx)
            .await
            .context("recording a rule version's file")?;
    }
    for id in v.drafts {
        sqlx::query("DELETE FROM rule_drafts WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("removing a published draft")?;
    }
    tx.commit().await.context("committing a rule version")?;
    Ok(number)
}

/// A proposed change to one file of the published set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Draft {
    pub id: String,
    /// The file, relative to the rules folder (`dynamic/roaming.rhai`, `policy.toml`).
    pub path: String,
    /// The file's new text; absent when the change deletes the file.
    pub content: Option<String>,
    /// True when the change deletes the file.
    pub delete: bool,
    pub author: String,
    pub comment: String,
    /// The version the change was written against.
    pub base_version: i64,
    pub created_at: String,
    pub updated_at: String,
}

type DraftRow = (
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    String,
    String,
);

fn draft_of(r: DraftRow) -> Draft {
    Draft {
        delete: r.2.is_none(),
        id: r.0,
        path: r.1,
        content: r.2,
        author: r.3,
        comment: r.4,
        base_version: r.5,
        created_at: r.6,
        updated_at: r.7,
    }
}

crate::kept! { Draft in "rule_drafts", noun "rule draft", row DraftRow, columns DRAFT_COLUMNS,
order "created_at, id", of draft_of }

const DRAFT_COLUMNS: &str =
    "id, path, content, author, comment, base_version, created_at, updated_at";

/// What a draft changes, as written by its author.
pub struct DraftChange<'a> {
    pub path: &'a str,
    /// `None` deletes the file.
    pub content: Option<&'a str>,
    pub comment: &'a str,
    pub base_version: i64,
}

pub async fn create_draft(db: &Db, author: &str, c: DraftChange<'_>) -> Result<Draft, StoreError> {
    let id = new_id();
    let now = now_text();
    sqlx::query(
        "INSERT INTO rule_drafts (id, path, content, author, comment, base_version, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(&id)
    .bind(c.path)
    .bind(c.content)
    .bind(author)
    .bind(c.comment)
    .bind(c.base_version)
    .bind(&now)
    .execute(&db.pool)
    .await
    .context("recording a rule draft")?;
    written(kept(db, &id).await?)
}

pub async fn update_draft(db: &Db, id: &str, c: DraftChange<'_>) -> Result<Draft, StoreError> {
    sqlx::query(
        "UPDATE rule_drafts SET path = $2, content = $3, comment = $4, base_version = $5, \
         updated_at = $6 WHERE id = $1",
    )
    .bind(id)
    .bind(c.path)
    .bind(c.content)
    .bind(c.comment)
    .bind(c.base_version)
    .bind(now_text())
    .execute(&db.pool)
    .await
    .context("changing a rule draft")?;
    written(kept(db, id).await?)
}

/// Removes a draft; false when there was none.
pub async fn delete_draft(db: &Db, id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM rule_drafts WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await
        .context("removing a rule draft")?;
    Ok(done.rows_affected() > 0)
}
