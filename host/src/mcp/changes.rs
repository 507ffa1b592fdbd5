//! Tool list changes, from every host: uploads, rollbacks and approvals
//! announce the tenant on a PostgreSQL channel (in their own transaction);
//! one listener per host, started by the first MCP client that asks to be
//! told, passes them on to the `subscriptions/listen` streams.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::db::executors::TOOLS_CHANGED;
use crate::TenantId;

/// The tenants whose tools changed, as they change.
#[derive(Clone)]
pub struct ToolChanges {
    pool: sqlx::PgPool,
    sender: broadcast::Sender<TenantId>,
    listening: Arc<AtomicBool>,
}

impl ToolChanges {
    pub fn new(pool: sqlx::PgPool) -> Self {
        Self {
            pool,
            sender: broadcast::channel(256).0,
            listening: Arc::default(),
        }
    }

    /// The changes from now on (starting this host's listener if needed).
    pub fn subscribe(&self) -> broadcast::Receiver<TenantId> {
        let receiver = self.sender.subscribe();
        if !self.listening.swap(true, Ordering::AcqRel) {
            tokio::spawn(listen(self.pool.clone(), self.sender.clone()));
        }
        receiver
    }
}

/// Forward the channel's notifications for as long as the host runs (one
/// connection). A lost connection is made again; changes made meanwhile are
/// not seen, so a client should still re-list tools when it reconnects.
async fn listen(pool: sqlx::PgPool, sender: broadcast::Sender<TenantId>) {
    loop {
        let listening = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
            listener.listen(TOOLS_CHANGED).await?;
            loop {
                let notification = listener.recv().await?;
                if let Ok(tenant) = notification.payload().parse() {
                    // Nobody listening on this host right now is fine.
                    let _ = sender.send(TenantId(tenant));
                }
            }
        };
        let ended: Result<std::convert::Infallible, sqlx::Error> = listening.await;
        let Err(error) = ended;
        tracing::warn!("listening for tool changes: {error}; again in 1 s");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
