//! Who is looking at the console (the operator, or one tenant), the
//! sessions this host keeps for them, and the checks every action makes:
//! the session's form token, and whether the operator is asking.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::error::ConsoleError;
use crate::TenantId;

/// A session ends this long after sign-in, used or not.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Most sessions kept at once; signing in past it forgets the oldest
/// tenant session (the operator's are never pushed out by tenants).
const MAX_SESSIONS: usize = 10_000;
/// Most sessions of one viewer; signing in past it forgets its own oldest.
const MAX_SESSIONS_PER_VIEWER: usize = 64;

/// Who is looking: the operator sees every tenant, a tenant only itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    Operator,
    Tenant(TenantId),
}

/// A tenant id from a form or query field (empty: none asked for).
pub fn tenant_field(text: &str) -> Result<Option<TenantId>, ConsoleError> {
    match text.trim() {
        "" => Ok(None),
        id => id
            .parse()
            .map(|id| Some(TenantId(id)))
            .map_err(|_| ConsoleError::BadRequest(format!("{id:?} is not a tenant id"))),
    }
}

impl Viewer {
    /// The one tenant this viewer may see (None: all of them).
    pub fn scope(self) -> Option<TenantId> {
        match self {
            Viewer::Operator => None,
            Viewer::Tenant(tenant) => Some(tenant),
        }
    }

    /// Whether `tenant`'s data may be shown to this viewer.
    pub fn sees(self, tenant: TenantId) -> bool {
        self.scope().is_none_or(|own| own == tenant)
    }

    pub fn is_operator(self) -> bool {
        self == Viewer::Operator
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub viewer: Viewer,
    pub csrf: String,
    /// For a tenant: the SHA-256 of the key it signed in with, checked
    /// against the database on every request, so revoking the key ends
    /// the session.
    pub key_digest: Option<Vec<u8>>,
    started: Instant,
}

/// The signed-in sessions of this host, by the SHA-256 of their token.
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<[u8; 32], Session>>>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Sessions {
    /// A new session for `viewer` (signed in with a key of SHA-256
    /// `key_digest`): its token, for the cookie.
    pub fn open(&self, viewer: Viewer, key_digest: Option<Vec<u8>>) -> String {
        let token = random_token();
        let mut sessions = self.inner.lock().expect("sessions lock");
        sessions.retain(|_, s| s.started.elapsed() < LIFETIME);
        let oldest = |sessions: &HashMap<[u8; 32], Session>, of: &dyn Fn(&Session) -> bool| {
            sessions
                .iter()
                .filter(|(_, s)| of(s))
                .min_by_key(|(_, s)| s.started)
                .map(|(k, _)| *k)
        };
        if sessions.values().filter(|s| s.viewer == viewer).count() >= MAX_SESSIONS_PER_VIEWER {
            if let Some(key) = oldest(&sessions, &|s| s.viewer == viewer) {
                sessions.remove(&key);
            }
        }
        if sessions.len() >= MAX_SESSIONS {
            let evict = oldest(&sessions, &|s| !s.viewer.is_operator())
                .or_else(|| oldest(&sessions, &|_| true));
            if let Some(key) = evict {
                sessions.remove(&key);
            }
        }
        sessions.insert(
            digest(&token),
            Session {
                viewer,
                csrf: random_token(),
                key_digest,
                started: Instant::now(),
            },
        );
        token
    }

    pub fn find(&self, token: &str) -> Option<Session> {
        let sessions = self.inner.lock().expect("sessions lock");
        sessions
            .get(&digest(token))
            .filter(|s| s.started.elapsed() < LIFETIME)
            .cloned()
    }

    pub fn close(&self, token: &str) {
        self.inner
            .lock()
            .expect("sessions lock")
            .remove(&digest(token));
    }
}

/// A signed-in request: who is looking, and the token its forms carry.
#[derive(Debug, Clone)]
pub struct Console {
    pub viewer: Viewer,
    pub csrf: String,
}

impl Console {
    /// Refuse a state-changing form whose token is not this session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), ConsoleError> {
        // Compare digests so the time taken says nothing of the token.
        if Sha256::digest(token.as_bytes()) == Sha256::digest(self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(
                "this form is stale or was not sent from the console: reload the page and try again"
                    .into(),
            ))
        }
    }

    /// Refuse what only the operator may do.
    pub fn operator_only(&self) -> Result<(), ConsoleError> {
        if self.viewer.is_operator() {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(
                "only the operator may do this".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_token_only_until_closed() {
        let sessions = Sessions::default();
        let token = sessions.open(Viewer::Operator, None);
        assert_eq!(
            sessions.find(&token).map(|s| s.viewer),
            Some(Viewer::Operator)
        );
        assert!(sessions.find("not-a-token").is_none());
        sessions.close(&token);
        assert!(sessions.find(&token).is_none());
    }

    #[test]
    fn one_viewer_signing_in_again_and_again_pushes_out_only_its_own_sessions() {
        let sessions = Sessions::default();
        let operator = sessions.open(Viewer::Operator, None);
        let tenant = Viewer::Tenant(TenantId(uuid::Uuid::new_v4()));
        let first = sessions.open(tenant, None);
        for _ in 0..MAX_SESSIONS_PER_VIEWER {
            sessions.open(tenant, None);
        }
        assert!(sessions.find(&first).is_none(), "its own oldest went");
        assert!(sessions.find(&operator).is_some(), "the operator's stayed");
    }
}
