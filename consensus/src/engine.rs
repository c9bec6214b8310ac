//! The per-context consensus engine: malachite's pure core behind a
//! "Ready"-style API. [`Engine::handle`] takes one input, answers the
//! effects that are pure (signing, signature and certificate checks) on the
//! spot, and returns the rest as [`Output`]s, in the order malachite emitted
//! them, for the node to perform. Performing them in order is what makes a
//! `WalAppend` durable before the `Publish` that follows it.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use malachitebft_core_consensus::ConsensusMsg;
use malachitebft_core_consensus::{
    process, Effect, Input, LivenessMsg, Params, Resumable, State, ValuePayload,
};
use malachitebft_core_types::{
    CertificateError, CommitCertificate, LinearTimeouts, NilOrVal, PolkaCertificate, Round,
    RoundCertificate, RoundCertificateType, SignedMessage, ThresholdParams, ValidatorSet as _,
    VoteExtensionPolicy, VoteType, VotingPower,
};

use crate::checked::CheckedVotes;
use crate::codec::{self, proposal_sign_bytes, vote_sign_bytes};
use crate::context::{ConclaveContext, ValidatorSet, Vote};
use crate::evidence::Evidence;
pub use crate::output::Output;
use crate::sign_policy::{position, SignPolicy, SignStep, Signer};
use crate::types::{ContextId, Height, MemberId};
use crate::{Error, Result};

/// Knobs of one engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub context_id: ContextId,
    pub timeouts: LinearTimeouts,
    /// Inputs buffered for future heights, in total and per height.
    pub queue_capacity: usize,
    pub queue_per_height_capacity: usize,
}

impl EngineConfig {
    pub fn new(context_id: ContextId) -> Self {
        Self {
            context_id,
            timeouts: LinearTimeouts {
                propose: Duration::from_millis(1000),
                propose_delta: Duration::from_millis(500),
                prevote: Duration::from_millis(500),
                prevote_delta: Duration::from_millis(250),
                precommit: Duration::from_millis(500),
                precommit_delta: Duration::from_millis(250),
                rebroadcast: Duration::from_millis(3000),
                max_timeout: Duration::from_secs(30),
            },
            queue_capacity: 1024,
            queue_per_height_capacity: 256,
        }
    }
}

/// One context's consensus instance.
pub struct Engine {
    state: State<ConclaveContext>,
    key: SigningKey,
    config: EngineConfig,
    signer: Signer,
    /// Vote signatures checked at this height and this node's own
    /// signatures, so that neither the certificates malachite builds from
    /// them nor its own messages handed back are verified again.
    checked: CheckedVotes,
}

impl Engine {
    /// Creates an engine for `key`'s member at `height`. Nothing happens until
    /// [`Engine::start_height`].
    pub fn new(
        config: EngineConfig,
        key: SigningKey,
        height: Height,
        validators: ValidatorSet,
    ) -> Self {
        let address = MemberId(key.verifying_key().to_bytes());
        let ctx = ConclaveContext::new(config.context_id);
        let params = Params {
            address,
            threshold_params: ThresholdParams::default(),
            value_payload: ValuePayload::ProposalAndParts,
            enabled: true,
        };
        let state = State::new(
            ctx,
            height,
            validators,
            params,
            config.queue_capacity,
            config.queue_per_height_capacity,
        );
        Self {
            state,
            key,
            config,
            signer: Signer::default(),
            checked: CheckedVotes::default(),
        }
    }

    /// Consults `policy` before every vote and proposal this engine signs; a
    /// refusal means no signature (see [`crate::sign_policy`]).
    pub fn with_sign_policy(mut self, policy: Box<dyn SignPolicy>) -> Self {
        self.signer.policy = Some(policy);
        self
    }

    pub fn address(&self) -> MemberId {
        *self.state.address()
    }

    pub fn height(&self) -> Height {
        self.state.height()
    }

    pub fn round(&self) -> Round {
        self.state.round()
    }

    pub fn validators(&self) -> &ValidatorSet {
        self.state.validator_set()
    }

    /// Vote and proposal signatures this engine verified in full so far,
    /// certificates' included (its own and those checked before at the
    /// height are known without a check).
    pub fn signatures_checked(&self) -> u64 {
        self.checked.checks()
    }

    pub fn context_id(&self) -> ContextId {
        self.config.context_id
    }

    /// Starts (or, with `restart`, restarts after a crash) `height` with its
    /// validator set.
    pub fn start_height(
        &mut self,
        height: Height,
        validators: ValidatorSet,
        restart: bool,
    ) -> Result<Vec<Output>> {
        self.handle(Input::StartHeight(
            height,
            validators,
            restart,
            None,
            VoteExtensionPolicy::Disabled,
        ))
    }

