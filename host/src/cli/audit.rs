//! The operators' audit commands, straight against the database: verify the
//! chains, checkpoint their heads, search and follow the records.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;

use crate::db::audit;
use crate::TenantId;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Chain pending records, walk every chain, report each first broken
    /// link (exit 1 if any).
    Verify {
        #[arg(long)]
        tenant: Option<TenantId>,
        /// A file written by `bookhost audit checkpoint`.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Print every tenant's chain head as JSON, for safekeeping.
    Checkpoint,
    /// Search records (oldest first).
    Search {
        #[command(flatten)]
        filter: AuditFilterArgs,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Follow new records as they are written (Ctrl-C stops).
    Tail {
        #[command(flatten)]
        filter: AuditFilterArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct AuditFilterArgs {
    #[arg(long)]
    tenant: Option<uuid::Uuid>,
    #[arg(long)]
    executor: Option<String>,
    /// Attempts with a call of this capability: lock, query, insert, update or delete.
    #[arg(long)]
    capability: Option<String>,
    #[arg(long)]
    table: Option<String>,
    /// An attempt outcome (committed, replayed, ...) or a call outcome (ok, denied, error:conflict, ...).
    #[arg(long)]
    outcome: Option<String>,
    #[arg(long)]
    invocation: Option<uuid::Uuid>,
    /// The attempts of a proposal's dry run and of its confirmation.
    #[arg(long)]
    proposal: Option<uuid::Uuid>,
    /// RFC 3339.
    #[arg(long)]
    from: Option<chrono::DateTime<chrono::Utc>>,
    /// RFC 3339.
    #[arg(long)]
    to: Option<chrono::DateTime<chrono::Utc>>,
    #[arg(long, default_value_t = 100)]
    limit: i64,
}

impl AuditFilterArgs {
    fn filter(&self) -> audit::AuditFilter {
        audit::AuditFilter {
            tenant: self.tenant,
            executor: self.executor.clone(),
            capability: self.capability.clone(),
            table: self.table.clone(),
            outcome: self.outcome.clone(),
            invocation_id: self.invocation,
            proposal_id: self.proposal,
            from: self.from,
            to: self.to,
            after_id: None,
            limit: Some(self.limit),
        }
    }
}

fn print_records(records: &[audit::AuditRecord], json: bool) -> anyhow::Result<()> {
    for r in records {
        if json {
            println!("{}", serde_json::to_string(r)?);
        } else {
            let calls: Vec<String> = r
                .calls
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let target = match c["table"].as_str() {
                        Some(table) => {
                            format!("{}:{table}", c["capability"].as_str().unwrap_or("?"))
                        }
                        None => c["capability"].as_str().unwrap_or("?").to_owned(),
                    };
                    format!("{target}={}", c["outcome"].as_str().unwrap_or("?"))
                })
                .collect();
            println!(
                "{:>8} {} {} #{} {:<14} {:<12} wait={}us {}us  {}",
                r.id,
                r.recorded_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                r.invocation_id,
                r.attempt,
                r.executor,
                r.outcome,
                r.lock_wait_us,
                r.duration_us,
                calls.join(" "),
            );
        }
    }
    Ok(())
}

/// Run an audit command; returns the process exit status.
pub async fn run(pool: &sqlx::PgPool, command: AuditCommand) -> anyhow::Result<i32> {
    match command {
        AuditCommand::Verify { tenant, checkpoint } => {
            let checkpoints: Vec<audit::Checkpoint> = match checkpoint {
                Some(path) => serde_json::from_slice(
                    &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
                )
                .with_context(|| format!("{} is not a checkpoint file", path.display()))?,
                None => Vec::new(),
            };
            audit::chain_pending(pool).await?;
            let verification = audit::verify(pool, tenant, &checkpoints).await?;
            println!("{}", serde_json::to_string_pretty(&verification)?);
            Ok(if verification.broken.is_empty() { 0 } else { 1 })
        }
        AuditCommand::Checkpoint => {
            audit::chain_pending(pool).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&audit::checkpoint(pool).await?)?
            );
            Ok(0)
        }
        AuditCommand::Search { filter, json } => {
            print_records(&audit::search(pool, &filter.filter()).await?, json)?;
            Ok(0)
        }
        AuditCommand::Tail { filter, json } => {
            let mut filter = filter.filter();
            filter.after_id = sqlx::query_scalar("SELECT max(id) FROM audit_records")
                .fetch_one(pool)
                .await?;
            loop {
                let records = audit::search(pool, &filter).await?;
                print_records(&records, json)?;
                if let Some(last) = records.last() {
                    filter.after_id = Some(last.id);
                } else {
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                        _ = crate::service::shutdown_signal() => return Ok(0),
                    }
                }
            }
        }
    }
}
