//! cancel-booking: cancels a booking, which frees its slot at once (the constraints and availability count only pending and confirmed bookings).

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::{
    eq, error, field, manifest, run, text, transaction, uuid, Guest, Input, Manifest, RowExt,
};
use booking_logic::{booking, BOOKING_COLUMNS};

struct CancelBooking;

impl Guest for CancelBooking {
    fn describe() -> Manifest {
        manifest(
            env!("CARGO_PKG_NAME"),
            "Cancel a pending or confirmed booking by its id; its slot is free again at once. On \
             success: {\"booking\": {...}} with status \"cancelled\". Errors: \
             \"already_cancelled\", \"booking_completed\", \"booking_not_found\", \
             \"invalid_input\".",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "cancel-booking input",
                "type": "object",
                "properties": {"booking_id": {"type": "string", "format": "uuid"}},
                "required": ["booking_id"],
                "additionalProperties": false
            }),
            &["query:bookings", "update:bookings"],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        run(&input, cancel_booking)
    }
}

fn cancel_booking(json: Json) -> Result<Json, Json> {
    let input = Input::new(json, &["booking_id"])?;
    let id = input.uuid("booking_id")?;
    match booking(&id)?.text("status")? {
        "cancelled" => {
            return Err(error(
                "already_cancelled",
                format!("booking {id} is already cancelled"),
            ))
        }
        "completed" => {
            return Err(error(
                "booking_completed",
                format!("booking {id} is completed; it cannot be cancelled"),
            ))
        }
        _ => {}
    }
    transaction::update(
        "bookings",
        &[eq("id", uuid(&id))],
        &[field("status", text("cancelled"))],
    )?;
    Ok(json!({ "booking": booking(&id)?.pick(&BOOKING_COLUMNS)? }))
}

bookhost_sdk::export!(CancelBooking with_types_in bookhost_sdk::bindings);
