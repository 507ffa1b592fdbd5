//! The OpenAPI document, generated from the handlers' annotations, with the
//! answers every operation shares added in one place.

use axum::Json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
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
        super::invoke::confirm,
        super::reads::tools,
        super::reads::services,
        super::slots::availability,
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
    modifiers(&BearerKeys, &SharedAnswers)
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

/// What every operation that reaches the database may answer, and what
/// optional bodies are: sent as an object or left out, never sent as null.
struct SharedAnswers;

/// Operations that cannot fail (they touch nothing but memory), or whose
/// failure has a status of its own (`/readyz`: 503).
const NO_INTERNAL_ERROR: &[&str] = &["/healthz", "/openapi.json", "/metrics", "/readyz"];

impl Modify for SharedAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                if !NO_INTERNAL_ERROR.contains(&path.as_str()) {
                    internal_error(operation);
                }
                not_null(operation);
            }
        }
    }
}

/// `500` with a problem: the database failed or the host hit a bug.
fn internal_error(operation: &mut Operation) {
    let responses = &mut operation.responses.responses;
    responses.entry("500".into()).or_insert_with(|| {
        let problem = ContentBuilder::new()
            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "Problem",
            ))))
            .build();
        ResponseBuilder::new()
            .description("the host failed (for example, the database is unreachable)")
            .content("application/problem+json", problem)
            .build()
            .into()
    });
}

/// An optional body's schema is its object's: utoipa writes `Option<T>` as
/// `oneOf: [null, T]`, but a null body is refused like any non-object.
fn not_null(operation: &mut Operation) {
    let Some(body) = operation.request_body.as_mut() else {
        return;
    };
    for content in body.content.values_mut() {
        if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema {
            let mut rest = one_of.items.iter().filter(|item| !is_null(item));
            if let (Some(only), None) = (rest.next(), rest.next()) {
                content.schema = Some(only.clone());
            }
        }
    }
}

fn is_null(schema: &RefOr<Schema>) -> bool {
    match schema {
        RefOr::T(Schema::Object(object)) => {
            object.schema_type
                == utoipa::openapi::schema::SchemaType::Type(utoipa::openapi::Type::Null)
        }
        _ => false,
    }
}

/// This document.
#[utoipa::path(get, tag = "health", path = "/openapi.json", responses((status = 200, description = "the OpenAPI 3.1 document")))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
