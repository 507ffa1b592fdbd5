//! Who may reach `/mcp`: a browser page only from an allowed `Origin`
//! (`403` otherwise, checked first), and only with a tenant's API key as a
//! bearer token (`401` with `WWW-Authenticate: Bearer` otherwise).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::config::McpConfig;
use crate::invocations::ActiveVersion;
use crate::TenantId;

/// The tenant a request's key belongs to, for the handler; for a
/// `tools/call`, the tool and the tenant's active version of it, looked up
/// with the key in one round trip (as the HTTP path does).
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
    pub tool: Option<(String, Option<ActiveVersion>)>,
}

/// The most of a body read to find a `tools/call`'s tool (the SDK refuses
/// larger bodies itself: 4 MiB).
const MAX_BODY: usize = 4 << 20;

/// Just enough of a JSON-RPC request to name the tool it calls.
#[derive(serde::Deserialize)]
struct Peek {
    method: Option<String>,
    params: Option<PeekParams>,
}

#[derive(serde::Deserialize)]
struct PeekParams {
    name: Option<String>,
}

/// The tool a `tools/call` body names, if it is one.
fn called_tool(body: &[u8]) -> Option<String> {
    let peek: Peek = serde_json::from_slice(body).ok()?;
    (peek.method.as_deref() == Some("tools/call"))
        .then(|| peek.params?.name)
        .flatten()
}

/// The guard's settings and the pool keys are looked up in.
pub struct Guard {
    pool: sqlx::PgPool,
    origins: Vec<OriginRule>,
}

/// An allowed origin: scheme and host exactly, the port exactly or any.
#[derive(Debug, PartialEq, Eq)]
struct OriginRule {
    scheme: String,
    host: String,
    port: Option<u16>,
}

/// `scheme://host[:port]` (a rule's port may be `*`); the port defaults by scheme.
fn parse_origin(text: &str, rule: bool) -> Option<(String, String, Option<u16>)> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let (host, port) = match rest.rsplit_once(':') {
        // `[::1]:8080`, `localhost:*`; an IPv6 address alone has colons
        // inside its brackets only.
        Some((host, port)) if !port.contains(']') => {
            let port = match port {
                "*" if rule => None,
                digits => Some(digits.parse().ok()?),
            };
            (host, port)
        }
        _ => {
            let default = match scheme.as_str() {
                "http" => 80,
                "https" => 443,
                _ => return None,
            };
            (rest, Some(default))
        }
    };
    if host.is_empty() || host.contains('/') {
        return None;
    }
    Some((scheme, host.to_ascii_lowercase(), port))
}

impl Guard {
    pub fn new(pool: sqlx::PgPool, config: &McpConfig) -> Self {
        let origins = config
            .allowed_origins
            .iter()
            .filter_map(|o| {
                let (scheme, host, port) = parse_origin(o, true)?;
                Some(OriginRule { scheme, host, port })
            })
            .collect();
        Self { pool, origins }
    }

    fn origin_allowed(&self, origin: &HeaderValue) -> bool {
        let Some((scheme, host, port)) = origin.to_str().ok().and_then(|o| parse_origin(o, false))
        else {
            return false;
        };
        self.origins.iter().any(|rule| {
            rule.scheme == scheme && rule.host == host && rule.port.is_none_or(|p| Some(p) == port)
        })
    }
}

/// A JSON-RPC error without an id (the request was not read), with `status`.
fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32600, "message": message},
    });
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The middleware in front of the SDK's service.
pub async fn guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        if !guard.origin_allowed(origin) {
            return refuse(
                StatusCode::FORBIDDEN,
                "this Origin may not call the MCP endpoint",
            );
        }
    }
    let key = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let Some(key) = key.map(str::to_owned) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "missing Authorization: Bearer <tenant API key>",
        );
    };
    // A tools/call names its tool in the body: read it (the SDK reads the
    // body whole anyway) and look the tool up with the key.
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        );
    };
    let tool = called_tool(&bytes);
    let mut request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let found = match &tool {
        Some(name) => crate::db::keys::tenant_and_executor(&guard.pool, &key, name)
            .await
            .map(|found| found.map(|(tenant, active)| (tenant, Some((name.clone(), active))))),
        None => crate::db::keys::tenant_of(&guard.pool, &key)
            .await
            .map(|found| found.map(|tenant| (tenant, None))),
    };
    match found {
        Ok(Some((tenant, tool))) => {
            request.extensions_mut().insert(Caller { tenant, tool });
            next.run(request).await
        }
        Ok(None) => refuse(StatusCode::UNAUTHORIZED, "unknown or revoked API key"),
        Err(error) => {
            tracing::error!("looking up an MCP caller's key: {error:#}");
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the host could not check the key",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(origins: &[&str]) -> Guard {
        let config = McpConfig {
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            allowed_hosts: Vec::new(),
        };
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://localhost/none")
            .unwrap();
        Guard::new(pool, &config)
    }

    #[test]
    fn a_tools_call_names_its_tool() {
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create-booking","arguments":{}}}"#;
        assert_eq!(called_tool(call).as_deref(), Some("create-booking"));
        let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
        assert_eq!(called_tool(list), None);
        assert_eq!(called_tool(b"[not json"), None);
    }

    #[tokio::test]
    async fn origins_match_scheme_host_and_port() {
        let g = guard(&[
            "http://localhost:*",
            "https://app.example.com",
            "http://[::1]:8080",
        ]);
        let allowed = |o: &str| g.origin_allowed(&HeaderValue::from_str(o).unwrap());
        assert!(allowed("http://localhost:3000"));
        assert!(allowed("http://LOCALHOST:1"));
        assert!(allowed("https://app.example.com"));
        assert!(allowed("https://app.example.com:443"));
        assert!(allowed("http://[::1]:8080"));
        assert!(!allowed("http://[::1]:8081"));
        assert!(!allowed("https://localhost:3000"), "another scheme");
        assert!(!allowed("https://app.example.com:8443"), "another port");
        assert!(!allowed("https://evil.example.com"));
        assert!(!allowed("http://localhost.evil.com:80"));
        assert!(!allowed("null"));
    }
}
