//! A business for the booking-domain tests: a tenant in a time zone, with helpers to set up services, resources and hours through the real executors and to ask for slots at a fixed clock.

use bookhost::runtime::InvokeOptions;
use bookhost::{Host, InvocationReport, TenantId};
use serde_json::{json, Value};

use crate::executors::*;
use crate::{host, ok_output, owner, tenant};

/// Microseconds since the epoch of an RFC 3339 time.
pub fn micros(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp_micros()
}

/// One tenant in one time zone, on a host of its own.
pub struct Business {
    pub host: Host,
    pub tenant: TenantId,
    /// The invocation clock `run` uses (microseconds since the epoch).
    pub now: i64,
}

impl Business {
    /// A business in `zone` whose clock reads `now` (RFC 3339).
    pub async fn new(zone: &str, now: &str, connections: u32) -> Self {
        let host = host(connections).await;
        let tenant = tenant(&owner()).await;
        bookhost::db::set_tenant_time_zone(&owner(), tenant, zone)
            .await
            .unwrap();
        Self {
            host,
            tenant,
            now: micros(now),
        }
    }

    /// Invoke `executor` at the business's clock.
    pub async fn run(&self, executor: &str, input: Value) -> InvocationReport {
        self.run_with(executor, input, false).await
    }

    /// Invoke as a dry run (everything rolled back, even on ok).
    pub async fn dry_run(&self, executor: &str, input: Value) -> InvocationReport {
        self.run_with(executor, input, true).await
    }

    async fn run_with(&self, executor: &str, input: Value, dry_run: bool) -> InvocationReport {
        let loaded = self.host.registry().get(executor).expect("executor built");
        let options = InvokeOptions {
            dry_run,
            now_micros: Some(self.now),
            ..InvokeOptions::default()
        };
        self.host
            .invoke_executor(self.tenant, &loaded, &input.to_string(), options)
            .await
            .unwrap()
    }

    /// A service from create-service's input; returns its id.
    pub async fn service(&self, input: Value) -> String {
        let report = self.run(CREATE_SERVICE, input).await;
        ok_output(&report)["service"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A resource serving `services`; returns its id.
    pub async fn resource(&self, name: &str, services: &[&str]) -> String {
        let input = json!({"name": name, "service_ids": services});
        let report = self.run(CREATE_RESOURCE, input).await;
        ok_output(&report)["resource"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Set hours (set-opening-hours' input), which must succeed.
    pub async fn hours(&self, input: Value) {
        ok_output(&self.run(SET_OPENING_HOURS, input).await);
    }

    /// The starts (RFC 3339, UTC) find-slots offers in `[from, to)`.
    pub async fn slots(&self, service: &str, from: &str, to: &str) -> Vec<String> {
        self.slot_details(service, from, to)
            .await
            .iter()
            .map(|s| s["starts_at"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The slots find-slots offers in `[from, to)`, whole.
    pub async fn slot_details(&self, service: &str, from: &str, to: &str) -> Vec<Value> {
        let input = json!({"service_id": service, "from": from, "to": to});
        let report = self.run(FIND_SLOTS, input).await;
        ok_output(&report)["slots"].as_array().unwrap().clone()
    }

    /// Rows of `table` of this tenant (as the owner, past RLS).
    pub async fn rows(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = $1"
        ))
        .bind(self.tenant.0)
        .fetch_one(&owner())
        .await
        .unwrap()
    }

    /// Active (pending or confirmed) bookings of this tenant.
    pub async fn active_bookings(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM bookings WHERE tenant_id = $1 AND status IN ('pending', 'confirmed')",
        )
        .bind(self.tenant.0)
        .fetch_one(&owner())
        .await
        .unwrap()
    }
}
