//! create-resource: adds a staff member, room or piece of equipment, optionally in its own time zone, and the services it serves.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::{
    error, field, invalid_input, manifest, run, text, transaction, uuid, DbError, Guest, Input,
    Manifest, RowExt,
};

struct CreateResource;

impl Guest for CreateResource {
    fn describe() -> Manifest {
        manifest(
            env!("CARGO_PKG_NAME"),
            "Add a resource a booking can need: a staff member, a room or equipment (\"kind\": \
             staff, room or equipment; default staff), with a unique \"name\", optionally its own \
             IANA \"time_zone\" (default: the business's) and the ids of the services it serves \
             (\"service_ids\"). A service with resources takes one free resource per booking; a \
             resource is never in two overlapping bookings, whichever services. On success: \
             {\"resource\": {\"id\", \"name\", \"kind\", \"time_zone\"}, \"services\": n}. \
             Errors: \"unknown_time_zone\", \"resource_exists\", \"service_not_found\", \
             \"invalid_input\".",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "create-resource input",
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 200},
                    "kind": {"enum": ["staff", "room", "equipment"]},
                    "time_zone": {"type": "string", "description": "IANA name, e.g. Europe/Paris."},
                    "service_ids": {"type": "array", "maxItems": 100,
                        "items": {"type": "string", "format": "uuid"}}
                },
                "required": ["name"],
                "additionalProperties": false
            }),
            &["insert:resources", "insert:service_resources"],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        run(&input, create_resource)
    }
}

fn create_resource(json: Json) -> Result<Json, Json> {
    let input = Input::new(json, &["name", "kind", "time_zone", "service_ids"])?;
    let name = input.str("name", 1..=200)?;
    let kind = match input.get("kind") {
        None => "staff",
        Some(_) => match input.str("kind", 1..=20)? {
            k @ ("staff" | "room" | "equipment") => k,
            other => {
                return Err(invalid_input(format!(
                    "\"kind\" must be staff, room or equipment, not {other:?}"
                )))
            }
        },
    };
    let mut values = vec![field("name", text(name)), field("kind", text(kind))];
    let zone = match input.get("time_zone") {
        None | Some(Json::Null) => None,
        Some(_) => Some(input.str("time_zone", 1..=64)?),
    };
    if let Some(zone) = zone {
        values.push(field("time_zone", text(zone)));
    }
    let resource = match transaction::insert("resources", &values) {
        Ok(row) => row,
        Err(DbError::Invalid(m)) if m.contains("time_zone_known") => {
            return Err(error(
                "unknown_time_zone",
                format!(
                    "{:?} is not a time zone; use an IANA name such as \"Europe/Paris\"",
                    zone.unwrap_or_default()
                ),
            ))
        }
        Err(e) if e.is_conflict_on("resources_unique_name") => {
            return Err(error(
                "resource_exists",
                format!("a resource named {name:?} exists already"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let id = resource.uuid("id")?.to_owned();
    let mut services = 0;
    if let Some(ids) = input.get("service_ids") {
        let ids = ids
            .as_array()
            .ok_or_else(|| invalid_input("\"service_ids\" must be an array of ids"))?;
        for (i, service) in ids.iter().enumerate() {
            let service = service
                .as_str()
                .ok_or_else(|| invalid_input(format!("service_ids[{i}] must be a string")))?;
            let linked = transaction::insert(
                "service_resources",
                &[
                    field("service_id", uuid(service)),
                    field("resource_id", uuid(&id)),
                ],
            );
            match linked {
                Ok(_) => services += 1,
                Err(e) if e.is_conflict_on("service_resources_service_fk") => {
                    return Err(error(
                        "service_not_found",
                        format!("no service with id {service}"),
                    ))
                }
                Err(e) if e.is_conflict_on("service_resources_unique") => {}
                Err(DbError::Invalid(m)) => {
                    return Err(invalid_input(format!("service_ids[{i}]: {m}")))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(json!({
        "resource": resource.pick(&["id", "name", "kind", "time_zone"])?,
        "services": services,
    }))
}

bookhost_sdk::export!(CreateResource with_types_in bookhost_sdk::bindings);
