//! bookhost: a multi-tenant booking engine whose business actions are WebAssembly components.
//!
//! The runtime (`runtime`) runs executors in wasmtime and owns the invocation
//! loop; the capabilities (`capabilities`) are what executors may call, each a
//! plain Rust type over a real database transaction; `db` holds the catalog,
//! SQL building, migrations and a local PostgreSQL for development and tests.

pub mod api;
pub mod authoring;
pub mod bindings;
pub mod capabilities;
pub mod cli;
pub mod db;
pub mod domain;
pub mod invocations;
pub mod mcp;
pub mod runtime;
pub mod schedule;
pub mod service;

pub use domain::{ExecutorName, TenantId};
pub use runtime::{
    DisciplineSettings, Host, HostSettings, InvocationOutcome, InvocationReport, InvokeError,
    LogLine,
};
