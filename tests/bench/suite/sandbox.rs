//! What the sandbox costs: wasm against native, instantiation, host calls
//! and loading precompiled executors.

use super::*;

/// A new tenant with the 100 services the sandbox part books on.
pub(super) async fn tenant_with_services(host: &Host) -> (TenantId, Vec<String>) {
    let tenant = tenant(&owner()).await;
    let mut services = Vec::new();
    for i in 0..100 {
        services.push(create_service(host, tenant, &format!("bench-{i}"), 60).await);
    }
    (tenant, services)
}

pub(super) async fn sandbox_overhead(report: &mut Report) {
    let registry = executors();
    let unaudited = Host::new(pool(40).await, registry.clone(), unaudited());
    let audited = Host::new(pool(40).await, registry, HostSettings::default());
    let (tenant, services) = tenant_with_services(&audited).await;
    let mut slot = 0;
    book(Way::Wasm, &unaudited, tenant, &services, slot, 300, 8).await;
    slot += 300;
    report.line("## 1. Sandbox overhead: create-booking, wasm vs native\n");
    report.line(
        "Distinct slots (100 services, one tenant). The same transaction three ways: the wasm \
         executor through the host (audit off, to isolate the sandbox; audited in the last \
         column), Rust calling the host's capability layer (same statements, savepoints, \
         replay with the host's backoff), and Rust with sqlx directly (same SQL, same backoff). \
         Per client count, 5 rounds in which each way books 500 slots (150 with one client), \
         interleaved; throughput is the mean of the rounds, the ratio the median of the \
         rounds' ratios, latencies and replays over all rounds.\n",
    );
    report.line(
        "| clients | way | inv/s | p50 ms | p99 ms | replays | gave up after 16 attempts | wasm / this |",
    );
    report.line("|---|---|---|---|---|---|---|---|");
    const ROUNDS: usize = 5;
    for clients in [1usize, 8, 32] {
        let count = if clients == 1 { 150 } else { 500 };
        // (label, host, way) in the order they run in every round.
        let series: [(&str, &Host, Way); 4] = [
            ("wasm executor", &unaudited, Way::Wasm),
            ("native, capability layer", &unaudited, Way::Capabilities),
            ("native, sqlx", &unaudited, Way::Sqlx),
            ("wasm executor, audited", &audited, Way::Wasm),
        ];
        let mut rates = vec![Vec::new(); series.len()];
        let mut latencies = vec![Vec::new(); series.len()];
        let mut replays = vec![0u32; series.len()];
        let mut gave_up = vec![0u32; series.len()];
        for _ in 0..ROUNDS {
            for (i, (_, host, way)) in series.iter().enumerate() {
                let run = book(*way, host, tenant, &services, slot, count, clients).await;
                slot += count;
                rates[i].push(run.per_second);
                latencies[i].extend(run.latencies);
                replays[i] += run.replays;
                gave_up[i] += run.gave_up;
            }
        }
        for (i, (label, _, _)) in series.iter().enumerate() {
            latencies[i].sort();
            let mean = rates[i].iter().sum::<f64>() / ROUNDS as f64;
            let ratio = if i == 1 || i == 2 {
                // The median of the rounds' ratios: one round the machine's
                // other work slowed down moves it little.
                let mut ratios: Vec<f64> =
                    rates[0].iter().zip(&rates[i]).map(|(w, n)| w / n).collect();
                ratios.sort_by(f64::total_cmp);
                format!("**{:.3}**", ratios[ROUNDS / 2])
            } else {
                String::new()
            };
            report.line(format!(
                "| {clients} | {label} | {mean:.0} | {} | {} | {} | {} | {ratio} |",
                ms(percentile(&latencies[i], 0.5)),
                ms(percentile(&latencies[i], 0.99)),
                replays[i],
                gave_up[i],
            ));
        }
    }
    report.line("\nTarget: wasm / native ≥ 0.90.\n");
}

