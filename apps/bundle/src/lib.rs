//! The Conclave guest apps, compiled to wasm32 by this crate's build script
//! from the guest workspace in `apps/` and embedded as bytes.
//!
//! - [`KV`]: the key-value store app (`apps/kv`).
//! - [`FAULTS`]: a test app whose methods misbehave on purpose (`apps/faults`).
//! - [`DAO`]: proposals, votes and on-chain payouts (`apps/dao`).
//! - [`CHAT`]: a members' chat and per-member notes (`apps/chat`).
//!
//! [`by_name`] and [`ALL`] let the CLI and tests pick an app by name
//! (`--app kv`). To add an app, list it in `build.rs`'s `APPS` and in
//! [`ALL`] here.

/// The key-value store app.
pub const KV: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kv.wasm"));

/// The fault-injection test app.
pub const FAULTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/faults.wasm"));

/// The DAO app: proposals, votes, on-chain actions.
pub const DAO: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dao.wasm"));

/// The chat app: messages among members, per-member notes.
pub const CHAT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chat.wasm"));

/// Every embedded app as `(name, wasm bytes)`, sorted by name.
pub const ALL: &[(&str, &[u8])] = &[("chat", CHAT), ("dao", DAO), ("faults", FAULTS), ("kv", KV)];

/// The wasm bytes of the app called `name`, if there is one.
pub fn by_name(name: &str) -> Option<&'static [u8]> {
    ALL.iter()
        .find(|(candidate, _)| *candidate == name)
        .map(|(_, wasm)| *wasm)
}

/// The names of the embedded apps, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    ALL.iter().map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_app_is_a_wasm_module() {
        for (name, wasm) in ALL {
            assert!(
                wasm.starts_with(b"\0asm\x01\0\0\0"),
                "{name} is not a wasm binary"
            );
        }
    }

    #[test]
    fn lookup_by_name() {
        assert_eq!(by_name("kv"), Some(KV));
        assert_eq!(by_name("faults"), Some(FAULTS));
        assert_eq!(by_name("nope"), None);
        assert_eq!(by_name("dao"), Some(DAO));
        assert_eq!(by_name("chat"), Some(CHAT));
        assert_eq!(names().collect::<Vec<_>>(), ["chat", "dao", "faults", "kv"]);
    }

    #[test]
    fn wasm_does_not_embed_machine_paths() {
        let repo_dir = env!("CARGO_MANIFEST_DIR").as_bytes();
        for (name, wasm) in ALL {
            for needle in [repo_dir, b"/.cargo/registry/".as_slice()] {
                assert!(
                    !wasm.windows(needle.len()).any(|window| window == needle),
                    "{name} embeds the path {}",
                    String::from_utf8_lossy(needle)
                );
            }
        }
    }

    #[test]
    fn all_is_sorted_and_unique() {
        let names: Vec<_> = names().collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
    }
}
