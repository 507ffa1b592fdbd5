//! The generated `transaction` trait, implemented thinly over [`InvocationTransaction`].

use super::InvocationTransaction;
use crate::bindings::bookhost::executor::{transaction, types};
use crate::bindings::{CallError, CallFailure, Condition, Field, OrderBy, Row};

impl transaction::Host for InvocationTransaction {
    async fn lock(&mut self, key: String) -> Result<(), CallFailure> {
        Ok(InvocationTransaction::lock(self, &key).await?)
    }

    async fn query(
        &mut self,
        table: String,
        conditions: Vec<Condition>,
        order: Vec<OrderBy>,
        limit: Option<u32>,
    ) -> Result<Vec<Row>, CallFailure> {
        Ok(InvocationTransaction::query(self, &table, &conditions, &order, limit).await?)
    }

    async fn insert(&mut self, table: String, values: Row) -> Result<Row, CallFailure> {
        Ok(InvocationTransaction::insert(self, &table, &values).await?)
    }

    async fn update(
        &mut self,
        table: String,
        conditions: Vec<Condition>,
        changes: Vec<Field>,
    ) -> Result<u64, CallFailure> {
        Ok(InvocationTransaction::update(self, &table, &conditions, &changes).await?)
    }

    async fn delete(
        &mut self,
        table: String,
        conditions: Vec<Condition>,
    ) -> Result<u64, CallFailure> {
        Ok(InvocationTransaction::delete(self, &table, &conditions).await?)
    }
}

impl types::Host for InvocationTransaction {
    /// A typed error goes to the executor; a doomed attempt is a trap the
    /// executor cannot catch, so it cannot swallow a serialization failure.
    fn convert_error(&mut self, error: CallFailure) -> wasmtime::Result<CallError> {
        match error {
            CallFailure::Error(call) => Ok(call),
            CallFailure::Trap(trap) => Err(trap),
        }
    }
}
