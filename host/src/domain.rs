//! Domain types that validate when built: tenant ids and executor names.

use std::fmt;
use std::str::FromStr;

/// The id of a tenant. Every statement the host sends is scoped by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(pub uuid::Uuid);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for TenantId {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s)
            .map(TenantId)
            .map_err(|e| anyhow::anyhow!("tenant id {s:?} is not a UUID: {e}"))
    }
}

/// An executor's name: 1 to 64 of `a-z`, `0-9` and `-`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExecutorName(String);

impl ExecutorName {
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        let valid = (1..=64).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        anyhow::ensure!(
            valid,
            "executor name {name:?} is invalid: use 1 to 64 of a-z, 0-9 and '-', starting with a letter"
        );
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExecutorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ExecutorName {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executor_names_are_validated() {
        assert!(ExecutorName::parse("create-booking").is_ok());
        for bad in ["", "Create", "1abc", "a b", "a;drop", &"a".repeat(65)] {
            assert!(ExecutorName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
