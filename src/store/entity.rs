//! Versioned records, stored one way: each entity declares its table, columns and how its
//! fields bind ([`Entity`]); the generic reads and writes here do the SQL. Scope is the
//! caller's `from` (`table alias [JOIN ...] WHERE ...`, scope applied), so this knows neither
//! principals nor HTTP. `crate::crud` builds the audited create / read / list / update /
//! delete on top.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow};

use super::{fetch_page, unique_violation, Arg, ListParams, Page, ResultExt, Sql, StoreError};

/// A table row with an id and a `version` column that every update bumps.
pub trait Entity: Clone + Serialize + Send + Sync + Unpin + 'static {
    /// The row as it comes out of SQL: `Self`, unless a column needs decoding first
    /// (0/1 flags, JSON lists).
    type Row: for<'r> FromRow<'r, AnyRow> + Send + Unpin + Into<Self>;
    /// The table written to.
    const TABLE: &'static str;
    /// The columns read, qualified by the alias the entity's `from` clauses use.
    const COLUMNS: &'static str;
    /// The id column, qualified the same way.
    const ID: &'static str;
    /// The record's name in the audit trail.
    const KIND: &'static str;
    /// What a missing record is called in a 404.
    const NOUN: &'static str = Self::KIND;
    /// The field a unique-constraint (or foreign-key) failure on write is blamed on.
    const UNIQUE: Option<&'static str> = None;
    /// Deleted softly: the column a delete stamps (the row stays for the audit trail and
    /// history, every read here skips it), qualified like `ID`. `None`: deleted for good.
    const DELETED: Option<&'static str> = None;

    fn id(&self) -> &str;
    fn version(&self) -> i64;
    /// Prepares the next version: `updated_at` (where there is one) and `version + 1`.
    fn next_version(&mut self, now: String);
    /// The columns an update writes (never `id` or `version`).
    fn values(&self) -> Vec<(&'static str, Arg)>;
    /// The columns only an insert writes, besides `id` and `version`: owner, `created_at`.
    fn insert_only(&self) -> Vec<(&'static str, Arg)>;
    /// The customer the record belongs to, which decides who may read its audit records.
    fn customer_id(&self) -> Option<&str> {
        None
    }
    /// Appends the condition that picks the record `key` names: its id, unless the entity is
    /// also addressed otherwise (a line by msisdn, an offering by code).
    fn push_key(sql: &mut Sql, key: &str) {
        sql.push(" AND ").push(Self::ID).push(" = ").bind(key);
    }
}

/// An entity whose records belong to a customer ([`entity!`](crate::entity)'s `owner`).
pub trait Owned: Entity {
    /// The table and its alias, as `from` clauses name it: `accounts a`.
    const TABLE_AS: &'static str;
    /// The owning customer's id column, qualified like `ID`.
    const OWNER: &'static str;
}

/// Customer `customer_id`'s records that are not deleted, in `order` (an `ORDER BY` list, a
/// `LIMIT` may follow): what a customer has, for the 360 view and imports.
pub async fn of_owner<E: Owned>(
    conn: &mut AnyConnection,
    customer_id: &str,
    order: &str,
) -> Result<Vec<E>, StoreError> {
    let mut sql = Sql::new(&format!("{} WHERE {} = ", E::TABLE_AS, E::OWNER));
    sql.bind(customer_id);
    let mut sql = live::<E>(sql);
    sql.push(" ORDER BY ").push(order);
    all(conn, sql).await
}

/// Every record `from` (`table alias WHERE ... ORDER BY ...`) selects.
pub async fn all<E: Entity>(conn: &mut AnyConnection, from: Sql) -> Result<Vec<E>, StoreError> {
    let mut sql = Sql::new(&format!("SELECT {} FROM ", E::COLUMNS));
    sql.push(&from.text);
    sql.args = from.args;
    let rows: Vec<E::Row> = sql
        .query_as()
        .fetch_all(conn)
        .await
        .with_context(|| format!("reading {}", E::TABLE))?;
    Ok(rows.into_iter().map(Into::into).collect())
}

fn select<E: Entity>(from: Sql, key: &str) -> Sql {
    let mut sql = Sql::new(&format!("SELECT {} FROM ", E::COLUMNS));
    sql.push(&from.text);
    sql.args = from.args;
    E::push_key(&mut sql, key);
    live::<E>(sql)
}

/// The softly deleted record among `from` (`... WHERE` naming it), to bring back.
pub async fn removed<E: Entity>(
    conn: &mut AnyConnection,
    mut from: Sql,
) -> Result<Option<E>, StoreError> {
    let Some(col) = E::DELETED else {
        return Ok(None);
    };
    from.push(&format!(" AND {col} IS NOT NULL"));
    first(conn, from).await
}

/// The record `from` (`table alias WHERE ...`) selects that is not deleted, if any: for
/// records found by something else than their key (a member by number).
pub async fn find<E: Entity>(conn: &mut AnyConnection, from: Sql) -> Result<Option<E>, StoreError> {
    first(conn, live::<E>(from)).await
}

/// The first record `from` selects.
async fn first<E: Entity>(conn: &mut AnyConnection, from: Sql) -> Result<Option<E>, StoreError> {
    let mut sql = Sql::new(&format!("SELECT {} FROM ", E::COLUMNS));
    sql.push(&from.text);
    sql.args = from.args;
    let row = sql
        .query_as::<E::Row>()
        .fetch_optional(conn)
        .await
        .with_context(|| format!("reading {}", E::TABLE))?;
    Ok(row.map(Into::into))
}

/// The column a soft delete stamps, unqualified.
fn deleted_column<E: Entity>() -> Option<&'static str> {
    E::DELETED.and_then(|c| c.split('.').nth(1))
}

