//! The pages Kairos serves itself: the portal pop-up widget (`/portal.js`, embedded in the
//! operator's portal), the agent desktop (`/agent/`) and the marketers' console (`/console/`). Plain ES modules and CSS from `web/`,
//! compiled into the binary: nothing to deploy beside it and nothing fetched from a CDN.

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa_axum::{router::OpenApiRouter, routes};

/// `(name under /web/, content type, text)`.
const ASSETS: &[(&str, &str, &str)] = &[
    ("i18n.js", JS, include_str!("../web/i18n.js")),
    ("api.js", JS, include_str!("../web/api.js")),
    ("base.css", CSS, include_str!("../web/base.css")),
    ("widget.js", JS, include_str!("../web/widget.js")),
    ("widget.css", CSS, include_str!("../web/widget.css")),
    ("desk.js", JS, include_str!("../web/desk.js")),
    ("desk.css", CSS, include_str!("../web/desk.css")),
    ("console.js", JS, include_str!("../web/console.js")),
    (
        "console-session.js",
        JS,
        include_str!("../web/console-session.js"),
    ),
    (
        "console-rules.js",
        JS,
        include_str!("../web/console-rules.js"),
    ),
    (
        "console-chart.js",
        JS,
        include_str!("../web/console-chart.js"),
    ),
    (
        "console-editor.js",
        JS,
        include_str!("../web/console-editor.js"),
    ),
    (
        "console-problems.js",
        JS,
        include_str!("../web/console-problems.js"),
    ),
    (
        "console-reference.js",
        JS,
        include_str!("../web/console-reference.js"),
    ),
    ("console-lab.js", JS, include_str!("../web/console-lab.js")),
    (
        "console-versions.js",
        JS,
        include_str!("../web/console-versions.js"),
    ),
    (
        "console-campaigns.js",
        JS,
        include_str!("../web/console-campaigns.js"),
    ),
    (
        "console-segments.js",
        JS,
        include_str!("../web/console-segments.js"),
    ),
    ("console.css", CSS, include_str!("../web/console.css")),
    // The rule writer's guide: the console's built-in reference, always the release's own.
    ("rules.md", MARKDOWN, include_str!("../docs/rules.md")),
];

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const MARKDOWN: &str = "text/markdown; charset=utf-8";

/// The console's policy: its own scripts, styles and API only; no inline script, no
/// framing, no plugin. Its data comes from authenticated API calls on the same origin.
pub const CONSOLE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

pub fn router<S: Clone + Send + Sync + 'static>() -> OpenApiRouter<S> {
    OpenApiRouter::new()
        .routes(routes!(portal_js))
        .routes(routes!(agent_desk))
        .routes(routes!(console))
        .routes(routes!(asset))
}

fn serve(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // Revalidated, not cached blind: a new release must reach pages at once.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response();
    if content_type != HTML {
        // Static files with nothing private in them: the widget runs on the portal's own
        // origin and loads its modules from here, which module scripts do only with CORS.
        resp.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    resp
}

/// The embeddable pop-up widget: `<script src=".../portal.js" data-token="..."></script>`,
/// or `Kairos.portal({token, base})` from the page's own code.
#[utoipa::path(get, path = "/portal.js", tag = "web",
    responses((status = 200, description = "the widget loader (JavaScript)", content_type = "text/javascript")))]
pub async fn portal_js() -> Response {
    serve(JS, include_str!("../web/portal.js"))
}

/// The agent desktop (sign in with a staff account).
#[utoipa::path(get, path = "/agent/", tag = "web",
    responses((status = 200, description = "the agent desktop page", content_type = "text/html")))]
pub async fn agent_desk() -> Response {
    serve(HTML, include_str!("../web/desk.html"))
}

/// The marketers' console (sign in with a staff account): rules with live counts and
/// conversion per day, the editor, tests and backtests, versions, segments, campaigns; in
/// English and Simplified Chinese. The page holds no data: everything
/// comes from the authenticated API.
#[utoipa::path(get, path = "/console/", tag = "web",
    responses((status = 200, description = "the console page", content_type = "text/html")))]
pub async fn console() -> Response {
    let mut resp = serve(HTML, include_str!("../web/console.html"));
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    resp.headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// The pages' modules and styles.
#[utoipa::path(get, path = "/web/{file}", tag = "web", params(("file" = String, Path)),
    responses((status = 200, description = "a script or a stylesheet"), (status = 404)))]
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((name, ct, body)) => {
            let mut resp = serve(ct, body);
            if name.starts_with("console") {
                resp.headers_mut().insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(CONSOLE_CSP),
                );
            }
            resp
        }
        None => crate::http::ApiError::NotFound(format!("file {file}")).into_response(),
    }
}
