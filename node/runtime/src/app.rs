//! Loaded apps: validation of a module against the host API, compilation,
//! and the per-runtime cache of compiled apps keyed by [`AppHash`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::{Engine, ExternType, FuncType, InstancePre, Linker, Module};

use crate::api::{HOST_API, MODULE};
use crate::config::Limits;
use crate::error::{Error, Result};
use crate::host::HostState;

/// SHA-256 of an app's wasm bytes.
pub type AppHash = [u8; 32];

/// Most compiled apps a runtime keeps; the least recently loaded is dropped
/// first (an `App` already handed out stays usable).
pub const CACHE_CAPACITY: usize = 256;

/// A compiled, validated app, ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

struct AppInner {
    hash: AppHash,
    pre: InstancePre<HostState>,
    methods: BTreeSet<String>,
}

impl App {
    /// The app's hash (SHA-256 of its wasm bytes).
    pub fn hash(&self) -> AppHash {
        self.inner.hash
    }

    /// Names of its callable methods, sorted.
    pub fn methods(&self) -> Vec<String> {
        self.inner.methods.iter().cloned().collect()
    }

    /// Whether `method` is one of its methods.
    pub fn has_method(&self, method: &str) -> bool {
        self.inner.methods.contains(method)
    }

    pub(crate) fn instance_pre(&self) -> &InstancePre<HostState> {
        &self.inner.pre
    }
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("hash", &hex::encode(self.inner.hash))
            .field("methods", &self.inner.methods)
            .finish()
    }
}

/// SHA-256 of `wasm`.
pub fn app_hash(wasm: &[u8]) -> AppHash {
    Sha256::digest(wasm).into()
}

/// Compiled apps by hash, with least-recently-loaded eviction.
#[derive(Default)]
pub(crate) struct AppCache {
    apps: HashMap<AppHash, App>,
    order: VecDeque<AppHash>,
    compiled: u64,
}

impl AppCache {
    /// The cached app for `wasm`, compiling and caching it on a miss.
    pub(crate) fn load(
        &mut self,
        engine: &Engine,
        linker: &Linker<HostState>,
        limits: &Limits,
        wasm: &[u8],
    ) -> Result<App> {
        if wasm.len() > limits.max_module_bytes {
            return Err(Error::ModuleTooLarge {
                size: wasm.len(),
                limit: limits.max_module_bytes,
            });
        }
        let hash = app_hash(wasm);
        if let Some(app) = self.apps.get(&hash).cloned() {
            self.order.retain(|cached| *cached != hash);
            self.order.push_back(hash);
            return Ok(app);
        }
        let app = compile(engine, linker, limits, hash, wasm)?;
        self.compiled += 1;
        if self.apps.len() >= CACHE_CAPACITY {
            if let Some(oldest) = self.order.pop_front() {
                self.apps.remove(&oldest);
            }
        }
        self.apps.insert(hash, app.clone());
        self.order.push_back(hash);
        Ok(app)
    }

    pub(crate) fn compiled(&self) -> u64 {
        self.compiled
    }

    pub(crate) fn len(&self) -> usize {
        self.apps.len()
    }
}

fn compile(
    engine: &Engine,
    linker: &Linker<HostState>,
    limits: &Limits,
    hash: AppHash,
    wasm: &[u8],
) -> Result<App> {
    if !wasm.starts_with(b"\0asm") {
        return Err(Error::NotWasm);
    }
    let module =
        Module::from_binary(engine, wasm).map_err(|err| Error::InvalidModule(err.to_string()))?;
    check_imports(&module)?;
    check_memory(&module, limits)?;
    let methods = module
        .exports()
        .filter_map(|export| match export.ty() {
            ExternType::Func(ty) if ty.params().len() == 0 && ty.results().len() == 0 => {
                Some(export.name().to_owned())
            }
            _ => None,
        })
        .collect();
    let pre = linker
        .instantiate_pre(&module)
        .map_err(|err| Error::InvalidModule(err.to_string()))?;
    tracing::debug!(app = %hex::encode(hash), size = wasm.len(), "compiled app");
    Ok(App {
        inner: Arc::new(AppInner { hash, pre, methods }),
    })
}

fn check_imports(module: &Module) -> Result<()> {
    for import in module.imports() {
        let unknown = || Error::UnknownImport {
            module: import.module().to_owned(),
            name: import.name().to_owned(),
        };
        if import.module() != MODULE {
            return Err(unknown());
        }
        let Some((_, params, results)) =
            HOST_API.iter().find(|(name, _, _)| *name == import.name())
        else {
            return Err(unknown());
        };
        let expected = signature(
            params.iter().map(|ty| ty.name()),
            results.iter().map(|ty| ty.name()),
        );
        let found = match import.ty() {
            ExternType::Func(ty) => func_signature(&ty),
            other => format!("a non-function ({other:?})"),
        };
        if found != expected {
            return Err(Error::ImportSignature {
                name: import.name().to_owned(),
                expected,
                found,
            });
        }
    }
    Ok(())
}

fn check_memory(module: &Module, limits: &Limits) -> Result<()> {
    let memory = match module.get_export("memory") {
        Some(ExternType::Memory(memory)) => memory,
        Some(_) => return Err(Error::Memory("the export `memory` is not a memory".into())),
        None => return Err(Error::Memory("there is no export named `memory`".into())),
    };
    if memory.is_64() || memory.is_shared() {
        return Err(Error::Memory("it must be a 32-bit, unshared memory".into()));
    }
    let minimum = memory.minimum().saturating_mul(memory.page_size());
    if minimum > u64::try_from(limits.max_memory_bytes).unwrap_or(u64::MAX) {
        return Err(Error::Memory(format!(
            "its initial size of {minimum} bytes exceeds the {}-byte memory limit",
            limits.max_memory_bytes
        )));
    }
    Ok(())
}

fn func_signature(ty: &FuncType) -> String {
    signature(
        ty.params().map(|ty| ty.to_string()),
        ty.results().map(|ty| ty.to_string()),
    )
}

/// `(a, b) -> (c)`, the form both sides of an import check are written in.
fn signature<S: AsRef<str>>(
    params: impl Iterator<Item = S>,
    results: impl Iterator<Item = S>,
) -> String {
    let join = |items: Vec<S>| {
        items
            .iter()
            .map(|item| item.as_ref())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "({}) -> ({})",
        join(params.collect()),
        join(results.collect())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Ty;

    #[test]
    fn signatures_render_alike_from_both_sides() {
        let ours = signature(
            [Ty::I32, Ty::I32].iter().map(|ty| ty.name()),
            [Ty::I64].iter().map(|ty| ty.name()),
        );
        assert_eq!(ours, "(i32, i32) -> (i64)");
        let engine = Engine::default();
        let theirs = FuncType::new(
            &engine,
            [wasmtime::ValType::I32, wasmtime::ValType::I32],
            [wasmtime::ValType::I64],
        );
        assert_eq!(func_signature(&theirs), ours);
    }

    #[test]
    fn app_hash_is_sha256() {
        assert_eq!(
            hex::encode(app_hash(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
