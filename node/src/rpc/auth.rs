//! RPC callers' credentials; [`super::policy`] says which one each method
//! needs.
//!
//! - The **admin token**: 32 random bytes in `home/keys/admin.token` (hex),
//!   held by the node's operator and sent as `X-Conclave-Admin: <hex>`.
//! - **Member tokens**: a member signs, with its ed25519 key,
//!   [`login_message`] (`"conclave/rpc-login/v1" ‖ node member id ‖
//!   member ‖ expires_ms as u64 BE`) and trades the signature for a token at
//!   `auth_login`. The token, `v1.<member hex>.<expires_ms>.<mac hex>`, is
//!   self-contained: an HMAC-SHA256 under the node-local
//!   `home/keys/rpc_token.key`, so the node keeps no sessions, and another
//!   node neither issued nor accepts it. Sent as `Authorization: Bearer
//!   <token>`. Binding the login to the node's own member id keeps a
//!   signature made for one node from buying a token at another.
//!
//! Both headers are read once per HTTP request or WebSocket connection
//! ([`Caller::from_headers`]); expiry is checked at every call.

use conclave_consensus::MemberId;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header carrying the admin token.
pub const ADMIN_HEADER: &str = "x-conclave-admin";
/// The header carrying a member token, as `Bearer <token>`.
pub const AUTHORIZATION_HEADER: &str = "authorization";
/// What a member signs to log in (then the node's and its own member id
/// and the expiry).
pub const LOGIN_DOMAIN: &[u8] = b"conclave/rpc-login/v1";
/// What a token's MAC covers before the member id and the expiry.
const TOKEN_DOMAIN: &[u8] = b"conclave/rpc-token/v1";
/// How far ahead a login may set its token's expiry.
pub const MAX_TOKEN_TTL_MS: u64 = 24 * 3600 * 1000;
/// Longer than any well-formed token (`v1.` + 64 + `.` + 20 + `.` + 64).
const MAX_TOKEN_LEN: usize = 160;

type HmacSha256 = Hmac<Sha256>;

/// Why a credential or a login was refused. The messages are what the
/// caller reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed member token: {0}")]
    Malformed(&'static str),
    #[error("member token does not verify (forged, altered, or issued by another node)")]
    Forged,
    #[error(
        "member token expired at {expires_ms} ms (now {now_ms} ms); log in again with auth_login"
    )]
    Expired { expires_ms: u64, now_ms: u64 },
    #[error(
        "admin token does not match this node's ({ADMIN_HEADER} must hold home/keys/admin.token)"
    )]
    BadAdmin,
    #[error("login refused: member {0} is not an ed25519 public key")]
    BadMember(MemberId),
    #[error("login refused: the signature is not 64 bytes of hex")]
    MalformedSignature,
    #[error(
        "login refused: the signature does not verify (wrong key, or signed for another node)"
    )]
    BadSignature,
    #[error("login refused: expires_ms {expires_ms} is not in the future (now {now_ms})")]
    ExpiryPast { expires_ms: u64, now_ms: u64 },
    #[error(
        "login refused: expires_ms {expires_ms} is more than 24 h after now ({now_ms}); ask for less"
    )]
    ExpiryTooFar { expires_ms: u64, now_ms: u64 },
}

/// The bytes a member signs to log in at the node whose member id is `node`.
pub fn login_message(node: &MemberId, member: &MemberId, expires_ms: u64) -> Vec<u8> {
    let mut m = Vec::with_capacity(LOGIN_DOMAIN.len() + 72);
    m.extend_from_slice(LOGIN_DOMAIN);
    m.extend_from_slice(node.as_bytes());
    m.extend_from_slice(member.as_bytes());
    m.extend_from_slice(&expires_ms.to_be_bytes());
    m
}

/// A login signature (hex) of `key`'s member at the node `node`.
pub fn sign_login(key: &SigningKey, node: &MemberId, expires_ms: u64) -> String {
    let member = MemberId(key.verifying_key().to_bytes());
    hex::encode(
        key.sign(&login_message(node, &member, expires_ms))
            .to_bytes(),
    )
}

/// A member token's contents, once its MAC verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberToken {
    pub member: MemberId,
    pub expires_ms: u64,
}

impl MemberToken {
    /// The member, if the token has not expired at `now_ms`.
    pub fn check(&self, now_ms: u64) -> Result<MemberId, AuthError> {
        if now_ms >= self.expires_ms {
            return Err(AuthError::Expired {
                expires_ms: self.expires_ms,
                now_ms,
            });
        }
        Ok(self.member)
    }
}

/// Issues and checks this node's credentials.
pub struct Verifier {
    /// This node's member id, which logins must be signed for.
    node: MemberId,
    admin_token: [u8; 32],
    token_key: [u8; 32],
}

