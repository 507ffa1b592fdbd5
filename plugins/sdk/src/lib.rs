//! The bookhost executor SDK: the `executor` world's bindings, generated once, plus the helpers every executor shares.
//!
//! An executor crate is a `cdylib` that implements [`Guest`] and exports it:
//!
//! ```ignore
//! use bookhost_sdk::{Guest, Manifest};
//! struct CreateService;
//! impl Guest for CreateService {
//!     fn describe() -> Manifest { /* name, description, JSON Schema */ }
//!     fn execute(input: String) -> Result<String, String> {
//!         bookhost_sdk::run(&input, |json| { /* ... */ })
//!     }
//! }
//! bookhost_sdk::export!(CreateService with_types_in bookhost_sdk::bindings);
//! ```

// The generated `export!` macro and runtime paths name this crate from the
// outside (`bookhost_sdk::...`); this makes the same paths resolve in here.
extern crate self as bookhost_sdk;

pub use chrono;
pub use serde_json;
pub use wit_bindgen;

/// The bindings of the `executor` world, generated from `wit/` at the root.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "executor",
        // Executor crates call `bookhost_sdk::export!` without depending on
        // wit-bindgen themselves, so every path the macro expands to must go
        // through this crate.
        pub_export_macro: true,
        default_bindings_module: "bookhost_sdk::bindings",
        runtime_path: "bookhost_sdk::wit_bindgen::rt",
    });
}

mod errors;
mod input;
mod row;
mod run;
pub mod slots;
pub mod time;
mod values;

pub use bindings::bookhost::executor::types::{
    Condition, ConflictInfo, Error as DbError, Field, LogLevel, Manifest, Operator, OrderBy, Row,
    Value,
};
pub use bindings::bookhost::executor::{availability, context, transaction};
pub use bindings::{export, Guest};

pub use errors::{error, error_with, invalid_input};
pub use input::Input;
pub use row::{value_to_json, RowExt};
pub use run::{log, manifest, run};
pub use values::{
    asc, boolean, desc, eq, field, float, ge, gt, integer, is_in, is_not_null, is_null, json, le,
    lt, ne, null, text, timestamp, uuid,
};
