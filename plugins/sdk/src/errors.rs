//! Error bodies: every error an executor returns is a JSON object with an "error" code and a "message".

use serde_json::{json, Map, Value as Json};

use crate::DbError;

/// `{"error": code, "message": message}`.
pub fn error(code: &str, message: impl Into<String>) -> Json {
    json!({ "error": code, "message": message.into() })
}

/// [`error`] plus the members of `extra` (an object), for errors that carry
/// data the caller can act on, such as suggested free times.
pub fn error_with(code: &str, message: impl Into<String>, extra: Json) -> Json {
    let mut body = Map::new();
    body.insert("error".into(), code.into());
    body.insert("message".into(), Json::String(message.into()));
    if let Json::Object(members) = extra {
        body.extend(members);
    }
    Json::Object(body)
}

/// The caller sent something the input schema does not allow.
pub fn invalid_input(message: impl Into<String>) -> Json {
    error("invalid_input", message)
}

impl DbError {
    /// The WIT variant's name (`conflict`, `not-found`, `forbidden`, `invalid`,
    /// `lock-timeout`, `limit-exceeded`), for reports that compare outcomes.
    pub fn kind(&self) -> &'static str {
        match self {
            DbError::Conflict(_) => "conflict",
            DbError::NotFound(_) => "not-found",
            DbError::Forbidden(_) => "forbidden",
            DbError::Invalid(_) => "invalid",
            DbError::LockTimeout(_) => "lock-timeout",
            DbError::LimitExceeded(_) => "limit-exceeded",
        }
    }

    /// The host's human-readable explanation.
    pub fn detail(&self) -> &str {
        match self {
            DbError::Conflict(info) => &info.message,
            DbError::NotFound(m)
            | DbError::Forbidden(m)
            | DbError::Invalid(m)
            | DbError::LockTimeout(m)
            | DbError::LimitExceeded(m) => m,
        }
    }

    /// The violated constraint, if this is a conflict.
    pub fn constraint(&self) -> Option<&str> {
        match self {
            DbError::Conflict(info) => Some(&info.constraint),
            _ => None,
        }
    }

    /// Whether this is a conflict on the named constraint: the one case
    /// executors usually turn into a friendly answer.
    pub fn is_conflict_on(&self, constraint: &str) -> bool {
        self.constraint() == Some(constraint)
    }
}

/// Lets executors propagate an unexpected capability error with `?`: the
/// caller gets `{"error": "<variant in snake_case>", "message": ..}` (plus
/// "constraint" for conflicts) and the transaction is rolled back.
impl From<DbError> for Json {
    fn from(e: DbError) -> Json {
        let code = e.kind().replace('-', "_");
        match &e {
            DbError::Conflict(info) => error_with(
                &code,
                info.message.clone(),
                json!({ "constraint": info.constraint }),
            ),
            _ => error(&code, e.detail()),
        }
    }
}
