//! A byzantine member among four validators (RELIABILITY.md scenarios
//! 9–11). Three honest `conclave` processes run; the fourth member is played
//! by the test itself: an in-process `conclave-network` peer with that
//! member's key, on that member's address, speaking the gossip wire format
//! with intent. It proposes two blocks for one round, precommits garbage,
//! and sends malformed frames; a peer with a fresh key that is no member
//! publishes on the context's topic. Three of four members are a quorum, so
//! after each the honest nodes keep committing, and hold identical blocks
//! and state roots at every height.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conclave_consensus::codec::{
    decode_vote, encode_proposal, encode_vote, proposal_sign_bytes, sign, vote_sign_bytes,
};
use conclave_consensus::mal::{NilOrVal, Round, SignedMessage, VoteType};
use conclave_consensus::{
    Block, ContextId, Hash32, Height, MemberId, Proposal, Tx, ValidatorSet, Vote,
};
use conclave_network::{Multiaddr, NetworkConfig, NetworkEvent, NetworkHandle};
use conclave_node::context::wire::Wire;
use conclave_node::node::GenesisFile;
use conclave_node::rpc::types::BlockView;
use conclave_node::rpc::{ConclaveApiClient, DebugApiClient, EvidenceApiClient};
use conclave_node::seal::{ContextKey, Purpose};
use conclave_tests::{NetOptions, TestNet, TestNode};
use ed25519_dalek::SigningKey;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::{assert_agreement, converge, load, COMMIT_TIMEOUT};

/// Index of the member the test plays.
pub(crate) const BYZ: usize = 3;

/// Four members, the last one not started.
pub(crate) async fn byzantine_net() -> TestNet {
    TestNet::start_partial(4, 3, NetOptions::default(), |_| {}).await
}

fn members(net: &TestNet) -> Vec<MemberId> {
    net.nodes.iter().map(|n| n.keys().member_id()).collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn random_hash(rng: &mut ChaCha20Rng) -> Hash32 {
    let mut h = [0u8; 32];
    rng.fill_bytes(&mut h);
    Hash32(h)
}

fn random_bytes(rng: &mut ChaCha20Rng, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    rng.fill_bytes(&mut b);
    b
}

/// A prevote a node gossiped (not verified: the test trusts its own nodes).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Seen {
    voter: MemberId,
    height: u64,
    round: i64,
    value: Option<Hash32>,
}

/// A peer on the context's topic that says what the test tells it to.
pub(crate) struct Peer {
    net: NetworkHandle,
    key: SigningKey,
    me: MemberId,
    context: ContextId,
    seq: u64,
    /// The context key, for a member (from its genesis file); an outsider
    /// has none and sends unsealed frames.
    sealing: Option<ContextKey>,
    /// Prevotes the honest nodes gossiped, in arrival order.
    prevotes: Arc<Mutex<Vec<Seen>>>,
    /// Every gossip payload received, as it arrived (bounded).
    pub(crate) received: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// Member `index`'s copy of the context key, opened from the genesis file
/// `conclave testnet` wrote into its home.
pub fn member_context_key(net: &TestNet, index: usize) -> ContextKey {
    let home = net.nodes[index].home();
    let path = home
        .join("genesis")
        .join(format!("{}.json", net.context.to_hex()));
    let file: GenesisFile =
        serde_json::from_str(&std::fs::read_to_string(path).expect("genesis file")).unwrap();
    let keys = net.nodes[index].keys();
    let (_, sealed) = file
        .sealed_keys
        .iter()
        .find(|(m, _)| *m == keys.member_id())
        .expect("a key sealed to the member");
    conclave_node::seal::open_key(&keys.member, &net.context, 0, sealed).expect("opens")
}

impl Peer {
    /// Plays member `index` of `net`: its key, its listen address (where
    /// the honest nodes already redial it), its peers.
    pub(crate) async fn member(net: &TestNet, index: usize) -> Self {
        let home = &net.nodes[index];
        let config = conclave_node::config::Config::load(home.home()).expect("config");
        let mut cfg = NetworkConfig::new(config.p2p.listen.parse().expect("listen addr"));
        cfg.static_peers = parse_addrs(&config.p2p.persistent_peers);
        // Lets the test publish frames larger than the nodes accept.
        cfg.max_message_bytes = 6 * 1024 * 1024;
        // A message leaves the gossip cache after five heartbeats: this
        // keeps a proposal meant for one half from reaching the other
        // later through gossip. Partitions heal quickly with short redials.
        cfg.heartbeat_interval = Duration::from_millis(100);
        cfg.redial_max = Duration::from_secs(1);
        let key = member_context_key(net, index);
        Self::start(net, cfg, home.keys().member, members(net), Some(key)).await
    }

