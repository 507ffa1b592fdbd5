//! The host's table catalog: the only tables and columns executors can name.

/// The SQL type of a column, which decides the value variant it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Uuid,
    Text,
    Integer,
    Float,
    Boolean,
    Timestamp,
    Json,
}

/// One exposed column.
#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    /// Whether executors may set it (generated columns are read-only).
    pub writable: bool,
    pub nullable: bool,
    /// Personal data: the audit log keeps a digest of its values, never the values.
    pub personal: bool,
}

/// An exclusion constraint whose concurrent writers must be queued by the
/// host: inserting rows first and checking afterwards makes overlapping
/// writers wait on each other in deadlock cycles (DESIGN.md, trap 2).
#[derive(Debug)]
pub struct ExclusionKey {
    pub constraint: &'static str,
    /// The constraint's equality column besides the tenant.
    pub column: &'static str,
}

/// One exposed table. Every table also has a hidden `tenant_id` column that
/// the host fills and filters by itself.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    pub exclusion_key: Option<ExclusionKey>,
}

/// The hidden tenant column present in every table.
pub const TENANT_COLUMN: &str = "tenant_id";

impl Table {
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn column_names(&self) -> impl Iterator<Item = &'static str> {
        self.columns.iter().map(|c| c.name)
    }
}

const fn col(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        writable: true,
        nullable: false,
        personal: false,
    }
}
const fn generated(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        writable: false,
        nullable: false,
        personal: false,
    }
}
const fn nullable(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        writable: true,
        nullable: true,
        personal: false,
    }
}

const fn personal(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        writable: true,
        nullable: false,
        personal: true,
    }
}

use ColumnType::*;

/// The tables executors can use, in the order `catalog()` lists them.
pub static TABLES: &[Table] = &[
    Table {
        name: "services",
        columns: &[
            generated("id", Uuid),
            col("name", Text),
            col("duration_minutes", Integer),
            generated("created_at", Timestamp),
        ],
        exclusion_key: None,
    },
    Table {
        name: "bookings",
        columns: &[
            generated("id", Uuid),
            col("service_id", Uuid),
            personal("customer", Text),
            col("starts_at", Timestamp),
            col("ends_at", Timestamp),
            col("status", Text),
            generated("created_at", Timestamp),
        ],
        exclusion_key: Some(ExclusionKey {
            constraint: "bookings_no_overlap",
            column: "service_id",
        }),
    },
    Table {
        name: "booking_requests",
        columns: &[
            generated("id", Uuid),
            personal("customer", Text),
            personal("pet", Text),
            nullable("preferred_start", Timestamp),
            col("status", Text),
            generated("created_at", Timestamp),
        ],
        exclusion_key: None,
    },
    Table {
        name: "storefront_pages",
        columns: &[
            generated("id", Uuid),
            col("slug", Text),
            col("config", Json),
            col("updated_at", Timestamp),
        ],
        exclusion_key: None,
    },
];

/// Look a table up by the name an executor gave.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}
