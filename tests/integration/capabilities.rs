//! The transaction capability called directly as Rust on a real transaction,
//! without wasm: scoping, typed errors, savepoints, and the lock discipline.

use std::sync::Arc;
use std::time::Duration;

use bookhost::bindings::{CallError, Condition, Field, Operator, Value};
use bookhost::capabilities::transaction::{InvocationTransaction, LockPlan, TransactionSettings};
use bookhost::capabilities::{CapabilityError, Doom};
use bookhost::db::errors::RetryReason;
use bookhost::TenantId;
use bookhost_tests::executors::*;
use bookhost_tests::values::{eq, field, get, text};
use bookhost_tests::*;

async fn transaction(
    pool: &sqlx::PgPool,
    tenant: TenantId,
    settings: TransactionSettings,
) -> InvocationTransaction {
    InvocationTransaction::new(
        Some(pool.acquire().await.unwrap()),
        tenant,
        Arc::new(settings),
        LockPlan::default(),
    )
}

fn call_error(result: Result<impl std::fmt::Debug, CapabilityError>) -> CallError {
    match result {
        Err(CapabilityError::Call(e)) => e,
        other => panic!("expected a typed call error, got {other:?}"),
    }
}

fn service_fields(name: &str) -> Vec<Field> {
    vec![
        field("name", text(name)),
        field("duration_minutes", Value::Integer(60)),
    ]
}

