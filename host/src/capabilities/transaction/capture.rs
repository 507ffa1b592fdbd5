//! Dry runs: every row an attempt writes, kept so the report can show it.

use crate::bindings::Field;
use crate::db::catalog::Table;
use crate::db::sql;

/// One row an attempt wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WriteRecord {
    pub table: String,
    /// `insert`, `update` or `delete`.
    pub operation: &'static str,
    /// The row as stored (after the write; before it, for deletes).
    pub row: serde_json::Value,
}

/// The rows written so far, when recording (dry runs); nothing otherwise.
#[derive(Debug, Default)]
pub struct WriteCapture {
    enabled: bool,
    writes: Vec<WriteRecord>,
}

impl WriteCapture {
    pub fn enable(&mut self) {
        self.enabled = true;
    }

    /// Whether writes must return their rows (so they can be kept).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn record(&mut self, table: &Table, operation: &'static str, row: &[Field]) {
        if self.enabled {
            self.writes.push(WriteRecord {
                table: table.name.to_owned(),
                operation,
                row: sql::row_to_json(row),
            });
        }
    }

    pub fn take(&mut self) -> Vec<WriteRecord> {
        std::mem::take(&mut self.writes)
    }
}
