//! The HTTP API (axum): uploads, invocations, the agent's tool catalog and
//! read endpoints. It knows nothing of wasmtime; it drives the runtime's `Host`.

mod audit;
mod auth;
mod availability;
mod body;
mod console;
mod executors;
mod health;
mod invoke;
mod lifecycle;
mod openapi;
mod problem;
mod reads;
mod routes;
mod slots;
mod state;
mod tenants;

pub use lifecycle::Lifecycle;
pub use openapi::ApiDoc;
pub use problem::{ApiError, Problem};
pub use routes::app;
pub use state::{AppState, ServiceConfig};
