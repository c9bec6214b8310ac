use conclave_checkpoint::{Certificate, Registration, Verifier};

use super::*;

struct Member {
    id: MemberId,
    key: SecretKey,
}

fn members(n: u8) -> Vec<Member> {
    (1..=n)
        .map(|i| Member {
            id: MemberId([i; 32]),
            key: SecretKey::from_seed(&[i; 32]).unwrap(),
        })
        .collect()
}

fn params(ms: &[Member], domains: Vec<Domain>) -> Params {
    let regs: Vec<_> = ms
        .iter()
        .map(|m| Registration {
            public_key: m.key.public_key(),
            pop: m.key.prove_possession(),
        })
        .collect();
    let set = MemberSet::new(&regs, 0).unwrap();
    Params {
        context: ContextId([9; 32]),
        members: ms.iter().map(|m| m.id).collect(),
        next_members_hash: set.hash(),
        set,
        domains,
        interval: 2,
        epoch: 0,
    }
}

/// A collector with the parameters it signs every height under.
struct Node {
    c: Collector,
    p: Arc<Params>,
}

/// A [`Step`] with the completed record alone.
struct Out {
    gossip: Option<Share>,
    completed: Option<CheckpointRecord>,
    refused: Vec<(u64, MemberId, Refusal)>,
}

impl From<Step> for Out {
    fn from(s: Step) -> Self {
        Out {
            gossip: s.gossip,
            completed: s.completed.map(|(r, _)| r),
            refused: s.refused,
        }
    }
}

impl Node {
    fn params(&self) -> &Params {
        &self.p
    }

    fn on_commit(&mut self, h: u64, root: Hash32, actions_root: Hash32, actions: usize) -> Out {
        self.c
            .on_commit(h, root, actions_root, actions, self.p.clone())
            .into()
    }

    fn on_share(&mut self, s: Share) -> Result<Out, Refusal> {
        self.c.on_share(s, Some(&self.p)).map(Out::from)
    }

    fn resend(&mut self, max: u32) -> Vec<Share> {
        self.c.resend(max)
    }

    /// The resend tick: what waiting rounds completed.
    fn tick(&mut self) -> Vec<Out> {
        self.c.settle_waiting().into_iter().map(Out::from).collect()
    }

    /// The one record the tick completed.
    fn tick_completes(&mut self) -> CheckpointRecord {
        let mut done: Vec<CheckpointRecord> = self
            .tick()
            .into_iter()
            .filter_map(|o| o.completed)
            .collect();
        assert_eq!(done.len(), 1, "one round completes at the tick");
        done.remove(0)
    }

    fn pending_actions(&self) -> usize {
        self.c.pending_actions()
    }
}

fn node(p: Params, m: &Member) -> Node {
    Node {
        c: Collector::new(m.id, m.key.clone(), 0),
        p: Arc::new(p),
    }
}

fn domains() -> Vec<Domain> {
    vec![
        Domain::evm(31337, [0x5f; 20]),
        Domain::near("testnet", "dao.testnet").unwrap(),
    ]
}

fn collector(ms: &[Member], i: usize) -> Node {
    node(params(ms, domains()), &ms[i])
}

const ROOT: Hash32 = Hash32([7; 32]);

fn commit(c: &mut Node, h: u64) -> Out {
    c.on_commit(h, ROOT, Hash32::default(), 0)
}

/// Checks a record with the chain-side verifier for every domain.
fn verify(p: &Params, rec: &CheckpointRecord) -> usize {
    for cert in &rec.certificates {
        let domain = Domain::decode(&cert.domain.0).unwrap();
        let payload = p.payload(domain, rec.height.0, rec.state_root, rec.actions_root);
        let c = Certificate {
            signers: SignerBitmap::from_bytes(cert.signers),
            signature: Signature::from_compressed(&cert.signature).unwrap(),
        };
        Verifier {
            domain,
            epoch: p.epoch,
            members: &p.set,
        }
        .verify(&payload, &c)
        .unwrap();
    }
    SignerBitmap::from_bytes(rec.certificates[0].signers).count() as usize
}

/// Four members, each a collector that committed height 2, and the
/// shares they gossiped.
fn four_signed_at_2() -> (Vec<Member>, Vec<Node>, Vec<Share>) {
    let ms = members(4);
    let mut nodes: Vec<_> = (0..4).map(|i| collector(&ms, i)).collect();
    let shares = nodes
        .iter_mut()
        .map(|c| commit(c, 2).gossip.unwrap())
        .collect();
    (ms, nodes, shares)
}

