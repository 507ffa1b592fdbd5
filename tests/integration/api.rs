//! The HTTP service end to end: a real server, components uploaded over HTTP, real PostgreSQL.

use std::collections::BTreeSet;
use std::time::Duration;

use bookhost::api::ServiceConfig;
use bookhost::HostSettings;
use bookhost_tests::executors::*;
use bookhost_tests::http::*;
use reqwest::Method;
use serde_json::{json, Value};

/// An RFC 3339 timestamp as an instant, so `Z` and `+00:00` compare equal.
fn instant(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
}

fn is_uuid(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok())
}

/// The tenant's services called `name`, counted in the database itself.
async fn services_named(server: &TestServer, tenant: &TestTenant, name: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM services WHERE tenant_id = $1 AND name = $2")
        .bind(tenant.id.0)
        .bind(name)
        .fetch_one(&server.pool)
        .await
        .unwrap()
}

/// create-service for a 30-minute service called `name`.
async fn invoke_create_service(api: &Api, key: &str, name: &str) -> Answer {
    let input = json!({"name": name, "duration_minutes": 30});
    api.invoke(key, CREATE_SERVICE, &input).await
}

/// The service id from a successful create-service invocation.
async fn create_service(server: &TestServer, tenant: &TestTenant, name: &str) -> String {
    let body = invoke_create_service(server, &tenant.key, name)
        .await
        .expect(200);
    body["result"]["service"]["id"].as_str().unwrap().to_owned()
}

/// fixture-faults in `mode` writes a service before it fails: the failure must
/// be the problem `status` `slug`, and the write must not survive it.
async fn fault_leaves_nothing(
    server: &TestServer,
    mode: &str,
    name: &str,
    status: u16,
    slug: &str,
) {
    let tenant = server.tenant_with(&[FIXTURE_FAULTS]).await;
    let problem = server
        .invoke(
            &tenant.key,
            FIXTURE_FAULTS,
            &json!({"mode": mode, "name": name}),
        )
        .await
        .problem(status, slug);
    assert!(is_uuid(&problem["invocation_id"]), "{problem}");
    assert_eq!(server.rows("services", &tenant).await, 0);
}

/// Sends one keyed request twice: the first must run (`status`, no replay
/// header) and the second replay it byte for byte. Returns the first.
async fn ran_then_replayed(
    server: &TestServer,
    tenant: &TestTenant,
    name: &str,
    body: &str,
    idempotency_key: &str,
    status: u16,
) -> Answer {
    let send = || server.invoke_raw(&tenant.key, name, "", body, Some(idempotency_key));
    let first = send().await;
    assert_eq!(first.status, status);
    assert_eq!(first.header("idempotent-replayed"), None);
    let retry = send().await;
    assert_eq!(retry.status, status);
    assert_eq!(retry.body, first.body, "replayed byte for byte");
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    first
}

/// Uploads `bytes` as create-service, expecting `status`; whether new or not,
/// the version named must be those bytes', active, and of their size.
async fn upload_create_service(server: &TestServer, key: &str, bytes: &[u8], status: u16) -> Value {
    let uploaded = server
        .upload(key, CREATE_SERVICE, bytes.to_vec())
        .await
        .expect(status);
    assert_eq!(uploaded["version"], sha256_hex(bytes));
    assert_eq!(uploaded["active"], true);
    assert_eq!(uploaded["size_bytes"], bytes.len());
    uploaded
}

