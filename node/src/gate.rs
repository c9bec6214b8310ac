//! One block executed per core at a time, across every context of the
//! process, in the order the executions asked.
//!
//! Each context actor builds and re-executes its blocks itself. With many
//! busy contexts, a node would otherwise run as many blocks at once as it
//! has busy contexts: each on a tokio worker thread, so that the workers
//! stall on wasm while consensus messages, timers and the network wait
//! behind them, and every height stretches past its timeouts together. The
//! gate runs a block off the worker (`block_in_place`: the worker's other
//! tasks move to another thread) and admits at most one block per core,
//! first come first served, so that the heights that started first finish
//! in time and the others wait their turn instead of all of them being
//! late. A small block (a few dozen txs, usually well under a
//! millisecond) runs on the worker itself when the gate has a place free
//! at once: handing the worker's tasks over would cost about as much.

use std::sync::{Condvar, Mutex, OnceLock};

use tokio::runtime::{Handle, RuntimeFlavor};

/// Admits at most `width` holders at once, in the order they asked.
pub(crate) struct Gate {
    queue: Mutex<Tickets>,
    moved: Condvar,
}

struct Tickets {
    /// The next ticket to hand out.
    next: u64,
    /// Tickets below this one have been admitted (those admitted and not yet
    /// out number at most `width`).
    admitted: u64,
}

impl Gate {
    pub(crate) fn new(width: usize) -> Self {
        let width = width.max(1) as u64;
        Self {
            queue: Mutex::new(Tickets {
                next: 0,
                admitted: width,
            }),
            moved: Condvar::new(),
        }
    }

    /// Runs `work` once admitted. Blocks the calling thread while waiting.
    pub(crate) fn run<R>(&self, work: impl FnOnce() -> R) -> R {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let ticket = queue.next;
        queue.next += 1;
        while ticket >= queue.admitted {
            queue = self.moved.wait(queue).unwrap_or_else(|e| e.into_inner());
        }
        drop(queue);
        // Out again even if `work` panics, or the gate would shrink.
        let _out = Out(self);
        work()
    }

    /// Enters at once if a place is free and nobody waits; out again when
    /// the returned guard drops.
    fn try_enter(&self) -> Option<Out<'_>> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.next < queue.admitted {
            queue.next += 1;
            Some(Out(self))
        } else {
            None
        }
    }
}

struct Out<'a>(&'a Gate);

impl Drop for Out<'_> {
    fn drop(&mut self) {
        let mut queue = self.0.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.admitted += 1;
        drop(queue);
        self.0.moved.notify_all();
    }
}

/// Blocks of at most this many txs run on the tokio worker itself when
/// the gate has a place free: with calls like a kv `set` (about 15 µs)
/// they take well under a millisecond, about what handing the worker's
/// tasks over to another thread costs. Heavier calls make such a block
/// longer (each is bounded by its fuel); meanwhile the other workers, if
/// the runtime has more than one (`[node] worker_threads`), can take over
/// this worker's queued tasks, and a node on a single worker waits.
const SMALL_BLOCK_TXS: usize = 32;

/// Runs the execution of one block of `txs` txs: through the process's
/// gate (one per core), off the tokio worker when on a multi-threaded
/// runtime, unless it is small and the gate free.
pub(crate) fn execute_block<R>(txs: usize, work: impl FnOnce() -> R) -> R {
    static GATE: OnceLock<Gate> = OnceLock::new();
    let gate =
        GATE.get_or_init(|| Gate::new(std::thread::available_parallelism().map_or(1, |n| n.get())));
    let on_workers = Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread);
    if on_workers {
        if txs <= SMALL_BLOCK_TXS {
            if let Some(_inside) = gate.try_enter() {
                return work();
            }
        }
        tokio::task::block_in_place(|| gate.run(work))
    } else {
        // A single-threaded runtime (tests) runs one block at a time anyway.
        work()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};

    use super::*;

    #[test]
    fn at_most_width_run_at_once_and_all_finish() {
        let gate = Arc::new(Gate::new(2));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (gate, inside, most) = (gate.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    gate.run(|| {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        i
                    })
                })
            })
            .collect();
        let mut done: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        done.sort_unstable();
        assert_eq!(done, (0..8).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= 2);
    }

    #[test]
    fn waiters_are_admitted_in_the_order_they_asked() {
        let gate = Arc::new(Gate::new(1));
        let (order_tx, order_rx) = mpsc::channel();
        let (hold_tx, hold_rx) = mpsc::channel::<()>();
        let (inside_tx, inside_rx) = mpsc::channel();
        // The first holder stays inside until told to leave.
        let first = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                gate.run(|| {
                    inside_tx.send(()).unwrap();
                    hold_rx.recv().unwrap();
                })
            })
        };
        inside_rx.recv().unwrap();
        // Three waiters take their tickets one after the other: each has
        // asked (its ticket is out) before the next starts.
        let mut waiters = Vec::new();
        for i in 0..3 {
            let (waiter, order_tx) = (gate.clone(), order_tx.clone());
            waiters.push(std::thread::spawn(move || {
                waiter.run(|| order_tx.send(i).unwrap())
            }));
            while gate.queue.lock().unwrap().next < i + 2 {
                std::thread::yield_now();
            }
        }
        hold_tx.send(()).unwrap();
        first.join().unwrap();
        for w in waiters {
            w.join().unwrap();
        }
        let order: Vec<u64> = order_rx.try_iter().collect();
        assert_eq!(order, vec![0, 1, 2]);
    }

    #[test]
    fn try_enter_takes_a_free_place_only_and_never_one_a_waiter_is_owed() {
        let gate = Arc::new(Gate::new(1));
        let inside = gate.try_enter().expect("the gate is free");
        assert!(gate.try_enter().is_none(), "the only place is taken");
        // A waiter queues behind the holder.
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.run(|| ()))
        };
        while gate.queue.lock().unwrap().next < 2 {
            std::thread::yield_now();
        }
        assert!(gate.try_enter().is_none(), "the next place is the waiter's");
        drop(inside);
        waiter.join().unwrap();
        let again = gate.try_enter();
        assert!(again.is_some(), "free again once the waiter left");
        drop(again);
        let q = gate.queue.lock().unwrap();
        assert_eq!((q.next, q.admitted), (3, 4), "every ticket out again");
    }

    #[test]
    fn a_panicking_holder_leaves_the_gate_open() {
        let gate = Gate::new(1);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            gate.run(|| panic!("the work failed"))
        }));
        assert!(result.is_err());
        assert_eq!(gate.run(|| 7), 7);
    }
}
