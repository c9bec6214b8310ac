//! `config.toml` under the node's home. Every field has a default, so an
//! empty file (or none) is a valid configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub p2p: P2pConfig,
    pub rpc: RpcConfig,
    pub metrics: MetricsConfig,
    pub mempool: MempoolConfig,
    pub block: BlockConfig,
    pub consensus: ConsensusConfig,
    pub runtime: RuntimeConfig,
    pub debug: DebugConfig,
    pub checkpoint: CheckpointConfig,
    pub storage: StorageConfig,
    pub node: NodeConfig,
}

/// Most worker threads `[node] worker_threads` may name.
pub const MAX_WORKER_THREADS: usize = 1024;

/// The node process itself.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Threads running the node's async tasks (consensus, RPC, network);
    /// 0: one per CPU. Validators that share a machine run best with its
    /// CPUs divided among them: with more runnable threads than cores,
    /// every message between tasks costs a thread switch, and the idle
    /// workers are woken to look for work that is not there.
    /// `conclave devnet` and `conclave bench` give each validator its
    /// share.
    pub worker_threads: usize,
}

impl NodeConfig {
    /// The worker count to build the runtime with (`None`: one per CPU),
    /// or why the configured one cannot be.
    pub fn workers(&self) -> Result<Option<usize>> {
        match self.worker_threads {
            0 => Ok(None),
            n if n > MAX_WORKER_THREADS => Err(Error::Config(format!(
                "[node] worker_threads = {n}: at most {MAX_WORKER_THREADS}"
            ))),
            n => Ok(Some(n)),
        }
    }

    /// Worker threads for each of `validators` nodes on this machine:
    /// their even share of its CPUs, at least one.
    pub fn share_of_this_machine(validators: usize) -> usize {
        cpu_share(
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            validators,
        )
    }
}

fn cpu_share(cpus: usize, validators: usize) -> usize {
    (cpus / validators.max(1)).max(1)
}

/// The node's own disk.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Free space (MiB) kept on the filesystems of the database and the
    /// WALs: below it, contexts stop before their next write (no vote, no
    /// commit, no new tx) and resume once space is freed. It keeps the
    /// database from ever meeting a full disk, after which RocksDB takes
    /// no writes until the node restarts. 0 turns the check off.
    pub min_free_mb: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { min_free_mb: 256 }
    }
}

