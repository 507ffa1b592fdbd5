//! The generated `context` trait, implemented thinly over [`InvocationContext`].

use super::InvocationContext;
use crate::bindings::bookhost::executor::context::Host;
use crate::bindings::LogLevel;

impl Host for InvocationContext {
    async fn tenant_id(&mut self) -> wasmtime::Result<String> {
        Ok(self.tenant.to_string())
    }

    async fn invocation_id(&mut self) -> wasmtime::Result<String> {
        Ok(self.invocation_id.to_string())
    }

    async fn now(&mut self) -> wasmtime::Result<i64> {
        Ok(self.now_micros)
    }

    async fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        Ok(InvocationContext::log(self, level, message)?)
    }
}
