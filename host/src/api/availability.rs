//! Requests the host should not take: while it drains for a stop, and while
//! its database is unreachable, every request but the probes is answered
//! 503 with Retry-After at once, instead of hanging or half-running.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::lifecycle::InFlight;
use super::problem::ApiError;
use super::state::AppState;

/// Probes answer for themselves (`/readyz` says why it is not ready).
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics" | "/openapi.json")
}

/// The middleware: refuse while draining or while the database is down.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if is_probe(request.uri().path()) {
        return next.run(request).await;
    }
    let lifecycle = &state.lifecycle;
    if lifecycle.draining() {
        let mut response =
            ApiError::Unavailable("the host is shutting down; retry on another".into())
                .into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    if let Some(reason) = state.host.health().down() {
        return ApiError::Unavailable(format!(
            "the database is unreachable ({reason}); retry shortly"
        ))
        .into_response();
    }
    // An MCP client's stream of notifications stays open as long as it
    // listens: it is not work to finish before stopping.
    if request.method() == axum::http::Method::GET && request.uri().path().starts_with("/mcp") {
        return next.run(request).await;
    }
    let _counted = InFlight::start(lifecycle);
    next.run(request).await
}
