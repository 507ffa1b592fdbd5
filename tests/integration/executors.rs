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
    assert_eq!(ALL.len(), 10, "{ALL:?}");
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
