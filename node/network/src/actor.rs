//! The swarm loop: one task owns the swarm, serves [`Message`]s from handles,
//! and turns swarm events into [`NetworkEvent`]s (see `events.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use conclave_consensus::{ContextId, MemberId};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use libp2p::gossipsub::{IdentTopic, PublishError, TopicHash};
use libp2p::request_response::{OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::behaviour::{topic_score_params, Behaviour};
use crate::codec::{Frame, RefuseReason, Request, Response};
use crate::config::NetworkConfig;
use crate::error::{Error, Result};
use crate::identity::{self, keypair_from_secret, member_of, peer_id_of, topic_of};
use crate::ingress::{Message, NetworkEvent, NetworkHandle};
use crate::lanes::{self, Inbound, Lane, Links, Queued};
use crate::metrics::{Counter, Metrics};
use crate::redial::Redialer;

/// A peer is reconnected on request at most this often, however many
/// contexts ask.
const RECONNECT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// A peer whose consensus traffic (for any context) came over its
/// connection this recently is not reconnected on request: the connection
/// works, and cutting it would cost every context it carries its streams.
/// A context whose heights are slow on a busy node may not hear a member
/// for a while although the member's other contexts are heard throughout.
const HEARD_LATELY: std::time::Duration = std::time::Duration::from_secs(5);

/// A context this node has joined.
pub(crate) struct Joined {
    pub(crate) topic: IdentTopic,
    pub(crate) members: HashSet<MemberId>,
    /// The other members' peer ids, made once (each is a key
    /// decompression).
    pub(crate) peers: Vec<PeerId>,
}

/// An inbound request waiting for the application: its channel and the
/// application's answer (`None` if dropped or late).
pub(crate) type PendingReply = BoxFuture<'static, (ResponseChannel<Response>, Option<Vec<u8>>)>;

pub(crate) struct Actor {
    pub(crate) cfg: NetworkConfig,
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) commands: mpsc::Receiver<Message>,
    pub(crate) events: mpsc::Sender<NetworkEvent>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) contexts: HashMap<ContextId, Joined>,
    pub(crate) topics: HashMap<TopicHash, ContextId>,
    pub(crate) outbound: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>>>>,
    pub(crate) inbound: FuturesUnordered<PendingReply>,
    pub(crate) strikes: HashMap<PeerId, u32>,
    pub(crate) redial: Redialer,
    /// When each peer was last reconnected on request (rate limit).
    pub(crate) reconnected: HashMap<PeerId, Instant>,
    /// When consensus traffic (a direct frame or accepted gossip) last came
    /// over each connected peer's connection; forgotten when it closes.
    pub(crate) heard: HashMap<PeerId, Instant>,
    pub(crate) listen_waiters: Vec<oneshot::Sender<Vec<Multiaddr>>>,
    /// Callers of `set_blocked` waiting until no connection to the peers
    /// they blocked is left.
    pub(crate) block_waiters: Vec<(Vec<PeerId>, oneshot::Sender<Result<()>>)>,
    /// Consensus messages delivered lately (each comes by gossip and
    /// directly).
    pub(crate) recent: crate::recent::Recent,
    /// The member behind each connected peer, read from its peer id once
    /// when it connects rather than for each message it sends.
    pub(crate) connected: HashMap<PeerId, MemberId>,
    /// The push and direct streams to each member.
    pub(crate) links: Links,
    /// Frames read from members' push and direct streams.
    pub(crate) lane_frames: mpsc::Receiver<Inbound>,
}

/// Consensus messages remembered to deliver each once.
const RECENT_MESSAGES: usize = 8192;

