//! What each capability call targets, resolved before the grant is asked: a lock key, a table of the catalog, or the schedule availability reads.

use super::budget::RowCharge;
use super::locks;
use crate::capabilities::grant::{Capability, Operation};
use crate::capabilities::CapabilityError;
use crate::db::catalog::Table;
use crate::db::sql;

/// What a call asks to touch, resolved against the lock rules or the
/// catalog before the grant is asked.
pub(super) trait Target: Copy {
    /// What the call's body works on once resolved.
    type Resolved;
    /// The capability's name in the audit.
    fn name(self) -> &'static str;
    /// The table named, as given (audited even when it does not resolve).
    fn table(&self) -> Option<&str>;
    fn resolve(self) -> Result<(Capability, Self::Resolved), CapabilityError>;
    /// How a successful call's rows count against the budgets.
    fn charge(self, rows: u64) -> Option<RowCharge>;
}

#[derive(Clone, Copy)]
pub(super) struct LockTarget<'a>(pub(super) &'a str);

impl Target for LockTarget<'_> {
    type Resolved = ();

    fn name(self) -> &'static str {
        "lock"
    }

    fn table(&self) -> Option<&str> {
        None
    }

    fn resolve(self) -> Result<(Capability, ()), CapabilityError> {
        locks::check_key(self.0)?;
        Ok((Capability::Lock, ()))
    }

    fn charge(self, _rows: u64) -> Option<RowCharge> {
        None
    }
}

/// The host's read of a service's schedule, for availability.
#[derive(Clone, Copy)]
pub(super) struct ScheduleTarget;

impl Target for ScheduleTarget {
    type Resolved = ();

    fn name(self) -> &'static str {
        "availability"
    }

    fn table(&self) -> Option<&str> {
        Some("services")
    }

    fn resolve(self) -> Result<(Capability, ()), CapabilityError> {
        Ok((Capability::Availability, ()))
    }

    fn charge(self, rows: u64) -> Option<RowCharge> {
        Some(RowCharge::Read(rows))
    }
}

#[derive(Clone, Copy)]
pub(super) struct TableTarget<'a>(pub(super) Operation, pub(super) &'a str);

/// A table of the catalog. (A type without lifetime parameters: a bare
/// `&'static Table` among the call bodies' arguments trips rustc's
/// higher-ranked Send check of the generated host traits.)
#[derive(Clone, Copy)]
pub(super) struct CatalogTable(pub(super) &'static Table);

impl Target for TableTarget<'_> {
    type Resolved = CatalogTable;

    fn name(self) -> &'static str {
        self.0.name()
    }

    fn table(&self) -> Option<&str> {
        Some(self.1)
    }

    fn resolve(self) -> Result<(Capability, CatalogTable), CapabilityError> {
        let table = sql::resolve_table(self.1)?;
        Ok((self.0.on(table.name), CatalogTable(table)))
    }

    fn charge(self, rows: u64) -> Option<RowCharge> {
        Some(match self.0 {
            Operation::Query => RowCharge::Read(rows),
            _ => RowCharge::Written(rows),
        })
    }
}