/// `from` without the softly deleted rows (its `WHERE` is the scope, so there is one).
fn live<E: Entity>(mut from: Sql) -> Sql {
    if let Some(col) = E::DELETED {
        from.push(&format!(" AND {col} IS NULL"));
    }
    from
}

/// The record `key` names among `from`, or none.
pub async fn get<E: Entity>(
    conn: &mut AnyConnection,
    from: Sql,
    key: &str,
) -> Result<Option<E>, StoreError> {
    let row = select::<E>(from, key)
        .query_as::<E::Row>()
        .fetch_optional(conn)
        .await
        .with_context(|| format!("reading {}", E::TABLE))?;
    Ok(row.map(Into::into))
}

/// One page of `from`, filtered, sorted and paged by `params`.
pub async fn page<E: Entity>(
    pool: &sqlx::AnyPool,
    from: Sql,
    params: &ListParams,
) -> Result<Page<E>, StoreError> {
    let page: Page<E::Row> = fetch_page(pool, E::COLUMNS, live::<E>(from), params).await?;
    Ok(Page {
        items: page.items.into_iter().map(Into::into).collect(),
        total: page.total,
        limit: page.limit,
        offset: page.offset,
    })
}

fn write_error<E: Entity>(e: sqlx::Error, op: &str) -> StoreError {
    match E::UNIQUE {
        Some(field) => unique_violation(e, field),
        None => StoreError::Query {
            op: format!("{op} {}", E::TABLE),
            source: e,
        },
    }
}

/// Every column an insert of `e` writes, in one fixed order per entity.
pub fn row<E: Entity>(e: &E) -> Vec<(&'static str, Arg)> {
    let mut values = e.values();
    values.extend(e.insert_only());
    values.extend([("id", e.id().into()), ("version", e.version().into())]);
    values
}

pub async fn insert<E: Entity>(conn: &mut AnyConnection, e: &E) -> Result<(), StoreError> {
    Sql::insert(E::TABLE, row(e))
        .execute(conn)
        .await
        .map_err(|err| write_error::<E>(err, "inserting into"))?;
    Ok(())
}

/// Writes `e` while the stored row is still at `expected`; false when it has moved on.
pub async fn update<E: Entity>(
    conn: &mut AnyConnection,
    e: &E,
    expected: i64,
) -> Result<bool, StoreError> {
    let n = Sql::update_versioned(E::TABLE, e.id(), expected, e.values())
        .execute(conn)
        .await
        .map_err(|err| write_error::<E>(err, "updating"))?;
    Ok(n > 0)
}

pub async fn delete<E: Entity>(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    let mut sql = match deleted_column::<E>() {
        Some(col) => {
            let mut sql = Sql::new(&format!("UPDATE {} SET {col} = ", E::TABLE));
            sql.bind(super::now_text())
                .push(", version = version + 1 WHERE id = ");
            sql
        }
        None => Sql::new(&format!("DELETE FROM {} WHERE id = ", E::TABLE)),
    };
    sql.bind(id);
    sql.execute(conn)
        .await
        .with_context(|| format!("deleting from {}", E::TABLE))?;
    Ok(())
}

