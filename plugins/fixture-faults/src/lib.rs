//! fixture-faults: a test fixture that misbehaves on request (traps, errors and loops after writing, counts attempts, probes tenant isolation) so the tests can check the host's guarantees.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::{
    eq, error, field, integer, invalid_input, json as json_value, log, manifest, run, text, time,
    timestamp, transaction, uuid, DbError, Guest, Input, LogLevel, Manifest, Row, RowExt,
};

struct FixtureFaults;

impl Guest for FixtureFaults {
    fn describe() -> Manifest {
        manifest(
            env!("CARGO_PKG_NAME"),
            "TEST FIXTURE, not a business action: do not call it for real work. It misbehaves \
             on request so that tests can check the host's guarantees. Modes: \
             \"trap-after-write\", \"error-after-write\" and \"loop-after-write\" insert a \
             service named \"name\" and then trap, return the error \"changed_my_mind\", or \
             loop forever (nothing they wrote may survive); \"count-attempts\" increments a \
             counter kept on the storefront page \"counter\" and answers {\"count\": n}; \
             \"probe-tenant\" tries to read, change and reference the service \
             \"foreign_service_id\" of another tenant and to name the tenant column, an unknown \
             table and a malformed column, and reports each outcome.",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "fixture-faults input",
                "type": "object",
                "properties": {
                    "mode": {
                        "enum": [
                            "trap-after-write",
                            "error-after-write",
                            "loop-after-write",
                            "count-attempts",
                            "probe-tenant"
                        ],
                        "description": "What to do."
                    },
                    "name": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 200,
                        "description": "Name of the service the *-after-write modes insert."
                    },
                    "foreign_service_id": {
                        "type": "string",
                        "format": "uuid",
                        "description": "For probe-tenant: a service id of another tenant."
                    }
                },
                "required": ["mode"],
                "allOf": [
                    {
                        "if": {
                            "properties": {
                                "mode": {
                                    "enum": ["trap-after-write", "error-after-write", "loop-after-write"]
                                }
                            }
                        },
                        "then": { "required": ["name"] }
                    },
                    {
                        "if": { "properties": { "mode": { "const": "probe-tenant" } } },
                        "then": { "required": ["foreign_service_id"] }
                    }
                ],
                "additionalProperties": false
            }),
            &[
                "insert:services",
                "query:services",
                "update:services",
                "insert:bookings",
                "delete:bookings",
                "query:storefront_pages",
                "insert:storefront_pages",
                "update:storefront_pages",
            ],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        run(&input, fixture)
    }
}

fn fixture(json: Json) -> Result<Json, Json> {
    let input = Input::new(json, &["mode", "name", "foreign_service_id"])?;
    let mode = input.str("mode", 1..=64)?;
    match mode {
        "trap-after-write" => {
            insert_service(input.str("name", 1..=200)?)?;
            panic!("fixture trap after write");
        }
        "error-after-write" => {
            insert_service(input.str("name", 1..=200)?)?;
            Err(error(
                "changed_my_mind",
                "the fixture wrote a service and then failed on purpose",
            ))
        }
        "loop-after-write" => {
            insert_service(input.str("name", 1..=200)?)?;
            spin_forever()
        }
        "count-attempts" => count_attempts(),
        "probe-tenant" => probe_tenant(&input.uuid("foreign_service_id")?),
        other => Err(invalid_input(format!("unknown mode {other:?}"))),
    }
}

fn insert_service(name: &str) -> Result<Row, DbError> {
    transaction::insert(
        "services",
        &[
            field("name", text(name)),
            field("duration_minutes", integer(30)),
        ],
    )
}

/// Only the host's epoch deadline can end this; `black_box` keeps the
/// optimizer from proving the loop pointless.
fn spin_forever() -> ! {
    let mut i: u64 = 0;
    loop {
        i = core::hint::black_box(i.wrapping_add(1));
    }
}

