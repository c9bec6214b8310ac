//! Hex in JSON (RPC and config): byte fields, signatures, and the 32-byte
//! ids (`ids.rs`). Under load these are written and read by the hundred
//! thousand a second (each tx's hash in every block event, each
//! submission's arguments, signature and answer), so the digits are
//! written through `hex::encode_to_slice`, on the stack where the length
//! is fixed (`hex::encode` built a `String` a char at a time), and read
//! from the JSON string in place (not copied into a `String` first).

use std::fmt;

/// `bytes` as lowercase hex digits, written into `buf` (twice as long).
pub(crate) fn digits<'b>(bytes: &[u8], buf: &'b mut [u8]) -> &'b str {
    hex::encode_to_slice(bytes, buf).expect("two digits a byte");
    std::str::from_utf8(buf).expect("hex digits are ASCII")
}

/// `bytes` as lowercase hex.
fn encode(bytes: &[u8]) -> String {
    let mut buf = vec![0u8; bytes.len() * 2];
    hex::encode_to_slice(bytes, &mut buf).expect("two digits a byte");
    String::from_utf8(buf).expect("hex digits are ASCII")
}

/// Hex's own error for bad digits.
fn invalid(e: hex::FromHexError) -> String {
    format!("invalid hex: {e}")
}

/// Exactly `N` bytes from hex digits: a bad digit or an odd count is
/// hex's error, another count "expected N bytes, got M".
pub(crate) fn decode_exact<const N: usize>(s: &str) -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    if s.len() == 2 * N {
        hex::decode_to_slice(s, &mut out).map_err(invalid)?;
        return Ok(out);
    }
    let bytes = hex::decode(s).map_err(invalid)?;
    Err(format!("expected {N} bytes, got {}", bytes.len()))
}

/// Reads a hex string (an optional `0x` first) with `parse`, from the
/// JSON string in place.
pub(crate) struct HexVisitor<F>(pub(crate) F);

impl<T, F: FnOnce(&str) -> Result<T, String>> serde::de::Visitor<'_> for HexVisitor<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a hex string")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
        (self.0)(s.strip_prefix("0x").unwrap_or(s)).map_err(E::custom)
    }
}

/// `Vec<u8>` as a hex string.
pub mod bytes {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_str(super::HexVisitor(|s: &str| {
            hex::decode(s).map_err(super::invalid)
        }))
    }
}

/// `[u8; 64]` (a signature) as a hex string.
pub mod array64 {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(super::digits(v, &mut [0u8; 128]))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        d.deserialize_str(super::HexVisitor(super::decode_exact::<64>))
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Both {
        #[serde(with = "super::bytes")]
        bytes: Vec<u8>,
        #[serde(with = "super::array64")]
        sig: [u8; 64],
    }

    /// The text is `hex::encode`'s, and `0x`, upper case and escapes read
    /// back; bad digits and lengths are refused with hex's own words.
    #[test]
    fn bytes_and_signatures_round_trip_as_hex_and_refuse_bad_input() {
        let both = Both {
            bytes: (0..=255u8).collect(),
            sig: std::array::from_fn(|i| (i * 3) as u8),
        };
        let json = serde_json::to_string(&both).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"bytes":"{}","sig":"{}"}}"#,
                hex::encode(&both.bytes),
                hex::encode(both.sig)
            )
        );
        assert_eq!(serde_json::from_str::<Both>(&json).unwrap(), both);
        let upper = format!(
            r#"{{"bytes":"0x{}","sig":"0X{}"}}"#,
            hex::encode_upper(&both.bytes),
            hex::encode_upper(both.sig)
        );
        // `0X` is not a prefix: a bad digit.
        assert!(serde_json::from_str::<Both>(&upper).is_err());
        let upper = upper.replace("0X", "0x");
        assert_eq!(serde_json::from_str::<Both>(&upper).unwrap(), both);
        let escaped = json.replacen("00", "\\u00300", 1);
        assert_eq!(serde_json::from_str::<Both>(&escaped).unwrap(), both);

        let with_sig = |sig: &str| format!(r#"{{"bytes":"","sig":"{sig}"}}"#);
        let err = |json: &str| serde_json::from_str::<Both>(json).unwrap_err().to_string();
        assert!(err(&with_sig(&hex::encode([1u8; 63]))).contains("expected 64 bytes"));
        assert!(err(&with_sig(&hex::encode([1u8; 65]))).contains("expected 64 bytes"));
        assert!(err(&with_sig(&"g".repeat(128))).contains("Invalid character 'g'"));
        assert!(err(&with_sig("abc")).contains("Odd number of digits"));
        assert!(err(r#"{"bytes":"zz","sig":""}"#).contains("Invalid character 'z'"));
        assert!(err(r#"{"bytes":7,"sig":""}"#).contains("a hex string"));
    }
}