#[test]
fn checkpoint_heights_are_the_interval_and_heights_with_actions() {
    let p = params(&members(1), domains());
    assert!(!p.is_checkpoint_height(0, 0));
    assert!(!p.is_checkpoint_height(1, 0));
    assert!(p.is_checkpoint_height(1, 1));
    assert!(p.is_checkpoint_height(2, 0));
    assert!(p.is_checkpoint_height(4, 0));
}

#[test]
fn all_four_complete_together_once_the_last_share_is_in() {
    let (_, mut nodes, shares) = four_signed_at_2();
    assert!(
        commit(&mut nodes[0], 3).gossip.is_none(),
        "not a checkpoint height"
    );
    let c = &mut nodes[0];
    assert!(c.on_share(shares[1].clone()).unwrap().completed.is_none());
    // A quorum is in, but not every member's share: it waits for the
    // last (or the tick), to be checked in one aggregate with it.
    assert!(c.on_share(shares[2].clone()).unwrap().completed.is_none());
    assert!(c.c.has_unfinished(0), "the tick has work");
    let rec = c.on_share(shares[3].clone()).unwrap().completed.unwrap();
    assert_eq!(verify(c.params(), &rec), 4);
    assert_eq!(rec.certificates.len(), 2);
    assert!(c.tick().is_empty());
    // Repeats change nothing.
    assert!(c.on_share(shares[3].clone()).unwrap().completed.is_none());
}

#[test]
fn three_of_four_complete_at_the_tick_and_a_fourth_upgrades() {
    let (_, mut nodes, shares) = four_signed_at_2();
    let c = &mut nodes[0];
    assert!(c.on_share(shares[1].clone()).unwrap().completed.is_none());
    assert!(c.on_share(shares[2].clone()).unwrap().completed.is_none());
    let rec = c.tick_completes();
    assert_eq!(verify(c.params(), &rec), 3);
    assert!(!c.c.has_unfinished(2), "complete: nothing to resend");
    let step = c.c.on_share(shares[3].clone(), None).unwrap();
    let (more, first) = step.completed.unwrap();
    assert!(!first, "an upgrade");
    assert_eq!(verify(c.params(), &more), 4);
}

#[test]
fn two_of_four_never_complete() {
    let ms = members(4);
    let mut a = collector(&ms, 0);
    let mut b = collector(&ms, 1);
    commit(&mut a, 2);
    let share = commit(&mut b, 2).gossip.unwrap();
    let step = a.on_share(share.clone()).unwrap();
    assert!(step.completed.is_none());
    assert!(a.on_share(share).unwrap().completed.is_none());
    assert!(a.tick().is_empty(), "no quorum to settle");
    // Below quorum, the member keeps re-gossiping its share, boundedly.
    assert_eq!(a.resend(2).len(), 1);
    assert_eq!(a.resend(2).len(), 1);
    assert!(a.resend(2).is_empty());
}

#[test]
fn bad_and_foreign_shares_are_refused() {
    let ms = members(4);
    let mut a = collector(&ms, 0);
    commit(&mut a, 2);
    let mut b = collector(&ms, 1);
    let good = commit(&mut b, 2).gossip.unwrap();

    // A signature of another height's payload: below quorum it waits
    // unchecked.
    let other = commit(&mut b, 4).gossip.unwrap();
    let mut bad = good.clone();
    bad.sigs[1].1 = other.sigs[1].1;
    let waits = a.on_share(bad).unwrap();
    assert!(waits.completed.is_none() && waits.refused.is_empty());
    // Member 3's signature claimed by member 2: another share than the
    // one waiting under that signer, so it is checked at once.
    let mut c = collector(&ms, 2);
    let mut stolen = commit(&mut c, 2).gossip.unwrap();
    stolen.signer = ms[1].id;
    assert_eq!(a.on_share(stolen).err(), Some(Refusal::BadSignature(0)));
    // Garbage bytes.
    let mut garbage = good.clone();
    garbage.sigs[0].1 = [0xff; 96];
    assert_eq!(a.on_share(garbage).err(), Some(Refusal::BadEncoding(0)));
    // Another domain set.
    let mut wrong = good.clone();
    wrong.sigs.pop();
    assert_eq!(a.on_share(wrong).err(), Some(Refusal::WrongDomains));
    // A non-member, even with a valid-looking share.
    let outsider = members(5).pop().unwrap();
    let mut foreign = good.clone();
    foreign.signer = outsider.id;
    assert_eq!(
        a.on_share(foreign).err(),
        Some(Refusal::NotMember(outsider.id))
    );
    // None of that counted: the good share, checked at once against the
    // bad one waiting, takes its place as the second signer.
    assert!(a.on_share(good).unwrap().completed.is_none());
    let mut d = collector(&ms, 3);
    let waits = a.on_share(commit(&mut d, 2).gossip.unwrap()).unwrap();
    assert!(waits.completed.is_none());
    let rec = a.tick_completes();
    assert_eq!(verify(a.params(), &rec), 3);
}

