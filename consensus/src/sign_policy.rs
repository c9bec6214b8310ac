//! The last line against double-signing: a policy the engine consults before
//! it signs a vote or a proposal, as CometBFT consults its
//! `priv_validator_state` before a signature leaves the process.
//!
//! The engine calls [`SignPolicy::check_and_record`] in its `SignVote` and
//! `SignProposal` effect arms, before the signature is computed. The node's
//! implementation persists the request durably before answering `Ok`; when it
//! refuses, the engine produces no signature and [`crate::Engine::handle`]
//! returns [`crate::Error::SignRefused`] (malachite aborts the input that led
//! to signing; no vote or proposal is published for it).
//!
//! Why the policy also receives WAL entries: malachite signs in the middle
//! of handling an input, before the node has seen (let alone fsynced) the
//! `WalAppend` outputs that led to the signature. If the sign state were
//! recorded while those entries could still be lost, a crash would leave a
//! recorded signature that replay cannot re-derive, and the guard would then
//! refuse every vote of that round: the node would stall (for good, in a
//! one-member context). So the engine hands those pending entries to the
//! policy, which makes them durable first; they are not returned as
//! [`crate::Output::WalAppend`].

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use thiserror::Error;

use malachitebft_core_consensus::Input;
use malachitebft_core_types::Round;

use crate::context::ConclaveContext;
use crate::output::Output;
use crate::types::{sha256, Hash32, Height};
use crate::Error;

/// A signing step, in the order one round signs them.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub enum SignStep {
    Propose,
    Prevote,
    Precommit,
}

/// Where in the protocol a message is signed: `(height, round, step)`,
/// ordered lexicographically.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct SignPosition {
    pub height: Height,
    pub round: u32,
    pub step: SignStep,
}

impl fmt::Display for SignPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{:?}", self.height, self.round, self.step)
    }
}

/// What the engine is about to sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignRequest {
    pub position: SignPosition,
    /// The value voted for or proposed (`None`: a nil vote).
    pub value: Option<Hash32>,
    /// SHA-256 of the exact bytes to be signed. Equal digests mean the same
    /// message, which may be signed again (ed25519 signatures are
    /// deterministic, so the signature is the same too).
    pub digest: Hash32,
}

/// Why a signature was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum SignRefusal {
    #[error("would sign at {requested}, behind the last signed {last}")]
    Regression {
        last: SignPosition,
        requested: SignPosition,
    },
    #[error("already signed a different message at {at}")]
    Conflict { at: SignPosition },
    #[error("round {0} cannot be signed")]
    NilRound(i64),
    #[error("the sign state could not be made durable: {0}")]
    Persist(String),
}

/// A write-ahead log entry: `Output::WalAppend`'s payload.
pub type WalEntry = (Height, Input<ConclaveContext>);

/// Decides, durably, whether a message may be signed.
pub trait SignPolicy: Send {
    /// First makes `log_first` durable in the write-ahead log, in order (on
    /// refusal too: those inputs were already applied). Then allows the
    /// request only if it does not conflict with anything signed before,
    /// and records it durably before returning `Ok`.
    fn check_and_record(
        &mut self,
        request: &SignRequest,
        log_first: &[WalEntry],
    ) -> Result<(), SignRefusal>;
}

/// What signing consults: the optional policy, the refusal it gave during
/// the current input, and the log being replayed, if any.
#[derive(Default)]
pub(crate) struct Signer {
    pub(crate) policy: Option<Box<dyn SignPolicy>>,
    pub(crate) refused: Option<SignRefusal>,
    pub(crate) replaying: Vec<Input<ConclaveContext>>,
}

impl Signer {
    /// Drops `WalAppend`s of inputs the log being replayed already holds.
    pub(crate) fn drop_replayed(&self, out: &mut Vec<Output>) {
        if !self.replaying.is_empty() {
            out.retain(
                |o| !matches!(o, Output::WalAppend(_, input) if self.replaying.contains(input)),
            );
        }
    }

