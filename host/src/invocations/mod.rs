//! Invocations as callers ask for them, over HTTP and MCP alike: the
//! tenant's active executor loaded, the input checked against its schema
//! before any wasm runs, Idempotency-Keys, dry runs, and proposals that a
//! later confirmation commits only if nothing changed. Transport-neutral:
//! `api` and `mcp` turn its answers and errors into their own.

mod answer;
mod keyed;
mod proposals;
mod store;

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

pub use self::answer::{answer, Answer, Failure, InvocationError, InvocationResponse, ProposalRef};
use crate::capabilities::grant::{self, Grant};
use crate::runtime::{CommitHook, InvocationOutcome, InvokeOptions, LoadedExecutor};
use crate::{Host, TenantId};

/// How long the records of invocations are kept.
#[derive(Debug, Clone)]
pub struct InvocationSettings {
    /// How long an Idempotency-Key's answer is replayed.
    pub idempotency_ttl: Duration,
    /// How long a proposal can be confirmed.
    pub proposal_ttl: Duration,
}

impl Default for InvocationSettings {
    fn default() -> Self {
        Self {
            idempotency_ttl: Duration::from_secs(24 * 3600),
            proposal_ttl: Duration::from_secs(10 * 60),
        }
    }
}

/// What a caller asks of an executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run it; commit when it returns ok.
    Run,
    /// Run it, report its writes, roll back.
    DryRun,
    /// A dry run whose write set is kept as a proposal to confirm.
    Propose,
}

impl Mode {
    fn tag(self) -> &'static str {
        match self {
            Mode::Run => "run",
            Mode::DryRun => "dry-run",
            Mode::Propose => "propose",
        }
    }
}

/// An executor version ready to run for a tenant, with the tenant's grant.
#[derive(Clone)]
pub struct Target {
    pub executor: Arc<LoadedExecutor>,
    pub grant: Arc<Grant>,
}

/// A tenant's active version of an executor: its digest and granted
/// capabilities, as stored.
pub type ActiveVersion = (String, Vec<String>);

/// Every invocation request goes through here.
#[derive(Clone)]
pub struct Invocations {
    host: Host,
    /// Connections that hold Idempotency-Key claims (one per keyed request
    /// in flight). A pool of their own: claims held on the invocations' pool
    /// would starve the invocations they wait for.
    claims: sqlx::PgPool,
    settings: Arc<InvocationSettings>,
}

impl Invocations {
    pub fn new(host: Host, settings: InvocationSettings) -> Self {
        let pool = host.pool();
        let claims = crate::db::pool_options()
            .max_connections(pool.options().get_max_connections().max(2))
            .acquire_timeout(crate::db::ACQUIRE_TIMEOUT)
            .connect_lazy_with((*pool.connect_options()).clone());
        Self {
            host,
            claims,
            settings: Arc::new(settings),
        }
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    pub fn settings(&self) -> &InvocationSettings {
        &self.settings
    }

    /// The tenant's active version of `name`, if it has one.
    pub async fn active(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<Option<ActiveVersion>, InvocationError> {
        let found = crate::db::executors::grant(self.host.pool(), tenant, name, None).await?;
        Ok(found.map(|(digest, decision)| (digest, decision.granted)))
    }

    /// The executor to run for an active version (`None`: the tenant has no
    /// executor `name`), loaded from the database if this host has not yet.
    pub async fn target(
        &self,
        tenant: TenantId,
        name: &str,
        active: Option<ActiveVersion>,
    ) -> Result<Target, InvocationError> {
        let (digest, granted) =
            active.ok_or_else(|| InvocationError::UnknownExecutor(name.to_owned()))?;
        let granted = grant::parse_all(&granted)
            .map_err(|e| anyhow::anyhow!("the stored grant of {name}: {e}"))?;
        let executor = self.loaded(tenant, name, &digest).await?;
        Ok(Target {
            executor,
            grant: Arc::new(Grant::new(granted)),
        })
    }

    /// Version `digest` of `name`, compiled.
    async fn loaded(
        &self,
        tenant: TenantId,
        name: &str,
        digest: &str,
    ) -> Result<Arc<LoadedExecutor>, InvocationError> {
        let registry = self.host.registry();
        if let Some(loaded) = registry.get_by_digest(digest) {
            return Ok(loaded);
        }
        let bytes = crate::db::executors::component(self.host.pool(), tenant, name, digest)
            .await?
            .ok_or_else(|| InvocationError::UnknownExecutor(name.to_owned()))?;
        registry.load(&bytes).await.map_err(|e| {
            InvocationError::Internal(anyhow::anyhow!(
                "stored version {digest} of {name} no longer loads: {e}"
            ))
        })
    }

    /// Run `target` for `tenant` on `input` as `mode` asks; with a key, the
    /// first completed answer for (tenant, key) is the answer to every retry.
    pub async fn invoke(
        &self,
        tenant: TenantId,
        target: &Target,
        input: serde_json::Value,
        mode: Mode,
        key: Option<String>,
    ) -> Result<Answer, InvocationError> {
        let errors = target.executor.input_errors(&input);
        if !errors.is_empty() {
            return Err(InvocationError::InvalidInput {
                executor: target.executor.name.to_string(),
                errors,
            });
        }
        match (key, mode) {
            // A dry run changes nothing: nothing to make idempotent.
            (Some(key), Mode::Run | Mode::Propose) => {
                let hash = request_hash(&[
                    target.executor.name.as_str(),
                    mode.tag(),
                    &input.to_string(),
                ]);
                self.keyed(tenant, &key, &hash, None, async |store| {
                    self.run(tenant, target, &input, mode, Some(store)).await
                })
                .await
            }
            _ => Ok(self.run(tenant, target, &input, mode, None).await?.0),
        }
    }

    /// One invocation, answered, and whether it committed; `store` stores a
    /// committed answer with the executor's writes (the keyed path).
    async fn run(
        &self,
        tenant: TenantId,
        target: &Target,
        input: &serde_json::Value,
        mode: Mode,
        store: Option<Arc<store::StoreAnswer>>,
    ) -> Result<store::Ran, InvocationError> {
        // A proposal keeps its clock, to run its confirmation on.
        let proposal = (mode == Mode::Propose).then(|| {
            let now = chrono::Utc::now();
            (uuid::Uuid::now_v7(), now)
        });
        let options = InvokeOptions {
            dry_run: mode != Mode::Run,
            on_commit: store.map(|s| s as Arc<dyn CommitHook>),
            grant: Some(target.grant.clone()),
            now_micros: proposal.map(|(_, now)| now.timestamp_micros()),
            proposal: proposal.map(|(id, _)| id),
            ..InvokeOptions::default()
        };
        let report = self
            .host
            .invoke_executor(tenant, &target.executor, &input.to_string(), options)
            .await?;
        let committed = matches!(report.outcome, InvocationOutcome::Ok { .. }) && !report.dry_run;
        let answer = match proposal {
            Some((id, now)) => self.proposed(tenant, input, &report, id, now).await?,
            None => answer(&report, |_| {})?,
        };
        Ok((answer, committed))
    }
}

/// SHA-256 (hex) over `parts`, each ended by a NUL: what a key's first
/// request was, to refuse the key for another.
fn request_hash(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())
}
