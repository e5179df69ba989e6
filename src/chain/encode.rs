//! The one canonical encoding of every consensus object: bincode 2 (`=2.0.1`) through
//! serde, little-endian, fixed-width integers (DESIGN.md §2).
//!
//! Owns [`encode`] and [`decode`]; nothing else in the crate calls bincode. Decoding checks
//! the input length against the caller's limit before it reads anything, never
//! pre-allocates more than the input can hold, and rejects trailing bytes, so every
//! object has exactly one encoding.

use bincode::config::{Configuration, Fixint, Limit, LittleEndian};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Hard ceiling on any decoded object (above the largest block limit of any network).
pub const MAX_OBJECT_BYTES: usize = 32 * 1024 * 1024;

type Config = Configuration<LittleEndian, Fixint, Limit<MAX_OBJECT_BYTES>>;

/// The consensus bincode configuration.
///
/// # Consensus
/// Changing it changes every hash on the chain.
pub const fn config() -> Config {
    bincode::config::standard().with_little_endian().with_fixed_int_encoding().with_limit::<MAX_OBJECT_BYTES>()
}

/// Why bytes do not decode to an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is longer than the object's limit.
    #[error("{what} of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The object type.
        what: &'static str,
        /// Input length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not a valid encoding.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The object type.
        what: &'static str,
        /// bincode's reason, on one line.
        reason: String,
    },
    /// A valid encoding followed by extra bytes.
    #[error("{what} has {extra} trailing bytes after its encoding")]
    TrailingBytes {
        /// The object type.
        what: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
}

/// Encodes `value` canonically.
///
/// # Panics
/// Only if the object is larger than [`MAX_OBJECT_BYTES`], which the size checks of
/// construction and validation rule out for every consensus object.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, config()).expect("consensus objects stay below MAX_OBJECT_BYTES")
}

/// Length of the canonical encoding of `value`.
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    encode(value).len()
}

/// Decodes exactly one `T` from `bytes` (at most `limit` bytes; trailing bytes rejected).
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize, what: &'static str) -> Result<T, DecodeError> {
    let limit = limit.min(MAX_OBJECT_BYTES);
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge { what, len: bytes.len(), limit });
    }
    let (value, used): (T, usize) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| DecodeError::Malformed { what, reason: e.to_string().replace('\n', " ") })?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes { what, extra: bytes.len() - used });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        a: u32,
        b: Vec<f64>,
        c: Option<[u8; 4]>,
    }

    #[test]
    fn encoding_is_fixed_width_little_endian() {
        let bytes = encode(&Sample { a: 1, b: vec![1.5], c: None });
        // u32 a, u64 length, f64 bits, option tag.
        assert_eq!(bytes.len(), 4 + 8 + 8 + 1);
        assert_eq!(&bytes[..4], &[1, 0, 0, 0]);
        assert_eq!(&bytes[4..12], &1u64.to_le_bytes());
        assert_eq!(&bytes[12..20], &1.5f64.to_le_bytes());
    }

    #[test]
    fn decode_rejects_trailing_bytes_oversize_and_garbage() {
        let s = Sample { a: 7, b: vec![0.25, -0.0], c: Some([1, 2, 3, 4]) };
        let mut bytes = encode(&s);
        assert_eq!(decode::<Sample>(&bytes, 1000, "sample").unwrap(), s);
        bytes.push(0);
        assert!(matches!(decode::<Sample>(&bytes, 1000, "sample"), Err(DecodeError::TrailingBytes { extra: 1, .. })));
        assert!(matches!(decode::<Sample>(&bytes, 10, "sample"), Err(DecodeError::TooLarge { .. })));
        assert!(matches!(decode::<Sample>(&bytes[..9], 1000, "sample"), Err(DecodeError::Malformed { .. })));
    }

    #[test]
    fn a_huge_length_prefix_fails_without_allocating_it() {
        let mut bytes = 7u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        assert!(matches!(decode::<Sample>(&bytes, 1000, "sample"), Err(DecodeError::Malformed { .. })));
    }
}
