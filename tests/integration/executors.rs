//! One test per executor built from plugins/, named after it: it describes
//! itself as that name and does its one thing. `foreach_executor!` (from
//! tests/build.rs) makes this file fail to compile when an executor crate
//! is added without a test here.

use bookhost::{InvocationOutcome, TenantId};
use bookhost_tests::executors::*;
use bookhost_tests::*;
use serde_json::json;

/// A use of `self::$name`: compiles only if this module has a test so named.
macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
bookhost_tests::foreach_executor!(assert_test_exists);

/// The executor is registered under its constant's name.
fn registered(name: &str) {
    let loaded = executors()
        .get(name)
        .unwrap_or_else(|| panic!("{name} is not in plugins/components: run plugins/build.sh"));
    assert_eq!(loaded.name.as_str(), name);
    assert!(!loaded.description.trim().is_empty());
}

async fn rows(table: &str, tenant: TenantId) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {table} WHERE tenant_id = $1"
    ))
    .bind(tenant.0)
    .fetch_one(&owner())
    .await
    .unwrap()
}

#[test]
fn every_executor_has_a_constant() {
    assert_eq!(ALL.len(), 16, "{ALL:?}");
    for name in ALL {
        registered(name);
    }
}

#[tokio::test]
async fn create_booking() {
    registered(CREATE_BOOKING);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let service = bookhost_tests::create_service(&host, tenant, "Haircut", 30).await;
    let input = json!({"service_id": service, "customer": "Ada", "start": "2031-03-03T10:00:00Z"});
    let report = invoke(&host, tenant, CREATE_BOOKING, input).await;
    assert_eq!(ok_output(&report)["booking"]["customer"], "Ada");
    assert_eq!(rows("bookings", tenant).await, 1);
}

#[tokio::test]
async fn create_booking_locked() {
    registered(CREATE_BOOKING_LOCKED);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let service = bookhost_tests::create_service(&host, tenant, "Haircut", 30).await;
    let input = json!({"service_id": service, "customer": "Ada", "start": "2031-03-03T10:00:00Z"});
    let report = invoke(&host, tenant, CREATE_BOOKING_LOCKED, input).await;
    ok_output(&report);
    assert_eq!(report.attempts, 1);
    assert_eq!(rows("bookings", tenant).await, 1);
}

#[tokio::test]
async fn create_service() {
    registered(CREATE_SERVICE);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let input = json!({"name": "Trim", "duration_minutes": 15});
    let report = invoke(&host, tenant, CREATE_SERVICE, input).await;
    assert_eq!(ok_output(&report)["service"]["duration_minutes"], 15);
    assert_eq!(services_of(tenant).await, 1);
}

#[tokio::test]
async fn delete_service() {
    registered(DELETE_SERVICE);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let service = bookhost_tests::create_service(&host, tenant, "Gone", 30).await;
    let report = invoke(
        &host,
        tenant,
        DELETE_SERVICE,
        json!({"service_id": service}),
    )
    .await;
    assert_eq!(ok_output(&report)["deleted"], service);
    assert_eq!(services_of(tenant).await, 0);
}

