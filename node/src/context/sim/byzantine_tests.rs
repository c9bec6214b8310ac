//! Scenarios of the simulation with a member that misbehaves: equivocation
//! proven by stored evidence (also when it arrives late), payloads that
//! do not open, a home restored from a backup, a removed member whose key
//! keeps voting. Each ends with `Sim::check_invariants`.

use std::time::Duration;

use super::tests::WAIT;
use super::Sim;

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
    for i in honest {
        sim.wait_for(&format!("node {i} keeps evidence"), || {
            !sim.evidence(i).is_empty()
        });
        let evidence = sim.evidence(i);
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
    nodes
        .iter()
        .map(|&i| {
            sim.wait_for(&format!("node {i} keeps evidence"), || {
                !sim.evidence(i).is_empty()
            });
            sim.evidence(i)
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
    for (&i, before) in honest.iter().zip(before) {
        sim.wait_for(&format!("node {i} keeps new evidence"), || {
            sim.evidence(i).len() > before
        });
        let evidence = sim.evidence(i);
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
    let expected = honest.len() * (junk.len() + 1);
    sim.wait_for("every honest node penalises every payload", || {
        sim.penalised().len() >= expected
    });
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
    // backed-up sign guard never saw, in every other member's copy (each
    // member keeps the certificate it gathered, and node 3 may catch up
    // from any of them).
    let mut signed_after = false;
    for _ in 0..10 {
        sim.load(10);
        sim.wait_all_committed(WAIT);
        let tip = sim.height(0).expect("runs").0;
        sim.wait_height(tip, WAIT);
        if (0..3).all(|i| sim.signed(i, tip, 3)) {
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

/// Only a round's proposer teaches the members how late proposals come
/// (`context/pace.rs`): a member proposing, late, at another member's
/// round would otherwise stretch their wait for every proposal, and with
/// it every round whose proposer is down. Nodes 1 and 2 down, so the
/// height stays in round 0 at node 3 (node 2's round): node 1's key
/// proposes there late and the wait does not move; node 2's key then
/// proposes as late, and it does.
#[test]
fn a_late_proposal_from_a_member_not_the_rounds_proposer_does_not_stretch_the_wait() {
    use conclave_consensus::mal::Round;
    use conclave_consensus::Height;
    // The proposal comes this long after its round started: the input of
    // the scenario (as `Sim::delay` is for the bus), not a wait for state.
    const LATE: Duration = Duration::from_millis(1500);
    let mut sim = Sim::new("propose_wait_guard", 4);
    sim.start_all();
    let (_, validators) = sim.validators();
    let node2_proposes_next = |sim: &Sim| {
        let next = Height(sim.height(3).expect("runs").0 + 1);
        validators
            .proposer(&sim.context(), next, Round::new(0))
            .address
            == sim.member(2)
    };
    for _ in 0..16 {
        sim.load(1);
        sim.wait_all_committed(WAIT);
        if node2_proposes_next(&sim) {
            break;
        }
    }
    assert!(
        node2_proposes_next(&sim),
        "seed {}: no height of node 2's",
        sim.seed
    );
    let tip = sim.height(3).expect("runs").0;
    sim.crash(1);
    sim.crash(2);
    // A tx starts the next height at node 3 (and node 0): two of four
    // cannot decide, so it stays in round 0, its proposal never heard.
    sim.load_on(&[3], 1);
    std::thread::sleep(LATE);
    let before = sim.propose_wait(3);

    let mut block = sim.block(3, tip).expect("decided");
    block.header.height = Height(tip + 1);
    sim.forge_proposal(1, &[3], 0, block.clone());
    // A payload that does not open, behind it in node 3's inbox: once node
    // 3 penalised node 1 for it, it has handled the proposal.
    sim.gossip_raw(1, &[3], &[7; 5]);
    let (node1, node3) = (sim.member(1), sim.member(3));
    sim.wait_for("node 3 penalised node 1", || {
        sim.penalised().contains(&(node3, node1))
    });
    assert_eq!(
        sim.propose_wait(3),
        before,
        "seed {}: another member's proposal stretched the wait",
        sim.seed
    );

    // The round's proposer's own, as late: the wait follows it (twice its
    // delay, at most 8 times the sim's 300 ms propose timeout).
    block.header.time_ms += 1;
    sim.forge_proposal(2, &[3], 0, block);
    sim.wait_for("the wait stretched", || sim.propose_wait(3) > before);
    assert!(
        sim.propose_wait(3) >= 2.0,
        "seed {}: {}",
        sim.seed,
        sim.propose_wait(3)
    );

    // Node 1 back: three of four decide the height in a later round.
    sim.start(1);
    sim.wait_committed_on(&[0, 1, 3], WAIT);
    sim.check_invariants();
}
