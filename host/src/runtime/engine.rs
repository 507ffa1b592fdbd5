//! The wasmtime engine: pooling allocator, epoch interruption, and the
//! ticker that advances epochs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Core instances one executor may hold (see the pool's sizing in `new`).
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 64;

/// Engine limits.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Most concurrently live instances (and linear memories).
    pub max_instances: u32,
    /// Most bytes of linear memory one instance may have.
    pub max_memory_bytes: usize,
    /// Most elements of one table (function references).
    pub max_table_elements: usize,
    /// Most bytes of wasm stack; deeper recursion ends `limit_exceeded`.
    pub max_wasm_stack: usize,
    /// How often the epoch advances; deadlines are counted in these ticks.
    pub epoch_tick: Duration,
    /// Pre-allocate instance slots (memories, tables, stacks) once and reuse
    /// them; off, every instance maps its memory afresh (for comparison).
    pub pooling: bool,
    /// Bytes of each linear memory (and table) kept resident when a pooled
    /// slot is freed, zeroed with `memset` instead of returned to the kernel
    /// with `madvise`, so the next instance does not page-fault on them.
    pub keep_resident_bytes: usize,
    /// Freed slots kept warm (affine to their last component) beyond those
    /// in use; with `keep_resident_bytes`, what bounds the memory the pool
    /// keeps between invocations: about (peak live instances + this) slots.
    pub max_unused_warm_slots: u32,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            max_instances: 256,
            max_memory_bytes: 64 << 20,
            max_table_elements: 20_000,
            max_wasm_stack: 512 << 10,
            epoch_tick: Duration::from_millis(2),
            pooling: true,
            // Measured (bookhost-bench keep-resident): a JavaScript or Python
            // executor's instance starts from a 9-13 MiB memory image; with
            // 16 MiB kept, instantiate plus its first call takes about half
            // as long as with 128 KiB (the Rust executors' 15 µs do not
            // change). The price: a slot that ran one keeps 9-13 MiB
            // resident (a Rust executor's about 0.2 MiB), bounded by the
            // warm slots below.
            keep_resident_bytes: 16 << 20,
            max_unused_warm_slots: 16,
        }
    }
}

/// The engine plus its epoch ticker (stopped when the last clone drops).
#[derive(Clone)]
pub struct ExecutorEngine {
    pub engine: Engine,
    pub settings: EngineSettings,
    /// One permit per live instance, so invocations beyond the pool's
    /// capacity wait for a slot instead of failing to instantiate.
    slots: Arc<tokio::sync::Semaphore>,
    _ticker: Arc<EpochTicker>,
}

struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl ExecutorEngine {
    pub fn new(settings: EngineSettings) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(settings.max_wasm_stack);
        // Host calls run on the async stack; keep it well above the wasm stack.
        config.async_stack_size(settings.max_wasm_stack + (2 << 20));
        let mut pooling = PoolingAllocationConfig::default();
        // A Rust or JavaScript executor holds 3 core instances (the module
        // plus the shims wit-component adds), one memory and two tables; a
        // Python one (componentize-py links CPython, libc and their
        // libraries as modules of their own) about 40 core instances, one
        // memory and two tables. Core instances are only counted by the pool,
        // so their budget is generous; memories and tables are pooled slots.
        // A component beyond the per-component bounds fails to instantiate,
        // which an upload reports when describe() runs.
        pooling
            .total_component_instances(settings.max_instances)
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .total_core_instances(settings.max_instances * MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(2)
            .total_memories(settings.max_instances * 2)
            .max_tables_per_component(4)
            .total_tables(settings.max_instances * 4)
            .total_stacks(settings.max_instances)
            .table_elements(settings.max_table_elements)
            .max_memory_size(settings.max_memory_bytes)
            .linear_memory_keep_resident(settings.keep_resident_bytes)
            .table_keep_resident(settings.keep_resident_bytes.min(64 << 10))
            .max_unused_warm_slots(settings.max_unused_warm_slots);
        config.allocation_strategy(if settings.pooling {
            InstanceAllocationStrategy::Pooling(pooling)
        } else {
            InstanceAllocationStrategy::OnDemand
        });
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;

        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.weak();
        let ticker_stop = stop.clone();
        let tick = settings.epoch_tick;
        std::thread::Builder::new()
            .name("bookhost-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    match ticker_engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        let slots = Arc::new(tokio::sync::Semaphore::new(settings.max_instances as usize));
        Ok(Self {
            engine,
            settings,
            slots,
            _ticker: Arc::new(EpochTicker { stop }),
        })
    }

    /// Wait for a free instance slot; hold the permit while the instance lives.
    pub async fn instance_slot(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// Epoch ticks that cover `timeout` (at least one).
    pub fn ticks_for(&self, timeout: Duration) -> u64 {
        let tick = self.settings.epoch_tick.as_micros().max(1);
        (timeout.as_micros().div_ceil(tick) as u64).max(1)
    }
}
