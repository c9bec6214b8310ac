//! The pacing rules: how long to wait for a proposal, when to start (or
//! hold) the next height, when to push admitted txs.

use super::*;

const BASE: Duration = Duration::from_millis(1000);

fn arrived_after(wait: &mut ProposeWait, h: u64, after: Duration) {
    let start = Instant::now();
    wait.round_started(Height(h), Round::new(0), start);
    wait.proposal_arrived(Height(h), Round::new(0), start + after);
}

#[test]
fn proposals_in_time_keep_the_configured_timeout() {
    let mut wait = ProposeWait::new(BASE, Arc::default());
    assert_eq!(wait.timeout(BASE), BASE);
    for h in 1..=20 {
        arrived_after(&mut wait, h, Duration::from_millis(30));
    }
    assert_eq!(wait.timeout(BASE), BASE);
    // The engine's longer timeouts of later rounds stand.
    assert_eq!(wait.timeout(BASE * 2), BASE * 2);
}

#[test]
fn late_proposals_stretch_the_wait_then_it_settles_back() {
    let mut wait = ProposeWait::new(BASE, Arc::default());
    arrived_after(&mut wait, 1, Duration::from_millis(1200));
    assert_eq!(wait.timeout(BASE), Duration::from_millis(2400));
    // Bounded, however late.
    arrived_after(&mut wait, 2, Duration::from_secs(60));
    assert_eq!(wait.timeout(BASE), BASE * STRETCH_LIMIT);
    // Once a window of proposals arrive in time, the wait is back.
    for h in 3..3 + WINDOW as u64 {
        assert!(wait.timeout(BASE) > BASE);
        arrived_after(&mut wait, h, Duration::from_millis(20));
    }
    assert_eq!(wait.timeout(BASE), BASE);
}

#[test]
fn only_the_first_proposal_of_a_round_started_here_counts() {
    let mut wait = ProposeWait::new(BASE, Arc::default());
    let start = Instant::now();
    // Before any round, for a round not started here, or for another
    // height: nothing learnt.
    wait.proposal_arrived(Height(1), Round::new(0), start + BASE * 3);
    wait.round_started(Height(1), Round::new(1), start);
    wait.proposal_arrived(Height(1), Round::new(0), start + BASE * 3);
    wait.proposal_arrived(Height(2), Round::new(1), start + BASE * 3);
    assert_eq!(wait.timeout(BASE), BASE);
    // The round's own proposal counts once: a copy arriving later
    // (a rebroadcast, a second lane) does not.
    wait.proposal_arrived(Height(1), Round::new(1), start + Duration::from_millis(100));
    wait.proposal_arrived(Height(1), Round::new(1), start + BASE * 3);
    assert_eq!(wait.timeout(BASE), BASE);
}

/// A proposal so late that its round timed out and the next one
/// started still teaches how late proposals arrive.
#[test]
fn a_proposal_arriving_after_its_round_ended_counts() {
    let mut wait = ProposeWait::new(BASE, Arc::default());
    let start = Instant::now();
    wait.round_started(Height(1), Round::new(0), start);
    wait.round_started(Height(1), Round::new(1), start + BASE);
    wait.proposal_arrived(Height(1), Round::new(0), start + BASE * 2);
    assert_eq!(wait.timeout(BASE), BASE * 4);
    // The next height forgets the rounds of this one.
    wait.round_started(Height(2), Round::new(0), start + BASE * 3);
    wait.proposal_arrived(Height(1), Round::new(1), start + BASE * 9);
    assert_eq!(wait.timeout(BASE), BASE * 4);
}

#[test]
fn a_silent_proposer_teaches_nothing() {
    let mut wait = ProposeWait::new(BASE, Arc::default());
    for h in 1..=5 {
        // Rounds whose proposer sent nothing: the timeout fired.
        wait.round_started(Height(h), Round::new(0), Instant::now());
        wait.round_started(Height(h), Round::new(1), Instant::now());
        wait.proposal_arrived(Height(h), Round::new(1), Instant::now());
    }
    assert_eq!(wait.timeout(BASE), BASE);
}

