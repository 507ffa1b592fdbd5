//! Propose, then confirm: a proposal is a dry run whose executor version,
//! input, clock and write set are kept; its confirmation runs that version
//! on that input with that clock for real and commits only if it writes the
//! same rows. Otherwise nothing is written and the answer is the fresh
//! preview, with a new proposal. The proposal's id is the confirmation's
//! Idempotency-Key, so confirming twice commits once.

use std::sync::Arc;

use super::answer::{answer, Answer, InvocationError, ProposalRef};
use super::store::{Ran, StoreAnswer};
use super::{request_hash, Invocations};
use crate::capabilities::grant::{self, Grant};
use crate::capabilities::transaction::WriteRecord;
use crate::db::proposals::{self, Proposal};
use crate::runtime::{CommitHook, InvocationOutcome, InvocationReport, InvokeOptions};
use crate::TenantId;

/// The key a confirmation of `proposal` is made idempotent by (it begins
/// with a byte no Idempotency-Key a client sends can hold).
fn confirmation_key(proposal: uuid::Uuid) -> String {
    format!("\u{1}proposal:{proposal}")
}

impl Invocations {
    /// Answer a proposal's dry run: when the executor succeeded, keep the
    /// proposal (valid for the configured time) and name it in the answer.
    pub(super) async fn proposed(
        &self,
        tenant: TenantId,
        input: &serde_json::Value,
        report: &InvocationReport,
        id: uuid::Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Answer, InvocationError> {
        let proposal = match &report.outcome {
            InvocationOutcome::Ok { .. } => Some(self.keep(tenant, input, report, id, now).await?),
            _ => None,
        };
        answer(report, |body| body.proposal = proposal)
    }

    /// Store a proposal of what `report`'s successful run wrote.
    async fn keep(
        &self,
        tenant: TenantId,
        input: &serde_json::Value,
        report: &InvocationReport,
        id: uuid::Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<ProposalRef, InvocationError> {
        let ttl = chrono::Duration::from_std(self.settings.proposal_ttl)
            .unwrap_or(chrono::Duration::minutes(10));
        let expires_at = chrono::Utc::now() + ttl;
        let proposal = Proposal {
            id,
            executor: report.executor.clone(),
            version: report.version.clone(),
            input: input.clone(),
            writes: serde_json::to_value(&report.writes).map_err(anyhow::Error::from)?,
            now_micros: now.timestamp_micros(),
            proposed_by: report.invocation_id,
            expires_at,
        };
        proposals::store(self.host.pool(), tenant, &proposal).await?;
        Ok(ProposalRef { id, expires_at })
    }

    /// Confirm `tenant`'s proposal `id`: commit its writes if the executor
    /// writes them again; otherwise answer the fresh preview (`changed`).
    pub async fn confirm(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
    ) -> Result<Answer, InvocationError> {
        let proposal = proposals::find(self.host.pool(), tenant, id)
            .await?
            .ok_or(InvocationError::ProposalNotFound(id))?;
        let key = confirmation_key(id);
        let hash = request_hash(&["confirm", &id.to_string()]);
        // A confirmation answered before is answered again, even once the
        // proposal has expired.
        self.keyed(tenant, &key, &hash, Some(id), async |store| {
            if proposal.expires_at <= chrono::Utc::now() {
                return Err(InvocationError::ProposalExpired {
                    id,
                    expired_at: proposal.expires_at,
                });
            }
            self.confirm_now(tenant, &proposal, store).await
        })
        .await
    }

    async fn confirm_now(
        &self,
        tenant: TenantId,
        proposal: &Proposal,
        store: Arc<StoreAnswer>,
    ) -> Result<Ran, InvocationError> {
        let name = &proposal.executor;
        let executor = self.loaded(tenant, name, &proposal.version).await?;
        // The grant the version holds now: an operator may have changed it.
        let (_, decision) =
            crate::db::executors::grant(self.host.pool(), tenant, name, Some(&proposal.version))
                .await?
                .ok_or_else(|| InvocationError::UnknownExecutor(name.clone()))?;
        let granted = grant::parse_all(&decision.granted)
            .map_err(|e| anyhow::anyhow!("the stored grant of {name}: {e}"))?;
        let expected: Vec<WriteRecord> =
            serde_json::from_value(proposal.writes.clone()).map_err(anyhow::Error::from)?;
        let options = InvokeOptions {
            on_commit: Some(store as Arc<dyn CommitHook>),
            grant: Some(Arc::new(Grant::new(granted))),
            now_micros: Some(proposal.now_micros),
            expected_writes: Some(Arc::new(expected)),
            proposal: Some(proposal.id),
            ..InvokeOptions::default()
        };
        let report = self
            .host
            .invoke_executor(tenant, &executor, &proposal.input.to_string(), options)
            .await?;
        // The same executor, input and clock, other writes: the data
        // changed. The fresh preview is a proposal of its own.
        let next = match &report.outcome {
            InvocationOutcome::Changed { .. } => {
                let now = chrono::DateTime::from_timestamp_micros(proposal.now_micros)
                    .unwrap_or_else(chrono::Utc::now);
                let fresh = uuid::Uuid::now_v7();
                Some(
                    self.keep(tenant, &proposal.input, &report, fresh, now)
                        .await?,
                )
            }
            _ => None,
        };
        let committed = matches!(report.outcome, InvocationOutcome::Ok { .. });
        // Failures (traps, timeouts, ...) have no answer: they are errors.
        let answer = answer(&report, |body| {
            match &report.outcome {
                InvocationOutcome::Ok { .. } => body.confirmed = Some(proposal.id),
                // The executor now refuses (the slot was taken meanwhile).
                InvocationOutcome::UserError { .. } => body.changed = true,
                _ => {}
            }
            body.proposal = next;
        })?;
        Ok((answer, committed))
    }
}
