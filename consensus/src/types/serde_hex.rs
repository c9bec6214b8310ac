//! Serde helpers: bytes as hex strings in JSON (RPC and config). Each
//! submitted tx comes with its arguments and signature, so the digits
//! are written through `hex::encode_to_slice` (not a `String` pushed a
//! char at a time) and read from the JSON string in place (not copied
//! into a `String` first).

use std::fmt;

/// `bytes` as lowercase hex.
fn encode(bytes: &[u8]) -> String {
    let mut digits = vec![0u8; bytes.len() * 2];
    hex::encode_to_slice(bytes, &mut digits).expect("two digits a byte");
    String::from_utf8(digits).expect("hex digits are ASCII")
}

/// Reads a hex string (an optional `0x` first) with `parse`, from the
/// JSON string in place.
struct HexVisitor<F>(F);

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
            hex::decode(s).map_err(|e| e.to_string())
        }))
    }
}

/// `[u8; 64]` (a signature) as a hex string.
pub mod array64 {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        let mut digits = [0u8; 128];
        hex::encode_to_slice(v, &mut digits).expect("128 digits for 64 bytes");
        s.serialize_str(std::str::from_utf8(&digits).expect("hex digits are ASCII"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        d.deserialize_str(super::HexVisitor(|s: &str| {
            let mut out = [0u8; 64];
            if s.len() == 128 {
                hex::decode_to_slice(s, &mut out).map_err(|e| e.to_string())?;
                return Ok(out);
            }
            hex::decode(s).map_err(|e| e.to_string())?;
            Err("expected 64 bytes".to_string())
        }))
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
