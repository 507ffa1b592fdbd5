//! The one `bindgen!` of the host: Rust types and traits generated from `wit/`,
//! with the trappable error its capability calls return.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "executor",
    imports: { default: async | trappable },
    exports: { default: async },
    additional_derives: [PartialEq],
    trappable_error_type: {
        "bookhost:executor/types.error" => crate::bindings::CallFailure,
    },
});

pub use bookhost::executor::types::{
    Condition, ConflictInfo, Error as CallError, Field, LogLevel, Operator, OrderBy, Value,
};
/// A row as the guest sees it: the exposed columns of one table, in catalog order.
pub type Row = Vec<Field>;

/// How a capability call ends when it fails: a typed error the executor
/// receives, or a trap that ends the attempt (the executor cannot catch it).
#[derive(Debug)]
pub enum CallFailure {
    Error(CallError),
    Trap(wasmtime::Error),
}
