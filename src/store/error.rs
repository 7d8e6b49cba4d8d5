//! The database's error type. It keeps which operation failed, so a 500's log says what query
//! broke, and the few failures callers answer differently (a duplicate, a dangling reference).

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// A query failed while doing `op` (named for the log, never shown to clients).
    #[error("{op}: {source}")]
    Query {
        op: String,
        #[source]
        source: sqlx::Error,
    },
    /// A value the database refused for a reason the caller can fix, such as a reference to a
    /// record that does not exist.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A unique value that is already taken.
    #[error("{0}")]
    Conflict(String),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url {0:?}: use sqlite://FILE or postgres://...")]
    Url(String),
}

impl StoreError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The underlying SQL error, if any.
    pub fn sql(&self) -> Option<&sqlx::Error> {
        match self {
            StoreError::Sql(e) | StoreError::Query { source: e, .. } => Some(e),
            _ => None,
        }
    }
}

/// Names the operation a query result belongs to: `.context("reading customers")?`.
pub trait ResultExt<T> {
    fn context(self, op: &str) -> Result<T, StoreError>;
    fn with_context(self, op: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T> ResultExt<T> for Result<T, sqlx::Error> {
    fn context(self, op: &str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Query {
            op: op.to_string(),
            source,
        })
    }

    fn with_context(self, op: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Query { op: op(), source })
    }
}
