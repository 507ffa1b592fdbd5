//! {{name}}: books a slot on a service for a customer, the naive way — look for an overlapping booking, then insert, with no lock; bookhost keeps it safe.
//!
//! Every invocation is one serializable transaction, replayed from the start
//! when it collides with another, and the database's exclusion constraint is
//! the last wall, so even 64 concurrent calls for one slot book it once.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::time::MICROS_PER_MINUTE;
use bookhost_sdk::{
    eq, error, field, gt, is_in, lt, manifest, run, text, timestamp, transaction, uuid, Guest,
    Input, Manifest, RowExt,
};

struct Executor;

impl Guest for Executor {
    fn describe() -> Manifest {
        manifest(
            "{{name}}",
            // Written for the agent that will call it: what it does, what it answers.
            "Book a slot on a service for a customer. Give the service's id, the customer's \
             name and the start as an RFC 3339 timestamp in UTC (e.g. \"2030-01-07T11:00:00Z\"); \
             the booking lasts the service's duration. Answers {\"booking\": {...}}, or the \
             error \"slot_taken\" when the slot overlaps another booking, or \"service_not_found\".",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {
                    "service_id": { "type": "string", "format": "uuid" },
                    "customer": { "type": "string", "minLength": 1, "maxLength": 200 },
                    "start": { "type": "string", "format": "date-time" }
                },
                "required": ["service_id", "customer", "start"],
                "additionalProperties": false
            }),
            // Everything it may touch; the host refuses any other call.
            &["query:services", "query:bookings", "insert:bookings"],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        run(&input, book)
    }
}

fn book(json: Json) -> Result<Json, Json> {
    let input = Input::new(json, &["service_id", "customer", "start"])?;
    let service_id = input.uuid("service_id")?;
    let customer = input.str("customer", 1..=200)?;
    let start = input.time("start")?;

    let services = transaction::query("services", &[eq("id", uuid(&service_id))], &[], Some(1))?;
    let Some(service) = services.first() else {
        return Err(error(
            "service_not_found",
            format!("no service with id {service_id}"),
        ));
    };
    let end = start + service.int("duration_minutes")? * MICROS_PER_MINUTE;

    let overlapping = transaction::query(
        "bookings",
        &[
            eq("service_id", uuid(&service_id)),
            is_in("status", [text("pending"), text("confirmed")]),
            lt("starts_at", timestamp(end)),
            gt("ends_at", timestamp(start)),
        ],
        &[],
        Some(1),
    )?;
    let taken = || error("slot_taken", "the slot overlaps another booking");
    if !overlapping.is_empty() {
        return Err(taken());
    }

    let inserted = transaction::insert(
        "bookings",
        &[
            field("service_id", uuid(&service_id)),
            field("customer", text(customer)),
            field("starts_at", timestamp(start)),
            field("ends_at", timestamp(end)),
            field("status", text("confirmed")),
        ],
    );
    match inserted {
        Ok(row) => Ok(json!({
            "booking": row.pick(&["id", "customer", "starts_at", "ends_at", "status"])?
        })),
        // The database's last wall: a concurrent booking won the slot.
        Err(e) if e.is_conflict_on("bookings_no_overlap") => Err(taken()),
        Err(e) => Err(e.into()),
    }
}

bookhost_sdk::export!(Executor with_types_in bookhost_sdk::bindings);
