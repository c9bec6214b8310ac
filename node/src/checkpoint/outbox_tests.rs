//! Execution builds the height's outbox from the guests' action requests:
//! ids by position over the whole block, the header's actions root from
//! `conclave_checkpoint::Outbox`, and a malformed request fails its tx only.

use conclave_checkpoint::actions::request;
use conclave_checkpoint::{action_id, Account, Action, ActionKind, Domain, Outbox};
use conclave_consensus::{Hash32, Height, Tx};
use conclave_runtime::Runtime;
use ed25519_dalek::SigningKey;

use crate::context::{create_context, CheckpointOptions};
use crate::exec::{execute, BlockEnv};
use crate::keys::NodeKeys;
use crate::store::{MemberInfo, Store, TxStatus};

fn wat_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("\\{x:02x}")).collect()
}

fn payout(amount: u128) -> (Domain, ActionKind) {
    (
        Domain::evm(31337, [0x5f; 20]),
        ActionKind::NativeTransfer {
            to: Account::Evm([0x70; 20]),
            amount,
        },
    )
}

#[test]
fn outbox_ids_root_and_malformed_requests() {
    let (d, k) = payout(1000);
    let good = request::encode(&d, &k);
    // A NEAR account in an EVM action: decodes, but does not fit its chain.
    let mismatched = request::encode(
        &d,
        &ActionKind::NativeTransfer {
            to: Account::Near("bob.testnet".into()),
            amount: 1,
        },
    );
    let module = format!(
        r#"(module
          (import "env" "onchain_action" (func $act (param i32 i32)))
          (import "env" "storage_write" (func $write (param i32 i32 i32 i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "{good}")
          (data (i32.const 1000) "{bad}")
          (data (i32.const 2000) "key")
          (func (export "pay")
            (call $act (i32.const 0) (i32.const {good_len})))
          (func (export "pay_twice")
            (call $act (i32.const 0) (i32.const {good_len}))
            (call $act (i32.const 0) (i32.const {good_len})))
          (func (export "garbage")
            (call $write (i32.const 2000) (i32.const 3) (i32.const 2000) (i32.const 3))
            (call $act (i32.const 0) (i32.const 5)))
          (func (export "mismatched")
            (call $act (i32.const 1000) (i32.const {bad_len}))))"#,
        good = wat_bytes(&good),
        good_len = good.len(),
        bad = wat_bytes(&mismatched),
        bad_len = mismatched.len(),
    );
    let wasm = wat::parse_str(module).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), &crate::store::StorageKey::random()).unwrap();
    let runtime = Runtime::new(Default::default()).unwrap();
    let home = tempfile::tempdir().unwrap();
    let keys = NodeKeys::generate(home.path()).unwrap();
    let me = MemberInfo {
        id: keys.member_id(),
        bls_public_key: keys.bls_public_key().to_vec(),
        bls_pop: keys.bls_pop().to_vec(),
    };
    let record = create_context(
        &store,
        &runtime,
        &wasm,
        vec![me.clone()],
        1,
        CheckpointOptions {
            anchors: vec![],
            interval: 10,
        },
    )
    .unwrap();
    let app = runtime.load(&wasm).unwrap();
    let ctx = record.id;
    let sk: SigningKey = keys.member.clone();
    let txs: Vec<_> = ["pay", "garbage", "pay_twice", "mismatched"]
        .iter()
        .enumerate()
        .map(|(i, m)| {
            Tx {
                context_id: ctx,
                sender: me.id,
                nonce: i as u64 + 1,
                method: (*m).into(),
                args: Vec::new(),
            }
            .sign(&sk)
        })
        .collect();
    let members = [me.id];
    let env = BlockEnv {
        context_id: ctx,
        genesis: &record.genesis,
        members: &members,
        height: Height(1),
        time_ms: 2,
        max_tx_bytes: 64 * 1024,
        verified: None,
        budget: None,
    };
    let (included, ex) = execute(
        &runtime,
        &app,
        &store.state(ctx),
        &env,
        txs,
        true,
        &mut Vec::new(),
    )
    .unwrap();
    assert_eq!(included.len(), 4, "failed txs are still part of the block");
    let status: Vec<_> = ex.receipts.iter().map(|r| r.status.clone()).collect();
    assert_eq!(
        status,
        [
            TxStatus::Ok,
            TxStatus::Failed,
            TxStatus::Ok,
            TxStatus::Failed
        ]
    );
    let err = ex.receipts[1].error.as_deref().unwrap();
    assert!(err.contains("invalid on-chain action 0"), "{err}");
    assert!(ex.receipts[1].actions.is_empty());
    let err = ex.receipts[3].error.as_deref().unwrap();
    assert!(err.contains("NEAR account in an EVM action"), "{err}");

    // Three actions, numbered over the block; the failed txs' are gone.
    assert_eq!(ex.actions.len(), 3);
    let expected: Vec<Action> = (0..3u32)
        .map(|i| Action {
            id: action_id(&ctx.0, 1, i),
            domain: d,
            kind: k.clone(),
        })
        .collect();
    for (rec, want) in ex.actions.iter().zip(&expected) {
        assert_eq!(rec.id, want.id);
        assert_eq!(rec.request, good);
    }
    assert_eq!(ex.actions[0].tx, included[0].hash());
    assert_eq!(ex.actions[2].tx, included[2].hash());
    let root = Outbox::new(expected).unwrap().root();
    assert_eq!(ex.actions_root, Hash32(root));
}
