//! What every request shares: the host, the service's configuration and
//! the pool that holds Idempotency-Key claims; and loading an executor's
//! active version on first use.

use std::sync::Arc;
use std::time::Duration;

use super::problem::ApiError;
use crate::capabilities::grant::{Grant, GrantPolicy};
use crate::runtime::LoadedExecutor;
use crate::{Host, TenantId};

/// What the service is configured with beyond the host itself.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The key that administers tenants; without one, operator endpoints refuse everything.
    pub operator_key: Option<String>,
    /// Most bytes of an uploaded component.
    pub max_component_bytes: usize,
    /// How long an idempotency key's stored response is replayed.
    pub idempotency_ttl: Duration,
    /// How declared capabilities become grants.
    pub grant_policy: GrantPolicy,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            operator_key: None,
            max_component_bytes: 8 << 20,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            grant_policy: GrantPolicy::default(),
        }
    }
}

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub host: Host,
    pub config: Arc<ServiceConfig>,
    /// Connections that hold Idempotency-Key claims (one per keyed request
    /// in flight). A pool of their own: claims held on the invocations' pool
    /// would starve the invocations they wait for.
    pub(crate) claims: sqlx::PgPool,
}

impl AppState {
    pub fn new(host: Host, config: ServiceConfig) -> Self {
        let invocations = host.pool();
        let claims = sqlx::postgres::PgPoolOptions::new()
            .max_connections(invocations.options().get_max_connections().max(2))
            .connect_lazy_with((*invocations.connect_options()).clone());
        Self {
            host,
            config: Arc::new(config),
            claims,
        }
    }

    /// The loaded executor for an active version (digest, granted
    /// capabilities; `None`: no such executor, 404), loading it from the
    /// database if this host has not yet.
    pub(crate) async fn loaded(
        &self,
        tenant: TenantId,
        name: &str,
        active: Option<(String, Vec<String>)>,
    ) -> Result<(Arc<LoadedExecutor>, Arc<Grant>), ApiError> {
        let pool = self.host.pool();
        let not_found = || ApiError::NotFound(format!("no executor named {name:?}"));
        let (digest, granted) = active.ok_or_else(not_found)?;
        let granted = crate::capabilities::grant::parse_all(&granted)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored grant of {name}: {e}")))?;
        let grant = Arc::new(Grant::new(granted));
        if let Some(loaded) = self.host.registry().get_by_digest(&digest) {
            return Ok((loaded, grant));
        }
        let bytes = crate::db::executors::component(pool, tenant, name, &digest)
            .await?
            .ok_or_else(not_found)?;
        let loaded = self.host.registry().load(&bytes).await.map_err(|e| {
            ApiError::Internal(anyhow::anyhow!(
                "stored version {digest} of {name} no longer loads: {e}"
            ))
        })?;
        Ok((loaded, grant))
    }
}
