//! The HTTP service on a free local port, a client that keeps every response's
//! status, headers and exact bytes, and helpers for tenants and uploads.

use std::ops::Deref;
use std::path::PathBuf;

use bookhost::api::{app, AppState, ServiceConfig};
use bookhost::{Host, HostSettings};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use tokio::task::JoinHandle;

/// A running service. The server task stops when this is dropped.
pub struct TestServer {
    api: Api,
    pub operator_key: String,
    /// The tables' owner, for checking rows behind the API's back (past
    /// row-level security).
    pub pool: PgPool,
    task: JoinHandle<()>,
}

/// The requests a test sends, apart from the server that owns the task and
/// the pool: cloning one is cheap, so each spawned task can take its own.
#[derive(Clone)]
pub struct Api {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    base: String,
    client: reqwest::Client,
}

/// So tests call `server.invoke(...)` and never have to reach for the handle.
impl Deref for TestServer {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A tenant created through the API, with the key it was given.
#[derive(Debug, Clone)]
pub struct TestTenant {
    pub id: bookhost::TenantId,
    pub name: String,
    pub key: String,
}

/// One response, read to the end: the bytes are kept exactly as sent, so
/// replays can be compared byte for byte.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON; panics (showing the body) if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The media type without parameters (`; charset=...`).
    pub fn media_type(&self) -> &str {
        self.header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap()
            .trim()
    }

    /// Panics with the body unless the status is `status`.
    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self.json()
    }

    /// Checks an RFC 7807 problem of `status` and `slug` and returns its body.
    #[track_caller]
    pub fn problem(&self, status: u16, slug: &str) -> Value {
        let body = self.any_problem(status);
        assert_eq!(
            body["type"],
            format!("urn:bookhost:problem:{slug}"),
            "{body}"
        );
        body
    }

    /// Checks an RFC 7807 problem of `status`, whatever its slug.
    #[track_caller]
    pub fn any_problem(&self, status: u16) -> Value {
        let body = self.expect(status);
        assert_eq!(self.media_type(), "application/problem+json", "{body}");
        assert!(
            body["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:bookhost:problem:")),
            "{body}"
        );
        assert!(
            body["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{body}"
        );
        assert_eq!(body["status"], status, "{body}");
        assert!(body["detail"].is_string(), "{body}");
        body
    }
}

/// Sorted member names of a JSON object, for exact shape assertions.
pub fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// Serve `app` for a host with `settings` (and a pool of 16). Without an
/// operator key in `config`, a random one is set, so operator endpoints work.
pub async fn start_server(settings: HostSettings, config: ServiceConfig) -> TestServer {
    serve(crate::host_with(settings, 16).await, config).await
}

/// Serve `app` for `host`, e.g. one with a registry of its own (a second host process).
pub async fn serve(host: Host, mut config: ServiceConfig) -> TestServer {
    let operator_key = config
        .operator_key
        .get_or_insert_with(|| format!("operator-{}", uuid::Uuid::new_v4()))
        .clone();
    let pool = super::owner();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = app(AppState::new(host, config));
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    TestServer {
        api: Api {
            base,
            client: reqwest::Client::new(),
        },
        operator_key,
        pool,
        task,
    }
}

/// A server with default settings and configuration.
pub async fn server() -> TestServer {
    start_server(HostSettings::default(), ServiceConfig::default()).await
}

impl Api {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The same server through a client of its own: its connections are
    /// made by (and their I/O handled on) the runtime that first uses it.
    pub fn with_new_client(&self) -> Api {
        Api {
            base: self.base.clone(),
            client: reqwest::Client::new(),
        }
    }

