//! The context capability: tenant, invocation id, the fixed clock, and the log.

mod host;

use crate::bindings::LogLevel;
use crate::capabilities::Doom;
use crate::TenantId;

/// One line an executor logged.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogLine {
    /// The attempt (1-based) that wrote it.
    pub attempt: u32,
    pub level: &'static str,
    pub message: String,
}

/// What an executor may know about its invocation. Constant across attempts
/// (but `attempt`, which only the host sees), so replays stay invisible.
#[derive(Debug)]
pub struct InvocationContext {
    pub tenant: TenantId,
    pub invocation_id: uuid::Uuid,
    /// Microseconds since the Unix epoch, fixed when the invocation started.
    pub now_micros: i64,
    pub attempt: u32,
    pub logs: Vec<LogLine>,
    log_bytes: usize,
    max_log_bytes: usize,
}

impl InvocationContext {
    pub fn new(
        tenant: TenantId,
        invocation_id: uuid::Uuid,
        now_micros: i64,
        attempt: u32,
        max_log_bytes: usize,
    ) -> Self {
        Self {
            tenant,
            invocation_id,
            now_micros,
            attempt,
            logs: Vec::new(),
            log_bytes: 0,
            max_log_bytes,
        }
    }

    /// Record a log line. Past the byte budget the attempt is abandoned with
    /// the limit `log_bytes` (a trap the executor cannot catch): a chatty
    /// executor can neither exhaust host memory nor fill the logs quietly.
    pub fn log(&mut self, level: LogLevel, message: String) -> Result<(), Doom> {
        let level = match level {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        self.log_bytes = self.log_bytes.saturating_add(message.len());
        if self.log_bytes > self.max_log_bytes {
            return Err(Doom::Limit {
                limit: "log_bytes",
                message: format!(
                    "the executor logged more than {} bytes in one attempt",
                    self.max_log_bytes
                ),
            });
        }
        tracing::debug!(invocation = %self.invocation_id, attempt = self.attempt, level, "{message}");
        self.logs.push(LogLine {
            attempt: self.attempt,
            level,
            message,
        });
        Ok(())
    }
}
