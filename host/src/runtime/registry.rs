//! Executors compiled once and pre-instantiated, by content digest, with an
//! on-disk cache of compiled artifacts and the checks an upload must pass.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::Store;

use super::engine::ExecutorEngine;
use super::state::InvocationState;
use crate::bindings::bookhost::executor::{availability, context, transaction};
use crate::bindings::{ExecutorPre, Manifest};
use crate::capabilities::availability::{Availability, AvailabilityData};
use crate::capabilities::context::InvocationContext;
use crate::capabilities::transaction::{InvocationTransaction, LockPlan, TransactionSettings};
use crate::{ExecutorName, TenantId};

impl LoadedExecutor {
    /// Where `input` breaks the executor's input schema: (JSON pointer, message).
    pub fn input_errors(&self, input: &serde_json::Value) -> Vec<(String, String)> {
        self.input_validator
            .iter_errors(input)
            .map(|e| (e.instance_path().to_string(), e.to_string()))
            .collect()
    }
}

/// A compiled executor, ready to instantiate.
pub struct LoadedExecutor {
    pub name: ExecutorName,
    pub description: String,
    pub input_schema: serde_json::Value,
    /// What the manifest declares it needs.
    pub capabilities: std::collections::BTreeSet<crate::capabilities::grant::Capability>,
    /// The input schema, compiled once.
    pub input_validator: jsonschema::Validator,
    /// SHA-256 (hex) of the component bytes: the version's identity.
    pub digest: String,
    pub(crate) pre: ExecutorPre<InvocationState>,
}

/// Why a component is not a usable executor. Each says exactly what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum RejectedComponent {
    #[error("the upload is empty")]
    Empty,
    #[error("the upload is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("the upload is a core WebAssembly module, not a component; make it a component targeting bookhost's `executor` world (for example with `wasm-tools component new`)")]
    CoreModule,
    #[error(
        "the upload is not a WebAssembly binary (it does not start with the wasm magic bytes)"
    )]
    NotWasm,
    /// Compiled machine code is never accepted from outside: only this
    /// host's own compilations are loaded, from its artifact cache.
    #[error("the upload is a precompiled native artifact (ELF), not a component; upload the component's WebAssembly bytes, bookhost compiles them itself")]
    Precompiled,
    #[error("the component is invalid: {0}")]
    Invalid(String),
    /// Compiling took longer than the host allows; the host stopped waiting
    /// (the compilation runs to its end on its own thread, still counted
    /// against the bound on compilations at once, and is not kept).
    #[error("compiling the component took longer than the limit of {limit_ms} ms")]
    CompileTimeout { limit_ms: u64 },
    #[error("the component imports something bookhost does not provide (executors may import only bookhost:executor/context and bookhost:executor/transaction): {0}")]
    ForeignImport(String),
    #[error("the component does not export `describe` and `execute` of bookhost's `executor` world: {0}")]
    WrongExports(String),
    #[error("describe() failed: {0}")]
    DescribeFailed(String),
    #[error("describe() returned an invalid manifest: {0}")]
    BadManifest(String),
}

/// The executors this host can run, by digest (and, for local use, by name).
pub struct ExecutorRegistry {
    engine: ExecutorEngine,
    linker: Linker<InvocationState>,
    by_digest: RwLock<HashMap<String, Arc<LoadedExecutor>>>,
    by_name: RwLock<HashMap<String, Arc<LoadedExecutor>>>,
    artifact_cache: Option<PathBuf>,
    compilations: Arc<CompileCounters>,
    compile_limits: CompileLimits,
    /// One permit per compilation running, so uploads of 10-20 MB
    /// components (JavaScript, Python) cannot take every core at once.
    compile_slots: Arc<tokio::sync::Semaphore>,
    /// One lock per digest being loaded, so the same component uploaded
    /// twice at once is compiled once.
    loading: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Most bytes an uploaded component may have.
    pub max_component_bytes: usize,
}

/// Compilations from source: how many, how many running, the most at once.
#[derive(Debug, Default)]
struct CompileCounters {
    total: AtomicU64,
    running: AtomicUsize,
    peak: AtomicUsize,
}

/// How much compiling the registry may do.
#[derive(Debug, Clone)]
pub struct CompileLimits {
    /// Compilations at once (each also uses Cranelift's own threads).
    pub max_concurrent: usize,
    /// Longest one compilation may take before the upload is refused.
    pub timeout: std::time::Duration,
}

