//! Compiled artifacts are cached on disk: a restarted host (a new engine and
//! registry on the same cache directory) loads them without recompiling.

use bookhost::runtime::{EngineSettings, ExecutorEngine, ExecutorRegistry};
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