impl Verifier {
    pub fn new(node: MemberId, secrets: &crate::keys::RpcSecrets) -> Self {
        Self {
            node,
            admin_token: secrets.admin_token,
            token_key: secrets.token_key,
        }
    }

    fn mac(&self, member: &MemberId, expires_ms: u64) -> HmacSha256 {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.token_key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(TOKEN_DOMAIN);
        mac.update(member.as_bytes());
        mac.update(&expires_ms.to_be_bytes());
        mac
    }

    /// A member token for `member`, good until `expires_ms`.
    pub fn mint(&self, member: &MemberId, expires_ms: u64) -> String {
        let tag = self.mac(member, expires_ms).finalize().into_bytes();
        format!("v1.{}.{expires_ms}.{}", member.to_hex(), hex::encode(tag))
    }

    /// Checks a token's form and MAC (not its expiry: [`MemberToken::check`]).
    pub fn verify(&self, token: &str) -> Result<MemberToken, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed("too long"));
        }
        let mut parts = token.split('.');
        let (Some(version), Some(member), Some(expires), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(AuthError::Malformed(
                "expected v1.<member hex>.<expires_ms>.<mac hex>",
            ));
        };
        if version != "v1" {
            return Err(AuthError::Malformed("unknown version (expected v1)"));
        }
        let member = hex32(member).ok_or(AuthError::Malformed("member is not 32 bytes of hex"))?;
        if expires.is_empty() || !expires.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AuthError::Malformed("expires_ms is not a number"));
        }
        let expires_ms: u64 = expires
            .parse()
            .map_err(|_| AuthError::Malformed("expires_ms is not a number"))?;
        let tag = hex32(tag).ok_or(AuthError::Malformed("mac is not 32 bytes of hex"))?;
        let member = MemberId(member);
        self.mac(&member, expires_ms)
            .verify_slice(&tag)
            .map_err(|_| AuthError::Forged)?;
        Ok(MemberToken { member, expires_ms })
    }

    /// `auth_login`: checks the member's signature over [`login_message`]
    /// for this node and the expiry (in the future, at most 24 h ahead),
    /// and issues a token.
    pub fn login(
        &self,
        member: &MemberId,
        expires_ms: u64,
        signature_hex: &str,
        now_ms: u64,
    ) -> Result<String, AuthError> {
        if expires_ms <= now_ms {
            return Err(AuthError::ExpiryPast { expires_ms, now_ms });
        }
        if expires_ms - now_ms > MAX_TOKEN_TTL_MS {
            return Err(AuthError::ExpiryTooFar { expires_ms, now_ms });
        }
        let bytes: [u8; 64] =
            hex::decode(signature_hex.strip_prefix("0x").unwrap_or(signature_hex))
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or(AuthError::MalformedSignature)?;
        let key = VerifyingKey::from_bytes(member.as_bytes())
            .map_err(|_| AuthError::BadMember(*member))?;
        key.verify_strict(
            &login_message(&self.node, member, expires_ms),
            &Signature::from_bytes(&bytes),
        )
        .map_err(|_| AuthError::BadSignature)?;
        Ok(self.mint(member, expires_ms))
    }

    /// Whether `presented` (hex) is this node's admin token, in constant
    /// time.
    fn is_admin_token(&self, presented: &[u8]) -> bool {
        let Some(bytes) = std::str::from_utf8(presented)
            .ok()
            .and_then(|s| hex32(s.trim()))
        else {
            return false;
        };
        bool::from(bytes.ct_eq(&self.admin_token))
    }
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    hex::decode(s).ok()?.try_into().ok()
}

/// The credentials one HTTP request or WebSocket connection presented,
/// each checked on its own: a bad one grants nothing and leaves the other
/// as it is. `None` when not presented.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    pub admin: Option<Result<(), AuthError>>,
    pub member: Option<Result<MemberToken, AuthError>>,
}

