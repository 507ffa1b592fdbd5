//! Several real `bookhost serve` processes on one PostgreSQL: the four seed races through three hosts keep their exact invariants, and the history checker finds nothing wrong — but does find a history that lies.

use std::time::Instant;

use bookhost_tests::executors::*;
use bookhost_tests::fleet::{Fleet, FleetOptions};
use bookhost_tests::history::{check, Client, Effect, History, Invariant, Operation, Outcome};
use sqlx::PgPool;

/// Concurrent clients per round, spread round-robin over the hosts.
const CLIENTS: usize = 64;
/// Rounds per scenario (races.rs runs 20 in-process; through HTTP and three
/// processes a round costs more, and the in-process test already counts).
const ROUNDS: usize = 5;

/// A new service (its id), created through the fleet and recorded in
/// `history`. One that a race may delete is recorded `Unobservable`: the
/// checker, counting its row, would take the deletion for a lost creation.
async fn new_service(
    client: &Client,
    minutes: i64,
    deletable: bool,
    history: &mut History,
) -> String {
    let mut op = Operation::create_service(CREATE_SERVICE, minutes);
    if deletable {
        op.effect = Effect::Unobservable;
    }
    let record = client.invoke(op).await;
    assert_eq!(record.outcome, Outcome::Ok, "{record:?}");
    let id = record.result().unwrap()["service"]["id"].as_str().unwrap();
    let id = id.to_owned();
    history.records.push(record);
    id
}

/// Every operation got one definite answer at its first try: on a healthy
/// fleet nothing may time out, fail over or answer 5xx.
#[track_caller]
fn assert_first_try_answers(history: &History, round: &str) {
    assert!(
        history.records.iter().all(|r| r.tries.len() == 1),
        "{round}: retries on a healthy fleet: {:?}",
        history.try_labels()
    );
    assert_eq!(history.count(Outcome::Unknown), 0, "{round}");
}

