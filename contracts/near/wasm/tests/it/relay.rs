//! `conclave-bridge`'s relayer loop, the one Ethereum uses, driving the
//! NEAR proxy through the NEAR client: checkpoints in order, the action
//! with its proof, the member rotation, each executed in the proxy's wasm.

use conclave_bridge::metrics::Metrics;
use conclave_bridge::relay::{NearRelay, RelayOptions};
use conclave_bridge::source::{Members, ProvenAction, SignedCheckpoint, Source};
use conclave_bridge_near::Error;
use conclave_checkpoint::{action_id, Account, Action, ActionKind, Domain, MemberSet, Outbox};

use crate::client::{context, deployed, registration, sign, ALICE};
use crate::fixture::{self, ACCOUNT, NETWORK};
use crate::node::NEAR;

/// A member's node as the relayer reads it, in memory.
struct Memory {
    checkpoints: Vec<SignedCheckpoint>,
    actions: Vec<ProvenAction>,
    rotated: Members,
    tip: u64,
}

impl Source for Memory {
    async fn checkpoints(
        &self,
        domain: &Domain,
        after: u64,
        limit: usize,
    ) -> conclave_bridge::Result<Vec<SignedCheckpoint>> {
        Ok(self
            .checkpoints
            .iter()
            .filter(|c| &c.payload.domain == domain && c.payload.height > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn actions(
        &self,
        domain: &Domain,
        after: u64,
        limit: usize,
    ) -> conclave_bridge::Result<Vec<ProvenAction>> {
        Ok(self
            .actions
            .iter()
            .filter(|a| &a.action.domain == domain && a.height > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn tip(&self) -> conclave_bridge::Result<u64> {
        Ok(self.tip)
    }

    async fn members_at(&self, height: u64) -> conclave_bridge::Result<Members> {
        assert_eq!(height, 5, "the set from height 5 is the rotated one");
        Ok(self.rotated.clone())
    }
}

fn checkpoint(
    domain: Domain,
    epoch: u64,
    height: u64,
    actions_root: [u8; 32],
    next: [u8; 32],
    keys: &[u32],
    bits: &[usize],
) -> SignedCheckpoint {
    let payload = fixture::payload(domain, epoch, height, actions_root, next);
    let (signers, signature) = sign(&payload, keys, bits);
    SignedCheckpoint {
        payload,
        signers,
        signature,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relayer_posts_pays_and_rotates_on_near() {
    let (node, _client, proxy) = deployed().await;
    let domain = fixture::near_domain(NETWORK, ACCOUNT);
    let genesis: Vec<_> = (0..4).map(registration).collect();
    let rotated: Vec<_> = (2..7).map(registration).collect();
    let genesis_hash = MemberSet::new(&genesis, 0).unwrap().hash();
    let rotated_hash = MemberSet::new(&rotated, 0).unwrap().hash();

    let pay = Action {
        id: action_id(&context(), 2, 0),
        domain,
        kind: ActionKind::NativeTransfer {
            to: Account::Near(ALICE.into()),
            amount: NEAR,
        },
    };
    let outbox = Outbox::new(vec![pay.clone()]).unwrap();
    // Epoch 0 (keys 0..=3, quorum 3): height 2 pays alice, 3 is plain, 4
    // announces keys 2..=6; epoch 1 (quorum 4) signs 5 and 6.
    let old = [0, 1, 2];
    let new = [2, 3, 4, 5];
    let source = Memory {
        checkpoints: vec![
            checkpoint(domain, 0, 2, outbox.root(), genesis_hash, &old, &[0, 1, 2]),
            checkpoint(domain, 0, 3, [0; 32], genesis_hash, &old, &[0, 1, 2]),
            checkpoint(domain, 0, 4, [0; 32], rotated_hash, &old, &[0, 1, 2]),
            checkpoint(domain, 1, 5, [0; 32], rotated_hash, &new, &[0, 1, 2, 3]),
            checkpoint(domain, 1, 6, [0; 32], rotated_hash, &new, &[0, 1, 2, 3]),
        ],
        actions: vec![ProvenAction {
            action: pay.clone(),
            height: 2,
            proof: outbox.proof(0).unwrap(),
        }],
        rotated: conclave_bridge::source::Members {
            epoch: 1,
            keys: rotated.clone(),
        },
        tip: 7,
    };
    let metrics = Metrics::new();
    let mut relay = NearRelay::new(
        source,
        proxy.clone(),
        context(),
        metrics.clone(),
        RelayOptions::default(),
    )
    .unwrap();
    let alice = node.balance(ALICE);
    let report = relay.pass().await.unwrap();
    assert_eq!(report.posted, vec![2, 4, 6]);
    assert_eq!(report.rotated, vec![1]);
    assert_eq!(report.executed, vec![pay.id]);
    assert_eq!((report.anchored, report.tip), (6, 7));
    assert_eq!(node.balance(ALICE), alice + NEAR);
    assert_eq!(
        node.calls(),
        [
            "new",
            "submit_checkpoint",
            "submit_checkpoint",
            "rotate_members",
            "submit_checkpoint",
            "execute_action"
        ]
    );
    let state = proxy.state().await.unwrap();
    assert_eq!((state.latest, state.epoch), (6, 1));
    assert_eq!(state.members_hash, rotated_hash);
    let text = metrics.render();
    for line in [
        r#"conclave_relay_submissions_total{chain="near:testnet",kind="checkpoint",result="sent"} 3"#,
        r#"conclave_relay_submissions_total{chain="near:testnet",kind="rotation",result="sent"} 1"#,
        r#"conclave_relay_submissions_total{chain="near:testnet",kind="action",result="sent"} 1"#,
        r#"conclave_anchor_height{chain="near:testnet",context=""#,
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }

    // A second pass (a restarted relayer, a rival) finds everything done
    // from the chain's views and sends nothing; alice is paid once.
    let sent = node.accepted();
    let again = relay.pass().await.unwrap();
    assert!(again.posted.is_empty() && again.rotated.is_empty() && again.executed.is_empty());
    assert_eq!(node.accepted(), sent);
    assert_eq!(node.balance(ALICE), alice + NEAR);

    // After the rotation a checkpoint counting removed member 0's share
    // no longer verifies, and the old epoch is refused.
    let removed = fixture::payload(domain, 1, 7, [0; 32], rotated_hash);
    let (bits, sig) = sign(&removed, &[0, 2, 3, 4], &[0, 1, 2, 3]);
    let err = proxy
        .submit_checkpoint(&removed, &bits, &sig)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Refused { reason, .. } if reason.contains("BadSignature")),
        "{err}"
    );
    let stale_epoch = fixture::payload(domain, 0, 7, [0; 32], genesis_hash);
    let (bits, sig) = sign(&stale_epoch, &old, &[0, 1, 2]);
    let err = proxy
        .submit_checkpoint(&stale_epoch, &bits, &sig)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("WrongEpoch"), "{err}");
}
