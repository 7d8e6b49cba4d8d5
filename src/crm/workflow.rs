//! What the CRM's workflows share besides the entity recipe (`crate::crud`): their
//! append-only records (state history, follow-ups, activities, ledger entries, notices),
//! written once with a `seq` that orders them and listed a page at a time under the record
//! they belong to, and the few steps every state change takes. Their plain list and read
//! handlers are `crud_handlers!` sections. A handler's `#[utoipa::path]` stays written on it
//! (the served-routes test in `app.rs` reads the annotations from the source); the macros
//! write what follows.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use sqlx::any::AnyRow;

use crate::audit::{self, snapshot, Change};
use crate::auth::Principal;
use crate::crud::{self, Tx};
use crate::http::{ApiError, Tagged};
use crate::store::{fetch_page, next_seq, Arg, Db, Entity, ListParams, ListSpec, Page, Sql};

/// Every row `from` (`table alias WHERE ... ORDER BY ...`) selects, read as `R` through
/// `columns`, as `T`: a customer's records for the 360 view.
pub async fn all<R, T>(
    conn: &mut sqlx::AnyConnection,
    columns: &str,
    from: Sql,
) -> Result<Vec<T>, sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin + Into<T>,
{
    let mut sql = Sql::new(&format!("SELECT {columns} FROM "));
    sql.push(&from.text);
    sql.args = from.args;
    let rows: Vec<R> = sql.query_as().fetch_all(conn).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// One page of `from`, each row read as `R` through `columns` and answered as `T` (rows
/// whose columns need decoding: JSON text, 0/1 flags).
pub async fn page_as<R, T>(
    db: &Db,
    columns: &str,
    from: Sql,
    params: &ListParams,
) -> Result<Page<T>, ApiError>
where
    R: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin + Into<T>,
{
    let page: Page<R> = fetch_page(&db.pool, columns, from, params).await?;
    Ok(Page {
        items: page.items.into_iter().map(Into::into).collect(),
        total: page.total,
        limit: page.limit,
        offset: page.offset,
    })
}

/// A record written once and never changed: its table, how it is read, what it is called
/// in the audit trail. Declared with [`logged!`].
pub trait Logged: Serialize + Send + Sync {
    const TABLE: &'static str;
    /// The alias its `from` clauses use.
    const ALIAS: &'static str;
    /// The columns read, qualified by that alias.
    const COLUMNS: &'static str;
    /// The record's name in the audit trail.
    const KIND: &'static str;
    fn id(&self) -> &str;
    /// The customer it belongs to, which decides who may read its audit record.
    fn customer_id(&self) -> Option<&str>;
    /// Every column but `seq`, bound by its Rust type.
    fn values(&self) -> Vec<(&'static str, Arg)>;
}

/// A customer-id field, required or not.
pub trait Owner {
    fn owner(&self) -> Option<&str>;
}

impl Owner for String {
    fn owner(&self) -> Option<&str> {
        Some(self)
    }
}

impl Owner for Option<String> {
    fn owner(&self) -> Option<&str> {
        self.as_deref()
    }
}

/// Implements [`Logged`] from the record's fields (`id` first):
///
/// ```text
/// logged! { FollowUp in "opportunity_follow_ups" as f, kind "opportunity_follow_up",
///     owner customer_id; id, opportunity_id, customer_id, kind, note, at }
/// ```
macro_rules! logged {
    ($ty:ident in $table:literal as $alias:ident, kind $kind:literal $(, owner $owner:ident)?;
        $id:ident $(, $f:ident)+ $(,)?) => {
        impl $crate::crm::workflow::Logged for $ty {
            const TABLE: &'static str = $table;
            const ALIAS: &'static str = stringify!($alias);
            const COLUMNS: &'static str = concat!(
                stringify!($alias), ".", stringify!($id)
                $(, ", ", stringify!($alias), ".", stringify!($f))+
            );
            const KIND: &'static str = $kind;
            fn id(&self) -> &str {
                &self.$id
            }
            #[allow(unreachable_code)]
            fn customer_id(&self) -> Option<&str> {
                $(return $crate::crm::workflow::Owner::owner(&self.$owner);)?
                None
            }
            fn values(&self) -> Vec<(&'static str, $crate::store::Arg)> {
                vec![
                    (stringify!($id), $crate::store::Arg::from(&self.$id)),
                    $((stringify!($f), $crate::store::Arg::from(&self.$f)),)+
                ]
            }
        }
    };
}
pub(crate) use logged;

/// Appends `rec` to its table with the next `seq` (inside the caller's transaction).
pub async fn append<L: Logged>(conn: &mut sqlx::AnyConnection, rec: &L) -> Result<(), sqlx::Error> {
    let mut values = rec.values();
    values.push(("seq", next_seq().into()));
    Sql::insert(L::TABLE, values).execute(conn).await?;
    Ok(())
}

/// Appends `rec`, records it as `action` by `actor` and commits.
pub async fn commit_as<L: Logged>(
    mut tx: Tx,
    actor: &Principal,
    action: &str,
    rec: &L,
) -> Result<(), ApiError> {
    append(&mut tx, rec).await?;
    let change = Change {
        entity: L::KIND,
        entity_id: rec.id(),
        action,
        customer_id: rec.customer_id(),
        before: None,
        after: snapshot(rec),
    };
    audit::record(&mut tx, actor, change).await?;
    tx.commit().await?;
    Ok(())
}

/// Appends `rec`, records its creation and commits: 201 with the record.
pub async fn add<L: Logged>(
    tx: Tx,
    actor: &Principal,
    rec: L,
) -> Result<(StatusCode, Json<L>), ApiError> {
    commit_as(tx, actor, "create", &rec).await?;
    Ok((StatusCode::CREATED, Json(rec)))
}

/// Adds a record to the parent `id` names among `scoped` (404 named as the parent): built
/// from the parent, created and committed: 201.
pub async fn add_to<P: Entity, L: Logged>(
    db: &Db,
    actor: &Principal,
    scoped: Sql,
    id: &str,
    build: impl FnOnce(&P) -> L,
) -> Result<(StatusCode, Json<L>), ApiError> {
    let mut tx = crate::store::begin_write(db).await?;
    let parent: P = crud::load(&mut tx, scoped, id).await?;
    add(tx, actor, build(&parent)).await
}

/// Checks a note of a kind (a follow-up's, an activity's): `kind` one of `kinds`, `note`
/// text of at most 4000 characters.
pub fn check_note(kinds: &[&str], kind: &str, note: &str) -> Result<(), ApiError> {
    crate::crm::validate::one_of("kind", kind, kinds)?;
    crate::crm::validate::text("note", note, 4000)
}

/// Where a parent's records are listed from: paged, no filters, in `seq` order.
pub struct Children {
    pub spec: ListSpec,
    pub columns: &'static str,
    pub table: &'static str,
    pub alias: &'static str,
    /// The column naming the parent, unqualified.
    pub parent: &'static str,
}

impl Children {
    /// `sort` is the `seq` order (`h.seq`, `f.seq DESC`), `tiebreak` the id column.
    pub const fn new(
        (table, alias, parent): (&'static str, &'static str, &'static str),
        columns: &'static str,
        sort: &'static str,
        tiebreak: &'static str,
    ) -> Children {
        Children {
            spec: ListSpec {
                filters: &[],
                sorts: &[],
                default_sort: sort,
                tiebreak,
            },
            columns,
            table,
            alias,
            parent,
        }
    }

    /// The records `L` of a parent named by their column `parent`.
    pub const fn log<L: Logged>(
        parent: &'static str,
        sort: &'static str,
        tiebreak: &'static str,
    ) -> Children {
        Children::new((L::TABLE, L::ALIAS, parent), L::COLUMNS, sort, tiebreak)
    }

    /// One page of the records of `parent_id`, each read as `R` and answered as `T`.
    pub async fn page<R, T>(
        &self,
        db: &Db,
        parent_id: &str,
        params: &ListParams,
    ) -> Result<Page<T>, ApiError>
    where
        R: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin + Into<T>,
    {
        let (table, alias, parent) = (self.table, self.alias, self.parent);
        let mut sql = Sql::new(&format!("{table} {alias} WHERE {alias}.{parent} = "));
        sql.bind(parent_id);
        page_as::<R, T>(db, self.columns, sql, params).await
    }

    /// A GET of them: the paging checked (400), then the parent `id` among `scoped` (404
    /// named as the parent), then one page.
    pub async fn list<P: Entity, R, T>(
        &self,
        db: &Db,
        scoped: Sql,
        id: &str,
        q: &HashMap<String, String>,
    ) -> Result<Json<Page<T>>, ApiError>
    where
        R: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin + Into<T>,
    {
        let params = ListParams::parse(&self.spec, q)?;
        crud::load::<P>(&mut *db.pool.acquire().await?, scoped, id).await?;
        Ok(Json(self.page::<R, T>(db, id, &params).await?))
    }
}

/// A GET of a parent's records ([`Children`]): the caller's check, then
/// [`Children::list`]. The handler's attributes (its doc and its path annotation) come
/// first, as on any handler, then its name, the record type `T` and how a row is read (`T`
/// unless it needs decoding), the parent and the [`Children`] listed:
///
/// ```text
/// children_route! {
///     (the handler's attributes)
///     list_follow_ups: FollowUp as FollowUp, of Opportunity, in FOLLOW_UPS;
///     |p| p.require(Permission::ReadCustomers), owned::<Opportunity>(&p)
/// }
/// ```
macro_rules! children_route {
    ($(#[$m:meta])* $name:ident: $T:ident as $Row:ty, of $Parent:ty, in $children:path;
        |$p:ident| $check:expr, $scoped:expr $(,)?) => {
        $(#[$m])*
        pub async fn $name(
            State(st): State<CrmState>,
            $p: Principal,
            Path(id): Path<String>,
            Query(q): Query<HashMap<String, String>>,
        ) -> Result<Json<Page<$T>>, ApiError> {
            $check?;
            $children.list::<$Parent, $Row, $T>(&st.db, $scoped, &id, &q).await
        }
    };
}
pub(crate) use children_route;

/// The step every state change ends with: `after` written as the next version of `before`
/// (412 if the row moved on), `log` appended for the new version, the change recorded as
/// `action`, the commit, and the record answered with its `ETag`.
pub async fn save<E: Entity, L: Logged>(
    mut tx: Tx,
    actor: &Principal,
    action: &str,
    before: &E,
    after: E,
    log: impl FnOnce(&E) -> Option<L>,
) -> Result<Tagged<E>, ApiError> {
    let after = crud::write(&mut tx, before, after).await?;
    if let Some(entry) = log(&after) {
        append(&mut tx, &entry).await?;
    }
    crud::commit(tx, actor, action, before, &after).await?;
    Ok(Tagged::ok(after.version(), after))
}

/// The audit record of `after`, an entity's new version (or a new entity, without
/// `before`), recorded as `action`.
pub fn change<'a, E: Entity>(action: &'a str, before: Option<&E>, after: &'a E) -> Change<'a> {
    Change {
        entity: E::KIND,
        entity_id: after.id(),
        action,
        customer_id: after.customer_id(),
        before: before.and_then(snapshot),
        after: snapshot(after),
    }
}

/// A body that may be empty: the default then, else the JSON (400 naming what is wrong).
pub fn optional_body<T: serde::de::DeserializeOwned + Default>(
    body: &axum::body::Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest {
        field: None,
        message: format!("invalid JSON body: {e}"),
    })
}