/// Test hooks, all off by default.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DebugConfig {
    /// Enables the `debug_set_blocked_peers` RPC, which cuts this node off
    /// from chosen peers (partition tests). Never enable it in production:
    /// whoever reaches the RPC port could isolate the node.
    pub fault_injection: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Checkpoint interval written into the geneses of contexts this node
    /// creates (when the creator names none). A context's own interval is
    /// in its genesis: every member must use the same.
    pub interval: u64,
    /// How often a member re-gossips its signature of a checkpoint that has
    /// not reached a quorum yet; also how long a checkpoint whose shares
    /// make a quorum waits for the members that have not signed before it
    /// completes without them.
    pub resend_ms: u64,
    /// Re-gossips per checkpoint, at most.
    pub max_resends: u32,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            interval: crate::store::DEFAULT_CHECKPOINT_INTERVAL,
            resend_ms: 2_000,
            max_resends: 30,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    pub listen: SocketAddr,
    pub max_request_bytes: u32,
    pub max_response_bytes: u32,
    pub max_connections: u32,
    pub max_subscriptions_per_connection: u32,
    pub max_batch_len: u32,
    /// Messages queued for one connection (subscription items included)
    /// before the node stops reading from it; a subscriber that does not
    /// read is dropped soon after.
    pub max_buffered_messages: u32,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 26657)),
            max_request_bytes: 1024 * 1024,
            max_response_bytes: 16 * 1024 * 1024,
            max_connections: 256,
            max_subscriptions_per_connection: 16,
            max_batch_len: 32,
            max_buffered_messages: 1024,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct P2pConfig {
    /// libp2p listen address.
    pub listen: String,
    /// Peers to keep connected to: multiaddrs ending in `/p2p/<peer id>`
    /// (a peer id is derived from the member id; see `conclave testnet`).
    pub persistent_peers: Vec<String>,
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self {
            listen: "/ip4/127.0.0.1/tcp/26656".into(),
            persistent_peers: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 26660)),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MempoolConfig {
    /// Pending txs per context. Txs pushed by other members (which
    /// acknowledged them) and the tx closing a sender's nonce gap may go
    /// past it, and past `max_bytes`, by up to a quarter.
    pub max_txs: usize,
    /// Largest encoded tx accepted.
    pub max_tx_bytes: usize,
    /// Pending bytes per context.
    pub max_bytes: usize,
    /// Pending txs of one sender per context: no member can fill the pool
    /// for the others.
    pub max_txs_per_sender: usize,
    /// How far ahead of a sender's committed nonce a tx may be admitted.
    pub max_nonce_gap: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_txs: 20_000,
            max_tx_bytes: 64 * 1024,
            max_bytes: 64 * 1024 * 1024,
            max_txs_per_sender: 5_000,
            max_nonce_gap: 10_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BlockConfig {
    pub max_txs: usize,
    pub max_bytes: usize,
    /// A proposer stops adding txs to its block after executing for this
    /// long, so that members re-execute it well within the propose timeout
    /// (a block that takes longer than the timeout costs a round).
    pub max_build_ms: u64,
    /// A proposal of this many txs or more names the txs the members hold
    /// by hash (`context::compact`), sending only the proposer's own whole:
    /// large blocks then cross the network once, in the pushes. Smaller
    /// proposals go whole: their bytes matter little, and a member missing
    /// a tx would have to ask for it. 0 makes every proposal compact.
    pub compact_from_txs: usize,
}

impl Default for BlockConfig {
    fn default() -> Self {
        Self {
            max_txs: 2_000,
            // A proposed block travels in one gossip message (4 MiB max).
            max_bytes: 3 * 1024 * 1024,
            max_build_ms: 250,
            compact_from_txs: 256,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConsensusConfig {
    /// How long a member waits for a round's proposal, at least: while
    /// proposals arrive later than that (a loaded node), the wait
    /// stretches to twice the latest of the last 16, up to 8 times this
    /// (`context::pace`).
    pub timeout_propose_ms: u64,
    pub timeout_prevote_ms: u64,
    pub timeout_precommit_ms: u64,
    /// Added per round to each timeout, so rounds grow until they succeed.
    pub timeout_delta_ms: u64,
    /// Committed heights looked back at, when a context starts, for this
    /// node's own precommits its sign guard did not record (another process
    /// with the same key signed them): if any, the context does not sign
    /// (it follows) until restarted with the check off. 0 turns the check
    /// off, at start and in catch-up (`conclave start
    /// --skip-double-sign-check`).
    pub double_sign_check_height: u64,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        Self {
            timeout_propose_ms: 1000,
            timeout_prevote_ms: 500,
            timeout_precommit_ms: 500,
            timeout_delta_ms: 250,
            double_sign_check_height: 32,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    pub fuel_per_tx: u64,
    pub max_memory_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        let d = conclave_runtime::Limits::default();
        Self {
            fuel_per_tx: d.fuel_per_call,
            max_memory_bytes: d.max_memory_bytes,
        }
    }
}

impl RuntimeConfig {
    pub fn limits(&self) -> conclave_runtime::Limits {
        conclave_runtime::Limits {
            fuel_per_call: self.fuel_per_tx,
            max_memory_bytes: self.max_memory_bytes,
            ..Default::default()
        }
    }
}

impl Config {
    pub fn path(home: &Path) -> PathBuf {
        home.join("config.toml")
    }

    /// Loads `home/config.toml`; a missing file means all defaults.
    pub fn load(home: &Path) -> Result<Self> {
        let path = Self::path(home);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::Config(format!("{}: {e}", path.display()))),
        }
    }

    pub fn save(&self, home: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self).map_err(|e| Error::Config(e.to_string()))?;
        std::fs::write(Self::path(home), text)?;
        Ok(())
    }

    pub fn data_dir(home: &Path) -> PathBuf {
        home.join("data")
    }

    /// Context geneses handed to this node out of band (`conclave testnet`
    /// writes them); installed at start.
    pub fn wal_dir(home: &Path) -> PathBuf {
        home.join("wal")
    }

    pub fn genesis_dir(home: &Path) -> PathBuf {
        home.join("genesis")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_defaults_and_roundtrips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), Config::default());
        std::fs::write(Config::path(dir.path()), "").unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), Config::default());
        let mut c = Config::default();
        c.block.max_txs = 7;
        c.save(dir.path()).unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), c);
    }

    #[test]
    fn worker_threads_default_to_one_per_cpu_and_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Config::load(dir.path()).unwrap().node.workers().unwrap(),
            None
        );
        std::fs::write(Config::path(dir.path()), "[node]\nworker_threads = 2\n").unwrap();
        assert_eq!(
            Config::load(dir.path()).unwrap().node.workers().unwrap(),
            Some(2)
        );
        std::fs::write(Config::path(dir.path()), "[node]\nworker_threads = 5000\n").unwrap();
        let err = Config::load(dir.path())
            .unwrap()
            .node
            .workers()
            .unwrap_err()
            .to_string();
        assert!(err.contains("worker_threads = 5000"), "{err}");
        std::fs::write(Config::path(dir.path()), "[node]\nworker_threads = -1\n").unwrap();
        assert!(Config::load(dir.path()).is_err());
    }

    #[test]
    fn validators_on_one_machine_share_its_cpus() {
        assert_eq!(cpu_share(2, 4), 1);
        assert_eq!(cpu_share(8, 4), 2);
        assert_eq!(cpu_share(16, 1), 16);
        assert_eq!(cpu_share(1, 0), 1);
        assert!(NodeConfig::share_of_this_machine(1) >= 1);
    }

    #[test]
    fn unknown_field_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(Config::path(dir.path()), "[rpc]\nlisten_typo = 1\n").unwrap();
        let err = Config::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("listen_typo"), "{err}");
    }
}
