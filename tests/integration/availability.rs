//! Availability on fixed dates in a zone with daylight saving (the days the
//! clocks spring forward and fall back), with buffers, exceptions, capacity,
//! notice, window and resources, asked through the real find-slots executor
//! at a fixed invocation clock; the bad inputs of the booking domain, each a
//! typed error that changes nothing; and a property test that what
//! availability offers is exactly what create-booking accepts.

use bookhost_tests::booking::{micros, Business};
use bookhost_tests::executors::*;
use bookhost_tests::*;
use proptest::prelude::*;
use serde_json::json;

const NEW_YORK: &str = "America/New_York";
/// Before every date below: nothing is too soon.
const CLOCK: &str = "2031-03-01T12:00:00Z";

/// A one-hour service open on Sundays 00:00-06:00 in New York.
async fn sunday_mornings() -> (Business, String) {
    let business = Business::new(NEW_YORK, CLOCK, 4).await;
    let service = business
        .service(json!({"name": "Night shift", "duration_minutes": 60}))
        .await;
    business
        .hours(json!({"weekly": [{"weekday": 7, "opens": "00:00", "closes": "06:00"}]}))
        .await;
    (business, service)
}

#[tokio::test]
async fn an_ordinary_sunday_offers_six_hours() {
    let (business, service) = sunday_mornings().await;
    // 2031-03-02, EST (UTC-5): 00:00 local is 05:00Z.
    let slots = business
        .slots(&service, "2031-03-02T00:00:00Z", "2031-03-03T00:00:00Z")
        .await;
    assert_eq!(
        slots,
        [
            "2031-03-02T05:00:00Z",
            "2031-03-02T06:00:00Z",
            "2031-03-02T07:00:00Z",
            "2031-03-02T08:00:00Z",
            "2031-03-02T09:00:00Z",
            "2031-03-02T10:00:00Z"
        ]
    );
}

#[tokio::test]
async fn the_spring_forward_day_offers_nothing_in_the_missing_hour() {
    let (business, service) = sunday_mornings().await;
    // 2031-03-09: 02:00 EST jumps to 03:00 EDT; 00:00-06:00 local is five
    // real hours: 00:00 and 01:00 EST, then 03:00, 04:00, 05:00 EDT.
    let slots = business
        .slots(&service, "2031-03-09T00:00:00Z", "2031-03-10T00:00:00Z")
        .await;
    assert_eq!(
        slots,
        [
            "2031-03-09T05:00:00Z",
            "2031-03-09T06:00:00Z",
            "2031-03-09T07:00:00Z",
            "2031-03-09T08:00:00Z",
            "2031-03-09T09:00:00Z"
        ]
    );
    // Hours that open inside the missing hour open when it ends.
    let half = business
        .service(json!({"name": "Half", "duration_minutes": 30}))
        .await;
    business
        .hours(json!({"service_id": half,
                      "weekly": [{"weekday": 7, "opens": "02:30", "closes": "04:00"}]}))
        .await;
    let slots = business
        .slots(&half, "2031-03-09T00:00:00Z", "2031-03-10T00:00:00Z")
        .await;
    assert_eq!(
        slots,
        ["2031-03-09T07:00:00Z", "2031-03-09T07:30:00Z"],
        "03:00 and 03:30 EDT"
    );
}

#[tokio::test]
async fn the_fall_back_day_offers_the_repeated_hour_twice() {
    let (business, service) = sunday_mornings().await;
    // 2031-11-02: 02:00 EDT falls back to 01:00 EST; 00:00-06:00 local is
    // seven real hours, 01:00 local twice (05:00Z EDT and 06:00Z EST).
    let slots = business
        .slots(&service, "2031-11-02T00:00:00Z", "2031-11-03T00:00:00Z")
        .await;
    assert_eq!(
        slots,
        [
            "2031-11-02T04:00:00Z",
            "2031-11-02T05:00:00Z",
            "2031-11-02T06:00:00Z",
            "2031-11-02T07:00:00Z",
            "2031-11-02T08:00:00Z",
            "2031-11-02T09:00:00Z",
            "2031-11-02T10:00:00Z"
        ]
    );
    // Both occurrences of 01:30 local book, as two different instants.
    let first = business
        .run(
            CREATE_BOOKING,
            json!({"service_id": service, "customer": "EDT", "start": "2031-11-02T05:00:00Z"}),
        )
        .await;
    ok_output(&first);
    let second = business
        .run(
            CREATE_BOOKING,
            json!({"service_id": service, "customer": "EST", "start": "2031-11-02T06:00:00Z"}),
        )
        .await;
    ok_output(&second);
}

