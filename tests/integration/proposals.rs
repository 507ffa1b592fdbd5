//! Propose, then confirm, over HTTP and MCP: a confirmed proposal books
//! once; one whose world changed books nothing and answers the fresh
//! preview; concurrent and repeated confirmations commit once; expired and
//! foreign proposals are refused; the audit links both invocations.

use std::time::Duration;

use bookhost::api::ServiceConfig;
use bookhost::db::audit::{self, AuditFilter};
use bookhost::HostSettings;
use bookhost_tests::executors::*;
use bookhost_tests::http::*;
use bookhost_tests::mcp::McpClient;
use serde_json::{json, Value};

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

fn booking(service: &str, customer: &str, start: &str) -> String {
    json!({"service_id": service, "customer": customer, "start": start}).to_string()
}

async fn propose(server: &TestServer, tenant: &TestTenant, name: &str, body: &str) -> Value {
    server
        .invoke_raw(&tenant.key, name, "?propose=true", body, None)
        .await
        .expect(200)
}

async fn confirm(server: &TestServer, tenant: &TestTenant, id: &Value) -> Answer {
    let path = format!("/v1/proposals/{}/confirm", id.as_str().unwrap());
    server
        .send(server.request(reqwest::Method::POST, &path, Some(&tenant.key)))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_confirmed_books_exactly_once_and_the_audit_links_them() {
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE, CREATE_BOOKING]).await;
    let service = service(&server, &tenant).await;
    let proposed = propose(
        &server,
        &tenant,
        CREATE_BOOKING,
        &booking(&service, "Ada", "2031-07-01T10:00:00Z"),
    )
    .await;
    assert_eq!(proposed["dry_run"], true);
    assert_eq!(proposed["result"]["booking"]["customer"], "Ada");
    assert_eq!(proposed["writes"][0]["table"], "bookings");
    let id = proposed["proposal"]["id"].clone();
    assert_eq!(
        server.rows("bookings", &tenant).await,
        0,
        "a proposal writes nothing"
    );

    let confirmed = confirm(&server, &tenant, &id).await;
    let body = confirmed.expect(200);
    assert_eq!(body["confirmed"], id);
    assert_eq!(
        body["result"]["booking"]["starts_at"],
        proposed["result"]["booking"]["starts_at"]
    );
    assert_eq!(server.rows("bookings", &tenant).await, 1);

    // Confirming again answers the same, and commits nothing more.
    let again = confirm(&server, &tenant, &id).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, confirmed.body);
    assert_eq!(server.rows("bookings", &tenant).await, 1);

    // The audit: the proposal's dry run and the confirmation, both linked.
    audit::chain_pending(&server.pool).await.unwrap();
    let filter = AuditFilter {
        tenant: Some(tenant.id.0),
        proposal_id: Some(id.as_str().unwrap().parse().unwrap()),
        ..AuditFilter::default()
    };
    let records = audit::search(&server.pool, &filter).await.unwrap();
    let linked = [
        proposed["invocation_id"].as_str().unwrap().to_owned(),
        body["invocation_id"].as_str().unwrap().to_owned(),
    ];
    // A serialization failure against another test's transactions (SSI
    // predicate locks are coarse under load) adds an invisible replay's
    // record to either invocation: linked too, but not an outcome.
    let (replays, outcomes): (Vec<_>, Vec<_>) = records
        .iter()
        .map(|r| (r.outcome.as_str(), r.invocation_id.to_string()))
        .partition(|(outcome, _)| *outcome == "replayed");
    assert!(
        replays.iter().all(|(_, id)| linked.contains(id)),
        "{replays:?}"
    );
    assert_eq!(
        outcomes,
        [
            ("dry_run", linked[0].clone()),
            ("committed", linked[1].clone()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_whose_slot_was_taken_books_nothing_and_says_so() {
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE, CREATE_BOOKING]).await;
    let service = service(&server, &tenant).await;
    let start = "2031-07-02T10:00:00Z";
    let proposed = propose(
        &server,
        &tenant,
        CREATE_BOOKING,
        &booking(&service, "Ada", start),
    )
    .await;
    // Someone else books the slot before the confirmation.
    server
        .invoke_raw(
            &tenant.key,
            CREATE_BOOKING,
            "",
            &booking(&service, "Bob", start),
            None,
        )
        .await
        .expect(200);
    let changed = confirm(&server, &tenant, &proposed["proposal"]["id"])
        .await
        .expect(409);
    assert_eq!(changed["changed"], true);
    assert_eq!(changed["error"]["error"], "slot_taken", "{changed:#}");
    assert!(changed.get("proposal").is_none(), "nothing left to propose");
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT customer FROM bookings WHERE tenant_id = $1")
            .bind(tenant.id.0)
            .fetch_all(&server.pool)
            .await
            .unwrap();
    assert_eq!(rows, ["Bob"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_writes_are_a_fresh_proposal_that_can_be_confirmed() {
    let server = server().await;
    let tenant = server.tenant_with(&[UPDATE_PAGE_SECTION]).await;
    let section = |id: &str| json!({"page": "home", "section": {"id": id}}).to_string();
    // Proposed while the page does not exist: the write is an insert.
    let proposed = propose(&server, &tenant, UPDATE_PAGE_SECTION, &section("hero")).await;
    assert_eq!(proposed["writes"][0]["operation"], "insert");
    // Meanwhile the page is created: confirming would be an update instead.
    server
        .invoke_raw(
            &tenant.key,
            UPDATE_PAGE_SECTION,
            "",
            &section("intro"),
            None,
        )
        .await
        .expect(200);
    let changed = confirm(&server, &tenant, &proposed["proposal"]["id"])
        .await
        .expect(409);
    assert_eq!(changed["changed"], true);
    assert_eq!(changed["writes"][0]["operation"], "update");
    assert_eq!(changed["result"], json!({"page": "home", "sections": 2}));
    let fresh = changed["proposal"]["id"].clone();
    assert_ne!(fresh, proposed["proposal"]["id"]);
    let pages = || async {
        sqlx::query_scalar::<_, Value>("SELECT config FROM storefront_pages WHERE tenant_id = $1")
            .bind(tenant.id.0)
            .fetch_one(&server.pool)
            .await
            .unwrap()
    };
    assert_eq!(pages().await["sections"].as_array().unwrap().len(), 1);
    confirm(&server, &tenant, &fresh).await.expect(200);
    assert_eq!(pages().await["sections"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_confirmations_commit_once() {
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE, CREATE_BOOKING]).await;
    let service = service(&server, &tenant).await;
    let proposed = propose(
        &server,
        &tenant,
        CREATE_BOOKING,
        &booking(&service, "Ada", "2031-07-03T10:00:00Z"),
    )
    .await;
    let id = proposed["proposal"]["id"].as_str().unwrap().to_owned();
    let confirms: Vec<_> = (0..8)
        .map(|_| {
            let api = server.with_new_client();
            let (key, path) = (tenant.key.clone(), format!("/v1/proposals/{id}/confirm"));
            tokio::spawn(async move {
                api.send(api.request(reqwest::Method::POST, &path, Some(&key)))
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for confirm in confirms {
        statuses.push(confirm.await.unwrap());
    }
    statuses.sort();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}: each a success (first or replayed) or `in progress`"
    );
    assert!(statuses.contains(&200), "{statuses:?}");
    assert_eq!(server.rows("bookings", &tenant).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_foreign_proposals_are_refused() {
    let config = ServiceConfig {
        proposal_ttl: Duration::ZERO,
        ..ServiceConfig::default()
    };
    let server = start_server(HostSettings::default(), config).await;
    let tenant = server.tenant_with(&[CREATE_SERVICE, CREATE_BOOKING]).await;
    let service = service(&server, &tenant).await;
    let proposed = propose(
        &server,
        &tenant,
        CREATE_BOOKING,
        &booking(&service, "Ada", "2031-07-04T10:00:00Z"),
    )
    .await;
    let id = proposed["proposal"]["id"].clone();
    confirm(&server, &tenant, &id)
        .await
        .problem(410, "proposal-expired");
    let stranger = server.tenant().await;
    confirm(&server, &stranger, &id)
        .await
        .problem(404, "not-found");
    confirm(&server, &tenant, &json!(uuid::Uuid::new_v4().to_string()))
        .await
        .problem(404, "not-found");
    assert_eq!(server.rows("bookings", &tenant).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mcp_a_proposal_is_a_preview_and_confirm_proposal_commits_it() {
    let server = server().await;
    let tenant = server.tenant_with(&[CREATE_SERVICE, CREATE_BOOKING]).await;
    let service = service(&server, &tenant).await;
    let mcp = McpClient::new(server.base(), Some(&tenant.key));
    let args = json!({"service_id": service, "customer": "Ada", "start": "2031-07-05T10:00:00Z"});
    let proposed = mcp
        .call(
            CREATE_BOOKING,
            args,
            Some(json!({"io.bookhost/propose": true})),
        )
        .await;
    let preview = &proposed.result()["structuredContent"];
    assert_eq!(
        preview["preview"]["booking"]["customer"], "Ada",
        "{preview:#}"
    );
    assert_eq!(preview["writes"][0]["table"], "bookings");
    assert_eq!(server.rows("bookings", &tenant).await, 0);
    let id = preview["proposal"]["id"].clone();
    let confirmed = mcp
        .call("confirm_proposal", json!({"proposal_id": id}), None)
        .await;
    let result = confirmed.result();
    assert_eq!(result["isError"], false, "{result:#}");
    assert_eq!(result["structuredContent"]["booking"]["customer"], "Ada");
    assert_eq!(result["_meta"]["io.bookhost/confirmed"], id);
    assert_eq!(server.rows("bookings", &tenant).await, 1);
    let missing = mcp
        .call(
            "confirm_proposal",
            json!({"proposal_id": uuid::Uuid::new_v4()}),
            None,
        )
        .await;
    assert_eq!(
        missing.result()["structuredContent"]["error"],
        "proposal_not_found"
    );
}
