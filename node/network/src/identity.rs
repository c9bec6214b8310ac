//! Member ids and libp2p peer ids are the same ed25519 key.
//!
//! A member's 32-byte ed25519 public key is its [`MemberId`]; the node uses the
//! member's secret key as its libp2p identity, so a [`PeerId`] maps 1:1 to a
//! member and every connection is authenticated as that member by Noise.

use conclave_consensus::{ContextId, MemberId};
use libp2p::identity::{self, ed25519, Keypair, PublicKey};
use libp2p::multiaddr::Protocol;
use libp2p::{gossipsub::IdentTopic, Multiaddr, PeerId};

use crate::error::{Error, Result};

/// Multihash code of the identity hash, used for peer ids of small keys.
const IDENTITY_MULTIHASH: u64 = 0x00;

/// The libp2p keypair of the member whose ed25519 secret key is `secret`.
pub fn keypair_from_secret(secret: [u8; 32]) -> Result<Keypair> {
    Keypair::ed25519_from_bytes(secret).map_err(|_| Error::InvalidSecret)
}

/// The member id of the ed25519 secret key `secret`.
pub fn member_from_secret(secret: [u8; 32]) -> Result<MemberId> {
    let keypair = keypair_from_secret(secret)?;
    member_of(&keypair.public().to_peer_id()).ok_or(Error::InvalidSecret)
}

/// The peer id of a member. Fails if the member id is not a valid ed25519
/// public key (such a member can never connect).
pub fn peer_id_of(member: &MemberId) -> Result<PeerId> {
    let key = ed25519::PublicKey::try_from_bytes(member.as_bytes())
        .map_err(|_| Error::InvalidMemberKey(*member))?;
    Ok(PublicKey::from(key).to_peer_id())
}

/// The member behind a peer id, if the peer id is an inlined ed25519 key.
pub fn member_of(peer: &PeerId) -> Option<MemberId> {
    let multihash = peer.as_ref();
    if multihash.code() != IDENTITY_MULTIHASH {
        return None;
    }
    let key = identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let key = key.try_into_ed25519().ok()?;
    Some(MemberId(key.to_bytes()))
}

/// The gossipsub topic of a context: `conclave/ctx/<hex>`.
pub fn topic_of(context: &ContextId) -> IdentTopic {
    IdentTopic::new(format!("conclave/ctx/{}", context.to_hex()))
}

/// The peer id in an address's trailing `/p2p/<peer id>` component.
pub fn peer_in_addr(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

/// `addr` without its trailing `/p2p/<peer id>`, if any.
pub fn strip_peer(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_and_peer_ids_round_trip() {
        let member = member_from_secret([7; 32]).unwrap();
        let keypair = keypair_from_secret([7; 32]).unwrap();
        let peer = keypair.public().to_peer_id();
        assert_eq!(peer_id_of(&member).unwrap(), peer);
        assert_eq!(member_of(&peer), Some(member));
    }

    #[test]
    fn member_is_the_raw_ed25519_public_key() {
        let keypair = keypair_from_secret([9; 32]).unwrap();
        let public = keypair.public().try_into_ed25519().unwrap().to_bytes();
        assert_eq!(member_from_secret([9; 32]).unwrap(), MemberId(public));
    }

    #[test]
    fn non_ed25519_peers_and_bad_keys_map_to_nothing() {
        assert_eq!(member_of(&PeerId::random()), None);
        // Some 32-byte strings do not decompress to a curve point.
        let bad = (0u8..=255)
            .map(|b| MemberId([b; 32]))
            .find(|m| peer_id_of(m).is_err())
            .unwrap();
        assert!(matches!(peer_id_of(&bad), Err(Error::InvalidMemberKey(_))));
    }

    #[test]
    fn topic_names_are_pinned() {
        let topic = topic_of(&ContextId([0xab; 32]));
        assert_eq!(
            topic.to_string(),
            format!("conclave/ctx/{}", "ab".repeat(32))
        );
    }

    #[test]
    fn p2p_suffix_is_parsed_and_stripped() {
        let peer = keypair_from_secret([1; 32]).unwrap().public().to_peer_id();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/5/p2p/{peer}").parse().unwrap();
        assert_eq!(peer_in_addr(&addr), Some(peer));
        assert_eq!(strip_peer(&addr).to_string(), "/ip4/127.0.0.1/tcp/5");
        assert_eq!(peer_in_addr(&strip_peer(&addr)), None);
    }
}