#[tokio::test]
async fn buffers_exceptions_capacity_and_notice_shape_the_slots() {
    let business = Business::new("Europe/Paris", "2031-06-02T07:30:00Z", 4).await;
    // Mondays 09:00-12:00 Paris (CEST, UTC+2), 60 minutes with 30 after.
    let service = business
        .service(json!({"name": "Massage", "duration_minutes": 60,
                        "buffer_after_minutes": 30, "slot_increment_minutes": 30,
                        "min_notice_minutes": 60}))
        .await;
    business
        .hours(
            json!({"weekly": [{"weekday": 1, "opens": "09:00", "closes": "12:00"}],
                      "exceptions": [{"day": "2031-06-09", "closed": true},
                                     {"day": "2031-06-16", "opens": "10:00", "closes": "11:00"}]}),
        )
        .await;
    // 2031-06-02: the clock reads 09:30 local with 60 minutes' notice, so
    // 09:00, 09:30 and 10:00 are too soon; 10:30 and 11:00 remain.
    assert_eq!(
        business
            .slots(&service, "2031-06-02T00:00:00Z", "2031-06-03T00:00:00Z")
            .await,
        ["2031-06-02T08:30:00Z", "2031-06-02T09:00:00Z"]
    );
    // The closed day offers nothing; the shortened day one slot.
    assert!(business
        .slots(&service, "2031-06-09T00:00:00Z", "2031-06-10T00:00:00Z")
        .await
        .is_empty());
    assert_eq!(
        business
            .slots(&service, "2031-06-16T00:00:00Z", "2031-06-17T00:00:00Z")
            .await,
        ["2031-06-16T08:00:00Z"]
    );
    // A booking at 09:00 local blocks until 10:30 with its buffer (and a
    // start at 08:30 would run into it): 10:30 and 11:00 remain.
    ok_output(
        &business
            .run(
                CREATE_BOOKING,
                json!({"service_id": service, "customer": "Ada", "start": "2031-06-23T07:00:00Z"}),
            )
            .await,
    );
    assert_eq!(
        business
            .slots(&service, "2031-06-23T00:00:00Z", "2031-06-24T00:00:00Z")
            .await,
        ["2031-06-23T08:30:00Z", "2031-06-23T09:00:00Z"]
    );

    // A class of 3 seats: seats_left counts down, and a full session is
    // offered no more.
    let class = business
        .service(json!({"name": "Yoga", "duration_minutes": 60, "capacity": 3}))
        .await;
    // 10:00 Paris: the class follows the business's hours too.
    let at = "2031-06-23T08:00:00Z";
    for customer in ["A", "B"] {
        ok_output(
            &business
                .run(
                    CREATE_BOOKING,
                    json!({"service_id": class, "customer": customer, "start": at}),
                )
                .await,
        );
    }
    let slot = business
        .slot_details(&class, at, "2031-06-23T08:00:01Z")
        .await;
    assert_eq!(slot[0]["seats_left"], 1);
    ok_output(
        &business
            .run(
                CREATE_BOOKING,
                json!({"service_id": class, "customer": "C", "start": at}),
            )
            .await,
    );
    assert!(business
        .slot_details(&class, at, "2031-06-23T08:00:01Z")
        .await
        .is_empty());
}