    /// A peer whose fresh key is no member of the context. It admits
    /// itself as a publisher locally, so only the nodes' checks stop it.
    pub(crate) async fn outsider(net: &TestNet, seed: u64) -> Self {
        let mut secret = [0u8; 32];
        ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut secret);
        let key = SigningKey::from_bytes(&secret);
        let static_peers = net
            .nodes
            .iter()
            .filter(|n| n.is_running())
            .flat_map(|n| {
                let c = conclave_node::config::Config::load(n.home()).expect("config");
                let peer = conclave_network::peer_id_of(&n.keys().member_id()).unwrap();
                parse_addrs(&[format!("{}/p2p/{peer}", c.p2p.listen)])
            })
            .collect();
        let cfg = NetworkConfig {
            static_peers,
            ..NetworkConfig::default()
        };
        let mut publishers = members(net);
        publishers.push(MemberId(key.verifying_key().to_bytes()));
        Self::start(net, cfg, key, publishers, None).await
    }

    async fn start(
        net: &TestNet,
        cfg: NetworkConfig,
        key: SigningKey,
        publishers: Vec<MemberId>,
        sealing: Option<ContextKey>,
    ) -> Self {
        let (handle, mut events) = conclave_network::spawn(cfg, key.to_bytes()).expect("network");
        // The peer only watches prevotes; dropping a request's reply
        // refuses it (the nodes ask it for sync).
        let prevotes = Arc::new(Mutex::new(Vec::new()));
        let received = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn({
            let prevotes = prevotes.clone();
            let received = received.clone();
            let opener = sealing.clone();
            let ctx = net.context;
            async move {
                while let Some(event) = events.recv().await {
                    let NetworkEvent::Message { from, data, .. } = event else {
                        continue;
                    };
                    {
                        let mut all = received.lock().unwrap();
                        if all.len() < 20_000 {
                            all.push(data.clone());
                        }
                    }
                    let Some(Ok(data)) = opener
                        .as_ref()
                        .map(|k| k.open(&ctx, Purpose::Gossip, &data))
                    else {
                        continue;
                    };
                    let Ok(Wire::Vote(bytes)) = Wire::decode(&data) else {
                        continue;
                    };
                    let Ok(vote) = decode_vote(&bytes) else {
                        continue;
                    };
                    let v = vote.message;
                    let mut seen = prevotes.lock().unwrap();
                    if v.typ == VoteType::Prevote && v.validator == from && seen.len() < 100_000 {
                        let value = match v.value {
                            NilOrVal::Val(h) => Some(h),
                            NilOrVal::Nil => None,
                        };
                        seen.push(Seen {
                            voter: from,
                            height: v.height.0,
                            round: v.round.as_i64(),
                            value,
                        });
                    }
                }
            }
        });
        handle
            .join(net.context, publishers)
            .await
            .expect("join topic");
        let running = net.nodes.iter().filter(|n| n.is_running()).count();
        let deadline = Instant::now() + COMMIT_TIMEOUT;
        while handle.topic_peers(net.context).await.len() < running {
            assert!(
                Instant::now() < deadline,
                "honest nodes did not join the peer's topic"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            me: MemberId(key.verifying_key().to_bytes()),
            net: handle,
            key,
            context: net.context,
            seq: 0,
            sealing,
            prevotes,
            received,
        }
    }

    /// Waits for `voter`'s first round-0 prevote at `height` and returns
    /// its value.
    async fn first_prevote(&self, voter: MemberId, height: Height) -> Option<Hash32> {
        let deadline = Instant::now() + COMMIT_TIMEOUT;
        loop {
            let seen = self
                .prevotes
                .lock()
                .unwrap()
                .iter()
                .find(|s| s.voter == voter && s.height == height.0 && s.round == 0)
                .copied();
            if let Some(s) = seen {
                return s.value;
            }
            assert!(
                Instant::now() < deadline,
                "{voter} never prevoted at {height}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until exactly `peers` are connected and on the topic.
    async fn wait_topic_peers(&self, peers: &[MemberId]) {
        let mut want = peers.to_vec();
        want.sort();
        let deadline = Instant::now() + COMMIT_TIMEOUT;
        loop {
            let mut got = self.net.topic_peers(self.context).await;
            got.sort();
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "topic peers {got:?}, want {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Publishes raw bytes on the topic.
    async fn send_raw(&mut self, data: Vec<u8>) -> conclave_network::Result<()> {
        self.net.publish(self.context, data).await
    }

    /// Seals `frame` with the context key (if this peer has one).
    fn seal(&self, frame: &[u8]) -> Vec<u8> {
        match &self.sealing {
            Some(key) => key.seal(&self.context, Purpose::Gossip, frame),
            None => frame.to_vec(),
        }
    }

    /// Publishes `frame` sealed (a member's malformed content behind a
    /// valid envelope).
    async fn send_sealed(&mut self, frame: &[u8]) {
        let sealed = self.seal(frame);
        self.send_raw(sealed).await.expect("publish");
    }

    /// Publishes a framed wire message, sealed.
    async fn send(&mut self, wire: &Wire) {
        self.seq += 1;
        let frame = wire.encode(self.seq);
        self.send_sealed(&frame).await;
    }

    fn proposal(&self, ctx: ContextId, height: Height, round: Round, block: &Block) -> Vec<u8> {
        let p = Proposal {
            height,
            round,
            value: block.hash(),
            pol_round: Round::Nil,
            proposer: self.me,
        };
        let sig = sign(&self.key, &proposal_sign_bytes(&ctx, &p));
        encode_proposal(&SignedMessage::new(p, sig))
    }

    /// A precommit by `validator` signed with this peer's key.
    fn precommit(
        &self,
        height: u64,
        round: Round,
        value: Option<Hash32>,
        validator: MemberId,
    ) -> Vec<u8> {
        let vote = Vote {
            typ: VoteType::Precommit,
            height: Height(height),
            round,
            value: value.map_or(NilOrVal::Nil, NilOrVal::Val),
            validator,
            extension: None,
        };
        let sig = sign(&self.key, &vote_sign_bytes(&self.context, &vote));
        encode_vote(&SignedMessage::new(vote, sig))
    }
}

fn parse_addrs(addrs: &[String]) -> Vec<Multiaddr> {
    addrs
        .iter()
        .map(|a| a.parse().expect("peer multiaddr"))
        .collect()
}

/// An empty block on top of `parent` by `proposer`. Executing no txs
/// writes nothing, so the parent's state root still holds, and a `kv`
/// block requests no on-chain actions, so its actions root is the empty
/// one: the block is valid.
fn empty_block(parent: &BlockView, proposer: MemberId, time_ms: u64) -> Block {
    let mut header = parent.header.clone();
    header.height = Height(parent.header.height.0 + 1);
    header.parent_hash = parent.hash;
    header.time_ms = time_ms;
    header.proposer = proposer;
    let mut block = Block {
        header,
        txs: Vec::new(),
    };
    block.header.txs_root = block.compute_txs_root();
    block
}

/// Every honest node still serves, and none logged a panic.
async fn assert_healthy(net: &TestNet) {
    for (i, node) in net.nodes.iter().enumerate().filter(|(_, n)| n.is_running()) {
        assert!(
            node.client().node_health().await.is_ok(),
            "node {i} stopped serving; log:\n{}",
            node.log()
        );
        let log = node.log();
        assert!(!log.contains("panicked"), "node {i} panicked:\n{log}");
    }
}

/// Whether any honest node logged `needle`.
fn logged(net: &TestNet, needle: &str) -> bool {
    net.nodes
        .iter()
        .filter(|n| n.is_running())
        .any(|n| n.log().contains(needle))
}

/// Scenario 9. Each time the byzantine member is the round-0 proposer of
/// the next height it signs two proposals for it, naming two different
/// valid blocks. Tendermint's safety argument (L36/L49: a commit needs a
/// polka and 2f+1 precommits for one value) leaves at most one of them
/// committed, and every honest node commits the same one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_proposals_commit_at_most_one_block() {
    let net = byzantine_net().await;
    let mut byz = Peer::member(&net, BYZ).await;
    load(&net, 3).await;
    let validators = ValidatorSet::from_members(&members(&net)).unwrap();
    let node0 = net.nodes[0].client();

    let mut equivocations = Vec::new();
    for _ in 0..16 {
        if equivocations.len() == 2 {
            break;
        }
        let tip = converge(&net).await;
        let height = Height(tip + 1);
        if validators
            .proposer(&net.context, height, Round::new(0))
            .address
            != byz.me
        {
            load(&net, 1).await;
            continue;
        }
        let parent = node0.block_get(net.context, Some(tip)).await.unwrap();
        let time = now_ms().max(parent.header.time_ms + 1);
        let a = empty_block(&parent, byz.me, time);
        let b = empty_block(&parent, byz.me, time + 1);
        assert_ne!(a.hash(), b.hash());
        for block in [&a, &b] {
            let proposal = byz.proposal(net.context, height, Round::new(0), block);
            byz.send(&Wire::Proposal {
                proposal,
                block: block.clone(),
            })
            .await;
        }
        // The honest members' own txs commit, at this height or later.
        load(&net, 3).await;
        equivocations.push((height, a.hash(), b.hash()));
    }
    assert_eq!(
        equivocations.len(),
        2,
        "the byzantine member never proposed"
    );

    converge(&net).await;
    let tip = assert_agreement(&net).await;
    for (height, a, b) in &equivocations {
        assert!(tip >= height.0);
        let committed = node0.block_get(net.context, Some(height.0)).await.unwrap();
        // Either one of the two (all honest members prevoted the one they
        // saw first), or a later round's honest block.
        assert!(
            committed.hash == *a || committed.hash == *b || committed.header.proposer != byz.me,
            "height {height}: committed {} from the byzantine member, neither proposal",
            committed.hash
        );
    }
    // The honest nodes keep both signed proposals as evidence, served over
    // RPC, which anyone holding the member set can check again.
    let mut proven = 0;
    for node in net.nodes.iter().filter(|n| n.is_running()) {
        let list = node
            .client()
            .evidence_list(net.context, None)
            .await
            .unwrap();
        for view in &list {
            assert_eq!(
                view.offender, byz.me,
                "only the byzantine member is accused"
            );
            assert!(view.verified);
            let evidence = view.evidence().unwrap();
            evidence.verify(&net.context, &members(&net)).unwrap();
            assert_eq!(evidence.kind, conclave_consensus::EvidenceKind::Proposal);
            proven += 1;
        }
    }
    assert!(
        proven > 0,
        "no honest node kept evidence of the double proposal"
    );
    assert_healthy(&net).await;
}

async fn block(net: &TestNet, node: usize, peers: Vec<MemberId>) {
    net.nodes[node]
        .client()
        .debug_set_blocked_peers(peers)
        .await
        .unwrap();
}

/// Scenario 9 with the two proposals sent to two halves. The fault-injecting
/// transport cuts node 0 off while the byzantine proposer shows block A to
/// nodes 1 and 2, then cuts those two off while it shows block B to node 0.
/// A has two prevotes and B one: neither has a polka (L36), so round 0
/// decides nothing and a later round's honest proposal is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_proposals_to_two_halves_commit_neither() {
    let net = TestNet::start_partial(4, 3, NetOptions::default(), |c| {
        c.debug.fault_injection = true
    })
    .await;
    let mut byz = Peer::member(&net, BYZ).await;
    let ids = members(&net);
    let validators = ValidatorSet::from_members(&ids).unwrap();
    let node0 = net.nodes[0].client();
    load(&net, 2).await;
    let mut tip = converge(&net).await;
    for _ in 0..8 {
        if validators
            .proposer(&net.context, Height(tip + 1), Round::new(0))
            .address
            == byz.me
        {
            break;
        }
        load(&net, 1).await;
        tip = converge(&net).await;
    }
    let height = Height(tip + 1);
    assert_eq!(
        validators
            .proposer(&net.context, height, Round::new(0))
            .address,
        byz.me,
        "the byzantine member's turn never came"
    );
    let parent = node0.block_get(net.context, Some(tip)).await.unwrap();
    let time = now_ms().max(parent.header.time_ms + 1);
    let a = empty_block(&parent, byz.me, time);
    let b = empty_block(&parent, byz.me, time + 1);

    // Half one: nodes 1 and 2, with the byzantine member; node 0 alone.
    block(&net, 0, vec![ids[1], ids[2], byz.me]).await;
    block(&net, 1, vec![ids[0]]).await;
    block(&net, 2, vec![ids[0]]).await;
    byz.wait_topic_peers(&[ids[1], ids[2]]).await;
    let proposal = byz.proposal(net.context, height, Round::new(0), &a);
    byz.send(&Wire::Proposal {
        proposal,
        block: a.clone(),
    })
    .await;
    for i in [1, 2] {
        assert_eq!(byz.first_prevote(ids[i], height).await, Some(a.hash()));
    }

    // Half two: node 0, with the byzantine member.
    block(&net, 1, vec![ids[0], byz.me]).await;
    block(&net, 2, vec![ids[0], byz.me]).await;
    block(&net, 0, vec![ids[1], ids[2]]).await;
    byz.wait_topic_peers(&[ids[0]]).await;
    let proposal = byz.proposal(net.context, height, Round::new(0), &b);
    byz.send(&Wire::Proposal {
        proposal,
        block: b.clone(),
    })
    .await;
    let node0_prevoted = byz.first_prevote(ids[0], height).await;

    for i in 0..3 {
        block(&net, i, Vec::new()).await;
    }
    load(&net, 3).await;
    converge(&net).await;
    let tip = assert_agreement(&net).await;
    assert!(tip >= height.0);
    let committed = node0.block_get(net.context, Some(height.0)).await.unwrap();
    if node0_prevoted == Some(b.hash()) {
        // Each half prevoted what it was shown.
        assert!(
            committed.hash != a.hash() && committed.hash != b.hash(),
            "height {height}: a block without a polka was committed"
        );
        assert!(committed.certificate_round >= 1);
        assert_ne!(committed.header.proposer, byz.me);
    } else {
        // Node 0 got A first after all (gossip outlived the cut): A may
        // have its polka, and the halves still agree (above).
        assert!(committed.hash != b.hash(), "B committed with one prevote");
    }
    assert_healthy(&net).await;
}

/// Sends one batch of garbage precommits about `height`.
async fn garbage_precommits(byz: &mut Peer, rng: &mut ChaCha20Rng, height: u64, honest: MemberId) {
    let me = byz.me;
    let round = Round::new(rng.gen_range(0..3));
    let mut votes = vec![
        // Correctly signed, for a block nobody proposed, in this and the
        // next rounds (also a double vote at each).
        byz.precommit(height, round, Some(random_hash(rng)), me),
        byz.precommit(height, round, Some(random_hash(rng)), me),
        byz.precommit(
            height,
            Round::new(round.as_u32().unwrap_or(0) + 1),
            None,
            me,
        ),
        // Far-future heights and rounds.
        byz.precommit(
            height + 1_000_000,
            Round::new(0),
            Some(random_hash(rng)),
            me,
        ),
        byz.precommit(u64::MAX, Round::new(0), Some(random_hash(rng)), me),
        byz.precommit(height, Round::new(1_000_000), Some(random_hash(rng)), me),
        byz.precommit(height, Round::new(u32::MAX), Some(random_hash(rng)), me),
        // The nil round, which no vote may carry.
        byz.precommit(height, Round::Nil, Some(random_hash(rng)), me),
        // An honest member's name under the byzantine member's signature.
        byz.precommit(height, round, Some(random_hash(rng)), honest),
    ];
    // A random signature.
    let mut forged = byz.precommit(height, round, Some(random_hash(rng)), me);
    let len = forged.len();
    rng.fill_bytes(&mut forged[len - 65..len - 1]);
    votes.push(forged);
    // An unparseable signature field: a vote truncated inside it.
    let short = byz.precommit(height, round, None, me);
    votes.push(short[..short.len() - 30].to_vec());
    for vote in votes {
        byz.send(&Wire::Vote(vote)).await;
    }
}

/// Scenario 10. While the honest members commit, the byzantine member
/// precommits garbage at every height: random values, far-future heights
/// and rounds, forged and unparseable signatures. A precommit counts only
/// with a valid signature of a member, and one member's weight is short of
/// both f+1 (a round skip, L55) and 2f+1 (a commit, L49).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_precommits_do_not_stop_the_chain() {
    let net = byzantine_net().await;
    let mut byz = Peer::member(&net, BYZ).await;
    load(&net, 2).await;
    let before = assert_agreement(&net).await;

    let stop = Arc::new(AtomicBool::new(false));
    let node0 = net.nodes[0].client();
    let ctx = net.context;
    let honest = net.nodes[0].keys().member_id();
    let garbage = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut rng = ChaCha20Rng::seed_from_u64(10);
            let mut batches = 0u32;
            // Bounded in count as well as by the stop flag.
            while !stop.load(Ordering::Relaxed) && batches < 2_000 {
                let tip = node0.context_info(ctx).await.unwrap().height;
                garbage_precommits(&mut byz, &mut rng, tip + 1, honest).await;
                batches += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            batches
        }
    });

    load(&net, 12).await;
    stop.store(true, Ordering::Relaxed);
    let batches = garbage.await.unwrap();
    assert!(batches > 0, "no garbage was sent");
    // The honest members go on once the garbage stops, too.
    load(&net, 3).await;
    converge(&net).await;
    let after = assert_agreement(&net).await;
    assert!(after > before, "no height committed: {before} -> {after}");
    // The nodes read the garbage: the unparseable votes were dropped.
    assert!(logged(&net, "dropping malformed vote"));
    assert_healthy(&net).await;
}

/// Scenario 11. Malformed frames from a member (random bytes, truncated
/// frames, frames near and over the size limit, a proposal that does not
/// match its block, a proposal for another context) and well-formed gossip
/// from a peer that is no member: each is dropped, by the network layer or
/// the context, and the honest members keep committing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unauthenticated_gossip_is_dropped() {
    let net = byzantine_net().await;
    let mut byz = Peer::member(&net, BYZ).await;
    load(&net, 2).await;
    let before = assert_agreement(&net).await;
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let node0 = net.nodes[0].client();
    let tip = node0.context_info(net.context).await.unwrap().height;
    let parent = node0.block_get(net.context, Some(tip)).await.unwrap();
    let height = Height(tip + 1);