/// Starts the network actor on the current tokio runtime.
///
/// `secret` is the member's ed25519 secret key; it becomes the node's libp2p
/// identity. Static peers must carry `/p2p/<peer id>`. Fails with
/// [`Error::NoRuntime`] outside a tokio runtime.
pub fn spawn(
    cfg: NetworkConfig,
    secret: [u8; 32],
) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>)> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
    let keypair = keypair_from_secret(secret)?;
    let local = member_of(&keypair.public().to_peer_id()).ok_or(Error::InvalidSecret)?;
    let behaviour = Behaviour::new(&keypair, &cfg)?;
    let mut swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| behaviour)
        .map_err(|e| Error::Setup(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(cfg.idle_connection_timeout))
        .build();
    swarm.listen_on(cfg.listen.clone())?;

    let now = Instant::now();
    let mut redial = Redialer::new(cfg.redial_initial, cfg.redial_max);
    for addr in &cfg.static_peers {
        let peer =
            identity::peer_in_addr(addr).ok_or_else(|| Error::MissingPeerId(addr.clone()))?;
        let addr = identity::strip_peer(addr);
        swarm.add_peer_address(peer, addr.clone());
        redial.add(peer, addr, now);
    }

    let (sender, commands) = mpsc::channel(cfg.command_capacity.max(1));
    let (events, receiver) = mpsc::channel(cfg.event_capacity.max(1));
    let metrics = Arc::new(Metrics::default());
    let mut control = swarm.behaviour().streams.new_control();
    let (lane_sender, lane_frames) = mpsc::channel(cfg.event_capacity.max(1));
    let framed = |max: usize| max.saturating_add(crate::codec::CONTEXT_LEN);
    lanes::accept(
        &mut control,
        Lane::Push,
        framed(cfg.max_request_bytes),
        lane_sender.clone(),
    )?;
    lanes::accept(
        &mut control,
        Lane::Direct,
        framed(cfg.max_message_bytes),
        lane_sender,
    )?;
    let links = Links::new(control, metrics.clone(), cfg.request_timeout);
    let actor = Actor {
        cfg,
        swarm,
        commands,
        events,
        metrics: metrics.clone(),
        connected: HashMap::new(),
        contexts: HashMap::new(),
        topics: HashMap::new(),
        outbound: HashMap::new(),
        inbound: FuturesUnordered::new(),
        strikes: HashMap::new(),
        recent: crate::recent::Recent::new(RECENT_MESSAGES),
        redial,
        reconnected: HashMap::new(),
        heard: HashMap::new(),
        listen_waiters: Vec::new(),
        block_waiters: Vec::new(),
        links,
        lane_frames,
    };
    info!(member = %local, "network starting");
    runtime.spawn(actor.run());
    Ok((
        NetworkHandle {
            sender,
            local,
            metrics,
        },
        receiver,
    ))
}

impl Actor {
    async fn run(mut self) {
        let ack = self.event_loop().await;
        // Close listeners and connections before acknowledging a shutdown, so
        // a restart can bind the same port.
        drop(self);
        if let Some(ack) = ack {
            let _ = ack.send(());
        }
    }

