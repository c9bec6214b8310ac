use conclave_consensus::{ContextId, Hash32, Height};
use conclave_runtime::Runtime;
use rand::RngCore;

use crate::members::check_member_keys;
use crate::store::{AnchorDomain, ContextRecord, Genesis, MemberInfo, Store};
use crate::{Error, Result};

/// A new context's checkpoint parameters (they go into its genesis).
#[derive(Clone, Debug, Default)]
pub struct CheckpointOptions {
    /// Proxy contracts it anchors to (none: the unanchored domain).
    pub anchors: Vec<AnchorDomain>,
    /// Checkpoint interval in blocks.
    pub interval: u64,
}

/// Creates a context running `wasm` among `members`: validates the app,
/// stores it, writes the genesis record and the empty state (version 0).
pub fn create_context(
    store: &Store,
    runtime: &Runtime,
    wasm: &[u8],
    mut members: Vec<MemberInfo>,
    now_ms: u64,
    checkpoint: CheckpointOptions,
) -> Result<ContextRecord> {
    if members.is_empty() {
        return Err(Error::Invalid("a context needs at least one member".into()));
    }
    // `install_genesis` validates and compiles the app; here only its hash.
    let app_hash = Hash32(conclave_runtime::app_hash(wasm));
    members.sort_by_key(|m| m.id);
    members.dedup_by_key(|m| m.id);
    let mut salt = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let genesis = Genesis {
        app_hash,
        members,
        created_at_ms: now_ms,
        salt: Hash32(salt),
        anchors: checkpoint.anchors,
        checkpoint_interval: checkpoint.interval,
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
        return Err(Error::Invalid(format!(
            "app hash {app_hash} does not match the genesis' {}",
            genesis.app_hash
        )));
    }
    for m in &genesis.members {
        check_member_keys(m)?;
    }
    let id: ContextId = genesis.context_id();
    crate::checkpoint::params(id, &genesis)
        .map_err(|e| Error::Invalid(format!("checkpoint parameters: {e}")))?;
    let now_ms = genesis.created_at_ms;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NodeKeys;

    fn member(home: &std::path::Path) -> MemberInfo {
        let k = NodeKeys::generate(home).unwrap();
        MemberInfo {
            id: k.member_id(),
            bls_public_key: k.bls_public_key().to_vec(),
            bls_pop: k.bls_pop().to_vec(),
        }
    }

    #[test]
    fn members_without_a_valid_pop_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(&dir.path().join("db"), &crate::store::StorageKey::random()).unwrap();
        let runtime = Runtime::new(Default::default()).unwrap();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let honest = member(a.path());
        let mut rogue = member(b.path());
        // A key with someone else's proof: the rogue-key attack's shape.
        rogue.bls_pop = honest.bls_pop.clone();
        let err = create_context(
            &store,
            &runtime,
            conclave_apps::KV,
            vec![honest.clone(), rogue],
            1,
            opts(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("proof of possession"), "{err}");
        assert!(store.contexts().unwrap().is_empty(), "nothing written");

        let ok = create_context(
            &store,
            &runtime,
            conclave_apps::KV,
            vec![honest.clone()],
            1,
            opts(),
        )
        .unwrap();
        assert_eq!(store.contexts().unwrap(), vec![ok.clone()]);

        // Bad checkpoint parameters are refused and write nothing.
        for bad in [
            CheckpointOptions {
                anchors: vec![],
                interval: 0,
            },
            CheckpointOptions {
                anchors: vec![AnchorDomain([0; 41])],
                interval: 5,
            },
            CheckpointOptions {
                anchors: vec![AnchorDomain([9; 41])],
                interval: 5,
            },
        ] {
            let err = create_context(
                &store,
                &runtime,
                conclave_apps::KV,
                vec![honest.clone()],
                2,
                bad,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("checkpoint"), "{err}");
        }
        assert_eq!(store.contexts().unwrap(), vec![ok]);
    }

    fn opts() -> CheckpointOptions {
        CheckpointOptions {
            anchors: vec![crate::checkpoint::parse_anchor("near:testnet:dao.testnet").unwrap()],
            interval: 4,
        }
    }
}
