//! An in-memory network for context actors in one process: the
//! [`Transport`] each simulated node is given. Gossip and pushes go
//! straight into the other members' mailboxes, catch-up requests are
//! served from their stores (`wire::serve_sync`, as the node does), and
//! the test cuts links (partitions, symmetric or not) and drops messages
//! with a seeded generator.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use conclave_consensus::{ContextId, MemberId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::context::seams::{Pending, Transport};
use crate::context::ContextHandle;
use crate::store::Store;

/// Which gossip messages a link loses, by (from, to, sealed bytes): the
/// test's choice of exactly what goes missing.
pub(crate) type Loss = Box<dyn Fn(MemberId, MemberId, &[u8]) -> bool + Send>;

/// A member's node as the bus reaches it.
struct Attached {
    handle: ContextHandle,
    store: Store,
}

struct Inner {
    nodes: HashMap<MemberId, Attached>,
    /// Links that carry nothing, from one member to another.
    cut: HashSet<(MemberId, MemberId)>,
    /// Probability that a gossip message is lost.
    drop_rate: f64,
    rng: ChaCha8Rng,
    /// Gossip messages lost so far.
    dropped: u64,
    /// Gossip messages lost by the test's choice, besides the dice.
    loss: Option<Loss>,
    /// Gossip messages delivered late by the test's choice, and how late.
    delay: Option<(Loss, std::time::Duration)>,
    /// Requests still to fail (as if they timed out).
    failing_requests: u32,
    /// Penalties given: (by, to).
    penalised: Vec<(MemberId, MemberId)>,
}

/// The bus all simulated nodes share.
pub(crate) struct Bus(Mutex<Inner>);

