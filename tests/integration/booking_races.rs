//! The booking domain's races, 64 concurrent naive executors each, exact
//! counts: a class's seats, two confirmations, a reschedule against a new
//! booking, a resource shared by two services, holds honoured and expired.
//! Where only the discipline keeps the invariant (seats, confirmations,
//! holds), a sensitivity control runs the same load with it off and shows
//! the anomaly; where a constraint is the last wall (a shared resource), the
//! control shows the wall holding alone.

use bookhost::{DisciplineSettings, HostSettings, InvocationOutcome, InvocationReport, TenantId};
use bookhost_tests::executors::*;
use bookhost_tests::*;
use serde_json::{json, Value};

const CONCURRENCY: usize = 64;
const ROUNDS: usize = 5;

fn unsafe_host_settings() -> HostSettings {
    HostSettings {
        discipline: DisciplineSettings::unsafe_for_tests(),
        ..HostSettings::default()
    }
}

fn assert_settled(reports: &[InvocationReport]) {
    for report in reports {
        assert!(
            matches!(
                report.outcome,
                InvocationOutcome::Ok { .. } | InvocationOutcome::UserError { .. }
            ),
            "unexpected outcome {:?}",
            report.outcome
        );
    }
}

async fn count(sql: &str, tenant: TenantId, key: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(tenant.0)
        .bind(key)
        .fetch_one(&owner())
        .await
        .unwrap()
}

/// Active bookings of a service.
async fn booked(tenant: TenantId, service: &str) -> i64 {
    count(
        "SELECT count(*) FROM bookings WHERE tenant_id = $1 AND service_id = $2::uuid \
         AND status IN ('pending', 'confirmed')",
        tenant,
        service,
    )
    .await
}

async fn class(host: &bookhost::Host, tenant: TenantId, seats: i64) -> String {
    let input = json!({"name": format!("class-{}", uuid::Uuid::new_v4()), "duration_minutes": 60, "capacity": seats});
    ok_output(&invoke(host, tenant, CREATE_SERVICE, input).await)["service"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn bookings_of(service: &str, start: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"service_id": service, "customer": format!("c{i}"), "start": start}))
        .collect()
}

/// 64 customers, one class of 8 seats: exactly 8 booked, 56 slot_taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_a_class_of_eight_seats_gets_exactly_eight_bookings() {
    let host = host(CONCURRENCY as u32).await;
    let tenant = tenant(&owner()).await;
    for round in 0..ROUNDS {
        let service = class(&host, tenant, 8).await;
        let inputs = bookings_of(&service, "2031-05-05T18:00:00Z", CONCURRENCY);
        let reports = concurrently(&host, tenant, CREATE_BOOKING, inputs).await;
        assert_settled(&reports);
        let counts = tally(&reports);
        assert_eq!(counts.get("ok"), Some(&8), "round {round}: {counts:?}");
        assert_eq!(
            counts.get("user_error:slot_taken"),
            Some(&(CONCURRENCY - 8)),
            "round {round}: {counts:?}"
        );
        assert_eq!(booked(tenant, &service).await, 8, "round {round}");
    }
    println!(
        "class of 8 seats: {ROUNDS} rounds x {CONCURRENCY} concurrent create-booking: every round 8 ok + {} slot_taken, 8 stored",
        CONCURRENCY - 8
    );
}

/// Sensitivity control: without the discipline the seat count is overrun
/// (no constraint can count seats).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sensitivity_control_a_class_overbooks_without_discipline() {
    let host = host_with(unsafe_host_settings(), CONCURRENCY as u32).await;
    let tenant = tenant(&owner()).await;
    let (mut overbooked_rounds, mut worst) = (0, 0);
    for _ in 0..ROUNDS {
        let service = class(&host, tenant, 8).await;
        let inputs = bookings_of(&service, "2031-05-05T18:00:00Z", CONCURRENCY);
        concurrently(&host, tenant, CREATE_BOOKING, inputs).await;
        let stored = booked(tenant, &service).await;
        if stored > 8 {
            overbooked_rounds += 1;
        }
        worst = worst.max(stored);
    }
    println!(
        "sensitivity control, class of 8 (READ COMMITTED, no replay): {overbooked_rounds} of {ROUNDS} rounds overbooked (worst: {worst} bookings)"
    );
    assert!(
        overbooked_rounds > 0,
        "the discipline-off control never overbooked: the seat race test cannot fail"
    );
}

