//! The operator console: every page refuses a request without a session, a
//! wrong key and another tenant's key; actions need the session's form token
//! and the console's own origin; and, in headless Chromium, an operator
//! follows a hot-slot run, a replayed invocation, an approval and a tampered
//! audit record, while a tenant sees only itself.

use std::future::IntoFuture;

use bookhost::api::{app, AppState, ServiceConfig};
use bookhost::capabilities::grant::{GrantMode, GrantPolicy};
use bookhost::db::audit;
use bookhost::{Host, HostSettings, TenantId};
use bookhost_tests::browser::Browser;
use bookhost_tests::executors::*;
use bookhost_tests::http::{component, start_server, with_custom_section, TestServer, TestTenant};
use bookhost_tests::*;
use reqwest::redirect::Policy;
use serde_json::json;
use sqlx::PgPool;

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Sign in with `key`: the session cookie (`name=value`), or the status
/// and page of the refusal.
async fn sign_in(base: &str, key: &str) -> Result<String, (u16, String)> {
    let answer = client()
        .post(format!("{base}/console/login"))
        .form(&[("key", key)])
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let cookie = answer
        .headers()
        .get("set-cookie")
        .map(|c| c.to_str().unwrap().to_owned());
    let location = answer
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    let body = answer.text().await.unwrap();
    match (status, cookie) {
        (303, Some(cookie)) => {
            assert_eq!(location.as_deref(), Some("/console/invocations"));
            for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
                assert!(cookie.contains(attribute), "{cookie}");
            }
            assert!(
                !cookie.contains(key),
                "the cookie carries a token, not the key"
            );
            Ok(cookie.split(';').next().unwrap().to_owned())
        }
        (status, _) => Err((status, body)),
    }
}

