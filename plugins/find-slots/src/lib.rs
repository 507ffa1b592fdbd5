//! find-slots: lists the bookable slots of a service in a range — a read of the host's availability, nothing written, so agents see it as a read-only tool.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::slots::{self, slot_json};
use bookhost_sdk::{invalid_input, manifest, run, Guest, Input, Manifest};

struct FindSlots;

impl Guest for FindSlots {
    fn describe() -> Manifest {
        manifest(
            env!("CARGO_PKG_NAME"),
            "List the bookable start times of a service between \"from\" and \"to\" (RFC 3339, \
             UTC; at most 62 days apart), earliest first. Each slot honours the service's opening \
             hours in the business's time zone (with its exceptions and clock changes), buffers, \
             minimum notice, booking window, seats, resources and live holds. The answer is \
             {\"slots\": [{\"starts_at\", \"ends_at\", \"seats_left\", \"resources\"}]}; book one \
             with create-booking or hold it with hold-slot. Errors: \"service_not_found\", \
             \"invalid_input\".",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "find-slots input",
                "type": "object",
                "properties": {
                    "service_id": {"type": "string", "format": "uuid"},
                    "from": {"type": "string", "format": "date-time"},
                    "to": {"type": "string", "format": "date-time"}
                },
                "required": ["service_id", "from", "to"],
                "additionalProperties": false
            }),
            &["availability"],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        run(&input, find_slots)
    }
}

fn find_slots(json: Json) -> Result<Json, Json> {
    let input = Input::new(json, &["service_id", "from", "to"])?;
    let service_id = input.uuid("service_id")?;
    let (from, to) = (input.time("from")?, input.time("to")?);
    if to <= from {
        return Err(invalid_input("\"to\" must be after \"from\""));
    }
    match slots::free_slots(&service_id, from, to) {
        Ok(free) => Ok(json!({ "slots": free.iter().map(slot_json).collect::<Vec<_>>() })),
        Err(bookhost_sdk::DbError::NotFound(m)) => Err(bookhost_sdk::error("service_not_found", m)),
        Err(bookhost_sdk::DbError::Invalid(m)) => Err(invalid_input(m)),
        Err(e) => Err(e.into()),
    }
}

bookhost_sdk::export!(FindSlots with_types_in bookhost_sdk::bindings);
