//! Dry runs and proposals: every row an attempt writes, kept so the report
//! can show it, and the comparison a proposal's confirmation commits by.

use std::collections::HashMap;

use serde_json::Value as Json;

use crate::bindings::Field;
use crate::db::catalog::{self, Table};
use crate::db::sql;

/// One row an attempt wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WriteRecord {
    pub table: String,
    /// `insert`, `update` or `delete`.
    pub operation: String,
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
                operation: operation.to_owned(),
                row: sql::row_to_json(row),
            });
        }
    }

    pub fn take(&mut self) -> Vec<WriteRecord> {
        std::mem::take(&mut self.writes)
    }
}

/// Whether `actual` writes what `expected` wrote: the same tables,
/// operations and rows, in order, except for the values the database
/// generates (ids, creation times: the catalog's read-only columns), which
/// may differ but consistently: a value generated in `expected` that
/// reappears in a later row (the id of a row just inserted) must reappear
/// there in `actual` as the value generated in its place.
pub fn same_writes(expected: &[WriteRecord], actual: &[WriteRecord]) -> bool {
    if expected.len() != actual.len() {
        return false;
    }
    let mut generated: HashMap<&Json, &Json> = HashMap::new();
    for (e, a) in expected.iter().zip(actual) {
        if e.table != a.table || e.operation != a.operation {
            return false;
        }
        let (Some(table), Some(e_row), Some(a_row)) = (
            catalog::table(&e.table),
            e.row.as_object(),
            a.row.as_object(),
        ) else {
            return false;
        };
        if e_row.len() != a_row.len() {
            return false;
        }
        for (column, e_value) in e_row {
            let Some(a_value) = a_row.get(column) else {
                return false;
            };
            let is_generated = table.column(column).is_some_and(|c| !c.writable);
            if is_generated {
                // First seen here: a pair of generated values. Seen before
                // (an existing row updated again): the same pair.
                if *generated.entry(e_value).or_insert(a_value) != a_value {
                    return false;
                }
            } else if generated.get(e_value).copied().unwrap_or(e_value) != a_value {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(table: &str, operation: &str, row: Json) -> WriteRecord {
        WriteRecord {
            table: table.into(),
            operation: operation.into(),
            row,
        }
    }

    fn booking(id: &str, service: &str, starts: &str, created: &str) -> WriteRecord {
        write(
            "bookings",
            "insert",
            json!({"id": id, "service_id": service, "customer": "Ada", "starts_at": starts,
                   "ends_at": "2030-01-01T11:00:00Z", "status": "confirmed", "created_at": created}),
        )
    }

    #[test]
    fn generated_values_may_differ_consistently() {
        let service = |id: &str, at: &str| {
            write(
                "services",
                "insert",
                json!({"id": id, "name": "Cut", "duration_minutes": 30, "created_at": at}),
            )
        };
        let expected = [
            service("s1", "t1"),
            booking("b1", "s1", "2030-01-01T10:00:00Z", "t1"),
        ];
        // Other ids and times, used the same way: the same writes.
        let actual = [
            service("s2", "t2"),
            booking("b2", "s2", "2030-01-01T10:00:00Z", "t2"),
        ];
        assert!(same_writes(&expected, &actual));
        // The booking names another service than the one just inserted.
        let elsewhere = [
            service("s2", "t2"),
            booking("b2", "s9", "2030-01-01T10:00:00Z", "t2"),
        ];
        assert!(!same_writes(&expected, &elsewhere));
    }

    #[test]
    fn any_other_difference_is_a_change() {
        let expected = [booking("b1", "s", "2030-01-01T10:00:00Z", "t1")];
        let later = [booking("b2", "s", "2030-01-01T12:00:00Z", "t2")];
        assert!(!same_writes(&expected, &later), "another start");
        assert!(!same_writes(&expected, &[]), "nothing written");
        let mut update = booking("b1", "s", "2030-01-01T10:00:00Z", "t1");
        update.operation = "update".into();
        assert!(!same_writes(&expected, &[update]), "another operation");
        let twice = [expected[0].clone(), expected[0].clone()];
        assert!(!same_writes(&expected, &twice), "more rows");
        assert!(same_writes(&expected, &expected));
    }
}
