//! The standard handlers of an entity, written once: [`crud_handlers!`](crate::crud_handlers).

/// Writes an entity's standard handlers, `list`, `create`, `read` and `update` (those named),
/// each with its `#[utoipa::path]`, so its entry in the API document comes with it. The
/// entity's module registers them with `routes!` like any handler, and writes by hand the
/// handlers that do more (a state machine's transitions, a delete with side effects).
///
/// ```text
/// crate::crud_handlers! { Account in CrmState, tag "accounts";
///     |p| from repo::scoped(&p), read p.require(Permission::ReadCustomers),
///         write require_operator_write(&p);
///     list "/api/v1/accounts", SPEC, (("state" = Option<String>, Query));
///     create "/api/v1/accounts", NewAccount, responses((status = 400), (status = 409));
///     read "/api/v1/accounts/{id}", (("id" = String, Path));
///     update "/api/v1/accounts/{id}", AccountPatch, (("id" = String, Path));
/// }
/// ```
///
/// The header names the caller (`p`, a `Principal`) for its three expressions: the scoped
/// `from` clause of reads and updates, and the checks of who may read (lists, reads) and
/// who may write (creates, updates); a failed check answers before anything is read.
/// `list` takes its `ListSpec`, optionally `search [columns]` (`?q=`), and its filters'
/// parameters (paging and `sort` are added); `read` and `update` take their path
/// parameters. `create` goes through [`crud::Creatable`](crate::crud::Creatable)
/// (`create_from`), `update` through [`crud::Editable`](crate::crud::Editable) (`patch`);
/// `responses(...)` adds to their standard ones (201; 200 / 404 / 412). A handler is named
/// after its section unless `as name` follows the path (two entities in one module). Doc
/// comments before a section are the handler's description.
#[macro_export]
macro_rules! crud_handlers {
    ($E:ident in $S:ident, tag $tag:tt;
        |$p:ident| from $from:expr, read $read:expr, write $write:expr;
        $($rest:tt)*) => {
        $crate::crud_handlers!(@next [$E, $S, $tag, $p, $from, $read, $write] $($rest)*);
    };

    (@next $h:tt) => {};
    (@next $h:tt $(#[doc = $doc:tt])*
        list $path:tt $(as $name:ident)?, $spec:path $(, search [$($col:tt),*])?,
        ($($param:tt),*); $($rest:tt)*) => {
        $crate::crud_handlers!(@list $h [$($doc)*] [$($name)? list] $path, $spec,
            [$($($col),*)?], ($($param),*));
        $crate::crud_handlers!(@next $h $($rest)*);
    };
    (@next $h:tt $(#[doc = $doc:tt])*
        create $path:tt $(as $name:ident)?, $New:ident $(, responses($($resp:tt),*))?;
        $($rest:tt)*) => {
        $crate::crud_handlers!(@create $h [$($doc)*] [$($name)? create] $path, $New,
            ($($($resp),*)?));
        $crate::crud_handlers!(@next $h $($rest)*);
    };
    (@next $h:tt $(#[doc = $doc:tt])*
        read $path:tt $(as $name:ident)?, ($($param:tt),*); $($rest:tt)*) => {
        $crate::crud_handlers!(@read $h [$($doc)*] [$($name)? read] $path, ($($param),*));
        $crate::crud_handlers!(@next $h $($rest)*);
    };
    (@next $h:tt $(#[doc = $doc:tt])*
        update $path:tt $(as $name:ident)?, $Patch:ident, ($($param:tt),*)
        $(, responses($($resp:tt),*))?; $($rest:tt)*) => {
        $crate::crud_handlers!(@update $h [$($doc)*] [$($name)? update] $path, $Patch,
            ($($param),*), ($($($resp),*)?));
        $crate::crud_handlers!(@next $h $($rest)*);
    };

    (@list [$E:ident, $S:ident, $tag:tt, $p:ident, $from:expr, $read:expr, $write:expr]
        [$($doc:tt)*] [$name:ident $($default:ident)?] $path:tt, $spec:path, [$($col:tt),*], ($($param:tt),*)) => {
        $(#[doc = $doc])*
        #[utoipa::path(get, path = $path, tag = $tag,
            params(("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query),
                ("sort" = Option<String>, Query) $(, $param)*),
            responses((status = 200, body = Page<$E>)))]
        pub async fn $name(
            ::axum::extract::State(st): ::axum::extract::State<$S>,
            $p: $crate::access::Principal,
            ::axum::extract::Query(q): ::axum::extract::Query<
                ::std::collections::HashMap<String, String>,
            >,
        ) -> Result<::axum::Json<$crate::store::Page<$E>>, $crate::http::ApiError> {
            $read?;
            let params = $crate::store::ListParams::parse_with_search(&$spec, &[$($col),*], &q)?;
            $crate::crud::list(&st.db, $from, &params).await
        }
    };

    (@create [$E:ident, $S:ident, $tag:tt, $p:ident, $from:expr, $read:expr, $write:expr]
        [$($doc:tt)*] [$name:ident $($default:ident)?] $path:tt, $New:ident, ($($resp:tt),*)) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = $tag, request_body = $New,
            responses((status = 201, body = $E) $(, $resp)*))]
        pub async fn $name(
            ::axum::extract::State(st): ::axum::extract::State<$S>,
            $p: $crate::access::Principal,
            $crate::http::ApiJson(req): $crate::http::ApiJson<$New>,
        ) -> Result<$crate::http::Tagged<$E>, $crate::http::ApiError> {
            $write?;
            $crate::crud::create_from::<$E>(&st.db, &$p, req).await
        }
    };

    (@read [$E:ident, $S:ident, $tag:tt, $p:ident, $from:expr, $read:expr, $write:expr]
        [$($doc:tt)*] [$name:ident $($default:ident)?] $path:tt, ($($param:tt),*)) => {
        $(#[doc = $doc])*
        #[utoipa::path(get, path = $path, tag = $tag, params($($param),*),
            responses((status = 200, body = $E), (status = 404)))]
        pub async fn $name(
            ::axum::extract::State(st): ::axum::extract::State<$S>,
            $p: $crate::access::Principal,
            ::axum::extract::Path(key): ::axum::extract::Path<String>,
        ) -> Result<$crate::http::Tagged<$E>, $crate::http::ApiError> {
            $read?;
            $crate::crud::read(&st.db, $from, &key).await
        }
    };

    (@update [$E:ident, $S:ident, $tag:tt, $p:ident, $from:expr, $read:expr, $write:expr]
        [$($doc:tt)*] [$name:ident $($default:ident)?] $path:tt, $Patch:ident, ($($param:tt),*), ($($resp:tt),*)) => {
        $(#[doc = $doc])*
        #[utoipa::path(patch, path = $path, tag = $tag, params($($param),*),
            request_body = $Patch,
            responses((status = 200, body = $E), (status = 404), (status = 412) $(, $resp)*))]
        pub async fn $name(
            ::axum::extract::State(st): ::axum::extract::State<$S>,
            $p: $crate::access::Principal,
            ::axum::extract::Path(key): ::axum::extract::Path<String>,
            headers: ::axum::http::HeaderMap,
            $crate::http::ApiJson(patch): $crate::http::ApiJson<$Patch>,
        ) -> Result<$crate::http::Tagged<$E>, $crate::http::ApiError> {
            $write?;
            let expected = $crate::http::expected_version(&headers, patch.version)?;
            $crate::crud::patch::<$E>(&st.db, &$p, $from, &key, expected, patch).await
        }
    };
}
