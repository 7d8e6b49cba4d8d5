//! Query plumbing every CRM feature shares: positional binds, whitelisted filters and sorts,
//! pagination. User input only ever reaches SQL as bound values; column names come from
//! `'static` whitelists.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::Serialize;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::{Query, QueryAs};
use sqlx::{Any, AnyConnection, FromRow};

use crate::http::ApiError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// A bound value. Only the types `sqlx::Any` encodes on both databases.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    Int(i64),
    Float(f64),
    NullText,
    NullInt,
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(v.to_string())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(v)
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Arg {
        Arg::Text(v.clone())
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Arg {
        Arg::Float(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Arg {
        Arg::Int(v as i64)
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Arg {
        v.map(Arg::Text).unwrap_or(Arg::NullText)
    }
}
impl From<&Option<String>> for Arg {
    fn from(v: &Option<String>) -> Arg {
        v.clone().into()
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Arg {
        v.map(Arg::Int).unwrap_or(Arg::NullInt)
    }
}

/// SQL text with its positional (`$n`) arguments, built up piece by piece.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
        }
    }

    /// Appends trusted SQL text (never user input).
    pub fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Appends a `$n` placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Into<Arg>) -> &mut Sql {
        self.args.push(value.into());
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// `INSERT INTO table (c1, c2) VALUES ($1, $2)` from column/value pairs.
    pub fn insert(table: &str, values: Vec<(&str, Arg)>) -> Sql {
        let cols: Vec<&str> = values.iter().map(|(c, _)| *c).collect();
        let mut sql = Sql::new(&format!(
            "INSERT INTO {table} ({}) VALUES (",
            cols.join(", ")
        ));
        for (i, (_, v)) in values.into_iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(v);
        }
        sql.push(")");
        sql
    }

    /// `UPDATE table SET c1 = $1, ..., version = version + 1 WHERE id = $n AND version = $m`.
    pub fn update_versioned(table: &str, id: &str, version: i64, values: Vec<(&str, Arg)>) -> Sql {
        let mut sql = Sql::new(&format!("UPDATE {table} SET "));
        for (col, v) in values {
            sql.push(col).push(" = ").bind(v).push(", ");
        }
        sql.push("version = version + 1 WHERE id = ")
            .bind(id)
            .push(" AND version = ")
            .bind(version);
        sql
    }

    pub fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for a in &self.args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
                Arg::Float(f) => q.bind(*f),
                Arg::NullText => q.bind(Option::<String>::None),
                Arg::NullInt => q.bind(Option::<i64>::None),
            };
        }
        q
    }

    pub fn query_as<T>(&self) -> QueryAs<'_, Any, T, AnyArguments<'_>>
    where
        T: for<'r> FromRow<'r, AnyRow>,
    {
        let mut q = sqlx::query_as::<Any, T>(&self.text);
        for a in &self.args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
                Arg::Float(f) => q.bind(*f),
                Arg::NullText => q.bind(Option::<String>::None),
                Arg::NullInt => q.bind(Option::<i64>::None),
            };
        }
        q
    }

    /// Runs a statement and returns the number of rows it touched.
    pub async fn execute(&self, conn: &mut AnyConnection) -> Result<u64, sqlx::Error> {
        Ok(self.query().execute(conn).await?.rows_affected())
    }
}

/// How a query parameter filters: by equality on a column of this type.
#[derive(Debug, Clone, Copy)]
pub enum FilterKind {
    Text,
    Int,
    Float,
}

/// The filters and sorts a list endpoint accepts: `(query name, column expression)`.
pub struct ListSpec {
    pub filters: &'static [(&'static str, &'static str, FilterKind)],
    pub sorts: &'static [(&'static str, &'static str)],
    /// Column expression used when `?sort=` is absent.
    pub default_sort: &'static str,
    /// Unique column appended to every ordering so pages never overlap.
    pub tiebreak: &'static str,
}

/// A parsed `?limit=&offset=&sort=&<filter>=` query.
#[derive(Debug, Clone)]
pub struct ListParams {
    pub limit: i64,
    pub offset: i64,
    order_by: String,
    /// `(column, operator, value)`; operators are literals from this module.
    filters: Vec<(&'static str, &'static str, Arg)>,
    /// `(columns, pattern)` for `?q=`.
    search: Option<(&'static [&'static str], String)>,
}

fn int_param(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    q.get(name)
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| ApiError::field(name, "must be an integer"))
        })
        .transpose()
}

impl ListParams {
    /// Parses and validates against `spec`; unknown parameters are rejected so typos don't
    /// silently return everything.
    pub fn parse(spec: &ListSpec, q: &HashMap<String, String>) -> Result<ListParams, ApiError> {
        ListParams::parse_with_search(spec, &[], q)
    }

