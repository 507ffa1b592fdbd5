//! Classification of PostgreSQL errors into what the invocation loop does next.

/// What a failed statement means for the invocation.
#[derive(Debug)]
pub enum DbFailure {
    /// Serialization failure (40001) or deadlock (40P01): abandon the attempt
    /// and replay the invocation.
    Retry(RetryReason),
    /// A unique, exclusion or foreign-key constraint refused the write.
    Conflict { constraint: String, message: String },
    /// A check or not-null constraint, or a malformed value the database refused.
    Invalid(String),
    /// `lock_timeout` expired while waiting for a lock (55P03).
    LockTimeout,
    /// `statement_timeout` or a cancel (57014).
    Canceled,
    /// The connection is gone or the server will not serve it (see
    /// [`is_connectivity`]): nothing more can run on it.
    ConnectionLost,
    /// Anything else: a bug, a schema that disagrees with the catalog.
    Other(String),
}

/// Why an attempt must be replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryReason {
    SerializationFailure,
    Deadlock,
    /// A `lock` call found its key taken; the replay waits for the key first.
    LockContended,
    /// The connection died before COMMIT was sent (a pooled connection the
    /// server closed while idle, a terminated backend, a restart): nothing
    /// committed, and the replay takes another connection.
    ConnectionLost,
}

impl RetryReason {
    /// The name an audit record stores (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::SerializationFailure => "serialization_failure",
            RetryReason::Deadlock => "deadlock",
            RetryReason::LockContended => "lock_contended",
            RetryReason::ConnectionLost => "connection_lost",
        }
    }
}

impl std::fmt::Display for RetryReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RetryReason::SerializationFailure => "serialization failure",
            RetryReason::Deadlock => "deadlock",
            RetryReason::LockContended => "lock contended",
            RetryReason::ConnectionLost => "connection lost",
        })
    }
}

/// The SQLSTATE of a database error, if it is one.
pub fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(e) => e.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// The constraint a database error names, if any.
pub fn constraint_name(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(e) => e.constraint(),
        _ => None,
    }
}

/// Whether `error` says the connection (or the server behind it) is gone
/// rather than that a statement was refused: I/O and protocol errors, a pool
/// that could not connect in time, and the SQLSTATEs a server sends as it
/// drops a session (class 08, 57P01-57P03 shutdown and termination, 53300
/// too many connections). Such an error on a path that wrote nothing can be
/// retried on a fresh connection.
pub fn is_connectivity(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// Whether some cause in `error`'s chain is a [connectivity](is_connectivity)
/// failure: the database is out of reach, not the request at fault.
pub fn is_unavailable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .is_some_and(is_connectivity)
    })
}

pub fn classify(error: &sqlx::Error) -> DbFailure {
    if is_connectivity(error) {
        return DbFailure::ConnectionLost;
    }
    let sqlx::Error::Database(db) = error else {
        return DbFailure::Other(error.to_string());
    };
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    let message = db.message().to_owned();
    match code.as_str() {
        "40001" => DbFailure::Retry(RetryReason::SerializationFailure),
        "40P01" => DbFailure::Retry(RetryReason::Deadlock),
        // unique, exclusion and foreign-key violations
        "23505" | "23P01" | "23503" => DbFailure::Conflict {
            constraint: db.constraint().unwrap_or("unknown").to_owned(),
            message,
        },
        "55P03" => DbFailure::LockTimeout,
        "57014" => DbFailure::Canceled,
        // integrity (check, not-null) and data exceptions (bad range, overflow)
        c if c.starts_with("23") || c.starts_with("22") => DbFailure::Invalid(message),
        _ => DbFailure::Other(format!("{message} (SQLSTATE {code})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_are_told_from_refused_statements() {
        let reset = sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ));
        assert!(is_connectivity(&reset));
        assert!(matches!(classify(&reset), DbFailure::ConnectionLost));
        assert!(is_connectivity(&sqlx::Error::PoolTimedOut));
        assert!(!is_connectivity(&sqlx::Error::RowNotFound));
        let wrapped = anyhow::Error::from(sqlx::Error::PoolClosed).context("looking up a key");
        assert!(is_unavailable(&wrapped));
        assert!(!is_unavailable(&anyhow::anyhow!("a bug")));
    }
}