    /// Asks the policy, if any, whether `position` may sign `bytes`, handing
    /// it the `WalAppend`s emitted so far to make durable first.
    pub(crate) fn permit(
        &mut self,
        position: Option<SignPosition>,
        round: Round,
        value: Option<Hash32>,
        bytes: &[u8],
        out: &mut Vec<Output>,
    ) -> std::result::Result<(), Error> {
        if self.policy.is_none() {
            return Ok(());
        }
        let Some(position) = position else {
            return Err(self.refuse(SignRefusal::NilRound(round.as_i64())));
        };
        self.drop_replayed(out);
        let (log_first, rest): (Vec<Output>, Vec<Output>) = std::mem::take(out)
            .into_iter()
            .partition(|o| matches!(o, Output::WalAppend(..)));
        *out = rest;
        let log_first: Vec<_> = log_first
            .into_iter()
            .filter_map(|o| match o {
                Output::WalAppend(h, input) => Some((h, input)),
                _ => None,
            })
            .collect();
        let Some(policy) = self.policy.as_mut() else {
            return Ok(());
        };
        let request = SignRequest {
            position,
            value,
            digest: sha256(&[bytes]),
        };
        policy
            .check_and_record(&request, &log_first)
            .map_err(|refusal| self.refuse(refusal))
    }

    fn refuse(&mut self, refusal: SignRefusal) -> Error {
        tracing::error!(%refusal, "refusing to sign");
        self.refused = Some(refusal.clone());
        Error::SignRefused(refusal)
    }
}

pub(crate) fn position(height: Height, round: Round, step: SignStep) -> Option<SignPosition> {
    round.as_u32().map(|round| SignPosition {
        height,
        round,
        step,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use ed25519_dalek::SigningKey;
    use malachitebft_core_consensus::LocallyProposedValue;

    use super::*;
    use crate::types::{ContextId, MemberId};
    use crate::{Engine, EngineConfig, ValidatorSet};

    type Seen = Arc<Mutex<(Vec<SignRequest>, Vec<WalEntry>)>>;

    /// Records what it is asked; refuses everything if `refuse`.
    struct Probe {
        seen: Seen,
        refuse: bool,
    }

    impl SignPolicy for Probe {
        fn check_and_record(
            &mut self,
            request: &SignRequest,
            log_first: &[WalEntry],
        ) -> Result<(), SignRefusal> {
            let mut seen = self.seen.lock().unwrap();
            seen.0.push(*request);
            seen.1.extend_from_slice(log_first);
            if self.refuse {
                return Err(SignRefusal::Conflict {
                    at: request.position,
                });
            }
            Ok(())
        }
    }

    fn engine(policy: Option<Probe>) -> Engine {
        let key = SigningKey::from_bytes(&[7; 32]);
        let vs = ValidatorSet::from_members(&[MemberId(key.verifying_key().to_bytes())]).unwrap();
        let e = Engine::new(EngineConfig::new(ContextId([1; 32])), key, Height(1), vs);
        match policy {
            Some(p) => e.with_sign_policy(Box::new(p)),
            None => e,
        }
    }

    fn run(e: &mut Engine) -> crate::Result<Vec<Output>> {
        let vs = e.validators().clone();
        e.start_height(Height(1), vs, false).unwrap();
        let value = LocallyProposedValue::new(Height(1), Round::new(0), Hash32([3; 32]));
        e.handle(Input::Propose(value))
    }

    fn wal_appends(out: &[Output]) -> Vec<WalEntry> {
        out.iter()
            .filter_map(|o| match o {
                Output::WalAppend(h, i) => Some((*h, i.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_refusal_means_no_signature_and_the_log_still_gets_its_entries() {
        let seen = Seen::default();
        let mut e = engine(Some(Probe {
            seen: seen.clone(),
            refuse: true,
        }));
        let err = run(&mut e).unwrap_err();
        assert!(matches!(
            err,
            crate::Error::SignRefused(SignRefusal::Conflict { .. })
        ));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.0.len(), 1, "asked once, for the proposal");
        assert_eq!(seen.0[0].position.step, SignStep::Propose);
        // The proposed value was applied before signing: the policy got it
        // to make durable.
        assert!(matches!(seen.1.as_slice(), [(_, Input::ProposedValue(..))]));
    }

    #[test]
    fn the_policy_sees_every_signature_in_order_and_every_entry_once() {
        let plain = run(&mut engine(None)).unwrap();
        let seen = Seen::default();
        let out = run(&mut engine(Some(Probe {
            seen: seen.clone(),
            refuse: false,
        })))
        .unwrap();
        let seen = seen.lock().unwrap();
        let steps: Vec<_> = seen.0.iter().map(|r| r.position.step).collect();
        assert_eq!(
            steps,
            [SignStep::Propose, SignStep::Prevote, SignStep::Precommit]
        );
        assert!(seen.0.iter().all(|r| r.value == Some(Hash32([3; 32]))));
        // Entries handed to the policy are not returned; together they are
        // exactly the log without a policy, in the same order.
        let mut all = seen.1.clone();
        all.extend(wal_appends(&out));
        assert_eq!(all, wal_appends(&plain));
        assert_eq!(out.len() + seen.1.len(), plain.len());
    }
}
