//! What the relayer needs from a proxy on a chain: one trait, implemented
//! for the Ethereum proxy (`evm::Proxy`, alloy) and for the NEAR proxy
//! (`conclave_bridge_near::NearProxy`, in `near.rs`), so that one relayer
//! loop (`relay.rs`) and one `anchor status` (`status.rs`) serve both.

use std::future::Future;

use conclave_checkpoint::Domain;

use crate::plan::ChainView;
use crate::source::{Members, ProvenAction, SignedCheckpoint};
use crate::Result;

/// A block a relayer pass relied on: its number (height) and hash.
pub type Mark = (u64, [u8; 32]);

/// What became of a submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Sent and confirmed in `block`.
    Done {
        /// The transaction, as the chain's explorers show it.
        tx: String,
        /// Gas of every transaction the submission sent.
        gas_used: u64,
        block: Mark,
    },
    /// The proxy already has it (another relayer was first): nothing sent.
    AlreadyDone(String),
    /// The action's own transfer or call fails (a reverting receiver, an
    /// empty proxy): the action stays executable.
    ActionFails(String),
}

/// A context's proxy on one chain, with an account that pays for its
/// calls. Every state-changing call is checked before it is sent
/// (simulated on Ethereum, a view on NEAR), and an "already done" refusal
/// is [`Outcome::AlreadyDone`].
pub trait Anchor: Sync {
    /// `evm:<chain id>` or `near:<network>`: the `chain` label of metrics
    /// and logs.
    fn label(&self) -> String;

    /// The domain checkpoints for this proxy are signed for.
    fn domain(&self) -> Result<Domain>;

    /// The proxy's address or account, as the operator names it.
    fn address(&self) -> String;

    /// The chain's head a pass starts from: a block whose replacement
    /// means a reorg.
    fn head(&self) -> impl Future<Output = Result<Mark>> + Send;

    /// The hash of the block at `number`, if the chain has one there.
    fn block_hash(&self, number: u64) -> impl Future<Output = Result<Option<[u8; 32]>>> + Send;

    /// Latest checkpoint height, epoch and member-set hash.
    fn view(&self) -> impl Future<Output = Result<ChainView>> + Send;

    /// The member-set hash the checkpoint at `height` announced, if the
    /// proxy has not rotated to it yet.
    fn announced(&self, height: u64) -> impl Future<Output = Result<Option<[u8; 32]>>> + Send;

    /// The `(state root, actions root)` stored for `height` (zeros: no
    /// checkpoint there).
    fn roots_at(&self, height: u64) -> impl Future<Output = Result<([u8; 32], [u8; 32])>> + Send;

    /// Whether the action `id` was executed.
    fn executed(&self, id: [u8; 32]) -> impl Future<Output = Result<bool>> + Send;

    /// The transaction that executed the action `id`, where the chain can
    /// say (Ethereum's logs); `None` where it cannot without an indexer.
    fn executed_in(&self, id: [u8; 32]) -> impl Future<Output = Result<Option<String>>> + Send {
        let _ = id;
        async { Ok(None) }
    }

    /// Posts a checkpoint; a stale height is [`Outcome::AlreadyDone`].
    fn submit_checkpoint(
        &self,
        c: &SignedCheckpoint,
    ) -> impl Future<Output = Result<Outcome>> + Send;

    /// Rotates the proxy to `members`, announced by the checkpoint at
    /// `height`; rotated already is [`Outcome::AlreadyDone`].
    fn rotate_members(
        &self,
        height: u64,
        members: &Members,
    ) -> impl Future<Output = Result<Outcome>> + Send;

    /// Executes an action with its inclusion proof.
    fn execute_action(&self, a: &ProvenAction) -> impl Future<Output = Result<Outcome>> + Send;
}
