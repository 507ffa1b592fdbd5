//! The `bookhost` binary end to end: create a tenant, then invoke the real
//! create-booking component on a free and on a taken slot.

use std::process::Command;

use bookhost_tests::executors::*;
use bookhost_tests::*;
use serde_json::Value;

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(bookhost_binary())
        .args(args)
        .env("DATABASE_URL", database_url())
        .env("BOOKHOST_EXECUTORS_DIR", components_dir())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn invoke_cli(tenant: &str, executor: &str, input: &str) -> (i32, Value) {
    let (code, stdout, stderr) = run(&[
        "invoke",
        "--tenant",
        tenant,
        "--executor",
        executor,
        "--input",
        input,
    ]);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {stdout:?} stderr {stderr:?}"));
    (code, report)
}

#[test]
fn cli_books_a_free_slot_and_explains_a_taken_one() {
    let (code, stdout, stderr) =
        run(&["tenant", "create", &format!("cli-{}", uuid::Uuid::new_v4())]);
    assert_eq!(code, 0, "{stderr}");
    let mut lines = stdout.lines();
    let tenant = lines.next().unwrap().to_owned();
    assert!(
        lines.next().unwrap().starts_with("bk_"),
        "the API key follows the id: {stdout}"
    );
    assert_eq!(uuid::Uuid::parse_str(&tenant).unwrap().to_string(), tenant);

    let (code, report) = invoke_cli(
        &tenant,
        CREATE_SERVICE,
        r#"{"name": "Haircut", "duration_minutes": 30}"#,
    );
    assert_eq!(code, 0, "{report}");
    let service = report["output"]["service"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let booking = format!(
        r#"{{"service_id": "{service}", "customer": "Ada", "start": "2030-06-01T10:00:00Z"}}"#
    );
    let (code, report) = invoke_cli(&tenant, CREATE_BOOKING, &booking);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["outcome"], "ok");
    assert_eq!(report["attempts"], 1);
    assert_eq!(
        report["output"]["booking"]["starts_at"],
        "2030-06-01T10:00:00Z"
    );
    assert_eq!(
        report["output"]["booking"]["ends_at"],
        "2030-06-01T10:30:00Z"
    );

    let (code, report) = invoke_cli(&tenant, CREATE_BOOKING, &booking);
    assert_eq!(code, 2, "{report}");
    assert_eq!(report["outcome"], "user_error");
    assert_eq!(report["body"]["error"], "slot_taken");
    assert_eq!(
        report["body"]["suggested_starts"],
        serde_json::json!([
            "2030-06-01T10:30:00Z",
            "2030-06-01T11:00:00Z",
            "2030-06-01T11:30:00Z"
        ])
    );

    let (code, _, stderr) = run(&[
        "invoke",
        "--tenant",
        &uuid::Uuid::new_v4().to_string(),
        "--executor",
        CREATE_BOOKING,
        "--input",
        "{}",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no tenant with id"), "{stderr}");
}
