//! The Model Context Protocol endpoint, `/mcp` (Streamable HTTP, stateless,
//! with the official SDK `rmcp`): the tenant's active executors as tools
//! whose hints the host guarantees, `tools/call` as an invocation with every
//! property of the HTTP path, proposals and their confirmation, and
//! read-only resources. Behind the tenant's API key, like the HTTP API.

mod changes;
mod config;
mod guard;
mod handler;
mod resources;
mod tools;

use std::sync::Arc;

use axum::Router;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

pub use self::changes::ToolChanges;
pub use self::config::McpConfig;
use self::guard::Guard;
use self::handler::McpHandler;
use crate::invocations::Invocations;

/// Where the endpoint is served.
pub const PATH: &str = "/mcp";

/// The `/mcp` routes: the guard (Origin, then the bearer key), then the SDK's
/// service with a fresh handler per request (no sessions).
pub fn router<S: Clone + Send + Sync + 'static>(
    invocations: Invocations,
    changes: ToolChanges,
    config: &McpConfig,
) -> Router<S> {
    let guard = Arc::new(Guard::new(invocations.host().pool().clone(), config));
    let handler = McpHandler::new(invocations, changes);
    let mut transport = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    transport = if config.allowed_hosts.is_empty() {
        transport.disable_allowed_hosts()
    } else {
        transport.with_allowed_hosts(config.allowed_hosts.clone())
    };
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(NeverSessionManager::default()),
        transport,
    );
    Router::new()
        .nest_service(PATH, service)
        .layer(axum::middleware::from_fn_with_state(guard, guard::guard))
}
