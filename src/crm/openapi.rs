//! The OpenAPI 3 document of the CRM and auth API, served at `GET /api/v1/openapi.json`.
//! Features add their handlers to `paths(...)` below; schemas are collected from them.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::auth::admin;
use crate::crm::CrmState;
use crate::crm::{
    accounts, agreements, audit_log, campaigns, catalog, consents, contacts, customers,
    interactions, knowledge, lines, loyalty, notices, opportunities, parties, retention, segments,
    service_requests, stats, subscriptions, tmf, view,
};

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
    }
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
            or `version` and answer 412 when the record changed. Out-of-scope records answer 404."
    ),
    modifiers(&Security),
    paths(
        admin::login, admin::logout, admin::me,
        admin::list_users, admin::create_user, admin::get_user, admin::update_user,
        admin::list_keys, admin::create_key, admin::revoke_key,
        admin::list_teams, admin::create_team, admin::list_regions, admin::create_region,
        audit_log::list,
        parties::list, parties::create, parties::read, parties::update,
        customers::list, customers::create, customers::read, customers::update,
        customers::members::list, customers::members::create, customers::members::read,
        customers::members::update, customers::members::remove,
        contacts::list, contacts::create, contacts::read, contacts::update, contacts::remove,
        consents::list, consents::create, consents::update,
        accounts::list, accounts::create, accounts::read, accounts::update,
        lines::list, lines::create, lines::read, lines::update,
        catalog::list, catalog::create, catalog::read, catalog::update,
        subscriptions::list, subscriptions::create, subscriptions::read, subscriptions::update,
        loyalty::statement, loyalty::post_entry,
        view::customer_view, view::line_view,
        notices::list, notices::mark_read,
        opportunities::list, opportunities::create, opportunities::from_offer, opportunities::read,
        opportunities::update, opportunities::list_follow_ups, opportunities::add_follow_up,
        agreements::list, agreements::create, agreements::read, agreements::update,
        agreements::run_reminders,
        service_requests::list, service_requests::create, service_requests::read,
        service_requests::history, service_requests::approve, service_requests::reject,
        service_requests::transition, service_requests::escalation::run_now,
        service_requests::workflows::list, service_requests::workflows::update,
        retention::list, retention::create, retention::read, retention::update,
        retention::list_activities, retention::add_activity,
        interactions::create, interactions::timeline,
        knowledge::list, knowledge::create, knowledge::read, knowledge::update, knowledge::remove,
        knowledge::list_announcements, knowledge::create_announcement,
        knowledge::remove_announcement,
        segments::list, segments::create, segments::read, segments::update, segments::count,
        segments::preview,
        campaigns::list, campaigns::create, campaigns::read, campaigns::update,
        campaigns::transition, campaigns::history, campaigns::launch, campaigns::runs,
        campaigns::results,
        stats::offers,
        tmf::recommendation::list, tmf::recommendation::create, tmf::recommendation::read,
        tmf::communication::list, tmf::communication::create, tmf::communication::read,
        tmf::communication::update, tmf::communication::remove,
    ),
    components(schemas(crate::http::error::ErrorBody))
)]
pub struct ApiDoc;

/// The whole product's document: CRM and auth, plus the engine's endpoints.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::ops::openapi::EngineApi::openapi());
    Security.modify(&mut doc);
    doc
}

pub fn router() -> Router<CrmState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lists_every_feature_and_the_security_schemes() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for path in [
            "/api/v1/customers",
            "/api/v1/customers/{id}/view",
            "/api/v1/lines/{line}/view",
            "/api/v1/auth/login",
            "/api/v1/subscriptions/{id}",
            "/api/v1/opportunities/from-offer/{recommendation_id}",
            "/api/v1/agreements/reminders/run",
            "/api/v1/service-requests/{id}/history",
            "/api/v1/retention-cases/{id}/activities",
            "/api/v1/customers/{id}/interactions",
            "/api/v1/knowledge",
            "/api/v1/announcements",
            "/api/v1/notices",
            "/api/v1/segments/{id}/preview",
            "/api/v1/campaigns/{id}/launch",
            "/api/v1/stats/offers",
            "/tmf-api/recommendationManagement/v4/queryProductRecommendation/{id}",
            "/tmf-api/communicationManagement/v4/communicationMessage/{id}",
        ] {
            assert!(doc["paths"].get(path).is_some(), "missing {path}");
        }
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        assert!(doc["components"]["schemas"]["Customer"].is_object());
        let mut ids = Vec::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                if let Some(id) = op.get("operationId").and_then(|v| v.as_str()) {
                    ids.push(id.to_string());
                }
            }
        }
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "operation ids must be unique");
        assert!(
            ids.contains(&"getCustomersByIdMembers".to_string()),
            "{ids:?}"
        );
    }
}
