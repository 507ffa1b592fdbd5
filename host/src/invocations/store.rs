//! A key's answer as stored: by the commit hook in the invocation's own
//! transaction, or right after an answer that committed nothing; and sent
//! again for a retry of the same request.

use super::answer::{answer, Answer, InvocationError};
use crate::db::idempotency::{self, StoredResponse};
use crate::db::sql::Statement;
use crate::runtime::{CommitHook, InvocationReport};
use crate::TenantId;

/// Stores a key's answer.
pub struct StoreAnswer {
    pub(super) tenant: TenantId,
    pub(super) key: String,
    pub(super) request_hash: String,
    pub(super) ttl: std::time::Duration,
    /// The proposal a committed answer confirms (it says so in its body).
    pub(super) confirms: Option<uuid::Uuid>,
}

impl StoreAnswer {
    pub(super) fn statement_for(&self, status: u16, body: &[u8]) -> Statement {
        idempotency::store_statement(
            self.tenant,
            &self.key,
            &self.request_hash,
            status,
            body,
            self.ttl,
        )
    }
}

impl CommitHook for StoreAnswer {
    /// Only committed reports reach a commit hook; their answer is a body,
    /// made as the caller will make it from the same report.
    fn statement(&self, report: &InvocationReport) -> Statement {
        let confirms = self.confirms;
        let answer = answer(report, |body| body.confirmed = confirms)
            .expect("a committed invocation answers with a body");
        self.statement_for(answer.status, &answer.body)
    }
}

/// What a keyed run produced: its answer, and whether that answer was
/// committed (and so stored) with the executor's writes.
pub type Ran = (Answer, bool);

pub(super) fn replay(
    stored: StoredResponse,
    request_hash: &str,
) -> Result<Answer, InvocationError> {
    if stored.request_hash != request_hash {
        return Err(InvocationError::KeyReused);
    }
    Ok(Answer {
        status: u16::try_from(stored.status_code).unwrap_or(200),
        body: stored.response,
        replayed: true,
    })
}
