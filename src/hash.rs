//! Hashes shared by every layer: `Hash256`, SHA-256 and double SHA-256.
//!
//! Owns the hash type and its text form. It must not know what is hashed: the callers
//! (params, headers, transactions) define their own preimages.

use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// A 32-byte hash, shown and parsed as 64 lower-case hex digits (byte order as stored).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
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

/// Bitcoin's merkle root over `leaves` (txids): pairs hashed with `H(left || right)`, the
/// last node duplicated on odd levels; the root of one leaf is the leaf, of none
/// [`Hash256::ZERO`].
///
/// # Consensus
/// Duplicating the last node makes `[a, b, c]` and `[a, b, c, c]` share a root
/// (CVE-2012-2459): callers must reject a transaction list with a repeated txid.
pub fn merkle_root(leaves: &[Hash256]) -> Hash256 {
    if leaves.is_empty() {
        return Hash256::ZERO;
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = next_level(&level);
    }
    level[0]
}

fn next_level(level: &[Hash256]) -> Vec<Hash256> {
    level
        .chunks(2)
        .map(|pair| {
            let right = pair.get(1).unwrap_or(&pair[0]);
            sha256d_parts(&[&pair[0].0, &right.0])
        })
        .collect()
}

/// A merkle inclusion proof (SPV): the sibling hashes from the leaf up to the root.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MerkleBranch {
    /// Position of the leaf.
    pub index: u32,
    /// Sibling at each level, leaf level first.
    pub siblings: Vec<Hash256>,
}

/// The branch proving `leaves[index]` is in [`merkle_root`]`(leaves)`; `None` if `index` is
/// out of range.
pub fn merkle_branch(leaves: &[Hash256], index: usize) -> Option<MerkleBranch> {
    if index >= leaves.len() {
        return None;
    }
    let mut siblings = Vec::new();
    let mut level = leaves.to_vec();
    let mut i = index;
    while level.len() > 1 {
        let sib = if i % 2 == 0 { *level.get(i + 1).unwrap_or(&level[i]) } else { level[i - 1] };
        siblings.push(sib);
        level = next_level(&level);
        i /= 2;
    }
    Some(MerkleBranch { index: index as u32, siblings })
}

impl MerkleBranch {
    /// The root this branch gives for `leaf`.
    pub fn root_for(&self, leaf: Hash256) -> Hash256 {
        let mut h = leaf;
        let mut i = self.index;
        for sib in &self.siblings {
            h = if i % 2 == 0 { sha256d_parts(&[&h.0, &sib.0]) } else { sha256d_parts(&[&sib.0, &h.0]) };
            i /= 2;
        }
        h
    }

    /// True when `leaf` is proven to be in the tree with `root`.
    pub fn verify(&self, leaf: Hash256, root: Hash256) -> bool {
        self.root_for(leaf) == root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc_matches_fips_180_vector() {
        assert_eq!(sha256(b"abc").to_string(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
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

    fn leaves(n: usize) -> Vec<Hash256> {
        (0..n).map(|i| sha256d(&(i as u64).to_le_bytes())).collect()
    }

    #[test]
    fn merkle_root_matches_bitcoin_rules() {
        let l = leaves(3);
        assert_eq!(merkle_root(&[]), Hash256::ZERO);
        assert_eq!(merkle_root(&l[..1]), l[0]);
        let ab = sha256d_parts(&[&l[0].0, &l[1].0]);
        let cc = sha256d_parts(&[&l[2].0, &l[2].0]);
        assert_eq!(merkle_root(&l), sha256d_parts(&[&ab.0, &cc.0]));
        // CVE-2012-2459: the duplicated list has the same root; callers reject duplicates.
        let dup = [l[0], l[1], l[2], l[2]];
        assert_eq!(merkle_root(&dup), merkle_root(&l));
    }

    #[test]
    fn every_branch_verifies_and_a_wrong_leaf_does_not() {
        for n in 1..=17 {
            let l = leaves(n);
            let root = merkle_root(&l);
            for i in 0..n {
                let b = merkle_branch(&l, i).unwrap();
                assert!(b.verify(l[i], root), "n={n} i={i}");
                assert!(!b.verify(sha256d(b"other"), root));
            }
            assert!(merkle_branch(&l, n).is_none());
        }
    }
}
