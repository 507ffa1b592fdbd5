//! Who may reach `/mcp`: a browser page only from an allowed `Origin`
//! (`403` otherwise, checked first), and only with a tenant's API key as a
//! bearer token (`401` with `WWW-Authenticate: Bearer` otherwise).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::config::McpConfig;
use crate::TenantId;

/// The tenant a request's key belongs to, for the handler.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub tenant: TenantId,
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
pub async fn guard(State(guard): State<Arc<Guard>>, mut request: Request, next: Next) -> Response {
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
    let Some(key) = key else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "missing Authorization: Bearer <tenant API key>",
        );
    };
    match crate::db::keys::tenant_of(&guard.pool, key).await {
        Ok(Some(tenant)) => {
            request.extensions_mut().insert(Caller { tenant });
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
