//! delete-service: deletes a service unless it has upcoming bookings — naively, count then delete, with no lock; the host keeps it safe.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::{
    eq, error, error_with, gt, is_in, manifest, run, text, time, timestamp, transaction, uuid,
    DbError, Guest, Input, Manifest,
};

struct DeleteService;

impl Guest for DeleteService {
    fn describe() -> Manifest {
        manifest(
            env!("CARGO_PKG_NAME"),
            "Delete a service by id. A service that still has upcoming pending or confirmed \
             bookings is never deleted: the answer is then the error \
             \"service_has_upcoming_bookings\" with \"upcoming\", the number of such bookings \
             (cancel or finish them first). A service with only past or cancelled bookings is \
             kept for the record: error \"service_has_bookings\". On success the answer is \
             {\"deleted\": service_id}. Other errors: \"service_not_found\", \"invalid_input\".",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "delete-service input",
                "type": "object",
                "properties": {
                    "service_id": {
                        "type": "string",
                        "format": "uuid",
                        "description": "Id of the service to delete."
                    }
                },
                "required": ["service_id"],
                "additionalProperties": false
            }),
            &["query:bookings", "delete:services"],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        run(&input, delete_service)
    }
}

fn delete_service(json: Json) -> Result<Json, Json> {
    let input = Input::new(json, &["service_id"])?;
    let service_id = input.uuid("service_id")?;

    let upcoming = transaction::query(
        "bookings",
        &[
            eq("service_id", uuid(&service_id)),
            is_in("status", [text("pending"), text("confirmed")]),
            gt("ends_at", timestamp(time::now())),
        ],
        &[],
        None,
    )?
    .len();
    if upcoming > 0 {
        return Err(error_with(
            "service_has_upcoming_bookings",
            format!("service {service_id} has {upcoming} upcoming booking(s)"),
            json!({ "upcoming": upcoming }),
        ));
    }

    match transaction::delete("services", &[eq("id", uuid(&service_id))]) {
        Ok(0) => Err(error(
            "service_not_found",
            format!("no service with id {service_id}"),
        )),
        Ok(_) => Ok(json!({ "deleted": service_id })),
        // Deleting a service can only hit `bookings_service_fk`, which
        // refuses to orphan its past or cancelled bookings.
        Err(DbError::Conflict(c)) => Err(error(
            "service_has_bookings",
            format!(
                "service {service_id} has past or cancelled bookings that refer to it ({})",
                c.constraint
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

bookhost_sdk::export!(DeleteService with_types_in bookhost_sdk::bindings);