#[tokio::test]
async fn resources_need_hours_and_a_free_moment() {
    let business = Business::new(NEW_YORK, CLOCK, 4).await;
    let cut = business
        .service(json!({"name": "Cut", "duration_minutes": 60}))
        .await;
    let color = business
        .service(json!({"name": "Color", "duration_minutes": 60}))
        .await;
    let wash = business
        .service(json!({"name": "Wash", "duration_minutes": 60}))
        .await;
    let ana = business.resource("Ana", &[&cut, &color, &wash]).await;
    let ben = business.resource("Ben", &[&cut, &wash]).await;
    // Ben works only Monday mornings, 09:00-10:00 New York.
    business
        .hours(json!({"resource_id": ben,
                      "weekly": [{"weekday": 1, "opens": "09:00", "closes": "10:00"}]}))
        .await;
    // Monday 2031-03-03 09:00 EST = 14:00Z: both can cut; only Ana colors.
    let at = "2031-03-03T14:00:00Z";
    let until = "2031-03-03T14:00:01Z";
    let cut_slot = business.slot_details(&cut, at, until).await;
    assert_eq!(cut_slot[0]["resources"], json!([ana, ben]));
    // Ana colors at 09:00: the cut at 09:00 can only be Ben's.
    let colored = business
        .run(
            CREATE_BOOKING,
            json!({"service_id": color, "customer": "Cy", "start": at}),
        )
        .await;
    assert_eq!(ok_output(&colored)["booking"]["resource_id"], ana);
    let cut_slot = business.slot_details(&cut, at, until).await;
    assert_eq!(cut_slot[0]["resources"], json!([ben]));
    // At 10:00 Ben has stopped and Ana is free again.
    let later = business
        .slot_details(&cut, "2031-03-03T15:00:00Z", "2031-03-03T15:00:01Z")
        .await;
    assert_eq!(later[0]["resources"], json!([ana]));
    // Ben cuts at 09:00; then nobody is left to wash at 09:00.
    ok_output(
        &business
            .run(
                CREATE_BOOKING,
                json!({"service_id": cut, "customer": "Di", "start": at}),
            )
            .await,
    );
    assert!(business.slot_details(&wash, at, until).await.is_empty());
    let refused = business
        .run(
            CREATE_BOOKING,
            json!({"service_id": wash, "customer": "Ed", "start": at}),
        )
        .await;
    assert_eq!(
        user_error_code(&refused),
        Some("no_resource"),
        "{refused:?}"
    );
}

