//! Compiling uploads: compiled artifacts are cached on disk (a restarted
//! host, a new engine and registry on the same cache directory, loads them
//! without recompiling), and compilations run off the async workers, a
//! bounded number at once, within a time limit.

use bookhost::runtime::{
    CompileLimits, EngineSettings, ExecutorEngine, ExecutorRegistry, RejectedComponent,
};
use bookhost_tests::executors::*;
use bookhost_tests::*;

#[tokio::test]
async fn a_restart_reuses_compiled_artifacts() {
    let cache = std::env::temp_dir().join(format!("bookhost-artifacts-{}", uuid::Uuid::new_v4()));
    let bytes = std::fs::read(components_dir().join("create-service.wasm")).unwrap();
    let registry = || {
        let engine = ExecutorEngine::new(EngineSettings::default()).unwrap();
        ExecutorRegistry::new(engine)
            .unwrap()
            .with_artifact_cache(cache.clone())
            .unwrap()
    };

    let first = registry();
    let loaded = first.load(&bytes).await.unwrap();
    assert_eq!(first.compilations(), 1);
    let artifacts: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        artifacts.len(),
        1,
        "one artifact per component: {artifacts:?}"
    );
    assert!(artifacts[0].to_string_lossy().starts_with(&loaded.digest));

    let restarted = registry();
    let reloaded = restarted.load(&bytes).await.unwrap();
    assert_eq!(
        restarted.compilations(),
        0,
        "loaded from the artifact cache, not compiled"
    );
    assert_eq!(reloaded.digest, loaded.digest);

    // The reloaded executor really runs.
    let host = bookhost::Host::new(
        pool(2).await,
        std::sync::Arc::new(restarted),
        bookhost::HostSettings::default(),
    );
    let tenant = tenant(&owner()).await;
    let report = invoke(
        &host,
        tenant,
        CREATE_SERVICE,
        serde_json::json!({"name": "cached", "duration_minutes": 15}),
    )
    .await;
    assert_eq!(ok_output(&report)["service"]["name"], "cached");
    std::fs::remove_dir_all(&cache).unwrap();
}

fn fresh_registry(limits: CompileLimits, cache: Option<&std::path::Path>) -> ExecutorRegistry {
    let engine = ExecutorEngine::new(EngineSettings {
        max_instances: 8,
        ..EngineSettings::default()
    })
    .unwrap();
    let registry = ExecutorRegistry::new(engine)
        .unwrap()
        .with_compile_limits(limits);
    match cache {
        Some(dir) => registry.with_artifact_cache(dir.to_path_buf()).unwrap(),
        None => registry,
    }
}

fn component(name: &str) -> Vec<u8> {
    std::fs::read(components_dir().join(format!("{name}.wasm"))).unwrap()
}

/// On a runtime with one thread, a timer keeps ticking while a 12 MB
/// JavaScript component compiles: the compilation is not on the async worker.
#[tokio::test(flavor = "current_thread")]
async fn a_big_component_compiles_off_the_async_worker() {
    let registry = fresh_registry(CompileLimits::default(), None);
    let bytes = component(CREATE_BOOKING_TS);
    let load = registry.load(&bytes);
    tokio::pin!(load);
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(10));
    let mut ticks = 0u32;
    let loaded = loop {
        tokio::select! {
            loaded = &mut load => break loaded.unwrap(),
            _ = ticker.tick() => ticks += 1,
        }
    };
    assert_eq!(loaded.name.as_str(), CREATE_BOOKING_TS);
    assert_eq!(registry.compilations(), 1);
    // Seconds of compiling are hundreds of ticks; a compile blocking the
    // only thread would let at most the first tick through.
    assert!(
        ticks >= 10,
        "the runtime ticked {ticks} times during the compile"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compilations_wait_for_a_slot() {
    let limits = CompileLimits {
        max_concurrent: 1,
        ..CompileLimits::default()
    };
    let registry = fresh_registry(limits, None);
    let names = [
        CREATE_SERVICE,
        CREATE_BOOKING,
        DELETE_SERVICE,
        LIST_SERVICES,
    ];
    let bytes: Vec<_> = names.iter().map(|n| component(n)).collect();
    let loaded = futures::future::join_all(bytes.iter().map(|b| registry.load(b))).await;
    for (name, loaded) in names.iter().zip(loaded) {
        assert_eq!(loaded.unwrap().name.as_str(), *name);
    }
    assert_eq!(registry.compilations(), 4);
    assert_eq!(registry.peak_concurrent_compilations(), 1);

    // The same component uploaded four times at once is compiled once.
    let registry = fresh_registry(CompileLimits::default(), None);
    let same = component(REQUEST_APPOINTMENT);
    let loaded = futures::future::join_all((0..4).map(|_| registry.load(&same))).await;
    assert!(loaded.iter().all(|l| l.is_ok()));
    assert_eq!(registry.compilations(), 1);
}

/// A compile over the time limit refuses the upload and keeps nothing, not
/// even the artifact the abandoned compilation goes on to produce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compile_over_the_time_limit_is_refused_and_not_kept() {
    let cache = std::env::temp_dir().join(format!("bookhost-artifacts-{}", uuid::Uuid::new_v4()));
    let limits = CompileLimits {
        timeout: std::time::Duration::from_millis(1),
        ..CompileLimits::default()
    };
    let registry = fresh_registry(limits, Some(&cache));
    let bytes = component(CREATE_BOOKING_PY);
    let rejected = registry.load(&bytes).await.err().expect("refused");
    assert!(
        matches!(rejected, RejectedComponent::CompileTimeout { limit_ms: 1 }),
        "{rejected}"
    );
    assert_eq!(
        rejected.to_string(),
        "compiling the component took longer than the limit of 1 ms"
    );
    assert!(registry
        .get_by_digest(&bookhost::runtime::digest(&bytes))
        .is_none());
    // Wait (bounded) for the abandoned compilation to finish.
    for _ in 0..1200 {
        if registry.compilations_running() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(registry.compilations_running(), 0);
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        0,
        "nothing kept"
    );

    // Within the default limit it loads, and its artifact is kept.
    let registry = fresh_registry(CompileLimits::default(), Some(&cache));
    assert_eq!(
        registry.load(&bytes).await.unwrap().name.as_str(),
        CREATE_BOOKING_PY
    );
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
    std::fs::remove_dir_all(&cache).unwrap();
}
