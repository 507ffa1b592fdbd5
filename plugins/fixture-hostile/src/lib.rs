//! fixture-hostile: a test fixture that attacks the host's limits on request (spins, floods it with calls or log lines, bombs memory, recurses, returns huge output, hoards locks) so the tests can check each is stopped with a typed outcome and nothing written.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::{
    eq, field, integer, invalid_input, log, manifest, run, text, transaction, Guest, Input,
    LogLevel, Manifest,
};

struct FixtureHostile;

const MODES: [&str; 10] = [
    "spin",
    "query-flood",
    "write-flood",
    "memory-bomb",
    "recursion",
    "huge-output",
    "many-locks",
    "lock-and-spin",
    "write-then-spin",
    "log-flood",
];

impl Guest for FixtureHostile {
    fn describe() -> Manifest {
        manifest(
            env!("CARGO_PKG_NAME"),
            "TEST FIXTURE, hostile on purpose: do not call it for real work. \"spin\" loops \
             forever; \"query-flood\" queries in a loop forever; \"write-flood\" inserts services \
             in a loop forever; \"memory-bomb\" allocates 1 MiB blocks until it is stopped; \
             \"recursion\" recurses without end; \"huge-output\" returns \"size_mib\" MiB of \
             JSON; \"many-locks\" takes \"count\" distinct locks; \"lock-and-spin\" takes the lock \
             \"hostile\" and loops forever; \"write-then-spin\" inserts a service named \
             \"hostile\" and loops forever; \"log-flood\" inserts a service named \"hostile\" and \
             logs 1 KiB lines forever.",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "fixture-hostile input",
                "type": "object",
                "properties": {
                    "mode": { "enum": MODES, "description": "How to misbehave." },
                    "size_mib": {
                        "type": "integer", "minimum": 1, "maximum": 32,
                        "description": "For huge-output (required there): MiB to return."
                    },
                    "count": {
                        "type": "integer", "minimum": 1, "maximum": 100000,
                        "description": "For many-locks (required there): distinct keys to lock."
                    }
                },
                "required": ["mode"],
                "additionalProperties": false
            }),
            &["lock", "query:services", "insert:services"],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        run(&input, hostile)
    }
}

fn hostile(json: Json) -> Result<Json, Json> {
    let input = Input::new(json, &["mode", "size_mib", "count"])?;
    match input.str("mode", 1..=64)? {
        "spin" => spin_forever(),
        "query-flood" => loop {
            // Errors are ignored on purpose: only the host can end this.
            let _ = transaction::query("services", &[eq("name", text("flood"))], &[], Some(1));
        },
        "write-flood" => {
            let mut i: i64 = 0;
            loop {
                i += 1;
                let _ = transaction::insert(
                    "services",
                    &[
                        field("name", text(format!("flood-{i}"))),
                        field("duration_minutes", integer(30)),
                    ],
                );
            }
        }
        "memory-bomb" => {
            let mut blocks: Vec<Vec<u8>> = Vec::new();
            loop {
                // Touch every block so no page stays a promise.
                blocks.push(vec![0xA5; 1 << 20]);
                core::hint::black_box(&blocks);
            }
        }
        "recursion" => Ok(json!({ "depth": recurse(core::hint::black_box(1)) })),
        "huge-output" => {
            let mib = input.int("size_mib", 1..=32)? as usize;
            Ok(json!({ "padding": "x".repeat(mib << 20) }))
        }
        "many-locks" => {
            let count = input.int("count", 1..=100_000)?;
            for i in 0..count {
                transaction::lock(&format!("hoard-{i}"))?;
            }
            Ok(json!({ "locked": count }))
        }
        "lock-and-spin" => {
            transaction::lock("hostile")?;
            spin_forever()
        }
        "write-then-spin" => {
            transaction::insert(
                "services",
                &[
                    field("name", text("hostile")),
                    field("duration_minutes", integer(30)),
                ],
            )?;
            spin_forever()
        }
        "log-flood" => {
            transaction::insert(
                "services",
                &[
                    field("name", text("hostile")),
                    field("duration_minutes", integer(30)),
                ],
            )?;
            let line = "x".repeat(1024);
            loop {
                log(LogLevel::Info, &line);
            }
        }
        other => Err(invalid_input(format!("unknown mode {other:?}"))),
    }
}

/// Only the host's epoch deadline can end this; `black_box` keeps the
/// optimizer from proving the loop pointless.
fn spin_forever() -> ! {
    let mut i: u64 = 0;
    loop {
        i = core::hint::black_box(i.wrapping_add(1));
    }
}

/// Recursion the optimizer cannot turn into a loop. Its frames live on the
/// wasm stack (few bytes of Rust's in-memory shadow stack each), so it is the
/// host's `max_wasm_stack` that stops it: a frame holding a buffer would
/// exhaust the shadow stack first, which shows up as an out-of-bounds
/// memory access trap instead.
// Endless on purpose: the host's stack limit is what ends it.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    recurse(core::hint::black_box(depth + 1)).wrapping_add(depth)
}

bookhost_sdk::export!(FixtureHostile with_types_in bookhost_sdk::bindings);
