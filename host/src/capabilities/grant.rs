//! Capability grants: what an executor declares it needs, what the operator's
//! policy grants, and the check every capability call passes first.

use std::collections::BTreeSet;
use std::fmt;

use crate::db::catalog;
pub use crate::db::executors::GrantDecision;

/// One thing an executor may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    Lock,
    /// Ask the host for free slots (a read of the tenant's schedule).
    Availability,
    Query(&'static str),
    Insert(&'static str),
    Update(&'static str),
    Delete(&'static str),
}

/// What a capability does to its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Query,
    Insert,
    Update,
    Delete,
}

impl Operation {
    /// `query`, `insert`, `update` or `delete`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Query => "query",
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }

    /// This operation on `table`.
    pub fn on(self, table: &'static str) -> Capability {
        match self {
            Operation::Query => Capability::Query(table),
            Operation::Insert => Capability::Insert(table),
            Operation::Update => Capability::Update(table),
            Operation::Delete => Capability::Delete(table),
        }
    }
}

/// A call the executor's grant does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("missing grant {0}")]
pub struct Denied(pub Capability);

impl Capability {
    /// Parse `lock` or `<operation>:<table>` (the table from the catalog).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "lock" {
            return Ok(Capability::Lock);
        }
        if text == "availability" {
            return Ok(Capability::Availability);
        }
        let (operation, table) = text.split_once(':').ok_or_else(|| {
            format!("capability {text:?} is not `lock`, `availability` or `<operation>:<table>`")
        })?;
        let table = catalog::table(table)
            .map(|t| t.name)
            .ok_or_else(|| format!("capability {text:?} names no table of the catalog"))?;
        Ok(match operation {
            "query" => Capability::Query(table),
            "insert" => Capability::Insert(table),
            "update" => Capability::Update(table),
            "delete" => Capability::Delete(table),
            _ => {
                return Err(format!(
                    "capability {text:?}: the operation must be query, insert, update or delete"
                ))
            }
        })
    }

    pub fn table(&self) -> Option<&'static str> {
        match self {
            Capability::Lock | Capability::Availability => None,
            Capability::Query(t)
            | Capability::Insert(t)
            | Capability::Update(t)
            | Capability::Delete(t) => Some(t),
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capability::Lock => f.write_str("lock"),
            Capability::Availability => f.write_str("availability"),
            Capability::Query(t) => write!(f, "query:{t}"),
            Capability::Insert(t) => write!(f, "insert:{t}"),
            Capability::Update(t) => write!(f, "update:{t}"),
            Capability::Delete(t) => write!(f, "delete:{t}"),
        }
    }
}

/// Parse a manifest's capability list.
pub fn parse_all(texts: &[String]) -> Result<BTreeSet<Capability>, String> {
    texts.iter().map(|t| Capability::parse(t)).collect()
}

/// What one executor version may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    pub allowed: BTreeSet<Capability>,
}

impl Grant {
    pub fn new(allowed: impl IntoIterator<Item = Capability>) -> Self {
        Self {
            allowed: allowed.into_iter().collect(),
        }
    }

    /// `Denied` (naming the missing grant) unless `capability` is granted.
    pub fn check(&self, capability: Capability) -> Result<(), Denied> {
        if self.allowed.contains(&capability) {
            Ok(())
        } else {
            Err(Denied(capability))
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.allowed.iter().map(Capability::to_string).collect()
    }
}

/// How declared capabilities become grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GrantMode {
    /// Grant what the manifest declares (minus the deny list).
    #[default]
    AllowDeclared,
    /// Grant nothing until an operator approves the version.
    RequireApproval,
}

/// The operator's policy (configuration).
#[derive(Debug, Clone, Default)]
pub struct GrantPolicy {
    pub mode: GrantMode,
    /// Never granted: `lock`, `<operation>:<table>`, `*:<table>` or `<operation>:*`.
    pub deny: Vec<String>,
}

impl GrantPolicy {
    fn denies(&self, capability: Capability) -> bool {
        let text = capability.to_string();
        self.deny.iter().any(|rule| {
            rule == &text
                || match (rule.split_once(':'), text.split_once(':')) {
                    (Some(("*", table)), Some((_, t))) => table == t,
                    (Some((operation, "*")), Some((o, _))) => operation == o,
                    _ => false,
                }
        })
    }

    pub fn decide(&self, requested: &BTreeSet<Capability>) -> GrantDecision {
        let (denied, allowed): (Vec<Capability>, Vec<Capability>) =
            requested.iter().copied().partition(|c| self.denies(*c));
        let pending = self.mode == GrantMode::RequireApproval;
        GrantDecision {
            requested: requested.iter().map(Capability::to_string).collect(),
            granted: if pending {
                Vec::new()
            } else {
                allowed.iter().map(Capability::to_string).collect()
            },
            denied: denied.iter().map(Capability::to_string).collect(),
            status: if pending {
                "pending-approval"
            } else {
                "granted"
            }
            .into(),
        }
    }

    /// A stored decision as this policy sees it now: while approval is
    /// pending, `denied` shows what approval would still withhold.
    pub fn explain(&self, mut decision: GrantDecision) -> GrantDecision {
        if decision.status == "pending-approval" {
            if let Ok(requested) = parse_all(&decision.requested) {
                decision.denied = self.decide(&requested).denied;
            }
        }
        decision
    }

    /// The grant once an operator approves: what was requested and not denied.
    pub fn approve(&self, requested: &BTreeSet<Capability>) -> Vec<String> {
        requested
            .iter()
            .filter(|c| !self.denies(**c))
            .map(Capability::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_parse_against_the_catalog() {
        assert_eq!(Capability::parse("lock"), Ok(Capability::Lock));
        assert_eq!(
            Capability::parse("insert:bookings"),
            Ok(Capability::Insert("bookings"))
        );
        for bad in ["insert", "insert:pg_authid", "drop:bookings", "query:", ""] {
            assert!(Capability::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_deny_list_takes_precedence() {
        let requested = parse_all(&[
            "lock".into(),
            "query:services".into(),
            "delete:services".into(),
            "insert:bookings".into(),
        ])
        .unwrap();
        let policy = GrantPolicy {
            mode: GrantMode::AllowDeclared,
            deny: vec!["delete:*".into(), "*:bookings".into()],
        };
        let decision = policy.decide(&requested);
        assert_eq!(decision.granted, vec!["lock", "query:services"]);
        assert_eq!(decision.denied, vec!["insert:bookings", "delete:services"]);
        let pending = GrantPolicy {
            mode: GrantMode::RequireApproval,
            ..policy.clone()
        }
        .decide(&requested);
        assert!(pending.granted.is_empty());
        assert_eq!(pending.status, "pending-approval");
    }
}