/// A pending booking of a service that needs confirmation, and its id.
async fn pending_booking(host: &bookhost::Host, tenant: TenantId) -> String {
    let input = json!({"name": format!("consult-{}", uuid::Uuid::new_v4()), "duration_minutes": 30,
                       "requires_confirmation": true});
    let service = ok_output(&invoke(host, tenant, CREATE_SERVICE, input).await)["service"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let input = json!({"service_id": service, "customer": "Ada", "start": "2031-05-06T09:00:00Z"});
    let report = invoke(host, tenant, CREATE_BOOKING, input).await;
    let booking = &ok_output(&report)["booking"];
    assert_eq!(booking["status"], "pending");
    booking["id"].as_str().unwrap().to_owned()
}

/// 64 confirmations of one pending booking: one confirms, 63 are told it
/// already was.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_two_confirms_of_one_pending_booking_confirm_it_once() {
    confirms_confirm_once(CONFIRM_BOOKING).await;
}

/// The same with the TypeScript port.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_ts_two_confirms_of_one_pending_booking_confirm_it_once() {
    confirms_confirm_once(CONFIRM_BOOKING_TS).await;
}

async fn confirms_confirm_once(executor: &str) {
    let host = host(CONCURRENCY as u32).await;
    let tenant = tenant(&owner()).await;
    for round in 0..ROUNDS {
        let booking = pending_booking(&host, tenant).await;
        let inputs = vec![json!({"booking_id": booking}); CONCURRENCY];
        let reports = concurrently(&host, tenant, executor, inputs).await;
        assert_settled(&reports);
        let counts = tally(&reports);
        assert_eq!(counts.get("ok"), Some(&1), "round {round}: {counts:?}");
        assert_eq!(
            counts.get("user_error:already_confirmed"),
            Some(&(CONCURRENCY - 1)),
            "round {round}: {counts:?}"
        );
    }
    println!(
        "{executor}: {ROUNDS} rounds x {CONCURRENCY} concurrent confirmations of one pending booking: every round 1 ok + {} already_confirmed",
        CONCURRENCY - 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sensitivity_control_a_booking_is_confirmed_twice_without_discipline() {
    let host = host_with(unsafe_host_settings(), CONCURRENCY as u32).await;
    let tenant = tenant(&owner()).await;
    let (mut anomalous_rounds, mut worst) = (0, 0);
    for _ in 0..ROUNDS {
        let booking = pending_booking(&host, tenant).await;
        let inputs = vec![json!({"booking_id": booking}); CONCURRENCY];
        let reports = concurrently(&host, tenant, CONFIRM_BOOKING, inputs).await;
        let ok = tally(&reports).get("ok").copied().unwrap_or(0);
        if ok > 1 {
            anomalous_rounds += 1;
        }
        worst = worst.max(ok);
    }
    println!(
        "sensitivity control, confirm-booking (READ COMMITTED, no replay): {anomalous_rounds} of {ROUNDS} rounds confirmed one booking more than once (worst: {worst} confirmations)"
    );
    assert!(
        anomalous_rounds > 0,
        "the discipline-off control never confirmed twice: the confirmation race test cannot fail"
    );
}

/// A reschedule into a slot against 63 new bookings of it: exactly one
/// wins; if the reschedule loses, its booking is where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_a_reschedule_into_a_slot_against_new_bookings_of_it() {
    let host = host(CONCURRENCY as u32).await;
    let tenant = tenant(&owner()).await;
    let (old, new) = ("2031-05-07T09:00:00Z", "2031-05-07T11:00:00Z");
    let (mut moved_rounds, mut booked_rounds) = (0, 0);
    for round in 0..ROUNDS {
        let service = create_service(&host, tenant, &format!("move-{round}"), 60).await;
        let input = json!({"service_id": service, "customer": "Mover", "start": old});
        let report = invoke(&host, tenant, CREATE_BOOKING, input).await;
        let booking = ok_output(&report)["booking"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut tasks = Vec::new();
        {
            let (host, booking) = (host.clone(), booking.clone());
            tasks.push(tokio::spawn(async move {
                let input = json!({"booking_id": booking, "start": new});
                invoke(&host, tenant, RESCHEDULE_BOOKING, input).await
            }));
        }
        for input in bookings_of(&service, new, CONCURRENCY - 1) {
            let host = host.clone();
            tasks.push(tokio::spawn(async move {
                invoke(&host, tenant, CREATE_BOOKING, input).await
            }));
        }
        let mut reports = Vec::new();
        for task in tasks {
            reports.push(task.await.unwrap());
        }
        assert_settled(&reports);
        let moved = matches!(reports[0].outcome, InvocationOutcome::Ok { .. });
        let new_ok = tally(&reports[1..]).get("ok").copied().unwrap_or(0);
        assert_eq!(
            usize::from(moved) + new_ok,
            1,
            "round {round}: exactly one takes the slot"
        );
        let at_new = count(
            "SELECT count(*) FROM bookings WHERE tenant_id = $1 AND service_id = $2::uuid \
             AND starts_at = '2031-05-07T11:00:00Z' AND status = 'confirmed'",
            tenant,
            &service,
        )
        .await;
        assert_eq!(at_new, 1, "round {round}");
        let (start, customer, status): (chrono::DateTime<chrono::Utc>, String, String) =
            sqlx::query_as("SELECT starts_at, customer, status FROM bookings WHERE id = $1::uuid")
                .bind(&booking)
                .fetch_one(&owner())
                .await
                .unwrap();
        assert_eq!((customer.as_str(), status.as_str()), ("Mover", "confirmed"));
        let expected = if moved { new } else { old };
        assert_eq!(
            start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            expected,
            "round {round}: the loser's booking is untouched"
        );
        if moved {
            moved_rounds += 1;
        } else {
            booked_rounds += 1;
        }
    }
    println!(
        "reschedule vs {} new bookings of its target: {ROUNDS} rounds, exactly one winner each (the reschedule {moved_rounds}, a new booking {booked_rounds}); a losing reschedule left its booking in place",
        CONCURRENCY - 1
    );
}

/// Two services sharing one staff member: 32 bookings of each at one time;
/// the resource ends in exactly one booking. With the discipline off the
/// exclusion constraint alone still refuses the rest: the last wall.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_a_resource_shared_by_two_services_is_never_double_booked() {
    for (discipline, settings) in [
        ("on", HostSettings::default()),
        ("off", unsafe_host_settings()),
    ] {
        let host = host_with(settings, CONCURRENCY as u32).await;
        let tenant = tenant(&owner()).await;
        for round in 0..ROUNDS {
            let cut = create_service(&host, tenant, &format!("cut-{round}"), 60).await;
            let color = create_service(&host, tenant, &format!("color-{round}"), 90).await;
            let input = json!({"name": format!("Ana-{round}"), "service_ids": [cut, color]});
            let report = invoke(&host, tenant, CREATE_RESOURCE, input).await;
            let ana = ok_output(&report)["resource"]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let mut tasks = Vec::new();
            for i in 0..CONCURRENCY {
                let service = if i % 2 == 0 { &cut } else { &color };
                // Overlapping, not equal: 10:00-11:00 and 10:30-12:00.
                let start = if i % 2 == 0 {
                    "2031-05-08T10:00:00Z"
                } else {
                    "2031-05-08T10:30:00Z"
                };
                let input =
                    json!({"service_id": service, "customer": format!("c{i}"), "start": start});
                let host = host.clone();
                tasks.push(tokio::spawn(async move {
                    invoke(&host, tenant, CREATE_BOOKING, input).await
                }));
            }
            let mut reports = Vec::new();
            for task in tasks {
                reports.push(task.await.unwrap());
            }
            let on_ana = count(
                "SELECT count(*) FROM bookings WHERE tenant_id = $1 AND resource_id = $2::uuid \
                 AND status IN ('pending', 'confirmed')",
                tenant,
                &ana,
            )
            .await;
            let ok = tally(&reports).get("ok").copied().unwrap_or(0);
            assert_eq!(on_ana, 1, "discipline {discipline}, round {round}");
            assert_eq!(ok, 1, "discipline {discipline}, round {round}");
        }
        println!(
            "shared resource, discipline {discipline}: {ROUNDS} rounds x {CONCURRENCY} concurrent bookings of two services: exactly 1 booking on the resource each round"
        );
    }
}

/// A held seat is honoured until the hold expires, and ignored after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_a_hold_is_honoured_until_it_expires_and_ignored_after() {
    let host = host(CONCURRENCY as u32).await;
    let tenant = tenant(&owner()).await;
    let start = "2031-05-09T15:00:00Z";
    for round in 0..ROUNDS {
        let service = create_service(&host, tenant, &format!("held-{round}"), 30).await;
        let input =
            json!({"service_id": service, "customer": "Holder", "start": start, "minutes": 10});
        let report = invoke(&host, tenant, HOLD_SLOT, input).await;
        let hold = ok_output(&report)["hold"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // While the hold lives: nobody else books.
        let reports = concurrently(
            &host,
            tenant,
            CREATE_BOOKING,
            bookings_of(&service, start, CONCURRENCY),
        )
        .await;
        assert_settled(&reports);
        assert_eq!(
            tally(&reports).get("user_error:slot_held"),
            Some(&CONCURRENCY),
            "round {round}"
        );
        assert_eq!(booked(tenant, &service).await, 0);
        // Expired (as if ten minutes had passed): the hold blocks nothing,
        // and exactly one of 64 books the slot.
        sqlx::query(
            "UPDATE holds SET expires_at = now() - interval '1 second' WHERE id = $1::uuid",
        )
        .bind(&hold)
        .execute(&owner())
        .await
        .unwrap();
        let reports = concurrently(
            &host,
            tenant,
            CREATE_BOOKING,
            bookings_of(&service, start, CONCURRENCY),
        )
        .await;
        assert_settled(&reports);
        let counts = tally(&reports);
        assert_eq!(counts.get("ok"), Some(&1), "round {round}: {counts:?}");
        assert_eq!(booked(tenant, &service).await, 1);
        // The expired hold cannot book any more.
        let input =
            json!({"service_id": service, "customer": "Holder", "start": start, "hold_id": hold});
        let late = invoke(&host, tenant, CREATE_BOOKING, input).await;
        assert_eq!(user_error_code(&late), Some("hold_not_valid"), "{late:?}");
    }
    println!(
        "holds: {ROUNDS} rounds: a live hold refused {CONCURRENCY} of {CONCURRENCY} concurrent bookings (slot_held); once expired, exactly 1 of {CONCURRENCY} booked"
    );
}

/// The holder books with its hold while 63 others try: the holder wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_the_holder_books_its_held_slot_against_sixty_three_others() {
    let host = host(CONCURRENCY as u32).await;
    let tenant = tenant(&owner()).await;
    let start = "2031-05-10T15:00:00Z";
    for round in 0..ROUNDS {
        let service = create_service(&host, tenant, &format!("holder-{round}"), 30).await;
        let input = json!({"service_id": service, "customer": "Holder", "start": start});
        let hold = ok_output(&invoke(&host, tenant, HOLD_SLOT, input).await)["hold"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut inputs = bookings_of(&service, start, CONCURRENCY - 1);
        inputs.insert(
            0,
            json!({"service_id": service, "customer": "Holder", "start": start, "hold_id": hold}),
        );
        let reports = concurrently(&host, tenant, CREATE_BOOKING, inputs).await;
        assert_settled(&reports);
        assert_eq!(ok_output(&reports[0])["booking"]["customer"], "Holder");
        // Refused as held while the hold lived, as taken once the holder's
        // booking (which took the hold up) committed.
        let counts = tally(&reports[1..]);
        let refused = counts.get("user_error:slot_held").unwrap_or(&0)
            + counts.get("user_error:slot_taken").unwrap_or(&0);
        assert_eq!(refused, CONCURRENCY - 1, "round {round}: {counts:?}");
        assert_eq!(booked(tenant, &service).await, 1);
    }
}

/// 64 holds of one free slot: one hold, 63 slot_held. Nothing in the
/// database says so: only the discipline.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_sixty_four_holds_of_one_slot_make_one_hold() {
    holds_make_one_hold(HOLD_SLOT).await;
}

