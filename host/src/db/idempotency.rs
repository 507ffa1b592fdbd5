//! Idempotency keys: the first completed response for (tenant, key), the
//! claim a request holds on its key while it runs, and what to do next.

use sea_query::{Alias, OnConflict, PostgresQueryBuilder, Query};
use sea_query_binder::SqlxBinder;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

use super::locks::{advisory_lock_id, LockNamespace};
use super::retry::retrying;
use super::sql::Statement;
use crate::TenantId;

/// A stored response.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredResponse {
    pub request_hash: String,
    pub status_code: i32,
    pub response: Vec<u8>,
}

/// The live stored response for (tenant, key), if any.
pub async fn find(
    pool: &PgPool,
    tenant: TenantId,
    key: &str,
) -> anyhow::Result<Option<StoredResponse>> {
    Ok(retrying(|| {
        sqlx::query_as(
            "SELECT request_hash, status_code, response FROM idempotency_keys \
             WHERE tenant_id = $1 AND key = $2 AND expires_at > now()",
        )
        .bind(tenant.0)
        .bind(key)
        .fetch_optional(pool)
    })
    .await?)
}

/// The statement that stores a response (replacing an expired record).
pub fn store_statement(
    tenant: TenantId,
    key: &str,
    request_hash: &str,
    status_code: u16,
    response: &[u8],
    ttl: std::time::Duration,
) -> Statement {
    let expires_at =
        chrono::Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(1));
    let columns = [
        "tenant_id",
        "key",
        "request_hash",
        "status_code",
        "response",
        "expires_at",
    ];
    Query::insert()
        .into_table(Alias::new("idempotency_keys"))
        .columns(columns.map(Alias::new))
        .values_panic([
            tenant.0.into(),
            key.into(),
            request_hash.into(),
            i32::from(status_code).into(),
            response.to_vec().into(),
            expires_at.into(),
        ])
        .on_conflict(
            OnConflict::columns([Alias::new("tenant_id"), Alias::new("key")])
                .update_columns(columns[2..].iter().map(|c| Alias::new(*c)))
                .action_and_where(sea_query::Expr::cust(
                    "idempotency_keys.expires_at <= now()",
                ))
                .to_owned(),
        )
        .build_sqlx(PostgresQueryBuilder)
}

/// Store a response outside any invocation transaction; false when the key
/// already had a live response (another request stored it meanwhile).
/// Safe to run twice: a second run finds the first one's record.
pub async fn store(pool: &PgPool, statement: Statement) -> anyhow::Result<bool> {
    let (sql, values) = statement;
    let done = retrying(|| sqlx::query_with(&sql, values.clone()).execute(pool)).await?;
    Ok(done.rows_affected() == 1)
}

/// What to do with a request that carries an Idempotency-Key.
pub enum NextAction {
    /// No completed answer yet: run the request while holding the claim,
    /// then [`Claim::finish`].
    StartProcessing(Claim),
    /// The first completed answer for the key, to answer again as it was.
    ReturnSavedResponse(StoredResponse),
    /// Another request with this key is still running.
    InProgressElsewhere,
}

/// Look up the key's answer, or claim the key to produce it. `pool` holds
/// the stored answers; the claim is a connection of `claims` (a pool of its
/// own, so held claims cannot starve the invocations they wait for).
pub async fn try_processing(
    pool: &PgPool,
    claims: &PgPool,
    tenant: TenantId,
    key: &str,
) -> anyhow::Result<NextAction> {
    if let Some(stored) = find(pool, tenant, key).await? {
        return Ok(NextAction::ReturnSavedResponse(stored));
    }
    let Some(claim) = Claim::try_begin(claims, tenant, key).await? else {
        return Ok(NextAction::InProgressElsewhere);
    };
    // The first request may have finished between the lookup and the claim.
    if let Some(stored) = find(pool, tenant, key).await? {
        claim.finish().await;
        return Ok(NextAction::ReturnSavedResponse(stored));
    }
    Ok(NextAction::StartProcessing(claim))
}

/// Marks (tenant, key) as in progress for as long as it lives: a
/// session-level advisory lock on a connection of its own, so a crashed
/// host never leaves a key stuck "in progress".
pub struct Claim {
    conn: Option<PoolConnection<Postgres>>,
    id: i64,
}

impl Claim {
    /// Ok(None) when another request holds the key.
    async fn try_begin(pool: &PgPool, tenant: TenantId, key: &str) -> anyhow::Result<Option<Self>> {
        let id = advisory_lock_id(LockNamespace::Idempotency, tenant, key);
        // A lock taken on a connection that then died went with it: trying
        // again on a fresh one is safe.
        let claimed = retrying(|| async {
            let mut conn = Unreturned(Some(pool.acquire().await?));
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(id)
                .fetch_one(&mut **conn.0.as_mut().expect("held"))
                .await?;
            Ok((conn.keep(), got))
        })
        .await?;
        let (conn, got) = claimed;
        Ok(got.then_some(Self {
            conn: Some(conn),
            id,
        }))
    }

    /// Give the key up (its answer is stored, or it is not to be).
    pub async fn finish(mut self) {
        if let Some(conn) = self.conn.take() {
            let mut conn = Unreturned(Some(conn));
            let released = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.id)
                .execute(&mut **conn.0.as_mut().expect("held"))
                .await;
            if released.is_ok() {
                drop(conn.keep());
            }
        }
    }
}

/// A connection that is closed, not returned to the pool, unless kept: a
/// future dropped while its lock or unlock statement was in flight (a
/// timeout, a cancelled request) leaves the session's locks unknown, and a
/// statement the server runs after all would leave a lock held on a pooled
/// connection for good.
struct Unreturned(Option<PoolConnection<Postgres>>);

impl Unreturned {
    fn keep(mut self) -> PoolConnection<Postgres> {
        self.0.take().expect("kept once")
    }
}

impl Drop for Unreturned {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(conn.detach());
        }
    }
}

impl Drop for Claim {
    /// Dropped without `finish` (the request was cancelled): close the
    /// connection so the lock goes with it, never back to the pool.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}
