//! Tenant API keys: issued once, stored as SHA-256, looked up per request.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

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
    let tenant: Option<uuid::Uuid> = sqlx::query_scalar(
        "SELECT tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash(key))
    .fetch_optional(pool)
    .await?;
    Ok(tenant.map(TenantId))
}
