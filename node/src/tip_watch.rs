//! The node's check that none of its idle contexts missed a decided
//! height: gossip of a context's last heights may be lost (a partition
//! that healed after them, a path that died while its connection stayed
//! up) with no later message to reveal it once the load stops.
//!
//! A context idle (no height running or held) at one tip for a second is
//! checked with one of its other members, then again at doubling
//! intervals up to 30 s (each time the next member), for as long as it
//! stays idle at that tip; a height decided or under way starts it over.
//! The node asks each member once per round for all the contexts due with
//! it ([`NodeRequest::Tips`]: ids and this node's tips), and that member
//! answers with its tips of those it is ahead on and the asker may read;
//! each such context is told ([`ContextHandle::tip_seen`]) and asks that
//! member for the blocks. So the cost is one request per member and
//! round, however many contexts the node holds: with a request of its own
//! per context, 1,000 idle contexts took 2.3-3.9 % of a core per
//! validator (docs/PERFORMANCE.md, forty-seventh session).
//!
//! When a context is due and what a member answers are
//! `context::watch`'s; this module sends the requests and delivers the
//! answers.
//!
//! [`ContextHandle::tip_seen`]: crate::context::ContextHandle::tip_seen

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use conclave_consensus::{ContextId, Height, MemberId};
use parking_lot::Mutex;
use tracing::debug;

use crate::context::watch::{add, Asks, ROUND};
use crate::node::Node;
use crate::onboarding::{NodeRequest, NodeResponse};

/// Runs the rounds while the node lives.
pub fn spawn(node: Weak<Node>) {
    tokio::spawn(async move {
        let mut rounds = tokio::time::interval(ROUND);
        rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Members with a request in flight: one at a time each.
        let asking: Arc<Mutex<HashSet<MemberId>>> = Arc::default();
        loop {
            let now = rounds.tick().await.into_std();
            let Some(node) = node.upgrade() else { return };
            let me = node.keys.member_id();
            let mut asks = Asks::new();
            node.each_context(|handle| {
                if let Some((tip, readers, checks)) = handle.standing().due(now) {
                    add(&mut asks, me, (handle.id, tip, checks), &readers);
                }
            });
            for (peer, asked) in asks {
                if !asking.lock().insert(peer) {
                    continue;
                }
                let (net, node, asking) =
                    (node.network.clone(), Arc::downgrade(&node), asking.clone());
                tokio::spawn(async move {
                    ask(net, node, peer, asked).await;
                    asking.lock().remove(&peer);
                });
            }
        }
    });
}

/// Asks `peer` for its tips of `asked`, and tells each context it is ahead
/// on (the request does not keep the node alive).
async fn ask(
    net: conclave_network::NetworkHandle,
    node: Weak<Node>,
    peer: MemberId,
    asked: Vec<(ContextId, Height)>,
) {
    let wanted: HashSet<ContextId> = asked.iter().map(|(c, _)| *c).collect();
    let ahead = match crate::onboarding::ask_over(&net, peer, &NodeRequest::Tips(asked)).await {
        Ok(NodeResponse::Tips(ahead)) => ahead,
        Ok(other) => return debug!(member = %peer, answer = ?other, "tips not answered"),
        Err(error) => return debug!(member = %peer, %error, "cannot ask for tips"),
    };
    let Some(node) = node.upgrade() else { return };
    for (context, height) in ahead.into_iter().filter(|(c, _)| wanted.contains(c)) {
        if let Ok(handle) = node.context(&context) {
            handle.tip_seen(peer, height);
        }
    }
}