impl Caller {
    /// Checks the raw values of the `Authorization` headers (all of them:
    /// more than one is refused) and of the `X-Conclave-Admin` header.
    pub fn from_headers<'a>(
        verifier: &Verifier,
        authorization: impl IntoIterator<Item = &'a [u8]>,
        admin: Option<&[u8]>,
    ) -> Self {
        let mut auth = authorization.into_iter();
        let member = match (auth.next(), auth.next()) {
            (None, _) => None,
            (Some(_), Some(_)) => Some(Err(AuthError::Malformed(
                "more than one Authorization header",
            ))),
            (Some(value), None) => Some(bearer(value).and_then(|t| verifier.verify(t))),
        };
        let admin = admin.map(|v| {
            if verifier.is_admin_token(v) {
                Ok(())
            } else {
                Err(AuthError::BadAdmin)
            }
        });
        Self { admin, member }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self.admin, Some(Ok(())))
    }

    /// The admin token, or why it is missing.
    pub fn admin(&self) -> Result<(), String> {
        match &self.admin {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(e.to_string()),
            None => Err(format!(
                "this method needs the node's admin token: send `{}: <hex>` with the contents of home/keys/admin.token",
                "X-Conclave-Admin"
            )),
        }
    }

    /// The member's token, valid at `now_ms`, or why there is none.
    pub fn member(&self, now_ms: u64) -> Result<MemberToken, String> {
        match &self.member {
            Some(Ok(t)) => t.check(now_ms).map(|_| *t).map_err(|e| e.to_string()),
            Some(Err(e)) => Err(e.to_string()),
            None => Err(
                "authentication required: send `Authorization: Bearer <member token>` \
                 (get one with auth_login, or `conclave auth token`)"
                    .into(),
            ),
        }
    }
}

