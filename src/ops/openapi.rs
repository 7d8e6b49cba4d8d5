//! The engine's part of the OpenAPI document (ingest, offers, channels, rules, operations).

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::ingest::ingest,
        crate::offers::list,
        crate::offers::one,
        crate::offers::respond,
        crate::offers::next_best,
        crate::offers::portal_stream,
        crate::offers::sms_dlr,
        super::stats,
        super::rules,
        super::reload,
        super::dead_letters,
        super::outbox,
    ),
    components(schemas(
        crate::http::error::ErrorBody,
        crate::ports::Recommendation,
        crate::ports::Status
    ))
)]
pub struct EngineApi;
