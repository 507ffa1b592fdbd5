//! Idempotency-Keys: a key's first completed answer is its answer to every
//! retry. A committed answer is stored in the invocation's own transaction
//! (it commits exactly when the executor's writes do); an answer that
//! committed nothing (a refusal, a proposal, a changed confirmation) is
//! stored right after; failures are not stored, so a retry runs again.

use std::sync::Arc;

use super::answer::{Answer, InvocationError};
use super::store::{replay, Ran, StoreAnswer};
use super::Invocations;
use crate::db::idempotency::{self, NextAction};
use crate::TenantId;

impl Invocations {
    /// Answer for (tenant, key): the stored answer of its first completed
    /// request (the same request, by `request_hash`), or `run`'s, while
    /// holding the key so concurrent retries do not run it twice.
    pub(super) async fn keyed(
        &self,
        tenant: TenantId,
        key: &str,
        request_hash: &str,
        confirms: Option<uuid::Uuid>,
        run: impl AsyncFnOnce(Arc<StoreAnswer>) -> Result<Ran, InvocationError>,
    ) -> Result<Answer, InvocationError> {
        let pool = self.host.pool();
        let claim = match idempotency::try_processing(pool, &self.claims, tenant, key).await? {
            NextAction::ReturnSavedResponse(stored) => return replay(stored, request_hash),
            NextAction::InProgressElsewhere => return Err(InvocationError::KeyInProgress),
            NextAction::StartProcessing(claim) => claim,
        };
        let store = Arc::new(StoreAnswer {
            tenant,
            key: key.to_owned(),
            request_hash: request_hash.to_owned(),
            ttl: self.settings.idempotency_ttl,
            confirms,
        });
        let ran = run(store.clone()).await;
        let answered = match ran {
            Ok((answer, true)) => Ok(answer),
            Ok((answer, false)) => {
                let statement = store.statement_for(answer.status, &answer.body);
                match idempotency::store(pool, statement).await {
                    Ok(true) => Ok(answer),
                    Ok(false) => {
                        self.answered_meanwhile(tenant, key, request_hash, Ok(answer))
                            .await
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Err(error) => {
                self.answered_meanwhile(tenant, key, request_hash, Err(error))
                    .await
            }
        };
        claim.finish().await;
        answered
    }

    /// The key's claim lives on a connection of its own; when that
    /// connection is lost (a terminated backend, a restart) the key is free
    /// to a retry elsewhere while this request still runs, and whichever
    /// completes it first holds its answer (the commit hook refuses to
    /// commit a second). A request that did not store its answer gives the
    /// stored one, if there is one, rather than its own.
    async fn answered_meanwhile(
        &self,
        tenant: TenantId,
        key: &str,
        request_hash: &str,
        own: Result<Answer, InvocationError>,
    ) -> Result<Answer, InvocationError> {
        match idempotency::find(self.host.pool(), tenant, key).await {
            Ok(Some(stored)) => replay(stored, request_hash),
            _ => own,
        }
    }
}
