//! The four seed races, 64 concurrent naive executors per round, 20 rounds
//! each: the invariants of DESIGN.md hold exactly, for the Rust executors and
//! their TypeScript ports (and the Python create-booking); and a sensitivity
//! control, in both languages, that shows the page-section race is detected
//! when the discipline is off.

use std::time::Instant;

use bookhost::db::errors::RetryReason;
use bookhost::{DisciplineSettings, HostSettings, InvocationOutcome, InvocationReport};
use bookhost_tests::executors::*;
use bookhost_tests::*;
use serde_json::{json, Value};

const CONCURRENCY: usize = 64;
const ROUNDS: usize = 20;

fn attempts(reports: &[InvocationReport]) -> (u32, u32) {
    let total = reports.iter().map(|r| r.attempts).sum();
    let max = reports.iter().map(|r| r.attempts).max().unwrap_or(0);
    (total, max)
}

fn assert_no_exhaustion(reports: &[InvocationReport]) {
    for report in reports {
        assert!(
            !matches!(
                report.outcome,
                InvocationOutcome::RetriesExhausted { .. }
                    | InvocationOutcome::HostFailure { .. }
                    | InvocationOutcome::Trap { .. }
                    | InvocationOutcome::Timeout { .. }
            ),
            "unexpected outcome {:?}",
            report.outcome
        );
    }
}

fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn micros(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_micros()
}

/// Active bookings of a service as (start, end) in microseconds.
async fn active_bookings(
    pool: &sqlx::PgPool,
    tenant: bookhost::TenantId,
    service: &str,
) -> Vec<(i64, i64)> {
    let rows: Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT starts_at, ends_at FROM bookings WHERE tenant_id = $1 AND service_id = $2::uuid \
         AND status IN ('pending', 'confirmed') ORDER BY starts_at",
    )
    .bind(tenant.0)
    .bind(service)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(s, e)| (s.timestamp_micros(), e.timestamp_micros()))
        .collect()
}