    async fn event_loop(&mut self) -> Option<oneshot::Sender<()>> {
        loop {
            let deadline = self.redial.next_deadline();
            tokio::select! {
                command = self.commands.recv() => match command {
                    None => return None,
                    Some(Message::Shutdown { done }) => return Some(done),
                    Some(command) => self.on_command(command),
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some((channel, answer)) = self.inbound.next(), if !self.inbound.is_empty() => {
                    self.answer(channel, answer);
                }
                Some(frame) = self.lane_frames.recv() => self.on_lane_frame(frame),
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)),
                    if deadline.is_some() => self.redial_due(),
            }
        }
    }

    fn redial_due(&mut self) {
        for (peer, addr) in self.redial.due(Instant::now()) {
            if self.swarm.is_connected(&peer) {
                self.redial.connected(&peer);
                continue;
            }
            debug!(%peer, %addr, "dialling static peer");
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![addr])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(error) = self.swarm.dial(opts) {
                debug!(%peer, %error, "static dial failed");
                self.redial.disconnected(&peer, Instant::now());
            }
        }
    }

    fn on_command(&mut self, command: Message) {
        match command {
            Message::Join {
                context,
                members,
                done,
            } => {
                let _ = done.send(self.join(context, members));
            }
            Message::Leave { context, done } => {
                if let Some(joined) = self.contexts.remove(&context) {
                    self.topics.remove(&joined.topic.hash());
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .unsubscribe(&joined.topic);
                }
                let _ = done.send(Ok(()));
            }
            Message::Publish {
                context,
                data,
                done,
            } => {
                let _ = done.send(self.publish(context, data));
            }
            Message::Request {
                peer,
                context,
                data,
                done,
            } => self.request(peer, context, data, done),
            Message::Push {
                context,
                data,
                done,
            } => {
                let _ = done.send(self.push(context, data));
            }
            Message::Peers { done } => {
                let peers = self.swarm.connected_peers().filter_map(member_of).collect();
                let _ = done.send(peers);
            }
            Message::TopicPeers { context, done } => {
                let topic = topic_of(&context).hash();
                let peers = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&topic))
                    .filter_map(|(peer, _)| member_of(peer))
                    .collect();
                let _ = done.send(peers);
            }
            Message::PeerScore { peer, done } => {
                let score = peer_id_of(&peer)
                    .ok()
                    .and_then(|p| self.swarm.behaviour().gossipsub.peer_score(&p));
                let _ = done.send(score);
            }
            Message::ListenAddrs { done } => {
                let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                if addrs.is_empty() {
                    self.listen_waiters.push(done);
                } else {
                    let _ = done.send(addrs);
                }
            }
            Message::Dial { addr, done } => {
                let _ = done.send(self.swarm.dial(addr).map_err(Error::from));
            }
            Message::SetBlocked { peers, done } => match self.set_blocked(peers) {
                // Answered once their connections have closed (blocking
                // starts closing them), so a caller cut off is cut off.
                Ok(blocked) => {
                    self.block_waiters.push((blocked, done));
                    self.answer_block_waiters();
                }
                Err(e) => {
                    let _ = done.send(Err(e));
                }
            },
            Message::Penalise { peer } => {
                if let Ok(peer) = peer_id_of(&peer) {
                    self.metrics.inc(Counter::Penalties);
                    self.strike(peer);
                }
            }
            Message::Reconnect { peer } => {
                let Ok(peer) = peer_id_of(&peer) else { return };
                let now = Instant::now();
                let recent = self
                    .reconnected
                    .get(&peer)
                    .is_some_and(|t| now.duration_since(*t) < RECONNECT_EVERY);
                if recent || !self.swarm.is_connected(&peer) {
                    return;
                }
                if let Some(heard) = self.heard.get(&peer) {
                    let ago = now.duration_since(*heard);
                    if ago < HEARD_LATELY {
                        debug!(%peer, ago_ms = ago.as_millis() as u64,
                            "not reconnecting a peer heard from lately");
                        self.metrics.inc(Counter::ReconnectsSkipped);
                        return;
                    }
                }
                // Its gossipsub score says whether it is ignored (below
                // the graylist threshold) or just not heard.
                let score = self.swarm.behaviour().gossipsub.peer_score(&peer);
                info!(%peer, ?score, "reconnecting a peer whose gossip went silent");
                self.metrics.inc(Counter::Reconnects);
                self.reconnected.insert(peer, now);
                let _ = self.swarm.disconnect_peer_id(peer);
                self.redial.reset(&peer, now);
            }
            // Handled by the loop.
            Message::Shutdown { .. } => {}
        }
    }

    /// Blocks exactly `peers`; which they are.
    fn set_blocked(&mut self, peers: Vec<MemberId>) -> Result<Vec<PeerId>> {
        let wanted = peers
            .iter()
            .map(peer_id_of)
            .collect::<Result<std::collections::HashSet<PeerId>>>()?;
        let blocked = &mut self.swarm.behaviour_mut().blocked;
        let before: Vec<PeerId> = blocked.blocked_peers().iter().copied().collect();
        let now = Instant::now();
        for peer in before.iter().filter(|p| !wanted.contains(p)) {
            self.swarm.behaviour_mut().blocked.unblock_peer(*peer);
            self.redial.reset(peer, now);
        }
        for peer in &wanted {
            self.swarm.behaviour_mut().blocked.block_peer(*peer);
        }
        Ok(wanted.into_iter().collect())
    }

    /// Answers the `set_blocked` callers none of whose blocked peers is
    /// connected any more.
    pub(crate) fn answer_block_waiters(&mut self) {
        let swarm = &self.swarm;
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.block_waiters)
            .into_iter()
            .partition(|(peers, _)| peers.iter().all(|p| !swarm.is_connected(p)));
        self.block_waiters = waiting;
        for (_, answer) in done {
            let _ = answer.send(Ok(()));
        }
    }

    fn join(&mut self, context: ContextId, members: Vec<MemberId>) -> Result<()> {
        let topic = topic_of(&context);
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        if !self.contexts.contains_key(&context) {
            gossipsub.subscribe(&topic)?;
            gossipsub
                .set_topic_params(topic.clone(), topic_score_params())
                .map_err(|e| Error::Setup(e.to_owned()))?;
            self.topics.insert(topic.hash(), context);
        }
        info!(context = %context, members = members.len(), "joined context");
        let me = *self.swarm.local_peer_id();
        let peers = members
            .iter()
            .filter_map(|m| peer_id_of(m).ok())
            .filter(|p| *p != me)
            .collect();
        self.contexts.insert(
            context,
            Joined {
                topic,
                members: members.into_iter().collect(),
                peers,
            },
        );
        Ok(())
    }

    fn publish(&mut self, context: ContextId, data: Vec<u8>) -> Result<()> {
        let joined = self
            .contexts
            .get(&context)
            .ok_or(Error::NotJoined(context))?;
        let max = self.cfg.max_message_bytes;
        if data.len() > max {
            return Err(Error::TooLarge {
                size: data.len(),
                max,
            });
        }
        let topic = joined.topic.clone();
        let direct = self.send_direct(context, &data);
        if direct.others > 0 && direct.streaming == direct.others {
            // Every other member was reached straight: gossip would only
            // send each a second copy. It relays when a link is down or
            // still opening.
            return Ok(());
        }
        match self.swarm.behaviour_mut().gossipsub.publish(topic, data) {
            Ok(_) => Ok(()),
            Err(PublishError::NoPeersSubscribedToTopic) if direct.queued > 0 => Ok(()),
            Err(PublishError::NoPeersSubscribedToTopic) => {
                self.metrics.inc(Counter::PublishNoPeers);
                Err(Error::NoPeers(context))
            }
            Err(PublishError::Duplicate) => Err(Error::Duplicate),
            Err(PublishError::MessageTooLarge) => Err(Error::TooLarge {
                size: max.saturating_add(1),
                max,
            }),
            Err(other) => Err(Error::Publish(other)),
        }
    }

    /// Sends a consensus message straight to each connected member of
    /// `context` (see `Behaviour::direct`).
    fn send_direct(&mut self, context: ContextId, data: &[u8]) -> Direct {
        let mut direct = Direct::default();
        let Some(joined) = self.contexts.get(&context) else {
            return direct;
        };
        direct.others = joined.peers.len();
        let peers: Vec<PeerId> = joined
            .peers
            .iter()
            .copied()
            .filter(|p| self.swarm.is_connected(p))
            .collect();
        let Some(frame) = crate::codec::encode_request(&context, data).map(Arc::new) else {
            return direct;
        };
        for peer in peers {
            match self.links.send(peer, Lane::Direct, frame.clone()) {
                Queued::Streaming => {
                    direct.streaming += 1;
                    direct.queued += 1;
                }
                Queued::Opening => direct.queued += 1,
                Queued::Dropped => {}
            }
        }
        direct
    }

    fn push(&mut self, context: ContextId, data: Vec<u8>) -> Result<usize> {
        let joined = self
            .contexts
            .get(&context)
            .ok_or(Error::NotJoined(context))?;
        let max = self.cfg.max_request_bytes;
        if data.len() > max {
            return Err(Error::TooLarge {
                size: data.len(),
                max,
            });
        }
        let peers: Vec<PeerId> = joined
            .peers
            .iter()
            .copied()
            .filter(|p| self.swarm.is_connected(p))
            .collect();
        let Some(frame) = crate::codec::encode_request(&context, &data).map(Arc::new) else {
            return Err(Error::TooLarge {
                size: data.len(),
                max,
            });
        };
        let sent = peers
            .iter()
            .filter(|peer| self.links.send(**peer, Lane::Push, frame.clone()) != Queued::Dropped)
            .count();
        self.metrics
            .add(Counter::PushesSent, u64::try_from(sent).unwrap_or(u64::MAX));
        Ok(sent)
    }

    fn request(
        &mut self,
        peer: MemberId,
        context: ContextId,
        data: Vec<u8>,
        done: oneshot::Sender<Result<Vec<u8>>>,
    ) {
        let max = self.cfg.max_request_bytes;
        let peer_id = match peer_id_of(&peer) {
            Ok(_) if context != crate::NODE_SCOPE && !self.contexts.contains_key(&context) => {
                Err(Error::NotJoined(context))
            }
            Ok(_) if data.len() > max => Err(Error::TooLarge {
                size: data.len(),
                max,
            }),
            other => other,
        };
        match peer_id {
            Ok(peer_id) => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .request
                    .send_request(&peer_id, Frame::Request(Request { context, data }));
                self.outbound.insert(id, done);
            }
            Err(e) => {
                let _ = done.send(Err(e));
            }
        }
    }

    fn answer(&mut self, channel: ResponseChannel<Response>, answer: Option<Vec<u8>>) {
        let response = match answer {
            Some(data) if data.len() > self.cfg.max_message_bytes => {
                warn!(
                    size = data.len(),
                    "application reply exceeds the response limit"
                );
                Response::Refused(RefuseReason::ResponseTooLarge)
            }
            Some(data) => Response::Answer(data),
            None => Response::Refused(RefuseReason::Unavailable),
        };
        // Fails only if the requester has gone; nothing to do then.
        let _ = self
            .swarm
            .behaviour_mut()
            .request
            .send_response(channel, response);
    }

    /// Hands an event to the application, dropping it if the app is behind.
    pub(crate) fn emit(&mut self, event: NetworkEvent) {
        if let Err(error) = self.events.try_send(event) {
            self.metrics.inc(Counter::EventsDropped);
            debug!(%error, "application event queue full; event dropped");
        }
    }
}

/// Where a consensus message sent straight to the members went.
#[derive(Default)]
struct Direct {
    /// Other members of the context.
    others: usize,
    /// Queued on a stream already open.
    streaming: usize,
    /// Queued at all (open streams and streams being opened).
    queued: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_outside_tokio_is_an_error() {
        let result = spawn(NetworkConfig::default(), [1; 32]);
        assert!(matches!(result, Err(Error::NoRuntime)));
    }

    #[tokio::test]
    async fn static_peers_need_a_peer_id() {
        let cfg = NetworkConfig {
            static_peers: vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()],
            ..NetworkConfig::default()
        };
        assert!(matches!(spawn(cfg, [1; 32]), Err(Error::MissingPeerId(_))));
    }
}