    /// Like [`ListParams::parse`], also accepting `?q=`: a case-insensitive substring search
    /// over the text columns `search`.
    pub fn parse_with_search(
        spec: &ListSpec,
        search_columns: &'static [&'static str],
        q: &HashMap<String, String>,
    ) -> Result<ListParams, ApiError> {
        let limit = int_param(q, "limit")?.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::field(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let offset = int_param(q, "offset")?.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::field("offset", "must not be negative"));
        }
        let order_by = match q.get("sort").map(String::as_str) {
            None | Some("") => format!("{}, {}", spec.default_sort, spec.tiebreak),
            Some(s) => {
                let (name, dir) = match s.strip_prefix('-') {
                    Some(n) => (n, "DESC"),
                    None => (s, "ASC"),
                };
                let col = spec
                    .sorts
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, c)| *c)
                    .ok_or_else(|| {
                        let names: Vec<&str> = spec.sorts.iter().map(|(n, _)| *n).collect();
                        ApiError::field("sort", format!("must be one of {}", names.join(", ")))
                    })?;
                format!("{col} {dir}, {}", spec.tiebreak)
            }
        };
        let mut filters = Vec::new();
        let mut search = None;
        let mut keys: Vec<&String> = q.keys().collect();
        keys.sort();
        for key in keys {
            if matches!(key.as_str(), "limit" | "offset" | "sort") {
                continue;
            }
            let raw = &q[key];
            if key == "q" && !search_columns.is_empty() {
                search = Some((search_columns, like_pattern(raw)));
                continue;
            }
            let (col, op, kind) = resolve_filter(spec, key)?;
            let arg = match kind {
                FilterKind::Text => Arg::Text(raw.clone()),
                FilterKind::Int => Arg::Int(
                    raw.parse()
                        .map_err(|_| ApiError::field(key.as_str(), "must be an integer"))?,
                ),
                FilterKind::Float => Arg::Float(
                    raw.parse()
                        .map_err(|_| ApiError::field(key.as_str(), "must be a number"))?,
                ),
            };
            filters.push((col, op, arg));
        }
        Ok(ListParams {
            limit,
            offset,
            order_by,
            filters,
            search,
        })
    }

    /// Appends ` AND col <op> $n` for every filter given, and the `q` search.
    pub fn push_filters(&self, sql: &mut Sql) {
        for (col, op, arg) in &self.filters {
            sql.push(" AND ")
                .push(col)
                .push(" ")
                .push(op)
                .push(" ")
                .bind(arg.clone());
        }
        if let Some((cols, pattern)) = &self.search {
            sql.push(" AND (");
            for (i, col) in cols.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                sql.push("LOWER(")
                    .push(col)
                    .push(") LIKE ")
                    .bind(pattern.as_str())
                    .push(" ESCAPE '\\'");
            }
            sql.push(")");
        }
    }
}

/// A filter by exact name, or `<numeric filter>_min` / `_max` for a range.
fn resolve_filter(
    spec: &ListSpec,
    key: &str,
) -> Result<(&'static str, &'static str, FilterKind), ApiError> {
    if let Some((_, col, kind)) = spec.filters.iter().find(|(n, _, _)| *n == key) {
        return Ok((col, "=", *kind));
    }
    let range = [("_min", ">="), ("_max", "<=")]
        .into_iter()
        .find_map(|(suffix, op)| key.strip_suffix(suffix).map(|base| (base, op)));
    if let Some((base, op)) = range {
        let numeric = spec
            .filters
            .iter()
            .find(|(n, _, k)| *n == base && !matches!(k, FilterKind::Text));
        if let Some((_, col, kind)) = numeric {
            return Ok((col, op, *kind));
        }
    }
    Err(ApiError::field(key, "is not a filter of this list"))
}

/// `%text%`, lower-cased, with LIKE's wildcards escaped so `q=50%` means a literal `%`.
fn like_pattern(q: &str) -> String {
    let mut p = String::from("%");
    for ch in q.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// One page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Matching records across all pages.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Runs a list: `from_where` is `table alias [JOIN ...] WHERE ...` with scope already applied;
/// filters, ordering and paging are added here.
pub async fn fetch_page<T>(
    pool: &sqlx::AnyPool,
    columns: &str,
    mut from_where: Sql,
    params: &ListParams,
) -> Result<Page<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    params.push_filters(&mut from_where);
    let mut count = Sql::new("SELECT COUNT(*) AS n FROM ");
    count.push(&from_where.text);
    count.args = from_where.args.clone();
    let total: (i64,) = count.query_as().fetch_one(pool).await?;

    let mut list = Sql::new(&format!("SELECT {columns} FROM "));
    list.push(&from_where.text);
    list.args = from_where.args;
    list.push(" ORDER BY ")
        .push(&params.order_by)
        .push(" LIMIT ")
        .bind(params.limit)
        .push(" OFFSET ")
        .bind(params.offset);
    let items = list.query_as::<T>().fetch_all(pool).await?;
    Ok(Page {
        items,
        total: total.0,
        limit: params.limit,
        offset: params.offset,
    })
}

