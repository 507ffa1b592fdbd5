//! The generated `availability` trait, implemented thinly over [`Availability`].

use wasmtime::component::HasData;

use super::Availability;
use crate::bindings::bookhost::executor::availability::{
    self, Refusal as WitRefusal, RefusalKind as WitKind, Slot as WitSlot, SlotRequest,
};
use crate::bindings::bookhost::executor::types;
use crate::bindings::{CallError, CallFailure};
use crate::schedule::{Refusal, RefusalKind, Request, Slot};

/// Names the view of the Store data the availability imports see.
pub struct AvailabilityData;

impl HasData for AvailabilityData {
    type Data<'a> = Availability<'a>;
}

fn slot(slot: Slot) -> WitSlot {
    WitSlot {
        starts_at: slot.starts_at,
        ends_at: slot.ends_at,
        seats_left: slot.seats_left,
        resources: slot.resources,
    }
}

fn refusal(refusal: Refusal) -> WitRefusal {
    WitRefusal {
        kind: match refusal.kind {
            RefusalKind::OutsideHours => WitKind::OutsideHours,
            RefusalKind::OffGrid => WitKind::OffGrid,
            RefusalKind::TooSoon => WitKind::TooSoon,
            RefusalKind::BeyondWindow => WitKind::BeyondWindow,
            RefusalKind::Overlaps => WitKind::Overlaps,
            RefusalKind::InBuffer => WitKind::InBuffer,
            RefusalKind::Full => WitKind::Full,
            RefusalKind::Held => WitKind::Held,
            RefusalKind::NoResource => WitKind::NoResource,
            RefusalKind::ResourceNotAllowed => WitKind::ResourceNotAllowed,
            RefusalKind::HoldNotValid => WitKind::HoldNotValid,
        },
        message: refusal.message,
    }
}

impl availability::Host for Availability<'_> {
    async fn free_slots(
        &mut self,
        service_id: String,
        range_start: i64,
        range_end: i64,
    ) -> Result<Vec<WitSlot>, CallFailure> {
        let slots = Availability::free_slots(self, &service_id, range_start, range_end).await?;
        Ok(slots.into_iter().map(slot).collect())
    }

    async fn check(
        &mut self,
        request: SlotRequest,
    ) -> Result<Result<WitSlot, WitRefusal>, CallFailure> {
        let asked = Request {
            starts_at: request.starts_at,
            resource_id: request.resource_id,
            hold_id: request.hold_id,
            moving_booking_id: request.moving_booking_id,
        };
        let verdict = Availability::check(self, &request.service_id, &asked).await?;
        Ok(verdict.map(slot).map_err(refusal))
    }
}

impl types::Host for Availability<'_> {
    fn convert_error(&mut self, error: CallFailure) -> wasmtime::Result<CallError> {
        types::Host::convert_error(self.transaction, error)
    }
}
