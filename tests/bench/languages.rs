//! Rust, TypeScript and Python `create-booking` side by side: component size, compile time, load from the artifact cache, instantiation and first call, throughput on distinct slots, and memory per live instance.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bookhost::runtime::{EngineSettings, ExecutorEngine, ExecutorRegistry};
use bookhost::{Host, InvocationOutcome};
use bookhost_tests::executors::*;
use bookhost_tests::{components_dir, create_service, owner, pool, tenant};
use serde_json::json;

const LANGUAGES: [(&str, &str); 3] = [
    ("Rust", CREATE_BOOKING),
    ("TypeScript", CREATE_BOOKING_TS),
    ("Python", CREATE_BOOKING_PY),
];

fn say(report: &mut String, line: impl AsRef<str>) {
    println!("{}", line.as_ref());
    let _ = writeln!(report, "{}", line.as_ref());
}

fn p50(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn registry(keep_resident_bytes: usize, cache: Option<&std::path::Path>) -> ExecutorRegistry {
    let engine = ExecutorEngine::new(EngineSettings {
        max_instances: 80,
        keep_resident_bytes,
        ..EngineSettings::default()
    })
    .unwrap();
    let registry = ExecutorRegistry::new(engine).unwrap();
    match cache {
        Some(dir) => registry.with_artifact_cache(dir.to_path_buf()).unwrap(),
        None => registry,
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The input every first call gets: refused by the executor's own input
/// check before any capability call (the bare store has no database), so
/// it prices instantiation plus the language's start-up and JSON handling.
const REFUSED: &str =
    r#"{"service_id": "not-a-uuid", "customer": "bench", "start": "2030-01-01T10:00:00Z"}"#;

struct Row {
    language: &'static str,
    size: usize,
    compile: Duration,
    cached: Duration,
    instantiate: Duration,
    first_call: Duration,
    invoke: Duration,
    per_second: f64,
    rss_per_instance_kib: f64,
}

pub async fn languages(report: &mut String) {
    say(report, "## 9. Executors in Rust, TypeScript and Python\n");
    let cache =
        std::env::temp_dir().join(format!("bookhost-bench-languages-{}", std::process::id()));
    let mut rows = Vec::new();
    for (language, name) in LANGUAGES {
        let bytes = std::fs::read(components_dir().join(format!("{name}.wasm"))).unwrap();
        // Compile (and describe) from the bytes: 3 fresh registries.
        let mut compile = Vec::new();
        for _ in 0..3 {
            let registry = registry(EngineSettings::default().keep_resident_bytes, None);
            let started = Instant::now();
            registry.load(&bytes).await.unwrap();
            compile.push(started.elapsed());
        }
        // Fill the artifact cache, then load from it: 9 fresh registries.
        registry(EngineSettings::default().keep_resident_bytes, Some(&cache))
            .load(&bytes)
            .await
            .unwrap();
        let mut cached = Vec::new();
        for _ in 0..9 {
            let registry = registry(EngineSettings::default().keep_resident_bytes, Some(&cache));
            let started = Instant::now();
            registry.load(&bytes).await.unwrap();
            cached.push(started.elapsed());
        }
        // Instantiate, and instantiate plus the first call, 300 each after 30.
        let registry = registry(EngineSettings::default().keep_resident_bytes, Some(&cache));
        let executor = registry.load(&bytes).await.unwrap();
        let (mut instantiate, mut first_call) = (Vec::new(), Vec::new());
        for i in 0..330 {
            let (_, bare) = registry
                .instantiate_for_bench(&executor, None)
                .await
                .unwrap();
            let (_, called) = registry
                .instantiate_for_bench(&executor, Some(REFUSED))
                .await
                .unwrap();
            if i >= 30 {
                instantiate.push(bare);
                first_call.push(called);
            }
        }
        // Memory: 32 live instances, each after its first call.
        let before = rss_kib();
        let mut live = Vec::new();
        for _ in 0..32 {
            live.push(
                registry
                    .live_instance_for_bench(&executor, Some(REFUSED))
                    .await
                    .unwrap(),
            );
        }
        let rss_per_instance_kib = rss_kib().saturating_sub(before) as f64 / 32.0;
        drop(live);
        rows.push(Row {
            language,
            size: bytes.len(),
            compile: p50(compile),
            cached: p50(cached),
            instantiate: p50(instantiate),
            first_call: p50(first_call),
            invoke: Duration::ZERO,
            per_second: 0.0,
            rss_per_instance_kib,
        });
    }

    // End to end on a real database: sequential invocations (p50), then
    // throughput with 8 clients on distinct slots; languages interleaved,
    // three rounds, the best round of each.
    let host = Host::new(
        pool(24).await,
        bookhost_tests::executors(),
        crate::suite::unaudited(),
    );
    let tenant = tenant(&owner()).await;
    let mut services = Vec::new();
    for i in 0..50 {
        services.push(create_service(&host, tenant, &format!("lang-{i}"), 60).await);
    }
    let mut slot = 0usize;
    let mut next_input = || {
        slot += 1;
        let start = chrono::DateTime::from_timestamp(
            1_950_000_000 + (slot / services.len()) as i64 * 3600,
            0,
        )
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        json!({"service_id": services[slot % services.len()], "customer": "bench", "start": start})
            .to_string()
    };
    for _round in 0..3 {
        for row in rows.iter_mut() {
            let name = LANGUAGES
                .iter()
                .find(|(l, _)| *l == row.language)
                .unwrap()
                .1;
            let executor = host.registry().get(name).unwrap();
            let mut latencies = Vec::new();
            for _ in 0..100 {
                let input = next_input();
                let started = Instant::now();
                let answer = host
                    .invoke_executor(tenant, &executor, &input, Default::default())
                    .await
                    .unwrap();
                latencies.push(started.elapsed());
                assert!(
                    matches!(answer.outcome, InvocationOutcome::Ok { .. }),
                    "{answer:?}"
                );
            }
            let invoke = p50(latencies);
            if row.invoke == Duration::ZERO || invoke < row.invoke {
                row.invoke = invoke;
            }
            let inputs: Vec<String> = (0..800).map(|_| next_input()).collect();
            let queue = std::sync::Arc::new(std::sync::Mutex::new(inputs));
            let started = Instant::now();
            let workers: Vec<_> = (0..8)
                .map(|_| {
                    let (host, executor, queue) = (host.clone(), executor.clone(), queue.clone());
                    tokio::spawn(async move {
                        loop {
                            let Some(input) = queue.lock().unwrap().pop() else {
                                break;
                            };
                            let answer = host
                                .invoke_executor(tenant, &executor, &input, Default::default())
                                .await
                                .unwrap();
                            assert!(
                                matches!(answer.outcome, InvocationOutcome::Ok { .. }),
                                "{answer:?}"
                            );
                        }
                    })
                })
                .collect();
            for worker in workers {
                worker.await.unwrap();
            }
            let per_second = 800.0 / started.elapsed().as_secs_f64();
            row.per_second = row.per_second.max(per_second);
        }
    }
    let _ = std::fs::remove_dir_all(&cache);

    say(
        report,
        "`create-booking` (Rust), `create-booking-ts` (TypeScript, ComponentizeJS/SpiderMonkey) and \
         `create-booking-py` (Python, componentize-py/CPython), the same naive action. Compile: a \
         fresh registry loading the component bytes (Cranelift, link, `describe()`), p50 of 3; \
         artifact cache: a fresh registry loading this host's compiled artifact, p50 of 9; \
         instantiate: a fresh `Store` and instance, p50 of 300; + first call: the same plus one \
         `execute` whose input the executor refuses itself (a bad `service_id`: its start-up, \
         JSON parsing and error answer, no database); invoke: one real invocation end to end \
         (booking a free slot: transaction, 3 capability calls, commit, audit off), sequential, \
         p50 of 100; throughput: 800 bookings of distinct slots by 8 clients, the best of 3 \
         rounds, languages interleaved; memory: process RSS with 32 live instances (each after \
         its first call) minus RSS before, over 32.\n",
    );
    say(
        report,
        "| language | component | compile | artifact cache | instantiate p50 | + first call p50 | invoke p50 | throughput | vs Rust | RSS per live instance |",
    );
    say(report, "|---|---|---|---|---|---|---|---|---|---|");
    let rust_rate = rows[0].per_second;
    for row in &rows {
        say(
            report,
            format!(
                "| {} | {:.1} MB | {} ms | {} ms | {} µs | {} µs | {} ms | {:.0}/s | {:.2} | {:.0} KiB |",
                row.language,
                row.size as f64 / 1e6,
                ms(row.compile),
                ms(row.cached),
                row.instantiate.as_micros(),
                row.first_call.as_micros(),
                ms(row.invoke),
                row.per_second,
                row.per_second / rust_rate,
                row.rss_per_instance_kib,
            ),
        );
    }
    say(report, "");
    keep_resident(report).await;
}

/// What a pooled slot keeps resident decides what the next instance in it
/// page-faults on, and what memory stays taken between invocations:
/// instantiation plus the first call, and the RSS 32 freed slots keep, with
/// 128 KiB, 4 MiB and 16 MiB (the default) kept.
pub async fn keep_resident(report: &mut String) {
    say(
        report,
        "How much of each freed pool slot's linear memory stays resident \
         (`EngineSettings::keep_resident_bytes`: zeroed or reset to the component's memory image \
         with `memset`/copy instead of returned to the kernel with `madvise`). Per setting: \
         instantiate + first call p50 in µs (300 after 30, the settings interleaved), and the \
         RSS that stays taken per slot after 32 instances ran their first call and were \
         dropped:\n",
    );
    let sizes = [128usize << 10, 4 << 20, 16 << 20];
    say(
        report,
        "| language | 128 KiB: first call | kept per slot | 4 MiB: first call | kept per slot | 16 MiB (default): first call | kept per slot |",
    );
    say(report, "|---|---|---|---|---|---|---|");
    for (language, name) in LANGUAGES {
        let bytes = std::fs::read(components_dir().join(format!("{name}.wasm"))).unwrap();
        let cache =
            std::env::temp_dir().join(format!("bookhost-bench-keep-{}", std::process::id()));
        let mut registries = Vec::new();
        for size in sizes {
            let registry = registry(size, Some(&cache));
            let executor = registry.load(&bytes).await.unwrap();
            registries.push((registry, executor));
        }
        let mut times = vec![Vec::new(); sizes.len()];
        for i in 0..330 {
            for (k, (registry, executor)) in registries.iter().enumerate() {
                let (_, total) = registry
                    .instantiate_for_bench(executor, Some(REFUSED))
                    .await
                    .unwrap();
                if i >= 30 {
                    times[k].push(total);
                }
            }
        }
        let mut cells = Vec::new();
        for (k, (registry, executor)) in registries.iter().enumerate() {
            let before = rss_kib();
            let mut live = Vec::new();
            for _ in 0..32 {
                live.push(
                    registry
                        .live_instance_for_bench(executor, Some(REFUSED))
                        .await
                        .unwrap(),
                );
            }
            drop(live);
            let kept = rss_kib().saturating_sub(before) as f64 / 32.0;
            cells.push(format!(
                "{} | {:.0} KiB",
                p50(std::mem::take(&mut times[k])).as_micros(),
                kept
            ));
        }
        say(report, format!("| {language} | {} |", cells.join(" | ")));
        let _ = std::fs::remove_dir_all(&cache);
    }
    say(report, "");
}
