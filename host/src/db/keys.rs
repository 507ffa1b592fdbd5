//! Tenant API keys: issued once, stored as SHA-256, looked up per request.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::retry::retrying;
use crate::TenantId;

fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Issue a new key for `tenant`; the only time the key itself is seen.
pub async fn issue(pool: &PgPool, tenant: TenantId) -> anyhow::Result<String> {
    let secret: [u8; 32] = rand::random();
    let key = format!(
        "bk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    sqlx::query("INSERT INTO api_keys (tenant_id, key_hash) VALUES ($1, $2)")
        .bind(tenant.0)
        .bind(hash(&key))
        .execute(pool)
        .await?;
    Ok(key)
}

/// The tenant a (not revoked) key belongs to.
pub async fn tenant_of(pool: &PgPool, key: &str) -> anyhow::Result<Option<TenantId>> {
    tenant_of_digest(pool, &hash(key)).await
}

/// The tenant whose (not revoked) key has SHA-256 `key_hash`: for the
/// console, whose sessions keep the digest, never the key.
pub async fn tenant_of_digest(pool: &PgPool, key_hash: &[u8]) -> anyhow::Result<Option<TenantId>> {
    let tenant: Option<uuid::Uuid> = retrying(|| {
        sqlx::query_scalar(
            "SELECT tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(pool)
    })
    .await?;
    Ok(tenant.map(TenantId))
}

/// What an invocation request needs before it runs, in one round trip: the
/// tenant a (not revoked) key belongs to and, if that tenant has an executor
/// `name`, its active version's digest and granted capabilities.
pub async fn tenant_and_executor(
    pool: &PgPool,
    key: &str,
    name: &str,
) -> anyhow::Result<Option<(TenantId, Option<(String, Vec<String>)>)>> {
    let key_hash = hash(key);
    let row: Option<(uuid::Uuid, Option<String>, Option<Vec<String>>)> = retrying(|| {
        sqlx::query_as(
            "SELECT k.tenant_id, e.active_digest, v.granted FROM api_keys k \
             LEFT JOIN executors e ON e.tenant_id = k.tenant_id AND e.name = $2 \
             LEFT JOIN executor_versions v \
             ON v.tenant_id = e.tenant_id AND v.name = e.name AND v.digest = e.active_digest \
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
        )
        .bind(&key_hash)
        .bind(name)
        .fetch_optional(pool)
    })
    .await?;
    Ok(row.map(|(tenant, digest, granted)| {
        let active = digest.zip(granted);
        (TenantId(tenant), active)
    }))
}
