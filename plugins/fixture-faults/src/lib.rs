//! fixture-faults: a test fixture that misbehaves on request (traps, errors and loops after writing, counts attempts, probes tenant isolation) so the tests can check the host's guarantees.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::{
    asc, eq, error, field, integer, invalid_input, is_in, is_not_null, json as json_value, log,
    manifest, ne, run, text, time, timestamp, transaction, uuid, Condition, DbError, Guest, Input,
    LogLevel, Manifest, OrderBy, Row, RowExt, Value,
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
             \"foreign_service_id\" of another tenant with crafted conditions, to name the \
             tenant column, system tables and odd identifiers, and to smuggle a set_config \
             payload through every string field; it reports each outcome.",
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
                "lock",
                "insert:bookings",
                "query:bookings",
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

/// A `set_config`-style payload, put into every string field an executor
/// controls: if any of them reached SQL as text, it would switch the
/// transaction to another tenant or end the statement early.
const PAYLOAD: &str =
    "x'); SELECT set_config('bookhost.tenant', '00000000-0000-0000-0000-000000000000', false); --";

/// Reports what the host lets this tenant do to another tenant's data. Every
/// outcome is reported rather than returned early, so one call shows them all.
/// The attacker has no rows of its own until the last probes, so every row a
/// read probe returns is foreign.
fn probe_tenant(foreign: &str) -> Result<Json, Json> {
    let by_id = || vec![eq("id", uuid(foreign))];
    let rows = |table: &str, conditions: &[Condition], order: &[OrderBy]| {
        count_or_kind(
            transaction::query(table, conditions, order, None).map(|rows| rows.len() as u64),
        )
    };

    // Reads with crafted conditions: none may return a foreign row.
    let query_by_id = rows("services", &by_id(), &[]);
    let query_in_list = rows(
        "services",
        &[is_in(
            "id",
            [
                uuid(foreign),
                uuid(foreign),
                uuid("00000000-0000-0000-0000-000000000000"),
            ],
        )],
        &[],
    );
    let query_every_service = rows("services", &[is_not_null("id")], &[]);
    let query_ne = rows("services", &[ne("name", text(""))], &[]);
    let query_bookings_of_service = rows("bookings", &[eq("service_id", uuid(foreign))], &[]);
    let query_quote_value = rows("services", &[eq("name", text("x' OR '1'='1"))], &[]);

    // Writes with crafted conditions: none may change a foreign row.
    let update_by_id = count_or_kind(transaction::update(
        "services",
        &by_id(),
        &[field("name", text("hacked"))],
    ));
    let update_in_list = count_or_kind(transaction::update(
        "services",
        &[is_in("id", [uuid(foreign)])],
        &[field("name", text("hacked"))],
    ));
    let update_tenant_column = outcome(transaction::update(
        "services",
        &by_id(),
        &[field("tenant_id", uuid(foreign))],
    ));
    let delete_by_id = count_or_kind(transaction::delete(
        "bookings",
        &[eq("service_id", uuid(foreign))],
    ));
    let delete_every_booking = count_or_kind(transaction::delete("bookings", &[is_not_null("id")]));

    // Naming the tenant column, system and host tables, odd identifiers.
    let query_tenant_column = outcome(transaction::query(
        "services",
        &[eq("tenant_id", uuid(foreign))],
        &[],
        None,
    ));
    let order_by_tenant_column = outcome(transaction::query(
        "services",
        &[],
        &[asc("tenant_id")],
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
    let mut tables = bookhost_sdk::serde_json::Map::new();
    for table in [
        "pg_catalog.pg_authid",
        "pg_class",
        "information_schema.tables",
        "public.services",
        "\"services\"",
        "services\"",
        "SERVICES",
        "services; --",
        "tenants",
        "api_keys",
        "audit_records",
    ] {
        tables.insert(
            table.into(),
            outcome(transaction::query(table, &[], &[], Some(1))),
        );
    }
    let mut columns = bookhost_sdk::serde_json::Map::new();
    for column in [
        "\"tenant_id\"",
        "TENANT_ID",
        "tenant_id ",
        "services.tenant_id",
        "name\"",
        "id) OR (1=1",
        "ctid",
    ] {
        columns.insert(
            column.into(),
            outcome(transaction::query(
                "services",
                &[eq(column, text("x"))],
                &[],
                Some(1),
            )),
        );
    }

    // The payload in every string field. Where the field names something,
    // the name is refused; where it is data, it is stored verbatim.
    let payload_in = json!({
        "table": outcome(transaction::query(PAYLOAD, &[], &[], Some(1))),
        "condition_column": outcome(transaction::query("services", &[eq(PAYLOAD, text("x"))], &[], None)),
        "order_column": outcome(transaction::query("services", &[], &[asc(PAYLOAD)], None)),
        "field_column": outcome(transaction::update("services", &by_id(), &[field(PAYLOAD, text("x"))])),
        "condition_text": rows("services", &[eq("name", text(PAYLOAD))], &[]),
        "condition_uuid": rows("services", &[eq("id", uuid(PAYLOAD))], &[]),
        "condition_json": rows("storefront_pages", &[eq("config", Value::Json(json!({"p": PAYLOAD}).to_string()))], &[]),
        "lock_key": outcome(transaction::lock(PAYLOAD)),
        "insert_text": outcome(transaction::insert(
            "services",
            &[field("name", text(PAYLOAD)), field("duration_minutes", integer(30))],
        )),
        "insert_json": outcome(transaction::insert(
            "storefront_pages",
            &[
                field("slug", text("probe")),
                field("config", Value::Json(json!({"sections": [], "tenant_id": foreign, "p": PAYLOAD}).to_string())),
            ],
        )),
        "insert_malformed_json": outcome(transaction::insert(
            "storefront_pages",
            &[field("slug", text("probe-2")), field("config", Value::Json("{\"sections\": [".into()))],
        )),
    });
    log(LogLevel::Info, PAYLOAD);
    // If any payload had switched tenants, the foreign service would show now.
    let query_by_id_after_payloads = rows("services", &by_id(), &[]);

    Ok(json!({
        "query_by_id": query_by_id,
        "query_in_list": query_in_list,
        "query_every_service": query_every_service,
        "query_ne": query_ne,
        "query_bookings_of_service": query_bookings_of_service,
        "query_quote_value": query_quote_value,
        "update_by_id": update_by_id,
        "update_in_list": update_in_list,
        "update_tenant_column": update_tenant_column,
        "delete_by_id": delete_by_id,
        "delete_every_booking": delete_every_booking,
        "query_tenant_column": query_tenant_column,
        "order_by_tenant_column": order_by_tenant_column,
        "insert_tenant_column": insert_tenant_column,
        "insert_foreign_reference": insert_foreign_reference,
        "unknown_table": unknown_table,
        "odd_column": odd_column,
        "tables": tables,
        "columns": columns,
        "payload_in": payload_in,
        "query_by_id_after_payloads": query_by_id_after_payloads,
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
