//! The budgets of one attempt: capability calls, rows read, rows written.
//! Going over one abandons the attempt with the limit's name.

use super::settings::TransactionSettings;
use crate::capabilities::Doom;

/// What one attempt has used of its budgets.
#[derive(Debug, Default)]
pub struct Budget {
    calls: u32,
    rows_read: u64,
    rows_written: u64,
}

/// Rows a call touched, by direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowCharge {
    Read(u64),
    Written(u64),
}

impl Budget {
    /// Refuse a call beyond `max_calls` (checked before it runs).
    pub fn admit_call(&self, settings: &TransactionSettings) -> Result<(), Doom> {
        if self.calls >= settings.max_calls {
            return Err(Doom::Limit {
                limit: "calls",
                message: format!("more than {} capability calls", settings.max_calls),
            });
        }
        Ok(())
    }

    /// Count a call that ran (whatever its outcome).
    pub fn count_call(&mut self) {
        self.calls += 1;
    }

    /// Count rows against their budget.
    pub fn charge_rows(
        &mut self,
        settings: &TransactionSettings,
        charge: RowCharge,
    ) -> Result<(), Doom> {
        let (used, max, limit, what) = match charge {
            RowCharge::Read(rows) => {
                self.rows_read += rows;
                (
                    self.rows_read,
                    settings.max_rows_read,
                    "rows_read",
                    "queries returned",
                )
            }
            RowCharge::Written(rows) => {
                self.rows_written += rows;
                (
                    self.rows_written,
                    settings.max_rows_written,
                    "rows_written",
                    "writes touched",
                )
            }
        };
        if used > max {
            return Err(Doom::Limit {
                limit,
                message: format!("{what} more than {max} rows in all"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_budget_refuses_past_its_maximum() {
        let settings = TransactionSettings {
            max_calls: 1,
            max_rows_read: 10,
            max_rows_written: 2,
            ..TransactionSettings::default()
        };
        let mut budget = Budget::default();
        assert!(budget.admit_call(&settings).is_ok());
        budget.count_call();
        assert!(matches!(
            budget.admit_call(&settings),
            Err(Doom::Limit { limit: "calls", .. })
        ));
        assert!(budget.charge_rows(&settings, RowCharge::Read(10)).is_ok());
        assert!(matches!(
            budget.charge_rows(&settings, RowCharge::Read(1)),
            Err(Doom::Limit {
                limit: "rows_read",
                ..
            })
        ));
        assert!(budget.charge_rows(&settings, RowCharge::Written(2)).is_ok());
        assert!(matches!(
            budget.charge_rows(&settings, RowCharge::Written(1)),
            Err(Doom::Limit {
                limit: "rows_written",
                ..
            })
        ));
    }
}
