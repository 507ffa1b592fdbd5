//! hold-slot: holds a bookable slot for a customer until an expiry — naively, ask availability, then insert the hold; nothing in the database stops two holds colliding, only the host's discipline.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::slots::{self, Ask};
use bookhost_sdk::time::MICROS_PER_MINUTE;
use bookhost_sdk::{
    eq, error, field, manifest, run, text, time, timestamp, transaction, uuid, Guest, Input,
    Manifest, RowExt,
};

struct HoldSlot;

const HOLD_COLUMNS: [&str; 7] = [
    "id",
    "service_id",
    "resource_id",
    "customer",
    "starts_at",
    "ends_at",
    "expires_at",
];

impl Guest for HoldSlot {
    fn describe() -> Manifest {
        manifest(
            env!("CARGO_PKG_NAME"),
            "Hold a slot of a service for a customer while they decide, for \"minutes\" (1 to 60, \
             default 10). Give the service's id, the customer's name and the start as RFC 3339 in \
             UTC; optionally a \"resource_id\". While the hold lives nobody else can book or hold \
             that seat; pass its id as \"hold_id\" to create-booking to book it. An expired hold \
             blocks nothing. On success: {\"hold\": {\"id\", \"service_id\", \"resource_id\", \
             \"customer\", \"starts_at\", \"ends_at\", \"expires_at\"}}. Errors: \"slot_taken\" \
             (with \"suggested_starts\"), \"slot_held\", \"outside_hours\", \"off_grid\", \
             \"too_soon\", \"beyond_window\", \"in_buffer\", \"no_resource\", \
             \"resource_not_allowed\", \"service_not_found\", \"invalid_input\".",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "hold-slot input",
                "type": "object",
                "properties": {
                    "service_id": {"type": "string", "format": "uuid"},
                    "customer": {"type": "string", "minLength": 1, "maxLength": 200},
                    "start": {"type": "string", "format": "date-time"},
                    "minutes": {"type": "integer", "minimum": 1, "maximum": 60},
                    "resource_id": {"type": "string", "format": "uuid"}
                },
                "required": ["service_id", "customer", "start"],
                "additionalProperties": false
            }),
            &["availability", "query:services", "insert:holds"],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        run(&input, hold_slot)
    }
}

fn hold_slot(json: Json) -> Result<Json, Json> {
    let input = Input::new(
        json,
        &["service_id", "customer", "start", "minutes", "resource_id"],
    )?;
    let service_id = input.uuid("service_id")?;
    let customer = input.str("customer", 1..=200)?;
    let start = input.time("start")?;
    let minutes = input.opt_int("minutes", 1..=60)?.unwrap_or(10);
    let ask = Ask {
        resource_id: input.opt_uuid("resource_id")?,
        ..Ask::default()
    };
    let services = transaction::query("services", &[eq("id", uuid(&service_id))], &[], Some(1))?;
    let Some(service) = services.first() else {
        return Err(error(
            "service_not_found",
            format!("no service with id {service_id}"),
        ));
    };
    let end = start + service.int("duration_minutes")? * MICROS_PER_MINUTE;
    let slot = match slots::check(&service_id, start, ask)? {
        Ok(slot) => slot,
        Err(refusal) => return Err(booking_logic::refused(&service_id, start, &refusal)),
    };
    let mut values = vec![
        field("service_id", uuid(&service_id)),
        field("customer", text(customer)),
        field("starts_at", timestamp(start)),
        field("ends_at", timestamp(end)),
        field(
            "expires_at",
            timestamp(time::now() + minutes * MICROS_PER_MINUTE),
        ),
    ];
    if let Some(resource) = slot.resources.first() {
        values.push(field("resource_id", uuid(resource)));
    }
    let row = transaction::insert("holds", &values)?;
    Ok(json!({ "hold": row.pick(&HOLD_COLUMNS)? }))
}

bookhost_sdk::export!(HoldSlot with_types_in bookhost_sdk::bindings);