pub(super) async fn instantiation(report: &mut Report) {
    report.line("## 2. Instantiation\n");
    report.line(
        "A fresh `Store` and an instance from the executor's `InstancePre` (what every attempt \
         pays), and the same plus the first `execute` of `fixture-bench` with `{}` (returns at \
         once). 2,000 each, sequential, after 200 to warm up. With the pooling allocator, \
         Wasmtime returns a freed slot's memory to the kernel (`madvise`) unless told to keep \
         the first bytes resident and zero them with `memset`; the host keeps 16 MiB \
         (`EngineSettings::keep_resident_bytes`, the row marked *default*; section 9 shows \
         why, with JavaScript and Python executors).\n",
    );
    report.line("| allocator | instantiate p50 µs | p99 µs | + first call p50 µs | p99 µs |");
    report.line("|---|---|---|---|---|");
    let bytes = std::fs::read(components_dir().join("fixture-bench.wasm")).unwrap();
    let mut with_call_p50 = Duration::ZERO;
    for (pooling, keep_resident_bytes) in [
        (true, 0),
        (true, 64 << 10),
        (true, 128 << 10),
        (true, 256 << 10),
        (true, 16 << 20),
        (false, 0),
    ] {
        let engine = ExecutorEngine::new(EngineSettings {
            pooling,
            keep_resident_bytes,
            ..EngineSettings::default()
        })
        .unwrap();
        let registry = ExecutorRegistry::new(engine).unwrap();
        let executor = registry.load(&bytes).await.unwrap();
        let measure = |first_call: bool| {
            let (registry, executor) = (&registry, executor.clone());
            async move {
                let mut times = Vec::new();
                for i in 0..2200 {
                    let (instantiated, total) = registry
                        .instantiate_for_bench(&executor, first_call.then_some("{}"))
                        .await
                        .unwrap();
                    if i >= 200 {
                        times.push(if first_call { total } else { instantiated });
                    }
                }
                times.sort();
                times
            }
        };
        let bare = measure(false).await;
        let called = measure(true).await;
        if pooling && keep_resident_bytes == EngineSettings::default().keep_resident_bytes {
            with_call_p50 = percentile(&called, 0.5);
        }
        report.line(format!(
            "| {} | {} | {} | {} | {} |",
            if pooling {
                format!(
                    "pooling, {} KiB kept resident{}",
                    keep_resident_bytes >> 10,
                    if keep_resident_bytes == EngineSettings::default().keep_resident_bytes {
                        " (*default*)"
                    } else {
                        ""
                    }
                )
            } else {
                "on demand".to_string()
            },
            us(percentile(&bare, 0.5)),
            us(percentile(&bare, 0.99)),
            us(percentile(&called, 0.5)),
            us(percentile(&called, 0.99)),
        ));
    }
    report.line(format!(
        "\nTarget: with the first call, p50 ≤ 20 µs (pooling): {} ({} µs).\n",
        verdict(with_call_p50 <= Duration::from_micros(20)),
        us(with_call_p50)
    ));
}

