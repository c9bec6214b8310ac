//! What the engine asks of the node after each input (`Engine::handle`):
//! the effects the node performs, in order. Its own file, below both the
//! engine and the sign policy that reads it.

use std::time::Duration;

use malachitebft_core_consensus::{Input, LivenessMsg, Role, SignedConsensusMsg};
use malachitebft_core_types::{CommitCertificate, Round, Timeout, ValueResponse};

use crate::context::ConclaveContext;
use crate::types::{Hash32, Height, MemberId};

/// What the node must do after an input.
#[derive(Debug)]
pub enum Output {
    /// Send a signed vote or proposal to the context's members.
    Publish(SignedConsensusMsg<ConclaveContext>),
    /// Send a liveness message (rebroadcast vote, polka or skip certificate).
    PublishLiveness(LivenessMsg<ConclaveContext>),
    ScheduleTimeout(Timeout, Duration),
    CancelTimeout(Timeout),
    CancelAllTimeouts,
    /// A round started; `proposer` proposes in it.
    StartRound {
        height: Height,
        round: Round,
        proposer: MemberId,
        role: Role,
    },
    /// We propose at `(height, round)`: build a block and feed
    /// [`Input::Propose`] within `timeout`.
    GetValue {
        height: Height,
        round: Round,
        timeout: Duration,
    },
    /// Re-send the block with this hash (a re-proposal of a locked value).
    RestreamProposal {
        height: Height,
        round: Round,
        value: Hash32,
    },
    /// Persist this input to the context's WAL before performing any later
    /// output.
    WalAppend(Height, Input<ConclaveContext>),
    /// The height is decided: commit the block with this certificate.
    Decide(CommitCertificate<ConclaveContext>),
    /// The height is final; start the next one. `equivocators` lists members
    /// caught signing conflicting messages at this height.
    Finalize {
        certificate: CommitCertificate<ConclaveContext>,
        equivocators: Vec<MemberId>,
        /// The conflicting messages themselves, verifiable by anyone
        /// holding the height's member set.
        evidence: Vec<crate::evidence::Evidence>,
    },
    /// A synced value's certificate verified; validate the block bytes and
    /// feed [`Input::ProposedValue`] with [`ValueOrigin::Sync`](malachitebft_core_types::ValueOrigin).
    SyncValue(ValueResponse<ConclaveContext>, MemberId),
    /// A synced value's certificate was rejected.
    SyncRejected(Height, String),
}
