//! The host: a pool, the compiled executors, the settings and metrics every
//! invocation shares, and the admission of each tenant's invocations.

use std::sync::Arc;

use sqlx::PgPool;

use super::admission::TenantAdmission;
use super::metrics::Metrics;
use super::registry::ExecutorRegistry;
use super::settings::HostSettings;
use crate::capabilities::transaction::TransactionSettings;
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
}

impl Host {
    pub fn new(pool: PgPool, registry: Arc<ExecutorRegistry>, settings: HostSettings) -> Self {
        let transaction_settings = Arc::new(settings.discipline.transaction.clone());
        let admission = TenantAdmission::new(settings.max_in_flight_per_tenant);
        Self {
            pool,
            registry,
            settings: Arc::new(settings),
            transaction_settings,
            metrics: Arc::new(Metrics::new()),
            admission,
        }
    }

    /// How many of `tenant`'s invocations are running now.
    pub fn in_flight(&self, tenant: TenantId) -> usize {
        self.admission.in_flight(tenant)
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
