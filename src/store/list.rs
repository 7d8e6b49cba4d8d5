//! Paging: whitelisted filters and sorts applied to a query, and one page of its rows.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::FromRow;

use super::{Arg, ResultExt, Sql, StoreError};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

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

/// A [`ListSpec`] over one table alias whose filters and sorts are named after their
/// columns (the sorts in the order a wrong `sort` lists them; `at = seq` names a sort other
/// than its column), by type, with `alias.id` as tiebreak:
///
/// ```text
/// crate::list_spec!(k; text state, owner_id; int level; float score; sort created_at, at = seq;
///     default "k.created_at")
/// ```
#[macro_export]
macro_rules! list_spec {
    ($a:ident; $(text $($t:ident),+;)? $(int $($i:ident),+;)? $(float $($f:ident),+;)?
        sort $($s:ident $(= $c:ident)?),+; default $d:literal) => {
        $crate::store::ListSpec {
            filters: &[
                $($($crate::list_spec!(@filter $a $t Text),)+)?
                $($($crate::list_spec!(@filter $a $i Int),)+)?
                $($($crate::list_spec!(@filter $a $f Float),)+)?
            ],
            sorts: &[$((stringify!($s), $crate::list_spec!(@col $a $s $($c)?)),)+],
            default_sort: $d,
            tiebreak: concat!(stringify!($a), ".id"),
        }
    };
    (@col $a:ident $s:ident) => { concat!(stringify!($a), ".", stringify!($s)) };
    (@col $a:ident $s:ident $c:ident) => { concat!(stringify!($a), ".", stringify!($c)) };
    (@filter $a:ident $c:ident $kind:ident) => {
        (
            stringify!($c),
            concat!(stringify!($a), ".", stringify!($c)),
            $crate::store::FilterKind::$kind,
        )
    };
}

/// A parsed `?limit=&offset=&sort=&<filter>=` query, ready to apply to SQL. Parsing it from a
/// query string is the HTTP layer's job (`http::list`).
#[derive(Debug, Clone)]
pub struct ListParams {
    pub limit: i64,
    pub offset: i64,
    pub(crate) order_by: String,
    /// `(column, operator, values)`; operators are literals from `http::list`. `IN` takes
    /// every value (`?value_tier=gold,platinum`), the others one.
    pub(crate) filters: Vec<(&'static str, &'static str, Vec<Arg>)>,
    /// `(columns, pattern)` for `?q=`.
    pub(crate) search: Option<(&'static [&'static str], String)>,
}

impl ListParams {
    /// Appends ` AND col <op> $n` for every filter given, and the `q` search.
    pub fn push_filters(&self, sql: &mut Sql) {
        for (col, op, args) in &self.filters {
            sql.push(" AND ").push(col).push(" ").push(op).push(" ");
            if *op == "IN" {
                sql.push("(");
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.bind(arg.clone());
                }
                sql.push(")");
            } else if let Some(arg) = args.first() {
                sql.bind(arg.clone());
            }
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

/// `%text%`, lower-cased, with LIKE's wildcards escaped so `q=50%` means a literal `%`.
pub fn like_pattern(q: &str) -> String {
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

impl<T> Page<T> {
    /// A list short by nature, always whole (a top-N ranking, one row per request type):
    /// one page of all. Lists that grow are paged ([`fetch_page`], [`Page::of`]).
    pub fn whole(items: Vec<T>) -> Page<T> {
        let n = items.len() as i64;
        Page {
            items,
            total: n,
            limit: n,
            offset: 0,
        }
    }
}

impl<T> Page<T> {
    /// A page the store has cut: its items and the count of all of them.
    pub fn cut(items: Vec<T>, total: i64, params: &ListParams) -> Page<T> {
        Page {
            items,
            total,
            limit: params.limit,
            offset: params.offset,
        }
    }

    /// One page of a list held in memory, `all` in its own order; `total` counts all of it.
    pub fn of(all: Vec<T>, params: &ListParams) -> Page<T> {
        let total = all.len() as i64;
        let items = all
            .into_iter()
            .skip(params.offset as usize)
            .take(params.limit as usize)
            .collect();
        Page {
            items,
            total,
            limit: params.limit,
            offset: params.offset,
        }
    }
}

/// Runs a list: `from_where` is `table alias [JOIN ...] WHERE ...` with scope already applied;
/// filters, ordering and paging are added here.
pub async fn fetch_page<T>(
    pool: &sqlx::AnyPool,
    columns: &str,
    mut from_where: Sql,
    params: &ListParams,
) -> Result<Page<T>, StoreError>
where
    T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    params.push_filters(&mut from_where);
    let mut count = Sql::new("SELECT COUNT(*) AS n FROM ");
    count.push(&from_where.text);
    count.args = from_where.args.clone();
    let total: (i64,) = count
        .query_as()
        .fetch_one(pool)
        .await
        .with_context(|| format!("counting {}", from_where.text))?;

    let mut list = Sql::new(&format!("SELECT {columns} FROM "));
    list.push(&from_where.text);
    list.args = from_where.args;
    list.push(" ORDER BY ")
        .push(&params.order_by)
        .push(" LIMIT ")
        .bind(params.limit)
        .push(" OFFSET ")
        .bind(params.offset);
    let items = list
        .query_as::<T>()
        .fetch_all(pool)
        .await
        .with_context(|| format!("listing {}", list.text))?;
    Ok(Page {
        items,
        total: total.0,
        limit: params.limit,
        offset: params.offset,
    })
}

/// One page of `select` (ordered, without its paging), each row made a record by `each`,
/// and the count of all of `table`'s rows: for lists that are their whole table (rule
/// versions, drafts, captures, backtests).
pub async fn table_page<R, T>(
    db: &super::Db,
    select: &str,
    table: &str,
    (limit, offset): (i64, i64),
    each: impl FnMut(R) -> T,
) -> Result<(Vec<T>, i64), StoreError>
where
    R: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    let rows: Vec<R> = sqlx::query_as(&format!("{select} LIMIT $1 OFFSET $2"))
        .bind(limit)
        .bind(offset)
        .fetch_all(&db.pool)
        .await
        .with_context(|| format!("listing {table}"))?;
    let (total,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&db.pool)
        .await
        .with_context(|| format!("counting {table}"))?;
    Ok((rows.into_iter().map(each).collect(), total))
}

/// The record a write has just made or changed, read back (absent only when deleted since).
pub fn written<T>(read: Option<T>) -> Result<T, StoreError> {
    read.ok_or(StoreError::Sql(sqlx::Error::RowNotFound))
}

/// The row `select` (`... WHERE id = $1`) finds for an id made here as a UUID, made a record
/// by `each`; anything else (NUL bytes included, which PostgreSQL refuses to compare) names
/// nothing.
pub async fn by_uuid<R, T>(
    db: &super::Db,
    select: &str,
    id: &str,
    what: &str,
    each: impl FnOnce(R) -> T,
) -> Result<Option<T>, StoreError>
where
    R: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    if uuid::Uuid::parse_str(id).is_err() {
        return Ok(None);
    }
    let row: Option<R> = sqlx::query_as(select)
        .bind(id)
        .fetch_optional(&db.pool)
        .await
        .with_context(|| format!("reading {what}"))?;
    Ok(row.map(each))
}

