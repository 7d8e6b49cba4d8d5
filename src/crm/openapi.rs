//! The OpenAPI 3 document's frame: title, security schemes, operation ids. Its paths come from
//! the routers themselves (`routes!` registers each handler with the method and path of its
//! `#[utoipa::path]`), gathered in `app.rs`; handlers state only what differs from the default
//! security requirement here.

use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::{Modify, OpenApi};

/// Operations anyone may call: login, and delivery reports, which carry a per-message token.
const PUBLIC: &[&str] = &["/api/v1/auth/login", "/api/v1/channels/sms/dlr"];

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        c.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
        );
        // Every operation needs a bearer token or an API key unless it is public or says
        // otherwise (the engine's endpoints take a bearer).
        let default = vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("api_key", Vec::<String>::new()),
        ];
        for (path, item) in doc.paths.paths.iter_mut() {
            if PUBLIC.contains(&path.as_str()) {
                continue;
            }
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                op.security.get_or_insert_with(|| default.clone());
            }
        }
        // Handlers in different features share names (`list`, `create`): derive unique
        // operation ids from method and path instead, as client generators need.
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("put", &mut item.put),
                ("patch", &mut item.patch),
                ("delete", &mut item.delete),
            ] {
                if let Some(op) = op {
                    op.operation_id = Some(operation_id(method, path));
                }
            }
        }
        // Every POST takes an `Idempotency-Key` (`http::idempotency`).
        for item in doc.paths.paths.values_mut() {
            if let Some(op) = &mut item.post {
                let params = op.parameters.get_or_insert_with(Vec::new);
                if !params
                    .iter()
                    .any(|p| p.name.eq_ignore_ascii_case("idempotency-key"))
                {
                    params.push(idempotency_key());
                }
            }
        }
    }
}

fn idempotency_key() -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ObjectBuilder, Required, Type};
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "A retry with the same key and request gets the first response again (kept 24 h; \
             header Idempotent-Replayed: true); the same key with another request is a 422",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(200)),
        ))
        .build()
}

/// `get` + `/api/v1/customers/{id}/members` -> `getCustomersByIdMembers`.
fn operation_id(method: &str, path: &str) -> String {
    let mut out = method.to_string();
    for seg in path.trim_start_matches("/api/v1").split(['/', '-', '_']) {
        let (prefix, word) = match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) => ("By", param),
            None => ("", seg),
        };
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push_str(prefix);
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kairos CRM API",
        description = "Customers, lines, products and consents for real-time marketing. \
            Lists take `limit` (default 50, max 500), `offset`, `sort` (`field` or `-field`) and \
            whitelisted filters. Records carry `version` and an `ETag`; updates need `If-Match` \
            or `version` and answer 412 when the record changed. Out-of-scope records answer 404. \
            Every list answers `{items, total, limit, offset}`, `total` counting every match, and \
            lists that grow (histories, runs, follow-ups, activities, dead letters, the SMS \
            outbox) are paged like the rest; every error, unknown routes and methods and a body \
            over `http.max_body_bytes` (413, `payload_too_large`) included, the `ErrorBody`. A \
            403 names the permission needed and the roles that may (`permission`, \
            `allowed_roles`; `GET /auth/roles` says what each permission lets one do: an \
            enterprise admin's `write_customers` covers contacts, consents and members, the \
            customer record itself is `write_operator_records`). Any POST takes an \
            `Idempotency-Key`; a replay has the first answer's status, body, `Content-Type`, \
            `ETag`, `Location` and `Import-Records`."
    ),
    components(schemas(crate::http::error::ErrorBody))
)]
pub struct ApiDoc;

/// Completes a document gathered from the routers: security schemes and requirements, and
/// operation ids.
pub fn finish(doc: &mut utoipa::openapi::OpenApi) {
    Security.modify(doc);
}
