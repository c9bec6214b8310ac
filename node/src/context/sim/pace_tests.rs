//! Scenarios of a busy node's pacing (`context::pace`): the sim counts a
//! node as busy as if 100 heights of other contexts ran on it
//! ([`make_busy`]), on a machine short of CPU unless a test says
//! otherwise (`Sim::cpu`).

use std::time::Duration;

use super::forge::Seen;
use super::tests::WAIT;
use super::Sim;
use crate::cpu::Shortage;

/// Makes node `i` count as busy: as if 100 heights of other contexts ran
/// on it (`pace`'s fuller blocks and paced pushes).
fn make_busy(sim: &Sim, i: usize) {
    let running = sim.nodes[i].running.as_ref().expect("node runs");
    running.metrics.heights_running.add(100);
}

/// The heights node `i` held for a fuller block (or their proposal) since
/// it started.
fn holds(sim: &Sim, i: usize) -> u64 {
    let running = sim.nodes[i].running.as_ref().expect("node runs");
    running.metrics.heights_held_total.get()
}

/// How often node `i` asked members for decided blocks because a height
/// seemed stuck (`conclave_consensus_fallbacks_total{kind="sync"}`).
fn sync_fallbacks(sim: &Sim, i: usize) -> u64 {
    use prometheus::core::Collector;
    let running = sim.nodes[i].running.as_ref().expect("node runs");
    let families = running.metrics.consensus_fallbacks_total.collect();
    families
        .iter()
        .flat_map(|family| family.get_metric())
        .filter(|m| m.get_label().iter().any(|l| l.value() == "sync"))
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

/// Votes this late make each height slow, as on a loaded node: txs
/// submitted meanwhile wait for the next, which a busy node holds.
const SLOW_VOTES: Duration = Duration::from_millis(250);

/// Txs a height: over `pace`'s 32, so that the context counts as loaded
/// and every member holds (after a smaller block only the proposer does,
/// briefly).
const LOADED: usize = 40;

/// Four running nodes, all busy.
fn busy(name: &str) -> Sim {
    let mut sim = Sim::new(name, 4);
    sim.start_all();
    for i in 0..4 {
        make_busy(&sim, i);
    }
    sim
}

/// Four running nodes, all busy, whose votes arrive [`SLOW_VOTES`] late.
fn busy_and_slow(name: &str) -> Sim {
    let sim = busy(name);
    sim.delay(|_, _, seen| matches!(seen, Seen::Vote { .. }), SLOW_VOTES);
    sim
}

/// On busy nodes a member pushes the txs submitted to it at most every
/// so often while a height runs (`pace::PushPace`): they still reach the
/// other proposers, whose blocks carry them, and every one commits.
#[test]
fn a_busy_member_s_txs_reach_the_other_proposers() {
    let mut sim = busy("busy_pushes");
    for _ in 0..4 {
        sim.load_on(&[0], 15);
        sim.wait_all_committed(WAIT);
    }
    let tip = sim.height(0).expect("node 0 runs").0;
    let carried_by_others = (1..=tip)
        .filter_map(|h| sim.block(0, h))
        .any(|b| b.header.proposer != sim.member(0) && !b.txs.is_empty());
    assert!(
        carried_by_others,
        "no block of another proposer carried node 0's txs in {tip} heights"
    );
    sim.check_invariants();
}

/// On busy nodes a loaded context's next height waits for a fuller block
/// (`pace::FillWait`): its proposer holds it while txs keep coming, and
/// the other members hold theirs until its proposal arrives, so no
/// propose timeout (300 ms in the sim) runs while the proposer waits.
/// Slow heights that follow a loaded block (32 txs or more) are all
/// decided in their first round. (This does not tell the members' hold
/// from a propose wait stretched by earlier late proposals: with only the
/// proposer holding, the lightly loaded heights before lose the rounds.)
#[test]
fn busy_members_wait_for_a_held_height_s_proposal_and_decide_it_in_round_0() {
    let mut sim = busy_and_slow("busy_holds");
    // The heights that follow a loaded block (every member holds them),
    // with the rounds they were decided in.
    let mut held = Vec::new();
    for _ in 0..20 {
        sim.load(LOADED);
        sim.wait_all_committed(WAIT);
        let tip = sim.height(0).expect("node 0 runs").0;
        held = (2..=tip)
            .filter(|h| sim.block(0, h - 1).is_some_and(|b| b.txs.len() >= 32))
            .map(|h| (h, sim.certificate(0, h).round))
            .collect();
        if held.len() >= 4 {
            break;
        }
    }
    assert!(held.len() >= 4, "too few loaded heights: {held:?}");
    assert!(
        held.iter().all(|(_, round)| *round == 0),
        "held heights decided in their first round: {held:?}"
    );
    sim.check_invariants();
}

/// The members of a busy context hold the next height for its proposal
/// only so long (`pace::FillWait`, twice the proposer's longest hold):
/// with the proposer of its first round down they start it, time that
/// round out and decide the height in the next.
#[test]
fn busy_members_holding_for_a_proposer_that_is_down_still_decide() {
    let mut sim = busy_and_slow("busy_holds_proposer_down");
    sim.load(LOADED);
    sim.wait_all_committed(WAIT);
    sim.crash(3);
    let before = sim.height(0).expect("node 0 runs").0;
    // Four heights: node 3 is the first round's proposer of one.
    let mut tip = before;
    while tip < before + 4 {
        sim.load_on(&[0, 1, 2], LOADED);
        sim.wait_committed_on(&[0, 1, 2], WAIT);
        tip = sim.height(0).expect("node 0 runs").0;
    }
    let rounds: Vec<i64> = (before + 1..=tip)
        .map(|h| sim.certificate(0, h).round)
        .collect();
    assert!(
        rounds.iter().any(|r| *r > 0),
        "node 3's turn was decided in a later round: {rounds:?}"
    );
    sim.check_invariants();
}

/// After a small block a busy context's proposer alone holds the next
/// height, briefly (`pace::LIGHT_HOLD`: longer than the sim's three step
/// timeouts together, after which a member takes its height for stuck);
/// the members with txs of their own start it at once and wait out the
/// hold in their first round's propose step and its rebroadcast timeout
/// alike: they do not ask the others for decided blocks. (Without the
/// rebroadcast's stretch every node asked 4-5 times in this run; a
/// proposal that a slow disk delays past the margin, 600 ms, may make one
/// ask, which the bound allows.)
#[test]
fn members_waiting_out_a_light_hold_do_not_take_the_height_for_stuck() {
    let mut sim = busy("busy_light_holds");
    held_heights_are_not_taken_for_stuck(&mut sim, 8, 3, 2);
}

/// Six heights of `txs` txs each on every node; then at least `min_held`
/// held over the nodes, and at most `max_asked` requests for decided
/// blocks made because a height seemed stuck.
fn held_heights_are_not_taken_for_stuck(sim: &mut Sim, txs: usize, min_held: u64, max_asked: u64) {
    for _ in 0..6 {
        sim.load(txs);
        sim.wait_all_committed(WAIT);
    }
    let nodes = 0..sim.nodes.len();
    let held: u64 = nodes.clone().map(|i| holds(sim, i)).sum();
    assert!(held >= min_held, "too few held heights: {held}");
    let asked: Vec<u64> = nodes.map(|i| sync_fallbacks(sim, i)).collect();
    assert!(
        asked.iter().sum::<u64>() <= max_asked,
        "stuck-height fallbacks per node: {asked:?}"
    );
    sim.check_invariants();
}

/// Busy nodes hold heights only while their machine is short of CPU
/// (`crate::cpu`): with CPU to spare every height starts as soon as txs
/// wait, loaded or not, and all are decided; the same load on machines
/// short of CPU is held.
#[test]
fn busy_nodes_with_cpu_to_spare_hold_no_height() {
    for (cpu, name) in [
        (Shortage::NONE, "busy_spare"),
        (Shortage::FULL, "busy_short"),
    ] {
        let mut sim = Sim::new(name, 4);
        sim.cpu = cpu;
        sim.start_all();
        for i in 0..4 {
            make_busy(&sim, i);
        }
        for _ in 0..4 {
            sim.load(LOADED);
            sim.wait_all_committed(WAIT);
        }
        let held: Vec<u64> = (0..4).map(|i| holds(&sim, i)).collect();
        if cpu.any() {
            assert!(held.iter().any(|h| *h > 0), "nothing held: {held:?}");
        } else {
            assert_eq!(held, [0; 4], "held with CPU to spare");
        }
        sim.check_invariants();
    }
}

/// A node whose own precommit decides a height (the other's came before
/// it voted: with two members, one of them at almost every height)
/// finalizes the height before malachite arms that vote's rebroadcast
/// timeout. Armed, it ran out while the next height was held (a busy
/// node's loaded context: the proposer waits out its pool's quiet, longer
/// than the sim's rebroadcast timeout) and the node took the decided
/// height for stuck, asking the other for blocks nobody had decided;
/// ended heights now arm nothing (`Timers::height_ended`).
#[test]
fn a_height_decided_by_its_own_precommit_is_not_taken_for_stuck_while_the_next_is_held() {
    let mut sim = Sim::new("busy_own_precommit", 2);
    sim.start_all();
    for i in 0..2 {
        make_busy(&sim, i);
    }
    // Before, 5 requests in this run (each node's own precommit decides
    // about half the heights); a step that a slow disk stretches past the
    // rebroadcast timeout may make one.
    held_heights_are_not_taken_for_stuck(&mut sim, LOADED, 5, 1);
}