/// Every attempt (including replays) logs, while only the committed attempt's
/// increment survives: tests compare the two to count replays.
fn count_attempts() -> Result<Json, Json> {
    log(LogLevel::Info, "attempt started");
    let pages = transaction::query(
        "storefront_pages",
        &[eq("slug", text("counter"))],
        &[],
        Some(1),
    )?;
    let (page_id, count) = match pages.first() {
        Some(page) => {
            let count = page
                .json("config")?
                .get("count")
                .and_then(Json::as_i64)
                .unwrap_or(0);
            (page.uuid("id")?.to_string(), count)
        }
        None => {
            let inserted = transaction::insert(
                "storefront_pages",
                &[
                    field("slug", text("counter")),
                    field("config", json_value(&json!({ "count": 0 }))),
                ],
            );
            match inserted {
                Ok(row) => (row.uuid("id")?.to_string(), 0),
                Err(DbError::Conflict(c)) => {
                    return Err(error(
                        "counter_conflict",
                        format!(
                            "the counter page was created concurrently ({})",
                            c.constraint
                        ),
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let next = count + 1;
    transaction::update(
        "storefront_pages",
        &[eq("id", uuid(page_id))],
        &[field("config", json_value(&json!({ "count": next })))],
    )?;
    Ok(json!({ "count": next }))
}

/// Reports what the host lets this tenant do to another tenant's data. Every
/// outcome is reported rather than returned early, so one call shows them all.
fn probe_tenant(foreign: &str) -> Result<Json, Json> {
    let by_id = || vec![eq("id", uuid(foreign))];

    let query_by_id = count_or_kind(
        transaction::query("services", &by_id(), &[], None).map(|rows| rows.len() as u64),
    );
    let update_by_id = count_or_kind(transaction::update(
        "services",
        &by_id(),
        &[field("name", text("hacked"))],
    ));
    let delete_by_id = count_or_kind(transaction::delete(
        "bookings",
        &[eq("service_id", uuid(foreign))],
    ));
    let query_tenant_column = outcome(transaction::query(
        "services",
        &[eq("tenant_id", uuid(foreign))],
        &[],
        None,
    ));
    let insert_tenant_column = outcome(transaction::insert(
        "services",
        &[
            field("tenant_id", uuid(foreign)),
            field("name", text("probe")),
            field("duration_minutes", integer(30)),
        ],
    ));
    let now = time::now();
    let insert_foreign_reference = outcome(transaction::insert(
        "bookings",
        &[
            field("service_id", uuid(foreign)),
            field("customer", text("probe")),
            field("starts_at", timestamp(now)),
            field("ends_at", timestamp(now + 30 * time::MICROS_PER_MINUTE)),
            // Cancelled, so only the foreign key can object, not the overlap rule.
            field("status", text("cancelled")),
        ],
    ));
    let unknown_table = outcome(transaction::query("pg_authid", &[], &[], Some(1)));
    let odd_column = outcome(transaction::query(
        "services",
        &[eq("name; DROP TABLE services", text("x"))],
        &[],
        Some(1),
    ));

    Ok(json!({
        "query_by_id": query_by_id,
        "update_by_id": update_by_id,
        "delete_by_id": delete_by_id,
        "query_tenant_column": query_tenant_column,
        "insert_tenant_column": insert_tenant_column,
        "insert_foreign_reference": insert_foreign_reference,
        "unknown_table": unknown_table,
        "odd_column": odd_column,
    }))
}

/// A row count as a number, or the error as [`kind_of`] names it.
fn count_or_kind(result: Result<u64, DbError>) -> Json {
    match result {
        Ok(n) => json!(n),
        Err(e) => json!(kind_of(&e)),
    }
}

/// `"ok"`, or the error as [`kind_of`] names it.
fn outcome<T>(result: Result<T, DbError>) -> Json {
    match result {
        Ok(_) => json!("ok"),
        Err(e) => json!(kind_of(&e)),
    }
}

/// The WIT variant name, with the constraint for conflicts (`conflict:<name>`)
/// because which constraint refused is the point of the probe.
fn kind_of(e: &DbError) -> String {
    match e.constraint() {
        Some(constraint) => format!("conflict:{constraint}"),
        None => e.kind().to_string(),
    }
}

bookhost_sdk::export!(FixtureFaults with_types_in bookhost_sdk::bindings);