const INVOCATION_KEYS: [&str; 6] = [
    "attempts",
    "duration_ms",
    "executor",
    "invocation_id",
    "result",
    "version",
];
const FAILED_INVOCATION_KEYS: [&str; 6] = [
    "attempts",
    "duration_ms",
    "error",
    "executor",
    "invocation_id",
    "version",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_answer_without_a_key() {
    let server = server().await;
    let health = server.get(None, "/healthz").await;
    assert_eq!(health.expect(200), json!({"status": "ok"}));
    let ready = server.get(None, "/readyz").await;
    assert_eq!(ready.expect(200), json!({"status": "ready"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_is_3_1_and_covers_every_route() {
    let server = server().await;
    let answer = server.get(None, "/openapi.json").await;
    assert_eq!(answer.status, 200);
    let text = String::from_utf8(answer.body).unwrap();
    let spec =
        oas3::from_json(&text).unwrap_or_else(|e| panic!("not an OpenAPI 3.1 document: {e}"));
    let version = spec.validate_version().unwrap();
    assert_eq!((version.major, version.minor), (3, 1), "{}", spec.openapi);

    let documented: BTreeSet<(String, String)> = spec
        .operations()
        .map(|(path, method, _)| (path, method.as_str().to_owned()))
        .collect();
    let routes = [
        ("/healthz", "GET"),
        ("/readyz", "GET"),
        ("/openapi.json", "GET"),
        ("/v1/tenants", "POST"),
        ("/v1/tenants/{id}/keys", "POST"),
        ("/v1/executors", "GET"),
        ("/v1/executors/{name}", "GET"),
        ("/v1/executors/{name}", "PUT"),
        ("/v1/executors/{name}/rollback", "POST"),
        ("/v1/executors/{name}/invoke", "POST"),
        ("/v1/tools", "GET"),
        ("/v1/services", "GET"),
        ("/v1/bookings", "GET"),
        ("/v1/booking-requests", "GET"),
        ("/v1/storefront", "GET"),
    ];
    let missing: Vec<_> = routes
        .iter()
        .filter(|(path, method)| !documented.contains(&(path.to_string(), method.to_string())))
        .collect();
    assert!(
        missing.is_empty(),
        "undocumented: {missing:?}; documented: {documented:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_and_keys_are_the_operators_alone() {
    let server = server().await;
    let operator = Some(server.operator_key.as_str());
    let name = format!("api-{}", uuid::Uuid::new_v4());
    let created = server
        .post_json(operator, "/v1/tenants", &json!({"name": name}))
        .await
        .expect(201);
    assert_eq!(keys(&created), ["api_key", "id", "name", "time_zone"]);
    assert_eq!(created["name"], name);
    assert_eq!(created["time_zone"], "UTC");
    // A business's time zone: an IANA name, or a typed 400 and no tenant.
    let zoned = server
        .post_json(
            operator,
            "/v1/tenants",
            &json!({"name": format!("{name}-paris"), "time_zone": "Europe/Paris"}),
        )
        .await
        .expect(201);
    assert_eq!(zoned["time_zone"], "Europe/Paris");
    let mars = server
        .post_json(
            operator,
            "/v1/tenants",
            &json!({"name": format!("{name}-mars"), "time_zone": "Mars/Olympus"}),
        )
        .await
        .expect(400);
    assert_eq!(
        mars["type"], "urn:bookhost:problem:unknown-time-zone",
        "{mars}"
    );
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants WHERE name = $1")
        .bind(format!("{name}-mars"))
        .fetch_one(&server.pool)
        .await
        .unwrap();
    assert_eq!(none, 0);
    assert!(is_uuid(&created["id"]), "{created}");
    let key = created["api_key"].as_str().unwrap().to_owned();
    assert!(!key.is_empty() && key != server.operator_key);

    server
        .post_json(operator, "/v1/tenants", &json!({"name": name}))
        .await
        .problem(409, "tenant-exists");

    // Missing, wrong and tenant keys are all just "not the operator".
    let other = json!({"name": format!("api-{}", uuid::Uuid::new_v4())});
    for bad in [None, Some("not-a-key"), Some(key.as_str())] {
        server
            .post_json(bad, "/v1/tenants", &other)
            .await
            .any_problem(401);
    }

    let id = created["id"].as_str().unwrap();
    let issued = server
        .post_json(operator, &format!("/v1/tenants/{id}/keys"), &json!({}))
        .await
        .expect(201);
    assert_eq!(keys(&issued), ["api_key", "tenant_id"]);
    assert_eq!(issued["tenant_id"], id);
    let second = issued["api_key"].as_str().unwrap();
    assert_ne!(second, key);
    // A second key adds access; it does not replace the first.
    for tenant_key in [key.as_str(), second] {
        let listed = server.get(Some(tenant_key), "/v1/executors").await;
        assert_eq!(listed.expect(200), json!({"executors": []}));
    }

    server
        .post_json(
            operator,
            &format!("/v1/tenants/{}/keys", uuid::Uuid::new_v4()),
            &json!({}),
        )
        .await
        .any_problem(404);
    server
        .post_json(Some(&key), &format!("/v1/tenants/{id}/keys"), &json!({}))
        .await
        .any_problem(401);

    // Tenant endpoints: no key, an unknown key, the operator's key.
    let tenant_routes = [
        (Method::GET, "/v1/executors"),
        (Method::GET, "/v1/executors/create-service"),
        (Method::PUT, "/v1/executors/create-service"),
        (Method::POST, "/v1/executors/create-service/rollback"),
        (Method::POST, "/v1/executors/create-service/invoke"),
        (Method::GET, "/v1/tools"),
        (Method::GET, "/v1/services"),
        (Method::GET, "/v1/bookings"),
        (Method::GET, "/v1/booking-requests"),
        (Method::GET, "/v1/storefront"),
    ];
    for bad in [None, Some("not-a-key"), operator] {
        for (method, path) in &tenant_routes {
            let answer = server
                .send(server.request(method.clone(), path, bad).body("{}"))
                .await;
            assert_eq!(answer.status, 401, "{method} {path} with {bad:?}");
            answer.any_problem(401);
        }
        // The key is judged before the query string (and the body) are
        // read: a bad key with a bad query is still 401. (Not tested with a
        // body over the limit: the server answers before reading it and
        // closes the connection, which makes the client's side racy.)
        let bad_query = "/v1/executors/create-service/invoke?dry_run=maybe";
        server
            .send(server.request(Method::POST, bad_query, bad).body("{}"))
            .await
            .any_problem(401);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_make_versions_and_rollback_moves_between_them() {
    let server = server().await;
    let tenant = server.tenant().await;
    let key = tenant.key.as_str();
    let v1_bytes = component(CREATE_SERVICE);
    // Same executor, different bytes: a second version.
    let v2_bytes = with_custom_section(v1_bytes.clone(), "bookhost-test", b"version 2");
    let (v1, v2) = (sha256_hex(&v1_bytes), sha256_hex(&v2_bytes));

    let first = upload_create_service(&server, key, &v1_bytes, 201).await;
    assert_eq!(
        keys(&first),
        [
            "active",
            "description",
            "grant",
            "input_schema",
            "name",
            "size_bytes",
            "uploaded_at",
            "version"
        ]
    );
    assert_eq!(first["name"], "create-service");
    assert_eq!(
        first["grant"],
        json!({"requested": ["insert:services"], "granted": ["insert:services"], "denied": [], "status": "granted"})
    );
    instant(&first["uploaded_at"]);
    let manifest = bookhost_tests::executors().get_by_digest(&v1).unwrap();
    assert_eq!(first["description"], manifest.description);
    assert_eq!(first["input_schema"], manifest.input_schema);

    // One version only: nothing to go back to.
    server
        .rollback(key, CREATE_SERVICE, None)
        .await
        .any_problem(409);

    upload_create_service(&server, key, &v2_bytes, 201).await;

    let shown = server
        .get(Some(key), "/v1/executors/create-service")
        .await
        .expect(200);
    assert_eq!(
        keys(&shown),
        ["active_version", "description", "name", "versions"]
    );
    assert_eq!(shown["name"], "create-service");
    assert_eq!(shown["active_version"], v2);
    assert_eq!(shown["description"], manifest.description);
    let versions = shown["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{shown}");
    for version in versions {
        assert_eq!(
            keys(version),
            ["active", "size_bytes", "uploaded_at", "version"]
        );
        instant(&version["uploaded_at"]);
        let expected = if version["version"] == v1 {
            (false, v1_bytes.len())
        } else {
            assert_eq!(version["version"], v2);
            (true, v2_bytes.len())
        };
        assert_eq!(
            (
                version["active"].as_bool().unwrap(),
                version["size_bytes"].as_u64().unwrap() as usize
            ),
            expected,
            "{version}"
        );
    }
    let listed = server.get(Some(key), "/v1/executors").await.expect(200);
    assert_eq!(listed, json!({"executors": [shown]}));

    let invoked = invoke_create_service(&server, key, "on-v2")
        .await
        .expect(200);
    assert_eq!(invoked["version"], v2);

    // Without a body: back to the version uploaded before the active one.
    let rolled = server.rollback(key, CREATE_SERVICE, None).await.expect(200);
    assert_eq!(
        rolled,
        json!({"name": "create-service", "active_version": v1, "previous_version": v2})
    );
    let invoked = invoke_create_service(&server, key, "on-v1")
        .await
        .expect(200);
    assert_eq!(invoked["version"], v1, "invocations run the active version");

    let rolled = server
        .rollback(key, CREATE_SERVICE, Some(&v2))
        .await
        .expect(200);
    assert_eq!(
        rolled,
        json!({"name": "create-service", "active_version": v2, "previous_version": v1})
    );
    server
        .rollback(key, CREATE_SERVICE, Some(&"0".repeat(64)))
        .await
        .any_problem(404);
    server
        .rollback(key, "no-such-executor", None)
        .await
        .any_problem(404);

    // Re-uploading a known version: 200, same shape, and it is active again.
    let again = upload_create_service(&server, key, &v1_bytes, 200).await;
    assert_eq!(keys(&again), keys(&first));
    let shown = server
        .get(Some(key), "/v1/executors/create-service")
        .await
        .expect(200);
    assert_eq!(shown["active_version"], v1);
    assert_eq!(shown["versions"].as_array().unwrap().len(), 2, "{shown}");
    server
        .get(Some(key), "/v1/executors/no-such-executor")
        .await
        .any_problem(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_host_runs_versions_uploaded_through_the_first() {
    let first = server().await;
    let tenant = first.tenant().await;
    let bytes = with_custom_section(component(CREATE_SERVICE), "bookhost-test", b"stored");
    let version = sha256_hex(&bytes);
    first
        .upload(&tenant.key, CREATE_SERVICE, bytes)
        .await
        .expect(201);

    // Another host process: same database, an empty registry of its own, so
    // it can only run the version from the bytes stored in the database.
    let engine = bookhost::runtime::ExecutorEngine::new(bookhost::runtime::EngineSettings {
        max_instances: 8,
        ..Default::default()
    })
    .unwrap();
    let registry = bookhost::runtime::ExecutorRegistry::new(engine).unwrap();
    assert!(registry.get_by_digest(&version).is_none());
    let registry = std::sync::Arc::new(registry);
    let host = bookhost::Host::new(
        bookhost_tests::pool(4).await,
        registry.clone(),
        HostSettings::default(),
    );
    let second = serve(host, ServiceConfig::default()).await;
    let shown = second
        .get(Some(&tenant.key), "/v1/executors/create-service")
        .await
        .expect(200);
    assert_eq!(shown["active_version"], version);
    let body = invoke_create_service(&second, &tenant.key, "via-second-host")
        .await
        .expect(200);
    assert_eq!(body["version"], version);
    assert_eq!(body["result"]["service"]["name"], "via-second-host");
    assert!(registry.get_by_digest(&version).is_some());
    assert_eq!(services_named(&second, &tenant, "via-second-host").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_rejections_say_exactly_what_is_wrong() {
    let server = server().await;
    let tenant = server.tenant().await;
    let key = tenant.key.as_str();
    let real = component(CREATE_SERVICE);
    let hello_world = wat::parse_str(
        r#"(component
             (core module $m (func (export "f") (result i32) i32.const 1))
             (core instance $i (instantiate $m))
             (func (export "hello") (result u32) (canon lift (core func $i "f"))))"#,
    )
    .unwrap();
    let evil_import = wat::parse_str(r#"(component (import "evil:x/y" (func)))"#).unwrap();
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "core module",
            b"\0asm\x01\0\0\0".to_vec(),
            "core WebAssembly module",
        ),
        ("another world", hello_world, "describe"),
        ("foreign import", evil_import, "imports"),
        ("truncated", real[..real.len() / 2].to_vec(), "invalid"),
        ("empty", Vec::new(), "empty"),
    ];
    for (case, bytes, needle) in cases {
        let problem = server
            .upload(key, CREATE_SERVICE, bytes)
            .await
            .problem(400, "invalid-component");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(needle), "{case}: {detail}");
        if case == "another world" {
            assert!(detail.contains("execute"), "{case}: {detail}");
        }
    }

    // A good component, under a name that is not its own.
    server
        .upload(key, CREATE_BOOKING, real)
        .await
        .problem(400, "name-mismatch");

    let listed = server.get(Some(key), "/v1/executors").await.expect(200);
    assert_eq!(listed, json!({"executors": []}), "nothing was registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_over_the_size_limit_is_refused() {
    let config = ServiceConfig {
        max_component_bytes: 50_000,
        ..ServiceConfig::default()
    };
    let server = start_server(HostSettings::default(), config).await;
    let tenant = server.tenant().await;
    let bytes = component(CREATE_SERVICE);
    assert!(bytes.len() > 50_000);
    let problem = server
        .upload(&tenant.key, CREATE_SERVICE, bytes)
        .await
        .problem(400, "invalid-component");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("limit"), "{detail}");
    let listed = server.get(Some(&tenant.key), "/v1/executors").await;
    assert_eq!(listed.expect(200), json!({"executors": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_answers_with_the_result_and_commits() {
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE]).await;
    let answer = server
        .invoke(
            &tenant.key,
            CREATE_SERVICE,
            &json!({"name": "Haircut", "duration_minutes": 30}),
        )
        .await;
    let body = answer.expect(200);
    assert_eq!(answer.media_type(), "application/json");
    assert_eq!(keys(&body), INVOCATION_KEYS);
    assert!(is_uuid(&body["invocation_id"]), "{body}");
    assert_eq!(body["executor"], "create-service");
    assert_eq!(body["version"], sha256_hex(&component("create-service")));
    assert_eq!(body["attempts"], 1);
    assert!(
        body["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{body}"
    );
    let service = &body["result"]["service"];
    assert_eq!(
        keys(service),
        ["created_at", "duration_minutes", "id", "name"]
    );
    assert_eq!(
        (&service["name"], &service["duration_minutes"]),
        (&json!("Haircut"), &json!(30))
    );
    assert_eq!(services_named(&server, &tenant, "Haircut").await, 1);

    server
        .invoke(&tenant.key, "no-such-executor", &json!({}))
        .await
        .any_problem(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_reports_writes_and_leaves_no_rows() {
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE]).await;
    let body = server
        .invoke_raw(
            &tenant.key,
            CREATE_SERVICE,
            "?dry_run=true",
            r#"{"name": "dry", "duration_minutes": 45}"#,
            None,
        )
        .await
        .expect(200);
    let mut expected_keys = INVOCATION_KEYS.to_vec();
    expected_keys.extend(["dry_run", "writes"]);
    expected_keys.sort_unstable();
    assert_eq!(keys(&body), expected_keys);
    assert_eq!(body["dry_run"], true);
    assert_eq!(body["result"]["service"]["name"], "dry");
    let writes = body["writes"].as_array().unwrap();
    assert_eq!(writes.len(), 1, "{body}");
    assert_eq!(keys(&writes[0]), ["operation", "row", "table"]);
    assert_eq!(
        (&writes[0]["table"], &writes[0]["operation"]),
        (&json!("services"), &json!("insert"))
    );
    let row = &writes[0]["row"];
    assert_eq!(
        (&row["name"], &row["duration_minutes"]),
        (&json!("dry"), &json!(45))
    );
    assert_eq!(row["id"], body["result"]["service"]["id"]);
    // The tenant column is the host's business, never shown.
    assert!(row.get("tenant_id").is_none(), "{row}");

    assert_eq!(server.rows("services", &tenant).await, 0);
    let listed = server.get(Some(&tenant.key), "/v1/services").await;
    assert_eq!(listed.expect(200), json!({"services": []}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_any_wasm_runs() {
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE, FIXTURE_FAULTS]).await;
    server
        .invoke_raw(&tenant.key, CREATE_SERVICE, "", "{not json", None)
        .await
        .problem(400, "malformed-json");

    // count-attempts ignores "name", so had the executor run, it would have
    // committed a counter page: only the schema check stands in the way.
    let problem = server
        .invoke(
            &tenant.key,
            FIXTURE_FAULTS,
            &json!({"mode": "count-attempts", "name": ""}),
        )
        .await
        .problem(422, "invalid-input");
    let errors = problem["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{problem}");
    assert_eq!(keys(&errors[0]), ["message", "path"]);
    assert_eq!(errors[0]["path"], "/name");
    assert!(errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(server.rows("storefront_pages", &tenant).await, 0);

    let problem = server
        .invoke(
            &tenant.key,
            CREATE_SERVICE,
            &json!({"name": 7, "duration_minutes": 30}),
        )
        .await
        .problem(422, "invalid-input");
    assert_eq!(problem["errors"][0]["path"], "/name", "{problem}");
    assert_eq!(server.rows("services", &tenant).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_errors_are_json_409_and_invalid_input_422() {
    let server = server().await;
    let tenant = server
        .tenant_with(&[CREATE_SERVICE, CREATE_BOOKING, FIXTURE_FAULTS])
        .await;
    let answer = server
        .invoke(
            &tenant.key,
            FIXTURE_FAULTS,
            &json!({"mode": "error-after-write", "name": "regretted"}),
        )
        .await;
    let body = answer.expect(409);
    // The executor's own answer, not a problem of the host.
    assert_eq!(answer.media_type(), "application/json");
    assert_eq!(keys(&body), FAILED_INVOCATION_KEYS);
    assert!(is_uuid(&body["invocation_id"]), "{body}");
    assert_eq!(body["executor"], "fixture-faults");
    assert_eq!(body["version"], sha256_hex(&component("fixture-faults")));
    assert_eq!(body["attempts"], 1);
    assert_eq!(body["error"]["error"], "changed_my_mind");
    assert_eq!(services_named(&server, &tenant, "regretted").await, 0);

    let service = create_service(&server, &tenant, "Haircut").await;
    let booking =
        json!({"service_id": service, "customer": "Ada", "start": "2030-06-01T10:00:00Z"});
    server
        .invoke(&tenant.key, CREATE_BOOKING, &booking)
        .await
        .expect(200);
    let answer = server.invoke(&tenant.key, CREATE_BOOKING, &booking).await;
    let body = answer.expect(409);
    assert_eq!(keys(&body), FAILED_INVOCATION_KEYS);
    assert_eq!(body["error"]["error"], "slot_taken");
    assert_eq!(
        body["error"]["suggested_starts"],
        json!([
            "2030-06-01T10:30:00Z",
            "2030-06-01T11:00:00Z",
            "2030-06-01T11:30:00Z"
        ])
    );

    // The schema says only "format": "date-time", an annotation in JSON
    // Schema 2020-12, so this reaches the executor, which refuses it itself.
    let answer = server
        .invoke(
            &tenant.key,
            CREATE_BOOKING,
            &json!({"service_id": service, "customer": "Ada", "start": "next tuesday"}),
        )
        .await;
    let body = answer.expect(422);
    assert_eq!(answer.media_type(), "application/json");
    assert_eq!(keys(&body), FAILED_INVOCATION_KEYS);
    assert_eq!(body["executor"], "create-booking");
    assert_eq!(body["error"]["error"], "invalid_input");
    assert_eq!(server.rows("bookings", &tenant).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_is_a_500_problem_and_leaves_nothing() {
    let server = server().await;
    fault_leaves_nothing(&server, "trap-after-write", "x", 500, "executor-trapped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_is_a_504_problem_and_leaves_nothing() {
    let settings = HostSettings {
        execution_timeout: Duration::from_millis(300),
        ..HostSettings::default()
    };
    let server = start_server(settings, ServiceConfig::default()).await;
    fault_leaves_nothing(
        &server,
        "loop-after-write",
        "looped",
        504,
        "executor-timeout",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_replays_are_a_503_problem_with_retry_after() {
    const N: usize = 32;
    let mut settings = HostSettings::default();
    settings.discipline.max_attempts = 1;
    let server = start_server(settings, ServiceConfig::default()).await;
    let tenant = server.tenant_with(&[FIXTURE_FAULTS]).await;
    let count = json!({"mode": "count-attempts"});
    // Create the counter first, so every request races on one existing row.
    let first = server.invoke(&tenant.key, FIXTURE_FAULTS, &count).await;
    assert_eq!(first.expect(200)["result"], json!({"count": 1}));

    let requests = (0..N).map(|_| (count.to_string(), None));
    let answers = server
        .invoke_concurrently(&tenant.key, FIXTURE_FAULTS, requests)
        .await;
    let (mut committed, mut exhausted) = (Vec::new(), 0);
    for answer in answers {
        if answer.status == 503 {
            let problem = answer.problem(503, "retries-exhausted");
            assert!(is_uuid(&problem["invocation_id"]), "{problem}");
            assert!(answer.header("retry-after").is_some_and(|v| !v.is_empty()));
            exhausted += 1;
        } else {
            committed.push(answer.expect(200)["result"]["count"].as_i64().unwrap());
        }
    }
    println!(
        "api count-attempts, 1 attempt each: {} committed, {exhausted} answered 503",
        committed.len()
    );
    assert!(
        exhausted > 0,
        "{N} concurrent read-modify-writes of one row with one attempt each must lose some"
    );
    committed.sort_unstable();
    assert_eq!(
        committed,
        (2..2 + committed.len() as i64).collect::<Vec<_>>()
    );

    // Only the committed increments are in the row.
    let pages = server
        .get(Some(&tenant.key), "/v1/storefront")
        .await
        .expect(200);
    let counter = pages["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["slug"] == "counter")
        .unwrap();
    assert_eq!(counter["config"]["count"], 1 + committed.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retry_replays_the_first_response() {
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE, FIXTURE_FAULTS]).await;
    let body = r#"{"name": "idempotent", "duration_minutes": 30}"#;
    let first = ran_then_replayed(&server, &tenant, CREATE_SERVICE, body, "key-1", 200).await;
    assert_eq!(services_named(&server, &tenant, "idempotent").await, 1);

    server
        .invoke_raw(
            &tenant.key,
            CREATE_SERVICE,
            "",
            r#"{"name": "other", "duration_minutes": 30}"#,
            Some("key-1"),
        )
        .await
        .problem(422, "idempotency-key-reused");
    assert_eq!(services_named(&server, &tenant, "other").await, 0);

    // An executor's error answer is a completed response too: stored and
    // replayed (same invocation id inside), not run again.
    let failing = r#"{"mode": "error-after-write", "name": "regretted"}"#;
    ran_then_replayed(&server, &tenant, FIXTURE_FAULTS, failing, "key-2", 409).await;

    // Keys belong to a tenant: another tenant's same key is a new request.
    let other = server.tenant_with(&[CREATE_SERVICE]).await;
    let theirs = server
        .invoke_raw(&other.key, CREATE_SERVICE, "", body, Some("key-1"))
        .await;
    assert_eq!(theirs.status, 200);
    assert_eq!(theirs.header("idempotent-replayed"), None);
    assert_ne!(
        theirs.json()["invocation_id"],
        first.json()["invocation_id"]
    );
    assert_eq!(services_named(&server, &other, "idempotent").await, 1);
}

/// The advisory-lock waiters on `id` (a bigint lock shows as classid:objid).
async fn lock_waiters(server: &TestServer, id: i64) -> i64 {
    let id = id as u64;
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
         AND objsubid = 1 AND classid = $1::bigint::oid AND objid = $2::bigint::oid",
    )
    .bind((id >> 32) as i64)
    .bind((id & 0xffff_ffff) as i64)
    .fetch_one(&server.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_is_in_progress_while_the_first_request_runs() {
    // The first request will wait on a lock this test holds; nothing may
    // time out meanwhile, however slow the machine.
    let mut settings = HostSettings {
        execution_timeout: Duration::from_secs(120),
        ..HostSettings::default()
    };
    settings.discipline.transaction.lock_timeout = Duration::from_secs(120);
    settings.discipline.transaction.statement_timeout = Duration::from_secs(120);
    let server = start_server(settings, ServiceConfig::default()).await;
    let tenant = server
        .tenant_with(&[CREATE_SERVICE, CREATE_BOOKING_LOCKED])
        .await;
    let service = create_service(&server, &tenant, "Haircut").await;
    let body = json!({"service_id": service, "customer": "Ada", "start": "2030-06-01T10:00:00Z"})
        .to_string();

    // create-booking-locked calls lock("booking:<service>:<day>") first: hold it.
    let lock = bookhost::db::locks::advisory_lock_id(
        bookhost::db::locks::LockNamespace::Lock,
        tenant.id,
        &format!("booking:{service}:2030-06-01"),
    );
    let mut holder = server.pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(lock)
        .execute(&mut *holder)
        .await
        .unwrap();

    let booking_1 =
        || server.spawn_invoke(&tenant.key, CREATE_BOOKING_LOCKED, &body, Some("booking-1"));
    let first = booking_1();
    // Once the executor waits on the lock, the first request is surely running.
    let mut polls = 0;
    while lock_waiters(&server, lock).await == 0 {
        polls += 1;
        assert!(polls < 6000, "the first request never reached the lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    booking_1()
        .await
        .unwrap()
        .problem(409, "idempotency-key-in-progress");

    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(lock)
        .execute(&mut *holder)
        .await
        .unwrap();
    let first = first.await.unwrap();
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let replay = booking_1().await.unwrap();
    assert_eq!((replay.status, &replay.body), (200, &first.body));
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(server.rows("bookings", &tenant).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_idempotency_key_execute_once() {
    const N: usize = 16;
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE]).await;
    let once = (
        r#"{"name": "once", "duration_minutes": 30}"#.to_owned(),
        Some("once".to_owned()),
    );
    let answers = server
        .invoke_concurrently(&tenant.key, CREATE_SERVICE, vec![once; N])
        .await;
    let (mut stored, mut originals, mut in_progress) = (None::<Vec<u8>>, 0, 0);
    for answer in answers {
        if answer.status == 409 {
            answer.problem(409, "idempotency-key-in-progress");
            in_progress += 1;
            continue;
        }
        answer.expect(200);
        match &stored {
            Some(bytes) => assert_eq!(&answer.body, bytes, "every 200 is the one stored response"),
            None => stored = Some(answer.body.clone()),
        }
        if answer.header("idempotent-replayed") != Some("true") {
            originals += 1;
        }
    }
    println!(
        "api idempotency: {N} concurrent requests with one key: {in_progress} answered in-progress"
    );
    assert_eq!(originals, 1, "exactly one response is not a replay");
    assert_eq!(services_named(&server, &tenant, "once").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_distinct_idempotency_keys_all_run() {
    // Twice the host's 16 connections: marking keys in progress must not
    // starve the invocations themselves of connections.
    const N: usize = 32;
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE]).await;
    let requests = (0..N).map(|i| {
        let name = format!("distinct-{i}");
        let input = json!({"name": name, "duration_minutes": 30});
        (input.to_string(), Some(name))
    });
    let answers = server
        .invoke_concurrently(&tenant.key, CREATE_SERVICE, requests)
        .await;
    let (mut statuses, mut failure) = (std::collections::BTreeMap::new(), None);
    for answer in answers {
        *statuses.entry(answer.status).or_insert(0) += 1;
        if answer.status != 200 {
            failure.get_or_insert_with(|| String::from_utf8_lossy(&answer.body).into_owned());
        }
    }
    assert_eq!(
        statuses,
        [(200, N)].into(),
        "first failure: {}",
        failure.unwrap_or_default()
    );
    assert_eq!(server.rows("services", &tenant).await, N as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_records_expire_after_the_ttl() {
    let config = ServiceConfig {
        idempotency_ttl: Duration::ZERO,
        ..ServiceConfig::default()
    };
    let server = start_server(HostSettings::default(), config).await;
    let tenant = server.tenant_with(&[CREATE_SERVICE]).await;
    let body = r#"{"name": "again", "duration_minutes": 30}"#;
    // Expired at once: the same request under the same key runs again.
    for _ in 0..2 {
        let answer = server
            .invoke_raw(&tenant.key, CREATE_SERVICE, "", body, Some("short-lived"))
            .await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(answer.header("idempotent-replayed"), None);
    }
    assert_eq!(services_named(&server, &tenant, "again").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_are_the_tenants_active_executors() {
    let server = server().await;
    let tenant = server.tenant().await;
    let mut uploaded = Vec::new();
    for name in [FIXTURE_FAULTS, CREATE_SERVICE] {
        uploaded.push(server.upload_component(&tenant.key, name).await);
    }
    let tools = server.get(Some(&tenant.key), "/v1/tools").await.expect(200);
    assert_eq!(keys(&tools), ["tools"]);
    let mut tools = tools["tools"].as_array().unwrap().clone();
    tools.sort_by_key(|t| t["function"]["name"].as_str().unwrap().to_owned());
    uploaded.sort_by_key(|u| u["name"].as_str().unwrap().to_owned());
    let expected: Vec<Value> = uploaded
        .iter()
        .map(|u| {
            json!({"type": "function", "function": {
                "name": u["name"], "description": u["description"], "parameters": u["input_schema"]}})
        })
        .collect();
    assert_eq!(tools, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_endpoints_list_the_tenants_rows() {
    let server = server().await;
    let tenant = server
        .tenant_with(&[
            CREATE_SERVICE,
            CREATE_BOOKING,
            REQUEST_APPOINTMENT,
            UPDATE_PAGE_SECTION,
        ])
        .await;
    let key = Some(tenant.key.as_str());
    let service = create_service(&server, &tenant, "Haircut").await;
    let services = server.get(key, "/v1/services").await.expect(200);
    let listed = services["services"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{services}");
    assert_eq!(
        keys(&listed[0]),
        [
            "booking_window_days",
            "buffer_after_minutes",
            "buffer_before_minutes",
            "capacity",
            "created_at",
            "duration_minutes",
            "id",
            "min_notice_minutes",
            "name",
            "requires_confirmation",
            "slot_increment_minutes"
        ]
    );
    assert_eq!(
        (
            &listed[0]["id"],
            &listed[0]["name"],
            &listed[0]["duration_minutes"]
        ),
        (&json!(service), &json!("Haircut"), &json!(30))
    );
    instant(&listed[0]["created_at"]);

    let mut booked = Vec::new();
    for start in ["2030-06-01T10:00:00Z", "2030-06-01T12:00:00Z"] {
        let body = server
            .invoke(
                &tenant.key,
                CREATE_BOOKING,
                &json!({"service_id": service, "customer": "Ada", "start": start}),
            )
            .await
            .expect(200);
        booked.push(body["result"]["booking"]["id"].as_str().unwrap().to_owned());
    }
    let bookings = |query: Vec<(&'static str, String)>| {
        let request = server
            .request(Method::GET, "/v1/bookings", key)
            .query(&query);
        server.send(request)
    };
    let ids = |answer: Answer| -> Vec<String> {
        let body = answer.expect(200);
        let mut ids: Vec<String> = body["bookings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let window = |from: &str, to: &str| {
        vec![
            ("service_id", service.clone()),
            ("from", from.to_owned()),
            ("to", to.to_owned()),
        ]
    };

    let answer = bookings(window("2030-06-01T10:15:00Z", "2030-06-01T10:45:00Z")).await;
    let body = answer.expect(200);
    let found = body["bookings"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{body}");
    let booking = &found[0];
    assert_eq!(
        keys(booking),
        [
            "blocked_from",
            "blocked_until",
            "created_at",
            "customer",
            "ends_at",
            "hold_id",
            "id",
            "resource_id",
            "service_id",
            "starts_at",
            "status"
        ]
    );
    assert_eq!(booking["id"], booked[0]);
    assert_eq!(booking["service_id"], service);
    assert_eq!(booking["customer"], "Ada");
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(
        instant(&booking["starts_at"]),
        instant(&json!("2030-06-01T10:00:00Z"))
    );
    assert_eq!(
        instant(&booking["ends_at"]),
        instant(&json!("2030-06-01T10:30:00Z"))
    );
    instant(&booking["created_at"]);

    // [from, to) is half-open and so are bookings: touching is not overlapping.
    let touching = bookings(window("2030-06-01T10:30:00Z", "2030-06-01T12:00:00Z")).await;
    assert_eq!(ids(touching), Vec::<String>::new());
    let both = bookings(window("2030-06-01T10:29:59Z", "2030-06-01T12:00:01Z")).await;
    let mut all = booked.clone();
    all.sort();
    assert_eq!(ids(both), all);
    assert_eq!(ids(bookings(Vec::new()).await), all);

    for bad in [
        vec![("from", "yesterday".to_owned())],
        vec![("to", "2030-06-01".to_owned())],
        vec![("service_id", "not-a-uuid".to_owned())],
    ] {
        bookings(bad).await.any_problem(400);
    }

    let request = server
        .invoke(
            &tenant.key,
            REQUEST_APPOINTMENT,
            &json!({"customer": "Ada", "pet": "Rex"}),
        )
        .await
        .expect(200);
    let requests = server.get(key, "/v1/booking-requests").await.expect(200);
    let listed = requests["booking_requests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{requests}");
    assert_eq!(listed[0]["id"], request["result"]["request"]["id"]);
    assert_eq!(
        (
            &listed[0]["customer"],
            &listed[0]["pet"],
            &listed[0]["status"]
        ),
        (&json!("Ada"), &json!("Rex"), &json!("pending"))
    );

    server
        .invoke(
            &tenant.key,
            UPDATE_PAGE_SECTION,
            &json!({"page": "home", "section": {"id": "hero", "kind": "banner"}}),
        )
        .await
        .expect(200);
    let storefront = server.get(key, "/v1/storefront").await.expect(200);
    let pages = storefront["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 1, "{storefront}");
    assert_eq!(keys(&pages[0]), ["config", "id", "slug", "updated_at"]);
    assert_eq!(pages[0]["slug"], "home");
    assert_eq!(
        pages[0]["config"],
        json!({"sections": [{"id": "hero", "kind": "banner"}]})
    );
    assert!(is_uuid(&pages[0]["id"]));
    instant(&pages[0]["updated_at"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_see_or_use_another_tenants_executors() {
    let server = server().await;
    let owner = server.tenant_with(&[CREATE_SERVICE]).await;
    let service = create_service(&server, &owner, "owner-service").await;
    let stranger = server.tenant().await;
    let key = Some(stranger.key.as_str());

    let listed = server.get(key, "/v1/executors").await;
    assert_eq!(listed.expect(200), json!({"executors": []}));
    // 404, not 403: the stranger must not learn that the executor exists.
    server
        .get(key, "/v1/executors/create-service")
        .await
        .any_problem(404);
    invoke_create_service(&server, &stranger.key, "stolen")
        .await
        .any_problem(404);
    server
        .rollback(&stranger.key, CREATE_SERVICE, None)
        .await
        .any_problem(404);
    let tools = server.get(key, "/v1/tools").await;
    assert_eq!(tools.expect(200), json!({"tools": []}));
    let services = server.get(key, "/v1/services").await;
    assert_eq!(services.expect(200), json!({"services": []}));
    let bookings = server
        .send(
            server
                .request(Method::GET, "/v1/bookings", key)
                .query(&[("service_id", service.as_str())]),
        )
        .await;
    assert_eq!(bookings.expect(200), json!({"bookings": []}));

    // Versions are per tenant: the same bytes are new for the stranger.
    let uploaded = server
        .upload(&stranger.key, CREATE_SERVICE, component(CREATE_SERVICE))
        .await
        .expect(201);
    assert_eq!(uploaded["active"], true);
    assert_eq!(server.rows("services", &stranger).await, 0);
    let owners = server
        .get(Some(&owner.key), "/v1/services")
        .await
        .expect(200);
    assert_eq!(owners["services"].as_array().unwrap().len(), 1);
    assert_eq!(services_named(&server, &stranger, "stolen").await, 0);
}

/// The availability endpoint: slots as find-slots computes them, typed 400s
/// for a bad range, 404 for another tenant's service, 401 without a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_lists_free_slots_and_refuses_bad_ranges() {
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE, CREATE_BOOKING]).await;
    let other = server.tenant_with(&[CREATE_SERVICE]).await;
    let key = Some(tenant.key.as_str());
    let service = create_service(&server, &tenant, "Haircut").await;
    let path =
        |from: &str, to: &str| format!("/v1/services/{service}/availability?from={from}&to={to}");
    let day = server
        .get(key, &path("2031-03-03T00:00:00Z", "2031-03-04T00:00:00Z"))
        .await
        .expect(200);
    assert_eq!(day["time_zone"], "UTC");
    let slots = day["slots"].as_array().unwrap();
    assert!(!slots.is_empty(), "{day}");
    assert_eq!(slots[0]["starts_at"], "2031-03-03T00:00:00Z");
    // A booking takes its slot out of the list.
    let first = slots[0]["starts_at"].as_str().unwrap().to_owned();
    server
        .invoke_raw(
            &tenant.key,
            CREATE_BOOKING,
            "",
            &json!({"service_id": service, "customer": "Ada", "start": first}).to_string(),
            None,
        )
        .await
        .expect(200);
    let after = server
        .get(key, &path("2031-03-03T00:00:00Z", "2031-03-04T00:00:00Z"))
        .await
        .expect(200);
    assert_eq!(after["slots"].as_array().unwrap().len(), slots.len() - 1);
    assert_ne!(after["slots"][0]["starts_at"], first.as_str());

    let wide = server
        .get(key, &path("2031-03-03T00:00:00Z", "2031-06-04T00:00:00Z"))
        .await
        .expect(400);
    assert_eq!(
        wide["type"], "urn:bookhost:problem:invalid-parameter",
        "{wide}"
    );
    let backwards = server
        .get(key, &path("2031-03-04T00:00:00Z", "2031-03-03T00:00:00Z"))
        .await
        .expect(400);
    assert!(backwards["detail"].as_str().unwrap().contains("after"));
    server
        .get(key, &path("yesterday", "2031-03-03T00:00:00Z"))
        .await
        .expect(400);
    server
        .get(
            Some(other.key.as_str()),
            &path("2031-03-03T00:00:00Z", "2031-03-04T00:00:00Z"),
        )
        .await
        .expect(404);
    server
        .get(None, &path("2031-03-03T00:00:00Z", "2031-03-04T00:00:00Z"))
        .await
        .expect(401);
}
