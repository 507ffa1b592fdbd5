//! create-service: adds a bookable service (a name and a slot duration) to the tenant's catalog.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::{
    field, integer, manifest, run, text, transaction, Guest, Input, Manifest, RowExt,
};
use booking_logic::{service_rule_fields, service_rule_schema, SERVICE_RULE_KEYS};

struct CreateService;

impl Guest for CreateService {
    fn describe() -> Manifest {
        let mut properties = service_rule_schema();
        properties["name"] = json!({
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": "Name of the service as customers see it."
        });
        properties["duration_minutes"] = json!({
            "type": "integer",
            "minimum": 1,
            "maximum": 1440,
            "description": "Length of one booking of this service, in minutes."
        });
        manifest(
            env!("CARGO_PKG_NAME"),
            "Create a bookable service, such as \"Haircut\" or \"Vet check-up\", with the length \
             of one booking in minutes (1 to 1440), and optionally its booking rules: buffers \
             before and after, capacity (seats per session, for a class), minimum notice, \
             booking window, slot increment, whether bookings need confirmation. The answer is {\"service\": {\"id\", \"name\", \
             \"duration_minutes\", \"created_at\"}}; pass its id as service_id to create-booking. \
             Errors: \"invalid_input\".",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "create-service input",
                "type": "object",
                "properties": properties,
                "required": ["name", "duration_minutes"],
                "additionalProperties": false
            }),
            &["insert:services"],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        run(&input, create_service)
    }
}

fn create_service(json: Json) -> Result<Json, Json> {
    let mut keys = vec!["name", "duration_minutes"];
    keys.extend(SERVICE_RULE_KEYS);
    let input = Input::new(json, &keys)?;
    let name = input.str("name", 1..=200)?;
    let duration = input.int("duration_minutes", 1..=1440)?;
    let mut values = vec![
        field("name", text(name)),
        field("duration_minutes", integer(duration)),
    ];
    values.extend(service_rule_fields(&input)?);
    let row = transaction::insert("services", &values)?;
    Ok(json!({ "service": row.pick(&["id", "name", "duration_minutes", "created_at"])? }))
}

bookhost_sdk::export!(CreateService with_types_in bookhost_sdk::bindings);