#[tokio::test]
async fn list_services() {
    registered(LIST_SERVICES);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    bookhost_tests::create_service(&host, tenant, "Trim", 15).await;
    bookhost_tests::create_service(&host, tenant, "Cut", 30).await;
    let report = invoke(&host, tenant, LIST_SERVICES, json!({})).await;
    let names: Vec<&serde_json::Value> = ok_output(&report)["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["name"])
        .collect();
    assert_eq!(names, [&json!("Cut"), &json!("Trim")]);
    assert_eq!(services_of(tenant).await, 2);
}

#[tokio::test]
async fn request_appointment() {
    registered(REQUEST_APPOINTMENT);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let input = json!({"customer": "Ada", "pet": "Rex"});
    let report = invoke(&host, tenant, REQUEST_APPOINTMENT, input).await;
    ok_output(&report);
    assert_eq!(rows("booking_requests", tenant).await, 1);
}

#[tokio::test]
async fn update_page_section() {
    registered(UPDATE_PAGE_SECTION);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let input = json!({"page": "home", "section": {"id": "hero", "kind": "banner"}});
    let report = invoke(&host, tenant, UPDATE_PAGE_SECTION, input).await;
    assert_eq!(ok_output(&report), &json!({"page": "home", "sections": 1}));
    assert_eq!(rows("storefront_pages", tenant).await, 1);
}

#[tokio::test]
async fn fixture_bench() {
    registered(FIXTURE_BENCH);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let report = invoke(
        &host,
        tenant,
        FIXTURE_BENCH,
        json!({"now_calls": 3, "queries": 2}),
    )
    .await;
    let output = ok_output(&report);
    assert_eq!(output["rows"], 0);
}

#[tokio::test]
async fn fixture_faults() {
    registered(FIXTURE_FAULTS);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let input = json!({"mode": "trap-after-write", "name": "never"});
    let report = invoke(&host, tenant, FIXTURE_FAULTS, input).await;
    assert!(
        matches!(report.outcome, InvocationOutcome::Trap { .. }),
        "{report:?}"
    );
    assert_eq!(services_of(tenant).await, 0);
}

#[tokio::test]
async fn fixture_hostile() {
    registered(FIXTURE_HOSTILE);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let input = json!({"mode": "many-locks", "count": 1000});
    let report = invoke(&host, tenant, FIXTURE_HOSTILE, input).await;
    assert!(
        matches!(&report.outcome, InvocationOutcome::LimitExceeded { limit, .. } if limit == "locks"),
        "{report:?}"
    );
}

/// The TypeScript and Python create-booking answer like the Rust one.
async fn books_like_create_booking(executor: &str) {
    registered(executor);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let service = bookhost_tests::create_service(&host, tenant, "Haircut", 30).await;
    let input = json!({"service_id": service, "customer": "Ada", "start": "2031-03-03T10:00:00Z"});
    let report = invoke(&host, tenant, executor, input.clone()).await;
    let booking = &ok_output(&report)["booking"];
    assert_eq!(booking["customer"], "Ada");
    assert_eq!(booking["starts_at"], "2031-03-03T10:00:00Z");
    assert_eq!(booking["ends_at"], "2031-03-03T10:30:00Z");
    assert_eq!(booking["status"], "confirmed");
    let again = invoke(&host, tenant, executor, input).await;
    assert_eq!(user_error_code(&again), Some("slot_taken"), "{again:?}");
    let InvocationOutcome::UserError { body } = &again.outcome else {
        unreachable!()
    };
    assert_eq!(
        body["suggested_starts"],
        json!([
            "2031-03-03T10:30:00Z",
            "2031-03-03T11:00:00Z",
            "2031-03-03T11:30:00Z"
        ])
    );
    let missing = json!({"service_id": uuid::Uuid::new_v4(), "customer": "Ada", "start": "2031-03-03T10:00:00Z"});
    let report = invoke(&host, tenant, executor, missing).await;
    assert_eq!(user_error_code(&report), Some("service_not_found"));
    assert_eq!(rows("bookings", tenant).await, 1);
}

#[tokio::test]
async fn create_booking_ts() {
    books_like_create_booking(CREATE_BOOKING_TS).await;
}

#[tokio::test]
async fn create_booking_py() {
    books_like_create_booking(CREATE_BOOKING_PY).await;
}

#[tokio::test]
async fn delete_service_ts() {
    registered(DELETE_SERVICE_TS);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let service = bookhost_tests::create_service(&host, tenant, "Gone", 30).await;
    let input = json!({"service_id": service});
    let report = invoke(&host, tenant, DELETE_SERVICE_TS, input.clone()).await;
    assert_eq!(ok_output(&report)["deleted"], service);
    assert_eq!(services_of(tenant).await, 0);
    let again = invoke(&host, tenant, DELETE_SERVICE_TS, input).await;
    assert_eq!(user_error_code(&again), Some("service_not_found"));

    let kept = bookhost_tests::create_service(&host, tenant, "Kept", 30).await;
    let booking = json!({"service_id": kept, "customer": "Ada", "start": "2031-03-03T10:00:00Z"});
    ok_output(&invoke(&host, tenant, CREATE_BOOKING, booking).await);
    let refused = invoke(
        &host,
        tenant,
        DELETE_SERVICE_TS,
        json!({"service_id": kept}),
    )
    .await;
    let InvocationOutcome::UserError { body } = &refused.outcome else {
        panic!("{refused:?}")
    };
    assert_eq!(body["error"], "service_has_upcoming_bookings");
    assert_eq!(body["upcoming"], 1);
    assert_eq!(services_of(tenant).await, 1);
}

#[tokio::test]
async fn request_appointment_ts() {
    registered(REQUEST_APPOINTMENT_TS);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let input = json!({"customer": "Ada", "pet": "Rex", "preferred_start": "2031-03-03T10:00:00Z"});
    let report = invoke(&host, tenant, REQUEST_APPOINTMENT_TS, input.clone()).await;
    let request = &ok_output(&report)["request"];
    assert_eq!(request["status"], "pending");
    let again = invoke(&host, tenant, REQUEST_APPOINTMENT_TS, input).await;
    let InvocationOutcome::UserError { body } = &again.outcome else {
        panic!("{again:?}")
    };
    assert_eq!(body["error"], "pending_request_exists");
    assert_eq!(body["request_id"], request["id"]);
    assert_eq!(rows("booking_requests", tenant).await, 1);
}

#[tokio::test]
async fn update_page_section_ts() {
    registered(UPDATE_PAGE_SECTION_TS);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let first = json!({"page": "home", "section": {"id": "hero", "kind": "banner"}});
    let report = invoke(&host, tenant, UPDATE_PAGE_SECTION_TS, first.clone()).await;
    assert_eq!(ok_output(&report), &json!({"page": "home", "sections": 1}));
    let second = json!({"page": "home", "section": {"id": "about"}});
    let report = invoke(&host, tenant, UPDATE_PAGE_SECTION_TS, second).await;
    assert_eq!(ok_output(&report), &json!({"page": "home", "sections": 2}));
    let elsewhere = json!({"page": "shop", "section": {"id": "hero"}});
    let report = invoke(&host, tenant, UPDATE_PAGE_SECTION_TS, elsewhere).await;
    let InvocationOutcome::UserError { body } = &report.outcome else {
        panic!("{report:?}")
    };
    assert_eq!(body["error"], "duplicate_section_id");
    assert_eq!(body["page"], "home");
    assert_eq!(rows("storefront_pages", tenant).await, 1);
}

#[tokio::test]
async fn fixture_hostile_ts() {
    registered(FIXTURE_HOSTILE_TS);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let report = invoke(&host, tenant, FIXTURE_HOSTILE_TS, json!({"mode": "throw"})).await;
    assert!(
        matches!(report.outcome, InvocationOutcome::Trap { .. }),
        "{report:?}"
    );
    assert_eq!(services_of(tenant).await, 0);
}

/// Every built component, whatever its language, imports bookhost's
/// interfaces and nothing else (plugins/build.sh checks the same).
#[test]
fn every_component_imports_only_bookhost_interfaces() {
    use bookhost::runtime::imports::{component_imports, foreign_imports};
    for name in ALL {
        let path = components_dir().join(format!("{name}.wasm"));
        let bytes = std::fs::read(&path).unwrap();
        let imports = component_imports(&bytes).unwrap();
        assert!(
            imports.contains(&"bookhost:executor/transaction@0.1.0".to_string()),
            "{name}: {imports:?}"
        );
        assert_eq!(
            foreign_imports(&bytes).unwrap(),
            Vec::<String>::new(),
            "{name}"
        );
    }
    // The check sees WASI, the import a JavaScript or Python toolchain adds
    // unless told not to.
    let wasi = wat::parse_str(
        r#"(component
             (import "bookhost:executor/context@0.1.0" (instance))
             (import "wasi:cli/environment@0.2.3" (instance)))"#,
    )
    .unwrap();
    assert_eq!(
        foreign_imports(&wasi).unwrap(),
        vec!["wasi:cli/environment@0.2.3".to_string()]
    );
}