/// Each bad input is a typed error naming what is wrong, and nothing changes.
#[tokio::test]
async fn bad_booking_input_gets_a_typed_error_and_changes_nothing() {
    let business = Business::new(NEW_YORK, CLOCK, 4).await;

    // An unknown time zone: for the tenant (the host's zone database) and
    // for a resource (the database's check).
    let error = bookhost::db::set_tenant_time_zone(&owner(), business.tenant, "Mars/Olympus")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("unknown time zone"), "{error}");
    let zone: String = sqlx::query_scalar("SELECT time_zone FROM tenants WHERE id = $1")
        .bind(business.tenant.0)
        .fetch_one(&owner())
        .await
        .unwrap();
    assert_eq!(zone, NEW_YORK);
    let report = business
        .run(
            CREATE_RESOURCE,
            json!({"name": "Ana", "time_zone": "Mars/Olympus"}),
        )
        .await;
    assert_eq!(user_error_code(&report), Some("unknown_time_zone"));
    assert_eq!(business.rows("resources").await, 0);

    // Hours that end before they start, or overlap.
    let service = business
        .service(json!({"name": "Cut", "duration_minutes": 60, "buffer_after_minutes": 30}))
        .await;
    business
        .hours(json!({"weekly": [{"weekday": 1, "opens": "09:00", "closes": "17:00"}]}))
        .await;
    let report = business
        .run(
            SET_OPENING_HOURS,
            json!({"weekly": [{"weekday": 2, "opens": "17:00", "closes": "09:00"}]}),
        )
        .await;
    assert_eq!(
        user_error_code(&report),
        Some("invalid_hours"),
        "{report:?}"
    );
    let report = business
        .run(
            SET_OPENING_HOURS,
            json!({"weekly": [{"weekday": 2, "opens": "09:00", "closes": "13:00"},
                              {"weekday": 2, "opens": "12:00", "closes": "17:00"}]}),
        )
        .await;
    assert_eq!(
        user_error_code(&report),
        Some("overlapping_hours"),
        "{report:?}"
    );
    // The Monday hours set before are still the only ones.
    assert_eq!(business.rows("opening_hours").await, 1);

    // A booking outside the hours, and one inside another's buffer.
    let report = business
        .run(
            CREATE_BOOKING,
            json!({"service_id": service, "customer": "Ada", "start": "2031-03-03T23:00:00Z"}),
        )
        .await;
    assert_eq!(user_error_code(&report), Some("outside_hours"));
    ok_output(
        &business
            .run(
                CREATE_BOOKING,
                json!({"service_id": service, "customer": "Ada", "start": "2031-03-03T14:00:00Z"}),
            )
            .await,
    );
    // Ada's 09:00-10:00 keeps 10:00-10:30 free: a 10:00 start is in it.
    let report = business
        .run(
            CREATE_BOOKING,
            json!({"service_id": service, "customer": "Bob", "start": "2031-03-03T15:00:00Z"}),
        )
        .await;
    assert_eq!(user_error_code(&report), Some("in_buffer"), "{report:?}");
    assert_eq!(business.active_bookings().await, 1);

    // A hold on a slot that is not free.
    let report = business
        .run(
            HOLD_SLOT,
            json!({"service_id": service, "customer": "Cy", "start": "2031-03-03T14:00:00Z"}),
        )
        .await;
    assert_eq!(user_error_code(&report), Some("slot_taken"));
    assert_eq!(business.rows("holds").await, 0);

    // A capacity below the seats a session already fills.
    let class = business
        .service(json!({"name": "Yoga", "duration_minutes": 60, "capacity": 3}))
        .await;
    for customer in ["A", "B"] {
        ok_output(
            &business
                .run(
                    CREATE_BOOKING,
                    json!({"service_id": class, "customer": customer, "start": "2031-03-03T16:00:00Z"}),
                )
                .await,
        );
    }
    let report = business
        .run(UPDATE_SERVICE, json!({"service_id": class, "capacity": 1}))
        .await;
    assert_eq!(
        user_error_code(&report),
        Some("capacity_below_booked"),
        "{report:?}"
    );
    let capacity: i64 = sqlx::query_scalar("SELECT capacity FROM services WHERE id = $1::uuid")
        .bind(&class)
        .fetch_one(&owner())
        .await
        .unwrap();
    assert_eq!(capacity, 3);

    // A reschedule of a cancelled booking.
    let booking: String = sqlx::query_scalar(
        "SELECT id::text FROM bookings WHERE tenant_id = $1 AND customer = 'Ada'",
    )
    .bind(business.tenant.0)
    .fetch_one(&owner())
    .await
    .unwrap();
    ok_output(
        &business
            .run(CANCEL_BOOKING, json!({"booking_id": booking}))
            .await,
    );
    let report = business
        .run(
            RESCHEDULE_BOOKING,
            json!({"booking_id": booking, "start": "2031-03-03T18:00:00Z"}),
        )
        .await;
    assert_eq!(user_error_code(&report), Some("booking_cancelled"));
    let start: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT starts_at FROM bookings WHERE id = $1::uuid")
            .bind(&booking)
            .fetch_one(&owner())
            .await
            .unwrap();
    assert_eq!(start.timestamp_micros(), micros("2031-03-03T14:00:00Z"));
    // And the cancelled booking blocks nothing: its slot books again.
    ok_output(
        &business
            .run(
                CREATE_BOOKING,
                json!({"service_id": service, "customer": "Eve", "start": "2031-03-03T14:00:00Z"}),
            )
            .await,
    );
}

/// One generated business: a service's rules, its hours and what is booked.
#[derive(Debug, Clone)]
struct Case {
    duration: i64,
    increment: Option<i64>,
    buffer_before: i64,
    buffer_after: i64,
    capacity: i64,
    notice: i64,
    window_days: Option<i64>,
    /// (opens, closes) minutes, every day.
    hours: Vec<(i64, i64)>,
    /// Starts (minutes after the range's start) booked first, ignored when
    /// not bookable.
    booked: Vec<i64>,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![15i64, 30, 45, 60, 90]),
        prop::option::of(prop::sample::select(vec![15i64, 30, 60])),
        prop::sample::select(vec![0i64, 10, 15]),
        prop::sample::select(vec![0i64, 15, 30]),
        1i64..=3,
        prop::sample::select(vec![0i64, 600, 1800]),
        prop::option::of(prop::sample::select(vec![1i64, 2])),
        prop::sample::select(vec![
            vec![(540, 1020)],
            vec![(480, 720), (780, 1080)],
            vec![(0, 180), (1200, 1440)],
        ]),
        prop::collection::vec(0i64..(2 * 1440 / 15), 0..6),
    )
        .prop_map(
            |(
                duration,
                increment,
                buffer_before,
                buffer_after,
                capacity,
                notice,
                window_days,
                hours,
                booked,
            )| Case {
                duration,
                increment,
                buffer_before,
                buffer_after,
                capacity,
                notice,
                window_days,
                hours,
                booked: booked.into_iter().map(|b| b * 15).collect(),
            },
        )
}