/// The node's load makes proposals late whatever their context: a context
/// that has seen none of its own late yet waits as long as the node's
/// others needed, and the node's wait settles back as theirs arrive in
/// time again; a context whose own proposals come late keeps waiting for
/// them while the others' arrive quickly.
#[test]
fn contexts_learn_the_wait_from_the_whole_node() {
    let node = Arc::new(ProposalDelays::default());
    let mut busy = ProposeWait::new(BASE, node.clone());
    let fresh = ProposeWait::new(BASE, node.clone());
    let mut slow = ProposeWait::new(BASE, node.clone());
    assert_eq!(fresh.timeout(BASE), BASE);
    arrived_after(&mut busy, 1, Duration::from_millis(1500));
    assert_eq!(fresh.timeout(BASE), Duration::from_millis(3000));
    // A node of its own learns nothing from this one.
    assert_eq!(ProposeWait::new(BASE, Arc::default()).timeout(BASE), BASE);
    arrived_after(&mut slow, 1, Duration::from_millis(2000));
    for h in 2..2 + WINDOW as u64 {
        arrived_after(&mut busy, h, Duration::from_millis(20));
    }
    assert_eq!(fresh.timeout(BASE), BASE);
    assert_eq!(slow.timeout(BASE), Duration::from_millis(4000));
}

/// A round's wait, set before anything was learnt, runs on by what
/// proposals that arrived since teach; not once its own proposal came.
#[test]
fn a_round_waits_more_by_what_was_learnt_since_it_started() {
    let node = Arc::new(ProposalDelays::default());
    let mut wait = ProposeWait::new(BASE, node.clone());
    let start = Instant::now();
    let round = Round::new(0);
    wait.round_started(Height(1), round, start);
    let out = start + BASE;
    assert_eq!(wait.wait_more(round, BASE, out), None, "nothing learnt");
    arrived_after(
        &mut ProposeWait::new(BASE, node),
        1,
        Duration::from_millis(700),
    );
    assert_eq!(
        wait.wait_more(round, BASE, out),
        Some(Duration::from_millis(400))
    );
    // Nothing for a round not started here, or past the learnt wait.
    assert_eq!(wait.wait_more(Round::new(1), BASE, out), None);
    assert_eq!(wait.wait_more(round, BASE, start + BASE * 2), None);
    wait.proposal_arrived(Height(1), round, out);
    assert_eq!(wait.wait_more(round, BASE, out), None, "it arrived");
}

/// `heights` in progress or held on a node whose machine has no CPU to
/// spare (the whole holds).
fn short(heights: i64) -> Load {
    Load {
        heights,
        cpu: Shortage::FULL,
    }
}

/// A context that committed a block worth holding the next for.
fn loaded() -> FillWait {
    let mut fill = FillWait::default();
    fill.committed(HOLD_FROM_TXS);
    fill
}

/// [`loaded`], and the moment its height ended: where the hold tests
/// start.
fn after_a_loaded_block() -> (FillWait, Instant) {
    (loaded(), Instant::now())
}

#[test]
fn a_busy_proposer_holds_while_txs_keep_coming_up_to_the_limit() {
    let (mut fill, now) = after_a_loaded_block();
    // Busy enough for the longest hold.
    const BUSY: i64 = 100;
    assert_eq!(loaded_hold(BUSY), MAX_HOLD);
    let first = fill.hold(now, short(BUSY), 10, true).expect("held");
    assert_eq!(
        first,
        Hold {
            until: now + QUIET,
            wake: true
        }
    );
    // More txs move the quiet end; the wake-up armed stands (it looks
    // again when it fires).
    let mut at = now;
    for waiting in 11..40 {
        at += QUIET / 2;
        let held = fill.hold(at, short(BUSY), waiting, true);
        if at + QUIET <= now + MAX_HOLD {
            assert_eq!(held.as_ref().map(|h| h.until), Some(at + QUIET));
        }
        if at >= now + MAX_HOLD {
            assert_eq!(held, None, "held past the limit");
            return;
        }
    }
    panic!("the hold never reached its limit");
}

