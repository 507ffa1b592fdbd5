//! A plain JSON-RPC client of `/mcp` for the Rust tests (the official SDKs
//! are exercised from Python and TypeScript in `tests/mcp/`): stateless
//! requests of the 2025-06-18 revision, no session, JSON answers.

use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::header::HeaderMap;
use serde_json::{json, Value};

/// One client: a base URL, a key (or none) and an Origin (or none).
#[derive(Clone)]
pub struct McpClient {
    url: String,
    key: Option<String>,
    origin: Option<String>,
    http: reqwest::Client,
}

/// One HTTP answer of `/mcp`.
#[derive(Debug)]
pub struct McpAnswer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl McpAnswer {
    /// The JSON-RPC result; panics on an error or a non-200.
    #[track_caller]
    pub fn result(&self) -> &Value {
        assert_eq!(self.status, 200, "{:#}", self.body);
        assert!(self.body.get("error").is_none(), "{:#}", self.body);
        &self.body["result"]
    }

    /// The JSON-RPC error; panics if there is none.
    #[track_caller]
    pub fn error(&self) -> &Value {
        assert!(self.body.get("error").is_some(), "{:#}", self.body);
        &self.body["error"]
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl McpClient {
    /// `/mcp` of the server at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str, key: Option<&str>) -> Self {
        Self {
            url: format!("{base}/mcp"),
            key: key.map(str::to_owned),
            origin: None,
            http: reqwest::Client::new(),
        }
    }

    pub fn with_origin(mut self, origin: &str) -> Self {
        self.origin = Some(origin.to_owned());
        self
    }

    /// Send `method` with `params`; extra headers for the Idempotency-Key test.
    pub async fn send(&self, method: &str, params: Value, headers: &[(&str, &str)]) -> McpAnswer {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut request = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-06-18")
            .body(
                json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
            );
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        if let Some(origin) = &self.origin {
            request = request.header("origin", origin);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .send()
            .await
            .expect("the request reaches the server");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        McpAnswer {
            status,
            headers,
            body,
        }
    }

    /// `tools/list`: the tools, by name.
    pub async fn tools(&self) -> Vec<Value> {
        let answer = self.send("tools/list", json!({}), &[]).await;
        let mut tools = answer.result()["tools"].as_array().unwrap().clone();
        tools.sort_by_key(|t| t["name"].as_str().unwrap_or_default().to_owned());
        tools
    }

    /// `tools/call` of `name` on `arguments`, with `meta` as `_meta`.
    pub async fn call(&self, name: &str, arguments: Value, meta: Option<Value>) -> McpAnswer {
        let mut params = json!({"name": name, "arguments": arguments});
        if let Some(meta) = meta {
            params["_meta"] = meta;
        }
        self.send("tools/call", params, &[]).await
    }
}
