//! The same create-booking three ways, for the side-by-side figures: the
//! wasm executor, its calls on the capability layer, and plain sqlx.

use super::*;

/// Slots that never collide: one hour each, far in the future, per service.
pub(super) fn slot_start(slot: usize, services: usize) -> String {
    chrono::DateTime::from_timestamp(2_000_000_000 + (slot / services) as i64 * 3600, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The same create-booking transaction as the executor, written natively.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Way {
    Wasm,
    /// Rust calling the host's capability layer (same statements, same
    /// transaction handling, no wasm).
    Capabilities,
    /// Rust with sqlx directly: BEGIN SERIALIZABLE, the two checks, INSERT.
    Sqlx,
}

pub(super) struct Run {
    pub(super) per_second: f64,
    pub(super) latencies: Vec<Duration>,
    /// Attempts beyond the first, over all invocations.
    pub(super) replays: u32,
    /// Invocations that gave up after 16 attempts.
    pub(super) gave_up: u32,
}

/// `count` bookings on distinct slots with `clients` concurrent clients.
pub(super) async fn book(
    way: Way,
    host: &Host,
    tenant: TenantId,
    services: &[String],
    first_slot: usize,
    count: usize,
    clients: usize,
) -> Run {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let settings = Arc::new(TransactionSettings::default());
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (host, services, next, settings) = (
                host.clone(),
                services.to_vec(),
                next.clone(),
                settings.clone(),
            );
            tokio::spawn(async move {
                let executor = host.registry().get(CREATE_BOOKING).unwrap();
                let mut latencies = Vec::new();
                let mut replays = 0;
                let mut gave_up = 0;
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let slot = first_slot + i;
                    let service = &services[slot % services.len()];
                    let start = slot_start(slot, services.len());
                    let began = Instant::now();
                    match way {
                        Way::Wasm => {
                            let input =
                                json!({"service_id": service, "customer": "bench", "start": start});
                            let report = host
                                .invoke_executor(
                                    tenant,
                                    &executor,
                                    &input.to_string(),
                                    Default::default(),
                                )
                                .await
                                .unwrap();
                            match report.outcome {
                                InvocationOutcome::Ok { .. } => {}
                                InvocationOutcome::RetriesExhausted { .. } => gave_up += 1,
                                other => panic!("{other:?}"),
                            }
                            replays += report.attempts - 1;
                        }
                        // Boxed as `dyn Send` futures: without it rustc cannot
                        // prove the borrows inside them Send for every lifetime.
                        Way::Capabilities => {
                            let native: std::pin::Pin<
                                Box<dyn std::future::Future<Output = u32> + Send>,
                            > = Box::pin(native_capabilities(
                                host.clone(),
                                tenant,
                                service.clone(),
                                start,
                                settings.clone(),
                            ));
                            let attempts = native.await;
                            if attempts > 16 {
                                gave_up += 1;
                            }
                            replays += attempts.min(16) - 1;
                        }
                        Way::Sqlx => {
                            let native: std::pin::Pin<
                                Box<dyn std::future::Future<Output = u32> + Send>,
                            > = Box::pin(native_sqlx(
                                host.pool().clone(),
                                tenant,
                                service.clone(),
                                start,
                            ));
                            let attempts = native.await;
                            if attempts > 16 {
                                gave_up += 1;
                            }
                            replays += attempts.min(16) - 1;
                        }
                    }
                    latencies.push(began.elapsed());
                }
                (latencies, replays, gave_up)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let (mut replays, mut gave_up) = (0, 0);
    for worker in workers {
        let (mine, my_replays, my_gave_up) = worker.await.unwrap();
        latencies.extend(mine);
        replays += my_replays;
        gave_up += my_gave_up;
    }
    let per_second = count as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    Run {
        per_second,
        latencies,
        replays,
        gave_up,
    }
}

/// The host's backoff before a replay (full jitter, 2 ms doubling to 100 ms),
/// so native and wasm replay alike.
pub(super) async fn backoff(attempt: u32) {
    let cap = (2u64 << (attempt - 2).min(10)).min(100) * 1000;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    tokio::time::sleep(Duration::from_micros(nanos % cap.max(1))).await;
}

/// The executor's three calls, as Rust on the capability layer.
pub(super) async fn booking_calls(
    tx: &mut InvocationTransaction,
    service: String,
    start_micros: i64,
) -> Result<(), CapabilityError> {
    use bookhost::bindings::Value;
    let by_id = vec![eq("id", Value::Uuid(service.clone()))];
    let found = tx.query("services", &by_id, &[], Some(1)).await?;
    let minutes = match get(&found[0], "duration_minutes") {
        Value::Integer(m) => *m,
        other => panic!("{other:?}"),
    };
    let end = start_micros + minutes * 60_000_000;
    let overlap = vec![
        eq("service_id", Value::Uuid(service.clone())),
        is_in("status", vec![text("pending"), text("confirmed")]),
        lt("starts_at", Value::Timestamp(end)),
        gt("ends_at", Value::Timestamp(start_micros)),
    ];
    let overlapping = tx.query("bookings", &overlap, &[], Some(1)).await?;
    assert!(overlapping.is_empty());
    let fields = vec![
        field("service_id", Value::Uuid(service)),
        field("customer", Value::Text("bench".into())),
        field("starts_at", Value::Timestamp(start_micros)),
        field("ends_at", Value::Timestamp(end)),
        field("status", Value::Text("confirmed".into())),
    ];
    tx.insert("bookings", &fields).await?;
    Ok(())
}

/// create-booking through the capability layer, replayed like the host does.
pub(super) async fn native_capabilities(
    host: Host,
    tenant: TenantId,
    service: String,
    start: String,
    settings: Arc<TransactionSettings>,
) -> u32 {
    let start_micros = chrono::DateTime::parse_from_rfc3339(&start)
        .unwrap()
        .timestamp_micros();
    for attempt in 1..=16 {
        if attempt > 1 {
            backoff(attempt).await;
        }
        let mut tx = InvocationTransaction::new(
            Some(host.pool().acquire().await.unwrap()),
            tenant,
            settings.clone(),
            LockPlan::default(),
        );
        match booking_calls(&mut tx, service.clone(), start_micros).await {
            Ok(()) => match tx.commit().await {
                Ok(()) => return attempt,
                Err(Doom::Retry { .. }) => continue,
                Err(doom) => panic!("{doom}"),
            },
            Err(CapabilityError::Abort(Doom::Retry { .. })) => {
                tx.rollback().await;
                continue;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    // Gave up, like the host's retries_exhausted.
    17
}

/// create-booking as plain sqlx, with the same SQL shape and retry.
pub(super) async fn native_sqlx(
    pool: sqlx::PgPool,
    tenant: TenantId,
    service: String,
    start: String,
) -> u32 {
    let service = uuid::Uuid::parse_str(&service).unwrap();
    let start = chrono::DateTime::parse_from_rfc3339(&start)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut conn = pool.acquire().await.unwrap();
    for attempt in 1..=16 {
        if attempt > 1 {
            backoff(attempt).await;
        }
        match sqlx_attempt(&mut conn, tenant, service, start).await {
            Ok(()) => return attempt,
            Err(e) if bookhost::db::errors::sqlstate(&e).as_deref() == Some("40001") => {
                let _ = sqlx::Executor::execute(&mut *conn, "ROLLBACK").await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    // Gave up, like the host's retries_exhausted.
    17
}

pub(super) async fn sqlx_attempt(
    conn: &mut sqlx::PgConnection,
    tenant: TenantId,
    service: uuid::Uuid,
    start: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    let begin = format!(
        "BEGIN ISOLATION LEVEL SERIALIZABLE; {}",
        bookhost::db::set_tenant_sql(tenant)
    );
    sqlx::Executor::execute(&mut *conn, begin.as_str()).await?;
    let minutes: i64 = sqlx::query_scalar(
        "SELECT duration_minutes FROM services WHERE tenant_id = $1 AND id = $2 LIMIT 1",
    )
    .bind(tenant.0)
    .bind(service)
    .fetch_one(&mut *conn)
    .await?;
    let end = start + chrono::Duration::minutes(minutes);
    let taken: Option<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM bookings WHERE tenant_id = $1 AND service_id = $2 \
         AND status IN ('pending', 'confirmed') AND starts_at < $3 AND ends_at > $4 LIMIT 1",
    )
    .bind(tenant.0)
    .bind(service)
    .bind(end)
    .bind(start)
    .fetch_optional(&mut *conn)
    .await?;
    assert!(taken.is_none());
    sqlx::query(
        "INSERT INTO bookings (tenant_id, service_id, customer, starts_at, ends_at, status) \
         VALUES ($1, $2, 'bench', $3, $4, 'confirmed') RETURNING id",
    )
    .bind(tenant.0)
    .bind(service)
    .bind(start)
    .bind(end)
    .execute(&mut *conn)
    .await?;
    sqlx::Executor::execute(&mut *conn, "COMMIT").await?;
    Ok(())
}
