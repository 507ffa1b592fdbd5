//! Admission: at most `max_in_flight_per_tenant` invocations of one tenant
//! run at once, so one tenant cannot take every worker, instance and
//! connection; a tenant with none running costs nothing.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::outcome::InvokeError;
use crate::TenantId;

/// In-flight invocations per tenant with any running (an entry leaves with
/// its tenant's last invocation, so idle tenants cost nothing).
#[derive(Debug, Clone)]
pub struct TenantAdmission {
    cap: usize,
    running: Arc<Mutex<HashMap<TenantId, usize>>>,
}

/// One invocation's place among its tenant's, given back when dropped.
#[derive(Debug)]
pub struct TenantSlot {
    running: Arc<Mutex<HashMap<TenantId, usize>>>,
    tenant: TenantId,
}

impl TenantAdmission {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            running: Arc::default(),
        }
    }

    /// A slot among the tenant's `cap`, or `TenantBusy`.
    pub fn admit(&self, tenant: TenantId) -> Result<TenantSlot, InvokeError> {
        let mut running = self.running.lock().expect("not poisoned");
        let count = running.entry(tenant).or_insert(0);
        if *count >= self.cap {
            if *count == 0 {
                running.remove(&tenant);
            }
            return Err(InvokeError::TenantBusy(self.cap));
        }
        *count += 1;
        Ok(TenantSlot {
            running: self.running.clone(),
            tenant,
        })
    }

    /// How many of `tenant`'s invocations are running now.
    pub fn in_flight(&self, tenant: TenantId) -> usize {
        let running = self.running.lock().expect("not poisoned");
        running.get(&tenant).copied().unwrap_or(0)
    }

    /// How many tenants have invocations running now.
    pub fn tenants_in_flight(&self) -> usize {
        self.running.lock().expect("not poisoned").len()
    }
}

impl Drop for TenantSlot {
    fn drop(&mut self) {
        let mut running = self.running.lock().expect("not poisoned");
        if let Entry::Occupied(mut count) = running.entry(self.tenant) {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_at_its_cap_is_refused_and_leaves_nothing_behind() {
        let admission = TenantAdmission::new(2);
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
}
