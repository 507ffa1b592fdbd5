//! The MCP endpoint from a plain JSON-RPC client: tools and the hints the
//! host guarantees, calls with every property of the HTTP path, keys and
//! origins, tenants kept apart, and 64 concurrent calls on one slot.

use bookhost_tests::executors::*;
use bookhost_tests::http::*;
use bookhost_tests::mcp::McpClient;
use serde_json::{json, Value};

async fn bookings(server: &TestServer, tenant: &TestTenant) -> i64 {
    server.rows("bookings", tenant).await
}

async fn service(server: &TestServer, tenant: &TestTenant) -> String {
    let body = server
        .invoke(
            &tenant.key,
            CREATE_SERVICE,
            &json!({"name": "Haircut", "duration_minutes": 30}),
        )
        .await
        .expect(200);
    body["result"]["service"]["id"].as_str().unwrap().to_owned()
}

fn booking(service: &str, start: &str) -> Value {
    json!({"service_id": service, "customer": "Ada", "start": start})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_are_the_tenants_executors_with_hints_the_grant_guarantees() {
    let server = server().await;
    let tenant = server
        .tenant_with(&[CREATE_BOOKING, LIST_SERVICES, DELETE_SERVICE])
        .await;
    let other = server.tenant_with(&[CREATE_SERVICE]).await;
    let tools = McpClient::new(server.base(), Some(&tenant.key))
        .tools()
        .await;
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "confirm_proposal",
            CREATE_BOOKING,
            DELETE_SERVICE,
            LIST_SERVICES
        ]
    );
    let by_name = |name: &str| tools.iter().find(|t| t["name"] == name).unwrap().clone();
    let create = by_name(CREATE_BOOKING);
    assert_eq!(create["title"], "Create booking");
    assert!(create["description"]
        .as_str()
        .unwrap()
        .contains("slot_taken"));
    assert_eq!(
        create["inputSchema"]["required"],
        json!(["service_id", "customer", "start"])
    );
    assert_eq!(
        create["annotations"],
        json!({"title": "Create booking", "readOnlyHint": false, "destructiveHint": false, "openWorldHint": false})
    );
    assert_eq!(
        by_name(LIST_SERVICES)["annotations"],
        json!({"title": "List services", "readOnlyHint": true, "destructiveHint": false,
               "idempotentHint": true, "openWorldHint": false})
    );
    assert_eq!(
        by_name(DELETE_SERVICE)["annotations"]["destructiveHint"],
        true
    );
    assert_eq!(
        by_name(DELETE_SERVICE)["annotations"]["readOnlyHint"],
        false
    );

    // The other tenant sees its own tools only.
    let theirs = McpClient::new(server.base(), Some(&other.key))
        .tools()
        .await;
    let names: Vec<&str> = theirs.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["confirm_proposal", CREATE_SERVICE]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_books_once_and_a_taken_slot_is_a_tool_error() {
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE, CREATE_BOOKING]).await;
    let service = service(&server, &tenant).await;
    let mcp = McpClient::new(server.base(), Some(&tenant.key));
    let args = booking(&service, "2031-04-01T10:00:00Z");

    let first = mcp.call(CREATE_BOOKING, args.clone(), None).await;
    let result = first.result();
    assert_eq!(result["isError"], false, "{result:#}");
    assert_eq!(result["structuredContent"]["booking"]["customer"], "Ada");
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        text, result["structuredContent"],
        "the text is the same JSON"
    );
    assert!(result["_meta"]["io.bookhost/invocation-id"].is_string());

    let second = mcp.call(CREATE_BOOKING, args, None).await;
    let refused = second.result();
    assert_eq!(refused["isError"], true);
    assert_eq!(refused["structuredContent"]["error"], "slot_taken");
    assert!(
        !refused["structuredContent"]["suggested_starts"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{refused:#}"
    );

    // A call the schema refuses is the protocol's error; nothing ran (no
    // attempt is on record).
    let attempts = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_records WHERE tenant_id = $1")
            .bind(tenant.id.0)
            .fetch_one(&server.pool)
            .await
            .unwrap()
    };
    let before = attempts().await;
    let invalid = mcp
        .call(CREATE_BOOKING, json!({"service_id": service}), None)
        .await;
    let error = invalid.error();
    assert_eq!(error["code"], -32602);
    assert!(
        error["data"]["errors"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "{error:#}"
    );
    let unknown = mcp.call("no-such-tool", json!({}), None).await;
    assert_eq!(unknown.error()["code"], -32602);
    assert_eq!(attempts().await, before, "nothing ran");
    assert_eq!(bookings(&server, &tenant).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_call_with_its_key_answers_the_first_answer() {
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE, CREATE_BOOKING]).await;
    let service = service(&server, &tenant).await;
    let mcp = McpClient::new(server.base(), Some(&tenant.key));
    let meta = json!({"io.bookhost/idempotency-key": "book-1"});
    let args = booking(&service, "2031-04-02T10:00:00Z");
    let first = mcp
        .call(CREATE_BOOKING, args.clone(), Some(meta.clone()))
        .await;
    let again = mcp.call(CREATE_BOOKING, args.clone(), Some(meta)).await;
    let (first, again) = (first.result(), again.result());
    assert_eq!(
        again["isError"], false,
        "the retry is the first (ok) answer: {again:#}"
    );
    assert_eq!(again["structuredContent"], first["structuredContent"]);
    assert_eq!(
        again["_meta"]["io.bookhost/invocation-id"],
        first["_meta"]["io.bookhost/invocation-id"]
    );
    assert_eq!(again["_meta"]["io.bookhost/replayed"], true);

    // The header works too, and a key over MCP is the same key over HTTP.
    let by_header = mcp
        .send(
            "tools/call",
            json!({"name": CREATE_BOOKING, "arguments": booking(&service, "2031-04-02T12:00:00Z")}),
            &[("idempotency-key", "book-2")],
        )
        .await;
    let replayed = server
        .invoke_raw(
            &tenant.key,
            CREATE_BOOKING,
            "",
            &booking(&service, "2031-04-02T12:00:00Z").to_string(),
            Some("book-2"),
        )
        .await
        .expect(200);
    assert_eq!(
        replayed["result"],
        by_header.result()["structuredContent"],
        "HTTP replays the answer MCP got"
    );
    // The same key with other arguments is the caller's mistake.
    let reused = mcp
        .call(
            CREATE_BOOKING,
            booking(&service, "2031-04-03T10:00:00Z"),
            Some(json!({"io.bookhost/idempotency-key": "book-1"})),
        )
        .await;
    assert_eq!(reused.error()["code"], -32602);
    assert_eq!(bookings(&server, &tenant).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_origins_are_checked_and_tenants_kept_apart() {
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE]).await;
    let other = server.tenant().await;
    for key in [None, Some("bk_not-a-key")] {
        let answer = McpClient::new(server.base(), key)
            .send("tools/list", json!({}), &[])
            .await;
        assert_eq!(answer.status, 401, "{:?}", answer.body);
        assert_eq!(answer.headers["www-authenticate"], "Bearer");
    }
    let mcp = McpClient::new(server.base(), Some(&tenant.key));
    let evil = mcp.clone().with_origin("http://evil.example");
    assert_eq!(evil.send("tools/list", json!({}), &[]).await.status, 403);
    // Before the key: a page elsewhere cannot probe keys either.
    let probe = McpClient::new(server.base(), Some("bk_guess")).with_origin("http://evil.example");
    assert_eq!(probe.send("tools/list", json!({}), &[]).await.status, 403);
    let local = mcp.clone().with_origin("http://localhost:5173");
    local.send("tools/list", json!({}), &[]).await.result();

    // Another tenant can neither list nor call this tenant's executor.
    let stranger = McpClient::new(server.base(), Some(&other.key));
    let names: Vec<Value> = stranger
        .tools()
        .await
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(names, [json!("confirm_proposal")]);
    let call = stranger
        .call(
            CREATE_SERVICE,
            json!({"name": "x", "duration_minutes": 5}),
            None,
        )
        .await;
    assert_eq!(call.error()["code"], -32602);
    assert_eq!(server.rows("services", &other).await, 0);
    assert_eq!(server.rows("services", &tenant).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_show_the_tenants_services_and_upcoming_bookings() {
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE, CREATE_BOOKING]).await;
    let service = service(&server, &tenant).await;
    let mcp = McpClient::new(server.base(), Some(&tenant.key));
    mcp.call(
        CREATE_BOOKING,
        booking(&service, "2031-05-01T10:00:00Z"),
        None,
    )
    .await
    .result();
    let listed = mcp.send("resources/list", json!({}), &[]).await;
    let uris: Vec<&str> = listed.result()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        ["bookhost://services", "bookhost://bookings/upcoming"]
    );
    let read = |uri: &'static str| {
        let mcp = mcp.clone();
        async move {
            let answer = mcp.send("resources/read", json!({"uri": uri}), &[]).await;
            let text = answer.result()["contents"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned();
            serde_json::from_str::<Value>(&text).unwrap()
        }
    };
    assert_eq!(read("bookhost://services").await[0]["id"], service);
    let upcoming = read("bookhost://bookings/upcoming").await;
    assert_eq!(upcoming.as_array().unwrap().len(), 1);
    assert!(upcoming[0].get("tenant_id").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_calls_on_one_slot_book_it_once() {
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE, CREATE_BOOKING]).await;
    let service = service(&server, &tenant).await;
    let mcp = McpClient::new(server.base(), Some(&tenant.key));
    let calls: Vec<_> = (0..64)
        .map(|i| {
            let mcp = mcp.clone();
            let args = json!({"service_id": service, "customer": format!("c{i}"), "start": "2031-06-01T10:00:00Z"});
            tokio::spawn(async move { mcp.call(CREATE_BOOKING, args, None).await })
        })
        .collect();
    let (mut ok, mut taken, mut other) = (0, 0, Vec::new());
    for call in calls {
        let answer = call.await.unwrap();
        let result = answer.result();
        match (&result["isError"], &result["structuredContent"]["error"]) {
            (Value::Bool(false), _) => ok += 1,
            (Value::Bool(true), Value::String(code)) if code == "slot_taken" => taken += 1,
            _ => other.push(result.clone()),
        }
    }
    println!("mcp hot slot: 64 concurrent tools/call: {ok} booked, {taken} slot_taken");
    assert_eq!((ok, taken, other.len()), (1, 63, 0), "{other:#?}");
    assert_eq!(bookings(&server, &tenant).await, 1);
}
