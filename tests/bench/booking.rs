//! The booking domain's costs: availability for a month of a busy service (through find-slots in wasm, and the host's own read and computation behind the HTTP endpoint), and create-booking's throughput on a service with the richer rules against a plain one and against the create-booking of before the domain (built from the previous commit, if given).

use std::sync::Arc;
use std::time::Instant;

use bookhost::runtime::{EngineSettings, ExecutorEngine, ExecutorRegistry};
use bookhost::schedule::Calendar;
use bookhost::{Host, HostSettings, InvocationOutcome, TenantId};
use bookhost_tests::executors::*;
use bookhost_tests::{executors, owner, pool, tenant};
use serde_json::{json, Value};

use super::percentile;

const ZONE: &str = "Europe/Paris";
const CLIENTS: usize = 8;
const PER_ROUND: usize = 600;
const ROUNDS: usize = 5;
const SAMPLES: usize = 200;

async fn ok(host: &Host, tenant: TenantId, executor: &str, input: Value) -> Value {
    let report = host
        .invoke(tenant, executor, &input.to_string())
        .await
        .unwrap();
    match report.outcome {
        InvocationOutcome::Ok { output } => output,
        other => panic!("{executor}: {other:?}"),
    }
}

async fn service(host: &Host, tenant: TenantId, input: Value) -> String {
    ok(host, tenant, CREATE_SERVICE, input).await["service"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn resource(host: &Host, tenant: TenantId, name: &str, services: &[&String]) -> String {
    let input = json!({"name": name, "service_ids": services});
    ok(host, tenant, CREATE_RESOURCE, input).await["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn sorted_ms(mut samples: Vec<f64>) -> Vec<f64> {
    samples.sort_by(f64::total_cmp);
    samples
}

/// Both parts; the Markdown rows go to `report`.
pub async fn booking(report: &mut String) {
    availability_month(report).await;
    create_booking_rules(report).await;
}

/// A month of a busy salon: Mon-Sat 09:00-18:00 Paris, 30-minute haircuts
/// by Ana or Ben, two thirds of the haircut slots booked on Ben, and Ana
/// busy coloring two hours a day.
async fn availability_month(report: &mut String) {
    let host = Host::new(pool(8).await, executors(), HostSettings::default());
    let tenant = tenant(&owner()).await;
    bookhost::db::set_tenant_time_zone(&owner(), tenant, ZONE)
        .await
        .unwrap();
    let haircut = service(
        &host,
        tenant,
        json!({"name": "Haircut", "duration_minutes": 30, "buffer_after_minutes": 0}),
    )
    .await;
    let color = service(
        &host,
        tenant,
        json!({"name": "Color", "duration_minutes": 60}),
    )
    .await;
    let ana = resource(&host, tenant, "Ana", &[&haircut, &color]).await;
    let ben = resource(&host, tenant, "Ben", &[&haircut]).await;
    let weekly: Vec<Value> = (1..=6)
        .map(|d| json!({"weekday": d, "opens": "09:00", "closes": "18:00"}))
        .collect();
    ok(
        &host,
        tenant,
        SET_OPENING_HOURS,
        json!({"weekly": weekly, "exceptions": [{"day": "2099-12-25", "closed": true}]}),
    )
    .await;
    let first_day = (chrono::Utc::now() + chrono::Duration::days(7)).date_naive();
    let busy = |sql: &'static str, service: String, resource: String| async move {
        sqlx::query(sql)
            .bind(tenant.0)
            .bind(uuid::Uuid::parse_str(&service).unwrap())
            .bind(uuid::Uuid::parse_str(&resource).unwrap())
            .bind(first_day)
            .execute(&owner())
            .await
            .unwrap()
            .rows_affected()
    };
    let haircuts = busy(
        "INSERT INTO bookings (tenant_id, service_id, customer, starts_at, ends_at, status, resource_id) \
         SELECT $1, $2, 'busy', s, s + interval '30 minutes', 'confirmed', $3 \
         FROM generate_series($4::date, $4::date + 30, interval '1 day') d, generate_series(0, 17) k, \
              LATERAL (SELECT (d::date + time '09:00' + k * interval '30 minutes') AT TIME ZONE 'Europe/Paris' AS s) x \
         WHERE extract(isodow FROM d) <= 6 AND k % 3 <> 0",
        haircut.clone(),
        ben,
    )
    .await;
    let colors = busy(
        "INSERT INTO bookings (tenant_id, service_id, customer, starts_at, ends_at, status, resource_id) \
         SELECT $1, $2, 'busy', s, s + interval '1 hour', 'confirmed', $3 \
         FROM generate_series($4::date, $4::date + 30, interval '1 day') d, (VALUES (10), (15)) h(hour), \
              LATERAL (SELECT (d::date + make_time(h.hour, 0, 0)) AT TIME ZONE 'Europe/Paris' AS s) x \
         WHERE extract(isodow FROM d) <= 6",
        color,
        ana,
    )
    .await;
    let from = first_day.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let to = from + chrono::Duration::days(31);
    let rfc =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let input = json!({"service_id": haircut, "from": rfc(from), "to": rfc(to)});

    let (mut wasm, mut offered) = (Vec::new(), 0);
    for _ in 0..SAMPLES {
        let started = Instant::now();
        let output = ok(&host, tenant, FIND_SLOTS, input.clone()).await;
        wasm.push(started.elapsed().as_secs_f64() * 1000.0);
        offered = output["slots"].as_array().unwrap().len();
    }
    let service_id = uuid::Uuid::parse_str(&haircut).unwrap();
    let mut native = Vec::new();
    for _ in 0..SAMPLES {
        let started = Instant::now();
        let now = chrono::Utc::now();
        let rules = bookhost::db::reads::schedule(host.pool(), tenant, service_id, from, to, now)
            .await
            .unwrap()
            .unwrap();
        let slots = Calendar::new(&rules, now.timestamp_micros())
            .unwrap()
            .free_slots(from.timestamp_micros(), to.timestamp_micros())
            .unwrap();
        native.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(slots.len(), offered);
    }
    let (wasm, native) = (sorted_ms(wasm), sorted_ms(native));
    report.push_str(&format!(
        "\n### Availability for a month of a busy service\n\n\
         31 days of a salon open Mon-Sat 09:00-18:00 ({ZONE}): 30-minute haircuts by Ana or Ben, \
         {haircuts} haircut bookings on Ben (two thirds of the slots), {colors} one-hour colorings on \
         Ana; {offered} slots offered. {SAMPLES} sequential questions each.\n\n\
         | path | p50 ms | p99 ms |\n|---|---|---|\n\
         | `find-slots` (wasm executor, `availability` capability in its transaction, slots as JSON) | {:.2} | {:.2} |\n\
         | the host's read and computation (`GET /v1/services/{{id}}/availability` without HTTP) | {:.2} | {:.2} |\n",
        percentile(&wasm, 0.5),
        percentile(&wasm, 0.99),
        percentile(&native, 0.5),
        percentile(&native, 0.99),
    ));
}

/// A host whose only executor is the create-booking of before the booking
/// domain (`BOOKHOST_BENCH_BEFORE`, a component built from the previous
/// commit), registered apart so its name does not clash.
async fn before_host() -> Option<(Host, String)> {
    let path = std::env::var("BOOKHOST_BENCH_BEFORE").ok()?;
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("BOOKHOST_BENCH_BEFORE={path}: {e}"));
    let registry =
        ExecutorRegistry::new(ExecutorEngine::new(EngineSettings::default()).unwrap()).unwrap();
    registry.load(&bytes).await.unwrap();
    Some((
        Host::new(pool(16).await, Arc::new(registry), HostSettings::default()),
        path,
    ))
}

/// Book `count` distinct slots, `CLIENTS` at a time; `slot(i)` is the i-th
/// input. Returns invocations per second, and how many gave up replaying
/// (`retries_exhausted`: every other outcome but ok is a failure).
async fn run_round(
    host: &Host,
    tenant: TenantId,
    count: usize,
    slot: Arc<dyn Fn(usize) -> Value + Send + Sync>,
) -> (f64, usize) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let exhausted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (host, next, slot) = (host.clone(), next.clone(), slot.clone());
            let exhausted = exhausted.clone();
            tokio::spawn(async move {
                let executor = host.registry().get(CREATE_BOOKING).unwrap();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let input = slot(i).to_string();
                    let report = host
                        .invoke_executor(tenant, &executor, &input, Default::default())
                        .await
                        .unwrap();
                    match report.outcome {
                        InvocationOutcome::Ok { .. } => {}
                        InvocationOutcome::RetriesExhausted { .. } => {
                            exhausted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        other => panic!("create-booking on {input}: {other:?}"),
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    (
        count as f64 / started.elapsed().as_secs_f64(),
        exhausted.load(std::sync::atomic::Ordering::Relaxed),
    )
}

/// create-booking on distinct slots: a plain service (no hours, buffers or
/// resources, as before the domain), a service with every rule, and the
/// previous create-booking on a plain service; rounds interleaved.
async fn create_booking_rules(report: &mut String) {
    let host = Host::new(pool(16).await, executors(), HostSettings::default());
    let plain_tenant = tenant(&owner()).await;
    let rich_tenant = tenant(&owner()).await;
    bookhost::db::set_tenant_time_zone(&owner(), rich_tenant, ZONE)
        .await
        .unwrap();
    let mut plain = Vec::new();
    let mut rich = Vec::new();
    for i in 0..CLIENTS {
        plain.push(
            service(
                &host,
                plain_tenant,
                json!({"name": format!("plain-{i}"), "duration_minutes": 30}),
            )
            .await,
        );
        let id = service(
            &host,
            rich_tenant,
            json!({"name": format!("rich-{i}"), "duration_minutes": 30,
                   "buffer_before_minutes": 5, "buffer_after_minutes": 10,
                   "slot_increment_minutes": 60, "min_notice_minutes": 60,
                   "booking_window_days": 365}),
        )
        .await;
        resource(&host, rich_tenant, &format!("staff-{i}"), &[&id]).await;
        rich.push(id);
    }
    let weekly: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "opens": "08:00", "closes": "20:00"}))
        .collect();
    ok(
        &host,
        rich_tenant,
        SET_OPENING_HOURS,
        json!({"weekly": weekly}),
    )
    .await;
    let before = before_host().await;
    let before_tenant = tenant(&owner()).await;
    let mut before_services = Vec::new();
    if before.is_some() {
        for i in 0..CLIENTS {
            before_services.push(
                service(
                    &host,
                    before_tenant,
                    json!({"name": format!("before-{i}"), "duration_minutes": 30}),
                )
                .await,
            );
        }
    }
    // Slot i of a series: service i % CLIENTS, hour i / CLIENTS from the
    // series' first day, within 08:00-20:00 Paris (12 a day).
    let day0 = (chrono::Utc::now() + chrono::Duration::days(2)).date_naive();
    let input = |services: Vec<String>, offset: usize, paris_hours: bool| {
        Arc::new(move |i: usize| {
            let n = offset + i;
            let hour = n / CLIENTS;
            let (day, at) = if paris_hours {
                (hour / 12, 8 + hour % 12)
            } else {
                (hour / 24, hour % 24)
            };
            let date = day0 + chrono::Duration::days(day as i64);
            let start = if paris_hours {
                let civil = jiff::civil::date(
                    chrono::Datelike::year(&date) as i16,
                    chrono::Datelike::month(&date) as i8,
                    chrono::Datelike::day(&date) as i8,
                )
                .at(at as i8, 0, 0, 0);
                let zoned = civil
                    .to_zoned(jiff::tz::TimeZone::get(ZONE).unwrap())
                    .unwrap();
                chrono::DateTime::from_timestamp_micros(zoned.timestamp().as_microsecond()).unwrap()
            } else {
                date.and_hms_opt(at as u32, 0, 0).unwrap().and_utc()
            };
            json!({"service_id": services[n % CLIENTS], "customer": "bench",
                   "start": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)})
        }) as Arc<dyn Fn(usize) -> Value + Send + Sync>
    };
    let (mut plain_rate, mut rich_rate, mut before_rate) = (Vec::new(), Vec::new(), Vec::new());
    let mut gave_up = [0usize; 3];
    // A warm-up round of each, then the measured rounds.
    for round in 0..=ROUNDS {
        let offset = round * PER_ROUND;
        let (p, p_gave_up) = run_round(
            &host,
            plain_tenant,
            PER_ROUND,
            input(plain.clone(), offset, false),
        )
        .await;
        let (r, r_gave_up) = run_round(
            &host,
            rich_tenant,
            PER_ROUND,
            input(rich.clone(), offset, true),
        )
        .await;
        let (b, b_gave_up) = match &before {
            Some((before_host, _)) => {
                run_round(
                    before_host,
                    before_tenant,
                    PER_ROUND,
                    input(before_services.clone(), offset, false),
                )
                .await
            }
            None => (f64::NAN, 0),
        };
        eprintln!("round {round}: plain {p:.0}/s ({p_gave_up} gave up), rich {r:.0}/s ({r_gave_up}), before {b:.0}/s ({b_gave_up})");
        for (total, n) in gave_up.iter_mut().zip([p_gave_up, r_gave_up, b_gave_up]) {
            *total += n;
        }
        if round > 0 {
            plain_rate.push(p);
            rich_rate.push(r);
            before_rate.push(b);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ratio = super::median_ratio(&rich_rate, &plain_rate);
    let (p, r) = (median(plain_rate.clone()), median(rich_rate));
    report.push_str(&format!(
        "\n### create-booking with the richer rules\n\n\
         Distinct slots, {CLIENTS} clients, {ROUNDS} rounds of {PER_ROUND} after a warm-up, \
         interleaved; invocations per second (median of rounds).\n\n\
         | create-booking on | inv/s | vs plain (median of per-round ratios) | gave up (`retries_exhausted`, all rounds) |\n|---|---|---|---|\n\
         | a plain service (no hours, buffers or resources) | {p:.0} | 1.00 | {} |\n\
         | a service with hours ({ZONE}), buffers, notice, window, a slot grid and a resource | {r:.0} | {ratio:.2} | {} |\n",
        gave_up[0], gave_up[1]
    ));
    if let Some((_, path)) = &before {
        let b = median(before_rate.clone());
        let ratio = super::median_ratio(&before_rate, &plain_rate);
        report.push_str(&format!(
            "| a plain service, with the create-booking of before the domain (its own query for overlaps; `{path}`) | {b:.0} | {ratio:.2} | {} |\n",
            gave_up[2]
        ));
    }
}