impl Default for CompileLimits {
    fn default() -> Self {
        Self {
            // Measured (bookhost-bench languages): a 12 MB JavaScript
            // component compiles in a few seconds and a 19 MB Python one in
            // about twice that, each keeping both cores of these machines busy.
            max_concurrent: 2,
            timeout: std::time::Duration::from_secs(120),
        }
    }
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl ExecutorRegistry {
    pub fn new(engine: ExecutorEngine) -> anyhow::Result<Self> {
        let mut linker = Linker::new(&engine.engine);
        context::add_to_linker::<_, HasSelf<InvocationContext>>(
            &mut linker,
            |s: &mut InvocationState| &mut s.context,
        )
        .map_err(anyhow::Error::from)?;
        transaction::add_to_linker::<_, HasSelf<InvocationTransaction>>(
            &mut linker,
            |s: &mut InvocationState| &mut s.transaction,
        )
        .map_err(anyhow::Error::from)?;
        availability::add_to_linker::<_, AvailabilityData>(
            &mut linker,
            |s: &mut InvocationState| Availability {
                now: s.context.now_micros,
                transaction: &mut s.transaction,
            },
        )
        .map_err(anyhow::Error::from)?;
        Ok(Self {
            engine,
            linker,
            by_digest: RwLock::default(),
            by_name: RwLock::default(),
            artifact_cache: None,
            compilations: Default::default(),
            compile_slots: Arc::new(tokio::sync::Semaphore::new(
                CompileLimits::default().max_concurrent,
            )),
            compile_limits: CompileLimits::default(),
            loading: Default::default(),
            // JavaScript and Python components are 12-20 MB.
            max_component_bytes: 32 << 20,
        })
    }

    /// Bound compilations at once and the time one may take.
    pub fn with_compile_limits(mut self, limits: CompileLimits) -> Self {
        self.compile_slots = Arc::new(tokio::sync::Semaphore::new(limits.max_concurrent.max(1)));
        self.compile_limits = limits;
        self
    }

    /// Keep compiled artifacts in `dir`, so a restart does not recompile.
    /// Only files this host wrote there are ever loaded: names are the
    /// digest of the uploaded bytes plus the engine's compatibility hash,
    /// and uploads themselves are always compiled, never deserialized.
    pub fn with_artifact_cache(mut self, dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        self.artifact_cache = Some(dir);
        Ok(self)
    }

    /// How many components this registry compiled from source (not from the
    /// artifact cache).
    pub fn compilations(&self) -> u64 {
        self.compilations.total.load(Ordering::Relaxed)
    }

    /// Compilations running now (an abandoned one runs to its end).
    pub fn compilations_running(&self) -> usize {
        self.compilations.running.load(Ordering::SeqCst)
    }

    /// The most compilations that ever ran at once (at most
    /// [`CompileLimits::max_concurrent`]).
    pub fn peak_concurrent_compilations(&self) -> usize {
        self.compilations.peak.load(Ordering::Relaxed)
    }

    pub fn engine(&self) -> &ExecutorEngine {
        &self.engine
    }

    /// The executor registered under `name` by [`Self::load`] (local use: CLI, tests).
    pub fn get(&self, name: &str) -> Option<Arc<LoadedExecutor>> {
        self.by_name
            .read()
            .expect("not poisoned")
            .get(name)
            .cloned()
    }

    /// A compiled executor by digest, if this host has it.
    pub fn get_by_digest(&self, digest: &str) -> Option<Arc<LoadedExecutor>> {
        self.by_digest
            .read()
            .expect("not poisoned")
            .get(digest)
            .cloned()
    }

    /// Validate and compile `bytes` (or reuse this host's compiled artifact),
    /// ask the executor to describe itself, and keep it by digest and name.
    pub async fn load(&self, bytes: &[u8]) -> Result<Arc<LoadedExecutor>, RejectedComponent> {
        let digest = digest(bytes);
        if let Some(loaded) = self.get_by_digest(&digest) {
            return Ok(loaded);
        }
        check_envelope(bytes, self.max_component_bytes)?;
        let gate = self
            .loading
            .lock()
            .expect("not poisoned")
            .entry(digest.clone())
            .or_default()
            .clone();
        let loaded = {
            let _turn = gate.lock().await;
            match self.get_by_digest(&digest) {
                // Loaded by the upload this one waited for.
                Some(loaded) => Ok(loaded),
                None => self.load_new(bytes, digest.clone()).await,
            }
        };
        let mut loading = self.loading.lock().expect("not poisoned");
        // The last one out removes the gate (the map holds one reference).
        if Arc::strong_count(&gate) == 2 {
            loading.remove(&digest);
        }
        loaded
    }

    async fn load_new(
        &self,
        bytes: &[u8],
        digest: String,
    ) -> Result<Arc<LoadedExecutor>, RejectedComponent> {
        let component = self.compile(bytes, &digest).await?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| RejectedComponent::ForeignImport(format!("{e:#}")))?;
        let pre = ExecutorPre::new(instance_pre)
            .map_err(|e| RejectedComponent::WrongExports(format!("{e:#}")))?;
        let manifest = self.describe(&pre).await?;
        let name = ExecutorName::parse(&manifest.name)
            .map_err(|e| RejectedComponent::BadManifest(e.to_string()))?;
        let input_schema: serde_json::Value = serde_json::from_str(&manifest.input_schema)
            .map_err(|e| {
                RejectedComponent::BadManifest(format!("the input schema is not JSON: {e}"))
            })?;
        jsonschema::meta::validate(&input_schema).map_err(|e| {
            RejectedComponent::BadManifest(format!(
                "the input schema is not a valid JSON Schema: {e}"
            ))
        })?;
        let input_validator = jsonschema::validator_for(&input_schema).map_err(|e| {
            RejectedComponent::BadManifest(format!("the input schema cannot be compiled: {e}"))
        })?;
        let capabilities = crate::capabilities::grant::parse_all(&manifest.capabilities)
            .map_err(RejectedComponent::BadManifest)?;
        if manifest.description.trim().is_empty() {
            return Err(RejectedComponent::BadManifest(
                "the description is empty".into(),
            ));
        }
        let loaded = Arc::new(LoadedExecutor {
            name: name.clone(),
            description: manifest.description,
            input_schema,
            capabilities,
            input_validator,
            digest: digest.clone(),
            pre,
        });
        self.by_digest
            .write()
            .expect("not poisoned")
            .insert(digest, loaded.clone());
        self.by_name
            .write()
            .expect("not poisoned")
            .insert(name.to_string(), loaded.clone());
        Ok(loaded)
    }

