//! fixture-bench: a benchmark fixture that does as little as possible (or N cheap host calls, or N queries of 10 rows) so the benchmarks can price instantiation and host calls.

use bookhost_sdk::serde_json::{json, Value as Json};
use bookhost_sdk::{context, manifest, run, transaction, Guest, Input, Manifest};

struct FixtureBench;

impl Guest for FixtureBench {
    fn describe() -> Manifest {
        manifest(
            env!("CARGO_PKG_NAME"),
            "BENCHMARK FIXTURE, not a business action: do not call it for real work. With no \
             input fields it returns at once; \"now_calls\" makes that many context.now() host \
             calls; \"queries\" makes that many queries of up to 10 services.",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "fixture-bench input",
                "type": "object",
                "properties": {
                    "now_calls": { "type": "integer", "minimum": 0, "maximum": 1000000,
                                   "description": "context.now() calls to make." },
                    "queries": { "type": "integer", "minimum": 0, "maximum": 1000,
                                 "description": "Queries of up to 10 services to make." }
                },
                "additionalProperties": false
            }),
            &["query:services"],
        )
    }

    fn execute(input: String) -> Result<String, String> {
        // The empty input skips JSON parsing, so "nothing" is really nothing.
        if input == "{}" {
            return Ok("{}".into());
        }
        run(&input, bench)
    }
}

fn bench(json: Json) -> Result<Json, Json> {
    let input = Input::new(json, &["now_calls", "queries"])?;
    let now_calls = match input.get("now_calls") {
        Some(_) => input.int("now_calls", 0..=1_000_000)?,
        None => 0,
    };
    let queries = match input.get("queries") {
        Some(_) => input.int("queries", 0..=1000)?,
        None => 0,
    };
    let mut sum: i64 = 0;
    for _ in 0..now_calls {
        sum = sum.wrapping_add(context::now());
    }
    let mut rows = 0;
    for _ in 0..queries {
        rows += transaction::query("services", &[], &[], Some(10))?.len();
    }
    Ok(json!({ "rows": rows, "sum": sum }))
}

bookhost_sdk::export!(FixtureBench with_types_in bookhost_sdk::bindings);
