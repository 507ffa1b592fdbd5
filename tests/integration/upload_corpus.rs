//! The invalid-upload corpus (tests/corpus/uploads): every file is rejected
//! with its specific message and nothing is registered.

use std::path::PathBuf;

use bookhost::runtime::{EngineSettings, ExecutorEngine, ExecutorRegistry};
use bookhost_tests::components_dir;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/uploads")
}

fn registry(max_component_bytes: usize) -> ExecutorRegistry {
    let engine = ExecutorEngine::new(EngineSettings {
        max_instances: 8,
        ..EngineSettings::default()
    })
    .unwrap();
    let mut registry = ExecutorRegistry::new(engine).unwrap();
    registry.max_component_bytes = max_component_bytes;
    registry
}

/// Load `bytes`, which must be refused with a message containing `needle`.
async fn assert_rejected(registry: &ExecutorRegistry, case: &str, bytes: &[u8], needle: &str) {
    match registry.load(bytes).await {
        Ok(loaded) => panic!("{case}: accepted as {}", loaded.name),
        Err(rejected) => {
            let message = rejected.to_string();
            assert!(
                message.contains(needle),
                "{case}: {message:?} lacks {needle:?}"
            );
        }
    }
    assert!(
        registry
            .get_by_digest(&bookhost::runtime::digest(bytes))
            .is_none(),
        "{case}: registered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_upload_is_rejected_with_its_message() {
    let registry = registry(8 << 20);
    let expected = std::fs::read_to_string(corpus_dir().join("EXPECTED")).unwrap();
    let mut cases = 0;
    for line in expected
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (file, needle) = line.split_once('\t').expect("file<TAB>needle");
        let path = corpus_dir().join(file);
        let bytes = if file.ends_with(".wat") {
            wat::parse_file(&path).unwrap()
        } else {
            std::fs::read(&path).unwrap()
        };
        assert_rejected(&registry, file, &bytes, needle).await;
        cases += 1;
    }
    // Every file of the folder is listed, so none is silently skipped.
    let files = std::fs::read_dir(corpus_dir())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != "EXPECTED")
        .count();
    assert_eq!(cases, files);
    assert_eq!(cases, 8);

    // This host's own compilation of a real component, uploaded as if it
    // were a component: machine code is never accepted from outside.
    let real = std::fs::read(components_dir().join("create-service.wasm")).unwrap();
    let precompiled = registry
        .engine()
        .engine
        .precompile_component(&real)
        .unwrap();
    assert_rejected(
        &registry,
        "precompiled",
        &precompiled,
        "precompiled native artifact",
    )
    .await;
    // The core module, the empty, random, truncated and precompiled uploads
    // and the two with foreign imports are refused at the envelope, before
    // the compiler (which takes seconds on a big JavaScript component); the
    // other two reach it and are refused by the export types, before any
    // instance exists.
    assert_eq!(registry.compilations(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_upload_is_rejected_before_compiling() {
    let registry = registry(50_000);
    let real = std::fs::read(components_dir().join("create-service.wasm")).unwrap();
    assert!(real.len() > 50_000);
    assert_rejected(&registry, "oversized", &real, "the limit is 50000 bytes").await;
    assert_eq!(registry.compilations(), 0);
}
