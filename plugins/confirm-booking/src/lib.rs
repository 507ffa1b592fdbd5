//! confirm-booking: confirms a pending booking — naively, read its status, then update it; the host's discipline makes two confirmations of one booking confirm it once.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::{
    eq, error, field, manifest, run, text, transaction, uuid, Guest, Input, Manifest, RowExt,
};
use booking_logic::{booking, BOOKING_COLUMNS};

struct ConfirmBooking;

impl Guest for ConfirmBooking {
    fn describe() -> Manifest {
        manifest(
            env!("CARGO_PKG_NAME"),
            "Confirm a pending booking (of a service that requires confirmation) by its id. On \
             success: {\"booking\": {...}} with status \"confirmed\". Errors: \
             \"already_confirmed\" (it was confirmed before: nothing changes), \
             \"booking_cancelled\", \"booking_not_pending\" (completed), \"booking_not_found\", \
             \"invalid_input\".",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "confirm-booking input",
                "type": "object",
                "properties": {"booking_id": {"type": "string", "format": "uuid"}},
                "required": ["booking_id"],
                "additionalProperties": false
            }),
            &["query:bookings", "update:bookings"],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        run(&input, confirm_booking)
    }
}

fn confirm_booking(json: Json) -> Result<Json, Json> {
    let input = Input::new(json, &["booking_id"])?;
    let id = input.uuid("booking_id")?;
    let found = booking(&id)?;
    match found.text("status")? {
        "pending" => {}
        "confirmed" => {
            return Err(error(
                "already_confirmed",
                format!("booking {id} is already confirmed"),
            ))
        }
        "cancelled" => {
            return Err(error(
                "booking_cancelled",
                format!("booking {id} was cancelled; it cannot be confirmed"),
            ))
        }
        other => {
            return Err(error(
                "booking_not_pending",
                format!("booking {id} is {other}, not pending"),
            ))
        }
    }
    transaction::update(
        "bookings",
        &[eq("id", uuid(&id))],
        &[field("status", text("confirmed"))],
    )?;
    let confirmed = booking(&id)?;
    Ok(json!({ "booking": confirmed.pick(&BOOKING_COLUMNS)? }))
}

bookhost_sdk::export!(ConfirmBooking with_types_in bookhost_sdk::bindings);
