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
    assert_eq!(ALL.len(), 29, "{ALL:?}");
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
        // Built from the current contract, but for the fixture built from
        // the previous one.
        let version = if *name == FIXTURE_WIT_PREVIOUS {
            "0.1.0"
        } else {
            "0.1.1"
        };
        assert!(
            imports.iter().any(|i| i.ends_with(&format!("@{version}"))),
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

/// A booking of a fresh 30-minute service for Ada, and its id.
async fn booked(host: &bookhost::Host, tenant: TenantId, start: &str) -> (String, String) {
    let service = bookhost_tests::create_service(host, tenant, "Haircut", 30).await;
    let input = json!({"service_id": service, "customer": "Ada", "start": start});
    let report = invoke(host, tenant, CREATE_BOOKING, input).await;
    let id = ok_output(&report)["booking"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (service, id)
}

async fn status_of(booking: &str) -> String {
    sqlx::query_scalar("SELECT status FROM bookings WHERE id = $1::uuid")
        .bind(booking)
        .fetch_one(&owner())
        .await
        .unwrap()
}

#[tokio::test]
async fn hold_slot() {
    registered(HOLD_SLOT);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let service = bookhost_tests::create_service(&host, tenant, "Haircut", 30).await;
    let input = json!({"service_id": service, "customer": "Ada", "start": "2031-03-03T10:00:00Z", "minutes": 5});
    let report = invoke(&host, tenant, HOLD_SLOT, input).await;
    assert_eq!(ok_output(&report)["hold"]["customer"], "Ada");
    assert_eq!(rows("holds", tenant).await, 1);
}

#[tokio::test]
async fn confirm_booking() {
    registered(CONFIRM_BOOKING);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let (_, id) = booked(&host, tenant, "2031-03-03T10:00:00Z").await;
    sqlx::query("UPDATE bookings SET status = 'pending' WHERE id = $1::uuid")
        .bind(&id)
        .execute(&owner())
        .await
        .unwrap();
    let report = invoke(&host, tenant, CONFIRM_BOOKING, json!({"booking_id": id})).await;
    assert_eq!(ok_output(&report)["booking"]["status"], "confirmed");
    assert_eq!(status_of(&id).await, "confirmed");
}

#[tokio::test]
async fn cancel_booking() {
    registered(CANCEL_BOOKING);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let (_, id) = booked(&host, tenant, "2031-03-03T10:00:00Z").await;
    let report = invoke(&host, tenant, CANCEL_BOOKING, json!({"booking_id": id})).await;
    assert_eq!(ok_output(&report)["booking"]["status"], "cancelled");
    assert_eq!(status_of(&id).await, "cancelled");
}

#[tokio::test]
async fn reschedule_booking() {
    registered(RESCHEDULE_BOOKING);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let (_, id) = booked(&host, tenant, "2031-03-03T10:00:00Z").await;
    let input = json!({"booking_id": id, "start": "2031-03-03T10:15:00Z"});
    let report = invoke(&host, tenant, RESCHEDULE_BOOKING, input).await;
    let output = ok_output(&report);
    assert_eq!(output["booking"]["starts_at"], "2031-03-03T10:15:00Z");
    assert_eq!(output["previous"]["starts_at"], "2031-03-03T10:00:00Z");
    assert_eq!(rows("bookings", tenant).await, 1);
}

#[tokio::test]
async fn set_opening_hours() {
    registered(SET_OPENING_HOURS);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let input = json!({
        "weekly": [{"weekday": 1, "opens": "09:00", "closes": "12:00"},
                   {"weekday": 1, "opens": "13:00", "closes": "17:00"}],
        "exceptions": [{"day": "2031-12-25", "closed": true}]
    });
    let report = invoke(&host, tenant, SET_OPENING_HOURS, input).await;
    assert_eq!(ok_output(&report), &json!({"weekly": 2, "exceptions": 1}));
    assert_eq!(rows("opening_hours", tenant).await, 2);
    assert_eq!(rows("hours_exceptions", tenant).await, 1);
}

#[tokio::test]
async fn update_service() {
    registered(UPDATE_SERVICE);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let service = bookhost_tests::create_service(&host, tenant, "Yoga", 60).await;
    let input = json!({"service_id": service, "capacity": 8, "buffer_after_minutes": 15});
    let report = invoke(&host, tenant, UPDATE_SERVICE, input).await;
    assert_eq!(ok_output(&report)["service"]["capacity"], 8);
    assert_eq!(ok_output(&report)["service"]["buffer_after_minutes"], 15);
}

#[tokio::test]
async fn create_resource() {
    registered(CREATE_RESOURCE);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let service = bookhost_tests::create_service(&host, tenant, "Massage", 60).await;
    let input = json!({"name": "Studio 1", "kind": "room", "time_zone": "Europe/Paris", "service_ids": [service]});
    let report = invoke(&host, tenant, CREATE_RESOURCE, input).await;
    assert_eq!(ok_output(&report)["resource"]["kind"], "room");
    assert_eq!(ok_output(&report)["services"], 1);
    assert_eq!(rows("service_resources", tenant).await, 1);
}

/// A component built from the previous contract (0.1.0) runs unchanged on
/// this host (0.1.1): it imports the old interface names, and wasmtime's
/// linker resolves them to the compatible newer ones.
#[tokio::test]
async fn fixture_wit_previous() {
    registered(FIXTURE_WIT_PREVIOUS);
    let bytes = std::fs::read(components_dir().join("fixture-wit-previous.wasm")).unwrap();
    let imports = bookhost::runtime::imports::component_imports(&bytes).unwrap();
    assert!(
        imports
            .iter()
            .any(|i| i == "bookhost:executor/transaction@0.1.0"),
        "{imports:?}"
    );
    assert!(
        !imports.iter().any(|i| i.contains("availability")),
        "{imports:?}"
    );
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let report = invoke(&host, tenant, FIXTURE_WIT_PREVIOUS, json!({"name": "Old"})).await;
    assert_eq!(ok_output(&report)["found"], 1);
    assert_eq!(services_of(tenant).await, 1);
}

#[tokio::test]
async fn find_slots() {
    registered(FIND_SLOTS);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let service = bookhost_tests::create_service(&host, tenant, "Haircut", 60).await;
    let input = json!({"service_id": service, "from": "2031-03-03T00:00:00Z", "to": "2031-03-04T00:00:00Z"});
    let report = invoke(&host, tenant, FIND_SLOTS, input).await;
    // No hours set: open all day, a slot every hour (UTC, the default zone).
    let slots = ok_output(&report)["slots"].as_array().unwrap().clone();
    assert_eq!(slots.len(), 24);
    assert_eq!(slots[10]["starts_at"], "2031-03-03T10:00:00Z");
    assert_eq!(slots[10]["seats_left"], 1);
}

#[tokio::test]
async fn hold_slot_ts() {
    registered(HOLD_SLOT_TS);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let service = bookhost_tests::create_service(&host, tenant, "Haircut", 30).await;
    let input = json!({"service_id": service, "customer": "Ada", "start": "2031-03-03T10:00:00Z"});
    let report = invoke(&host, tenant, HOLD_SLOT_TS, input.clone()).await;
    assert_eq!(ok_output(&report)["hold"]["customer"], "Ada");
    let again = invoke(&host, tenant, HOLD_SLOT_TS, input).await;
    assert_eq!(user_error_code(&again), Some("slot_held"), "{again:?}");
    assert_eq!(rows("holds", tenant).await, 1);
}

#[tokio::test]
async fn confirm_booking_ts() {
    registered(CONFIRM_BOOKING_TS);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let (_, id) = booked(&host, tenant, "2031-03-03T10:00:00Z").await;
    sqlx::query("UPDATE bookings SET status = 'pending' WHERE id = $1::uuid")
        .bind(&id)
        .execute(&owner())
        .await
        .unwrap();
    let report = invoke(&host, tenant, CONFIRM_BOOKING_TS, json!({"booking_id": id})).await;
    assert_eq!(ok_output(&report)["booking"]["status"], "confirmed");
    let again = invoke(&host, tenant, CONFIRM_BOOKING_TS, json!({"booking_id": id})).await;
    assert_eq!(user_error_code(&again), Some("already_confirmed"));
    assert_eq!(status_of(&id).await, "confirmed");
}

#[tokio::test]
async fn cancel_booking_ts() {
    registered(CANCEL_BOOKING_TS);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let (_, id) = booked(&host, tenant, "2031-03-03T10:00:00Z").await;
    let report = invoke(&host, tenant, CANCEL_BOOKING_TS, json!({"booking_id": id})).await;
    assert_eq!(ok_output(&report)["booking"]["status"], "cancelled");
    assert_eq!(status_of(&id).await, "cancelled");
}

#[tokio::test]
async fn reschedule_booking_ts() {
    registered(RESCHEDULE_BOOKING_TS);
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let (service, id) = booked(&host, tenant, "2031-03-03T10:00:00Z").await;
    // Another booking at 11:00 is in the way of a move there.
    let other = json!({"service_id": service, "customer": "Bob", "start": "2031-03-03T11:00:00Z"});
    ok_output(&invoke(&host, tenant, CREATE_BOOKING, other).await);
    let blocked = json!({"booking_id": id, "start": "2031-03-03T11:00:00Z"});
    let report = invoke(&host, tenant, RESCHEDULE_BOOKING_TS, blocked).await;
    assert_eq!(user_error_code(&report), Some("slot_taken"), "{report:?}");
    let input = json!({"booking_id": id, "start": "2031-03-03T10:15:00Z"});
    let report = invoke(&host, tenant, RESCHEDULE_BOOKING_TS, input).await;
    assert_eq!(
        ok_output(&report)["booking"]["starts_at"],
        "2031-03-03T10:15:00Z"
    );
    assert_eq!(rows("bookings", tenant).await, 2);
}