/// Brings a softly deleted `e` back as its next version: its fields written, the deletion
/// stamp cleared, while the stored row is still at `expected`; false when it has moved on.
pub async fn restore<E: Entity>(
    conn: &mut AnyConnection,
    e: &E,
    expected: i64,
) -> Result<bool, StoreError> {
    let mut values = e.values();
    if let Some(col) = deleted_column::<E>() {
        values.push((col, Arg::NullText));
    }
    let n = Sql::update_versioned(E::TABLE, e.id(), expected, values)
        .execute(conn)
        .await
        .map_err(|err| write_error::<E>(err, "restoring in"))?;
    Ok(n > 0)
}

/// Implements [`Entity`] for a record struct from its field lists, so an entity is declared
/// in one place and bound by its fields' types:
///
/// ```text
/// crate::entity! { Account in "accounts" as a, kind "account", owner customer_id;
///     update name, state; stamp updated_at; insert customer_id, created_at }
/// ```
///
/// `update` lists the columns a PATCH may change, `stamp` the column set to the time of each
/// new version, `insert` the columns only an insert writes; `id` and `version` are implied.
/// The columns read are all of them. Optional, in this order: `noun` (the 404's word, if not
/// the kind), `unique` (the field a constraint failure is blamed on), `row` (the type read
/// from SQL, if not the record), `owner` (the customer-id field the audit trail files it
/// under, which makes it [`Owned`]), `key` (a `fn(&mut Sql, &str)` when the record is also
/// addressed by something other than its id), `soft` (the column a delete stamps instead of
/// removing the row).
#[macro_export]
macro_rules! entity {
    ($ty:ident in $table:literal as $alias:ident, kind $kind:literal
        $(, noun $noun:literal)? $(, unique $unique:literal)? $(, row $row:ty)?
        $(, owner $owner:ident)? $(, key $key:path)? $(, soft $soft:ident)?;
        update $($u:ident),+; $(stamp $stamp:ident;)? insert $($i:ident),+ $(,)?) => {
        impl $crate::store::Entity for $ty {
            type Row = $crate::entity!(@row $($row)?);
            const TABLE: &'static str = $table;
            const COLUMNS: &'static str = concat!(
                stringify!($alias), ".id",
                $(", ", stringify!($alias), ".", stringify!($u),)+
                $(", ", stringify!($alias), ".", stringify!($stamp),)?
                $(", ", stringify!($alias), ".", stringify!($i),)+
                ", ", stringify!($alias), ".version"
            );
            const ID: &'static str = concat!(stringify!($alias), ".id");
            const KIND: &'static str = $kind;
            $(const NOUN: &'static str = $noun;)?
            $(const UNIQUE: Option<&'static str> = Some($unique);)?
            $(const DELETED: Option<&'static str> =
                Some(concat!(stringify!($alias), ".", stringify!($soft)));)?

            fn id(&self) -> &str {
                &self.id
            }
            fn version(&self) -> i64 {
                self.version
            }
            fn next_version(&mut self, _now: String) {
                $(self.$stamp = _now;)?
                self.version += 1;
            }
            fn values(&self) -> Vec<(&'static str, $crate::store::Arg)> {
                vec![
                    $((stringify!($u), $crate::store::Arg::from(&self.$u)),)+
                    $((stringify!($stamp), $crate::store::Arg::from(&self.$stamp)),)?
                ]
            }
            fn insert_only(&self) -> Vec<(&'static str, $crate::store::Arg)> {
                vec![$((stringify!($i), $crate::store::Arg::from(&self.$i)),)+]
            }
            $(fn customer_id(&self) -> Option<&str> {
                Some(&self.$owner)
            })?
            $(fn push_key(sql: &mut $crate::store::Sql, key: &str) {
                $key(sql, key)
            })?
        }
        $(impl $crate::store::entity::Owned for $ty {
            const TABLE_AS: &'static str = concat!($table, " ", stringify!($alias));
            const OWNER: &'static str = concat!(stringify!($alias), ".", stringify!($owner));
        })?
    };
    (@row) => { Self };
    (@row $row:ty) => { $row };
}
