//! The operator console at `/console`: server-drawn pages (maud templates,
//! SVG charts, one small script for the live list) over the audit, the
//! executors and the chains, behind the operator key or a tenant's key.

mod audit;
mod charts;
mod error;
mod executors;
mod insights;
mod invocations;
mod layout;
mod page;
mod session;
mod viewer;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::Router;

use super::AppState;
pub use viewer::Sessions;

/// What every console answer carries: no caching of pages that show audit
/// data, no framing, scripts and styles only from the console itself.
/// Referrers stay within the console's origin: `no-referrer` would make
/// browsers send `Origin: null` on its own forms, which the same-origin
/// check must refuse.
const SECURITY_HEADERS: [(header::HeaderName, &str); 5] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (header::CACHE_CONTROL, "no-store"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "same-origin"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
];

async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    for (name, value) in SECURITY_HEADERS {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type)], body)
}

/// The console's routes (merged into the API's router).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/invocations") }),
        )
        .route(
            "/console/login",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/console/logout", post(session::sign_out))
        .route(
            "/console/assets/console.css",
            get(|| async {
                asset(
                    "text/css; charset=utf-8",
                    include_str!("assets/console.css"),
                )
            }),
        )
        .route(
            "/console/assets/console.js",
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("assets/console.js"),
                )
            }),
        )
        .route("/console/invocations", get(invocations::list))
        .route("/console/invocations/rows", get(invocations::rows_fragment))
        .route("/console/invocations/{tenant}/{id}", get(invocations::show))
        .route("/console/executors", get(executors::list))
        .route("/console/executors/{tenant}/{name}", get(executors::show))
        .route(
            "/console/executors/{tenant}/{name}/approve",
            post(executors::approve),
        )
        .route(
            "/console/executors/{tenant}/{name}/deny",
            post(executors::deny),
        )
        .route(
            "/console/executors/{tenant}/{name}/activate",
            post(executors::activate),
        )
        .route("/console/insights", get(insights::page))
        .route("/console/audit", get(audit::page))
        .route("/console/audit/verify", post(audit::verify))
        .route("/console/audit/checkpoint", get(audit::checkpoint))
        .layer(axum::middleware::from_fn(session::same_origin))
        .layer(axum::middleware::from_fn(security_headers))
}
