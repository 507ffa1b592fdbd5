//! The frame around every executor: manifest building, input parsing, result encoding and panic reporting.

use std::sync::Once;

use serde_json::Value as Json;

use crate::errors::invalid_input;
use crate::{context, LogLevel, Manifest};

/// Builds the manifest `describe` returns. `schema` is the JSON Schema of
/// the input; taking it as a value keeps it well-formed by construction.
pub fn manifest(name: &str, description: &str, schema: Json, capabilities: &[&str]) -> Manifest {
    Manifest {
        name: name.to_string(),
        description: description.to_string(),
        input_schema: schema.to_string(),
        capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
    }
}

/// Writes a line to the invocation's log, which the host keeps per attempt.
pub fn log(level: LogLevel, message: &str) {
    context::log(level, message);
}

/// Runs an executor body: parses `input` as JSON, calls `body`, and encodes
/// its `Ok`/`Err` JSON as the `execute` result (`Err` rolls the transaction
/// back). Malformed JSON never reaches `body`: it is answered with
/// `{"error": "invalid_input", ...}`.
pub fn run<F>(input: &str, body: F) -> Result<String, String>
where
    F: FnOnce(Json) -> Result<Json, Json>,
{
    install_panic_hook();
    let json = match serde_json::from_str::<Json>(input) {
        Ok(json) => json,
        Err(e) => {
            return Err(invalid_input(format!("the input is not valid JSON: {e}")).to_string())
        }
    };
    match body(json) {
        Ok(v) => Ok(v.to_string()),
        Err(v) => Err(v.to_string()),
    }
}

/// On wasm32-unknown-unknown a panic is a trap and stderr goes nowhere, so
/// the message would be lost; the host's log is the only place it can go
/// (the host still sees the trap and rolls back).
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(non-string panic payload)");
            let line = match info.location() {
                Some(at) => format!(
                    "panicked at {}:{}:{}: {message}",
                    at.file(),
                    at.line(),
                    at.column()
                ),
                None => format!("panicked: {message}"),
            };
            context::log(LogLevel::Error, &line);
        }));
    });
}
