//! The host's availability, as executors use it: check one start, list free slots, and turn a refusal into the caller's typed error.

use serde_json::{json, Value as Json};

use crate::bindings::bookhost::executor::availability::{
    self, Refusal, RefusalKind, Slot, SlotRequest,
};
use crate::errors::error;
use crate::{time, DbError};

/// What to check besides the service and the start.
#[derive(Debug, Default, Clone)]
pub struct Ask {
    pub resource_id: Option<String>,
    pub hold_id: Option<String>,
    pub moving_booking_id: Option<String>,
}

/// Whether `start` of `service` is bookable now, inside this transaction.
pub fn check(service: &str, start: i64, ask: Ask) -> Result<Result<Slot, Refusal>, DbError> {
    availability::check(&SlotRequest {
        service_id: service.to_owned(),
        starts_at: start,
        resource_id: ask.resource_id,
        hold_id: ask.hold_id,
        moving_booking_id: ask.moving_booking_id,
    })
}

/// The bookable slots of `service` starting in `[start, end)`.
pub fn free_slots(service: &str, start: i64, end: i64) -> Result<Vec<Slot>, DbError> {
    availability::free_slots(service, start, end)
}

/// The snake_case code of a refusal kind, as errors name it.
pub fn refusal_code(kind: RefusalKind) -> &'static str {
    match kind {
        RefusalKind::OutsideHours => "outside_hours",
        RefusalKind::OffGrid => "off_grid",
        RefusalKind::TooSoon => "too_soon",
        RefusalKind::BeyondWindow => "beyond_window",
        RefusalKind::Overlaps => "overlaps",
        RefusalKind::InBuffer => "in_buffer",
        RefusalKind::Full => "full",
        RefusalKind::Held => "held",
        RefusalKind::NoResource => "no_resource",
        RefusalKind::ResourceNotAllowed => "resource_not_allowed",
        RefusalKind::HoldNotValid => "hold_not_valid",
    }
}

/// A refusal as the caller's error: `{"error": <code>, "message"}`.
pub fn refusal_error(refusal: &Refusal) -> Json {
    error(refusal_code(refusal.kind), refusal.message.clone())
}

/// A slot as JSON, times in RFC 3339.
pub fn slot_json(slot: &Slot) -> Json {
    json!({
        "starts_at": time::format_rfc3339(slot.starts_at),
        "ends_at": time::format_rfc3339(slot.ends_at),
        "seats_left": slot.seats_left,
        "resources": slot.resources,
    })
}
