//! `bookhost invoke --local`: a built executor run once on a scratch PostgreSQL holding the example data, started for the invocation and removed after it.

use std::sync::Arc;

use anyhow::Context as _;

use super::{build, AuthoringError, Project};
use crate::db::local_cluster::{ClusterOptions, LocalCluster};
use crate::runtime::{Host, HostSettings, InvocationReport};
use crate::TenantId;

/// The rows every scratch database starts with, by fixed ids, so a
/// project's README and tests can name them.
pub struct ExampleData {
    pub tenant: &'static str,
    /// "Haircut", 30 minutes; booked 2030-01-07 10:00-10:30 UTC.
    pub haircut: &'static str,
    /// "Colouring", 90 minutes; no bookings.
    pub colouring: &'static str,
    /// Grace's confirmed Haircut, 2030-01-07 10:00-10:30 UTC.
    pub booking: &'static str,
    /// A pending appointment request for the pet "Rex".
    pub request: &'static str,
    /// The storefront page "home" with one section, "hero".
    pub page: &'static str,
}

pub const EXAMPLE_DATA: ExampleData = ExampleData {
    tenant: "5e7c0000-0000-4000-8000-00000000000a",
    haircut: "5e7c0000-0000-4000-8000-000000000001",
    colouring: "5e7c0000-0000-4000-8000-000000000002",
    booking: "5e7c0000-0000-4000-8000-000000000003",
    request: "5e7c0000-0000-4000-8000-000000000004",
    page: "5e7c0000-0000-4000-8000-000000000005",
};

impl ExampleData {
    /// One line per row, for `bookhost new` to print.
    pub fn describe(&self) -> String {
        format!(
            "tenant {} (\"example\")\n\
             service {} \"Haircut\", 30 minutes\n\
             service {} \"Colouring\", 90 minutes\n\
             booking {} Haircut for Grace, 2030-01-07 10:00-10:30 UTC, confirmed\n\
             appointment request {} for the pet Rex, pending\n\
             storefront page {} \"home\" with the section \"hero\"",
            self.tenant, self.haircut, self.colouring, self.booking, self.request, self.page
        )
    }

    fn sql(&self) -> String {
        format!(
            "INSERT INTO tenants (id, name) VALUES ('{t}', 'example');
             INSERT INTO services (tenant_id, id, name, duration_minutes) VALUES
                 ('{t}', '{h}', 'Haircut', 30), ('{t}', '{c}', 'Colouring', 90);
             INSERT INTO bookings (tenant_id, id, service_id, customer, starts_at, ends_at, status) VALUES
                 ('{t}', '{b}', '{h}', 'Grace', '2030-01-07T10:00:00Z', '2030-01-07T10:30:00Z', 'confirmed');
             INSERT INTO booking_requests (tenant_id, id, customer, pet, status) VALUES
                 ('{t}', '{r}', 'Ada', 'Rex', 'pending');
             INSERT INTO storefront_pages (tenant_id, id, slug, config) VALUES
                 ('{t}', '{p}', 'home', '{{\"sections\": [{{\"id\": \"hero\", \"kind\": \"banner\"}}]}}');",
            t = self.tenant,
            h = self.haircut,
            c = self.colouring,
            b = self.booking,
            r = self.request,
            p = self.page,
        )
    }
}

/// Run the project's built component once with `input`, as the example
/// tenant, on a scratch database that is gone when this returns.
pub async fn invoke_local(
    project: &Project,
    input: &str,
) -> Result<InvocationReport, AuthoringError> {
    let path = project.component_path();
    let bytes = std::fs::read(&path).map_err(|_| AuthoringError::NotBuilt(path.clone()))?;
    let registry = build::registry(project)?;
    let executor = registry.load(&bytes).await?;
    if executor.name != project.name {
        return Err(AuthoringError::NameMismatch {
            expected: project.name.to_string(),
            described: executor.name.to_string(),
        });
    }

    let root = std::env::temp_dir().join(format!("bookhost-scratch-{}", uuid::Uuid::new_v4()));
    let options = ClusterOptions {
        die_with_parent: true,
        ..ClusterOptions::default()
    };
    let mut cluster =
        LocalCluster::start(&root, &options).context("starting a scratch PostgreSQL")?;
    let ran = async {
        let url = cluster.database_url();
        let pool = crate::db::connect(&url, None, 4).await?;
        let owner = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await?;
        sqlx::raw_sql(&EXAMPLE_DATA.sql())
            .execute(&owner)
            .await
            .context("loading the example data")?;
        owner.close().await;
        let host = Host::new(pool.clone(), Arc::new(registry), HostSettings::default());
        let tenant: TenantId = EXAMPLE_DATA.tenant.parse()?;
        let report = host.invoke(tenant, project.name.as_str(), input).await;
        // Closed before the server stops, so no connection sees it go.
        pool.close().await;
        anyhow::Ok(report?)
    }
    .await;
    cluster.stop();
    let _ = std::fs::remove_dir_all(&root);
    Ok(ran?)
}
