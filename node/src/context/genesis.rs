use conclave_consensus::{ContextId, Hash32, Height};
use conclave_runtime::Runtime;
use rand::RngCore;

use crate::store::{ContextRecord, Genesis, MemberInfo, Store};
use crate::{Error, Result};

/// Creates a context running `wasm` among `members`: validates the app,
/// stores it, writes the genesis record and the empty state (version 0).
pub fn create_context(
    store: &Store,
    runtime: &Runtime,
    wasm: &[u8],
    mut members: Vec<MemberInfo>,
    now_ms: u64,
) -> Result<ContextRecord> {
    if members.is_empty() {
        return Err(Error::Other("a context needs at least one member".into()));
    }
    let app_hash = Hash32(runtime.load(wasm)?.hash());
    members.sort_by_key(|m| m.id);
    members.dedup_by_key(|m| m.id);
    let mut salt = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let genesis = Genesis {
        app_hash,
        members,
        created_at_ms: now_ms,
        salt: Hash32(salt),
    };
    install_genesis(store, runtime, wasm, genesis)
}

/// Writes a context's genesis (from its creator or from another member)
/// into `store`: the app, the record and the initial state.
pub fn install_genesis(
    store: &Store,
    runtime: &Runtime,
    wasm: &[u8],
    genesis: Genesis,
) -> Result<ContextRecord> {
    let app = runtime.load(wasm)?;
    let app_hash = Hash32(app.hash());
    if app_hash != genesis.app_hash {
        return Err(Error::Other(format!(
            "app hash {app_hash} does not match the genesis' {}",
            genesis.app_hash
        )));
    }
    let now_ms = genesis.created_at_ms;
    let id: ContextId = genesis.context_id();
    let state = store.state(id);
    let (state_root, tree) = state.compute_update(Vec::new(), 0)?;
    let record = ContextRecord {
        id,
        genesis,
        height: Height(0),
        last_block_hash: Hash32::default(),
        state_root,
        last_time_ms: now_ms,
    };
    store.put_blob(&app_hash, wasm)?;
    store.create_context(&record, &tree)?;
    Ok(record)
}