impl Bus {
    pub(crate) fn new(seed: u64) -> Arc<Self> {
        Arc::new(Self(Mutex::new(Inner {
            nodes: HashMap::new(),
            cut: HashSet::new(),
            drop_rate: 0.0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            dropped: 0,
            loss: None,
            delay: None,
            failing_requests: 0,
            penalised: Vec::new(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The transport member `me`'s node is given.
    pub(crate) fn port(self: &Arc<Self>, me: MemberId) -> Arc<dyn Transport> {
        Arc::new(Port {
            bus: self.clone(),
            me,
        })
    }

    /// `me`'s node is up: the others can reach it, and every node that can
    /// reach it is told (as the network layer does on a new connection).
    pub(crate) fn attach(&self, me: MemberId, handle: ContextHandle, store: Store) {
        let mut inner = self.lock();
        inner.nodes.insert(me, Attached { handle, store });
        let linked: Vec<MemberId> = inner
            .nodes
            .keys()
            .copied()
            .filter(|m| *m != me && inner.linked(*m, me) && inner.linked(me, *m))
            .collect();
        for m in linked {
            inner.nodes[&m].handle.peer_connected(me);
            inner.nodes[&me].handle.peer_connected(m);
        }
    }

    /// `me`'s node is down (crashed or stopped).
    pub(crate) fn detach(&self, me: &MemberId) {
        self.lock().nodes.remove(me);
    }

    /// Cuts the link from `a` to `b` (one way).
    pub(crate) fn cut(&self, a: MemberId, b: MemberId) {
        self.lock().cut.insert((a, b));
    }

    /// Restores every link; the nodes on both ends of a restored link are
    /// told they are connected again.
    pub(crate) fn heal(&self) {
        let mut inner = self.lock();
        let cut = std::mem::take(&mut inner.cut);
        for (a, b) in cut {
            if let (Some(na), Some(nb)) = (inner.nodes.get(&a), inner.nodes.get(&b)) {
                na.handle.peer_connected(b);
                nb.handle.peer_connected(a);
            }
        }
    }

    /// Restores every link without telling anyone: as when a path that
    /// carried nothing carries again while its connection never closed.
    pub(crate) fn heal_quietly(&self) {
        self.lock().cut.clear();
    }

    pub(crate) fn set_drop_rate(&self, rate: f64) {
        self.lock().drop_rate = rate;
    }

    /// The next `n` requests fail, whoever they go to.
    pub(crate) fn fail_requests(&self, n: u32) {
        self.lock().failing_requests = n;
    }

    /// Gossip for which `loss` says so is lost (`None`: none is, but for
    /// the drop rate). The links stay up: no connection event is given,
    /// and catch-up requests go through, as when a gossip path dies.
    pub(crate) fn set_loss(&self, loss: Option<Loss>) {
        self.lock().loss = loss;
    }

    /// Gossip for which `late` says so arrives `by` late (`None`: none
    /// does), in order among itself but overtaken by the rest.
    pub(crate) fn set_delay(&self, delay: Option<(Loss, std::time::Duration)>) {
        self.lock().delay = delay;
    }

    /// One round of `me`'s tip watch (`crate::tip_watch`), run by hand:
    /// if its `context` is idle, each member it reaches both ways that is
    /// ahead (answering as `onboarding::serve` does) tells it so. Whether
    /// any was ahead.
    pub(crate) fn watch_tips(&self, me: MemberId, context: ContextId) -> bool {
        let inner = self.lock();
        let Some((tip, readers)) = inner
            .nodes
            .get(&me)
            .and_then(|n| n.handle.standing().idle())
        else {
            return false;
        };
        let mut heard = false;
        for (member, node) in &inner.nodes {
            if *member == me || !inner.linked(me, *member) || !inner.linked(*member, me) {
                continue;
            }
            let ahead = crate::context::watch::ahead(&[(context, tip)], |_| {
                node.handle.standing().tip_for(&me)
            });
            for (_, height) in ahead {
                heard = true;
                if readers.contains(member) {
                    inner.nodes[&me].handle.tip_seen(*member, height);
                }
            }
        }
        heard
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Every penalty a node gave: (by, to).
    pub(crate) fn penalised(&self) -> Vec<(MemberId, MemberId)> {
        self.lock().penalised.clone()
    }
}

impl Inner {
    fn linked(&self, from: MemberId, to: MemberId) -> bool {
        !self.cut.contains(&(from, to))
    }

    /// The nodes `from` reaches with `data` (gossip, when it is given),
    /// less the messages lost, each with how late it arrives.
    fn reached_when(
        &mut self,
        from: MemberId,
        data: Option<&[u8]>,
    ) -> Vec<(ContextHandle, Option<std::time::Duration>)> {
        let reached = self.reached(from, data);
        let late = |to: MemberId| match (&self.delay, data) {
            (Some((late, by)), Some(data)) => late(from, to, data).then_some(*by),
            _ => None,
        };
        reached.into_iter().map(|(m, h)| (h, late(m))).collect()
    }

    /// The nodes `from` reaches now with `data` (gossip, when it is
    /// given), less the messages lost.
    fn reached(&mut self, from: MemberId, data: Option<&[u8]>) -> Vec<(MemberId, ContextHandle)> {
        let targets: Vec<MemberId> = self
            .nodes
            .keys()
            .copied()
            .filter(|m| *m != from && self.linked(from, *m))
            .collect();
        let mut out = Vec::new();
        for m in targets {
            if let Some(data) = data {
                let chosen = self.loss.as_ref().is_some_and(|lose| lose(from, m, data));
                if chosen || (self.drop_rate > 0.0 && self.rng.gen_bool(self.drop_rate)) {
                    self.dropped += 1;
                    continue;
                }
            }
            out.push((m, self.nodes[&m].handle.clone()));
        }
        out
    }
}

struct Port {
    bus: Arc<Bus>,
    me: MemberId,
}

impl Transport for Port {
    fn join(&self, _: ContextId, _: Vec<MemberId>) -> Pending<'_, conclave_network::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn publish(
        &self,
        context: ContextId,
        data: Vec<u8>,
    ) -> Pending<'_, conclave_network::Result<()>> {
        let targets = self.bus.lock().reached_when(self.me, Some(&data));
        for (t, late) in &targets {
            match late {
                None => {
                    t.gossip(self.me, data.clone());
                }
                Some(by) => {
                    let (t, me, data, by) = (t.clone(), self.me, data.clone(), *by);
                    std::thread::spawn(move || {
                        std::thread::sleep(by);
                        t.gossip(me, data);
                    });
                }
            }
        }
        let result = if targets.is_empty() {
            Err(conclave_network::Error::NoPeers(context))
        } else {
            Ok(())
        };
        Box::pin(async move { result })
    }

    fn push(&self, _: ContextId, data: Vec<u8>) -> Pending<'_, conclave_network::Result<()>> {
        // Pushes are acknowledged streams: not lost at random, only cut,
        // or lost where a scenario chooses (a member's queue overflowed).
        let mut inner = self.bus.lock();
        for (m, t) in inner.reached(self.me, None) {
            if inner
                .loss
                .as_ref()
                .is_some_and(|lose| lose(self.me, m, &data))
            {
                inner.dropped += 1;
                continue;
            }
            t.pushed(self.me, data.clone());
        }
        Box::pin(async { Ok(()) })
    }

    fn penalise(&self, peer: MemberId) {
        self.bus.lock().penalised.push((self.me, peer));
    }

    fn request(
        &self,
        peer: MemberId,
        context: ContextId,
        data: Vec<u8>,
    ) -> Pending<'_, conclave_network::Result<Vec<u8>>> {
        let store = {
            let mut inner = self.bus.lock();
            let fails = inner.failing_requests > 0;
            inner.failing_requests = inner.failing_requests.saturating_sub(1);
            let up = !fails && inner.linked(self.me, peer) && inner.linked(peer, self.me);
            inner
                .nodes
                .get(&peer)
                .filter(|_| up)
                .map(|n| n.store.clone())
        };
        Box::pin(async move {
            let store = store.ok_or(conclave_network::Error::Timeout)?;
            crate::context::wire::serve_sync(&store, &context, &data)
                .map_err(conclave_network::Error::Setup)
        })
    }

    fn reconnect(&self, _: MemberId) {}
}