    // Raw bytes: empty, shorter than the sequence prefix, random bodies.
    for len in [0usize, 1, 7, 8, 9, 64, 4096, 256 * 1024] {
        if len == 0 {
            // Gossipsub may refuse an empty payload locally; either way
            // nothing reaches the nodes' contexts.
            let _ = byz.send_raw(Vec::new()).await;
            continue;
        }
        let bytes = random_bytes(&mut rng, len);
        byz.send_raw(bytes).await.expect("publish");
    }
    // A valid frame cut short at every few bytes.
    let vote = byz.precommit(height.0, Round::new(0), None, byz.me);
    let frame = Wire::Vote(vote).encode(u64::MAX);
    for cut in (1..frame.len()).step_by(7) {
        byz.send_sealed(&frame[..cut]).await;
    }
    // The valid frame sealed, then its tag, body or key epoch tampered
    // with: it does not open.
    let sealed = byz.seal(&frame);
    for i in [sealed.len() - 1, sealed.len() - 20, 40, 3] {
        let mut t = sealed.clone();
        t[i] ^= 0x20;
        byz.send_raw(t).await.expect("publish");
    }
    // A borsh enum tag past the last variant, and a length prefix that
    // claims far more than follows.
    let mut bad_tag = 1u64.to_be_bytes().to_vec();
    bad_tag.push(200);
    byz.send_sealed(&bad_tag).await;
    let mut huge_len = 2u64.to_be_bytes().to_vec();
    huge_len.push(2); // Wire::Vote
    huge_len.extend_from_slice(&u32::MAX.to_le_bytes());
    byz.send_sealed(&huge_len).await;
    // Inner messages over their own limits.
    byz.send(&Wire::Vote(random_bytes(&mut rng, 5 * 1024)))
        .await;
    byz.send(&Wire::Polka(random_bytes(&mut rng, 200 * 1024)))
        .await;
    byz.send(&Wire::RoundCertificate(random_bytes(&mut rng, 300)))
        .await;
    byz.send(&Wire::CheckpointSig {
        height: u64::MAX,
        signer: byz.me,
        sigs: vec![([7; 41], [9; 96]); 3],
    })
    .await;
    // A proposal naming one block, carrying another.
    let block = empty_block(&parent, byz.me, now_ms().max(parent.header.time_ms + 1));
    let other = empty_block(&parent, byz.me, block.header.time_ms + 1);
    let proposal = byz.proposal(net.context, height, Round::new(0), &block);
    byz.send(&Wire::Proposal {
        proposal,
        block: other,
    })
    .await;
    // A proposal and block for another context, signed for it.
    let elsewhere = ContextId([0xee; 32]);
    let mut foreign = block.clone();
    foreign.header.context_id = elsewhere;
    let proposal = byz.proposal(elsewhere, height, Round::new(0), &foreign);
    byz.send(&Wire::Proposal {
        proposal,
        block: foreign,
    })
    .await;
    // A stream of sealed frames that do not open, 48 MiB in all: each is
    // dropped, and node 0's memory stays flat. Sent in batches, each
    // waited for: a frame lost in transit (the nodes redial the byzantine
    // member, which never votes, as a silent one, and what is in flight on
    // the old connection is gone) is made up by the next batch.
    let rss_before = net.nodes[0].rss_bytes();
    let rejected = |n: &TestNode| n.metric_sum("conclave_sealed_rejected_total{");
    let rejected_before = rejected(&net.nodes[0]);
    let seen = |n: &TestNode| (rejected(n) - rejected_before) as usize;
    const JUNK: usize = 384;
    const BATCH: usize = 64;
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    let mut done = 0;
    while done < JUNK {
        assert!(
            Instant::now() < deadline,
            "node 0 saw {done} of {JUNK} junk frames"
        );
        let batch = (JUNK - done).min(BATCH);
        let target = done + batch;
        for _ in 0..batch {
            let mut t = byz.seal(&random_bytes(&mut rng, 128 * 1024));
            let last = t.len() - 1;
            t[last] ^= 1;
            byz.send_raw(t).await.expect("publish");
        }
        // Wait until the batch is in, or nothing more arrives for a while.
        let mut quiet_since = Instant::now();
        while done < target && quiet_since.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = seen(&net.nodes[0]);
            if now > done {
                done = now;
                quiet_since = Instant::now();
            }
        }
    }
    let rss_after = net.nodes[0].rss_bytes();
    assert!(
        rss_after < rss_before + 32 * 1024 * 1024,
        "node 0 grew from {rss_before} to {rss_after} bytes"
    );
    // Just under the nodes' 4 MiB limit, garbage after a valid prefix.
    let mut near = 99u64.to_be_bytes().to_vec();
    near.extend(random_bytes(&mut rng, 4 * 1024 * 1024 - 1024));
    byz.send_sealed(&near).await;
    load(&net, 3).await;

    // A peer that is no member publishes well-formed messages: a tx, a
    // vote, a proposal, each signed with its own key.
    let mut outsider = Peer::outsider(&net, 0x0b5e).await;
    let tx = Tx {
        context_id: net.context,
        sender: outsider.me,
        nonce: 1,
        method: "set".into(),
        args: br#"{"key":"intruder","value":"1"}"#.to_vec(),
    }
    .sign(&outsider.key);
    outsider.send(&Wire::Tx(tx)).await;
    let tip = node0.context_info(net.context).await.unwrap().height;
    let vote = outsider.precommit(
        tip + 1,
        Round::new(0),
        Some(random_hash(&mut rng)),
        outsider.me,
    );
    outsider.send(&Wire::Vote(vote)).await;
    let parent = node0.block_get(net.context, Some(tip)).await.unwrap();
    let block = empty_block(
        &parent,
        outsider.me,
        now_ms().max(parent.header.time_ms + 1),
    );
    let proposal = outsider.proposal(net.context, Height(tip + 1), Round::new(0), &block);
    outsider.send(&Wire::Proposal { proposal, block }).await;

    // A member gossips a tx of its own whose args were changed after
    // signing: it passes every check but the signature's, and no node
    // takes it.
    let nonce = node0.context_nonce(net.context, byz.me).await.unwrap();
    let mut tampered = Tx {
        context_id: net.context,
        sender: byz.me,
        nonce,
        method: "set".into(),
        args: br#"{"key":"forged","value":"1"}"#.to_vec(),
    }
    .sign(&byz.key);
    tampered.tx.args = br#"{"key":"forged","value":"2"}"#.to_vec();
    let forged_hash = tampered.hash();
    byz.send(&Wire::Txs(vec![tampered])).await;

    // Over the nodes' frame limit (their gossipsub refuses it on read), last
    // because a node may drop the connection it came on.
    let _ = byz
        .send_raw(random_bytes(&mut rng, 4 * 1024 * 1024 + 64))
        .await;

    load(&net, 3).await;
    converge(&net).await;
    let after = assert_agreement(&net).await;
    assert!(after > before, "no height committed: {before} -> {after}");
    // Each layer said why it dropped what it dropped.
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    while !logged(&net, "rejecting gossip from a non-member") {
        assert!(
            Instant::now() < deadline,
            "the outsider's gossip was not rejected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(logged(&net, "dropping gossip"));
    // node0 is honest and in the run (the byzantine peer's own node is
    // not started).
    let status = node0.tx_status(forged_hash).await.unwrap();
    assert_eq!(
        status.status, "unknown",
        "a forged tx was admitted: {status:?}"
    );
    assert!(logged(&net, "dropping unsealed payload"));
    assert!(logged(&net, "dropping a payload that does not open"));
    assert!(logged(&net, "proposal does not match its block"));
    // Every honest node penalised the member for it (its gossipsub score
    // drops; enough of it and its gossip is ignored).
    for node in net.nodes.iter().filter(|n| n.is_running()) {
        let penalties = node.metric_sum("conclave_p2p_penalties_total");
        assert!(penalties >= 3.0, "{} penalties", penalties);
    }
    // Nothing the outsider said was applied or even pooled: its next
    // nonce is still its first.
    for node in net.nodes.iter().filter(|n| n.is_running()) {
        let nonce = node
            .client()
            .context_nonce(net.context, outsider.me)
            .await
            .unwrap();
        assert_eq!(nonce, 1, "the outsider's tx was admitted");
    }
    assert_healthy(&net).await;
}
