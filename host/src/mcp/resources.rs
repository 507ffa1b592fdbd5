//! Read-only resources, so an agent can look before it acts: the tenant's
//! services and its upcoming bookings, behind the same key and row-level
//! security as everything else.

use rmcp::model::{ReadResourceResult, Resource, ResourceContents};
use rmcp::ErrorData;

use crate::TenantId;

pub const SERVICES: &str = "bookhost://services";
pub const UPCOMING_BOOKINGS: &str = "bookhost://bookings/upcoming";

pub fn list() -> Vec<Resource> {
    vec![
        Resource::new(SERVICES, "services")
            .with_title("Services")
            .with_description("The services that can be booked: id, name, duration_minutes.")
            .with_mime_type("application/json"),
        Resource::new(UPCOMING_BOOKINGS, "upcoming-bookings")
            .with_title("Upcoming bookings")
            .with_description(
                "Bookings that have not ended yet, in start order: id, service_id, customer, \
                 starts_at, ends_at, status.",
            )
            .with_mime_type("application/json"),
    ]
}

/// The resource at `uri` for `tenant`, as JSON text.
pub async fn read(
    pool: &sqlx::PgPool,
    tenant: TenantId,
    uri: &str,
) -> Result<ReadResourceResult, ErrorData> {
    let rows = match uri {
        SERVICES => crate::db::reads::services(pool, tenant).await,
        UPCOMING_BOOKINGS => {
            crate::db::reads::bookings(pool, tenant, None, Some(chrono::Utc::now()), None).await
        }
        _ => {
            return Err(ErrorData::resource_not_found(
                format!("no resource {uri:?}; see resources/list"),
                None,
            ))
        }
    };
    let rows = rows.map_err(|e| {
        tracing::error!("reading MCP resource {uri}: {e:#}");
        ErrorData::internal_error("the host failed; retry later", None)
    })?;
    Ok(ReadResourceResult::new(vec![ResourceContents::text(
        rows.to_string(),
        uri,
    )
    .with_mime_type("application/json")]))
}
