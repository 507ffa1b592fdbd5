//! Admission: at most `max_in_flight_per_tenant` invocations of one tenant
//! run at once, and at most its share of the pool's connections hold one at
//! once, so one tenant cannot take every worker, instance and connection
//! (its invocations queued on a hot key wait for a share, not for the whole
//! pool); a tenant with none running costs nothing.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::outcome::InvokeError;
use crate::TenantId;

/// What admission keeps for a tenant with invocations running.
#[derive(Debug)]
struct Running {
    invocations: usize,
    /// Permits for the tenant's share of the pool's connections.
    connections: Arc<Semaphore>,
}

type RunningTenants = Arc<Mutex<HashMap<TenantId, Running>>>;

/// In-flight invocations per tenant with any running (an entry leaves with
/// its tenant's last invocation, so idle tenants cost nothing).
#[derive(Debug, Clone)]
pub struct TenantAdmission {
    cap: usize,
    connection_share: usize,
    running: RunningTenants,
}

/// One invocation's place among its tenant's, given back when dropped.
#[derive(Debug)]
pub struct TenantSlot {
    running: RunningTenants,
    tenant: TenantId,
    connections: Arc<Semaphore>,
}

impl TenantSlot {
    /// Wait for one of the tenant's connection permits (waiting holds no
    /// connection); an attempt holds it while it holds a connection.
    pub async fn connection_permit(&self) -> OwnedSemaphorePermit {
        self.connections
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }
}

impl TenantAdmission {
    /// `cap` invocations of one tenant in flight, `connection_share` of them
    /// holding a database connection at once.
    pub fn new(cap: usize, connection_share: usize) -> Self {
        Self {
            cap,
            connection_share: connection_share.max(1),
            running: Arc::default(),
        }
    }

    /// A slot among the tenant's `cap`, or `TenantBusy`.
    pub fn admit(&self, tenant: TenantId) -> Result<TenantSlot, InvokeError> {
        let mut running = self.running.lock().expect("not poisoned");
        let entry = running.entry(tenant).or_insert_with(|| Running {
            invocations: 0,
            connections: Arc::new(Semaphore::new(self.connection_share)),
        });
        if entry.invocations >= self.cap {
            if entry.invocations == 0 {
                running.remove(&tenant);
            }
            return Err(InvokeError::TenantBusy(self.cap));
        }
        entry.invocations += 1;
        Ok(TenantSlot {
            running: self.running.clone(),
            tenant,
            connections: entry.connections.clone(),
        })
    }

    /// How many of `tenant`'s invocations are running now.
    pub fn in_flight(&self, tenant: TenantId) -> usize {
        let running = self.running.lock().expect("not poisoned");
        running.get(&tenant).map_or(0, |r| r.invocations)
    }

    /// How many connections one tenant may hold at once.
    pub fn connection_share(&self) -> usize {
        self.connection_share
    }

    /// How many tenants have invocations running now.
    pub fn tenants_in_flight(&self) -> usize {
        self.running.lock().expect("not poisoned").len()
    }
}

impl Drop for TenantSlot {
    fn drop(&mut self) {
        let mut running = self.running.lock().expect("not poisoned");
        if let Entry::Occupied(mut entry) = running.entry(self.tenant) {
            entry.get_mut().invocations -= 1;
            if entry.get().invocations == 0 {
                entry.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_at_its_cap_is_refused_and_leaves_nothing_behind() {
        let admission = TenantAdmission::new(2, 1);
        let (a, b) = (
            TenantId(uuid::Uuid::from_u128(1)),
            TenantId(uuid::Uuid::from_u128(2)),
        );
        let first = admission.admit(a).unwrap();
        let second = admission.admit(a).unwrap();
        assert!(matches!(
            admission.admit(a),
            Err(InvokeError::TenantBusy(2))
        ));
        let other = admission.admit(b).unwrap();
        assert_eq!(
            (admission.in_flight(a), admission.tenants_in_flight()),
            (2, 2)
        );
        drop((first, second, other));
        assert_eq!(admission.tenants_in_flight(), 0);
    }

    #[tokio::test]
    async fn a_tenant_holds_at_most_its_share_of_connections() {
        let admission = TenantAdmission::new(4, 2);
        let (a, b) = (
            TenantId(uuid::Uuid::from_u128(1)),
            TenantId(uuid::Uuid::from_u128(2)),
        );
        let slots: Vec<_> = (0..3).map(|_| admission.admit(a).unwrap()).collect();
        let _held = (
            slots[0].connection_permit().await,
            slots[1].connection_permit().await,
        );
        let third = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            slots[2].connection_permit(),
        )
        .await;
        assert!(
            third.is_err(),
            "a third permit waits for the tenant's share"
        );
        let other = admission.admit(b).unwrap();
        let _theirs = other.connection_permit().await;
    }
}