/// GET `path` with `cookie`: status, location, body.
async fn get(base: &str, cookie: Option<&str>, path: &str) -> (u16, Option<String>, String) {
    let mut request = client().get(format!("{base}{path}"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    let location = answer
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    if status == 200 {
        let csp = answer.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert_eq!(answer.headers()["cache-control"], "no-store");
    }
    (status, location, answer.text().await.unwrap())
}

/// POST a form to `path` with `cookie`, from `origin` when given.
async fn post(
    base: &str,
    cookie: &str,
    path: &str,
    origin: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, String) {
    post_via(base, cookie, path, origin, None, form).await
}

/// [`post`] through a proxy that says which host the browser asked for.
async fn post_via(
    base: &str,
    cookie: &str,
    path: &str,
    origin: Option<&str>,
    forwarded_host: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, String) {
    let mut request = client()
        .post(format!("{base}{path}"))
        .header("cookie", cookie)
        .form(form);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    if let Some(host) = forwarded_host {
        request = request.header("x-forwarded-host", host);
    }
    let answer = request.send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// The session's form token, read from a page it drew.
fn csrf_of(page: &str) -> String {
    let at = page
        .find(r#"name="csrf" value=""#)
        .expect("a form with a token")
        + 19;
    page[at..at + 64].to_owned()
}

/// One invocation of `create-service` for `tenant` over HTTP; its id.
async fn an_invocation(server: &TestServer, tenant: &TestTenant, name: &str) -> String {
    let answer = server
        .invoke(
            &tenant.key,
            CREATE_SERVICE,
            &json!({"name": name, "duration_minutes": 30}),
        )
        .await;
    answer.expect(200)["invocation_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every console page of tenant `a`'s data, by path.
fn pages_of(a: &TestTenant, invocation: &str) -> Vec<String> {
    vec![
        "/console/invocations".into(),
        "/console/invocations/rows".into(),
        format!("/console/invocations/{}/{invocation}", a.id.0),
        "/console/executors".into(),
        format!("/console/executors/{}/{CREATE_SERVICE}", a.id.0),
        "/console/insights".into(),
        "/console/audit".into(),
        "/console/audit/checkpoint".into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_needs_a_session_and_a_wrong_key_gets_none() {
    let server = start_server(HostSettings::default(), ServiceConfig::default()).await;
    let base = server.base();
    let a = server.tenant_with(&[CREATE_SERVICE]).await;
    let invocation = an_invocation(&server, &a, "seen").await;

    for path in pages_of(&a, &invocation) {
        let (status, location, _) = get(base, None, &path).await;
        assert_eq!(
            (status, location.as_deref()),
            (303, Some("/console/login")),
            "{path} without a session"
        );
        let (status, location, _) =
            get(base, Some("bookhost_console=0123456789abcdef"), &path).await;
        assert_eq!(
            (status, location.as_deref()),
            (303, Some("/console/login")),
            "{path} with a made-up session"
        );
    }
    for wrong in [
        "nope",
        "",
        &format!("{}x", server.operator_key),
        &a.key[1..],
    ] {
        let (status, page) = sign_in(base, wrong).await.unwrap_err();
        assert!(
            status == 401 || status == 400,
            "{wrong:?} got {status}: {page}"
        );
        assert!(
            page.contains("unknown or revoked key") || page.contains("enter a key"),
            "{page}"
        );
    }
    // Records no page may fail on: calls an executor filled with NULs (which
    // `json` keeps and `->>` cannot read), and calls that are not a list.
    for calls in [
        r#"[{"capability": "lock", "table": "t\u0000", "detail": {"key": "k\u0000"}, "duration_us": "x"}, 5, "s"]"#,
        r#"{"not": "a list"}"#,
    ] {
        sqlx::query(
            "INSERT INTO audit_records (tenant_id, invocation_id, attempt, executor, version, outcome, \
             calls, lock_wait_us, duration_us, recorded_at) \
             VALUES ($1, $2, 1, 'odd', 'v', 'replayed', $3::json, 0, 1, now())",
        )
        .bind(a.id.0)
        .bind(uuid::Uuid::now_v7())
        .bind(calls)
        .execute(&server.pool)
        .await
        .unwrap();
    }
    // Over TLS (the browser says so in Origin), the cookie is Secure.
    let over_tls = client()
        .post(format!("{base}/console/login"))
        .header("origin", base.replace("http://", "https://"))
        .form(&[("key", server.operator_key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(over_tls.status(), 303);
    let cookie = over_tls.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let operator = sign_in(base, &server.operator_key).await.unwrap();
    let (status, _, insights) = get(base, Some(&operator), "/console/insights?window=15m").await;
    assert_eq!(status, 200, "{insights}");
    assert!(insights.contains("t\u{fffd}"), "a NUL reads as U+FFFD");
    for path in pages_of(&a, &invocation) {
        let (status, _, body) = get(base, Some(&operator), &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!body.contains(&server.operator_key), "{path} shows the key");
        assert!(!body.contains(&a.key), "{path} shows a tenant's key");
    }
    // Signing out ends the session for every page.
    let (_, _, page) = get(base, Some(&operator), "/console/audit").await;
    let (status, _) = post(
        base,
        &operator,
        "/console/logout",
        None,
        &[("csrf", &csrf_of(&page))],
    )
    .await;
    assert_eq!(status, 303);
    let (status, location, _) = get(base, Some(&operator), "/console/audit").await;
    assert_eq!((status, location.as_deref()), (303, Some("/console/login")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_key_sees_only_its_own_tenant_on_every_page() {
    let server = start_server(HostSettings::default(), ServiceConfig::default()).await;
    let base = server.base();
    let a = server.tenant_with(&[CREATE_SERVICE]).await;
    let b = server.tenant_with(&[CREATE_SERVICE]).await;
    let a_invocation = an_invocation(&server, &a, "a's").await;
    let b_invocation = an_invocation(&server, &b, "b's").await;
    let b_session = sign_in(base, &b.key).await.unwrap();

    // A's own pages: as if they did not exist.
    for path in [
        format!("/console/invocations/{}/{a_invocation}", a.id.0),
        format!("/console/executors/{}/{CREATE_SERVICE}", a.id.0),
    ] {
        let (status, _, body) = get(base, Some(&b_session), &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains(&a_invocation), "{path}");
    }
    // Lists and summaries: B's rows only, whatever the query asks for.
    for path in [
        "/console/invocations".to_owned(),
        format!("/console/invocations?tenant={}", a.id.0),
        format!("/console/invocations/rows?tenant={}", a.id.0),
        "/console/executors".to_owned(),
        "/console/insights?window=24h".to_owned(),
        "/console/audit".to_owned(),
        "/console/audit/checkpoint".to_owned(),
        format!("/console/audit/checkpoint?tenant={}", a.id.0),
    ] {
        let (status, _, body) = get(base, Some(&b_session), &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!body.contains(&a.id.0.to_string()), "{path} shows tenant A");
        assert!(!body.contains(&a_invocation), "{path} shows A's invocation");
    }
    let (_, _, rows) = get(base, Some(&b_session), "/console/invocations").await;
    assert!(rows.contains(&b_invocation), "B sees its own invocation");
    // Actions on A's data: refused, and nothing changes.
    let (_, _, page) = get(base, Some(&b_session), "/console/audit").await;
    let csrf = csrf_of(&page);
    let a_tenant = a.id.0.to_string();
    let (status, _) = post(
        base,
        &b_session,
        "/console/audit/verify",
        None,
        &[("csrf", &csrf), ("tenant", &a_tenant)],
    )
    .await;
    assert_eq!(status, 404);
    let a_path = format!("/console/executors/{a_tenant}/{CREATE_SERVICE}");
    for action in ["approve", "deny", "activate"] {
        let (status, _) = post(
            base,
            &b_session,
            &format!("{a_path}/{action}"),
            None,
            &[("csrf", &csrf), ("version", "0")],
        )
        .await;
        assert!(status == 403 || status == 404, "{action}: {status}");
    }
    let verified: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_verifications WHERE tenant_id = $1")
            .bind(a.id.0)
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert_eq!(verified, 0, "B's session verified nothing of A's");
    // Revoking B's key ends B's console session at once.
    sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1")
        .bind(b.id.0)
        .execute(&server.pool)
        .await
        .unwrap();
    let (status, location, _) = get(base, Some(&b_session), "/console/invocations").await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/console/login")),
        "a revoked key's session"
    );
    assert!(
        sign_in(base, &b.key).await.is_err(),
        "a revoked key signs in no more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_need_the_form_token_the_console_origin_and_the_operator() {
    let config = ServiceConfig {
        grant_policy: GrantPolicy {
            mode: GrantMode::RequireApproval,
            deny: vec![],
        },
        ..Default::default()
    };
    let server = start_server(HostSettings::default(), config).await;
    let base = server.base();
    let tenant = server.tenant_with(&[LIST_SERVICES]).await;
    let version = sha256_hex(&component(LIST_SERVICES));
    let status_of = |version: &str| {
        let (pool, version) = (server.pool.clone(), version.to_owned());
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT grant_status FROM executor_versions \
                 WHERE tenant_id = $1 AND name = $2 AND digest = $3",
            )
            .bind(tenant.id.0)
            .bind(LIST_SERVICES)
            .bind(version)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(status_of(&version).await, "pending-approval");
    let operator = sign_in(base, &server.operator_key).await.unwrap();
    let path = format!("/console/executors/{}/{LIST_SERVICES}", tenant.id.0);
    let (_, _, page) = get(base, Some(&operator), &path).await;
    let csrf = csrf_of(&page);
    let (approve, deny) = (format!("{path}/approve"), format!("{path}/deny"));

    let (status, body) = post(base, &operator, &approve, None, &[("version", &version)]).await;
    assert_eq!(status, 403, "no token: {body}");
    let wrong = "0".repeat(64);
    let (status, _) = post(
        base,
        &operator,
        &approve,
        None,
        &[("csrf", &wrong), ("version", &version)],
    )
    .await;
    assert_eq!(status, 403, "a wrong token");
    let (status, _) = post(
        base,
        &operator,
        &approve,
        Some("http://evil.example"),
        &[("csrf", &csrf), ("version", &version)],
    )
    .await;
    assert_eq!(status, 403, "another site's form");
    // A tenant's session has a token of its own, but approving is the operator's.
    let tenant_session = sign_in(base, &tenant.key).await.unwrap();
    let (_, _, tenant_page) = get(base, Some(&tenant_session), &path).await;
    assert!(
        !tenant_page.contains(r#"data-action="approve""#),
        "no approve button for a tenant"
    );
    let tenant_csrf = csrf_of(&tenant_page);
    let (status, _) = post(
        base,
        &tenant_session,
        &approve,
        None,
        &[("csrf", &tenant_csrf), ("version", &version)],
    )
    .await;
    assert_eq!(status, 403, "a tenant approving");
    assert_eq!(
        status_of(&version).await,
        "pending-approval",
        "nothing refused changed anything"
    );

    // Denied: it keeps nothing, and a stale approval form cannot undo that.
    let (status, _) = post(
        base,
        &operator,
        &deny,
        Some(base),
        &[("csrf", &csrf), ("version", &version)],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(status_of(&version).await, "denied");
    let (status, body) = post(
        base,
        &operator,
        &approve,
        None,
        &[("csrf", &csrf), ("version", &version)],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(status_of(&version).await, "denied");
    let (_, refused) = invoke(&server, &tenant).await;
    assert_eq!(refused["error"]["error"], "forbidden", "{refused}");

    // A second version, approved through a proxy that rewrites Host: the
    // browser's origin is the host it asked for (X-Forwarded-Host).
    let second = with_custom_section(component(LIST_SERVICES), "v2", b"2");
    let second_version = sha256_hex(&second);
    server.upload(&tenant.key, LIST_SERVICES, second).await;
    assert_eq!(status_of(&second_version).await, "pending-approval");
    let proxied = Some("https://console.example");
    let (status, _) = post_via(
        base,
        &operator,
        &approve,
        proxied,
        None,
        &[("csrf", &csrf), ("version", &second_version)],
    )
    .await;
    assert_eq!(
        status, 403,
        "an origin that is neither Host nor X-Forwarded-Host"
    );
    let (status, _) = post_via(
        base,
        &operator,
        &approve,
        proxied,
        Some("console.example"),
        &[("csrf", &csrf), ("version", &second_version)],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(status_of(&second_version).await, "granted");
    let (status, answer) = invoke(&server, &tenant).await;
    assert_eq!(status, 200, "{answer}");
    // Denying needs a version still pending.
    let (status, body) = post(
        base,
        &operator,
        &deny,
        None,
        &[("csrf", &csrf), ("version", &second_version)],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(status_of(&second_version).await, "granted");
}

/// `list-services` invoked over HTTP: status and body.
async fn invoke(server: &TestServer, tenant: &TestTenant) -> (u16, serde_json::Value) {
    let answer = server.invoke(&tenant.key, LIST_SERVICES, &json!({})).await;
    (answer.status, answer.json())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A host and server on a database of their own, so the console's counts
/// are this test's alone (the shared database has every other test's
/// invocations, and their replays).
struct OwnServer {
    base: String,
    operator_key: String,
    host: Host,
    owner: PgPool,
    database: String,
}

async fn own_server(config: ServiceConfig) -> OwnServer {
    let (database, options) = scratch_database("console").await;
    bookhost::db::migrate(options.clone()).await.unwrap();
    let pool = bookhost::db::pool_options()
        .max_connections(64)
        .connect_with(bookhost::db::app_options(&options))
        .await
        .unwrap();
    let owner = bookhost::db::pool_options()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    let host = Host::new(pool, executors(), HostSettings::default());
    let operator_key = config.operator_key.clone().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = app(AppState::new(host.clone(), config));
    tokio::spawn(axum::serve(listener, router).into_future());
    OwnServer {
        base,
        operator_key,
        host,
        owner,
        database,
    }
}

/// 64 concurrent bookings of one slot by `executor`.
async fn hot_slot(host: &Host, tenant: TenantId, executor: &str, service: &str, day: u32) -> usize {
    let inputs = (0..64)
        .map(|i| json!({"service_id": service, "customer": format!("c{i}"), "start": format!("2030-09-{day:02}T10:00:00Z")}))
        .collect();
    let reports = concurrently(host, tenant, executor, inputs).await;
    assert_eq!(
        tally(&reports).get("ok"),
        Some(&1),
        "one winner per hot slot"
    );
    reports.iter().map(|r| r.replays.len()).sum()
}

async fn replays_in_audit(owner: &PgPool, executor: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM audit_records WHERE executor = $1 AND outcome = 'replayed'",
    )
    .bind(executor)
    .fetch_one(owner)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_an_operator_follows_replays_approves_and_finds_a_tampered_record() {
    let server = own_server(ServiceConfig {
        operator_key: Some(format!("operator-{}", uuid::Uuid::new_v4())),
        grant_policy: GrantPolicy {
            mode: GrantMode::RequireApproval,
            deny: vec![],
        },
        ..Default::default()
    })
    .await;
    let (base, host, owner) = (&server.base, &server.host, &server.owner);
    let tenant = bookhost::db::create_tenant(host.pool(), "Salon Verde")
        .await
        .unwrap();
    let key = bookhost::db::keys::issue(host.pool(), tenant)
        .await
        .unwrap();
    let service = create_service(host, tenant, "Haircut", 60).await;

    // The hot slot: the locking executor queues on its key and never
    // replays; the naive one collides under SERIALIZABLE. Whether a naive
    // round replays depends on timing, so rounds run until one does.
    let locked = hot_slot(host, tenant, CREATE_BOOKING_LOCKED, &service, 1).await;
    let mut naive = 0;
    for day in 2..14 {
        naive += hot_slot(host, tenant, CREATE_BOOKING_TS, &service, day).await;
        if naive > 0 {
            break;
        }
    }
    assert!(naive > 0, "no naive round replayed in 12");
    assert_eq!(
        replays_in_audit(owner, CREATE_BOOKING_TS).await,
        naive as i64
    );
    assert_eq!(
        replays_in_audit(owner, CREATE_BOOKING_LOCKED).await,
        locked as i64
    );
    assert_eq!(
        locked, 0,
        "the locking executor waits for its key instead of replaying"
    );

    let browser = Browser::start().await;
    browser.goto(&format!("{base}/console")).await;
    assert_eq!(browser.path().await, "/console/login");
    browser.screenshot("01-sign-in").await;
    browser
        .find("#key")
        .await
        .send_keys("not the key")
        .await
        .unwrap();
    browser.click("button[type=submit]").await;
    assert!(browser
        .text("p.error")
        .await
        .contains("unknown or revoked key"));
    browser
        .find("#key")
        .await
        .send_keys(&server.operator_key)
        .await
        .unwrap();
    browser.click("button[type=submit]").await;
    assert_eq!(browser.path().await, "/console/invocations");
    assert_eq!(browser.text("span.badge").await, "operator");
    assert_eq!(
        browser.all("#rows tr[data-outcome]").await.len(),
        100,
        "a page of the newest"
    );
    browser.screenshot("02-invocations").await;

    // Insights: the naive executor's replays, none for the locked one.
    browser
        .goto(&format!("{base}/console/insights?window=1h"))
        .await;
    let replays_of = |name: &str| format!(r#"#executor tr[data-name="{name}"]"#);
    let shown = browser
        .attribute(&replays_of(CREATE_BOOKING_TS), "data-replays")
        .await;
    assert_eq!(
        shown,
        Some(naive.to_string()),
        "the naive executor's replays"
    );
    let shown = browser
        .attribute(&replays_of(CREATE_BOOKING_LOCKED), "data-replays")
        .await;
    assert_eq!(
        shown,
        Some("0".to_owned()),
        "the locking executor's replays"
    );
    let tables = browser
        .attribute(r#"#table tr[data-name="bookings"]"#, "data-replays")
        .await;
    assert!(
        tables.unwrap().parse::<usize>().unwrap() > 0,
        "replays on the bookings table"
    );
    browser.screenshot("03-insights").await;

    // One replayed invocation: both (all) attempts and their calls.
    browser
        .goto(&format!(
            "{base}/console/invocations?executor={CREATE_BOOKING_TS}&outcome=replayed"
        ))
        .await;
    // Stop the live refresh, so the row clicked is not replaced under the click.
    browser.click("#live").await;
    browser.click("#rows tr[data-outcome] a").await;
    let invocation: uuid::Uuid = browser
        .path()
        .await
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let records = audit::search(
        owner,
        &audit::AuditFilter {
            invocation_id: Some(invocation),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        records.len() >= 2,
        "a replayed invocation has two attempts or more"
    );
    let sections = browser.all("section.attempt").await;
    assert_eq!(sections.len(), records.len());
    for record in &records {
        let section = format!("#attempt-{}", record.attempt);
        assert_eq!(
            browser.attribute(&section, "data-outcome").await.as_deref(),
            Some(record.outcome.as_str())
        );
        let calls = browser.all(&format!("{section} tr.call")).await.len();
        assert_eq!(
            calls,
            record.calls.as_array().unwrap().len(),
            "{section}'s calls"
        );
        if record.outcome == "replayed" {
            let reason = record.replay_reason.as_deref().expect("a replay says why");
            assert!(browser
                .text(&format!("{section} .reason"))
                .await
                .contains(&reason.replace('_', " ")));
        }
    }
    browser.screenshot("04-invocation").await;

    // A version pending approval: refused until approved in the console.
    let http = reqwest::Client::new();
    let uploaded: serde_json::Value = http
        .put(format!("{base}/v1/executors/{LIST_SERVICES}"))
        .bearer_auth(&key)
        .body(component(LIST_SERVICES))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        uploaded["grant"]["status"], "pending-approval",
        "{uploaded}"
    );
    let invoke = || async {
        let answer = http
            .post(format!("{base}/v1/executors/{LIST_SERVICES}/invoke"))
            .bearer_auth(&key)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        (
            answer.status().as_u16(),
            answer.json::<serde_json::Value>().await.unwrap(),
        )
    };
    let (_, refused) = invoke().await;
    assert_eq!(
        refused["error"]["error"], "forbidden",
        "nothing is granted before approval: {refused}"
    );
    browser.goto(&format!("{base}/console/executors")).await;
    browser
        .click(&format!(r#"a[href$="/{LIST_SERVICES}"]"#))
        .await;
    assert_eq!(
        browser
            .attribute("tr[data-version]", "data-status")
            .await
            .as_deref(),
        Some("pending-approval")
    );
    browser.screenshot("05-executor-pending").await;
    browser.click(r#"button[data-action="approve"]"#).await;
    browser.find(r#"tr[data-status="granted"]"#).await;
    browser.screenshot("06-executor-approved").await;
    let (status, answer) = invoke().await;
    assert_eq!(status, 200, "{answer}");

    // A record changed behind the host's back: the verification names it.
    audit::chain_pending(owner).await.unwrap();
    let tampered: i64 = sqlx::query_scalar(
        "UPDATE audit_records SET outcome = 'committed' WHERE id = \
         (SELECT record_id FROM audit_links WHERE tenant_id = $1 AND chain_seq = 3) RETURNING id",
    )
    .bind(tenant.0)
    .fetch_one(owner)
    .await
    .unwrap();
    browser.goto(&format!("{base}/console/audit")).await;
    let row = format!(r#"tr[data-tenant="{}"]"#, tenant.0);
    browser
        .click(&format!("{row} button[data-action=verify]"))
        .await;
    browser
        .find(&format!(r#"{row}[data-state="broken"]"#))
        .await;
    let broken = browser.text(&format!("{row} td.broken")).await;
    assert!(broken.contains("position 3"), "{broken}");
    assert!(
        broken.contains(&format!("audit record {tampered}")),
        "{broken}"
    );
    assert!(broken.contains("modified"), "{broken}");
    browser.screenshot("07-audit").await;
    browser.close().await;
    drop_database(&server.database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_tenant_key_sees_only_its_tenant() {
    let server = start_server(HostSettings::default(), ServiceConfig::default()).await;
    let base = server.base();
    let a = server.tenant_with(&[CREATE_SERVICE]).await;
    let b = server.tenant_with(&[CREATE_SERVICE]).await;
    let a_invocation = an_invocation(&server, &a, "a's").await;
    let b_invocation = an_invocation(&server, &b, "b's").await;

    let browser = Browser::start().await;
    browser.goto(&format!("{base}/console/login")).await;
    browser.find("#key").await.send_keys(&b.key).await.unwrap();
    browser.click("button[type=submit]").await;
    assert!(browser.text("span.badge").await.starts_with("tenant"));
    let source = browser.source().await;
    assert!(
        source.contains(&b_invocation),
        "B's own invocation is listed"
    );
    assert!(!source.contains(&a_invocation) && !source.contains(&a.id.0.to_string()));
    assert!(
        browser.all("select[name=tenant]").await.is_empty(),
        "no tenant filter for a tenant"
    );
    // The list is live: an invocation made now appears without a reload.
    let newer = an_invocation(&server, &b, "b's second").await;
    let mut listed = false;
    for _ in 0..100 {
        if browser.source().await.contains(&newer) {
            listed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(listed, "the live list shows a new invocation within 10 s");
    browser.screenshot("08-tenant-view").await;
    browser
        .goto(&format!(
            "{base}/console/invocations/{}/{a_invocation}",
            a.id.0
        ))
        .await;
    assert_eq!(browser.text("h1").await, "Not found");
    browser.goto(&format!("{base}/console/executors")).await;
    let links = browser.all("table.list a").await;
    assert_eq!(links.len(), 1, "B's one executor");
    assert!(!browser.source().await.contains(&a.id.0.to_string()));
    browser.goto(&format!("{base}/console/audit")).await;
    assert!(browser
        .all(&format!(r#"tr[data-tenant="{}"]"#, a.id.0))
        .await
        .is_empty());
    assert_eq!(browser.all("#chains tbody tr").await.len(), 1);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_whose_links_were_all_deleted_is_not_called_intact() {
    let server = start_server(HostSettings::default(), ServiceConfig::default()).await;
    let base = server.base();
    let tenant = server.tenant_with(&[CREATE_SERVICE]).await;
    an_invocation(&server, &tenant, "one").await;
    an_invocation(&server, &tenant, "two").await;
    // The chainer's mark passes a record once every transaction that could
    // still hold an earlier id has ended: passes, as its loop makes, until
    // it has passed this tenant's records (other tests keep transactions open).
    for _ in 0..100 {
        audit::chain_pending(&server.pool).await.unwrap();
        let passed: bool = sqlx::query_scalar(
            "SELECT (SELECT settled_below FROM audit_chainer) > \
             (SELECT max(id) FROM audit_records WHERE tenant_id = $1)",
        )
        .bind(tenant.id.0)
        .fetch_one(&server.pool)
        .await
        .unwrap();
        if passed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let operator = sign_in(base, &server.operator_key).await.unwrap();
    let (_, _, page) = get(base, Some(&operator), "/console/audit").await;
    let csrf = csrf_of(&page);
    let id = tenant.id.0.to_string();
    let verify = [("csrf", csrf.as_str()), ("tenant", id.as_str())];
    let state = |page: &str| {
        let row = page
            .find(&format!(r#"data-tenant="{id}""#))
            .expect("the tenant's row");
        let at = page[row..].find("data-state=\"").unwrap() + row + 12;
        page[at..].split('"').next().unwrap().to_owned()
    };
    let (status, _) = post(base, &operator, "/console/audit/verify", None, &verify).await;
    assert_eq!(status, 303);
    let (_, _, page) = get(base, Some(&operator), "/console/audit").await;
    assert_eq!(state(&page), "intact");
    // Every link of the tenant deleted behind the host's back.
    sqlx::query("DELETE FROM audit_links WHERE tenant_id = $1")
        .bind(tenant.id.0)
        .execute(&server.pool)
        .await
        .unwrap();
    let (status, _) = post(base, &operator, "/console/audit/verify", None, &verify).await;
    assert_eq!(status, 303);
    let (_, _, page) = get(base, Some(&operator), "/console/audit").await;
    assert_eq!(state(&page), "broken");
    assert!(
        page.contains("2 record(s) the chainer has passed are in no link"),
        "{page}"
    );
}