    /// The compiled component: from this host's artifact cache, or compiled
    /// on a blocking thread (never on the async workers: a big component
    /// takes seconds), within the compile limits, then cached.
    async fn compile(&self, bytes: &[u8], digest: &str) -> Result<Component, RejectedComponent> {
        let engine = self.engine.engine.clone();
        let cached = self.artifact_cache.as_ref().map(|dir| {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut hasher);
            dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
        });
        if let Some(path) = cached.clone().filter(|p| p.exists()) {
            let engine = engine.clone();
            let from_cache = tokio::task::spawn_blocking(move || {
                // SAFETY: the file is one this host serialized (see with_artifact_cache),
                // named by the digest of the source and this engine's compatibility hash.
                unsafe { Component::deserialize_file(&engine, &path) }
                    .map_err(|e| (path, anyhow::Error::from(e)))
            })
            .await
            .expect("deserializing does not panic");
            match from_cache {
                Ok(component) => return Ok(component),
                Err((path, e)) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cached artifact: {e:#}")
                }
            }
        }
        let slot = self
            .compile_slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let abandoned = Arc::new(AtomicBool::new(false));
        let compiling = {
            let bytes = bytes.to_vec();
            let abandoned = abandoned.clone();
            let counters = self.compilations.clone();
            tokio::task::spawn_blocking(move || {
                let _slot = slot;
                counters.total.fetch_add(1, Ordering::Relaxed);
                let running = counters.running.fetch_add(1, Ordering::SeqCst) + 1;
                counters.peak.fetch_max(running, Ordering::SeqCst);
                let component = Component::new(&engine, &bytes)
                    .map_err(|e| RejectedComponent::Invalid(format!("{e:#}")));
                counters.running.fetch_sub(1, Ordering::SeqCst);
                let component = component?;
                if let Some(path) = cached {
                    if !abandoned.load(Ordering::Relaxed) {
                        write_artifact(&component, &path);
                    }
                }
                Ok(component)
            })
        };
        match tokio::time::timeout(self.compile_limits.timeout, compiling).await {
            Ok(joined) => joined.expect("compiling does not panic"),
            Err(_) => {
                abandoned.store(true, Ordering::Relaxed);
                Err(RejectedComponent::CompileTimeout {
                    limit_ms: self.compile_limits.timeout.as_millis() as u64,
                })
            }
        }
    }

    /// Load every `*.wasm` component in `dir`.
    pub async fn load_dir(&self, dir: &Path) -> anyhow::Result<Vec<ExecutorName>> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read executor directory {}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        paths.sort();
        // All at once: the compile slots bound how many compile in parallel.
        let loads = paths.iter().map(|path| async move {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let executor = self
                .load(&bytes)
                .await
                .with_context(|| format!("loading {}", path.display()))?;
            anyhow::Ok(executor.name.clone())
        });
        futures_util::future::join_all(loads)
            .await
            .into_iter()
            .collect()
    }

    async fn describe(
        &self,
        pre: &ExecutorPre<InvocationState>,
    ) -> Result<Manifest, RejectedComponent> {
        let mut store = self.bare_store();
        let _slot = self.engine.instance_slot().await;
        let instance = pre.instantiate_async(&mut store).await.map_err(|e| {
            RejectedComponent::DescribeFailed(format!("instantiation failed: {e:#}"))
        })?;
        instance
            .call_describe(&mut store)
            .await
            .map_err(|e| RejectedComponent::DescribeFailed(format!("{e:#}")))
    }

    /// A store for running an executor outside any invocation: no database
    /// connection, the engine's limits, a 1 s deadline.
    fn bare_store(&self) -> Store<InvocationState> {
        let state = InvocationState {
            context: InvocationContext::new(
                TenantId(uuid::Uuid::nil()),
                uuid::Uuid::nil(),
                0,
                0,
                4096,
            ),
            transaction: InvocationTransaction::new(
                None,
                TenantId(uuid::Uuid::nil()),
                Arc::new(TransactionSettings::default()),
                LockPlan::default(),
            ),
            limits: crate::runtime::state::InstanceLimits::new(
                self.engine.settings.max_memory_bytes,
                self.engine.settings.max_table_elements,
            ),
        };
        let mut store = Store::new(&self.engine.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(self.engine.ticks_for(std::time::Duration::from_secs(1)));
        store.epoch_deadline_trap();
        store
    }

    /// For the benchmarks: a fresh store and instance of `executor` (what
    /// every attempt pays before the executor runs), then, with
    /// `execute_input`, one `execute` call (its answer, ok or error, is not
    /// looked at; a trap fails). Returns the time to instantiate and the
    /// total, store creation included in both.
    pub async fn instantiate_for_bench(
        &self,
        executor: &LoadedExecutor,
        execute_input: Option<&str>,
    ) -> anyhow::Result<(std::time::Duration, std::time::Duration)> {
        let started = std::time::Instant::now();
        let live = self
            .live_instance_for_bench(executor, execute_input)
            .await?;
        let total = started.elapsed();
        Ok((live.instantiated, total))
    }

    /// For the benchmarks: an instance of `executor` kept alive (with its
    /// pool slot) until the returned value drops, after one `execute` of
    /// `execute_input` if given, so its memory can be measured.
    pub async fn live_instance_for_bench(
        &self,
        executor: &LoadedExecutor,
        execute_input: Option<&str>,
    ) -> anyhow::Result<LiveInstance> {
        let slot = self.engine.instance_slot().await;
        let started = std::time::Instant::now();
        let mut store = self.bare_store();
        let instance = executor.pre.instantiate_async(&mut store).await?;
        let instantiated = started.elapsed();
        if let Some(input) = execute_input {
            // Ok or the executor's error answer: both ran to the end.
            let _answer = instance.call_execute(&mut store, input).await?;
        }
        Ok(LiveInstance {
            _store: store,
            _slot: slot,
            instantiated,
        })
    }
}

