//! fixture-wit-previous: an executor generated from the frozen 0.1.0 contract (not the SDK, which follows the current one): it adds a service and reads it back, so a test can show components built before 0.1.1 still run.

wit_bindgen::generate!({
    path: "../../wit/previous/0.1.0",
    world: "executor",
});

use bookhost::executor::transaction;
use bookhost::executor::types::{Condition, Field, Operator, Value};

struct Previous;

impl Guest for Previous {
    fn describe() -> Manifest {
        Manifest {
            name: "fixture-wit-previous".into(),
            description:
                "Adds a service named by the input's \"name\" (30 minutes) and reads it back. \
                          Built against the 0.1.0 contract."
                    .into(),
            input_schema:
                r#"{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}"#
                    .into(),
            capabilities: vec!["insert:services".into(), "query:services".into()],
        }
    }

    fn execute(input: String) -> Result<String, String> {
        let name = input
            .split("\"name\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or_else(|| r#"{"error":"invalid_input","message":"give a name"}"#.to_owned())?
            .to_owned();
        let inserted = transaction::insert(
            "services",
            &[
                Field {
                    column: "name".into(),
                    value: Value::Text(name.clone()),
                },
                Field {
                    column: "duration_minutes".into(),
                    value: Value::Integer(30),
                },
            ],
        )
        .map_err(|e| format!(r#"{{"error":"insert_failed","message":"{e:?}"}}"#))?;
        let id = inserted
            .iter()
            .find_map(|f| match (&*f.column, &f.value) {
                ("id", Value::Uuid(id)) => Some(id.clone()),
                _ => None,
            })
            .ok_or_else(|| r#"{"error":"no_id"}"#.to_owned())?;
        let found = transaction::query(
            "services",
            &[Condition {
                column: "id".into(),
                op: Operator::Eq(Value::Uuid(id.clone())),
            }],
            &[],
            Some(1),
        )
        .map_err(|e| format!(r#"{{"error":"query_failed","message":"{e:?}"}}"#))?;
        Ok(format!(r#"{{"id":"{id}","found":{}}}"#, found.len()))
    }
}

export!(Previous);
