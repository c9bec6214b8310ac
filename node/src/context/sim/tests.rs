//! Scenarios of the in-process simulation (see the module's docs). Each
//! ends with `Sim::check_invariants`; time bounds are generous, for a slow
//! 2-core machine.

use std::time::Duration;

use conclave_consensus::mal::{Round, VoteType};
use conclave_consensus::Height;

use super::forge::Seen;
use super::{ManualClock, Sim};

pub(super) const WAIT: Duration = Duration::from_secs(120);

#[test]
fn four_members_commit_every_acknowledged_tx_once() {
    let mut sim = Sim::new("happy_path", 4);
    sim.start_all();
    sim.load(60);
    sim.wait_all_committed(WAIT);
    sim.check_invariants();
}

#[test]
fn a_member_crashed_under_load_resumes_from_its_wal_and_store() {
    let mut sim = Sim::new("crash_restart", 4);
    sim.start_all();
    sim.load(20);
    sim.wait_all_committed(WAIT);
    // Heights in flight: the crash lands mid-height, after votes were
    // logged in the WAL.
    sim.load_on(&[0, 2, 3], 20);
    sim.crash(1);
    sim.load_on(&[0, 2, 3], 20);
    sim.wait_committed_on(&[0, 2, 3], WAIT);
    sim.start(1);
    sim.load(20);
    sim.wait_all_committed(WAIT);
    sim.check_invariants();
}

#[test]
fn a_partitioned_member_catches_up_after_the_heal_and_the_rest_never_stops() {
    let mut sim = Sim::new("partition", 4);
    sim.start_all();
    sim.load(10);
    sim.wait_all_committed(WAIT);
    let before = sim.height(3).expect("runs");
    sim.partition(&[3], false);
    sim.load_on(&[0, 1, 2], 40);
    sim.wait_committed_on(&[0, 1, 2], WAIT);
    assert_eq!(
        sim.height(3),
        Some(before),
        "seed {}: the cut-off member moved alone",
        sim.seed
    );
    sim.heal();
    sim.load(10);
    sim.wait_all_committed(WAIT);
    sim.check_invariants();
}

#[test]
fn a_member_cut_off_one_way_is_still_carried_along() {
    let mut sim = Sim::new("one_way", 4);
    sim.start_all();
    // Node 3 hears everyone but nobody hears it: the other three decide,
    // and it follows their decisions.
    sim.partition(&[3], true);
    sim.load_on(&[0, 1, 2], 30);
    sim.wait_all_committed(WAIT);
    sim.heal();
    sim.load(10);
    sim.wait_all_committed(WAIT);
    sim.check_invariants();
}

