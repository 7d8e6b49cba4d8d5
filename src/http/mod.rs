//! Shared HTTP plumbing: the error type, extractors, list parameters and optimistic versions.
//! Features own their routers.
pub mod days;
pub mod error;
pub mod idempotency;
pub mod list;
pub mod table;
pub mod version;
pub use error::{ApiError, ApiJson};
pub use version::{check_version, expected_version, nullable, Tagged};