fn bearer(value: &[u8]) -> Result<&str, AuthError> {
    let value = std::str::from_utf8(value)
        .map_err(|_| AuthError::Malformed("Authorization header is not text"))?
        .trim();
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        _ => Err(AuthError::Malformed(
            "Authorization header must be `Bearer <token>`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::RpcSecrets;

    const NOW: u64 = 1_700_000_000_000;

    fn member(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn id(key: &SigningKey) -> MemberId {
        MemberId(key.verifying_key().to_bytes())
    }

    fn verifier(seed: u8) -> Verifier {
        let secrets = RpcSecrets {
            admin_token: [seed; 32],
            token_key: [seed.wrapping_add(1); 32],
        };
        Verifier::new(id(&member(seed)), &secrets)
    }

    #[test]
    fn token_roundtrip() {
        let v = verifier(1);
        let alice = id(&member(7));
        let token = v.mint(&alice, NOW + 1000);
        assert!(token.starts_with(&format!("v1.{}.{}.", alice.to_hex(), NOW + 1000)));
        let t = v.verify(&token).unwrap();
        assert_eq!(
            t,
            MemberToken {
                member: alice,
                expires_ms: NOW + 1000
            }
        );
        assert_eq!(t.check(NOW), Ok(alice));
        assert_eq!(t.check(NOW + 999), Ok(alice));
    }

    #[test]
    fn forged_or_altered_token_is_refused() {
        let v = verifier(1);
        let alice = id(&member(7));
        let bob = id(&member(8));
        let token = v.mint(&alice, NOW + 1000);
        // Another member's id under alice's MAC.
        let swapped = token.replace(&alice.to_hex(), &bob.to_hex());
        assert_eq!(v.verify(&swapped), Err(AuthError::Forged));
        // A later expiry under the old MAC.
        let extended = token.replace(&format!(".{}.", NOW + 1000), &format!(".{}.", NOW + 9000));
        assert_eq!(v.verify(&extended), Err(AuthError::Forged));
        // A made-up MAC.
        let mut forged = token.clone();
        forged.replace_range(forged.len() - 64.., &"ab".repeat(32));
        assert_eq!(v.verify(&forged), Err(AuthError::Forged));
    }

    #[test]
    fn another_nodes_token_is_refused() {
        let alice = id(&member(7));
        let token = verifier(2).mint(&alice, NOW + 1000);
        assert_eq!(verifier(1).verify(&token), Err(AuthError::Forged));
    }

    #[test]
    fn expired_token_is_refused() {
        let v = verifier(1);
        let t = v.verify(&v.mint(&id(&member(7)), NOW)).unwrap();
        assert_eq!(
            t.check(NOW),
            Err(AuthError::Expired {
                expires_ms: NOW,
                now_ms: NOW
            })
        );
        assert!(t
            .check(NOW + 1)
            .unwrap_err()
            .to_string()
            .contains("expired"));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let v = verifier(1);
        let good = v.mint(&id(&member(7)), NOW + 1000);
        let parts: Vec<&str> = good.split('.').collect();
        for bad in [
            String::new(),
            "v1".into(),
            "garbage".into(),
            format!("v2.{}.{}.{}", parts[1], parts[2], parts[3]),
            format!("v1.{}.{}", parts[1], parts[2]),
            format!("{good}.extra"),
            format!("v1.{}.{}.{}", &parts[1][2..], parts[2], parts[3]),
            format!("v1.{}.{}.{}", "zz".repeat(32), parts[2], parts[3]),
            format!("v1.{}.+{}.{}", parts[1], parts[2], parts[3]),
            format!("v1.{}..{}", parts[1], parts[3]),
            format!("v1.{}.99999999999999999999999.{}", parts[1], parts[3]),
            format!("v1.{}.{}.{}", parts[1], parts[2], &parts[3][..62]),
            "x".repeat(10_000),
        ] {
            assert!(
                matches!(v.verify(&bad), Err(AuthError::Malformed(_))),
                "{bad:?} -> {:?}",
                v.verify(&bad)
            );
        }
    }

    #[test]
    fn login_issues_a_token_for_the_signer() {
        let v = verifier(1);
        let alice = member(7);
        let sig = sign_login(&alice, &id(&member(1)), NOW + 60_000);
        let token = v.login(&id(&alice), NOW + 60_000, &sig, NOW).unwrap();
        assert_eq!(v.verify(&token).unwrap().check(NOW), Ok(id(&alice)));
    }

    #[test]
    fn login_with_a_bad_signature_is_refused() {
        let v = verifier(1);
        let node = id(&member(1));
        let (alice, mallory) = (member(7), member(9));
        // Mallory signs, claiming to be alice.
        let sig = sign_login(&mallory, &node, NOW + 60_000);
        assert_eq!(
            v.login(&id(&alice), NOW + 60_000, &sig, NOW),
            Err(AuthError::BadSignature)
        );
        // Alice's signature for another expiry.
        let sig = sign_login(&alice, &node, NOW + 60_000);
        assert_eq!(
            v.login(&id(&alice), NOW + 120_000, &sig, NOW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            v.login(&id(&alice), NOW + 60_000, "abcd", NOW),
            Err(AuthError::MalformedSignature)
        );
        assert_eq!(
            v.login(&id(&alice), NOW + 60_000, &"zz".repeat(64), NOW),
            Err(AuthError::MalformedSignature)
        );
    }

    #[test]
    fn login_signed_for_another_node_is_refused() {
        let alice = member(7);
        let sig = sign_login(&alice, &id(&member(2)), NOW + 60_000);
        assert!(verifier(2)
            .login(&id(&alice), NOW + 60_000, &sig, NOW)
            .is_ok());
        assert_eq!(
            verifier(1).login(&id(&alice), NOW + 60_000, &sig, NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn login_expiry_must_be_ahead_and_within_a_day() {
        let v = verifier(1);
        let node = id(&member(1));
        let alice = member(7);
        let at = |expires: u64| {
            v.login(
                &id(&alice),
                expires,
                &sign_login(&alice, &node, expires),
                NOW,
            )
        };
        assert!(matches!(at(NOW), Err(AuthError::ExpiryPast { .. })));
        assert!(matches!(at(NOW - 1), Err(AuthError::ExpiryPast { .. })));
        assert!(matches!(
            at(NOW + MAX_TOKEN_TTL_MS + 1),
            Err(AuthError::ExpiryTooFar { .. })
        ));
        assert!(matches!(at(u64::MAX), Err(AuthError::ExpiryTooFar { .. })));
        assert!(at(NOW + MAX_TOKEN_TTL_MS).is_ok());
    }

    #[test]
    fn caller_checks_each_credential_on_its_own() {
        let v = verifier(1);
        let alice = id(&member(7));
        let bearer = format!("Bearer {}", v.mint(&alice, NOW + 1000));
        let admin = hex::encode([1u8; 32]);

        let both = Caller::from_headers(&v, [bearer.as_bytes()], Some(admin.as_bytes()));
        assert!(both.is_admin());
        assert_eq!(both.member(NOW).map(|t| t.member), Ok(alice));
        assert!(both.member(NOW + 1000).unwrap_err().contains("expired"));

        let none = Caller::from_headers(&v, [], None);
        assert!(!none.is_admin());
        assert!(none.admin().unwrap_err().contains("admin token"));
        assert!(none
            .member(NOW)
            .unwrap_err()
            .contains("authentication required"));

        // A wrong admin token grants nothing and leaves the member token be.
        let wrong = hex::encode([2u8; 32]);
        let c = Caller::from_headers(&v, [bearer.as_bytes()], Some(wrong.as_bytes()));
        assert!(!c.is_admin());
        assert!(c.admin().unwrap_err().contains("does not match"));
        assert!(c.member(NOW).is_ok());
        let c = Caller::from_headers(&v, [], Some(b"not hex".as_slice()));
        assert!(!c.is_admin());

        // Not a bearer token, two of them, lower-case scheme.
        let c = Caller::from_headers(&v, [b"Basic abc".as_slice()], None);
        assert!(c.member(NOW).unwrap_err().contains("Bearer"));
        let c = Caller::from_headers(&v, [bearer.as_bytes(), bearer.as_bytes()], None);
        assert!(c.member(NOW).unwrap_err().contains("more than one"));
        let lower = bearer.replace("Bearer", "bearer");
        let c = Caller::from_headers(&v, [lower.as_bytes()], None);
        assert!(c.member(NOW).is_ok());
    }
}