    /// Feeds one input and returns the outputs to perform, in order.
    pub fn handle(&mut self, input: Input<ConclaveContext>) -> Result<Vec<Output>> {
        let Self {
            state,
            key,
            config,
            signer,
            checked,
        } = self;
        if matches!(input, Input::StartHeight(..)) {
            checked.clear();
        }
        let mut outputs = Vec::new();
        let result: std::result::Result<(), malachitebft_core_consensus::Error<ConclaveContext>> = process!(
            input: input,
            state: state,
            metrics: &(),
            with: effect => on_effect(effect, key, config, signer, checked, &mut outputs)
        );
        signer.drop_replayed(&mut outputs);
        // A refused signature aborts the input inside malachite (it resumes
        // with nothing to sign); report the refusal, not the resume error.
        if let Some(refusal) = signer.refused.take() {
            return Err(Error::SignRefused(refusal));
        }
        result.map_err(|e| Error::Consensus(e.to_string()))?;
        Ok(outputs)
    }

    /// Replays the write-ahead log of the current height after a restart:
    /// call right after `start_height(h, validators, true)` with the entries
    /// of `h`, in the order they were appended.
    ///
    /// Our own votes and proposals found in the log are re-published with
    /// their recorded signatures instead of being signed again (malachite's
    /// replay index); a re-derived message that differs from the recorded
    /// one fails the replay with [`Error::Consensus`]. `WalAppend` outputs
    /// for inputs already in the log are dropped; any other output,
    /// including `WalAppend` of a message signed for the first time, must be
    /// performed as usual.
    pub fn replay_wal(&mut self, entries: &[Input<ConclaveContext>]) -> Result<Vec<Output>> {
        self.state
            .record_recovered_own_precommit_extensions(entries.iter());
        self.state.index_wal_entries(entries.iter());
        self.signer.replaying = entries.to_vec();
        let mut outputs = Vec::new();
        let mut failure = None;
        for entry in entries {
            match self.handle(entry.clone()) {
                Ok(out) => outputs.extend(out),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        self.signer.replaying.clear();
        self.state.reset_entries_index();
        failure.map_or(Ok(outputs), Err)
    }
}

type Resume = malachitebft_core_consensus::Resume<ConclaveContext>;

fn on_effect(
    effect: Effect<ConclaveContext>,
    key: &SigningKey,
    config: &EngineConfig,
    signer: &mut Signer,
    checked: &mut CheckedVotes,
    out: &mut Vec<Output>,
) -> std::result::Result<Resume, Error> {
    let ctx_id = &config.context_id;
    let resume = match effect {
        Effect::CancelAllTimeouts(r) => {
            out.push(Output::CancelAllTimeouts);
            r.resume_with(())
        }
        Effect::CancelTimeout(t, r) => {
            out.push(Output::CancelTimeout(t));
            r.resume_with(())
        }
        Effect::ScheduleTimeout(t, r) => {
            out.push(Output::ScheduleTimeout(t, config.timeouts.duration_for(t)));
            r.resume_with(())
        }
        Effect::StartRound(height, round, proposer, role, r) => {
            out.push(Output::StartRound {
                height,
                round,
                proposer,
                role,
            });
            r.resume_with(())
        }
        Effect::PublishConsensusMsg(msg, r) => {
            out.push(Output::Publish(msg));
            r.resume_with(())
        }
        Effect::PublishLivenessMsg(msg, r) => {
            out.push(Output::PublishLiveness(msg));
            r.resume_with(())
        }
        Effect::RepublishVote(vote, r) => {
            out.push(Output::PublishLiveness(LivenessMsg::Vote(vote)));
            r.resume_with(())
        }
        Effect::RepublishRoundCertificate(cert, r) => {
            out.push(Output::PublishLiveness(LivenessMsg::SkipRoundCertificate(
                cert,
            )));
            r.resume_with(())
        }
        Effect::GetValue(height, round, timeout, r) => {
            out.push(Output::GetValue {
                height,
                round,
                timeout: config.timeouts.duration_for(timeout),
            });
            r.resume_with(())
        }
        Effect::RestreamProposal(height, round, _valid_round, _proposer, value, r) => {
            out.push(Output::RestreamProposal {
                height,
                round,
                value,
            });
            r.resume_with(())
        }
        Effect::CertVerifiedSyncValue(response, proposer, r) => {
            out.push(Output::SyncValue(response, proposer));
            r.resume_with(())
        }
        Effect::CertRejectedSyncValue(_peer, height, error, r) => {
            out.push(Output::SyncRejected(height, error.to_string()));
            r.resume_with(())
        }
        Effect::Decide(cert, _extensions, r) => {
            out.push(Output::Decide(cert));
            r.resume_with(())
        }
        Effect::Finalize(certificate, _extensions, evidence, r) => {
            // Every member caught double-voting or double-proposing, whether
            // or not it signed the certificate (an equivocating proposer
            // usually did not).
            let mut equivocators: Vec<MemberId> = evidence.votes.iter().map(|(a, _)| *a).collect();
            equivocators.extend((&evidence.proposals).into_iter().map(|(a, _)| *a));
            equivocators.sort();
            equivocators.dedup();
            let mut proofs: Vec<Evidence> = Vec::new();
            for (_, doubles) in &evidence.votes {
                proofs.extend(doubles.iter().map(|(a, b)| Evidence::votes(a, b)));
            }
            for (_, doubles) in &evidence.proposals {
                proofs.extend(doubles.iter().map(|(a, b)| Evidence::proposals(a, b)));
            }
            out.push(Output::Finalize {
                certificate,
                equivocators,
                evidence: proofs,
            });
            r.resume_with(())
        }
        Effect::WalAppend(height, input, r) => {
            out.push(Output::WalAppend(height, input));
            r.resume_with(())
        }
        Effect::SignVote(vote, r) => {
            let bytes = vote_sign_bytes(ctx_id, &vote);
            let step = match vote.typ {
                VoteType::Prevote => SignStep::Prevote,
                VoteType::Precommit => SignStep::Precommit,
            };
            let value = match vote.value {
                NilOrVal::Nil => None,
                NilOrVal::Val(v) => Some(v),
            };
            let at = position(vote.height, vote.round, step);
            signer.permit(at, vote.round, value, &bytes, out)?;
            let sig = codec::sign(key, &bytes);
            checked.record(&key.verifying_key(), &sig, bytes);
            r.resume_with(SignedMessage::new(vote, sig))
        }
        Effect::SignProposal(proposal, r) => {
            let bytes = proposal_sign_bytes(ctx_id, &proposal);
            let at = position(proposal.height, proposal.round, SignStep::Propose);
            signer.permit(at, proposal.round, Some(proposal.value), &bytes, out)?;
            let sig = codec::sign(key, &bytes);
            checked.record(&key.verifying_key(), &sig, bytes);
            r.resume_with(SignedMessage::new(proposal, sig))
        }
        Effect::VerifySignature(msg, public_key, r) => {
            let (bytes, vote) = match &msg.message {
                ConsensusMsg::Vote(v) => (vote_sign_bytes(ctx_id, v), true),
                ConsensusMsg::Proposal(p) => (proposal_sign_bytes(ctx_id, p), false),
            };
            // malachite hands this node's own votes and proposal back
            // here right after signing them: those are known.
            let valid = checked.check(&public_key, &msg.signature, &bytes);
            if valid && vote {
                checked.record(&public_key, &msg.signature, bytes);
            }
            r.resume_with(valid)
        }
        Effect::VerifyCommitCertificate(cert, validators, thresholds, r) => r.resume_with(
            commit_certificate(ctx_id, &cert, &validators, thresholds, checked),
        ),
        Effect::VerifyExtendedCommitCertificate(cert, validators, thresholds, _policy, r) => {
            let plain = cert.trim_vote_extensions();
            r.resume_with(commit_certificate(
                ctx_id,
                &plain,
                &validators,
                thresholds,
                checked,
            ))
        }
        Effect::VerifyPolkaCertificate(cert, validators, thresholds, r) => r.resume_with(
            verify_polka_certificate(ctx_id, &cert, &validators, thresholds, checked),
        ),
        Effect::VerifyRoundCertificate(cert, validators, thresholds, r) => r.resume_with(
            verify_round_certificate(ctx_id, &cert, &validators, thresholds, checked),
        ),
        Effect::ExtendVote(_height, _round, _value, _policy, r) => r.resume_with(None),
        Effect::VerifyVoteExtension(_h, _r, _v, _addr, _ext, _pk, r) => r.resume_with(Ok(())),
    };
    Ok(resume)
}

// Certificate checks answer with malachite's own error type, which its
// resume API requires; it is large, and boxing it is not ours to choose.
type CertResult = std::result::Result<(), CertificateError<ConclaveContext>>;

/// Tallies the voting power of `signers`, each of which must be a distinct
/// member whose signature over `vote_for(signer)` verifies (or is among
/// those `checked` already).
#[allow(clippy::result_large_err)] // see `CertResult`
fn tally<'a>(
    ctx_id: &ContextId,
    validators: &ValidatorSet,
    signers: impl Iterator<Item = (&'a MemberId, &'a crate::context::Sig, Vote)>,
    checked: &CheckedVotes,
    on_bad: impl Fn(MemberId) -> CertificateError<ConclaveContext>,
) -> std::result::Result<VotingPower, CertificateError<ConclaveContext>> {
    let mut seen = std::collections::BTreeSet::new();
    let mut power: VotingPower = 0;
    for (addr, sig, vote) in signers {
        let Some(v) = validators.get_by_address(addr) else {
            return Err(CertificateError::UnknownValidator(*addr));
        };
        if !seen.insert(*addr) {
            return Err(CertificateError::DuplicateVote(*addr));
        }
        let bytes = vote_sign_bytes(ctx_id, &vote);
        if !checked.check(&v.public_key, sig, &bytes) {
            return Err(on_bad(*addr));
        }
        power = power.saturating_add(v.voting_power);
    }
    Ok(power)
}

#[allow(clippy::result_large_err)] // see `CertResult`
fn enough(
    power: VotingPower,
    validators: &ValidatorSet,
    param: malachitebft_core_types::ThresholdParam,
) -> CertResult {
    let total = validators.total_voting_power();
    if param.is_met(power, total) {
        Ok(())
    } else {
        Err(CertificateError::NotEnoughVotingPower {
            signed: power,
            total,
            expected: param.min_expected(total),
        })
    }
}

/// Verifies a commit certificate: distinct members, valid precommit
/// signatures, more than 2/3 of the voting power.
#[allow(clippy::result_large_err)] // see `CertResult`
pub fn verify_commit_certificate(
    ctx_id: &ContextId,
    cert: &CommitCertificate<ConclaveContext>,
    validators: &ValidatorSet,
    thresholds: ThresholdParams,
) -> CertResult {
    commit_certificate(
        ctx_id,
        cert,
        validators,
        thresholds,
        &CheckedVotes::default(),
    )
}

#[allow(clippy::result_large_err)] // see `CertResult`
pub(crate) fn commit_certificate(
    ctx_id: &ContextId,
    cert: &CommitCertificate<ConclaveContext>,
    validators: &ValidatorSet,
    thresholds: ThresholdParams,
    checked: &CheckedVotes,
) -> CertResult {
    let power = tally(
        ctx_id,
        validators,
        cert.commit_signatures.iter().map(|s| {
            (
                &s.address,
                &s.signature,
                codec::precommit_for(cert, s.address),
            )
        }),
        checked,
        |a| {
            CertificateError::InvalidCommitSignature(malachitebft_core_types::CommitSignature::new(
                a,
                crate::context::Sig([0; 64]),
            ))
        },
    )?;
    enough(power, validators, thresholds.quorum)
}

#[allow(clippy::result_large_err)] // see `CertResult`
fn verify_polka_certificate(
    ctx_id: &ContextId,
    cert: &PolkaCertificate<ConclaveContext>,
    validators: &ValidatorSet,
    thresholds: ThresholdParams,
    checked: &CheckedVotes,
) -> CertResult {
    let vote = |addr: MemberId| Vote {
        typ: VoteType::Prevote,
        height: cert.height,
        round: cert.round,
        value: NilOrVal::Val(cert.value_id),
        validator: addr,
        extension: None,
    };
    let power = tally(
        ctx_id,
        validators,
        cert.polka_signatures
            .iter()
            .map(|s| (&s.address, &s.signature, vote(s.address))),
        checked,
        |a| {
            CertificateError::InvalidPolkaSignature(malachitebft_core_types::PolkaSignature::new(
                a,
                crate::context::Sig([0; 64]),
            ))
        },
    )?;
    enough(power, validators, thresholds.quorum)
}

#[allow(clippy::result_large_err)] // see `CertResult`
fn verify_round_certificate(
    ctx_id: &ContextId,
    cert: &RoundCertificate<ConclaveContext>,
    validators: &ValidatorSet,
    thresholds: ThresholdParams,
    checked: &CheckedVotes,
) -> CertResult {
    if cert.cert_type == RoundCertificateType::Precommit
        && cert
            .round_signatures
            .iter()
            .any(|s| s.vote_type != VoteType::Precommit)
    {
        let bad = cert
            .round_signatures
            .iter()
            .find(|s| s.vote_type != VoteType::Precommit)
            .map(|s| s.address)
            .unwrap_or_default();
        return Err(CertificateError::InvalidVoteType(bad));
    }
    let power = tally(
        ctx_id,
        validators,
        cert.round_signatures.iter().map(|s| {
            (
                &s.address,
                &s.signature,
                Vote {
                    typ: s.vote_type,
                    height: cert.height,
                    round: cert.round,
                    value: s.value_id,
                    validator: s.address,
                    extension: None,
                },
            )
        }),
        checked,
        |a| {
            CertificateError::InvalidRoundSignature(malachitebft_core_types::RoundSignature::new(
                VoteType::Precommit,
                NilOrVal::Nil,
                a,
                crate::context::Sig([0; 64]),
            ))
        },
    )?;
    match cert.cert_type {
        RoundCertificateType::Precommit => enough(power, validators, thresholds.quorum),
        RoundCertificateType::Skip => enough(power, validators, thresholds.honest),
    }
}
