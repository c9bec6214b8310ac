//! A randomised soak with invariants: four validator processes, continuous
//! load on several contexts, and random perturbations drawn from a seed
//! (kill -9 and restart, SIGSTOP/SIGCONT, symmetric and one-way
//! partitions, lossy and slow links, a crash during a partition, a
//! membership change). After every perturbation, once it is healed, and
//! at the end, it checks over RPC:
//!
//! - every context makes progress again within [`PROGRESS_BOUND`];
//! - every node holds the same block hash and state root at every height
//!   the nodes share;
//! - at the end, every acknowledged tx is committed exactly once, no tx
//!   appears twice, each sender's nonces go up by one block after block,
//!   and no node holds evidence against any member (all are honest here).
//!
//! The seed fixes the schedule (which perturbation, where, for how long);
//! the processes' timing is the machine's, so a failing seed is a strong
//! hint rather than a replay to the instruction. `conclave-soak` (a binary
//! of this crate) runs it on demand; the test `soak` runs a short one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_consensus::{ContextId, Hash32, MemberId, SignedTx};
use conclave_node::keys::NodeKeys;
use conclave_node::link_faults::LinkFault;
use conclave_node::rpc::{ConclaveApiClient, DebugApiClient, EvidenceApiClient, MembersApiClient};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::sync::Mutex;

use crate::{signed, NetOptions, TestNet};

/// How long every context may take to commit again once a fault heals.
pub const PROGRESS_BOUND: Duration = Duration::from_secs(90);
/// Txs a sender has acknowledged but not yet seen committed, at most.
const WINDOW: usize = 32;
/// An acknowledged tx not committed after this is sent again (the same
/// signed tx, to any member's node): what a client does when the node that
/// took it crashed before passing it on.
const RESEND_AFTER: Duration = Duration::from_secs(10);
/// Every RPC of the harness gives up after this (a paused node never
/// answers).
const RPC_TIMEOUT: Duration = Duration::from_secs(3);

