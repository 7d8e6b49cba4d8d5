//! Shared HTTP plumbing: the error type and extractors. Features own their routers.
pub mod error;
pub use error::{ApiError, ApiJson};