async fn active_bookings(owner: &PgPool, tenant: bookhost::TenantId, service: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM bookings WHERE tenant_id = $1 AND service_id = $2::uuid \
         AND status IN ('pending', 'confirmed')",
    )
    .bind(tenant.0)
    .bind(service)
    .fetch_one(owner)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fleet_seed_races_through_three_hosts_keep_their_invariants() {
    let began = Instant::now();
    let fleet = Fleet::new(FleetOptions::default()).await;
    let started = began.elapsed();
    let (client, owner, tenant) = (fleet.client(), fleet.owner_pool(), fleet.tenant().id);
    let mut history = History::default();

    // Create booking: 64 clients, one slot; exactly one wins.
    for round in 0..ROUNDS {
        let service = new_service(&client, 60, false, &mut history).await;
        let start = "2030-03-04T10:00:00Z";
        let ops = (0..CLIENTS)
            .map(|_| Operation::create_booking(CREATE_BOOKING, &service, start))
            .collect();
        let h = client.run(ops).await;
        assert_first_try_answers(&h, "hot slot");
        let tally = h.tally();
        assert_eq!(
            tally.get("ok"),
            Some(&1),
            "hot slot round {round}: {tally:?}"
        );
        assert_eq!(
            tally.get("fail:slot_taken"),
            Some(&(CLIENTS - 1)),
            "hot slot round {round}: {tally:?}"
        );
        assert!(h
            .records
            .iter()
            .all(|r| matches!(r.status, Some(200 | 409))));
        assert_eq!(active_bookings(&owner, tenant, &service).await, 1);
        history.extend(h);
    }

    // Delete service: half book distinct future slots, half delete the
    // service, interleaved; never both a deletion and a booking.
    let (mut deleted, mut kept) = (0, 0);
    for round in 0..ROUNDS {
        let service = new_service(&client, 30, true, &mut history).await;
        let ops = (0..CLIENTS)
            .map(|i| {
                if i % 2 == 0 {
                    let slot = i / 2;
                    let start = format!("2031-01-{:02}T{:02}:00:00Z", 1 + slot % 28, 9 + slot / 28);
                    Operation::create_booking(CREATE_BOOKING, &service, &start)
                } else {
                    Operation::delete_service(DELETE_SERVICE, &service)
                }
            })
            .collect();
        let h = client.run(ops).await;
        assert_first_try_answers(&h, "delete service");
        let ok_of = |executor| h.of(executor).filter(|r| r.outcome == Outcome::Ok).count();
        let (ok_bookings, ok_deletes) = (ok_of(CREATE_BOOKING), ok_of(DELETE_SERVICE));
        for record in h.records.iter().filter(|r| r.outcome == Outcome::Fail) {
            let expected: &[&str] = if record.op.executor == CREATE_BOOKING {
                &["service_not_found"]
            } else {
                &["service_has_upcoming_bookings", "service_not_found"]
            };
            let code = record.error_code().unwrap_or("?");
            assert!(
                expected.contains(&code),
                "{} answered {code}",
                record.op.executor
            );
        }
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM services WHERE tenant_id = $1 AND id = $2::uuid)",
        )
        .bind(tenant.0)
        .bind(&service)
        .fetch_one(&owner)
        .await
        .unwrap();
        let booked = active_bookings(&owner, tenant, &service).await;
        if exists {
            kept += 1;
            assert_eq!(
                ok_deletes, 0,
                "round {round}: a delete said ok, the service exists"
            );
            assert_eq!(booked, ok_bookings as i64, "round {round}");
            assert!(ok_bookings >= 1, "round {round}: kept without any booking");
        } else {
            deleted += 1;
            assert_eq!(ok_deletes, 1, "round {round}");
            assert_eq!(
                ok_bookings, 0,
                "round {round}: a booking said ok, its service is gone"
            );
            assert_eq!(booked, 0, "round {round}");
        }
        history.extend(h);
    }

    // Request appointment: one pending request per pet.
    for round in 0..ROUNDS {
        let pet = format!("rex-{round}");
        let ops = (0..CLIENTS)
            .map(|_| {
                Operation::request_appointment(REQUEST_APPOINTMENT, &pet, "2030-05-01T10:00:00Z")
            })
            .collect();
        let h = client.run(ops).await;
        assert_first_try_answers(&h, "request appointment");
        let tally = h.tally();
        assert_eq!(
            tally.get("ok"),
            Some(&1),
            "appointment round {round}: {tally:?}"
        );
        assert_eq!(
            tally.get("fail:pending_request_exists"),
            Some(&(CLIENTS - 1)),
            "appointment round {round}: {tally:?}"
        );
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM booking_requests WHERE tenant_id = $1 AND pet = $2 AND status = 'pending'",
        )
        .bind(tenant.0)
        .bind(&pet)
        .fetch_one(&owner)
        .await
        .unwrap();
        assert_eq!(pending, 1, "appointment round {round}");
        history.extend(h);
    }

    // Update page section: one section id over 8 pages, stored once.
    for round in 0..ROUNDS {
        let section = format!("hero-{round}");
        let ops = (0..CLIENTS)
            .map(|i| {
                Operation::add_section(UPDATE_PAGE_SECTION, &format!("page-{}", i % 8), &section)
            })
            .collect();
        let h = client.run(ops).await;
        assert_first_try_answers(&h, "page section");
        let tally = h.tally();
        assert_eq!(
            tally.get("ok"),
            Some(&1),
            "section round {round}: {tally:?}"
        );
        assert_eq!(
            tally.get("fail:duplicate_section_id"),
            Some(&(CLIENTS - 1)),
            "section round {round}: {tally:?}"
        );
        let stored: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM storefront_pages p, jsonb_array_elements(p.config -> 'sections') s \
             WHERE p.tenant_id = $1 AND s ->> 'id' = $2",
        )
        .bind(tenant.0)
        .bind(&section)
        .fetch_one(&owner)
        .await
        .unwrap();
        assert_eq!(stored, 1, "section round {round}");
        history.extend(h);
    }

    // Every host served its share.
    for host in 0..fleet.hosts().len() {
        let served = history.tries().filter(|t| t.host == host).count();
        assert!(
            served >= history.len() / fleet.hosts().len() - 1,
            "host {host} served {served}"
        );
    }
    assert!(
        history.server_errors().is_empty(),
        "{:?}",
        history.server_errors()
    );
    let raced = began.elapsed();
    let report = check(&owner, tenant, &history, Invariant::SEED).await;
    report.assert_clean();
    assert_eq!((report.unknown, report.retried), (0, 0), "{report}");
    assert!(report.audit_records >= history.len() as u64, "{report}");
    println!(
        "fleet of {} hosts, {ROUNDS} rounds x {CLIENTS} clients of each seed race (delete-service: \
         deleted {deleted}, kept {kept}): {report}; fleet up in {:.1} s, races {:.1} s, check {:.1} s",
        fleet.hosts().len(),
        started.as_secs_f64(),
        (raced - started).as_secs_f64(),
        (began.elapsed() - raced).as_secs_f64()
    );
}