pub(super) async fn host_calls(report: &mut Report) {
    report.line("## 3. Host-call cost\n");
    let host = Host::new(pool(4).await, executors(), unaudited());
    let tenant = tenant(&owner()).await;
    for i in 0..10 {
        create_service(&host, tenant, &format!("row-{i}"), 30).await;
    }
    let executor = host.registry().get(FIXTURE_BENCH).unwrap();
    let time = |input: serde_json::Value| {
        let (host, executor) = (host.clone(), executor.clone());
        async move {
            let mut best = Duration::MAX;
            for _ in 0..7 {
                let report = host
                    .invoke_executor(tenant, &executor, &input.to_string(), Default::default())
                    .await
                    .unwrap();
                assert!(
                    matches!(report.outcome, InvocationOutcome::Ok { .. }),
                    "{:?}",
                    report.outcome
                );
                best = best.min(report.duration);
            }
            best
        }
    };
    // The fixed cost of an invocation that touches no data: input check,
    // instance, execute, result; no transaction is begun.
    let mut empty = Vec::new();
    for _ in 0..500 {
        let report = host
            .invoke_executor(tenant, &executor, "{}", Default::default())
            .await
            .unwrap();
        empty.push(report.duration);
    }
    empty.sort();
    let base = time(json!({"now_calls": 0})).await;
    let now_calls = 100_000u32;
    let with_now = time(json!({"now_calls": now_calls})).await;
    let queries = 200u32;
    let with_queries = time(json!({"queries": queries})).await;
    let per_now = (with_now.saturating_sub(base)) / now_calls;
    let per_query = (with_queries.saturating_sub(base)) / queries;
    report.line(
        "From inside the guest (`fixture-bench`), the invocation's time with N calls minus the \
         time with none, over N (best of 7 invocations each; audit off).\n",
    );
    report.line("| call | N | per call µs |");
    report.line("|---|---|---|");
    report.line(format!(
        "| `context.now()` (no-op host call, no database) | {now_calls} | {:.3} |",
        per_now.as_secs_f64() * 1e6
    ));
    report.line(format!(
        "| `query(\"services\", limit 10)` returning 10 rows | {queries} | {} |\n",
        us(per_query)
    ));
    report.line(format!(
        "An invocation that makes no call at all (`fixture-bench` with `{{}}`: input check, \
         instance, `execute`, result; no transaction begins), through `Host::invoke_executor`: \
         p50 {} µs, p99 {} µs (500 sequential).\n",
        us(percentile(&empty, 0.5)),
        us(percentile(&empty, 0.99))
    ));
}

pub(super) async fn precompiled_load(report: &mut Report) {
    report.line("## 4. Precompiled load\n");
    let bytes = std::fs::read(components_dir().join("create-booking.wasm")).unwrap();
    let cache =
        std::env::temp_dir().join(format!("bookhost-bench-artifacts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let load = |cached: bool| {
        let (bytes, cache) = (bytes.clone(), cache.clone());
        async move {
            let engine = ExecutorEngine::new(EngineSettings {
                max_instances: 4,
                ..EngineSettings::default()
            })
            .unwrap();
            let mut registry = ExecutorRegistry::new(engine).unwrap();
            if cached {
                registry = registry.with_artifact_cache(cache).unwrap();
            }
            let started = Instant::now();
            registry.load(&bytes).await.unwrap();
            started.elapsed()
        }
    };
    // Fill the cache once.
    let engine = ExecutorEngine::new(EngineSettings {
        max_instances: 4,
        ..EngineSettings::default()
    })
    .unwrap();
    ExecutorRegistry::new(engine)
        .unwrap()
        .with_artifact_cache(cache.clone())
        .unwrap()
        .load(&bytes)
        .await
        .unwrap();
    let (mut compiled, mut loaded) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        compiled.push(load(false).await);
        loaded.push(load(true).await);
    }
    compiled.sort();
    loaded.sort();
    let _ = std::fs::remove_dir_all(&cache);
    report.line(
        "create-booking (132 kB): a new registry loading it from the component bytes (compile, \
         link, `describe()`), and from this host's artifact cache (deserialize, link, \
         `describe()`); 9 of each, interleaved.\n",
    );
    report.line("| from | p50 ms | max ms |");
    report.line("|---|---|---|");
    report.line(format!(
        "| component bytes (compile) | {} | {} |",
        ms(percentile(&compiled, 0.5)),
        ms(*compiled.last().unwrap())
    ));
    report.line(format!(
        "| artifact cache | {} | {} |",
        ms(percentile(&loaded, 0.5)),
        ms(*loaded.last().unwrap())
    ));
    let p50 = percentile(&loaded, 0.5);
    report.line(format!(
        "\nTarget: load ≤ 1 ms p50: {} ({} ms; `describe()` runs in both).\n",
        verdict(p50 <= Duration::from_millis(1)),
        ms(p50)
    ));
}