#[test]
fn a_bad_share_in_a_quorum_is_refused_alone_and_the_good_ones_complete() {
    let (ms, mut nodes, shares) = four_signed_at_2();
    let other = commit(&mut nodes[1], 4).gossip.unwrap();
    let mut bad = shares[1].clone();
    bad.sigs[1].1 = other.sigs[1].1;
    let a = &mut nodes[0];
    assert!(
        a.on_share(bad).unwrap().refused.is_empty(),
        "waits unchecked"
    );
    assert!(a.on_share(shares[3].clone()).unwrap().refused.is_empty());
    // Every member's share is in: their aggregate fails, each is checked
    // alone, only the bad one is refused, and the good ones complete.
    let step = a.on_share(shares[2].clone()).unwrap();
    assert_eq!(step.refused, vec![(2, ms[1].id, Refusal::BadSignature(1))]);
    assert_eq!(verify(a.params(), &step.completed.unwrap()), 3);
    // The refused signer's good share still counts.
    let more = a.on_share(shares[1].clone()).unwrap().completed.unwrap();
    assert_eq!(verify(a.params(), &more), 4);
}

#[test]
fn a_node_that_does_not_sign_completes_from_others_shares() {
    let ms = members(4);
    let outsider = members(5).pop().unwrap();
    let mut watcher = node(params(&ms, domains()), &outsider);
    assert!(commit(&mut watcher, 2).gossip.is_none());
    let mut shares = (0..3).map(|i| commit(&mut collector(&ms, i), 2).gossip.unwrap());
    assert!(watcher
        .on_share(shares.next().unwrap())
        .unwrap()
        .completed
        .is_none());
    assert!(watcher
        .on_share(shares.next().unwrap())
        .unwrap()
        .completed
        .is_none());
    assert!(watcher
        .on_share(shares.next().unwrap())
        .unwrap()
        .completed
        .is_none());
    // The fourth member is away: the tick completes with three.
    assert!(watcher.c.has_unfinished(0), "a watcher's tick has work too");
    let rec = watcher.tick_completes();
    assert_eq!(verify(watcher.params(), &rec), 3);
}

#[test]
fn shares_ahead_of_the_tip_wait_for_the_commit() {
    let ms = members(4);
    let mut a = collector(&ms, 0);
    let early: Vec<Share> = (1..4)
        .map(|i| commit(&mut collector(&ms, i), 2).gossip.unwrap())
        .collect();
    for s in early {
        assert!(a.on_share(s).unwrap().completed.is_none());
    }
    let rec = commit(&mut a, 2).completed.unwrap();
    assert_eq!(verify(a.params(), &rec), 4);
}

#[test]
fn single_member_completes_alone_and_actions_force_a_checkpoint() {
    let ms = members(1);
    let mut a = node(params(&ms, vec![Domain::unanchored()]), &ms[0]);
    let step = a.on_commit(3, ROOT, Hash32([1; 32]), 2);
    let rec = step.completed.unwrap();
    assert_eq!(rec.height, Height(3));
    assert_eq!(rec.actions_root, Hash32([1; 32]));
    assert_eq!(verify(a.params(), &rec), 1);
    assert_eq!(a.pending_actions(), 0);
}

#[test]
fn a_member_that_repeats_gets_an_answer() {
    let (ms, mut nodes, shares) = four_signed_at_2();
    for s in &shares[1..3] {
        nodes[0].on_share(s.clone()).unwrap();
    }
    // Node 3 missed everything and repeats its share: node 0 answers.
    nodes[0].on_share(shares[3].clone()).unwrap();
    let answer = nodes[0]
        .on_share(shares[3].clone())
        .unwrap()
        .gossip
        .unwrap();
    assert_eq!(answer.signer, ms[0].id);
    assert_eq!(nodes[3].pending_actions(), 0);
}

