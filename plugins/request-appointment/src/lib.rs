//! request-appointment: files a pet's appointment request — naively, look for a pending one, then insert, with no lock; the host keeps it safe.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::{
    eq, error, error_with, field, manifest, run, text, timestamp, transaction, DbError, Field,
    Guest, Input, Manifest, RowExt,
};

struct RequestAppointment;

impl Guest for RequestAppointment {
    fn describe() -> Manifest {
        manifest(
            env!("CARGO_PKG_NAME"),
            "Ask for an appointment for a pet; staff schedule it later. Give the customer's \
             name, the pet's name and, optionally, a preferred start time (RFC 3339 in UTC, \
             e.g. \"2026-12-01T10:00:00Z\"). A pet can have only one pending request: if it \
             already has one, the answer is the error \"pending_request_exists\" (with its \
             \"request_id\" when known). On success the answer is {\"request\": {\"id\", \
             \"customer\", \"pet\", \"status\"}} with status \"pending\". Other errors: \
             \"invalid_input\".",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "request-appointment input",
                "type": "object",
                "properties": {
                    "customer": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 200,
                        "description": "Name of the pet's owner."
                    },
                    "pet": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 200,
                        "description": "Name of the pet the appointment is for."
                    },
                    "preferred_start": {
                        "type": ["string", "null"],
                        "format": "date-time",
                        "description": "Optional preferred start, RFC 3339 in UTC."
                    }
                },
                "required": ["customer", "pet"],
                "additionalProperties": false
            }),
            &["query:booking_requests", "insert:booking_requests"],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        run(&input, request_appointment)
    }
}

fn request_appointment(json: Json) -> Result<Json, Json> {
    let input = Input::new(json, &["customer", "pet", "preferred_start"])?;
    let customer = input.str("customer", 1..=200)?;
    let pet = input.str("pet", 1..=200)?;
    let preferred_start = input.opt_time("preferred_start")?;

    let pending = transaction::query(
        "booking_requests",
        &[eq("pet", text(pet)), eq("status", text("pending"))],
        &[],
        Some(1),
    )?;
    if let Some(existing) = pending.first() {
        return Err(error_with(
            "pending_request_exists",
            format!("{pet} already has a pending appointment request"),
            json!({ "request_id": existing.uuid("id")? }),
        ));
    }

    let mut values: Vec<Field> = vec![
        field("customer", text(customer)),
        field("pet", text(pet)),
        field("status", text("pending")),
    ];
    if let Some(t) = preferred_start {
        values.push(field("preferred_start", timestamp(t)));
    }
    match transaction::insert("booking_requests", &values) {
        Ok(row) => Ok(json!({ "request": row.pick(&["id", "customer", "pet", "status"])? })),
        // The only constraint this insert can hit is the partial unique
        // index `booking_requests_one_pending_per_pet`: a concurrent request
        // for the same pet won.
        Err(DbError::Conflict(c)) => Err(error(
            "pending_request_exists",
            format!(
                "{pet} already has a pending appointment request ({})",
                c.constraint
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

bookhost_sdk::export!(RequestAppointment with_types_in bookhost_sdk::bindings);