/// A loaded context's hold grows with the node's busy heights, so that
/// together they start about one height every [`HOLD_PER_BUSY_HEIGHT`]:
/// 30 busy contexts hold 750 ms, 100 or more the longest, a few no less
/// than a light context.
#[test]
fn a_loaded_hold_grows_with_the_node_s_busy_heights() {
    assert_eq!(loaded_hold(BUSY_HEIGHTS), LIGHT_HOLD);
    assert_eq!(loaded_hold(30), Duration::from_millis(750));
    assert_eq!(loaded_hold(100), MAX_HOLD);
    assert_eq!(loaded_hold(10_000), MAX_HOLD);
    assert_eq!(loaded_hold(i64::MAX), MAX_HOLD);
    let (mut fill, now) = after_a_loaded_block();
    // Txs keep coming (no quiet end): the limit ends it.
    let mut at = now;
    for waiting in 10..100 {
        let held = fill.hold(at, short(30), waiting, true);
        if at >= now + Duration::from_millis(750) {
            assert_eq!(held, None, "held past the limit");
            return;
        }
        assert!(held.is_some(), "released before the limit");
        at += Duration::from_millis(100);
    }
    panic!("the hold never reached its limit");
}

#[test]
fn a_proposer_s_hold_ends_when_its_pool_stops_growing_or_fills() {
    let (mut fill, now) = after_a_loaded_block();
    let first = fill.hold(now, short(BUSY_HEIGHTS), 10, true).expect("held");
    // Woken at the quiet end with no more txs: it starts. Until the
    // caller starts it (or releases the hold), it counts as held.
    assert_eq!(fill.hold(first.until, short(BUSY_HEIGHTS), 10, true), None);
    assert!(fill.is_held());
    fill.release();
    assert!(!fill.is_held());
    // A full block's txs start it at once.
    fill.hold(now, short(BUSY_HEIGHTS), 10, true)
        .expect("held anew");
    assert_eq!(fill.hold(now, short(BUSY_HEIGHTS), FULL_BLOCK, true), None);
}

#[test]
fn a_busy_member_holds_for_the_proposal_up_to_its_own_limit() {
    let (mut fill, now) = after_a_loaded_block();
    let held = fill
        .hold(now, short(BUSY_HEIGHTS), 10, false)
        .expect("held");
    assert_eq!(
        held,
        Hold {
            until: now + MEMBER_HOLD,
            wake: true
        }
    );
    // No quiet end for a member: the proposal starts its height.
    let quiet = now + QUIET * 2;
    assert_eq!(
        fill.hold(quiet, short(BUSY_HEIGHTS), 10, false),
        Some(Hold {
            until: now + MEMBER_HOLD,
            wake: false
        })
    );
    // Past the proposer's longest hold, up to its own.
    assert!(MEMBER_HOLD > MAX_HOLD);
    assert_eq!(
        fill.hold(now + MEMBER_HOLD, short(BUSY_HEIGHTS), 10, false),
        None
    );
    // A full block waiting here starts it too.
    fill.hold(now, short(BUSY_HEIGHTS), 10, false)
        .expect("held anew");
    assert_eq!(fill.hold(now, short(BUSY_HEIGHTS), FULL_BLOCK, false), None);
}

#[test]
fn after_a_small_block_only_the_proposer_holds_and_briefly() {
    let mut light = loaded();
    light.committed(HOLD_FROM_TXS - 1);
    let now = Instant::now();
    assert_eq!(light.hold(now, short(1_000), 10, false), None);
    let held = light.hold(now, short(1_000), 10, true).expect("held");
    assert_eq!(held.until, now + LIGHT_HOLD);
    // Txs coming do not stretch it; the limit ends it.
    assert_eq!(
        light
            .hold(now + LIGHT_HOLD / 2, short(1_000), 20, true)
            .map(|h| h.until),
        Some(now + LIGHT_HOLD)
    );
    assert_eq!(light.hold(now + LIGHT_HOLD, short(1_000), 30, true), None);
    // Nor once a loaded block's txs wait (the load starting).
    light.release();
    assert_eq!(light.hold(now, short(1_000), HOLD_FROM_TXS, true), None);
    assert!(light
        .hold(now, short(1_000), HOLD_FROM_TXS - 1, true)
        .is_some());
    // Long enough for a busy member's next push: a proposer with no
    // client of its own gets the context's txs only that way.
    assert!(LIGHT_HOLD > PUSH_EVERY);
}

#[test]
fn an_unloaded_node_starts_at_once() {
    let t = Instant::now();
    let mut slow = loaded();
    assert_eq!(slow.hold(t, short(FEW_HEIGHTS - 1), 0, true), None);
    assert_eq!(slow.hold(t, short(FEW_HEIGHTS - 1), 0, false), None);

    // A release (the height starting) forgets the hold.
    slow.hold(t, short(BUSY_HEIGHTS), 0, false).unwrap();
    slow.release();
    let later = t + MEMBER_HOLD * 2;
    let held = slow.hold(later, short(BUSY_HEIGHTS), 0, false).unwrap();
    assert_eq!(held.until, later + MEMBER_HOLD);
    assert!(held.wake);
    slow.release();
    let again = slow
        .hold(later + MAX_HOLD, short(BUSY_HEIGHTS), 0, false)
        .unwrap();
    assert_eq!(again.until, later + MAX_HOLD + MEMBER_HOLD);
}

