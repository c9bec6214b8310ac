//! Launching a node: opening it ([`Node::open`]), routing the network's
//! events to its context actors and to onboarding, and serving JSON-RPC and
//! metrics. The one place that knows all of them, so that [`Node`] stays a
//! handle the RPC layer and onboarding use without importing upward.

use std::path::Path;
use std::sync::Arc;

use tracing::info;

use crate::config::Config;
use crate::node::{Bound, NetworkEvents, Node};
use crate::Result;

/// Opens the node at `home`, routes its network events, and serves RPC and
/// metrics in background tasks. Must run inside a tokio runtime.
pub async fn launch(home: &Path, config: Config) -> Result<(Arc<Node>, Bound)> {
    let (node, events) = Node::open(home, config)?;
    tokio::spawn(route_network_events(Arc::downgrade(&node), events));
    crate::tip_watch::spawn(Arc::downgrade(&node));
    let bound = serve(&node).await?;
    Ok((node, bound))
}

/// Binds RPC and metrics and serves them in background tasks.
async fn serve(node: &Arc<Node>) -> Result<Bound> {
    let metrics_listener = crate::metrics::bind(node.config.metrics.listen).await?;
    let metrics_addr = metrics_listener.local_addr()?;
    tokio::spawn(crate::metrics::serve(
        node.metrics.clone(),
        node.network.clone(),
        metrics_listener,
    ));
    let rpc = crate::rpc::start(node.clone()).await?;
    info!(rpc = %rpc, metrics = %metrics_addr, member = %node.keys.member_id(), "node serving");
    Ok(Bound {
        rpc,
        metrics: metrics_addr,
    })
}

/// Hands a message from `from` to its context now, later or never, as the
/// injected link faults say (now, without any).
fn deliver(node: &Node, from: conclave_consensus::MemberId, hand: impl FnOnce() + Send + 'static) {
    use crate::link_faults::Fate;
    match node.link_faults.fate(&from) {
        Fate::Deliver => hand(),
        Fate::Drop => {}
        Fate::Delay(after) => {
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                hand();
            });
        }
    }
}

/// Hands each gossip message and push to its context's actor and answers
/// members' sync requests from the store.
async fn route_network_events(node: std::sync::Weak<Node>, mut events: NetworkEvents) {
    use conclave_network::NetworkEvent;
    while let Some(event) = events.recv().await {
        let Some(node) = node.upgrade() else { return };
        match event {
            NetworkEvent::Message {
                context,
                from,
                data,
            } => {
                if let Ok(handle) = node.context(&context) {
                    deliver(&node, from, move || {
                        if !handle.gossip(from, data) {
                            tracing::warn!(%context, "context inbox full; gossip dropped");
                        }
                    });
                }
            }
            NetworkEvent::Pushed {
                context,
                from,
                data,
            } => {
                if let Ok(handle) = node.context(&context) {
                    deliver(&node, from, move || {
                        if !handle.pushed(from, data) {
                            tracing::debug!(%context, "context bulk lane full; pushed txs dropped");
                        }
                    });
                }
            }
            NetworkEvent::Request {
                context,
                from,
                data,
                reply,
            } if context == conclave_network::NODE_SCOPE => {
                tokio::spawn(async move {
                    let answer = crate::onboarding::serve(node, from, data).await;
                    if let Ok(bytes) = borsh::to_vec(&answer) {
                        let _ = reply.send(bytes);
                    }
                });
            }
            NetworkEvent::Request {
                context,
                data,
                reply,
                ..
            } => {
                // The network layer has checked that the requester is a
                // member of `context`; only members read its blocks.
                if node.context(&context).is_ok() {
                    let store = node.store.clone();
                    tokio::task::spawn_blocking(move || {
                        match crate::context::wire::serve_sync(&store, &context, &data) {
                            Ok(bytes) => {
                                let _ = reply.send(bytes);
                            }
                            Err(e) => tracing::debug!(%context, error = %e, "sync request refused"),
                        }
                    });
                }
            }
            NetworkEvent::PeerConnected(m) => {
                // Status exchange: every context compares tips with the
                // newly reachable member (the actor ignores non-members).
                for handle in node.context_handles() {
                    handle.peer_connected(m);
                }
                tracing::debug!(member = %m, "peer connected");
            }
            NetworkEvent::PeerDisconnected(m) => {
                tracing::debug!(member = %m, "peer disconnected");
            }
        }
    }
}
