//! The service's routes: every endpoint and the handler that answers it.

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;

use super::problem::ApiError;
use super::state::AppState;
use super::{
    audit, availability, console, executors, health, invoke, openapi, reads, slots, tenants,
};

/// The service's routes, ready to serve (tests serve it on a free port).
pub fn app(state: AppState) -> Router {
    let upload_limit = DefaultBodyLimit::max(state.config.max_component_bytes + 1);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi::document))
        .route("/v1/tenants", post(tenants::create))
        .route("/v1/tenants/{id}/keys", post(tenants::issue_key))
        .route("/v1/executors", get(executors::list))
        .route(
            "/v1/executors/{name}",
            put(executors::upload)
                .layer(upload_limit)
                .get(executors::show),
        )
        .route("/v1/executors/{name}/rollback", post(executors::rollback))
        .route("/v1/executors/{name}/grants", get(executors::grants))
        .route(
            "/v1/tenants/{id}/executors/{name}/approve",
            post(tenants::approve),
        )
        .route("/v1/executors/{name}/invoke", post(invoke::invoke))
        .route("/v1/proposals/{id}/confirm", post(invoke::confirm))
        .route("/v1/invocations/{id}", get(audit::invocation))
        .route("/v1/audit", get(audit::search))
        .route("/v1/audit/verify", post(audit::verify))
        .route("/v1/audit/checkpoint", get(audit::checkpoint))
        .route("/metrics", get(audit::metrics))
        .route("/v1/tools", get(reads::tools))
        .route("/v1/services", get(reads::services))
        .route("/v1/services/{id}/availability", get(slots::availability))
        .route("/v1/bookings", get(reads::bookings))
        .route("/v1/booking-requests", get(reads::booking_requests))
        .route("/v1/storefront", get(reads::storefront))
        .merge(console::router())
        .merge(crate::mcp::router(
            state.invocations.clone(),
            state.changes.clone(),
            &state.config.mcp,
        ))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            availability::guard,
        ))
        .with_state(state)
}