/// An instance the benchmarks hold on to (see
/// [`ExecutorRegistry::live_instance_for_bench`]).
pub struct LiveInstance {
    _store: Store<InvocationState>,
    _slot: tokio::sync::OwnedSemaphorePermit,
    /// How long creating the store and the instance took.
    pub instantiated: std::time::Duration,
}

/// Keep `component`'s compiled artifact at `path`: written then renamed, so
/// a concurrent reader never sees half a file. A failure only costs a
/// compilation later.
fn write_artifact(component: &Component, path: &Path) {
    let written = component
        .serialize()
        .map_err(anyhow::Error::from)
        .and_then(|artifact| {
            let partial = path.with_extension(format!("partial-{}", uuid::Uuid::new_v4()));
            std::fs::write(&partial, artifact)?;
            std::fs::rename(&partial, path)?;
            Ok(())
        });
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), "could not cache the compiled artifact: {e:#}");
    }
}

/// Cheap checks before any compilation: size, magic, component vs module.
fn check_envelope(bytes: &[u8], limit: usize) -> Result<(), RejectedComponent> {
    if bytes.is_empty() {
        return Err(RejectedComponent::Empty);
    }
    if bytes.len() > limit {
        return Err(RejectedComponent::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    if bytes.starts_with(b"\x7fELF") {
        return Err(RejectedComponent::Precompiled);
    }
    if !bytes.starts_with(b"\0asm") {
        return Err(RejectedComponent::NotWasm);
    }
    if wasmtime::wasmparser::Parser::is_core_wasm(bytes) {
        return Err(RejectedComponent::CoreModule);
    }
    if !wasmtime::wasmparser::Parser::is_component(bytes) {
        return Err(RejectedComponent::Invalid(
            "unknown WebAssembly binary version".into(),
        ));
    }
    // Before compiling (seconds for a JavaScript component built with WASI).
    let foreign = super::imports::foreign_imports(bytes).map_err(RejectedComponent::Invalid)?;
    if !foreign.is_empty() {
        return Err(RejectedComponent::ForeignImport(foreign.join(", ")));
    }
    Ok(())
}