/// Every offered slot books, and every start on a 5-minute grid that is not
/// offered is refused (each tried as a dry run, so one does not change the
/// next): availability and create-booking agree.
#[test]
fn availability_agrees_with_create_booking() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = ProptestConfig {
        cases: 8,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let totals = std::cell::Cell::new((0, 0));
    runner
        .run(&cases(), |case| {
            let (offered, refused) = runtime.block_on(agree(case));
            let (o, r) = totals.get();
            totals.set((o + offered, r + refused));
            Ok(())
        })
        .unwrap();
    let (offered_total, refused_total) = totals.get();
    println!(
        "availability vs create-booking: 8 generated businesses, {offered_total} offered slots booked, \
         {refused_total} other starts refused"
    );
    assert!(offered_total > 0 && refused_total > 0);
}

async fn agree(case: Case) -> (usize, usize) {
    // The range: two days from 2031-04-07 00:00 Chicago (a Monday), the
    // clock 40 minutes before it, so notice and window both bite.
    let range_start = micros("2031-04-07T05:00:00Z");
    let now = range_start - 40 * 60_000_000;
    let clock = chrono::DateTime::from_timestamp_micros(now)
        .unwrap()
        .to_rfc3339();
    let business = Business::new("America/Chicago", &clock, 4).await;
    let mut input = json!({
        "name": "Generated", "duration_minutes": case.duration,
        "buffer_before_minutes": case.buffer_before, "buffer_after_minutes": case.buffer_after,
        "capacity": case.capacity, "min_notice_minutes": case.notice,
    });
    if let Some(increment) = case.increment {
        input["slot_increment_minutes"] = json!(increment);
    }
    if let Some(days) = case.window_days {
        input["booking_window_days"] = json!(days);
    }
    let service = business.service(input).await;
    let hhmm = |m: i64| format!("{:02}:{:02}", m / 60, m % 60);
    let weekly: Vec<_> = (1..=7)
        .flat_map(|day| {
            case.hours
                .iter()
                .map(move |(o, c)| json!({"weekday": day, "opens": hhmm(*o), "closes": hhmm(*c)}))
        })
        .collect();
    business.hours(json!({"weekly": weekly})).await;
    let at = |minutes: i64| {
        chrono::DateTime::from_timestamp_micros(range_start + minutes * 60_000_000)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    for (i, minutes) in case.booked.iter().enumerate() {
        // Some of these are not bookable; those are refused and skipped.
        business
            .run(
                CREATE_BOOKING,
                json!({"service_id": service, "customer": format!("pre-{i}"), "start": at(*minutes)}),
            )
            .await;
    }
    let from = at(0);
    let to = at(2 * 1440);
    let offered = business.slots(&service, &from, &to).await;
    for start in &offered {
        let report = business
            .dry_run(
                CREATE_BOOKING,
                json!({"service_id": service, "customer": "Probe", "start": start}),
            )
            .await;
        assert!(
            matches!(report.outcome, bookhost::InvocationOutcome::Ok { .. }),
            "{case:?}: offered {start} but create-booking said {:?}",
            report.outcome
        );
    }
    let mut refused = 0;
    for minutes in (0..2 * 1440).step_by(5) {
        let start = at(minutes);
        if offered.contains(&start) {
            continue;
        }
        // Every 5-minute start would be a lot of invocations: every third
        // suffices to cover off-grid, outside-hours and occupied starts.
        if minutes % 15 != 5 && minutes % 60 != 0 {
            continue;
        }
        let report = business
            .dry_run(
                CREATE_BOOKING,
                json!({"service_id": service, "customer": "Probe", "start": start}),
            )
            .await;
        assert!(
            matches!(
                report.outcome,
                bookhost::InvocationOutcome::UserError { .. }
            ),
            "{case:?}: {start} was not offered but create-booking said {:?}",
            report.outcome
        );
        refused += 1;
    }
    (offered.len(), refused)
}
