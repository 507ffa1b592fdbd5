//! The first test: runs the built executor (`bookhost build` first) on a scratch database with the example data, through `bookhost invoke --local`.
//!
//! Run it with `cargo test`. Set BOOKHOST to the bookhost binary if it is not
//! on your PATH.

use std::process::Command;

/// The example data's 30-minute Haircut, booked 2030-01-07 10:00-10:30.
const HAIRCUT: &str = "5e7c0000-0000-4000-8000-000000000001";

fn invoke(start: &str) -> (i32, serde_json::Value) {
    let bookhost = std::env::var("BOOKHOST").unwrap_or_else(|_| "bookhost".into());
    let input = serde_json::json!({"service_id": HAIRCUT, "customer": "Ada", "start": start});
    let output = Command::new(bookhost)
        .args(["invoke", "--local", "--input", &input.to_string()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running bookhost");
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code().unwrap_or(-1), report)
}

#[test]
fn books_a_free_slot() {
    let (status, report) = invoke("2030-01-07T11:00:00Z");
    assert_eq!(report["outcome"], "ok", "{report}");
    assert_eq!(status, 0);
    assert_eq!(report["output"]["booking"]["ends_at"], "2030-01-07T11:30:00Z");
}

#[test]
fn refuses_a_taken_slot() {
    let (status, report) = invoke("2030-01-07T10:15:00Z");
    assert_eq!(report["outcome"], "user_error", "{report}");
    assert_eq!(report["body"]["error"], "slot_taken");
    assert_eq!(status, 2);
}