async fn hot_slot_rounds(executor: &str) {
    let host = host(CONCURRENCY as u32).await;
    let tenant = tenant(&owner()).await;
    let (mut all_attempts, mut worst, mut wall) = (0, 0, std::time::Duration::ZERO);
    for round in 0..ROUNDS {
        let service = create_service(&host, tenant, &format!("hot-{round}"), 60).await;
        let start = "2030-03-04T10:00:00Z";
        let inputs = (0..CONCURRENCY)
            .map(|i| json!({"service_id": service, "customer": format!("c{i}"), "start": start}))
            .collect();
        let began = Instant::now();
        let reports = concurrently(&host, tenant, executor, inputs).await;
        wall += began.elapsed();
        assert_no_exhaustion(&reports);
        let counts = tally(&reports);
        assert_eq!(counts.get("ok"), Some(&1), "round {round}: {counts:?}");
        assert_eq!(
            counts.get("user_error:slot_taken"),
            Some(&(CONCURRENCY - 1)),
            "round {round}: {counts:?}"
        );

        let booked = active_bookings(&owner(), tenant, &service).await;
        assert_eq!(
            booked,
            vec![(micros(start), micros(start) + 3_600_000_000)],
            "round {round}"
        );
        // Every loser's suggestions are really free: none overlaps an active booking.
        for report in &reports {
            if let InvocationOutcome::UserError { body } = &report.outcome {
                let suggested = body["suggested_starts"]
                    .as_array()
                    .expect("suggested_starts");
                assert!(!suggested.is_empty() && suggested.len() <= 3, "{body}");
                for s in suggested {
                    let s = micros(s.as_str().unwrap());
                    let e = s + 3_600_000_000;
                    assert!(
                        booked.iter().all(|(bs, be)| e <= *bs || s >= *be),
                        "suggested {} overlaps",
                        rfc3339(s)
                    );
                }
            }
        }
        let (total, max) = attempts(&reports);
        all_attempts += total;
        worst = worst.max(max);
        // The host queues writers of one exclusion key, so they never wait
        // on each other's constraint checks in deadlock cycles (DESIGN.md, trap 2).
        let deadlocks = reports
            .iter()
            .flat_map(|r| &r.replays)
            .filter(|r| **r == RetryReason::Deadlock)
            .count();
        assert_eq!(
            deadlocks, 0,
            "round {round}: deadlock replays on the exclusion constraint"
        );
    }
    println!(
        "{executor} hot slot: {ROUNDS} rounds x {CONCURRENCY} concurrent: every round 1 ok + {} slot_taken; \
         attempts {all_attempts} for {} invocations ({} replays, {:.1} per round, worst invocation {worst} attempts); \
         mean wall per round {:.1} ms",
        CONCURRENCY - 1,
        ROUNDS * CONCURRENCY,
        all_attempts as usize - ROUNDS * CONCURRENCY,
        (all_attempts as usize - ROUNDS * CONCURRENCY) as f64 / ROUNDS as f64,
        wall.as_secs_f64() * 1000.0 / ROUNDS as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_create_booking_hot_slot_never_double_books() {
    hot_slot_rounds(CREATE_BOOKING).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_create_booking_locked_hot_slot_never_double_books() {
    hot_slot_rounds(CREATE_BOOKING_LOCKED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_create_booking_ts_hot_slot_never_double_books() {
    hot_slot_rounds(CREATE_BOOKING_TS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_create_booking_py_hot_slot_never_double_books() {
    hot_slot_rounds(CREATE_BOOKING_PY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_delete_service_never_orphans_upcoming_bookings() {
    delete_service_rounds(CREATE_BOOKING, DELETE_SERVICE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_delete_service_ts_never_orphans_upcoming_bookings() {
    delete_service_rounds(CREATE_BOOKING_TS, DELETE_SERVICE_TS).await;
}

async fn delete_service_rounds(create_booking: &'static str, delete_service: &'static str) {
    let host = host(CONCURRENCY as u32).await;
    let tenant = tenant(&owner()).await;
    let (mut deleted_rounds, mut kept_rounds, mut all_attempts) = (0, 0, 0);
    for round in 0..ROUNDS {
        let service = create_service(&host, tenant, &format!("doomed-{round}"), 30).await;
        // Half book distinct future slots, half delete the service, interleaved.
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|i| {
                let host = host.clone();
                let service = service.clone();
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        let slot = i / 2;
                        let start = format!("2031-01-{:02}T{:02}:00:00Z", 1 + slot % 28, 9 + slot / 28);
                        let input = json!({"service_id": service, "customer": format!("c{i}"), "start": start});
                        (create_booking, invoke(&host, tenant, create_booking, input).await)
                    } else {
                        (delete_service, invoke(&host, tenant, delete_service, json!({"service_id": service})).await)
                    }
                })
            })
            .collect();
        let mut reports = Vec::new();
        for task in tasks {
            reports.push(task.await.unwrap());
        }
        let plain: Vec<_> = reports.iter().map(|(_, r)| r.clone()).collect();
        assert_no_exhaustion(&plain);
        all_attempts += attempts(&plain).0;
        let ok_of = |kind: &str| {
            reports
                .iter()
                .filter(|(k, r)| *k == kind && r.outcome.kind() == "ok")
                .count()
        };
        let (ok_bookings, ok_deletes) = (ok_of(create_booking), ok_of(delete_service));
        for (kind, report) in &reports {
            if report.outcome.kind() != "ok" {
                let code = user_error_code(report)
                    .unwrap_or_else(|| panic!("{kind}: {:?}", report.outcome));
                let expected: &[&str] = if *kind == create_booking {
                    &["service_not_found"]
                } else {
                    &["service_has_upcoming_bookings", "service_not_found"]
                };
                assert!(expected.contains(&code), "{kind} answered {code}");
            }
        }
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM services WHERE tenant_id = $1 AND id = $2::uuid)",
        )
        .bind(tenant.0)
        .bind(&service)
        .fetch_one(&owner())
        .await
        .unwrap();
        let booked = active_bookings(&owner(), tenant, &service).await.len();
        if exists {
            kept_rounds += 1;
            assert_eq!(
                ok_deletes, 0,
                "round {round}: a delete said ok but the service exists"
            );
            assert_eq!(booked, ok_bookings, "round {round}");
            assert!(ok_bookings >= 1, "round {round}: kept without any booking");
        } else {
            deleted_rounds += 1;
            assert_eq!(ok_deletes, 1, "round {round}");
            assert_eq!(
                ok_bookings, 0,
                "round {round}: a booking said ok but its service is gone"
            );
            assert_eq!(booked, 0, "round {round}");
        }
    }
    println!(
        "{delete_service} vs {create_booking}: {ROUNDS} rounds x {CONCURRENCY} concurrent: service deleted (no bookings) in \
         {deleted_rounds} rounds, kept with bookings in {kept_rounds}; never both; attempts {all_attempts} for {} invocations",
        ROUNDS * CONCURRENCY
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_request_appointment_one_pending_per_pet() {
    request_appointment_rounds(REQUEST_APPOINTMENT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_request_appointment_ts_one_pending_per_pet() {
    request_appointment_rounds(REQUEST_APPOINTMENT_TS).await;
}

async fn request_appointment_rounds(executor: &str) {
    let host = host(CONCURRENCY as u32).await;
    let tenant = tenant(&owner()).await;
    let mut all_attempts = 0;
    for round in 0..ROUNDS {
        let pet = format!("rex-{round}");
        let inputs = (0..CONCURRENCY)
            .map(|i| json!({"customer": format!("owner{i}"), "pet": pet, "preferred_start": "2030-05-01T10:00:00Z"}))
            .collect();
        let reports = concurrently(&host, tenant, executor, inputs).await;
        assert_no_exhaustion(&reports);
        let counts = tally(&reports);
        assert_eq!(counts.get("ok"), Some(&1), "round {round}: {counts:?}");
        assert_eq!(
            counts.get("user_error:pending_request_exists"),
            Some(&(CONCURRENCY - 1)),
            "round {round}: {counts:?}"
        );
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM booking_requests WHERE tenant_id = $1 AND pet = $2 AND status = 'pending'",
        )
        .bind(tenant.0)
        .bind(&pet)
        .fetch_one(&owner())
        .await
        .unwrap();
        assert_eq!(pending, 1, "round {round}");
        all_attempts += attempts(&reports).0;
    }
    println!(
        "{executor}: {ROUNDS} rounds x {CONCURRENCY} concurrent for one pet: every round 1 ok + {} \
         pending_request_exists, 1 pending row; attempts {all_attempts} for {} invocations",
        CONCURRENCY - 1,
        ROUNDS * CONCURRENCY
    );
}

/// How often each section id occurs across a tenant's pages.
async fn section_occurrences(
    pool: &sqlx::PgPool,
    tenant: bookhost::TenantId,
    section: &str,
) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM storefront_pages p, jsonb_array_elements(p.config -> 'sections') s \
         WHERE p.tenant_id = $1 AND s ->> 'id' = $2",
    )
    .bind(tenant.0)
    .bind(section)
    .fetch_one(pool)
    .await
    .unwrap()
}

fn section_inputs(round: usize, pages: usize) -> (String, Vec<Value>) {
    let section = format!("hero-{round}");
    let inputs = (0..CONCURRENCY)
        .map(|i| json!({"page": format!("page-{}", i % pages), "section": {"id": section, "kind": "banner", "by": i}}))
        .collect();
    (section, inputs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_update_page_section_ids_stay_unique() {
    page_section_rounds(UPDATE_PAGE_SECTION).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_update_page_section_ts_ids_stay_unique() {
    page_section_rounds(UPDATE_PAGE_SECTION_TS).await;
}

async fn page_section_rounds(executor: &str) {
    let host = host(CONCURRENCY as u32).await;
    let tenant = tenant(&owner()).await;
    let mut all_attempts = 0;
    for round in 0..ROUNDS {
        let (section, inputs) = section_inputs(round, 8);
        let reports = concurrently(&host, tenant, executor, inputs).await;
        assert_no_exhaustion(&reports);
        let counts = tally(&reports);
        assert_eq!(counts.get("ok"), Some(&1), "round {round}: {counts:?}");
        assert_eq!(
            counts.get("user_error:duplicate_section_id"),
            Some(&(CONCURRENCY - 1)),
            "round {round}: {counts:?}"
        );
        assert_eq!(
            section_occurrences(&owner(), tenant, &section).await,
            1,
            "round {round}"
        );
        all_attempts += attempts(&reports).0;
    }
    println!(
        "{executor}: {ROUNDS} rounds x {CONCURRENCY} concurrent, one section id over 8 pages: every round 1 ok + {} \
         duplicate_section_id, the id stored once; attempts {all_attempts} for {} invocations",
        CONCURRENCY - 1,
        ROUNDS * CONCURRENCY
    );
}

/// Sensitivity control: the same executor and load with the discipline off
/// (READ COMMITTED, no replay) must show duplicate section ids, proving the
/// race test above would catch a host that lost its discipline.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sensitivity_control_page_sections_duplicate_without_discipline() {
    page_sections_without_discipline(UPDATE_PAGE_SECTION).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sensitivity_control_ts_page_sections_duplicate_without_discipline() {
    page_sections_without_discipline(UPDATE_PAGE_SECTION_TS).await;
}

async fn page_sections_without_discipline(executor: &str) {
    let settings = HostSettings {
        discipline: DisciplineSettings::unsafe_for_tests(),
        ..HostSettings::default()
    };
    let host = host_with(settings, CONCURRENCY as u32).await;
    let tenant = tenant(&owner()).await;
    let (mut anomalous_rounds, mut worst) = (0, 0);
    for round in 0..ROUNDS {
        let (section, inputs) = section_inputs(round, 8);
        // Create the pages first so every writer updates an existing row.
        if round == 0 {
            for page in 0..8 {
                let input = json!({"page": format!("page-{page}"), "section": {"id": format!("seed-{page}")}});
                ok_output(&invoke(&host, tenant, executor, input).await);
            }
        }
        let reports = concurrently(&host, tenant, executor, inputs).await;
        let stored = section_occurrences(&owner(), tenant, &section).await;
        let ok = tally(&reports).get("ok").copied().unwrap_or(0);
        if stored > 1 || ok > 1 {
            anomalous_rounds += 1;
        }
        worst = worst.max(stored);
    }
    println!(
        "sensitivity control, {executor} (READ COMMITTED, no replay): {anomalous_rounds} of {ROUNDS} rounds broke section-id \
         uniqueness (worst: one id stored {worst} times)"
    );
    assert!(
        anomalous_rounds > 0,
        "the discipline-off control never showed the anomaly: the race test cannot fail"
    );
}
