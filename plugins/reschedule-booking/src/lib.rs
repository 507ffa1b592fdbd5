//! reschedule-booking: moves a booking to another start as one update — the old slot is freed only if the new one is taken; naively, check the new slot, then update.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::slots::{self, Ask};
use bookhost_sdk::time::{self, MICROS_PER_MINUTE};
use bookhost_sdk::{
    eq, error, error_with, field, manifest, null, run, timestamp, transaction, uuid, Guest, Input,
    Manifest, RowExt,
};
use booking_logic::{booking, refused, BOOKING_COLUMNS, SLOT_CONSTRAINTS};

struct RescheduleBooking;

impl Guest for RescheduleBooking {
    fn describe() -> Manifest {
        manifest(
            env!("CARGO_PKG_NAME"),
            "Move a pending or confirmed booking to a new start (RFC 3339, UTC), keeping its \
             service, customer and status; optionally to another \"resource_id\". The move is one \
             step: if the new slot cannot be taken, the booking stays where it was. On success: \
             {\"booking\": {...}, \"previous\": {\"starts_at\", \"ends_at\", \"resource_id\"}}. \
             Errors: \"booking_cancelled\", \"booking_completed\", \"slot_taken\" (with \
             \"suggested_starts\"), \"slot_held\", \"outside_hours\", \"off_grid\", \"too_soon\", \
             \"beyond_window\", \"in_buffer\", \"no_resource\", \"resource_not_allowed\", \
             \"booking_not_found\", \"invalid_input\".",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "reschedule-booking input",
                "type": "object",
                "properties": {
                    "booking_id": {"type": "string", "format": "uuid"},
                    "start": {"type": "string", "format": "date-time"},
                    "resource_id": {"type": "string", "format": "uuid"}
                },
                "required": ["booking_id", "start"],
                "additionalProperties": false
            }),
            &[
                "availability",
                "query:services",
                "query:bookings",
                "update:bookings",
            ],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        run(&input, reschedule_booking)
    }
}

fn reschedule_booking(json: Json) -> Result<Json, Json> {
    let input = Input::new(json, &["booking_id", "start", "resource_id"])?;
    let id = input.uuid("booking_id")?;
    let start = input.time("start")?;
    let current = booking(&id)?;
    match current.text("status")? {
        "cancelled" => {
            return Err(error(
                "booking_cancelled",
                format!("booking {id} was cancelled; book a new slot instead"),
            ))
        }
        "completed" => {
            return Err(error(
                "booking_completed",
                format!("booking {id} is completed; it cannot be moved"),
            ))
        }
        _ => {}
    }
    let service_id = current.uuid("service_id")?.to_owned();
    let services = transaction::query("services", &[eq("id", uuid(&service_id))], &[], Some(1))?;
    let service = services
        .first()
        .ok_or_else(|| error("service_not_found", format!("no service {service_id}")))?;
    let end = start + service.int("duration_minutes")? * MICROS_PER_MINUTE;
    let ask = Ask {
        resource_id: input.opt_uuid("resource_id")?,
        hold_id: None,
        moving_booking_id: Some(id.clone()),
    };
    let slot = match slots::check(&service_id, start, ask)? {
        Ok(slot) => slot,
        Err(refusal) => return Err(refused(&service_id, start, &refusal)),
    };
    let resource = match slot.resources.first() {
        Some(r) => uuid(r),
        None => null(),
    };
    let moved = transaction::update(
        "bookings",
        &[eq("id", uuid(&id))],
        &[
            field("starts_at", timestamp(start)),
            field("ends_at", timestamp(end)),
            field("resource_id", resource),
        ],
    );
    match moved {
        Ok(_) => {}
        Err(e) if SLOT_CONSTRAINTS.iter().any(|c| e.is_conflict_on(c)) => {
            return Err(error_with(
                "slot_taken",
                format!(
                    "the slot starting {} is taken: {}",
                    time::format_rfc3339(start),
                    e.detail()
                ),
                json!({ "suggested_starts": [] }),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(json!({
        "booking": booking(&id)?.pick(&BOOKING_COLUMNS)?,
        "previous": current.pick(&["starts_at", "ends_at", "resource_id"])?,
    }))
}

bookhost_sdk::export!(RescheduleBooking with_types_in bookhost_sdk::bindings);
