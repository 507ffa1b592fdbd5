//! Real MCP clients nobody here wrote, against a server this test starts:
//! the official Python SDK (`mcp` 2.x, which speaks the 2026-07-28 revision)
//! and the official TypeScript SDK (`@modelcontextprotocol/sdk` 1.x, the
//! 2025-11-25 handshake), each running `tests/mcp/client.{py,mjs}`. `.ci/run`
//! installs them (`tests/mcp/.venv`, `tests/mcp/node_modules`).

use std::path::PathBuf;
use std::process::Command;

use bookhost_tests::executors::*;
use bookhost_tests::http::*;
use serde_json::{json, Value};

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mcp")
}

/// Run a client program; its standard output is one JSON object.
fn run(program: &str, script: &str, args: &[&str]) -> Value {
    let output = Command::new(program)
        .arg(clients_dir().join(script))
        .args(args)
        .current_dir(clients_dir())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {stdout}"))
}

/// A tenant with create-booking and the read-only list-services, and a
/// service to book; the client's summary and the bookings it left.
async fn scenario(client: &str, program: &str, script: &str, day: u32) -> (Value, i64) {
    let server = server().await;
    let tenant = server
        .tenant_with(&[CREATE_SERVICE, CREATE_BOOKING, LIST_SERVICES])
        .await;
    let service = server
        .invoke(
            &tenant.key,
            CREATE_SERVICE,
            &json!({"name": format!("{client} service"), "duration_minutes": 30}),
        )
        .await
        .expect(200)["result"]["service"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let starts: Vec<String> = [10, 12, 14]
        .iter()
        .map(|hour| format!("2031-08-{day:02}T{hour}:00:00Z"))
        .collect();
    let url = format!("{}/mcp", server.base());
    let mut args = vec![url.as_str(), tenant.key.as_str(), service.as_str()];
    args.extend(starts.iter().map(String::as_str));
    let program = program.to_owned();
    let script = script.to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let summary = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&program, &script, &args)
    })
    .await
    .unwrap();
    let bookings = server.rows("bookings", &tenant).await;
    (summary, bookings)
}

/// What both clients must have seen.
fn assert_scenario(client: &str, summary: &Value, bookings: i64) {
    println!("{client} MCP client: {summary}");
    let tools = &summary["tools"];
    assert_eq!(
        tools["create-booking"]["readOnlyHint"], false,
        "{summary:#}"
    );
    assert_eq!(
        tools["create-booking"]["openWorldHint"], false,
        "{summary:#}"
    );
    assert_eq!(tools["list-services"]["readOnlyHint"], true, "{summary:#}");
    assert!(tools.get("confirm_proposal").is_some(), "{summary:#}");
    assert_eq!(
        summary["first"],
        json!({"is_error": false, "customer": format!("Ada ({client})")})
    );
    assert_eq!(summary["again"]["is_error"], true);
    assert_eq!(summary["again"]["error"], "slot_taken");
    assert!(
        summary["again"]["suggested"].as_u64().unwrap() > 0,
        "{summary:#}"
    );
    assert_eq!(summary["invalid"], json!({"raised": true, "code": -32602}));
    assert_eq!(
        summary["retry"],
        json!({"same": true, "is_error": false, "replayed": true})
    );
    assert_eq!(
        summary["proposal"],
        json!({"proposed": true, "confirmed_error": false})
    );
    // The first booking, the keyed one once, the confirmed proposal.
    assert_eq!(bookings, 3, "{summary:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_books_once_and_reads_slot_taken() {
    let python = clients_dir().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: python3 -m venv tests/mcp/.venv && tests/mcp/.venv/bin/pip install \
         -r tests/mcp/requirements.txt (what .ci/run does)",
        python.display()
    );
    let (summary, bookings) = scenario("python", python.to_str().unwrap(), "client.py", 1).await;
    assert_eq!(summary["protocol_version"], "2026-07-28", "{summary:#}");
    assert_scenario("python", &summary, bookings);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_typescript_sdk_books_once_and_reads_slot_taken() {
    assert!(
        clients_dir()
            .join("node_modules/@modelcontextprotocol/sdk")
            .exists(),
        "tests/mcp/node_modules is missing: npm ci --prefix tests/mcp (what .ci/run does)"
    );
    let (summary, bookings) = scenario("typescript", "node", "client.mjs", 2).await;
    assert_eq!(summary["protocol_version"], "2025-11-25", "{summary:#}");
    assert_scenario("typescript", &summary, bookings);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_client_hears_of_its_tenants_tool_changes_only() {
    use std::io::{BufRead, BufReader};
    let python = clients_dir().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing (see .ci/run)",
        python.display()
    );
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_BOOKING]).await;
    let other = server.tenant().await;
    let mut child = Command::new(&python)
        .arg(clients_dir().join("listen.py"))
        .arg(format!("{}/mcp", server.base()))
        .arg(&tenant.key)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (first, lines) = tokio::task::spawn_blocking(move || (lines.next(), lines))
        .await
        .unwrap();
    assert_eq!(first.unwrap().unwrap(), "listening");
    // Another tenant's change first: not this client's business.
    server.upload_component(&other.key, LIST_SERVICES).await;
    server.upload_component(&tenant.key, LIST_SERVICES).await;
    let mut lines = lines;
    let heard = tokio::task::spawn_blocking(move || lines.next())
        .await
        .unwrap()
        .expect("listen.py printed what it heard")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let heard: Value = serde_json::from_str(&heard).unwrap();
    println!("python listener heard: {heard}");
    assert!(
        heard["event"]
            .as_str()
            .unwrap()
            .contains("ToolsListChanged"),
        "{heard}"
    );
    assert_eq!(
        heard["tools"],
        json!(["confirm_proposal", CREATE_BOOKING, LIST_SERVICES])
    );
}
