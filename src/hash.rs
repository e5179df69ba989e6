//! Hashes shared by every layer: `Hash256`, SHA-256 and double SHA-256.
//!
//! Owns the hash type and its text form. It must not know what is hashed: the callers
//! (params, headers, transactions) define their own preimages.

use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// A 32-byte hash, shown and parsed as 64 lower-case hex digits (byte order as stored).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash256(pub [u8; 32]);

impl Hash256 {
    /// The all-zero hash.
    pub const ZERO: Hash256 = Hash256([0u8; 32]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash256({self})")
    }
}

/// Why a string is not a [`Hash256`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseHashError {
    /// Not 64 characters long.
    #[error("a hash is 64 hex digits, got {0} characters")]
    Length(usize),
    /// A character outside `[0-9a-fA-F]`.
    #[error("a hash is 64 hex digits: {0}")]
    Hex(#[from] hex::FromHexError),
}

impl FromStr for Hash256 {
    type Err = ParseHashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 {
            return Err(ParseHashError::Length(s.len()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(Hash256(out))
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash256 {
    Hash256(Sha256::digest(data).into())
}

/// SHA-256 over the concatenation of `parts`, without copying them together.
pub fn sha256_parts(parts: &[&[u8]]) -> Hash256 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Hash256(h.finalize().into())
}

/// `H(x) = SHA-256(SHA-256(x))`, the consensus hash (DESIGN.md §2).
pub fn sha256d(data: &[u8]) -> Hash256 {
    sha256(&sha256(data).0)
}

/// `H` over the concatenation of `parts`.
pub fn sha256d_parts(parts: &[&[u8]]) -> Hash256 {
    sha256(&sha256_parts(parts).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc_matches_fips_180_vector() {
        assert_eq!(
            sha256(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sha256d_is_sha256_twice_and_parts_equal_whole() {
        let once = sha256(b"hello world");
        assert_eq!(sha256d(b"hello world"), sha256(&once.0));
        assert_eq!(sha256d_parts(&[b"hello", b" ", b"world"]), sha256d(b"hello world"));
    }

    #[test]
    fn hash_text_round_trips_and_rejects_bad_text() {
        let h = sha256(b"x");
        assert_eq!(h.to_string().parse::<Hash256>().unwrap(), h);
        assert_eq!("ab".parse::<Hash256>(), Err(ParseHashError::Length(2)));
        assert!(matches!("zz".repeat(32).parse::<Hash256>(), Err(ParseHashError::Hex(_))));
    }
}