    /// A request to `path`, with `Authorization: Bearer <key>` when a key is given.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// Send and read the whole response, which must be an answer the
    /// OpenAPI document lists for the operation.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let request = request.build().expect("a well-formed request");
        let (method, path) = (
            request.method().to_string(),
            request.url().path().to_owned(),
        );
        let response = self
            .client
            .execute(request)
            .await
            .expect("the request reaches the server");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap().to_vec();
        let answer = Answer {
            status,
            headers,
            body,
        };
        crate::documented::check_answer(
            &method,
            &path,
            status,
            answer.media_type(),
            !answer.body.is_empty(),
        );
        answer
    }

    pub async fn get(&self, key: Option<&str>, path: &str) -> Answer {
        self.send(self.request(Method::GET, path, key)).await
    }

    pub async fn post_json(&self, key: Option<&str>, path: &str, body: &Value) -> Answer {
        self.send(
            self.request(Method::POST, path, key)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    /// POST /v1/executors/{name}/invoke with `body` sent as is.
    pub async fn invoke_raw(
        &self,
        key: &str,
        name: &str,
        query: &str,
        body: &str,
        idempotency_key: Option<&str>,
    ) -> Answer {
        let mut request = self
            .request(
                Method::POST,
                &format!("/v1/executors/{name}/invoke{query}"),
                Some(key),
            )
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(idempotency_key) = idempotency_key {
            request = request.header("Idempotency-Key", idempotency_key);
        }
        self.send(request).await
    }

    /// POST /v1/executors/{name}/invoke with `input`.
    pub async fn invoke(&self, key: &str, name: &str, input: &Value) -> Answer {
        self.invoke_raw(key, name, "", &input.to_string(), None)
            .await
    }

    /// [`Self::invoke_raw`] from a task of its own, so that it runs while the
    /// test goes on (or alongside others).
    pub fn spawn_invoke(
        &self,
        key: &str,
        name: &str,
        body: &str,
        idempotency_key: Option<&str>,
    ) -> JoinHandle<Answer> {
        let api = self.clone();
        let (key, name, body) = (key.to_owned(), name.to_owned(), body.to_owned());
        let idempotency_key = idempotency_key.map(str::to_owned);
        tokio::spawn(async move {
            api.invoke_raw(&key, &name, "", &body, idempotency_key.as_deref())
                .await
        })
    }

    /// One invocation of `name` per (body, Idempotency-Key) in `requests`, all
    /// sent before any answer is awaited so that they really overlap; the
    /// answers come back in the order of `requests`.
    pub async fn invoke_concurrently(
        &self,
        key: &str,
        name: &str,
        requests: impl IntoIterator<Item = (String, Option<String>)>,
    ) -> Vec<Answer> {
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|(body, idempotency_key)| {
                self.spawn_invoke(key, name, &body, idempotency_key.as_deref())
            })
            .collect();
        futures::future::try_join_all(tasks).await.unwrap()
    }

    /// POST /v1/executors/{name}/rollback: to `version`, or without a body
    /// (the server then picks the version uploaded before the active one).
    pub async fn rollback(&self, key: &str, name: &str, version: Option<&str>) -> Answer {
        let path = format!("/v1/executors/{name}/rollback");
        match version {
            Some(version) => {
                self.post_json(Some(key), &path, &serde_json::json!({ "version": version }))
                    .await
            }
            None => {
                self.send(self.request(Method::POST, &path, Some(key)))
                    .await
            }
        }
    }

    /// PUT /v1/executors/{name} with `bytes`.
    pub async fn upload(&self, key: &str, name: &str, bytes: Vec<u8>) -> Answer {
        self.send(
            self.request(Method::PUT, &format!("/v1/executors/{name}"), Some(key))
                .header("content-type", "application/wasm")
                .body(bytes),
        )
        .await
    }

    /// Upload plugins/components/<name>.wasm under its own name; it must be accepted.
    pub async fn upload_component(&self, key: &str, name: &str) -> Value {
        let answer = self.upload(key, name, component(name)).await;
        assert!(
            answer.status == 201 || answer.status == 200,
            "uploading {name}: {} {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        answer.json()
    }
}

impl TestServer {
    /// A new tenant (unique name) created with the operator key.
    pub async fn tenant(&self) -> TestTenant {
        let name = format!("api-{}", uuid::Uuid::new_v4());
        let body = self
            .post_json(
                Some(&self.operator_key),
                "/v1/tenants",
                &serde_json::json!({ "name": name }),
            )
            .await
            .expect(201);
        TestTenant {
            id: bookhost::TenantId(body["id"].as_str().unwrap().parse().unwrap()),
            name: body["name"].as_str().unwrap().to_owned(),
            key: body["api_key"].as_str().unwrap().to_owned(),
        }
    }

    /// A new tenant that has uploaded each of `executors`.
    pub async fn tenant_with(&self, executors: &[&str]) -> TestTenant {
        let tenant = self.tenant().await;
        for name in executors {
            self.upload_component(&tenant.key, name).await;
        }
        tenant
    }

    /// Rows of `table` belonging to `tenant`.
    pub async fn rows(&self, table: &str, tenant: &TestTenant) -> i64 {
        assert!(
            [
                "services",
                "bookings",
                "booking_requests",
                "storefront_pages"
            ]
            .contains(&table),
            "not a tenant table: {table}"
        );
        sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = $1"
        ))
        .bind(tenant.id.0)
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }
}

/// The bytes of plugins/components/<name>.wasm.
pub fn component(name: &str) -> Vec<u8> {
    let path: PathBuf = crate::components_dir().join(format!("{name}.wasm"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("reading {} (run plugins/build.sh): {e}", path.display()))
}

/// `bytes` with a custom section appended: the same executor, another
/// version (custom sections are allowed anywhere in a component).
pub fn with_custom_section(mut bytes: Vec<u8>, name: &str, payload: &[u8]) -> Vec<u8> {
    let mut content = Vec::new();
    leb128(&mut content, name.len());
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(payload);
    bytes.push(0);
    leb128(&mut bytes, content.len());
    bytes.extend_from_slice(&content);
    bytes
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// SHA-256 of `bytes`, lower-case hex: what the API calls a version.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}
