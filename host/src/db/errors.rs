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
    /// Anything else: connection lost, server shutting down, a bug.
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
    /// The pooled connection was found dead when the attempt began (before
    /// anything ran on it): the replay takes another.
    ConnectionLost,
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

pub fn classify(error: &sqlx::Error) -> DbFailure {
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