/// The parameters of an epoch's last height: signed by `ms`, announcing
/// the set of `next`.
fn announcing(ms: &[Member], next: &[Member]) -> Params {
    let mut p = params(ms, domains());
    p.next_members_hash = params(next, domains()).set.hash();
    p
}

#[test]
fn the_last_height_of_an_epoch_is_a_checkpoint_that_announces_the_next_set() {
    let ms = members(4);
    let after = &ms[..3];
    let p = announcing(&ms, after);
    assert!(p.announces());
    // 3 is not a multiple of the interval and emitted no action.
    assert!(p.is_checkpoint_height(3, 0));
    assert!(!params(&ms, domains()).is_checkpoint_height(3, 0));
    let mut nodes: Vec<Node> = ms.iter().map(|m| node(p.clone(), m)).collect();
    let shares: Vec<Share> = nodes
        .iter_mut()
        .map(|n| commit(n, 3).gossip.unwrap())
        .collect();
    nodes[0].on_share(shares[1].clone()).unwrap();
    nodes[0].on_share(shares[3].clone()).unwrap();
    let rec = nodes[0].tick_completes();
    assert_eq!(rec.next_members_hash, params(after, domains()).set.hash());
    assert_eq!(verify(&p, &rec), 3);
}

#[test]
fn a_height_keeps_the_set_that_signs_it_after_the_set_changed() {
    let ms = members(4);
    let after: Vec<Member> = ms[..3]
        .iter()
        .map(|m| Member {
            id: m.id,
            key: m.key.clone(),
        })
        .collect();
    let old = Arc::new(announcing(&ms, &after));
    let mut new = params(&after, domains());
    new.epoch = 1;
    let new = Arc::new(new);
    let mut a = Collector::new(ms[0].id, ms[0].key.clone(), 0);
    let mut d = Collector::new(ms[3].id, ms[3].key.clone(), 0);
    a.on_commit(3, ROOT, Hash32::default(), 0, old.clone());
    let removed = d
        .on_commit(3, ROOT, Hash32::default(), 0, old.clone())
        .gossip
        .unwrap();
    // Height 5 is the new set's (and no checkpoint height).
    let step = a.on_commit(5, ROOT, Hash32::default(), 0, new.clone());
    assert!(step.gossip.is_none(), "5 is no checkpoint height");
    // The removed member's share of height 3 still counts there ...
    assert!(a.on_share(removed, Some(&new)).unwrap().completed.is_none());
    let mut b = Collector::new(ms[1].id, ms[1].key.clone(), 0);
    let share = b
        .on_commit(3, ROOT, Hash32::default(), 0, old.clone())
        .gossip
        .unwrap();
    assert!(a.on_share(share, Some(&new)).unwrap().completed.is_none());
    let mut settled = a.settle_waiting();
    assert_eq!(settled.len(), 1);
    let (rec, first) = settled.remove(0).completed.unwrap();
    assert!(first);
    assert_eq!(rec.epoch, 0);
    assert_eq!(verify(&old, &rec), 3);
    // ... but for a height of the new set it is refused.
    let late = d
        .on_commit(6, ROOT, Hash32::default(), 0, old)
        .gossip
        .unwrap();
    a.on_commit(6, ROOT, Hash32::default(), 0, new.clone());
    assert_eq!(
        a.on_share(late, Some(&new)).err(),
        Some(Refusal::NotMember(ms[3].id))
    );
    // And ahead of the tip, only the members of the heights ahead wait.
    let ahead = Share {
        height: 8,
        signer: ms[3].id,
        sigs: vec![],
    };
    assert_eq!(
        a.on_share(ahead, Some(&new)).err(),
        Some(Refusal::NotMember(ms[3].id))
    );
}

#[test]
fn a_share_for_a_far_away_height_is_dropped() {
    let ms = members(4);
    let mut a = collector(&ms, 0);
    let mut b = collector(&ms, 1);
    let mut share = commit(&mut b, 2).gossip.unwrap();
    for height in [u64::MAX, u64::MAX - 1, 2 + MAX_AHEAD + 1] {
        share.height = height;
        assert!(a.on_share(share.clone()).unwrap().completed.is_none());
    }
    assert_eq!(a.c.buffered_len, 0);
}