/// A record a feature keeps whole in a table of its own under a UUID id made here (rule
/// drafts, captures, backtests), outside the versioned [`Entity`](super::Entity) recipe:
/// read by id with [`kept`], a page at a time with [`kept_page`]. Declared with
/// [`kept!`](crate::kept).
pub trait Kept: Sized {
    /// The row as `COLUMNS` select it.
    type Row: for<'r> FromRow<'r, AnyRow> + Send + Unpin;
    const TABLE: &'static str;
    const COLUMNS: &'static str;
    /// The order of a page: `created_at DESC, id`.
    const ORDER: &'static str;
    /// What one is called in a 404 and a failed read: `capture`.
    const NOUN: &'static str;
    fn of(row: Self::Row) -> Self;
}

/// Declares a [`Kept`] record: its table, what one is called, its row and the columns
/// that select it, the order of a page, and the function that makes a row the record:
///
/// ```text
/// crate::kept! { Capture in "captures", noun "capture", row Row, columns COLUMNS,
///     order "created_at DESC, id", of capture_of }
/// ```
#[macro_export]
macro_rules! kept {
    ($ty:ident in $table:literal, noun $noun:literal, row $row:ty, columns $columns:expr,
        order $order:literal, of $of:path) => {
        impl $crate::store::Kept for $ty {
            type Row = $row;
            const TABLE: &'static str = $table;
            const COLUMNS: &'static str = $columns;
            const ORDER: &'static str = $order;
            const NOUN: &'static str = $noun;
            fn of(row: $row) -> Self {
                $of(row)
            }
        }
    };
}

/// The record `id` names, if any.
pub async fn kept<T: Kept>(db: &super::Db, id: &str) -> Result<Option<T>, StoreError> {
    let select = format!("SELECT {} FROM {} WHERE id = $1", T::COLUMNS, T::TABLE);
    by_uuid(db, &select, id, &format!("a {}", T::NOUN), T::of).await
}

/// A page of the records in [`Kept::ORDER`], and how many there are.
pub async fn kept_page<T: Kept>(
    db: &super::Db,
    limit: i64,
    offset: i64,
) -> Result<(Vec<T>, i64), StoreError> {
    let select = format!(
        "SELECT {} FROM {} ORDER BY {}",
        T::COLUMNS,
        T::TABLE,
        T::ORDER
    );
    table_page(db, &select, T::TABLE, (limit, offset), T::of).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_spec_qualifies_each_name_with_the_alias() {
        const SPEC: ListSpec = crate::list_spec!(a; text state; int points; float score;
            sort created_at, name; default "a.created_at");
        let filters: Vec<_> = SPEC
            .filters
            .iter()
            .map(|(n, c, k)| (*n, *c, *k as u8))
            .collect();
        assert_eq!(
            filters,
            [
                ("state", "a.state", FilterKind::Text as u8),
                ("points", "a.points", FilterKind::Int as u8),
                ("score", "a.score", FilterKind::Float as u8),
            ]
        );
        assert_eq!(
            SPEC.sorts,
            [("created_at", "a.created_at"), ("name", "a.name")]
        );
        assert_eq!((SPEC.default_sort, SPEC.tiebreak), ("a.created_at", "a.id"));
    }
}