/// Sensitivity control for the checker: the same database, histories that
/// lie about it. Each lie must be reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checker_reports_a_history_that_lies() {
    let fleet = Fleet::new(FleetOptions {
        hosts: 1,
        ..FleetOptions::default()
    })
    .await;
    let (client, owner, tenant) = (fleet.client(), fleet.owner_pool(), fleet.tenant().id);
    let service = new_service(&client, 60, false, &mut History::default()).await;
    let start = "2030-03-04T10:00:00Z";
    let won = client
        .invoke(Operation::create_booking(CREATE_BOOKING, &service, start))
        .await;
    let lost = client
        .invoke(Operation::create_booking(CREATE_BOOKING, &service, start))
        .await;
    assert_eq!((won.outcome, lost.outcome), (Outcome::Ok, Outcome::Fail));
    let truth = History {
        records: vec![won.clone(), lost.clone()],
    };
    check(&owner, tenant, &truth, Invariant::SEED)
        .await
        .assert_clean();

    let lie = |what: &str, records: Vec<_>| {
        let history = History { records };
        let (owner, what) = (owner.clone(), what.to_owned());
        async move {
            let report = check(&owner, tenant, &history, Invariant::SEED).await;
            assert!(!report.violations.is_empty(), "the checker missed: {what}");
            println!("{what}: {:?}", report.violations);
        }
    };
    // The winner claimed refused: it committed.
    let mut refused = won.clone();
    refused.outcome = Outcome::Fail;
    lie("a committed operation recorded as refused", vec![refused]).await;
    // The loser claimed acknowledged: it never happened.
    let mut acknowledged = lost.clone();
    acknowledged.outcome = Outcome::Ok;
    lie(
        "a refused operation recorded as acknowledged",
        vec![acknowledged],
    )
    .await;
    // An acknowledged answer with an invocation id nobody audited.
    let mut unaudited = won.clone();
    unaudited.body.as_mut().unwrap()["invocation_id"] = uuid::Uuid::new_v4().to_string().into();
    lie(
        "an acknowledged invocation with no audit record",
        vec![unaudited],
    )
    .await;
    // Applied twice: a second row with the winner's marker, behind the host's back.
    sqlx::query(
        "INSERT INTO bookings (tenant_id, service_id, customer, starts_at, ends_at, status) \
         VALUES ($1, $2::uuid, $3, '2030-03-05T10:00:00Z', '2030-03-05T11:00:00Z', 'confirmed')",
    )
    .bind(tenant.0)
    .bind(&service)
    .bind(won.op.marker().unwrap())
    .execute(&owner)
    .await
    .unwrap();
    lie("an acknowledged operation applied twice", vec![won.clone()]).await;
}
