//! The standard handlers of an entity, written once: [`crud_handlers!`](crate::crud_handlers).

/// Writes an entity's standard handlers (the sections named), each with its
/// `#[utoipa::path]`, and a function registering them all with `routes!`: its name follows
/// `routes`, and the entity's `router()` is it or starts from it. Handlers that do more (a
/// state machine's transitions, a delete with side effects) are written by hand beside it.
///
/// ```text
/// crate::crud_handlers! { Account in CrmState, tag "accounts", routes router;
///     |p| from owned::<Account>(&p), read p.require(Permission::ReadCustomers),
///         write require_operator_write(&p);
///     list "/api/v1/accounts", SPEC, (("state" = Option<String>, Query));
///     create "/api/v1/accounts", NewAccount, responses((status = 400), (status = 409));
///     read "/api/v1/accounts/{id}", (("id" = String, Path));
///     update "/api/v1/accounts/{id}", AccountPatch, (("id" = String, Path));
/// }
/// ```
///
/// The header names the caller (`p`, a `Principal`) for its expressions: the scoped `from`
/// clause of reads, updates and deletes, and the checks of who may read (lists, reads) and
/// who may write (the rest); a failed check answers before anything is read. A record that
/// lives under a parent the path names (`/customers/{id}/contacts/{contact_id}`) also names
/// the parent's id and a connection, and the check that the parent is the caller's, run
/// first on the handler's connection or transaction:
/// `|p, id, conn| from ..., read ..., write ..., parent require_customer(conn, &p, &id);`.
///
/// `list` takes its `ListSpec`, optionally `search [columns]` (`?q=`), and its parameters
/// (paging and `sort` are added); `read`, `update` and `remove` take their path parameters.
/// `create` goes through [`crud::Creatable`](crate::crud::Creatable) (`create_from`), or
/// under a parent [`crud::CreatableIn`](crate::crud::CreatableIn) (`create_in`) and its path
/// parameter;
/// `update` through [`crud::Editable`](crate::crud::Editable) (`patch`),
/// `remove` through [`crud::remove`](crate::crud::remove) (`Editable::check_remove` refuses
/// what is still needed); a `remove` not under a parent may add `if_match` (an `If-Match`
/// sent must be the stored version, 412). `responses(...)` adds to or replaces their
/// standard ones (list 200 and create 201, and 404 under a parent; read 200 / 404; update
/// 200 / 404 / 412; remove 204 / 404, and 412 with `if_match`). A handler is named after its
/// section unless `as name` follows the path (two entities in one module). Doc comments
/// before a section are the handler's description.
#[macro_export]
macro_rules! crud_handlers {
    ($E:ident in $S:ident, tag $tag:tt, routes $routes:ident;
        |$p:ident| from $from:expr, read $read:expr, write $write:expr;
        $($rest:tt)*) => {
        $crate::crud_handlers!(@next [$E, $S, $tag, $p, $from, $read, $write] $routes []
            $($rest)*);
    };
    ($E:ident in $S:ident, tag $tag:tt, routes $routes:ident;
        |$p:ident, $id:ident, $conn:ident| from $from:expr, read $read:expr, write $write:expr,
        parent $parent:expr; $($rest:tt)*) => {
        $crate::crud_handlers!(@next
            [$E, $S, $tag, $p, $from, $read, $write, $id, $conn, $parent] $routes []
            $($rest)*);
    };

    // Each section: its handler, and its name added to those `routes` registers.
    (@next [$E:ident, $S:ident, $($h:tt)*] $routes:ident [$([$n:ident $($d:ident)?])*]) => {
        pub fn $routes() -> ::utoipa_axum::router::OpenApiRouter<$S> {
            ::utoipa_axum::router::OpenApiRouter::new()
                $(.routes(::utoipa_axum::routes!($n)))*
        }
    };
    (@next $h:tt $routes:ident [$($done:tt)*] $(#[doc = $doc:tt])*
        $section:ident $path:tt $(as $name:ident)?, $($args:tt)*) => {
        $crate::crud_handlers!(@split $h $routes [$($done)* [$($name)? $section]]
            [$($doc)*] [$($name)? $section] $section $path [] $($args)*);
    };
    // The section's arguments run to its `;`.
    (@split $h:tt $routes:ident $done:tt $doc:tt $name:tt $section:ident $path:tt
        [$($args:tt)*] ; $($rest:tt)*) => {
        $crate::crud_handlers!(@$section $h $doc $name $path $($args)*);
        $crate::crud_handlers!(@next $h $routes $done $($rest)*);
    };
    (@split $h:tt $routes:ident $done:tt $doc:tt $name:tt $section:ident $path:tt
        [$($args:tt)*] $next:tt $($rest:tt)*) => {
        $crate::crud_handlers!(@split $h $routes $done $doc $name $section $path
            [$($args)* $next] $($rest)*);
    };

    // The check that the parent the path names is the caller's, on `$c`.
    (@parent $conn:ident, $parent:expr, $c:expr) => {
        let $conn: &mut ::sqlx::AnyConnection = $c;
        $parent.await?;
    };

    (@list [$E:ident, $S:ident, $tag:tt, $p:ident, $from:expr, $read:expr, $write:expr]
        [$($doc:tt)*] [$name:ident $($d:ident)?] $path:tt
        $spec:path $(, search [$($col:tt),*])?, ($($param:tt),*)) => {
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
            let params =
                $crate::store::ListParams::parse_with_search(&$spec, &[$($($col),*)?], &q)?;
            $crate::crud::list(&st.db, $from, &params).await
        }
    };
    (@list [$E:ident, $S:ident, $tag:tt, $p:ident, $from:expr, $read:expr, $write:expr,
            $id:ident, $conn:ident, $parent:expr]
        [$($doc:tt)*] [$name:ident $($d:ident)?] $path:tt
        $spec:path $(, search [$($col:tt),*])?, ($parent_param:tt $(, $param:tt)*)) => {
        $(#[doc = $doc])*
        #[utoipa::path(get, path = $path, tag = $tag,
            params($parent_param, ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query),
                ("sort" = Option<String>, Query) $(, $param)*),
            responses((status = 200, body = Page<$E>), (status = 404)))]
        pub async fn $name(
            ::axum::extract::State(st): ::axum::extract::State<$S>,
            $p: $crate::access::Principal,
            ::axum::extract::Path($id): ::axum::extract::Path<String>,
            ::axum::extract::Query(q): ::axum::extract::Query<
                ::std::collections::HashMap<String, String>,
            >,
        ) -> Result<::axum::Json<$crate::store::Page<$E>>, $crate::http::ApiError> {
            $read?;
            let params =
                $crate::store::ListParams::parse_with_search(&$spec, &[$($($col),*)?], &q)?;
            {
                // Given back before the list takes its own.
                let mut c = st.db.pool.acquire().await?;
                $crate::crud_handlers!(@parent $conn, $parent, &mut *c);
            }
            $crate::crud::list(&st.db, $from, &params).await
        }
    };

    (@create [$E:ident, $S:ident, $tag:tt, $p:ident, $from:expr, $read:expr, $write:expr]
        [$($doc:tt)*] [$name:ident $($d:ident)?] $path:tt
        $New:ident $(, responses($($resp:tt),*))?) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = $tag, request_body = $New,
            responses((status = 201, body = $E) $($(, $resp)*)?))]
        pub async fn $name(
            ::axum::extract::State(st): ::axum::extract::State<$S>,
            $p: $crate::access::Principal,
            $crate::http::ApiJson(req): $crate::http::ApiJson<$New>,
        ) -> Result<$crate::http::Tagged<$E>, $crate::http::ApiError> {
            $write?;
            $crate::crud::create_from::<$E>(&st.db, &$p, req).await
        }
    };

    (@create [$E:ident, $S:ident, $tag:tt, $p:ident, $from:expr, $read:expr, $write:expr,
            $id:ident, $conn:ident, $parent:expr]
        [$($doc:tt)*] [$name:ident $($d:ident)?] $path:tt
        $New:ident, ($($param:tt),*) $(, responses($($resp:tt),*))?) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = $tag, params($($param),*), request_body = $New,
            responses((status = 201, body = $E), (status = 404) $($(, $resp)*)?))]
        pub async fn $name(
            ::axum::extract::State(st): ::axum::extract::State<$S>,
            $p: $crate::access::Principal,
            ::axum::extract::Path($id): ::axum::extract::Path<String>,
            $crate::http::ApiJson(req): $crate::http::ApiJson<$New>,
        ) -> Result<$crate::http::Tagged<$E>, $crate::http::ApiError> {
            $write?;
            let e = <$E as $crate::crud::CreatableIn>::build_in(&$id, req, &$p)?;
            let mut tx = $crate::store::begin_write(&st.db).await?;
            $crate::crud_handlers!(@parent $conn, $parent, &mut *tx);
            $crate::crud::create_in(tx, &$p, e).await
        }
    };

    (@read [$E:ident, $S:ident, $tag:tt, $p:ident, $from:expr, $read:expr, $write:expr]
        [$($doc:tt)*] [$name:ident $($d:ident)?] $path:tt ($($param:tt),*)) => {
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
    (@read [$E:ident, $S:ident, $tag:tt, $p:ident, $from:expr, $read:expr, $write:expr,
            $id:ident, $conn:ident, $parent:expr]
        [$($doc:tt)*] [$name:ident $($d:ident)?] $path:tt ($($param:tt),*)) => {
        $(#[doc = $doc])*
        #[utoipa::path(get, path = $path, tag = $tag, params($($param),*),
            responses((status = 200, body = $E), (status = 404)))]
        pub async fn $name(
            ::axum::extract::State(st): ::axum::extract::State<$S>,
            $p: $crate::access::Principal,
            ::axum::extract::Path(($id, key)): ::axum::extract::Path<(String, String)>,
        ) -> Result<$crate::http::Tagged<$E>, $crate::http::ApiError> {
            $read?;
            let mut c = st.db.pool.acquire().await?;
            let $conn = &mut *c;
            $parent.await?;
            let e: $E = $crate::crud::load($conn, $from, &key).await?;
            Ok($crate::http::Tagged::ok($crate::store::Entity::version(&e), e))
        }
    };

    (@update [$E:ident, $S:ident, $tag:tt, $p:ident, $from:expr, $read:expr, $write:expr]
        [$($doc:tt)*] [$name:ident $($d:ident)?] $path:tt
        $Patch:ident, ($($param:tt),*) $(, responses($($resp:tt),*))?) => {
        $(#[doc = $doc])*
        #[utoipa::path(patch, path = $path, tag = $tag, params($($param),*),
            request_body = $Patch,
            responses((status = 200, body = $E), (status = 404), (status = 412)
                $($(, $resp)*)?))]
        pub async fn $name(
            ::axum::extract::State(st): ::axum::extract::State<$S>,
            $p: $crate::access::Principal,
            ::axum::extract::Path(key): ::axum::extract::Path<String>,
            headers: ::axum::http::HeaderMap,
            $crate::http::ApiJson(patch): $crate::http::ApiJson<$Patch>,
        ) -> Result<$crate::http::Tagged<$E>, $crate::http::ApiError> {
            $write?;
            let expected = $crate::http::expected_version(&headers, patch.version)?;
            let tx = $crate::store::begin_write(&st.db).await?;
            $crate::crud::patch::<$E>(tx, &$p, $from, &key, expected, patch).await
        }
    };
    (@update [$E:ident, $S:ident, $tag:tt, $p:ident, $from:expr, $read:expr, $write:expr,
            $id:ident, $conn:ident, $parent:expr]
        [$($doc:tt)*] [$name:ident $($d:ident)?] $path:tt
        $Patch:ident, ($($param:tt),*) $(, responses($($resp:tt),*))?) => {
        $(#[doc = $doc])*
        #[utoipa::path(patch, path = $path, tag = $tag, params($($param),*),
            request_body = $Patch,
            responses((status = 200, body = $E), (status = 404), (status = 412)
                $($(, $resp)*)?))]
        pub async fn $name(
            ::axum::extract::State(st): ::axum::extract::State<$S>,
            $p: $crate::access::Principal,
            ::axum::extract::Path(($id, key)): ::axum::extract::Path<(String, String)>,
            headers: ::axum::http::HeaderMap,
            $crate::http::ApiJson(patch): $crate::http::ApiJson<$Patch>,
        ) -> Result<$crate::http::Tagged<$E>, $crate::http::ApiError> {
            $write?;
            let expected = $crate::http::expected_version(&headers, patch.version)?;
            let mut tx = $crate::store::begin_write(&st.db).await?;
            $crate::crud_handlers!(@parent $conn, $parent, &mut *tx);
            $crate::crud::patch::<$E>(tx, &$p, $from, &key, expected, patch).await
        }
    };

    (@remove [$E:ident, $S:ident, $tag:tt, $p:ident, $from:expr, $read:expr, $write:expr]
        [$($doc:tt)*] [$name:ident $($d:ident)?] $path:tt ($($param:tt),*), if_match
        $(, responses($($resp:tt),*))?) => {
        $(#[doc = $doc])*
        #[utoipa::path(delete, path = $path, tag = $tag,
            params($($param,)*
                ("If-Match" = Option<String>, Header, description = "ETag of the version read")),
            responses((status = 204), (status = 404), (status = 412) $($(, $resp)*)?))]
        pub async fn $name(
            ::axum::extract::State(st): ::axum::extract::State<$S>,
            $p: $crate::access::Principal,
            ::axum::extract::Path(key): ::axum::extract::Path<String>,
            headers: ::axum::http::HeaderMap,
        ) -> Result<::axum::http::StatusCode, $crate::http::ApiError> {
            $write?;
            let tx = $crate::store::begin_write(&st.db).await?;
            $crate::crud::remove::<$E>(tx, &$p, $from, &key, Some(&headers)).await
        }
    };
    (@remove [$E:ident, $S:ident, $tag:tt, $p:ident, $from:expr, $read:expr, $write:expr]
        [$($doc:tt)*] [$name:ident $($d:ident)?] $path:tt ($($param:tt),*)
        $(, responses($($resp:tt),*))?) => {
        $(#[doc = $doc])*
        #[utoipa::path(delete, path = $path, tag = $tag, params($($param),*),
            responses((status = 204), (status = 404) $($(, $resp)*)?))]
        pub async fn $name(
            ::axum::extract::State(st): ::axum::extract::State<$S>,
            $p: $crate::access::Principal,
            ::axum::extract::Path(key): ::axum::extract::Path<String>,
        ) -> Result<::axum::http::StatusCode, $crate::http::ApiError> {
            $write?;
            let tx = $crate::store::begin_write(&st.db).await?;
            $crate::crud::remove::<$E>(tx, &$p, $from, &key, None).await
        }
    };
    (@remove [$E:ident, $S:ident, $tag:tt, $p:ident, $from:expr, $read:expr, $write:expr,
            $id:ident, $conn:ident, $parent:expr]
        [$($doc:tt)*] [$name:ident $($d:ident)?] $path:tt ($($param:tt),*)) => {
        $(#[doc = $doc])*
        #[utoipa::path(delete, path = $path, tag = $tag, params($($param),*),
            responses((status = 204), (status = 404)))]
        pub async fn $name(
            ::axum::extract::State(st): ::axum::extract::State<$S>,
            $p: $crate::access::Principal,
            ::axum::extract::Path(($id, key)): ::axum::extract::Path<(String, String)>,
        ) -> Result<::axum::http::StatusCode, $crate::http::ApiError> {
            $write?;
            let mut tx = $crate::store::begin_write(&st.db).await?;
            $crate::crud_handlers!(@parent $conn, $parent, &mut *tx);
            $crate::crud::remove::<$E>(tx, &$p, $from, &key, None).await
        }
    };
}
