//! The host: a pool, the compiled executors, the settings and metrics every
//! invocation shares, and the admission of each tenant's invocations.

use std::sync::Arc;

use sqlx::PgPool;

use super::admission::TenantAdmission;
use super::metrics::Metrics;
use super::registry::ExecutorRegistry;
use super::settings::HostSettings;
use crate::capabilities::transaction::TransactionSettings;
use crate::db::health::DbHealth;
use crate::TenantId;

/// The host: a pool, the executors, the discipline.
#[derive(Clone)]
pub struct Host {
    pub(super) pool: PgPool,
    pub(super) registry: Arc<ExecutorRegistry>,
    pub(super) settings: Arc<HostSettings>,
    pub(super) transaction_settings: Arc<TransactionSettings>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) admission: TenantAdmission,
    pub(super) health: DbHealth,
}

impl Host {
    pub fn new(pool: PgPool, registry: Arc<ExecutorRegistry>, settings: HostSettings) -> Self {
        let transaction_settings = Arc::new(settings.discipline.transaction.clone());
        let share = settings
            .connections_per_tenant
            .unwrap_or(pool.options().get_max_connections() as usize / 2);
        let admission = TenantAdmission::new(settings.max_in_flight_per_tenant, share);
        Self {
            pool,
            registry,
            settings: Arc::new(settings),
            transaction_settings,
            metrics: Arc::new(Metrics::new()),
            admission,
            health: DbHealth::new(),
        }
    }

    /// Whether the database answers, as this host's probe last found it
    /// (the probe runs once [`DbHealth::spawn_probe`] is called).
    pub fn health(&self) -> &DbHealth {
        &self.health
    }

    /// How many of `tenant`'s invocations are running now.
    pub fn in_flight(&self, tenant: TenantId) -> usize {
        self.admission.in_flight(tenant)
    }

    /// How many database connections one tenant's invocations hold at once.
    pub fn connections_per_tenant(&self) -> usize {
        self.admission.connection_share()
    }

    /// How many tenants have invocations running now (what the host keeps
    /// per tenant).
    pub fn tenants_in_flight(&self) -> usize {
        self.admission.tenants_in_flight()
    }

    /// The host's Prometheus metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn registry(&self) -> &ExecutorRegistry {
        &self.registry
    }

    pub fn settings(&self) -> &HostSettings {
        &self.settings
    }
}
