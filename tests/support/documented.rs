//! The OpenAPI document as a checker of answers: every answer the test
//! client sees must be one the document lists for that operation (status
//! and media type), so each API test checks the document too.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

/// (path template, method) → status → media types (empty: no body documented).
type Operations = BTreeMap<(String, String), BTreeMap<String, Vec<String>>>;

fn operations() -> &'static Operations {
    static OPERATIONS: OnceLock<Operations> = OnceLock::new();
    OPERATIONS.get_or_init(|| {
        let document = serde_json::to_value(<bookhost::api::ApiDoc as utoipa::OpenApi>::openapi())
            .expect("the document serializes");
        let mut operations = Operations::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                let mut statuses = BTreeMap::new();
                for (status, response) in operation["responses"].as_object().expect("responses") {
                    let media = response["content"]
                        .as_object()
                        .map(|c| c.keys().cloned().collect())
                        .unwrap_or_default();
                    statuses.insert(status.clone(), media);
                }
                operations.insert((path.clone(), method.to_uppercase()), statuses);
            }
        }
        operations
    })
}

/// The documented path template `path` is an instance of, if any.
pub fn template_of(path: &str, method: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    operations().keys().find_map(|(template, m)| {
        let parts: Vec<&str> = template.split('/').collect();
        let matches = m == method
            && parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(p, s)| p == s || (p.starts_with('{') && !s.is_empty()));
        matches.then_some(template.as_str())
    })
}

/// Panics unless the document lists `status` (with `media_type`, when the
/// answer has a body) for `method path`; see [`documented`].
#[track_caller]
pub fn check_answer(method: &str, path: &str, status: u16, media_type: &str, has_body: bool) {
    if let Err(problem) = documented(method, path, status, media_type, has_body) {
        panic!("{problem}");
    }
}

/// Whether the document lists `status` (with `media_type`, when the answer
/// has a body) for `method path`. Paths the document does not know (the
/// router's fallback) are not operations and pass.
pub fn documented(
    method: &str,
    path: &str,
    status: u16,
    media_type: &str,
    has_body: bool,
) -> Result<(), String> {
    let Some(template) = template_of(path, method) else {
        return Ok(());
    };
    let statuses = &operations()[&(template.to_owned(), method.to_owned())];
    let Some(media) = statuses.get(&status.to_string()) else {
        return Err(format!(
            "{method} {template} answered {status}, which the OpenAPI document does not list \
             (it lists {:?})",
            statuses.keys().collect::<Vec<_>>()
        ));
    };
    if has_body && !media.is_empty() && !media.iter().any(|m| m == media_type) {
        return Err(format!(
            "{method} {template} answered {status} as {media_type:?}; the OpenAPI document \
             lists {media:?}"
        ));
    }
    Ok(())
}

/// The request body schema of `method template` with every `$ref` to a
/// component inlined, as a JSON Schema; `None` without a JSON body.
pub fn request_schema(template: &str, method: &str) -> Option<(Value, bool)> {
    let document = serde_json::to_value(<bookhost::api::ApiDoc as utoipa::OpenApi>::openapi())
        .expect("the document serializes");
    let operation = &document["paths"][template][method.to_lowercase()];
    let body = operation.get("requestBody")?;
    let required = body["required"].as_bool().unwrap_or(false);
    let schema = body["content"]["application/json"]["schema"].clone();
    Some((inline(schema, &document["components"]["schemas"]), required))
}

fn inline(schema: Value, components: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let name = reference.trim_start_matches("#/components/schemas/");
                return inline(components[name].clone(), components);
            }
            Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k, inline(v, components)))
                    .collect(),
            )
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| inline(v, components)).collect())
        }
        other => other,
    }
}
