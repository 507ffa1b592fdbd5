//! The OpenAPI document against the server: every request body a schema
//! admits the server accepts, and every body it refuses the server refuses.
//! (Every answer of every API test is checked against the document's
//! statuses and media types in `support/documented.rs`.)

use bookhost_tests::documented::{documented, request_schema};
use bookhost_tests::executors::*;
use bookhost_tests::http::*;
use reqwest::Method;
use serde_json::Value;

/// Whether the document's schema for `method template` admits `body`
/// (empty: no body, admitted unless the body is required).
fn admitted(template: &str, method: &str, body: &str) -> bool {
    let (schema, required) = request_schema(template, method)
        .unwrap_or_else(|| panic!("{method} {template} documents no JSON body"));
    if body.trim().is_empty() {
        return !required;
    }
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return false;
    };
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("the schema of {method} {template} does not compile: {e}"))
        .is_valid(&value)
}

/// Sends each body; the server refuses a body with 400 or 422 and answers
/// anything else (200, 404, 409) only past the body. Both must agree.
async fn agree(api: &Api, key: &str, path: &str, template: &str, bodies: &[String]) {
    let mut disagreements = Vec::new();
    for body in bodies {
        let answer = api
            .send(
                api.request(Method::POST, path, Some(key))
                    .header("content-type", "application/json")
                    .body(body.clone()),
            )
            .await;
        let accepted = !matches!(answer.status, 400 | 422);
        let schema = admitted(template, "POST", body);
        if accepted != schema {
            disagreements.push(format!(
                "{body:?}: the schema {} it, the server answered {} {}",
                if schema { "admits" } else { "refuses" },
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "POST {template}: {disagreements:#?}"
    );
}

fn bodies(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollback_body_schema_is_what_the_server_accepts() {
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE]).await;
    // One version only: an accepted body answers 409 (nothing older) or
    // 404 (no such version); a refused one 400.
    let texts = bodies(&[
        "",
        "{}",
        r#"{"version": "0000"}"#,
        r#"{"version": null}"#,
        "null",
        r#"{"version": 5}"#,
        "[]",
        r#""version""#,
        r#"{"verison": "0000"}"#,
        "{",
    ]);
    let path = format!("/v1/executors/{CREATE_SERVICE}/rollback");
    agree(
        &server,
        &tenant.key,
        &path,
        "/v1/executors/{name}/rollback",
        &texts,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_body_schemas_are_what_the_server_accepts() {
    let server = server().await;
    let tenant = server.tenant().await;
    let operator = server.operator_key.clone();
    // No such executor: an accepted approval answers 404.
    let approve = format!("/v1/tenants/{}/executors/no-such/approve", tenant.id);
    let texts = bodies(&[
        "",
        "{}",
        r#"{"version": "0000"}"#,
        r#"{"version": null}"#,
        r#"{"version": []}"#,
        r#"{"other": 1}"#,
        "null",
    ]);
    agree(
        &server,
        &operator,
        &approve,
        "/v1/tenants/{id}/executors/{name}/approve",
        &texts,
    )
    .await;

    let someone = uuid::Uuid::new_v4();
    let texts = bodies(&[
        "",
        "{}",
        &format!(r#"{{"tenant": "{someone}"}}"#),
        r#"{"tenant": "not-a-uuid"}"#,
        r#"{"tenant": null}"#,
        r#"{"checkpoints": []}"#,
        r#"{"checkpoints": null}"#,
        &format!(
            r#"{{"tenant": "{someone}", "checkpoints": [{{"tenant_id": "{someone}", "seq": 1, "hash": "00"}}]}}"#
        ),
        r#"{"checkpoints": [{"seq": 1}]}"#,
        r#"{"tenants": []}"#,
        "null",
        "[]",
    ]);
    agree(
        &server,
        &operator,
        "/v1/audit/verify",
        "/v1/audit/verify",
        &texts,
    )
    .await;

    let fresh = || format!(r#"{{"name": "api-{}"}}"#, uuid::Uuid::new_v4());
    let texts = vec![
        fresh(),
        r#"{"name": ""}"#.to_owned(),
        format!(r#"{{"name": "{}"}}"#, "n".repeat(201)),
        r#"{"name": 5}"#.to_owned(),
        r#"{"name": null}"#.to_owned(),
        "{}".to_owned(),
        format!(
            r#"{{"name": "api-{}", "plan": "gold"}}"#,
            uuid::Uuid::new_v4()
        ),
        "null".to_owned(),
        String::new(),
    ];
    agree(&server, &operator, "/v1/tenants", "/v1/tenants", &texts).await;
}

#[test]
fn the_checker_refuses_an_undocumented_answer() {
    let rollback = "/v1/executors/x/rollback";
    let problem = "application/problem+json";
    assert_eq!(documented("POST", rollback, 400, problem, true), Ok(()));
    assert!(documented("GET", "/v1/executors", 418, "application/json", true).is_err());
    assert!(documented("GET", "/v1/executors", 200, "text/html", true).is_err());
    // Not an operation of the document: the router's fallback answers it.
    assert_eq!(documented("GET", "/nowhere", 404, problem, true), Ok(()));
}
