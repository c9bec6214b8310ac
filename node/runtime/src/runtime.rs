//! [`Runtime`]: the engine, the linked host API, the limits and the app cache
//! shared by every call a node makes.

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use wasmtime::{Engine, Linker};

use crate::api;
use crate::app::{App, AppCache};
use crate::call::execute;
use crate::config::{engine_config, Limits, POOL_SLOTS};
use crate::error::{Error, Result};
use crate::host::HostState;
use crate::types::{Call, Outcome, StateView};

/// The node's wasm runtime. Cheap to clone; share one per node.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    limits: Limits,
    cache: Mutex<AppCache>,
    /// Instance slots free in the engine's pool; a call takes one.
    free: Mutex<u32>,
    freed: Condvar,
}

impl Runtime {
    /// A runtime enforcing `limits` on every call.
    pub fn new(limits: Limits) -> Result<Self> {
        limits.validate()?;
        let engine =
            Engine::new(&engine_config(&limits)).map_err(|err| Error::Engine(err.to_string()))?;
        let mut linker = Linker::new(&engine);
        api::define(&mut linker).map_err(|err| Error::Engine(err.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                limits,
                cache: Mutex::new(AppCache::default()),
                free: Mutex::new(POOL_SLOTS),
                freed: Condvar::new(),
            }),
        })
    }

    /// The limits this runtime enforces.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Validates and compiles `wasm`, or returns the cached app with the same
    /// hash. The module must be a wasm binary of at most
    /// [`Limits::max_module_bytes`], import only the host API (module `env`,
    /// matching signatures) and export its memory as `memory`. Compilation
    /// holds the cache lock, so each hash is compiled once.
    pub fn load(&self, wasm: &[u8]) -> Result<App> {
        let inner = &*self.inner;
        inner
            .cache
            .lock()
            .load(&inner.engine, &inner.linker, &inner.limits, wasm)
    }

    /// Runs `call` on `app` over `state`. Guest failures are
    /// `Ok(Outcome { result: Err(..) })`; `Err` means the host failed (a
    /// [`StateView`] error or an internal error) and the call has no result.
    ///
    /// With every instance slot in use, it waits for one: a busy node's
    /// calls queue, they never fail for want of a slot.
    pub fn call(&self, app: &App, call: Call<'_>, state: &dyn StateView) -> Result<Outcome> {
        let _slot = self.slot();
        execute(&self.inner.engine, &self.inner.limits, app, call, state)
    }

    /// Takes an instance slot until the guard drops.
    fn slot(&self) -> Slot<'_> {
        let inner = &*self.inner;
        let mut free = inner.free.lock();
        while *free == 0 {
            inner.freed.wait(&mut free);
        }
        *free -= 1;
        Slot(inner)
    }

    /// How many modules this runtime has compiled (cache misses).
    pub fn modules_compiled(&self) -> u64 {
        self.inner.cache.lock().compiled()
    }

    /// How many compiled apps the cache holds.
    pub fn cached_apps(&self) -> usize {
        self.inner.cache.lock().len()
    }
}

struct Slot<'a>(&'a Inner);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock() += 1;
        self.0.freed.notify_one();
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

    #[test]
    fn runtime_and_app_are_shareable() {
        assert_send_sync_clone::<Runtime>();
        assert_send_sync_clone::<App>();
    }

    #[test]
    fn invalid_limits_are_refused() {
        let limits = Limits {
            fuel_per_call: 0,
            ..Limits::default()
        };
        assert!(matches!(Runtime::new(limits), Err(Error::InvalidLimits(_))));
    }

    #[test]
    fn every_host_function_links_with_its_declared_signature() {
        let runtime = Runtime::new(Limits::default()).expect("runtime");
        let mut imports = String::new();
        for (name, params, results) in api::HOST_API {
            let params: Vec<_> = params.iter().map(|ty| ty.name()).collect();
            let results: Vec<_> = results.iter().map(|ty| ty.name()).collect();
            imports.push_str(&format!(
                "(import \"env\" \"{name}\" (func (param {}) (result {})))\n",
                params.join(" "),
                results.join(" ")
            ));
        }
        let wat = format!("(module {imports} (memory (export \"memory\") 1))");
        let wasm = wat::parse_str(&wat).expect("valid wat");
        let app = runtime.load(&wasm).expect("all host functions link");
        assert!(app.methods().is_empty());
    }
}