/// Starts a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes fails at once with
/// "database is locked" under concurrency instead of waiting out the busy timeout.
pub async fn begin_write(
    db: &crate::store::Db,
) -> Result<sqlx::Transaction<'static, Any>, sqlx::Error> {
    match db.kind {
        crate::store::DbKind::Sqlite => db.pool.begin_with("BEGIN IMMEDIATE").await,
        crate::store::DbKind::Postgres => db.pool.begin().await,
    }
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn now_text() -> String {
    crate::store::ts_text(chrono::Utc::now())
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
) -> Result<(), ApiError> {
    let Some(id) = id else {
        return Ok(());
    };
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table} WHERE id = $1"))
        .bind(id)
        .fetch_one(conn)
        .await?;
    if n == 0 {
        return Err(ApiError::field(
            field,
            "refers to a record that does not exist",
        ));
    }
    Ok(())
}

/// Maps a unique-constraint violation to a 409 naming `field`; anything else passes through.
pub fn unique_violation(e: sqlx::Error, field: &str) -> ApiError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return ApiError::Conflict(format!("{field} already exists"));
        }
        if db.is_foreign_key_violation() {
            return ApiError::field(field, "refers to a record that does not exist");
        }
    }
    ApiError::from(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: ListSpec = ListSpec {
        filters: &[
            ("status", "c.status", FilterKind::Text),
            ("churn_score", "c.churn_score", FilterKind::Float),
        ],
        sorts: &[("name", "c.name")],
        default_sort: "c.created_at",
        tiebreak: "c.id",
    };

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sorts_only_whitelisted_columns() {
        let p = ListParams::parse(&SPEC, &q(&[("sort", "-name")])).unwrap();
        assert_eq!(p.order_by, "c.name DESC, c.id");
        let err = ListParams::parse(&SPEC, &q(&[("sort", "name; DROP TABLE x")])).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest { field: Some(f), .. } if f == "sort"));
    }

    #[test]
    fn rejects_unknown_filters_and_bad_limits() {
        let err = ListParams::parse(&SPEC, &q(&[("colour", "red")])).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest { field: Some(f), .. } if f == "colour"));
        assert!(ListParams::parse(&SPEC, &q(&[("limit", "501")])).is_err());
        assert!(ListParams::parse(&SPEC, &q(&[("limit", "0")])).is_err());
        let p = ListParams::parse(&SPEC, &q(&[])).unwrap();
        assert_eq!((p.limit, p.offset), (50, 0));
    }

    #[test]
    fn filters_become_bound_values() {
        let p = ListParams::parse(&SPEC, &q(&[("status", "x' OR 1=1")])).unwrap();
        let mut sql = Sql::new("customers c WHERE 1=1");
        p.push_filters(&mut sql);
        assert_eq!(sql.text, "customers c WHERE 1=1 AND c.status = $1");
        assert_eq!(sql.args, vec![Arg::Text("x' OR 1=1".into())]);
    }

    #[test]
    fn ranges_on_numbers_and_escaped_search() {
        let p = ListParams::parse_with_search(
            &SPEC,
            &["c.name"],
            &q(&[("churn_score_min", "0.5"), ("q", "50%_off")]),
        )
        .unwrap();
        assert!(
            ListParams::parse(&SPEC, &q(&[("q", "x")])).is_err(),
            "q needs columns"
        );
        let mut sql = Sql::new("customers c WHERE 1=1");
        p.push_filters(&mut sql);
        assert_eq!(
            sql.text,
            "customers c WHERE 1=1 AND c.churn_score >= $1 AND (LOWER(c.name) LIKE $2 ESCAPE '\\')"
        );
        assert_eq!(sql.args[1], Arg::Text("%50\\%\\_off%".into()));
        assert!(ListParams::parse(&SPEC, &q(&[("status_min", "a")])).is_err());
    }

    #[test]
    fn seq_is_strictly_increasing() {
        let a = next_seq();
        let b = next_seq();
        assert!(b > a);
    }
}