#[tokio::test]
async fn insert_query_update_delete_round_trip() {
    let pool = pool(2).await;
    let tenant = tenant(&pool).await;
    let mut tx = transaction(&pool, tenant, TransactionSettings::default()).await;
    let row = tx.insert("services", &service_fields("cut")).await.unwrap();
    let Value::Uuid(id) = get(&row, "id").clone() else {
        panic!("generated id: {row:?}")
    };
    assert!(matches!(get(&row, "created_at"), Value::Timestamp(_)));
    assert!(
        row.iter().all(|f| f.column != "tenant_id"),
        "the tenant column is never exposed"
    );

    let found = tx
        .query("services", &[eq("name", text("cut"))], &[], None)
        .await
        .unwrap();
    assert_eq!(found, vec![row.clone()]);
    let changed = tx
        .update(
            "services",
            &[eq("id", Value::Uuid(id.clone()))],
            &[field("name", text("trim"))],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let none = tx
        .query(
            "services",
            &[Condition {
                column: "name".into(),
                op: Operator::In(vec![]),
            }],
            &[],
            None,
        )
        .await
        .unwrap();
    assert!(none.is_empty(), "an empty in-list matches nothing");
    assert_eq!(
        tx.delete("services", &[eq("id", Value::Uuid(id))])
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    let left = services_of(tenant).await;
    assert_eq!(left, 0);
}

#[tokio::test]
async fn names_outside_the_catalog_and_bad_values_are_refused() {
    let pool = pool(2).await;
    let tenant = tenant(&pool).await;
    let mut tx = transaction(&pool, tenant, TransactionSettings::default()).await;
    let tenant_value = Value::Uuid(tenant.to_string());
    assert!(matches!(
        call_error(
            tx.query(
                "services",
                &[eq("tenant_id", tenant_value.clone())],
                &[],
                None
            )
            .await
        ),
        CallError::Forbidden(_)
    ));
    let mut with_tenant = service_fields("x");
    with_tenant.push(field("tenant_id", tenant_value));
    assert!(matches!(
        call_error(tx.insert("services", &with_tenant).await),
        CallError::Forbidden(_)
    ));
    assert!(matches!(
        call_error(tx.query("pg_authid", &[], &[], None).await),
        CallError::NotFound(_)
    ));
    assert!(matches!(
        call_error(
            tx.query(
                "services",
                &[eq("name\"; DROP TABLE services; --", text("x"))],
                &[],
                None
            )
            .await
        ),
        CallError::Invalid(_)
    ));
    assert!(matches!(
        call_error(
            tx.query("services", &[eq("duration_minutes", text("60"))], &[], None)
                .await
        ),
        CallError::Invalid(_)
    ));
    assert!(matches!(
        call_error(
            tx.insert(
                "services",
                &[field("id", Value::Uuid(uuid::Uuid::new_v4().to_string()))]
            )
            .await
        ),
        CallError::Forbidden(_)
    ));
    assert!(matches!(
        call_error(tx.delete("services", &[]).await),
        CallError::Invalid(_)
    ));
    assert!(matches!(
        call_error(
            tx.insert(
                "storefront_pages",
                &[
                    field("slug", text("p")),
                    field("config", Value::Json("{oops".into()))
                ]
            )
            .await
        ),
        CallError::Invalid(_)
    ));
    // Values PostgreSQL would refuse mid-query, which would abort the whole
    // transaction (queries run without a savepoint): refused as typed errors
    // before they reach it. Found by fuzz::arbitrary_calls_on_a_real_transaction_end_typed.
    assert!(matches!(
        call_error(
            tx.query("bookings", &[eq("customer", text("a\0b"))], &[], None)
                .await
        ),
        CallError::Invalid(m) if m.contains("NUL")
    ));
    assert!(matches!(
        call_error(
            tx.query(
                "storefront_pages",
                &[eq("config", Value::Json(r#"{"k": "\u0000"}"#.into()))],
                &[],
                None
            )
            .await
        ),
        CallError::Invalid(m) if m.contains("NUL")
    ));
    assert!(matches!(
        call_error(
            tx.query(
                "bookings",
                &[eq("starts_at", Value::Timestamp(-210_866_803_200_000_001))],
                &[],
                None
            )
            .await
        ),
        CallError::Invalid(m) if m.contains("out of range")
    ));
    // A SQL payload in a value is only ever data.
    let payload = "x'); SELECT set_config('app.tenant', 'other', false); --";
    let row = tx
        .insert("services", &service_fields(payload))
        .await
        .unwrap();
    assert_eq!(get(&row, "name"), &text(payload));
    tx.rollback().await;
}

#[tokio::test]
async fn a_conflict_is_typed_and_leaves_the_transaction_usable() {
    let pool = pool(2).await;
    let tenant = tenant(&pool).await;
    let mut tx = transaction(&pool, tenant, TransactionSettings::default()).await;
    let service = tx
        .insert("services", &service_fields("massage"))
        .await
        .unwrap();
    let service_id = get(&service, "id").clone();
    let booking = |start: i64| {
        vec![
            field("service_id", service_id.clone()),
            field("customer", text("c")),
            field("starts_at", Value::Timestamp(start)),
            field("ends_at", Value::Timestamp(start + 3_600_000_000)),
            field("status", text("confirmed")),
        ]
    };
    let t0 = 1_900_000_000_000_000;
    tx.insert("bookings", &booking(t0)).await.unwrap();
    match call_error(tx.insert("bookings", &booking(t0 + 1_800_000_000)).await) {
        CallError::Conflict(info) => assert_eq!(info.constraint, "bookings_no_overlap"),
        other => panic!("expected conflict, got {other:?}"),
    }
    let unknown_service = vec![
        field("service_id", Value::Uuid(uuid::Uuid::new_v4().to_string())),
        field("customer", text("c")),
        field("starts_at", Value::Timestamp(t0)),
        field("ends_at", Value::Timestamp(t0 + 1)),
    ];
    match call_error(tx.insert("bookings", &unknown_service).await) {
        CallError::Conflict(info) => assert_eq!(info.constraint, "bookings_service_fk"),
        other => panic!("expected conflict, got {other:?}"),
    }
    let rows = tx
        .query("bookings", &[eq("service_id", service_id)], &[], None)
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        1,
        "the transaction is still usable after refused writes"
    );
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_contended_lock_after_reading_dooms_the_attempt_for_replay() {
    let pool = pool(4).await;
    let tenant = tenant(&pool).await;
    let mut holder = transaction(&pool, tenant, TransactionSettings::default()).await;
    holder.lock("slot:1").await.unwrap();
    holder.query("services", &[], &[], Some(1)).await.unwrap();

    let mut late = transaction(&pool, tenant, TransactionSettings::default()).await;
    late.query("services", &[], &[], Some(1)).await.unwrap(); // snapshot taken
    match late.lock("slot:1").await {
        Err(CapabilityError::Abort(Doom::Retry {
            reason: RetryReason::LockContended,
            contended_key: Some(key),
        })) => {
            assert_eq!(key, "slot:1")
        }
        other => panic!("expected the attempt to be doomed, got {other:?}"),
    }
    assert!(
        late.plan().queue_first.contains("slot:1"),
        "the replay queues on the key first"
    );
    late.rollback().await;

    // Another tenant's identical key is a different lock.
    let other_tenant = bookhost_tests::tenant(&pool).await;
    let mut neighbour = transaction(&pool, other_tenant, TransactionSettings::default()).await;
    neighbour
        .query("services", &[], &[], Some(1))
        .await
        .unwrap();
    neighbour.lock("slot:1").await.unwrap();
    neighbour.rollback().await;
    holder.rollback().await;
}

#[tokio::test]
async fn a_lock_taken_first_waits_and_then_sees_the_holders_commit() {
    let pool = pool(4).await;
    let tenant = tenant(&pool).await;
    let mut holder = transaction(&pool, tenant, TransactionSettings::default()).await;
    holder.lock("day:1").await.unwrap();
    holder
        .insert("services", &service_fields("first"))
        .await
        .unwrap();

    let waiter_pool = pool.clone();
    let waiter = tokio::spawn(async move {
        let mut tx = transaction(&waiter_pool, tenant, TransactionSettings::default()).await;
        tx.lock("day:1").await.unwrap();
        let seen = tx
            .query("services", &[eq("name", text("first"))], &[], None)
            .await
            .unwrap()
            .len();
        tx.commit().await.unwrap();
        seen
    });
    // Ordering only (not an assertion): let the waiter queue before the commit.
    tokio::time::sleep(Duration::from_millis(200)).await;
    holder.commit().await.unwrap();
    assert_eq!(
        waiter.await.unwrap(),
        1,
        "the waiter decides on a snapshot taken after the holder committed"
    );
}

#[tokio::test]
async fn a_lock_wait_is_bounded_by_the_lock_timeout() {
    let pool = pool(4).await;
    let tenant = tenant(&pool).await;
    let settings = TransactionSettings {
        lock_timeout: Duration::from_millis(100),
        ..TransactionSettings::default()
    };
    let mut holder = transaction(&pool, tenant, settings.clone()).await;
    holder.lock("busy").await.unwrap();
    let mut waiter = transaction(&pool, tenant, settings).await;
    assert!(matches!(
        call_error(waiter.lock("busy").await),
        CallError::LockTimeout(_)
    ));
    // The waiter's transaction has not started and is still usable.
    assert!(waiter
        .query("services", &[], &[], None)
        .await
        .unwrap()
        .is_empty());
    waiter.rollback().await;
    holder.rollback().await;
}

/// The session state a connection goes back to the pool with.
async fn leftover_locks_and_timeout(pool: &sqlx::PgPool) -> (i64, String) {
    let mut conn = pool.acquire().await.unwrap();
    let locks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    let timeout: String = sqlx::query_scalar("SELECT current_setting('lock_timeout')")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    (locks, timeout)
}

#[tokio::test]
async fn a_lock_taken_first_begins_the_transaction_and_ends_with_it() {
    // One connection: whatever the attempt leaves on it, the next one gets.
    let pool = pool(1).await;
    let tenant = tenant(&pool).await;
    let before = leftover_locks_and_timeout(&pool).await;
    assert_eq!(before.0, 0);

    let mut tx = transaction(&pool, tenant, TransactionSettings::default()).await;
    tx.lock("day:1").await.unwrap();
    tx.insert("services", &service_fields("locked"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        leftover_locks_and_timeout(&pool).await,
        before,
        "committed: the lock and its timeout are released with the commit"
    );
    assert_eq!(services_of(tenant).await, 1);

    let mut tx = transaction(&pool, tenant, TransactionSettings::default()).await;
    tx.lock("day:1").await.unwrap();
    tx.insert("services", &service_fields("rolled back"))
        .await
        .unwrap();
    tx.rollback().await;
    assert_eq!(leftover_locks_and_timeout(&pool).await, before);
    assert_eq!(
        services_of(tenant).await,
        1,
        "the rollback undid the insert"
    );
}

#[tokio::test]
async fn a_connection_found_dead_at_the_first_lock_dooms_the_attempt_for_replay() {
    let pool = pool(1).await;
    let tenant = tenant(&pool).await;
    close_the_only_connection(&pool).await;
    let mut tx = transaction(&pool, tenant, TransactionSettings::default()).await;
    match tx.lock("day:1").await {
        Err(CapabilityError::Abort(Doom::Retry {
            reason: RetryReason::ConnectionLost,
            ..
        })) => {}
        other => panic!("expected a replay on another connection, got {other:?}"),
    }
    tx.rollback().await;
}

#[tokio::test]
async fn replays_in_the_replay_queue_take_turns_per_tenant_and_executor() {
    let pool = pool(6).await;
    let tenant = tenant(&pool).await;
    let settings = TransactionSettings {
        lock_timeout: Duration::from_millis(100),
        ..TransactionSettings::default()
    };
    let queued = |executor: &str| LockPlan {
        replay_queue: Some(executor.to_owned()),
        ..LockPlan::default()
    };
    let start = |tenant: TenantId, plan: LockPlan| {
        let (pool, settings) = (pool.clone(), settings.clone());
        async move {
            let mut tx = InvocationTransaction::new(
                Some(pool.acquire().await.unwrap()),
                tenant,
                Arc::new(settings),
                plan,
            );
            tx.acquire_planned_locks().await.unwrap();
            tx
        }
    };
    let holder = start(tenant, queued(CREATE_BOOKING)).await;
    assert!(holder.plan().replay_queue.is_some(), "the queue was free");

    // The same tenant's next replay of the same executor waits its turn
    // (here: a whole lock timeout, then it goes on unqueued).
    let waiter = start(tenant, queued(CREATE_BOOKING)).await;
    assert_eq!(waiter.plan().replay_queue, None, "it had to wait");
    waiter.rollback().await;
    // Another executor's queue, another tenant's queue: not this one.
    let other_executor = start(tenant, queued(DELETE_SERVICE)).await;
    assert!(other_executor.plan().replay_queue.is_some());
    let other_tenant = start(bookhost_tests::tenant(&pool).await, queued(CREATE_BOOKING)).await;
    assert!(other_tenant.plan().replay_queue.is_some());
    other_executor.rollback().await;
    other_tenant.rollback().await;

    // The holder's turn ends with its transaction: the next one is served.
    holder.commit().await.unwrap();
    let next = start(tenant, queued(CREATE_BOOKING)).await;
    assert!(next.plan().replay_queue.is_some());
    next.rollback().await;
}

#[tokio::test]
async fn a_replay_queues_on_the_keys_its_attempt_asked_for_and_no_others() {
    let pool = pool(4).await;
    let tenant = tenant(&pool).await;
    let mut holder = transaction(&pool, tenant, TransactionSettings::default()).await;
    holder.lock("b").await.unwrap();

    // An attempt planned (by an earlier one) to queue on "stale", which this
    // attempt never asks for; it asks for "a", then finds "b" taken.
    let plan = LockPlan {
        queue_first: ["stale".to_owned()].into(),
        ..LockPlan::default()
    };
    let mut late = InvocationTransaction::new(
        Some(pool.acquire().await.unwrap()),
        tenant,
        Arc::new(TransactionSettings::default()),
        plan,
    );
    late.acquire_planned_locks().await.unwrap();
    late.query("services", &[], &[], Some(1)).await.unwrap();
    late.lock("a").await.unwrap();
    assert!(matches!(
        late.lock("b").await,
        Err(CapabilityError::Abort(Doom::Retry {
            reason: RetryReason::LockContended,
            ..
        }))
    ));
    assert_eq!(
        late.plan().queue_first.iter().collect::<Vec<_>>(),
        ["a", "b"],
        "the next attempt queues on what this one asked for, in order"
    );
    late.rollback().await;
    holder.rollback().await;
}
