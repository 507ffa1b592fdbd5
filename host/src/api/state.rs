//! What every request shares: the host, the invocations it runs, and the
//! service's configuration.

use std::sync::Arc;
use std::time::Duration;

use crate::capabilities::grant::GrantPolicy;
use crate::invocations::{InvocationSettings, Invocations};
use crate::Host;

/// What the service is configured with beyond the host itself.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The key that administers tenants; without one, operator endpoints refuse everything.
    pub operator_key: Option<String>,
    /// Most bytes of an uploaded component.
    pub max_component_bytes: usize,
    /// How long an idempotency key's stored response is replayed.
    pub idempotency_ttl: Duration,
    /// How long a proposal can be confirmed.
    pub proposal_ttl: Duration,
    /// How declared capabilities become grants.
    pub grant_policy: GrantPolicy,
    /// The MCP endpoint's settings.
    pub mcp: crate::mcp::McpConfig,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        let invocations = InvocationSettings::default();
        Self {
            operator_key: None,
            max_component_bytes: 32 << 20,
            idempotency_ttl: invocations.idempotency_ttl,
            proposal_ttl: invocations.proposal_ttl,
            grant_policy: GrantPolicy::default(),
            mcp: crate::mcp::McpConfig::default(),
        }
    }
}

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub host: Host,
    pub invocations: Invocations,
    /// Tool list changes, for MCP clients that listen.
    pub changes: crate::mcp::ToolChanges,
    pub config: Arc<ServiceConfig>,
    /// Draining for a stop, and the requests in flight.
    pub lifecycle: super::lifecycle::Lifecycle,
    /// Who is signed in to the console on this host.
    pub console: super::console::Sessions,
}

impl AppState {
    pub fn new(host: Host, config: ServiceConfig) -> Self {
        let invocations = Invocations::new(
            host.clone(),
            InvocationSettings {
                idempotency_ttl: config.idempotency_ttl,
                proposal_ttl: config.proposal_ttl,
            },
        );
        let changes = crate::mcp::ToolChanges::new(host.pool().clone());
        Self {
            host,
            invocations,
            changes,
            config: Arc::new(config),
            lifecycle: Default::default(),
            console: Default::default(),
        }
    }
}
