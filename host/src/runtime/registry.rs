//! Executors compiled once and pre-instantiated, by name.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::Store;

use super::engine::ExecutorEngine;
use super::state::InvocationState;
use crate::bindings::bookhost::executor::{context, transaction};
use crate::bindings::{ExecutorPre, Manifest};
use crate::capabilities::context::InvocationContext;
use crate::capabilities::transaction::{InvocationTransaction, LockPlan, TransactionSettings};
use crate::{ExecutorName, TenantId};

/// A compiled executor, ready to instantiate.
pub struct LoadedExecutor {
    pub name: ExecutorName,
    pub description: String,
    pub input_schema: serde_json::Value,
    pub(crate) pre: ExecutorPre<InvocationState>,
}

/// The executors this host can run.
pub struct ExecutorRegistry {
    engine: ExecutorEngine,
    linker: Linker<InvocationState>,
    executors: BTreeMap<ExecutorName, Arc<LoadedExecutor>>,
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
        Ok(Self {
            engine,
            linker,
            executors: BTreeMap::new(),
        })
    }

    pub fn engine(&self) -> &ExecutorEngine {
        &self.engine
    }

    pub fn get(&self, name: &str) -> Option<Arc<LoadedExecutor>> {
        self.executors
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, e)| e.clone())
    }

    pub fn names(&self) -> impl Iterator<Item = &ExecutorName> {
        self.executors.keys()
    }

    /// Compile `bytes`, check it is an executor, ask it to describe itself,
    /// and register it under the name it gives.
    pub async fn load(&mut self, bytes: &[u8]) -> anyhow::Result<Arc<LoadedExecutor>> {
        let component = Component::new(&self.engine.engine, bytes)
            .map_err(anyhow::Error::from)
            .context("not a valid WebAssembly component")?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .context("the component does not fit bookhost's `executor` world")?;
        let pre = ExecutorPre::new(instance_pre)
            .map_err(anyhow::Error::from)
            .context("the component does not export `describe` and `execute` as the world says")?;
        let manifest = self.describe(&pre).await?;
        let name = ExecutorName::parse(&manifest.name).context("describe() returned a bad name")?;
        let input_schema: serde_json::Value = serde_json::from_str(&manifest.input_schema)
            .with_context(|| {
                format!("{name}: describe() returned an input schema that is not JSON")
            })?;
        let executor = Arc::new(LoadedExecutor {
            name: name.clone(),
            description: manifest.description,
            input_schema,
            pre,
        });
        self.executors.insert(name, executor.clone());
        Ok(executor)
    }

    /// Load every `*.wasm` component in `dir`.
    pub async fn load_dir(&mut self, dir: &Path) -> anyhow::Result<Vec<ExecutorName>> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read executor directory {}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        paths.sort();
        let mut names = Vec::new();
        for path in paths {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let executor = self
                .load(&bytes)
                .await
                .with_context(|| format!("loading {}", path.display()))?;
            names.push(executor.name.clone());
        }
        Ok(names)
    }

    async fn describe(&self, pre: &ExecutorPre<InvocationState>) -> anyhow::Result<Manifest> {
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
            limits: wasmtime::StoreLimitsBuilder::new().build(),
        };
        let mut store = Store::new(&self.engine.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(self.engine.ticks_for(std::time::Duration::from_secs(1)));
        store.epoch_deadline_trap();
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .map_err(anyhow::Error::from)?;
        instance
            .call_describe(&mut store)
            .await
            .map_err(anyhow::Error::from)
            .context("describe() trapped")
    }
}