#[test]
fn an_idle_member_that_missed_the_last_heights_catches_up_without_new_load() {
    let mut sim = Sim::new("idle_probe", 4);
    sim.start_all();
    sim.load(4);
    sim.wait_all_committed(WAIT);
    // Member 3 hears nothing (not even the txs) while the others decide
    // the last heights; then its links carry again with no connection
    // event, and no load follows: nothing it hears reveals that it is
    // behind. Its node's tip watch must.
    sim.partition(&[3], false);
    sim.load_on(&[0, 1, 2], 10);
    sim.wait_committed_on(&[0, 1, 2], WAIT);
    let tip = sim.height(0).expect("runs").0;
    assert!(
        sim.height(3).expect("runs").0 < tip,
        "seed {}: the cut-off member moved",
        sim.seed
    );
    // Cut off, it hears of no tip ahead: the watch asks nobody it cannot
    // reach.
    assert!(
        !sim.bus.watch_tips(sim.member(3), sim.context),
        "seed {}: heard across the cut",
        sim.seed
    );
    sim.bus.heal_quietly();
    // A round of the watch (the node repeats them while idle).
    let deadline = std::time::Instant::now() + WAIT;
    while sim.height(3).expect("runs").0 < tip {
        sim.bus.watch_tips(sim.member(3), sim.context);
        assert!(
            std::time::Instant::now() < deadline,
            "seed {}: stayed behind",
            sim.seed
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sim.wait_height(tip, WAIT);
    sim.wait_all_committed(WAIT);
    // Level with the others now: it hears of nobody ahead.
    assert!(
        !sim.bus.watch_tips(sim.member(3), sim.context),
        "seed {}: still behind",
        sim.seed
    );
    sim.check_invariants();
}

/// Members 0 to 2 make a history with `history`, then member 3 starts,
/// reaches their tip, and takes part in the load that follows.
fn a_late_member_catches_up(name: &str, history: impl Fn(&mut Sim)) {
    let mut sim = Sim::new(name, 4);
    for i in 0..3 {
        sim.start(i);
    }
    history(&mut sim);
    let tip = sim.height(0).expect("runs").0;
    sim.start(3);
    sim.wait_height(tip, WAIT);
    sim.load(10);
    sim.wait_all_committed(WAIT);
    sim.check_invariants();
}

#[test]
fn a_member_started_late_catches_up_from_the_others() {
    a_late_member_catches_up("catch_up", |sim| {
        sim.load_on(&[0, 1, 2], 40);
        sim.wait_committed_on(&[0, 1, 2], WAIT);
    });
}

#[test]
fn a_member_many_answers_behind_catches_up_through_pipelined_requests() {
    // Heights one after another, until the late member is several sync
    // answers behind (each answer asks for the next before it is applied).
    let far = 5 * crate::context::wire::MAX_SYNC_BLOCKS as u64;
    a_late_member_catches_up("catch_up_far", |sim| {
        while sim.height(0).expect("runs").0 < far {
            sim.load_on(&[0, 1, 2], 2);
            sim.wait_committed_on(&[0, 1, 2], WAIT);
        }
    });
}

#[test]
fn an_answers_certificates_checked_on_two_threads_are_those_checked_one_by_one() {
    use crate::context::catchup::{certificate_for, certificates_for};
    let mut sim = Sim::new("certificates", 4);
    sim.start_all();
    while sim.height(0).expect("runs").0 < 6 {
        sim.load(2);
        sim.wait_all_committed(WAIT);
    }
    let mut blocks: Vec<_> = (1..=6)
        .map(|h| (sim.block(0, h).expect("decided"), sim.certificate(0, h)))
        .collect();
    // A certificate of another height, and one missing a signature.
    blocks[1].1 = blocks[2].1.clone();
    blocks[4].1.signatures.truncate(1);
    let (context, validators) = sim.validators();
    let together = certificates_for(&context, &validators, &blocks);
    let one_by_one: Vec<_> = blocks
        .iter()
        .map(|(b, c)| certificate_for(&context, &validators, b, c))
        .collect();
    let valid = |certs: &[Option<_>]| certs.iter().map(Option::is_some).collect::<Vec<_>>();
    assert_eq!(valid(&together), [true, false, true, true, false, true]);
    assert_eq!(valid(&together), valid(&one_by_one));
    for (t, o) in together.iter().zip(&one_by_one) {
        assert_eq!(
            t.as_ref().map(|c| c.value_id),
            o.as_ref().map(|c| c.value_id)
        );
    }
    sim.check_invariants();
}

#[test]
fn lost_gossip_costs_rounds_not_txs() {
    let mut sim = Sim::new("lossy", 4);
    sim.start_all();
    sim.set_drop_rate(0.15);
    sim.load(40);
    sim.wait_all_committed(WAIT);
    assert!(sim.dropped() > 0, "seed {}: nothing was dropped", sim.seed);
    sim.set_drop_rate(0.0);
    sim.check_invariants();
}

#[test]
fn members_stuck_together_at_a_height_catch_up_from_those_that_decided_it() {
    let mut sim = Sim::new("stuck_pair", 4);
    sim.start_all();
    sim.load(4);
    sim.wait_all_committed(WAIT);
    // The two members first in each other's list of whom to ask never see
    // the other two's precommits: they never decide a height by
    // themselves, while the other two decide it with their precommits.
    // One tx at a time, so that each height is decided in round 0 and the
    // deciding pair then goes idle: the stuck pair sits in round 0's
    // precommit step, where no timeout is left (only rebroadcasts: its
    // round never changes). It must get the decided block from the members
    // that have it, not keep asking each other.
    let mut by_id: Vec<usize> = (0..4).collect();
    by_id.sort_by_key(|&i| sim.member(i));
    let (stuck, deciding) = by_id.split_at(2);
    sim.lose_precommits(deciding, stuck);
    for _ in 0..3 {
        sim.load(1);
        sim.wait_all_committed(WAIT);
    }
    assert!(sim.dropped() > 0, "seed {}: nothing was lost", sim.seed);
    sim.stop_losing();
    sim.load(4);
    sim.wait_all_committed(WAIT);
    sim.check_invariants();
}

#[test]
fn a_block_proposed_again_after_its_proposer_went_silent_is_decided() {
    let mut sim = Sim::new("reproposal", 4);
    sim.start_all();
    sim.load(4);
    sim.wait_all_committed(WAIT);
    // Height h: its round-0 proposer (`builder`) builds and proposes a
    // block, and its prevote for it is the last thing anyone hears of it.
    // The others but one (`late`, who never sees that proposal) prevote it
    // too: a polka, which locks two members on the block. The precommits
    // to and from `builder` are lost, so each of the others sees two
    // precommits for the block and one nil: nothing is decided at round 0,
    // and they move on. From then on the three alive members need each
    // other: `late` proposes a new block at round 1, which the locked two
    // refuse; at round 2 a locked member proposes the round-0 block again
    // (its header names `builder`, not the member proposing it), and
    // `late` must take it for what it is, or no value ever gets a polka.
    let h = sim.height(0).expect("runs").0 + 1;
    let mut by_id: Vec<usize> = (0..4).collect();
    by_id.sort_by_key(|&i| sim.member(i));
    let proposer = |round| {
        let at = conclave_consensus::proposer_index(&sim.context(), Height(h), round, 4);
        by_id[at]
    };
    let (builder, late) = (proposer(Round::new(0)), proposer(Round::new(1)));
    sim.lose(move |from, to, seen| match *seen {
        Seen::Proposal { height, round } if height == h => {
            from == builder && (to == late || round > 0)
        }
        Seen::Vote {
            typ, height, round, ..
        } if height == h => {
            let to_or_from = from == builder || to == builder;
            typ == VoteType::Precommit && round == 0 && to_or_from || from == builder && round > 0
        }
        // Round certificates, sync: `builder` must not decide, nor help
        // the others decide, at round 0.
        Seen::Other => from == builder || to == builder,
        _ => false,
    });
    sim.load_on(&[late], 1);
    let alive: Vec<usize> = (0..4).filter(|&i| i != builder).collect();
    sim.wait_committed_on(&alive, WAIT);
    let decided = sim.block(late, h).expect("decided");
    assert_eq!(
        decided.header.proposer,
        sim.member(builder),
        "seed {}",
        sim.seed
    );
    sim.stop_losing();
    sim.load(4);
    sim.wait_all_committed(WAIT);
    sim.check_invariants();
}

#[test]
fn block_times_come_from_the_given_clock_and_never_go_back() {
    let mut sim = Sim::new("clock", 1);
    let clock = ManualClock::at(0);
    sim.set_clock(0, clock.clone());
    sim.start(0);
    let t = sim.genesis_ms() + 3_600_000;
    clock.set(t);
    sim.load(1);
    sim.wait_all_committed(WAIT);
    assert_eq!(sim.block(0, 1).expect("block 1").header.time_ms, t);
    // The clock steps back: the next block is still after the last.
    clock.set(t - 60_000);
    sim.load(1);
    sim.wait_all_committed(WAIT);
    assert_eq!(sim.block(0, 2).expect("block 2").header.time_ms, t + 1);
}

#[test]
fn proposals_from_a_clock_far_ahead_are_refused() {
    let mut sim = Sim::new("clock_ahead", 2);
    // Node 1's clock runs an hour ahead: the blocks it proposes are from
    // the future for node 0, which refuses them; only node 0's proposals
    // are decided (both members are needed for a quorum of two).
    let ahead = ManualClock::at(0);
    sim.set_clock(1, ahead.clone());
    sim.start_all();
    ahead.set(sim.genesis_ms() + 3_600_000);
    for _ in 0..4 {
        sim.load(3);
        sim.wait_all_committed(WAIT);
    }
    let tip = sim.height(0).expect("runs").0;
    assert!(tip >= 2, "seed {}: only {tip} heights", sim.seed);
    for h in 1..=tip {
        let block = sim.block(0, h).expect("block");
        assert_eq!(
            block.header.proposer,
            sim.member(0),
            "seed {}: height {h}",
            sim.seed
        );
    }
    sim.check_invariants();
}

#[test]
fn a_member_whose_clock_is_behind_refuses_proposals_but_follows_decided_blocks() {
    let mut sim = Sim::new("clock_behind", 4);
    // Node 2's clock runs a minute behind: every block the others propose
    // is from its future, and it votes nil on them; the other three decide
    // without it, and it takes their decided blocks (certified) as they
    // come, whatever its clock says.
    let behind = ManualClock::at(0);
    sim.set_clock(2, behind.clone());
    sim.start_all();
    for _ in 0..4 {
        behind.set(crate::node::now_ms().saturating_sub(60_000));
        sim.load(3);
        sim.wait_all_committed(WAIT);
    }
    let tip = sim.height(0).expect("runs").0;
    assert!(tip >= 2, "seed {}: only {tip} heights", sim.seed);
    assert_eq!(sim.height(2).expect("runs").0, tip, "seed {}", sim.seed);
    sim.check_invariants();
}

#[test]
fn a_restarted_member_retries_failed_catch_up_requests_without_new_load() {
    let mut sim = Sim::new("sync_retry", 4);
    for i in 0..3 {
        sim.start(i);
    }
    sim.load_on(&[0, 1, 2], 30);
    sim.wait_committed_on(&[0, 1, 2], WAIT);
    let tip = sim.height(0).expect("runs").0;
    // Its first catch-up requests time out, and no load follows that
    // would make it ask again: only its own retries bring it up.
    sim.fail_requests(2);
    sim.start(3);
    sim.wait_height(tip, WAIT);
    sim.check_invariants();
}

#[test]
fn every_member_agrees_on_a_guest_fault_and_the_chain_goes_on() {
    let mut sim = Sim::with_app("guest_faults", 4, conclave_apps::FAULTS);
    sim.start_all();
    // An endless loop, an unbounded allocation and a trap, each from
    // another member, then a call that succeeds.
    let faults = [
        (0, "spin", "fuel"),
        (1, "hog", "memory"),
        (2, "trap", "trap"),
    ];
    let hashes: Vec<_> = faults
        .iter()
        .map(|(i, m, _)| sim.submit(*i, m, b""))
        .collect();
    let ok = sim.submit(3, "ok", b"");
    sim.wait_all_committed(WAIT);
    for ((_, method, expect), hash) in faults.iter().zip(&hashes) {
        let first = sim.receipt(0, hash).expect("receipt");
        assert_eq!(
            first.status,
            crate::store::TxStatus::Failed,
            "{method}: {first:?}"
        );
        let error = first.error.clone().unwrap_or_default().to_lowercase();
        assert!(
            error.contains(expect),
            "{method}: {error:?} should mention {expect:?}"
        );
        for i in 1..4 {
            assert_eq!(
                sim.receipt(i, hash),
                Some(first.clone()),
                "{method}: node {i} differs"
            );
        }
    }
    for i in 0..4 {
        let receipt = sim.receipt(i, &ok).expect("receipt");
        assert_eq!(
            receipt.status,
            crate::store::TxStatus::Ok,
            "node {i}: {receipt:?}"
        );
    }
    sim.check_invariants();
}

/// Every proposal arrives later than the propose timeout (a loaded
/// proposer, a slow link), though nothing is wrong. The first such
/// heights lose rounds; then the members wait as long as proposals have been
/// taking, and heights are decided in their first round again.
#[test]
fn proposals_later_than_the_propose_timeout_stretch_it_and_rounds_stop_failing() {
    let mut sim = Sim::new("late_proposals", 4);
    sim.start_all();
    sim.load(4);
    sim.wait_all_committed(WAIT);
    let before = sim.height(0).expect("runs").0;
    // The sim's propose timeout is 300 ms.
    sim.delay(
        |_, _, seen| matches!(seen, Seen::Proposal { .. }),
        Duration::from_millis(800),
    );
    let mut tip = before;
    while tip < before + 6 {
        sim.load(1);
        sim.wait_all_committed(WAIT);
        tip = sim.height(0).expect("runs").0;
    }
    let rounds: Vec<i64> = (before + 1..=tip)
        .map(|h| sim.certificate(0, h).round)
        .collect();
    assert!(
        rounds.iter().any(|r| *r > 0),
        "late proposals cost a round at first: {rounds:?}"
    );
    assert!(
        rounds[rounds.len() - 3..].iter().all(|r| *r == 0),
        "heights decided in their first round once the wait stretched: {rounds:?}"
    );
    sim.check_invariants();
}

/// Compact proposals name the txs the members hold by hash. A member
/// that never got the pushes (every push to node 3 lost) cannot assemble
/// those blocks alone: it asks their proposers for the txs it misses and
/// votes. With node 2 down its vote is needed for every decision, so the
/// txs commit only if it gets them (without the answer: none commits).
#[test]
fn a_member_missing_a_compact_proposals_txs_asks_its_proposer_for_them() {
    let mut sim = Sim::new("compact_missing_txs", 4);
    sim.start_all();
    sim.load(4);
    sim.wait_all_committed(WAIT);
    sim.crash(2);
    sim.lose(|_, to, seen| to == 3 && matches!(seen, Seen::Txs));
    // Txs from two members: each one's block carries the other's by hash.
    for _ in 0..4 {
        sim.load_on(&[0, 1], 3);
        sim.wait_committed_on(&[0, 1, 3], WAIT);
    }
    sim.check_invariants();
}
