//! Swarm events: gossip validation, inbound requests, connections.

use conclave_consensus::MemberId;
use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::request_response::{self, OutboundFailure, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, PeerId};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::actor::Actor;
use crate::behaviour::{BehaviourEvent, REQUEST_STRIKE_SCORE};
use crate::codec::{Frame, RefuseReason, Response};
use crate::error::Error;
use crate::ingress::NetworkEvent;
use crate::lanes::{self, Lane};
use crate::metrics::Counter;

/// Most peers whose request strikes are remembered.
const MAX_STRIKE_ENTRIES: usize = 4096;

impl Actor {
    pub(crate) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Request(event)) => self.on_request(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if member_of_peer(&peer_id).is_some() => {
                // Lets requests dial members met through others.
                for addr in info.listen_addrs {
                    self.swarm.add_peer_address(peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(_) => {}
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } => {
                self.redial.connected(&peer_id);
                let Some(member) = member_of_peer(&peer_id) else {
                    // Only ed25519 identities can be members.
                    debug!(peer = %peer_id, "disconnecting non-member identity");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                };
                self.connected.insert(peer_id, member);
                self.metrics.set_peers(self.swarm.connected_peers().count());
                if num_established.get() == 1 {
                    debug!(%member, "peer connected");
                    self.emit(NetworkEvent::PeerConnected(member));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                endpoint,
                ..
            } => {
                debug!(peer = %peer_id, num_established, ?cause, dialer = endpoint.is_dialer(), "connection closed");
                self.metrics.set_peers(self.swarm.connected_peers().count());
                if num_established == 0 {
                    self.connected.remove(&peer_id);
                    self.heard.remove(&peer_id);
                    self.links.disconnected(&peer_id);
                    self.redial.disconnected(&peer_id, Instant::now());
                    if let Some(member) = member_of_peer(&peer_id) {
                        debug!(%member, "peer disconnected");
                        self.emit(NetworkEvent::PeerDisconnected(member));
                    }
                }
                self.answer_block_waiters();
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                debug!(%peer, %error, "dial failed");
                if !self.swarm.is_connected(&peer) {
                    self.redial.disconnected(&peer, Instant::now());
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                debug!(%address, "listening");
                let addrs: Vec<_> = self.swarm.listeners().cloned().collect();
                for waiter in self.listen_waiters.drain(..) {
                    let _ = waiter.send(addrs.clone());
                }
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            return;
        };
        let Some(context) = self.topics.get(&message.topic).copied() else {
            self.metrics.inc(Counter::MessagesIgnored);
            self.validate(&message_id, &propagation_source, MessageAcceptance::Ignore);
            return;
        };
        let from = message.source.as_ref().and_then(|p| self.member_of(p));
        let is_member = |m: &MemberId| {
            self.contexts
                .get(&context)
                .is_some_and(|joined| joined.members.contains(m))
        };
        match from {
            Some(from) if is_member(&from) && message.data.len() <= self.cfg.max_message_bytes => {
                self.validate(&message_id, &propagation_source, MessageAcceptance::Accept);
                self.heard.insert(propagation_source, Instant::now());
                // Delivered already if it came straight from its sender.
                if self.recent.first_time(&message.data) {
                    self.metrics.inc(Counter::MessagesAccepted);
                    self.emit(NetworkEvent::Message {
                        context,
                        from,
                        data: message.data,
                    });
                }
            }
            _ => {
                warn!(
                    context = %context,
                    source = ?message.source,
                    via = %propagation_source,
                    size = message.data.len(),
                    "rejecting gossip from a non-member or oversized"
                );
                self.metrics.inc(Counter::MessagesRejected);
                self.validate(&message_id, &propagation_source, MessageAcceptance::Reject);
            }
        }
    }

    fn validate(&mut self, id: &gossipsub::MessageId, via: &PeerId, acceptance: MessageAcceptance) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, via, acceptance);
    }

    fn on_request(&mut self, event: request_response::Event<Frame, Response>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.on_inbound(peer, request, channel),
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(done) = self.outbound.remove(&request_id) {
                    let _ = done.send(match response {
                        Response::Answer(data) => Ok(data),
                        Response::Refused(reason) => Err(Error::Refused(reason)),
                    });
                }
            }
            Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(done) = self.outbound.remove(&request_id) {
                    let _ = done.send(Err(match error {
                        OutboundFailure::Timeout => Error::Timeout,
                        other => Error::Request(other),
                    }));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound request failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    /// Checks an inbound request (`lane` is `None`) or a frame of a push
    /// or direct stream: well formed, about a joined context (or the node
    /// scope, for requests), from one of its members. Otherwise says why it
    /// is refused, having penalised the peer where it is at fault.
    fn admit(
        &mut self,
        lane: Option<Lane>,
        peer: PeerId,
        frame: Frame,
    ) -> Result<(MemberId, crate::codec::Request), RefuseReason> {
        let request = match frame {
            Frame::Request(request) => request,
            Frame::Oversized(_) | Frame::Malformed => {
                let reason = if matches!(frame, Frame::Malformed) {
                    RefuseReason::Malformed
                } else {
                    RefuseReason::RequestTooLarge
                };
                warn!(%peer, ?frame, ?lane, "refusing malformed or oversized request");
                self.metrics.inc(Counter::RequestsMalformed);
                if lane == Some(Lane::Direct) {
                    self.metrics.inc(Counter::MessagesRejected);
                }
                self.strike(peer);
                return Err(reason);
            }
        };
        let context = request.context;
        let from = self.member_of(&peer);
        let refusal = match (self.contexts.get(&context), from) {
            (_, Some(_)) if context == crate::NODE_SCOPE && lane.is_none() => None,
            (None, _) => Some(RefuseReason::UnknownContext),
            (Some(joined), Some(m)) if joined.members.contains(&m) => None,
            _ => Some(RefuseReason::NotMember),
        };
        let refusal = refusal.or_else(|| {
            (lane.is_none() && self.inbound.len() >= self.cfg.max_pending_inbound_requests)
                .then_some(RefuseReason::Busy)
        });
        let (Some(from), None) = (from, refusal) else {
            let reason = refusal.unwrap_or(RefuseReason::NotMember);
            debug!(%peer, context = %context, %reason, ?lane, "refusing request");
            self.metrics.inc(Counter::RequestsRefused);
            if lane == Some(Lane::Direct) {
                self.metrics.inc(Counter::MessagesRejected);
            }
            if reason == RefuseReason::NotMember {
                self.strike(peer);
            }
            return Err(reason);
        };
        Ok((from, request))
    }

    fn on_inbound(&mut self, peer: PeerId, frame: Frame, channel: ResponseChannel<Response>) {
        let (from, request) = match self.admit(None, peer, frame) {
            Ok(admitted) => admitted,
            Err(reason) => {
                // Fails only if the requester has gone.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .request
                    .send_response(channel, Response::Refused(reason));
                return;
            }
        };
        self.metrics.inc(Counter::RequestsReceived);
        let (reply, answer) = oneshot::channel();
        self.emit(NetworkEvent::Request {
            context: request.context,
            from,
            data: request.data,
            reply,
        });
        let timeout = self.cfg.request_timeout;
        self.inbound.push(Box::pin(async move {
            let answer = tokio::time::timeout(timeout, answer)
                .await
                .ok()
                .and_then(Result::ok);
            (channel, answer)
        }));
    }

    /// A frame from a member's push or direct stream (`lanes`), checked
    /// as a request is; a refusal goes back on the stream. A push is bulk
    /// (txs); a direct message is consensus, delivered as gossip is, once.
    pub(crate) fn on_lane_frame(&mut self, inbound: lanes::Inbound) {
        let lanes::Inbound {
            peer,
            lane,
            frame,
            refusals,
        } = inbound;
        let (from, request) = match self.admit(Some(lane), peer, frame) {
            Ok(admitted) => admitted,
            Err(reason) => {
                // Only a full queue or a gone stream fails: the refusal is
                // not reported then, the frame is refused all the same.
                let _ = refusals.try_send(reason);
                return;
            }
        };
        if lane == Lane::Direct {
            self.metrics.inc(Counter::DirectReceived);
            self.heard.insert(peer, Instant::now());
            if self.recent.first_time(&request.data) {
                self.metrics.inc(Counter::MessagesAccepted);
                self.emit(NetworkEvent::Message {
                    context: request.context,
                    from,
                    data: request.data,
                });
            }
            return;
        }
        self.metrics.inc(Counter::PushesReceived);
        self.emit(NetworkEvent::Pushed {
            context: request.context,
            from,
            data: request.data,
        });
    }

    /// Lowers a peer's application score for a refused or malformed request.
    pub(crate) fn strike(&mut self, peer: PeerId) {
        if self.strikes.len() >= MAX_STRIKE_ENTRIES {
            // Bound the map against many throwaway identities: forget peers
            // that are gone (gossipsub still retains their score for a while).
            let swarm = &self.swarm;
            self.strikes.retain(|p, _| swarm.is_connected(p));
        }
        let strikes = self.strikes.entry(peer).or_insert(0);
        *strikes = strikes.saturating_add(1);
        let score = f64::from(*strikes) * REQUEST_STRIKE_SCORE;
        self.swarm
            .behaviour_mut()
            .gossipsub
            .set_application_score(&peer, score);
    }
}

fn member_of_peer(peer: &PeerId) -> Option<MemberId> {
    crate::identity::member_of(peer)
}

impl Actor {
    /// The member behind `peer`: known if it is connected, read from the
    /// peer id otherwise.
    fn member_of(&self, peer: &PeerId) -> Option<MemberId> {
        self.connected
            .get(peer)
            .copied()
            .or_else(|| member_of_peer(peer))
    }
}
