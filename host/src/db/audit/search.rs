//! Searching the audit log by tenant, executor, capability, table, outcome,
//! invocation, proposal and time.

use sqlx::PgPool;

use super::record::{record_columns, records_with_links, AuditRecord};

/// Filters of an audit search; all optional.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct AuditFilter {
    pub tenant: Option<uuid::Uuid>,
    pub executor: Option<String>,
    pub capability: Option<String>,
    pub table: Option<String>,
    pub outcome: Option<String>,
    pub invocation_id: Option<uuid::Uuid>,
    /// The attempts of a proposal's dry run and of its confirmation.
    pub proposal_id: Option<uuid::Uuid>,
    /// RFC 3339; records at or after.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// RFC 3339; records before.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Only records with a larger id (for following the log).
    pub after_id: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

impl AuditFilter {
    /// Every record (attempt) of one invocation of `tenant`.
    pub fn invocation(tenant: uuid::Uuid, invocation_id: uuid::Uuid) -> Self {
        AuditFilter {
            tenant: Some(tenant),
            invocation_id: Some(invocation_id),
            limit: Some(1000),
            ..Default::default()
        }
    }
}

/// Records matching `filter`, oldest first.
pub async fn search(pool: &PgPool, filter: &AuditFilter) -> anyhow::Result<Vec<AuditRecord>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ", record_columns!(), " FROM ", records_with_links!(), " WHERE \
         ($1::uuid IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR executor = $2) \
         AND ($3::text IS NULL OR calls::jsonb @> jsonb_build_array(jsonb_build_object('capability', $3::text))) \
         AND ($4::text IS NULL OR calls::jsonb @> jsonb_build_array(jsonb_build_object('table', $4::text))) \
         AND ($5::text IS NULL OR outcome = $5 OR calls::jsonb @> jsonb_build_array(jsonb_build_object('outcome', $5::text))) \
         AND ($6::uuid IS NULL OR invocation_id = $6) \
         AND ($7::timestamptz IS NULL OR recorded_at >= $7) AND ($8::timestamptz IS NULL OR recorded_at < $8) \
         AND ($9::bigint IS NULL OR id > $9) AND ($11::uuid IS NULL OR proposal_id = $11) \
         ORDER BY r.id LIMIT $10"
    ))
    .bind(filter.tenant)
    .bind(&filter.executor)
    .bind(&filter.capability)
    .bind(&filter.table)
    .bind(&filter.outcome)
    .bind(filter.invocation_id)
    .bind(filter.from)
    .bind(filter.to)
    .bind(filter.after_id)
    .bind(filter.limit.unwrap_or(100).clamp(1, 1000))
    .bind(filter.proposal_id)
    .fetch_all(pool)
    .await?)
}
