//! The inbound streams of a lane being read, by peer: at most
//! [`STREAMS_PER_PEER`] each, a new one replacing the oldest. A member
//! opens a stream only when its last one failed or was dropped, so the
//! newest are the live ones; and the read of a stream whose connection
//! closed may never end (libp2p does not always wake it), so refusing new
//! streams once a peer held a few would have shut out, for good, a member
//! that reconnected a few times: its consensus messages refused, one by
//! one, while it counted them sent.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use libp2p::PeerId;
use tokio::task::{AbortHandle, JoinHandle};
use tracing::debug;

use super::{Lane, STREAMS_PER_PEER};

#[derive(Clone, Default)]
pub(super) struct Readers(Arc<Mutex<ReadersInner>>);

#[derive(Default)]
struct ReadersInner {
    next_id: u64,
    /// A peer's reads, oldest first; a read is listed before its task is
    /// spawned, so its handle comes a moment later.
    by_peer: HashMap<PeerId, VecDeque<(u64, Option<AbortHandle>)>>,
}

impl Readers {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReadersInner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns `read` for a new stream from `peer` (it holds the guard while
    /// it reads); stops the reading of `peer`'s oldest stream if it has
    /// [`STREAMS_PER_PEER`] already.
    ///
    /// Nothing is spawned or stopped under the lock: a runtime shutting down
    /// drops a task spawned on it at once, inside `spawn`, and with it the
    /// guard, whose drop takes the lock (under it, that hung the shutdown
    /// for good).
    pub(super) fn read<F>(
        &self,
        peer: PeerId,
        lane: Lane,
        read: impl FnOnce(ReaderGuard) -> F,
    ) -> JoinHandle<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (id, replaced) = {
            let mut inner = self.lock();
            inner.next_id += 1;
            let id = inner.next_id;
            let held = inner.by_peer.entry(peer).or_default();
            let replaced = match held.len() >= STREAMS_PER_PEER {
                true => held.pop_front(),
                false => None,
            };
            held.push_back((id, None));
            (id, replaced)
        };
        if let Some((_, oldest)) = replaced {
            debug!(%peer, ?lane, "a new inbound stream replaces the peer's oldest");
            // A read replaced before its handle came is stopped by its
            // own `read` call, below.
            if let Some(handle) = oldest {
                handle.abort();
            }
        }
        let guard = ReaderGuard {
            readers: self.clone(),
            peer,
            id,
        };
        let task = tokio::spawn(read(guard));
        let mut inner = self.lock();
        let listed = inner
            .by_peer
            .get_mut(&peer)
            .and_then(|held| held.iter_mut().find(|(i, _)| *i == id));
        match listed {
            Some((_, handle)) => *handle = Some(task.abort_handle()),
            // Ended already (its guard took it off the list), or replaced
            // meanwhile by a newer stream: then it stops here.
            None => task.abort(),
        }
        task
    }

    #[cfg(test)]
    pub(super) fn held(&self, peer: &PeerId) -> usize {
        self.lock().by_peer.get(peer).map_or(0, |held| held.len())
    }
}

/// One of a peer's inbound streams, listed while it is read.
pub(super) struct ReaderGuard {
    pub(super) readers: Readers,
    pub(super) peer: PeerId,
    pub(super) id: u64,
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        let mut inner = self.readers.lock();
        if let Some(held) = inner.by_peer.get_mut(&self.peer) {
            held.retain(|(id, _)| *id != self.id);
            if held.is_empty() {
                inner.by_peer.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_new_inbound_stream_beyond_the_bound_replaces_the_oldest() {
        let readers = Readers::default();
        let (peer, other) = (PeerId::random(), PeerId::random());
        // Reads that never end, as on a connection closed under them.
        let stuck = |guard: ReaderGuard| async move {
            let _guard = guard;
            futures::future::pending::<()>().await
        };
        let mut tasks: Vec<_> = (0..STREAMS_PER_PEER)
            .map(|_| readers.read(peer, Lane::Direct, stuck))
            .collect();
        assert_eq!(readers.held(&peer), STREAMS_PER_PEER);
        let newest = readers.read(peer, Lane::Direct, stuck);
        assert_eq!(readers.held(&peer), STREAMS_PER_PEER, "bounded");
        let oldest = tasks.remove(0);
        assert!(
            oldest.await.unwrap_err().is_cancelled(),
            "the oldest stopped"
        );
        for task in &tasks {
            assert!(!task.is_finished(), "the others still read");
        }
        // Another peer's streams are its own; a read that ends leaves the list.
        let done = readers.read(other, Lane::Direct, |guard: ReaderGuard| async move {
            drop(guard);
        });
        done.await.unwrap();
        assert_eq!(readers.held(&other), 0);
        assert_eq!(readers.held(&peer), STREAMS_PER_PEER);
        newest.abort();
        for task in tasks {
            task.abort();
        }
    }

    /// A stream accepted while the runtime shuts down: `spawn` drops its
    /// read at once, guard and all. That once hung the shutdown (and a
    /// test run with it) for good: the guard waited on a lock its own
    /// spawner held.
    #[test]
    fn a_read_spawned_as_the_runtime_shuts_down_ends_at_once() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let handle = rt.handle().clone();
        drop(rt);
        let readers = Readers::default();
        let peer = PeerId::random();
        let (done_tx, done) = std::sync::mpsc::channel();
        let spawner = readers.clone();
        std::thread::spawn(move || {
            let _entered = handle.enter();
            let task = spawner.read(peer, Lane::Push, |guard: ReaderGuard| async move {
                let _guard = guard;
                futures::future::pending::<()>().await
            });
            let _ = done_tx.send(task.is_finished());
        });
        let finished = done
            .recv_timeout(Duration::from_secs(30))
            .expect("the read's spawn returned (no deadlock)");
        assert!(finished, "the runtime dropped the read");
        assert_eq!(readers.held(&peer), 0, "and it left the list");
    }
}