/// A context's first height starts at once, busy node or not: nothing
/// is known of its load, and no member's propose timeout waits out a hold
/// of it. Every later one may be held, however quick the context's heights
/// (it is the count of the node's heights that loads it).
#[test]
fn a_first_height_starts_at_once_and_later_ones_may_be_held() {
    let t = Instant::now();
    let mut fill = FillWait::default();
    assert_eq!(fill.hold(t, short(1_000), 1, true), None);
    assert_eq!(fill.hold(t, short(1_000), 1, false), None);
    assert_eq!(fill.proposer_may_hold(1_000), Duration::ZERO);
    fill.release();
    fill.committed(1);
    assert_eq!(
        fill.hold(t, short(1_000), 1, true).map(|h| h.until),
        Some(t + LIGHT_HOLD)
    );
    assert_eq!(fill.proposer_may_hold(1_000), LIGHT_HOLD);
}

/// A member that does not hold the next height itself (its last block was
/// small) still waits out its proposer's longest hold in the height's
/// first round, on a busy node: the limit the last block's size sets,
/// which every member agrees on, plus the configured timeout. Not in later
/// rounds, not on a node that is not busy, and not when proposals have
/// taught a longer wait.
#[test]
fn a_member_waits_out_the_proposer_s_hold_in_the_first_round() {
    let t = Instant::now();
    let mut member = loaded();
    assert_eq!(member.proposer_may_hold(BUSY_HEIGHTS), MAX_HOLD);
    assert_eq!(member.proposer_may_hold(BUSY_HEIGHTS - 1), FEW_HOLD);
    assert_eq!(member.proposer_may_hold(FEW_HEIGHTS - 1), Duration::ZERO);
    member.committed(HOLD_FROM_TXS - 1);
    assert_eq!(member.hold(t, short(BUSY_HEIGHTS), 0, false), None);
    assert_eq!(member.proposer_may_hold(BUSY_HEIGHTS), LIGHT_HOLD);

    let mut wait = ProposeWait::new(BASE, Arc::default());
    wait.proposer_may_hold(MAX_HOLD);
    assert_eq!(wait.timeout_of(Round::new(0), BASE), MAX_HOLD + BASE);
    // Once: the next round, or the next height unless told again, waits as
    // before.
    assert_eq!(wait.timeout_of(Round::new(0), BASE), BASE);
    wait.proposer_may_hold(MAX_HOLD);
    assert_eq!(wait.timeout_of(Round::new(1), BASE * 2), BASE * 2);
    wait.proposer_may_hold(Duration::ZERO);
    assert_eq!(wait.timeout_of(Round::new(0), BASE), BASE);
    // A wait learnt from late proposals that is longer stands.
    arrived_after(&mut wait, 1, MAX_HOLD + BASE);
    wait.proposer_may_hold(MAX_HOLD);
    assert_eq!(wait.timeout_of(Round::new(0), BASE), (MAX_HOLD + BASE) * 2);
}

#[test]
fn a_busy_node_pushes_a_running_context_s_txs_at_most_every_interval() {
    let t = Instant::now();
    let mut pace = PushPace::default();
    // The first push goes at once; the next waits out the interval,
    // with one wake-up armed for its end.
    assert_eq!(pace.push(t, short(BUSY_HEIGHTS), true, 1), Push::Now);
    let soon = t + PUSH_EVERY / 5;
    assert_eq!(
        pace.push(soon, short(BUSY_HEIGHTS), true, 1),
        Push::WakeAt(t + PUSH_EVERY)
    );
    assert_eq!(pace.push(soon, short(BUSY_HEIGHTS), true, 2), Push::Later);
    // A batch's worth goes at once.
    assert_eq!(
        pace.push(soon, short(BUSY_HEIGHTS), true, PUSH_BATCH),
        Push::Now
    );
    // The wake-up armed before it is still to fire: no other yet.
    let later = soon + PUSH_EVERY / 2;
    assert_eq!(pace.push(later, short(BUSY_HEIGHTS), true, 1), Push::Later);
    // It fires: the interval runs from that push, so one more is armed.
    let fired = t + PUSH_EVERY;
    assert_eq!(
        pace.push(fired, short(BUSY_HEIGHTS), true, 1),
        Push::WakeAt(soon + PUSH_EVERY)
    );
    assert_eq!(pace.push(fired, short(BUSY_HEIGHTS), true, 1), Push::Later);
    assert_eq!(
        pace.push(soon + PUSH_EVERY, short(BUSY_HEIGHTS), true, 1),
        Push::Now
    );
    // Nothing waiting: nothing to push, nothing armed.
    assert_eq!(
        pace.push(soon + PUSH_EVERY, short(BUSY_HEIGHTS), true, 0),
        Push::Later
    );
}

