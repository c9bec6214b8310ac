use super::*;
use crate::error::Error;

fn evm_domain() -> Domain {
    Domain::evm(31337, [0xaa; 20])
}

fn native(i: u32) -> Action {
    Action {
        id: action_id(&[1; 32], 5, i),
        domain: evm_domain(),
        kind: ActionKind::NativeTransfer {
            to: Account::Evm([0xbb; 20]),
            amount: 1_000,
        },
    }
}

#[test]
fn ids_are_unique_per_context_height_index() {
    let a = action_id(&[1; 32], 5, 0);
    assert_ne!(a, action_id(&[1; 32], 5, 1));
    assert_ne!(a, action_id(&[1; 32], 6, 0));
    assert_ne!(a, action_id(&[2; 32], 5, 0));
}

#[test]
fn evm_encoding_is_abi_layout() {
    let call = Action {
        id: [7; 32],
        domain: evm_domain(),
        kind: ActionKind::ContractCall {
            to: Account::Evm([0xcc; 20]),
            value: 5,
            calldata: vec![0xde, 0xad, 0xbe, 0xef],
        },
    };
    let e = call.encode().expect("fits");
    assert_eq!(e.len(), 11 * 32);
    assert_eq!(e[31], 1); // chain kind
    assert_eq!(&e[56..64], &31337u64.to_be_bytes());
    assert_eq!(&e[64 + 12..96], &[0xaa; 20]);
    assert_eq!(&e[96..128], &[7; 32]);
    assert_eq!(e[159], 3); // kind: call
    assert_eq!(&e[160..192], &[0u8; 32]); // token
    assert_eq!(&e[192 + 12..224], &[0xcc; 20]);
    assert_eq!(e[255], 5);
    assert_eq!(&e[286..288], &[0x01, 0x20]); // data offset 0x120
    assert_eq!(e[319], 4);
    assert_eq!(&e[320..324], &[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(&e[324..], &[0u8; 28]);
}

#[test]
fn near_encoding_and_account_checks() {
    let d = Domain::near("testnet", "proxy.testnet").expect("valid");
    let a = Action {
        id: [9; 32],
        domain: d,
        kind: ActionKind::TokenTransfer {
            token: Account::Near("usdc.testnet".into()),
            to: Account::Near("alice.testnet".into()),
            amount: 7,
        },
    };
    let e = a.encode().expect("fits");
    assert_eq!(&e[..41], &d.encode());
    assert_eq!(e[73], 2);
    assert_eq!(&e[74..78], &12u32.to_be_bytes());
    assert_eq!(&e[78..90], b"usdc.testnet");
    assert_eq!(e.len(), 41 + 32 + 1 + 4 + 12 + 4 + 13 + 16 + 4);

    let mixed = Action {
        domain: d,
        ..native(0)
    };
    assert!(matches!(mixed.encode(), Err(Error::BadAction(_))));
    let mut evm_with_near = native(0);
    evm_with_near.kind = ActionKind::NativeTransfer {
        to: Account::Near("bob.near".into()),
        amount: 1,
    };
    assert!(matches!(evm_with_near.encode(), Err(Error::BadAction(_))));
    let huge = Action {
        kind: ActionKind::ContractCall {
            to: Account::Evm([1; 20]),
            value: 0,
            calldata: vec![0; MAX_CALLDATA + 1],
        },
        ..native(0)
    };
    assert!(matches!(huge.encode(), Err(Error::BadAction(_))));
}

#[test]
fn outbox_root_and_proofs() {
    let actions: Vec<Action> = (0..5).map(native).collect();
    let ob = Outbox::new(actions.clone()).expect("all fit");
    let root = ob.root();
    assert_ne!(root, [0u8; 32]);
    for (i, a) in actions.iter().enumerate() {
        let p = ob.proof(i).expect("in range");
        assert_eq!(verify_action(&root, a, &p), Ok(()));
    }
    let p0 = ob.proof(0).expect("in range");
    assert_eq!(
        verify_action(&root, &actions[1], &p0),
        Err(Error::BadInclusionProof)
    );
    assert_eq!(Outbox::new(vec![]).expect("empty").root(), [0u8; 32]);
}
