//! The generated `transaction` trait, implemented thinly over [`InvocationTransaction`].

use super::InvocationTransaction;
use crate::bindings::bookhost::executor::{transaction, types};
use crate::bindings::{CallError, Condition, Field, OrderBy, Row};
use crate::capabilities::CapabilityError;

impl transaction::Host for InvocationTransaction {
    async fn lock(&mut self, key: String) -> Result<(), CapabilityError> {
        InvocationTransaction::lock(self, &key).await
    }

    async fn query(
        &mut self,
        table: String,
        conditions: Vec<Condition>,
        order: Vec<OrderBy>,
        limit: Option<u32>,
    ) -> Result<Vec<Row>, CapabilityError> {
        InvocationTransaction::query(self, &table, &conditions, &order, limit).await
    }

    async fn insert(&mut self, table: String, values: Row) -> Result<Row, CapabilityError> {
        InvocationTransaction::insert(self, &table, &values).await
    }

    async fn update(
        &mut self,
        table: String,
        conditions: Vec<Condition>,
        changes: Vec<Field>,
    ) -> Result<u64, CapabilityError> {
        InvocationTransaction::update(self, &table, &conditions, &changes).await
    }

    async fn delete(
        &mut self,
        table: String,
        conditions: Vec<Condition>,
    ) -> Result<u64, CapabilityError> {
        InvocationTransaction::delete(self, &table, &conditions).await
    }
}

impl types::Host for InvocationTransaction {
    /// A typed error goes to the executor; a doomed attempt becomes a trap
    /// the executor cannot catch, so it cannot swallow a serialization failure.
    fn convert_error(&mut self, error: CapabilityError) -> wasmtime::Result<CallError> {
        match error {
            CapabilityError::Call(call) => Ok(call),
            CapabilityError::Abort(doom) => Err(wasmtime::Error::new(doom)),
        }
    }
}