#[test]
fn an_unloaded_node_or_a_context_between_heights_pushes_after_a_short_gap() {
    let t = Instant::now();
    let mut pace = PushPace::default();
    assert_eq!(pace.push(t, short(BUSY_HEIGHTS), true, 1), Push::Now);
    // Right after a push: not busy, or no height of this context running
    // (its txs may start one), and it pushes again once the gap ran out,
    // or at once with a batch waiting.
    assert_eq!(
        pace.push(t, short(BUSY_HEIGHTS - 1), true, 1),
        Push::WakeAt(t + PUSH_GAP)
    );
    assert_eq!(pace.push(t, short(1_000), false, 1), Push::Later);
    assert_eq!(pace.push(t, short(1_000), false, PUSH_BATCH), Push::Now);
    let gone = t + PUSH_GAP;
    assert_eq!(pace.push(gone, short(1_000), false, 1), Push::Now);
    assert_eq!(pace.push(gone + PUSH_GAP, short(0), true, 1), Push::Now);
    // Paced by the busy node's interval, then no longer busy: a wake-up
    // armed for the end of the gap, not the interval's.
    let busy = gone + PUSH_GAP + PUSH_EVERY;
    assert_eq!(pace.push(busy, short(BUSY_HEIGHTS), true, 1), Push::Now);
    assert_eq!(
        pace.push(busy, short(BUSY_HEIGHTS), true, 1),
        Push::WakeAt(busy + PUSH_EVERY)
    );
    assert_eq!(
        pace.push(busy, short(0), true, 1),
        Push::WakeAt(busy + PUSH_GAP)
    );
    assert_eq!(pace.push(busy + PUSH_GAP, short(0), true, 1), Push::Now);
}

#[test]
fn a_busy_node_with_cpu_to_spare_neither_holds_nor_paces() {
    let spare = Load {
        heights: 1_000,
        cpu: Shortage::NONE,
    };
    let (mut fill, t) = after_a_loaded_block();
    assert_eq!(fill.hold(t, spare, 10, true), None);
    assert_eq!(fill.hold(t, spare, 10, false), None);
    assert!(!fill.is_held());
    let mut light = FillWait::default();
    light.committed(1);
    assert_eq!(light.hold(t, spare, 1, true), None);
    // What the members wait out does not depend on the proposer's machine.
    assert_eq!(fill.proposer_may_hold(1_000), MAX_HOLD);
    let mut pace = PushPace::default();
    assert_eq!(pace.push(t, spare, true, 1), Push::Now);
    assert_eq!(pace.push(t, spare, true, 1), Push::WakeAt(t + PUSH_GAP));
}

#[test]
fn a_partial_shortage_scales_the_proposer_s_holds_and_the_push_interval() {
    let quarter = Load {
        heights: 100,
        cpu: Shortage::new(0.25),
    };
    let (mut fill, t) = after_a_loaded_block();
    let held = fill.hold(t, quarter, 10, true).expect("held");
    assert_eq!(held.until, t + MAX_HOLD / 4);
    // A member holds for the proposal as long as before: the proposal ends
    // its hold, whatever the proposer's machine.
    let (mut member, t) = after_a_loaded_block();
    let held = member.hold(t, quarter, 10, false).expect("held");
    assert_eq!(held.until, t + MEMBER_HOLD);
    let mut light = FillWait::default();
    light.committed(1);
    let held = light.hold(t, quarter, 1, true).expect("held");
    assert_eq!(held.until, t + LIGHT_HOLD / 4);
    // The shortage read anew at each look: a hold shrinks as it eases.
    let eased = Load {
        cpu: Shortage::new(0.1),
        ..quarter
    };
    assert_eq!(light.hold(t + LIGHT_HOLD / 5, eased, 1, true), None);
    let mut pace = PushPace::default();
    assert_eq!(pace.push(t, quarter, true, 1), Push::Now);
    assert_eq!(
        pace.push(t, quarter, true, 1),
        Push::WakeAt(t + PUSH_EVERY / 4)
    );
}

