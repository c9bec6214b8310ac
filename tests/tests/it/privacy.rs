//! Scenario 14, at the network: what a peer on a context's topic receives.
//! A member played by the test and a peer that is no member both subscribe
//! to the topic while the members commit a distinctive value. Neither sees
//! the value, or the context key, in any payload as it arrived; the
//! member's payloads open with its copy of the key and carry the value
//! (so the search would have found it, were the traffic in clear).

use std::time::{Duration, Instant};

use conclave_node::seal::Purpose;
use rand::RngCore;

use crate::byzantine::{byzantine_net, member_context_key, Peer, BYZ};
use crate::{load, COMMIT_TIMEOUT};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_on_the_topic_reads_only_ciphertext() {
    let net = byzantine_net().await;
    let member = Peer::member(&net, BYZ).await;
    let outsider = Peer::outsider(&net, 0x5ec7e7).await;
    let mut secret = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let value = hex::encode(secret);

    crate::commit_set(&net.nodes[0], net.context, "secret", &value).await;
    load(&net, 2).await;

    let key = member_context_key(&net, BYZ);
    let ctx = net.context;
    // The member's copies of the gossip carry the value once opened.
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    loop {
        let seen = member
            .received
            .lock()
            .unwrap()
            .iter()
            .filter_map(|m| key.open(&ctx, Purpose::Gossip, m).ok())
            .any(|m| contains(&m, value.as_bytes()));
        if seen {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the member never received the tx"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let member_msgs = member.received.lock().unwrap().clone();
    let outsider_msgs = outsider.received.lock().unwrap().clone();
    for (who, msgs) in [("member", &member_msgs), ("outsider", &outsider_msgs)] {
        for m in msgs.iter() {
            assert!(
                !contains(m, value.as_bytes()),
                "the {who} received the value in clear"
            );
            assert!(
                !contains(m, key.secret()),
                "the {who} received the context key"
            );
            assert!(
                !contains(m, br#""key":"secret""#),
                "the {who} received tx args in clear"
            );
        }
    }
    // Nothing the outsider got opens without the key (it holds none; a
    // guess of a key of the same epoch does not open it either).
    let guess = conclave_node::seal::ContextKey::generate(0);
    assert!(outsider_msgs
        .iter()
        .all(|m| guess.open(&ctx, Purpose::Gossip, m).is_err()));
    assert!(!member_msgs.is_empty());
}
