//! The read handlers of records a feature keeps in a table of its own, outside the versioned
//! CRM recipe (rule drafts and versions, captures, backtests, dead letters), written once:
//! [`table_handlers!`](crate::table_handlers).

use super::ApiError;
use crate::store::{kept, Db, Kept};

/// The record `id` names, or a 404 naming it (`capture {id}`).
pub async fn found<T: Kept>(db: &Db, id: &str) -> Result<T, ApiError> {
    kept(db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{} {id}", T::NOUN)))
}

/// Writes a feature's list and read handlers, each with its `#[utoipa::path]`:
///
/// ```text
/// crate::table_handlers! { CaptureState, tag "rules", |st, who| may_capture(&who);
///     /// Captures, newest first.
///     list "/api/v1/captures" as list_captures, Capture,
///         |limit, offset| kept_page(st.recorder.db(), limit, offset);
///     /// A capture: whether it records, how many events it holds.
///     read "/api/v1/captures/{id}" as get_capture, Capture, |id| found(st.recorder.db(), &id);
/// }
/// ```
///
/// The header names the state and the caller (a `Principal`) for the expressions, and the
/// check that the caller may read (a `Result<(), ApiError>`), run before anything else.
/// `list` answers a page (`?limit=&offset=`, 400 when out of range) of the `(items, total)`
/// its expression gives for the limit and offset it names; `read` the record its expression
/// gives for the `{id}` of the path (an `ApiError`, 404, when there is none). Both declare
/// bearer security, 401 and 403; `Page` and `ErrorBody` are the caller's imports. Doc
/// comments before a section are the handler's description.
#[macro_export]
macro_rules! table_handlers {
    ($S:ident, tag $tag:tt, |$st:ident, $who:ident| $check:expr;
        $($(#[doc = $doc:tt])* $section:ident $path:tt as $name:ident, $T:ident,
            |$($arg:ident),+| $fetch:expr;)*) => {
        $($crate::table_handlers!(@$section [$S, $tag, $st, $who, $check] [$($doc)*]
            $path, $name, $T, [$($arg),+], $fetch);)*
    };

    (@list [$S:ident, $tag:tt, $st:ident, $who:ident, $check:expr] [$($doc:tt)*]
        $path:tt, $name:ident, $T:ident, [$limit:ident, $offset:ident], $fetch:expr) => {
        $(#[doc = $doc])*
        #[utoipa::path(get, path = $path, tag = $tag,
            params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
            responses((status = 200, body = Page<$T>), (status = 400, body = ErrorBody),
                (status = 401), (status = 403, body = ErrorBody)),
            security(("bearer" = [])))]
        pub async fn $name(
            ::axum::extract::State($st): ::axum::extract::State<$S>,
            $who: $crate::access::Principal,
            ::axum::extract::Query(q): ::axum::extract::Query<
                ::std::collections::HashMap<String, String>,
            >,
        ) -> Result<::axum::Json<$crate::store::Page<$T>>, $crate::http::ApiError> {
            $check?;
            let params = $crate::store::ListParams::paging(&q)?;
            let ($limit, $offset) = (params.limit, params.offset);
            let (items, total) = $fetch.await?;
            Ok(::axum::Json($crate::store::Page::cut(items, total, &params)))
        }
    };

    (@read [$S:ident, $tag:tt, $st:ident, $who:ident, $check:expr] [$($doc:tt)*]
        $path:tt, $name:ident, $T:ident, [$id:ident], $fetch:expr) => {
        $(#[doc = $doc])*
        #[utoipa::path(get, path = $path, tag = $tag, params(("id" = String, Path)),
            responses((status = 200, body = $T), (status = 401), (status = 403, body = ErrorBody),
                (status = 404, body = ErrorBody)),
            security(("bearer" = [])))]
        pub async fn $name(
            ::axum::extract::State($st): ::axum::extract::State<$S>,
            $who: $crate::access::Principal,
            ::axum::extract::Path($id): ::axum::extract::Path<String>,
        ) -> Result<::axum::Json<$T>, $crate::http::ApiError> {
            $check?;
            Ok(::axum::Json($fetch.await?))
        }
    };
}