/// What to run.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    pub seed: u64,
    /// Perturbations start until this much time has passed.
    pub duration: Duration,
    /// Txs per second each sender offers.
    pub rate: u32,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct SoakReport {
    pub seed: u64,
    pub perturbations: Vec<String>,
    pub acknowledged: usize,
    pub committed: usize,
    /// Blocks checked for agreement, over all contexts.
    pub heights_checked: u64,
    pub elapsed: Duration,
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "seed {}: {} perturbations in {:.0?}; {} txs acknowledged, {} committed exactly once; \
             {} heights identical on every node; divergences: 0",
            self.seed,
            self.perturbations.len(),
            self.elapsed,
            self.acknowledged,
            self.committed,
            self.heights_checked
        )?;
        for p in &self.perturbations {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// One signed tx the load sent, and what became of it.
#[derive(Clone, Debug)]
struct Sent {
    ctx: ContextId,
    sender: usize,
    nonce: u64,
    tx: SignedTx,
    acked_at: Instant,
}

/// The load's record: every tx acknowledged, by hash.
#[derive(Default)]
struct Ledger {
    acked: HashMap<Hash32, Sent>,
    committed: HashSet<Hash32>,
}

/// A context of the run and the nodes that are its members.
#[derive(Clone, Debug)]
struct Ctx {
    id: ContextId,
    members: Vec<usize>,
}

struct Harness {
    net: TestNet,
    ids: Vec<MemberId>,
    clients: Vec<HttpClient>,
    contexts: Arc<Mutex<Vec<Ctx>>>,
    ledger: Arc<Mutex<Ledger>>,
    /// Heights checked for agreement so far, per context.
    checked: HashMap<ContextId, u64>,
    report: SoakReport,
}

fn client(node: &crate::TestNode) -> HttpClient {
    HttpClientBuilder::default()
        .request_timeout(RPC_TIMEOUT)
        .set_headers(node.credentials())
        .build(node.url())
        .expect("http client")
}

/// Runs a soak; an error names the broken invariant.
pub async fn run(opts: SoakOptions) -> Result<SoakReport, String> {
    let started = Instant::now();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let net = TestNet::start_configured(4, NetOptions::default(), |c| {
        c.debug.fault_injection = true;
    })
    .await;
    let ids: Vec<MemberId> = net.nodes.iter().map(|n| n.keys().member_id()).collect();
    let clients: Vec<HttpClient> = net.nodes.iter().map(client).collect();
    // The testnet's context (all four), one more of all four created over
    // the network, and one of three that the fourth joins during the run.
    let all = Ctx {
        id: net.context,
        members: vec![0, 1, 2, 3],
    };
    let created = net.create_context("kv", 1, &[0, 1, 2, 3]).await?;
    let three = net.create_context("kv", 2, &[0, 1, 2]).await?;
    let mut h = Harness {
        contexts: Arc::new(Mutex::new(vec![
            all,
            Ctx {
                id: created,
                members: vec![0, 1, 2, 3],
            },
            Ctx {
                id: three,
                members: vec![0, 1, 2],
            },
        ])),
        net,
        ids,
        clients,
        ledger: Arc::default(),
        checked: HashMap::new(),
        report: SoakReport {
            seed: opts.seed,
            ..SoakReport::default()
        },
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for (i, ctx) in h.contexts.lock().await.clone().into_iter().enumerate() {
        // Node 0 signs the invitation into the context of three with its
        // member's next nonce there: the load leaves it that nonce.
        for sender in (0..4).filter(|&s| !(i == 2 && s == 0)) {
            load.push(tokio::spawn(send_load(
                ctx.id,
                sender,
                h.net.nodes[sender].keys(),
                h.clients.clone(),
                h.contexts.clone(),
                h.ledger.clone(),
                stop.clone(),
                opts.rate,
            )));
        }
    }

    let result = h.perturb_and_check(&opts, started, &mut rng).await;
    stop.store(true, Ordering::SeqCst);
    for task in load {
        let _ = task.await;
    }
    let result = match result {
        Ok(()) => match h.drain().await {
            Ok(()) => h.final_checks().await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    if let Err(broken) = result {
        // Keep every node's home and log for whoever reads the failure.
        let kept = h.net.keep_homes();
        return Err(format!(
            "{broken} (after: {}; the nodes' homes and logs are kept in {kept:?})",
            h.report.perturbations.join("; ")
        ));
    }
    h.report.elapsed = started.elapsed();
    Ok(h.report)
}

/// One sender's load on one context: signs its txs in nonce order, sends
/// each to its own node (another member's if that one does not answer)
/// until one acknowledges it, keeps at most [`WINDOW`] unconfirmed, and
/// sends again what stays uncommitted for [`RESEND_AFTER`].
#[allow(clippy::too_many_arguments)]
async fn send_load(
    ctx: ContextId,
    sender: usize,
    keys: NodeKeys,
    clients: Vec<HttpClient>,
    contexts: Arc<Mutex<Vec<Ctx>>>,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    rate: u32,
) {
    let pause = Duration::from_millis(1000 / u64::from(rate.max(1)));
    let mut nonce = 1;
    let mut pending: BTreeMap<u64, Hash32> = BTreeMap::new();
    let mut next: Option<SignedTx> = None;
    let mut turn = 0usize;
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(pause).await;
        let members = match contexts.lock().await.iter().find(|c| c.id == ctx) {
            Some(c) if c.members.contains(&sender) => c.members.clone(),
            _ => continue,
        };
        turn += 1;
        // Confirm what committed (every few turns), and send again what
        // waits too long.
        if turn.is_multiple_of(10) {
            confirm(&clients, &members, sender, &mut pending, &ledger).await;
        }
        if pending.len() >= WINDOW {
            continue;
        }
        let tx = next.get_or_insert_with(|| {
            let args = format!(r#"{{"key":"s{sender}-{nonce}","value":"{nonce}"}}"#);
            signed(&keys, ctx, nonce, "set", &args)
        });
        // Its own node first, then the others.
        let order = std::iter::once(sender).chain(members.iter().copied().filter(|&m| m != sender));
        for via in order {
            let taken = match clients[via].tx_submit(tx.clone()).await {
                Ok(_) => true,
                // An earlier attempt reached a node after all (its answer
                // was lost or late): the tx is in, pending or committed;
                // only this load signs for this sender in this context.
                Err(e) => {
                    let e = e.to_string();
                    e.contains("already pending") || e.contains("is not above the sender's last")
                }
            };
            if taken {
                ledger.lock().await.acked.insert(
                    tx.hash(),
                    Sent {
                        ctx,
                        sender,
                        nonce,
                        tx: tx.clone(),
                        acked_at: Instant::now(),
                    },
                );
                pending.insert(nonce, tx.hash());
                nonce += 1;
                next = None;
                break;
            }
        }
    }
}

/// Drops from `pending` what committed; sends again what waited too long.
async fn confirm(
    clients: &[HttpClient],
    members: &[usize],
    sender: usize,
    pending: &mut BTreeMap<u64, Hash32>,
    ledger: &Mutex<Ledger>,
) {
    let mut done = Vec::new();
    for (&nonce, hash) in pending.iter() {
        let status = ask_status(clients, members, sender, *hash).await;
        if status.as_deref() == Some("committed") || status.as_deref() == Some("failed") {
            done.push(nonce);
            ledger.lock().await.committed.insert(*hash);
            continue;
        }
        let sent = ledger.lock().await.acked.get(hash).cloned();
        if let Some(sent) = sent.filter(|s| s.acked_at.elapsed() > RESEND_AFTER) {
            for &via in members {
                let _ = clients[via].tx_submit(sent.tx.clone()).await;
            }
            if let Some(s) = ledger.lock().await.acked.get_mut(hash) {
                s.acked_at = Instant::now();
            }
        }
    }
    for nonce in done {
        pending.remove(&nonce);
    }
}

/// The status of `hash` as the first member's node that answers sees it.
async fn ask_status(
    clients: &[HttpClient],
    members: &[usize],
    first: usize,
    hash: Hash32,
) -> Option<String> {
    let order = std::iter::once(first).chain(members.iter().copied().filter(|&m| m != first));
    for via in order {
        if let Ok(s) = clients[via].tx_status(hash).await {
            return Some(s.status);
        }
    }
    None
}

/// A perturbation.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Kill,
    Pause,
    Partition,
    OneWay,
    Lossy,
    CrashInPartition,
    Join,
}

impl Fault {
    fn draw(rng: &mut impl Rng) -> Self {
        *[
            Self::Kill,
            Self::Pause,
            Self::Partition,
            Self::OneWay,
            Self::Lossy,
            Self::CrashInPartition,
        ]
        .choose(rng)
        .unwrap_or(&Self::Kill)
    }
}

impl Harness {
    /// Perturbs until `opts.duration` has passed, checking after each.
    async fn perturb_and_check(
        &mut self,
        opts: &SoakOptions,
        started: Instant,
        rng: &mut impl Rng,
    ) -> Result<(), String> {
        let mut joined = false;
        while started.elapsed() < opts.duration {
            let fault = if !joined && started.elapsed() > opts.duration / 3 {
                joined = true;
                Fault::Join
            } else {
                Fault::draw(rng)
            };
            let what = self.apply(fault, rng).await?;
            println!("[{:>5.0?}] {what}", started.elapsed());
            self.report.perturbations.push(what.clone());
            self.progress_and_agreement(&what).await?;
        }
        Ok(())
    }

    /// Applies `fault`, holds it for a while and heals it; says what it did.
    async fn apply(&mut self, fault: Fault, rng: &mut impl Rng) -> Result<String, String> {
        let hold = Duration::from_millis(rng.gen_range(2_000..6_000));
        let node = rng.gen_range(0..4usize);
        let what = match fault {
            Fault::Kill => {
                self.net.nodes[node].kill9();
                tokio::time::sleep(hold).await;
                self.net.nodes[node].start().await;
                format!("kill -9 node {node} for {hold:.1?}, restart")
            }
            Fault::Pause => {
                self.net.nodes[node].pause();
                tokio::time::sleep(hold).await;
                self.net.nodes[node].resume();
                format!("SIGSTOP node {node} for {hold:.1?}, SIGCONT")
            }
            Fault::Partition => {
                let mut order = [0, 1, 2, 3];
                order.shuffle(rng);
                let split = if rng.gen_bool(0.5) { 2 } else { 1 };
                let (a, b) = order.split_at(split);
                self.partition(&[a, b]).await?;
                tokio::time::sleep(hold).await;
                self.heal().await?;
                format!("partition {a:?} | {b:?} for {hold:.1?}, heal")
            }
            Fault::OneWay => {
                let to = (node + rng.gen_range(1..4)) % 4;
                self.link_faults(
                    to,
                    vec![LinkFault {
                        from: self.ids[node],
                        drop_permille: 1000,
                        delay_ms: 0,
                    }],
                )
                .await?;
                tokio::time::sleep(hold).await;
                self.heal().await?;
                format!(
                    "one-way cut: nothing from node {node} reaches node {to} for {hold:.1?}, heal"
                )
            }
            Fault::Lossy => {
                let drop_permille = rng.gen_range(50..300);
                let delay_ms = rng.gen_range(10..200);
                for to in 0..4 {
                    let faults = (0..4)
                        .filter(|&from| from != to)
                        .map(|from| LinkFault {
                            from: self.ids[from],
                            drop_permille,
                            delay_ms,
                        })
                        .collect();
                    self.link_faults(to, faults).await?;
                }
                tokio::time::sleep(hold).await;
                self.heal().await?;
                format!(
                    "every link drops {drop_permille}‰ and delays ~{delay_ms} ms for {hold:.1?}, heal"
                )
            }
            Fault::CrashInPartition => {
                let rest: Vec<usize> = (0..4).filter(|&i| i != node).collect();
                self.partition(&[&[node], &rest]).await?;
                tokio::time::sleep(hold / 2).await;
                self.net.nodes[node].kill9();
                self.heal().await?;
                tokio::time::sleep(hold / 2).await;
                self.net.nodes[node].start().await;
                format!(
                    "partition [{node}] | {rest:?}, kill -9 node {node} inside it, heal, restart"
                )
            }
            Fault::Join => self.join_fourth().await?,
        };
        Ok(what)
    }

    /// Node 3 joins the context of three: invited by node 0, in force two
    /// heights later, and it validates from then on.
    async fn join_fourth(&mut self) -> Result<String, String> {
        let ctx = self.contexts.lock().await[2].id;
        let deadline = Instant::now() + PROGRESS_BOUND;
        let tx = loop {
            match self.net.nodes[0]
                .client()
                .context_invite(ctx, self.ids[3])
                .await
            {
                Ok(tx) => break tx,
                Err(_) if Instant::now() < deadline => retry_wait().await,
                Err(e) => return Err(format!("invite: {e}")),
            }
        };
        let c0 = self.net.nodes[0].client();
        loop {
            let s = c0.tx_status(tx.tx_hash).await.map_err(|e| e.to_string())?;
            match s.status.as_str() {
                "committed" => break,
                "failed" => return Err(format!("the invite failed: {s:?}")),
                _ if Instant::now() > deadline => return Err("the invite did not commit".into()),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let via = self.ids[0].to_string();
        let deadline = Instant::now() + PROGRESS_BOUND;
        loop {
            match self.net.nodes[3]
                .client()
                .context_join(ctx, via.clone())
                .await
            {
                Ok(_) => break,
                Err(_) if Instant::now() < deadline => retry_wait().await,
                Err(e) => return Err(format!("join: {e}")),
            }
        }
        self.contexts.lock().await[2].members.push(3);
        Ok("membership change: node 3 invited into the context of three, joins".into())
    }

    async fn partition(&self, groups: &[&[usize]]) -> Result<(), String> {
        for group in groups {
            let outside: Vec<MemberId> = (0..4)
                .filter(|i| !group.contains(i))
                .map(|i| self.ids[i])
                .collect();
            for &i in *group {
                self.net.nodes[i]
                    .client()
                    .debug_set_blocked_peers(outside.clone())
                    .await
                    .map_err(|e| format!("partition node {i}: {e}"))?;
            }
        }
        Ok(())
    }

    async fn link_faults(&self, node: usize, faults: Vec<LinkFault>) -> Result<(), String> {
        self.net.nodes[node]
            .client()
            .debug_set_link_faults(faults)
            .await
            .map_err(|e| format!("link faults on node {node}: {e}"))
    }

    /// Every link whole again, on every running node.
    async fn heal(&self) -> Result<(), String> {
        for (i, node) in self.net.nodes.iter().enumerate() {
            if !node.is_running() {
                continue;
            }
            let c = node.client();
            c.debug_set_blocked_peers(Vec::new())
                .await
                .map_err(|e| format!("heal node {i}: {e}"))?;
            c.debug_set_link_faults(Vec::new())
                .await
                .map_err(|e| format!("heal node {i}: {e}"))?;
        }
        Ok(())
    }

    /// Every context commits again on every member's node within
    /// [`PROGRESS_BOUND`], and all hold the same blocks at the heights
    /// they share.
    async fn progress_and_agreement(&mut self, after: &str) -> Result<(), String> {
        let contexts = self.contexts.lock().await.clone();
        for ctx in &contexts {
            let start = self.max_height(ctx).await;
            let deadline = Instant::now() + PROGRESS_BOUND;
            loop {
                let low = self.min_height(ctx).await;
                if low.is_some_and(|h| h > start) {
                    break;
                }
                if Instant::now() > deadline {
                    let each = self.heights(ctx).await;
                    return Err(format!(
                        "after {after}: context {} did not progress past {start} on every member \
                         within {PROGRESS_BOUND:?} (members {:?} at {each:?})",
                        ctx.id, ctx.members
                    ));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            self.agree(ctx, after).await?;
        }
        Ok(())
    }

    async fn heights(&self, ctx: &Ctx) -> Vec<Option<u64>> {
        let mut out = Vec::new();
        for &m in &ctx.members {
            out.push(
                self.clients[m]
                    .context_info(ctx.id)
                    .await
                    .ok()
                    .map(|i| i.height),
            );
        }
        out
    }

    async fn max_height(&self, ctx: &Ctx) -> u64 {
        self.heights(ctx)
            .await
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(0)
    }

    /// The lowest height among the members, if all answer.
    async fn min_height(&self, ctx: &Ctx) -> Option<u64> {
        let all = self.heights(ctx).await;
        all.iter()
            .copied()
            .collect::<Option<Vec<u64>>>()?
            .into_iter()
            .min()
    }

    /// Waits until every member of `ctx` is at the same height. `drain`
    /// saw each acknowledged tx committed on some member; a member that
    /// was cut off last may still be catching up, and the chain is read
    /// up to the height all members share.
    async fn converge(&self, ctx: &Ctx) -> Result<(), String> {
        let deadline = Instant::now() + PROGRESS_BOUND;
        loop {
            let heights = self.heights(ctx).await;
            let first = heights.first().copied().flatten();
            if first.is_some() && heights.iter().all(|h| *h == first) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the members of {} did not reach one tip within {PROGRESS_BOUND:?}: {heights:?}",
                    ctx.id
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Same block hash and state root on every member's node at every
    /// height they share that was not checked yet (through the chain's
    /// links, see below).
    async fn agree(&mut self, ctx: &Ctx, after: &str) -> Result<(), String> {
        let Some(shared) = self.min_height(ctx).await else {
            return Err(format!(
                "after {after}: a member of {} does not answer",
                ctx.id
            ));
        };
        let from = self.checked.get(&ctx.id).copied().unwrap_or(0) + 1;
        // A block's hash covers its parent's (and each header its state
        // root): the same block at the shared tip means the same chain
        // below it. The first and middle new heights are compared too, in
        // case a node's stored chain were not linked.
        let mut heights = vec![from, from + (shared.saturating_sub(from)) / 2, shared];
        heights.retain(|h| (from..=shared).contains(h));
        heights.dedup();
        for h in heights {
            let mut seen: Option<(Hash32, Hash32, usize)> = None;
            for &m in &ctx.members {
                let b = block(&self.clients[m], ctx.id, h)
                    .await
                    .map_err(|e| format!("block {h} of {} on node {m}: {e}", ctx.id))?;
                let got = (b.hash, b.header.state_root);
                match seen {
                    None => seen = Some((got.0, got.1, m)),
                    Some((hash, root, first)) if (hash, root) != got => {
                        return Err(format!(
                            "after {after}: DIVERGENCE in {} at height {h}: node {first} has \
                             block {hash} root {root}, node {m} has block {} root {}",
                            ctx.id, got.0, got.1
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        self.report.heights_checked += (shared + 1).saturating_sub(from);
        self.checked.insert(ctx.id, shared.max(from - 1));
        Ok(())
    }

    /// Waits until every acknowledged tx is committed, sending again what
    /// waits too long.
    async fn drain(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + PROGRESS_BOUND * 2;
        loop {
            let waiting: Vec<(Hash32, Sent)> = {
                let ledger = self.ledger.lock().await;
                ledger
                    .acked
                    .iter()
                    .filter(|(h, _)| !ledger.committed.contains(h))
                    .map(|(h, s)| (*h, s.clone()))
                    .collect()
            };
            if waiting.is_empty() {
                return Ok(());
            }
            let contexts = self.contexts.lock().await.clone();
            for (hash, sent) in &waiting {
                let members = &contexts
                    .iter()
                    .find(|c| c.id == sent.ctx)
                    .ok_or("a tx of an unknown context")?
                    .members;
                match ask_status(&self.clients, members, sent.sender, *hash)
                    .await
                    .as_deref()
                {
                    Some("committed") | Some("failed") => {
                        self.ledger.lock().await.committed.insert(*hash);
                    }
                    _ if sent.acked_at.elapsed() > RESEND_AFTER => {
                        for &via in members {
                            let _ = self.clients[via].tx_submit(sent.tx.clone()).await;
                        }
                        if let Some(s) = self.ledger.lock().await.acked.get_mut(hash) {
                            s.acked_at = Instant::now();
                        }
                    }
                    _ => {}
                }
            }
            if Instant::now() > deadline {
                let (hash, sent) = &waiting[0];
                return Err(format!(
                    "{} acknowledged txs never committed, e.g. {hash} (context {}, sender node {}, nonce {})",
                    waiting.len(),
                    sent.ctx,
                    sent.sender,
                    sent.nonce
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Every acknowledged tx exactly once in the chain, no tx twice, each
    /// sender's nonces in order, every block agreed, and no evidence.
    async fn final_checks(&mut self) -> Result<(), String> {
        let contexts = self.contexts.lock().await.clone();
        for ctx in &contexts {
            self.converge(ctx).await?;
            self.agree(ctx, "the end").await?;
        }
        let ledger = self.ledger.lock().await;
        let by_hash: HashMap<Hash32, (ContextId, usize, u64)> = ledger
            .acked
            .iter()
            .map(|(h, s)| (*h, (s.ctx, s.sender, s.nonce)))
            .collect();
        let mut seen: HashMap<Hash32, u64> = HashMap::new();
        for ctx in &contexts {
            let tip = self.checked.get(&ctx.id).copied().unwrap_or(0);
            let mut last_nonce: HashMap<usize, u64> = HashMap::new();
            let reader = ctx.members[0];
            for h in 1..=tip {
                let b = block(&self.clients[reader], ctx.id, h)
                    .await
                    .map_err(|e| format!("block {h}: {e}"))?;
                for tx in b.txs {
                    if let Some(first) = seen.insert(tx, h) {
                        return Err(format!(
                            "tx {tx} is in the chain twice: heights {first} and {h} of {}",
                            ctx.id
                        ));
                    }
                    if let Some(&(c, sender, nonce)) = by_hash.get(&tx) {
                        if c != ctx.id {
                            return Err(format!("tx {tx} of {c} committed in {}", ctx.id));
                        }
                        let last = last_nonce.insert(sender, nonce).unwrap_or(0);
                        if nonce != last + 1 {
                            return Err(format!(
                                "node {sender}'s nonces in {} go from {last} to {nonce} at height {h}",
                                ctx.id
                            ));
                        }
                    }
                }
            }
        }
        for hash in ledger.acked.keys() {
            if !seen.contains_key(hash) {
                return Err(format!("acknowledged tx {hash} is not in the chain"));
            }
        }
        self.report.acknowledged = ledger.acked.len();
        self.report.committed = ledger.acked.len();
        drop(ledger);
        for ctx in &contexts {
            for &m in &ctx.members {
                let evidence = self.clients[m]
                    .evidence_list(ctx.id, None)
                    .await
                    .map_err(|e| format!("evidence_list on node {m}: {e}"))?;
                if let Some(e) = evidence.first() {
                    return Err(format!(
                        "node {m} holds evidence against honest member {} in {}",
                        e.offender, ctx.id
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Block `h` of `ctx` from a node, asked up to five times (a node of a
/// loaded machine may miss [`RPC_TIMEOUT`] once); the last error if none
/// answered.
async fn block(
    client: &HttpClient,
    ctx: ContextId,
    h: u64,
) -> Result<conclave_node::rpc::types::BlockView, jsonrpsee::core::ClientError> {
    let mut tries = 0;
    loop {
        match client.block_get(ctx, Some(h)).await {
            Err(jsonrpsee::core::ClientError::RequestTimeout) if tries < 4 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

/// A short wait before trying a membership call again (a member's node
/// may still be reconnecting after the last perturbation).
async fn retry_wait() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}