#[test]
fn an_unbusy_node_does_not_read_its_machine_s_cpu() {
    let read = std::cell::Cell::new(0);
    let look = || {
        read.set(read.get() + 1);
        Shortage::FULL
    };
    let calm = Load::new(FEW_HEIGHTS - 1, look);
    assert_eq!(read.get(), 0);
    assert!(!calm.holds() && !calm.holds_few());
    let few = Load::new(FEW_HEIGHTS, look);
    assert_eq!(read.get(), 1);
    assert!(few.holds_few() && !few.holds());
    let busy = Load::new(BUSY_HEIGHTS, look);
    assert_eq!(read.get(), 2);
    assert!(busy.holds() && !busy.holds_few());
}

/// A node with a few heights under way (from [`FEW_HEIGHTS`] to under
/// [`BUSY_HEIGHTS`]) and short of CPU has the next height's proposer hold
/// it for [`HOLD_PER_BUSY_HEIGHT`] a height, after a small block as after
/// a loaded one (scaled by the shortage), until a full block waits; no
/// other member holds, a first height starts at once, pushes are not
/// paced, and with CPU to spare nothing is held.
#[test]
fn a_node_with_a_few_heights_has_its_proposers_hold_briefly() {
    let t = Instant::now();
    for last in [1, HOLD_FROM_TXS] {
        let mut fill = FillWait::default();
        assert_eq!(fill.hold(t, short(3), 1, true), None, "a first height");
        fill.committed(last);
        let held = fill.hold(t, short(3), 1, true).expect("held");
        assert_eq!(held.until, t + HOLD_PER_BUSY_HEIGHT * 3);
        assert_eq!(fill.hold(held.until, short(3), 1, true), None);
        fill.release();
        assert_eq!(fill.hold(t, short(3), FULL_BLOCK, true), None);
        assert_eq!(fill.hold(t, short(3), 1, false), None, "a member");
        let half = Load {
            heights: 3,
            cpu: Shortage::new(0.5),
        };
        let held = fill.hold(t, half, 1, true).expect("held");
        assert_eq!(held.until, t + HOLD_PER_BUSY_HEIGHT * 3 / 2);
        fill.release();
        let spare = Load {
            heights: 3,
            cpu: Shortage::NONE,
        };
        assert_eq!(fill.hold(t, spare, 1, true), None);
    }
    let mut most = FillWait::default();
    most.committed(HOLD_FROM_TXS);
    let held = most
        .hold(t, short(BUSY_HEIGHTS - 1), 1, true)
        .expect("held");
    assert_eq!(held.until, t + FEW_HOLD);
    let mut pace = PushPace::default();
    assert_eq!(pace.push(t, short(3), true, 1), Push::Now);
    assert_eq!(pace.push(t, short(3), true, 1), Push::WakeAt(t + PUSH_GAP));
}

#[test]
fn a_rounds_rebroadcast_is_stretched_by_its_propose_wait() {
    let mut wait = ProposeWait::new(BASE, Arc::default());
    assert_eq!(wait.stretch(Round::new(0)), Duration::ZERO);
    // A held height's first round: the hold on top, not consumed by the
    // rebroadcast's look, and gone once the propose timeout took it.
    wait.proposer_may_hold(Duration::from_millis(2500));
    assert_eq!(wait.stretch(Round::new(0)), Duration::from_millis(2500));
    assert_eq!(wait.stretch(Round::new(1)), Duration::ZERO);
    assert_eq!(
        wait.timeout_of(Round::new(0), BASE),
        Duration::from_millis(3500)
    );
    assert_eq!(wait.stretch(Round::new(0)), Duration::ZERO);
    // Late proposals stretch every round's wait, and its rebroadcast.
    arrived_after(&mut wait, 1, Duration::from_millis(1200));
    assert_eq!(wait.stretch(Round::new(1)), Duration::from_millis(1400));
}
