//! The real `dao` app's quorum against the member set the node hands it
//! (`members_read`): a fraction of the current members, counting only the
//! votes of current members, so the quorum follows membership changes.

use conclave_runtime::{App, Call, Outcome, Runtime};
use serde_json::{json, Value};

use crate::common::{runtime, MemState};

const A: [u8; 32] = [0xa1; 32];
const B: [u8; 32] = [0xb2; 32];
const C: [u8; 32] = [0xc3; 32];
const D: [u8; 32] = [0xd4; 32];
const PROXY: &str = "0x5fbdb2315678afecb367f032d93f642f64180aa3";

struct Dao {
    rt: Runtime,
    app: App,
    state: MemState,
    members: Vec<[u8; 32]>,
    height: u64,
}

impl Dao {
    fn new(members: &[[u8; 32]]) -> Self {
        let rt = runtime();
        let app = rt.load(conclave_apps::DAO).expect("dao loads");
        Self {
            rt,
            app,
            state: MemState::default(),
            members: members.to_vec(),
            height: 0,
        }
    }

    fn tx(&mut self, caller: [u8; 32], method: &str, args: Value) -> Outcome {
        self.height += 1;
        let args = args.to_string();
        let call = Call {
            method,
            args: args.as_bytes(),
            caller,
            context_id: [9; 32],
            block_height: self.height,
            block_time_ms: 1_700_000_000_000,
            members: &self.members,
            read_only: false,
        };
        let outcome = self
            .rt
            .call(&self.app, call, &self.state)
            .expect("no host failure");
        if outcome.result.is_ok() {
            self.state.apply(&outcome);
        }
        outcome
    }

    /// A call that must succeed; whether it requested the payout.
    fn executed(&mut self, caller: [u8; 32], method: &str, args: Value) -> bool {
        let o = self.tx(caller, method, args);
        let out = o
            .result
            .as_ref()
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        let v: Value = serde_json::from_slice(out).unwrap();
        assert_eq!(
            v["executed"].as_bool().unwrap(),
            !o.actions.is_empty(),
            "{v}"
        );
        v["executed"].as_bool().unwrap()
    }

    fn propose(&mut self, caller: [u8; 32]) -> bool {
        self.executed(
            caller,
            "propose",
            json!({"domain": {"evm": {"chain_id": 31337, "proxy": PROXY}},
                   "action": {"native": {"to": PROXY, "amount": "1"}}}),
        )
    }

    fn vote(&mut self, caller: [u8; 32], id: u64) -> bool {
        self.executed(caller, "vote", json!({ "id": id }))
    }
}

#[test]
fn a_fraction_quorum_counts_the_current_members() {
    let mut dao = Dao::new(&[A, B, C, D]);
    assert!(dao
        .tx(A, "configure", json!({"fraction": "2/3"}))
        .result
        .is_ok());
    // Two thirds of four members, rounded up: three votes.
    assert!(!dao.propose(A));
    assert!(!dao.vote(B, 0));
    assert!(dao.vote(C, 0));

    // D and C leave: two members; D's vote on proposal 1 stops counting,
    // and two thirds of two is two.
    assert!(!dao.propose(D));
    dao.members = vec![A, B];
    assert!(!dao.vote(A, 1), "D's vote must not count once D is gone");
    assert!(dao.vote(B, 1));

    // A fifth member joins: two thirds of three is two.
    dao.members = vec![A, B, C];
    assert!(!dao.propose(C));
    assert!(dao.vote(A, 2));
}

#[test]
fn configure_refuses_bad_quorums_and_changes_nothing() {
    let mut dao = Dao::new(&[A, B]);
    for bad in [
        json!({"fraction": "3/2"}),
        json!({"fraction": "0/3"}),
        json!({"fraction": "two thirds"}),
        json!({"threshold": 0}),
        json!({"threshold": 2, "fraction": "1/2"}),
        json!({}),
    ] {
        let before = dao.state.0.clone();
        let o = dao.tx(A, "configure", bad.clone());
        assert!(o.result.is_err(), "{bad} was accepted");
        assert_eq!(dao.state.0, before, "{bad} changed the state");
    }
    // A fixed threshold still works as before.
    assert!(dao
        .tx(A, "configure", json!({"threshold": 2}))
        .result
        .is_ok());
    assert!(!dao.propose(A));
    assert!(dao.vote(B, 0));
}
