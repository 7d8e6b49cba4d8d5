//! The one documented route not registered through `routes!`: HTTP ingest keeps its own router
//! (`ingest::router`), so its operation is listed here. Every other operation is gathered from
//! the routers in `app.rs`.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(crate::ingest::ingest),
    components(schemas(
        crate::http::error::ErrorBody,
        crate::ports::Recommendation,
        crate::ports::Status
    ))
)]
pub struct IngestApi;
