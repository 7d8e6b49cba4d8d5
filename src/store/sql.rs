//! SQL built piece by piece with positional binds. User input only ever reaches SQL as bound
//! values; table and column names come from `'static` literals in the callers.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::{Query, QueryAs};
use sqlx::{Any, AnyConnection, FromRow};

/// `$q` (a `Query` or a `QueryAs`: they share no trait to bind through) with `$args` bound.
macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
                Arg::Float(f) => q.bind(*f),
                Arg::NullText => q.bind(Option::<String>::None),
                Arg::NullInt => q.bind(Option::<i64>::None),
            };
        }
        q
    }};
}

/// A bound value. Only the types `sqlx::Any` encodes on both databases.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    Int(i64),
    Float(f64),
    NullText,
    NullInt,
}

/// `impl From<$t> for Arg` by a conversion written once per type.
macro_rules! arg_from {
    ($($t:ty => |$v:ident| $to:expr;)*) => {$(
        impl From<$t> for Arg {
            fn from($v: $t) -> Arg {
                $to
            }
        }
    )*};
}

arg_from! {
    &str => |v| Arg::Text(v.to_string());
    String => |v| Arg::Text(v);
    &String => |v| Arg::Text(v.clone());
    i64 => |v| Arg::Int(v);
    f64 => |v| Arg::Float(v);
    bool => |v| Arg::Int(v as i64);
    Option<String> => |v| v.map(Arg::Text).unwrap_or(Arg::NullText);
    &Option<String> => |v| v.clone().into();
    Option<i64> => |v| v.map(Arg::Int).unwrap_or(Arg::NullInt);
    // By reference, for binding a record's fields where they are (`entity!`).
    &i64 => |v| Arg::Int(*v);
    &f64 => |v| Arg::Float(*v);
    &bool => |v| Arg::Int(*v as i64);
    &Option<i64> => |v| (*v).into();
}

/// JSON documents are stored as their text.
impl From<&serde_json::Value> for Arg {
    fn from(v: &serde_json::Value) -> Arg {
        Arg::Text(v.to_string())
    }
}
/// A missing float binds as a NULL integer: `Arg` has no float null, and the database casts
/// it on assignment.
impl From<&Option<f64>> for Arg {
    fn from(v: &Option<f64>) -> Arg {
        v.map(Arg::Float).unwrap_or(Arg::NullInt)
    }
}
/// Lists are stored as JSON text: they are read whole, never queried.
impl From<&Vec<String>> for Arg {
    fn from(v: &Vec<String>) -> Arg {
        Arg::Text(serde_json::to_string(v).unwrap_or_else(|_| "[]".into()))
    }
}

/// SQL text with its positional (`$n`) arguments, built up piece by piece.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
    /// Placeholders are `?` (see [`Sql::for_db`]).
    anonymous: bool,
}

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
            anonymous: false,
        }
    }

    /// Like [`Sql::new`], with `?` placeholders on SQLite, for statements with many binds
    /// (long `IN` lists on the hot path): sqlx finds a numbered parameter's place by its
    /// name, which costs the square of the parameter count on SQLite (see
    /// [`super::placeholders`]). Every placeholder of such a statement must come from
    /// [`Sql::bind`]: sqlx cannot mix `?` with `$n`.
    pub fn for_db(kind: super::DbKind, text: &str) -> Sql {
        Sql {
            anonymous: kind == super::DbKind::Sqlite,
            ..Sql::new(text)
        }
    }

    /// Appends trusted SQL text (never user input).
    pub fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Appends a `$n` placeholder (`?` when built [`Sql::for_db`] SQLite) bound to `value`.
    pub fn bind(&mut self, value: impl Into<Arg>) -> &mut Sql {
        self.args.push(value.into());
        if self.anonymous {
            self.text.push('?');
        } else {
            self.text.push('$');
            self.text.push_str(&self.args.len().to_string());
        }
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

    /// One `INSERT` of many rows that share `cols` (each row's values in that order).
    pub fn insert_many(table: &str, cols: &[&str], rows: Vec<Vec<Arg>>) -> Sql {
        let mut sql = Sql::new(&format!(
            "INSERT INTO {table} ({}) VALUES ",
            cols.join(", ")
        ));
        for (r, row) in rows.into_iter().enumerate() {
            sql.push(if r == 0 { "(" } else { ", (" });
            for (i, v) in row.into_iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind(v);
            }
            sql.push(")");
        }
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
        bind_args!(sqlx::query(&self.text), &self.args)
    }

    pub fn query_as<T>(&self) -> QueryAs<'_, Any, T, AnyArguments<'_>>
    where
        T: for<'r> FromRow<'r, AnyRow>,
    {
        bind_args!(sqlx::query_as::<Any, T>(&self.text), &self.args)
    }

    /// Runs a statement and returns the number of rows it touched.
    pub async fn execute(&self, conn: &mut AnyConnection) -> Result<u64, sqlx::Error> {
        Ok(self.query().execute(conn).await?.rows_affected())
    }
}
