//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "bookhost", description = "A booking engine whose business actions are WebAssembly components."),
    paths(
        super::health::healthz,
        super::health::readyz,
        super::tenants::create,
        super::tenants::issue_key,
        super::executors::upload,
        super::executors::list,
        super::executors::show,
        super::executors::rollback,
        super::executors::grants,
        super::tenants::approve,
        super::invoke::invoke,
        super::reads::tools,
        super::reads::services,
        super::reads::bookings,
        super::reads::booking_requests,
        super::reads::storefront,
        super::audit::invocation,
        super::audit::search,
        super::audit::verify,
        super::audit::checkpoint,
        super::audit::metrics,
        document,
    ),
    components(schemas(super::Problem, super::problem::InputError)),
    modifiers(&BearerKeys)
)]
pub struct ApiDoc;

struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["tenant", "operator"] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// This document.
#[utoipa::path(get, tag = "health", path = "/openapi.json", responses((status = 200, description = "the OpenAPI 3.1 document")))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
