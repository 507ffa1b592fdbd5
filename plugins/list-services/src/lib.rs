//! list-services: the tenant's bookable services, by name; it only reads (its grant holds no write).

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::{asc, manifest, run, transaction, Guest, Input, Manifest, RowExt};

struct ListServices;

impl Guest for ListServices {
    fn describe() -> Manifest {
        manifest(
            env!("CARGO_PKG_NAME"),
            "List the services that can be booked, by name: {\"services\": [{\"id\", \"name\", \
             \"duration_minutes\"}]}. Pass a service's id as service_id to create-booking. It \
             changes nothing.",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "list-services input",
                "type": "object",
                "properties": {},
                "additionalProperties": false
            }),
            &["query:services"],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        run(&input, list_services)
    }
}

fn list_services(json: Json) -> Result<Json, Json> {
    Input::new(json, &[])?;
    let rows = transaction::query("services", &[], &[asc("name")], Some(1000))?;
    let services = rows
        .iter()
        .map(|row| row.pick(&["id", "name", "duration_minutes"]))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "services": services }))
}

bookhost_sdk::export!(ListServices with_types_in bookhost_sdk::bindings);
