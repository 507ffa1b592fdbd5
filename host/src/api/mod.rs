//! The HTTP API (axum): uploads, invocations, the agent's tool catalog and
//! read endpoints. It knows nothing of wasmtime; it drives the runtime's `Host`.

mod audit;
mod auth;
mod body;
mod executors;
mod health;
mod invoke;
mod openapi;
mod problem;
mod reads;
mod routes;
mod state;
mod tenants;

pub use openapi::ApiDoc;
pub use problem::{ApiError, Problem};
pub use routes::app;
pub use state::{AppState, ServiceConfig};