/// The same with the TypeScript port.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn race_ts_sixty_four_holds_of_one_slot_make_one_hold() {
    holds_make_one_hold(HOLD_SLOT_TS).await;
}

async fn holds_make_one_hold(executor: &str) {
    let host = host(CONCURRENCY as u32).await;
    let tenant = tenant(&owner()).await;
    for round in 0..ROUNDS {
        let service = create_service(&host, tenant, &format!("hold-{round}"), 30).await;
        let reports = concurrently(
            &host,
            tenant,
            executor,
            bookings_of(&service, "2031-05-11T15:00:00Z", CONCURRENCY),
        )
        .await;
        assert_settled(&reports);
        let counts = tally(&reports);
        assert_eq!(counts.get("ok"), Some(&1), "round {round}: {counts:?}");
        assert_eq!(
            counts.get("user_error:slot_held"),
            Some(&(CONCURRENCY - 1)),
            "round {round}: {counts:?}"
        );
        let holds = count(
            "SELECT count(*) FROM holds WHERE tenant_id = $1 AND service_id = $2::uuid",
            tenant,
            &service,
        )
        .await;
        assert_eq!(holds, 1, "round {round}");
    }
    println!(
        "{executor}: {ROUNDS} rounds x {CONCURRENCY} concurrent holds of one free slot: every round 1 hold + {} slot_held",
        CONCURRENCY - 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sensitivity_control_holds_collide_without_discipline() {
    let host = host_with(unsafe_host_settings(), CONCURRENCY as u32).await;
    let tenant = tenant(&owner()).await;
    let (mut anomalous_rounds, mut worst) = (0, 0);
    for round in 0..ROUNDS {
        let service = create_service(&host, tenant, &format!("hold-off-{round}"), 30).await;
        concurrently(
            &host,
            tenant,
            HOLD_SLOT,
            bookings_of(&service, "2031-05-11T15:00:00Z", CONCURRENCY),
        )
        .await;
        let holds = count(
            "SELECT count(*) FROM holds WHERE tenant_id = $1 AND service_id = $2::uuid",
            tenant,
            &service,
        )
        .await;
        if holds > 1 {
            anomalous_rounds += 1;
        }
        worst = worst.max(holds);
    }
    println!(
        "sensitivity control, hold-slot (READ COMMITTED, no replay): {anomalous_rounds} of {ROUNDS} rounds held one seat more than once (worst: {worst} holds)"
    );
    assert!(
        anomalous_rounds > 0,
        "the discipline-off control never collided"
    );
}
