//! Scenarios of the in-process simulation (see the module's docs). Each
//! ends with `Sim::check_invariants`; time bounds are generous, for a slow
//! 2-core machine.

use std::time::Duration;

use super::{ManualClock, Sim};

const WAIT: Duration = Duration::from_secs(120);

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
fn a_member_started_late_catches_up_from_the_others() {
    let mut sim = Sim::new("catch_up", 4);
    for i in 0..3 {
        sim.start(i);
    }
    sim.load_on(&[0, 1, 2], 40);
    sim.wait_committed_on(&[0, 1, 2], WAIT);
    let tip = sim.height(0).expect("runs").0;
    sim.start(3);
    sim.wait_height(tip, WAIT);
    sim.load(10);
    sim.wait_all_committed(WAIT);
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
fn a_member_signing_two_prevotes_is_proven_by_stored_evidence_everywhere() {
    let mut sim = Sim::new("equivocation", 4);
    sim.start_all();
    sim.load(10);
    sim.wait_all_committed(WAIT);
    let next = sim.height(0).expect("runs").0 + 1;
    // Node 3's key signs two prevotes for the next height; the honest
    // three get both (the second as if from a second process with its key).
    let honest = [0, 1, 2];
    sim.forge_prevote(3, &honest, next, conclave_consensus::Hash32([1; 32]));
    sim.forge_prevote(3, &honest, next, conclave_consensus::Hash32([2; 32]));
    sim.load_on(&honest, 5);
    sim.wait_all_committed(WAIT);
    let deadline = std::time::Instant::now() + WAIT;
    for i in honest {
        let evidence = loop {
            let e = sim.evidence(i);
            if !e.is_empty() || std::time::Instant::now() > deadline {
                break e;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            !evidence.is_empty(),
            "seed {}: node {i} kept no evidence",
            sim.seed
        );
        for e in &evidence {
            assert_eq!(e.offender, sim.member(3), "seed {}: node {i}", sim.seed);
            assert_eq!(e.height.0, next);
            let members: Vec<_> = (0..4).map(|m| sim.member(m)).collect();
            e.verify(&sim.context(), &members)
                .expect("evidence verifies");
        }
    }
    // Nobody else is accused.
    assert!(sim.evidence(3).iter().all(|e| e.offender == sim.member(3)));
    sim.check_invariants();
}

#[test]
fn a_conflicting_precommit_arriving_after_its_height_is_kept_as_evidence() {
    let mut sim = Sim::new("late_equivocation", 4);
    sim.start_all();
    sim.load(10);
    sim.wait_all_committed(WAIT);
    // A height every node has decided, and one of the members whose
    // precommit its certificate holds: that member's key now signs another
    // precommit there, at the certificate's round, for another block, and
    // the other three get it late.
    let decided = sim.height(0).expect("runs").0;
    let cert = sim.certificate(0, decided);
    let offender = (1..4)
        .find(|&i| cert.signatures.iter().any(|(m, _)| *m == sim.member(i)))
        .expect("node 0's certificate holds another member's precommit");
    let honest: Vec<usize> = (0..4).filter(|&i| i != offender).collect();
    let precommit = conclave_consensus::mal::VoteType::Precommit;
    let at = (decided, u32::try_from(cert.round).expect("a round"));
    // Its precommit for the decided block itself, late, is no evidence.
    sim.forge_vote(offender, &honest, precommit, at, cert.block_hash);
    sim.forge_vote(
        offender,
        &honest,
        precommit,
        at,
        conclave_consensus::Hash32([9; 32]),
    );
    // Each node proves it from what it saw the offender sign there: its
    // precommit reached every node (node 0's certificate holds it), before
    // or after that node decided.
    for (&i, evidence) in honest.iter().zip(wait_evidence(&sim, &honest)) {
        assert_eq!(
            evidence.len(),
            1,
            "seed {}: node {i}: {evidence:?}",
            sim.seed
        );
        let e = &evidence[0];
        assert_eq!((e.offender, e.height.0), (sim.member(offender), decided));
        let members: Vec<_> = (0..4).map(|m| sim.member(m)).collect();
        e.verify(&sim.context(), &members)
            .expect("evidence verifies");
    }
    sim.load_on(&honest, 3);
    sim.wait_all_committed(WAIT);
    sim.check_invariants();
}

/// Waits until each of `nodes` holds evidence; returns it.
fn wait_evidence(sim: &Sim, nodes: &[usize]) -> Vec<Vec<conclave_consensus::Evidence>> {
    let deadline = std::time::Instant::now() + WAIT;
    nodes
        .iter()
        .map(|&i| loop {
            let e = sim.evidence(i);
            if !e.is_empty() || std::time::Instant::now() > deadline {
                break e;
            }
            std::thread::sleep(Duration::from_millis(20));
        })
        .collect()
}

#[test]
fn a_conflicting_prevote_or_proposal_arriving_after_its_height_is_kept_as_evidence() {
    let mut sim = Sim::new("late_prevote_proposal", 4);
    sim.start_all();
    sim.load(10);
    sim.wait_all_committed(WAIT);
    let prevote = conclave_consensus::mal::VoteType::Prevote;
    let members: Vec<_> = (0..4).map(|m| sim.member(m)).collect();

    // A decided height, its block's proposer, and the round it proposed
    // at: that member's key now proposes another block there, late.
    let decided = sim.height(0).expect("runs").0;
    let cert = sim.certificate(0, decided);
    let round = u32::try_from(cert.round).expect("a round");
    let block = sim.block(0, decided).expect("decided");
    let proposer = (0..4)
        .find(|&i| sim.member(i) == block.header.proposer)
        .expect("a member proposed it");
    let others: Vec<usize> = (0..4).filter(|&i| i != proposer).collect();
    // The decided block itself, proposed again late, is no evidence.
    sim.forge_proposal(proposer, &others, round, block.clone());
    let mut other = block.clone();
    other.header.time_ms += 1;
    sim.forge_proposal(proposer, &others, round, other);
    for (i, evidence) in others.iter().zip(wait_evidence(&sim, &others)) {
        assert_eq!(
            evidence.len(),
            1,
            "seed {}: node {i}: {evidence:?}",
            sim.seed
        );
        let e = &evidence[0];
        assert_eq!(e.kind, conclave_consensus::EvidenceKind::Proposal);
        assert_eq!((e.offender, e.height.0), (members[proposer], decided));
        e.verify(&sim.context(), &members)
            .expect("evidence verifies");
    }

    // A prevote at the decided round of a later height, for another block,
    // also late, by a member whose precommit decided it: it prevoted at
    // that round too, and every other node got that prevote.
    sim.load(10);
    sim.wait_all_committed(WAIT);
    let decided = sim.height(0).expect("runs").0;
    let cert = sim.certificate(0, decided);
    let offender = (1..4)
        .find(|&i| cert.signatures.iter().any(|(m, _)| *m == members[i]))
        .expect("node 0's certificate holds another member's precommit");
    let honest: Vec<usize> = (0..4).filter(|&i| i != offender).collect();
    let at = (decided, u32::try_from(cert.round).expect("a round"));
    let before: Vec<usize> = honest.iter().map(|&i| sim.evidence(i).len()).collect();
    sim.forge_vote(
        offender,
        &honest,
        prevote,
        at,
        conclave_consensus::Hash32([9; 32]),
    );
    let deadline = std::time::Instant::now() + WAIT;
    for (&i, before) in honest.iter().zip(before) {
        let evidence = loop {
            let e = sim.evidence(i);
            if e.len() > before || std::time::Instant::now() > deadline {
                break e;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let e = evidence
            .iter()
            .find(|e| e.kind == conclave_consensus::EvidenceKind::Prevote)
            .unwrap_or_else(|| panic!("seed {}: node {i}: {evidence:?}", sim.seed));
        assert_eq!((e.offender, e.height.0), (members[offender], decided));
        e.verify(&sim.context(), &members)
            .expect("evidence verifies");
    }
    sim.load(3);
    sim.wait_all_committed(WAIT);
    sim.check_invariants();
}

#[test]
fn a_members_payloads_that_do_not_open_or_decode_are_dropped_and_it_is_penalised() {
    let mut sim = Sim::new("malformed_member", 4);
    sim.start_all();
    sim.load(5);
    sim.wait_all_committed(WAIT);
    let (bad, honest) = (3, [0, 1, 2]);
    let tip = sim.height(0).expect("runs").0;
    // Not a sealed envelope; sealed but not a frame; a sealed frame with its
    // tag flipped; a proposal that names one block and carries another.
    let frame = crate::context::wire::Wire::Txs(Vec::new()).encode(1);
    let mut tampered = sim.sealed(&frame);
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let mut block = sim.block(0, tip).expect("decided");
    block.header.height = conclave_consensus::Height(tip + 1);
    let named = (block.height(), block.hash());
    block.header.time_ms += 1;
    let junk: [Vec<u8>; 3] = [vec![7; 5], sim.sealed(&[0xff; 40]), tampered];
    for bytes in &junk {
        sim.gossip_raw(bad, &honest, bytes);
    }
    sim.forge_proposal_carrying(bad, &honest, 0, named, block);
    let deadline = std::time::Instant::now() + WAIT;
    let expected = honest.len() * (junk.len() + 1);
    while sim.penalised().len() < expected && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let penalised = sim.penalised();
    assert_eq!(
        penalised.len(),
        expected,
        "seed {}: {penalised:?}",
        sim.seed
    );
    assert!(penalised.iter().all(|(_, to)| *to == sim.member(bad)));
    // Nothing of it was taken, and the members (the penalised one too)
    // keep committing.
    sim.load(5);
    sim.wait_all_committed(WAIT);
    sim.check_invariants();
}

#[test]
fn a_home_restored_from_a_backup_sees_its_key_signed_elsewhere_and_stops_signing() {
    let mut sim = Sim::new("restored_backup", 4);
    sim.start_all();
    sim.load(10);
    sim.wait_all_committed(WAIT);
    sim.crash(3);
    let backup = sim.backup(3);
    sim.start(3);
    // Node 3 signs on after the backup: its precommits are in commits its
    // backed-up sign guard never saw.
    let mut signed_after = false;
    for _ in 0..10 {
        sim.load(10);
        sim.wait_all_committed(WAIT);
        let tip = sim.height(0).expect("runs").0;
        if sim.signed(0, tip, 3) {
            signed_after = true;
            break;
        }
    }
    assert!(
        signed_after,
        "seed {}: node 3 never in a certificate",
        sim.seed
    );
    sim.crash(3);
    sim.restore(3, &backup);
    sim.start(3);
    // It catches up, finds its own precommits beyond its guard, and from
    // then on only follows: no certificate holds its signature.
    let restarted_at = sim.height(0).expect("runs").0;
    for _ in 0..3 {
        sim.load_on(&[0, 1, 2], 10);
        sim.wait_all_committed(WAIT);
    }
    let tip = sim.height(0).expect("runs").0;
    assert!(tip > restarted_at + 1, "seed {}: no progress", sim.seed);
    sim.wait_height(tip, WAIT);
    for h in restarted_at + 2..=tip {
        assert!(
            !sim.signed(0, h, 3),
            "seed {}: node 3 signed height {h} again",
            sim.seed
        );
    }
    assert!(sim.evidence(0).is_empty(), "seed {}: evidence", sim.seed);
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

#[test]
fn a_member_that_left_is_ignored_when_its_key_keeps_voting() {
    let mut sim = Sim::new("left_member_votes", 4);
    sim.start_all();
    sim.load(10);
    sim.wait_all_committed(WAIT);
    // Member 3 leaves; a remaining member rotates the context key.
    let leave = crate::members::RemoveArgs {
        member: sim.member(3),
        rotation: None,
    };
    let args = borsh::to_vec(&leave).expect("encode");
    sim.submit(3, crate::members::METHOD_REMOVE, &args);
    sim.wait_all_committed(WAIT);
    let stay = [0, 1, 2];
    let mut out_from = 0;
    for _ in 0..20 {
        sim.load_on(&stay, 3);
        sim.wait_committed_on(&stay, WAIT);
        let tip = sim.height(0).expect("runs").0;
        if out_from == 0 {
            // The height from which the set without member 3 validates.
            out_from = tip + 2;
        }
        if tip >= out_from + 2 {
            break;
        }
    }
    // Its key keeps voting, twice at one position even: ignored, not
    // evidence (it is no member), and the others go on.
    let next = sim.height(0).expect("runs").0 + 1;
    sim.forge_prevote(3, &stay, next, conclave_consensus::Hash32([1; 32]));
    sim.forge_prevote(3, &stay, next, conclave_consensus::Hash32([2; 32]));
    sim.load_on(&stay, 5);
    sim.wait_committed_on(&stay, WAIT);
    let tip = sim.height(0).expect("runs").0;
    assert!(
        tip >= next,
        "seed {}: no progress after the forged votes",
        sim.seed
    );
    for h in out_from..=tip {
        assert!(
            !sim.signed(0, h, 3),
            "seed {}: member 3 in height {h}'s certificate",
            sim.seed
        );
    }
    for i in stay {
        assert!(
            sim.evidence(i).is_empty(),
            "seed {}: node {i} kept evidence",
            sim.seed
        );
    }
}
