//! The availability capability: free slots and the verdict on one start, computed by the host from a schedule read inside the invocation's own transaction (so a check and the booking after it are one serializable decision).

mod host;

use chrono::{DateTime, Utc};

pub use self::host::AvailabilityData;
use super::transaction::InvocationTransaction;
use super::CapabilityError;
use crate::bindings::CallError;
use crate::schedule::{Calendar, Refusal, Request, Slot, MAX_RANGE_DAYS, MICROS_PER_MINUTE};

/// Availability on one attempt's transaction, at the invocation's clock.
pub struct Availability<'a> {
    pub transaction: &'a mut InvocationTransaction,
    /// Microseconds since the Unix epoch: the invocation's fixed `now`.
    pub now: i64,
}

fn instant(micros: i64, what: &str) -> Result<DateTime<Utc>, CapabilityError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| {
        CallError::Invalid(format!("{what}: timestamp {micros} is out of range")).into()
    })
}

fn service_id(text: &str) -> Result<uuid::Uuid, CapabilityError> {
    uuid::Uuid::parse_str(text)
        .map_err(|e| CallError::Invalid(format!("service id {text:?} is not a UUID: {e}")).into())
}

fn not_found(service: &str) -> CapabilityError {
    CallError::NotFound(format!("no service with id {service}")).into()
}

impl Availability<'_> {
    /// The bookable slots of `service` starting in `[start, end)`.
    pub async fn free_slots(
        &mut self,
        service: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<Slot>, CapabilityError> {
        let id = service_id(service)?;
        if end <= start || end - start > MAX_RANGE_DAYS * 24 * 60 * MICROS_PER_MINUTE {
            return Err(CallError::Invalid(format!(
                "the range must end after it starts and span at most {MAX_RANGE_DAYS} days"
            ))
            .into());
        }
        let rules = self
            .transaction
            .schedule(
                id,
                instant(start, "range-start")?,
                instant(end, "range-end")?,
                instant(self.now, "now")?,
            )
            .await?
            .ok_or_else(|| not_found(service))?;
        let calendar = Calendar::new(&rules, self.now).map_err(|e| CallError::Invalid(e.0))?;
        Ok(calendar
            .free_slots(start, end)
            .map_err(|e| CallError::Invalid(e.0))?)
    }

    /// Whether `request.starts_at` of `service` is bookable.
    pub async fn check(
        &mut self,
        service: &str,
        request: &Request,
    ) -> Result<Result<Slot, Refusal>, CapabilityError> {
        let id = service_id(service)?;
        let start = request.starts_at;
        let rules = self
            .transaction
            .schedule(
                id,
                instant(start, "starts-at")?,
                instant(start.saturating_add(1), "starts-at")?,
                instant(self.now, "now")?,
            )
            .await?
            .ok_or_else(|| not_found(service))?;
        let calendar = Calendar::new(&rules, self.now).map_err(|e| CallError::Invalid(e.0))?;
        Ok(calendar
            .check(request)
            .map_err(|e| CallError::Invalid(e.0))?)
    }
}
