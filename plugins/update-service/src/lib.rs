//! update-service: changes a service's name, duration or booking rules; the database refuses a capacity below the seats an upcoming session already fills.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::{
    eq, error, field, integer, invalid_input, manifest, run, text, transaction, uuid, DbError,
    Guest, Input, Manifest, RowExt,
};
use booking_logic::{service_rule_fields, service_rule_schema, SERVICE_RULE_KEYS};

struct UpdateService;

impl Guest for UpdateService {
    fn describe() -> Manifest {
        let mut properties = service_rule_schema();
        properties["service_id"] = json!({"type": "string", "format": "uuid"});
        properties["name"] = json!({"type": "string", "minLength": 1, "maxLength": 200});
        properties["duration_minutes"] = json!({"type": "integer", "minimum": 1, "maximum": 1440});
        manifest(
            env!("CARGO_PKG_NAME"),
            "Change a service: its name, duration or booking rules (buffers, capacity in seats, \
             minimum notice, booking window, slot increment, whether bookings need \
             confirmation). Only the fields given change. On success: {\"service\": {...}}. \
             Errors: \"capacity_below_booked\" (an upcoming session already has more seats \
             booked), \"service_not_found\", \"invalid_input\".",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "update-service input",
                "type": "object",
                "properties": properties,
                "required": ["service_id"],
                "additionalProperties": false
            }),
            &["query:services", "update:services"],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        run(&input, update_service)
    }
}

fn update_service(json: Json) -> Result<Json, Json> {
    let mut keys = vec!["service_id", "name", "duration_minutes"];
    keys.extend(SERVICE_RULE_KEYS);
    let input = Input::new(json, &keys)?;
    let id = input.uuid("service_id")?;
    let mut changes = service_rule_fields(&input)?;
    if input.get("name").is_some() {
        changes.push(field("name", text(input.str("name", 1..=200)?)));
    }
    if input.get("duration_minutes").is_some() {
        changes.push(field(
            "duration_minutes",
            integer(input.int("duration_minutes", 1..=1440)?),
        ));
    }
    if changes.is_empty() {
        return Err(invalid_input("nothing to change: give at least one field"));
    }
    match transaction::update("services", &[eq("id", uuid(&id))], &changes) {
        Ok(0) => {
            return Err(error(
                "service_not_found",
                format!("no service with id {id}"),
            ))
        }
        Ok(_) => {}
        Err(DbError::Invalid(message)) if message.contains("seats already booked") => {
            return Err(error("capacity_below_booked", message))
        }
        Err(e) => return Err(e.into()),
    }
    let rows = transaction::query("services", &[eq("id", uuid(&id))], &[], Some(1))?;
    let row = rows
        .first()
        .ok_or_else(|| error("service_not_found", format!("no service with id {id}")))?;
    let mut columns = vec!["id", "name", "duration_minutes"];
    columns.extend(SERVICE_RULE_KEYS);
    Ok(json!({ "service": row.pick(&columns)? }))
}

bookhost_sdk::export!(UpdateService with_types_in bookhost_sdk::bindings);
