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
    pub constraints: &'static [&'static str],
    /// The constraints' equality columns besides the tenant (uuids: one
    /// queue per value, whichever column names it).
    pub columns: &'static [&'static str],
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
            col("buffer_before_minutes", Integer),
            col("buffer_after_minutes", Integer),
            col("capacity", Integer),
            col("min_notice_minutes", Integer),
            nullable("booking_window_days", Integer),
            nullable("slot_increment_minutes", Integer),
            col("requires_confirmation", Boolean),
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
            nullable("resource_id", Uuid),
            nullable("hold_id", Uuid),
            generated("blocked_from", Timestamp),
            generated("blocked_until", Timestamp),
        ],
        exclusion_key: Some(ExclusionKey {
            constraints: &[
                "bookings_no_overlap",
                "bookings_one_session_at_a_time",
                "bookings_resource_no_overlap",
            ],
            columns: &["service_id", "resource_id"],
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
    Table {
        name: "resources",
        columns: &[
            generated("id", Uuid),
            col("name", Text),
            col("kind", Text),
            nullable("time_zone", Text),
            generated("created_at", Timestamp),
        ],
        exclusion_key: None,
    },
    Table {
        name: "service_resources",
        columns: &[
            generated("id", Uuid),
            col("service_id", Uuid),
            col("resource_id", Uuid),
        ],
        exclusion_key: None,
    },
    Table {
        name: "opening_hours",
        columns: &[
            generated("id", Uuid),
            nullable("service_id", Uuid),
            nullable("resource_id", Uuid),
            col("weekday", Integer),
            col("opens_minute", Integer),
            col("closes_minute", Integer),
        ],
        exclusion_key: None,
    },
    Table {
        name: "hours_exceptions",
        columns: &[
            generated("id", Uuid),
            nullable("service_id", Uuid),
            nullable("resource_id", Uuid),
            col("day", Text),
            nullable("opens_minute", Integer),
            nullable("closes_minute", Integer),
        ],
        exclusion_key: None,
    },
    Table {
        name: "holds",
        columns: &[
            generated("id", Uuid),
            col("service_id", Uuid),
            nullable("resource_id", Uuid),
            personal("customer", Text),
            col("starts_at", Timestamp),
            col("ends_at", Timestamp),
            col("expires_at", Timestamp),
            generated("created_at", Timestamp),
        ],
        exclusion_key: None,
    },
];

/// Look a table up by the name an executor gave.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}
