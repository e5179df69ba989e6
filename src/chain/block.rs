//! Headers, blocks, the work claim and its witness; block hash, ticket seed, merkle root.
//!
//! Owns the block types and the computations on a block alone. Validation is in
//! `validate`.

use crate::chain::encode;
use crate::chain::target::U256;
use crate::chain::tx::Transaction;
use crate::compute::problem::Params;
use crate::hash::{Hash256, MerkleBranch, merkle_branch, merkle_root, sha256d};
use crate::pouw::ticket;
use serde::{Deserialize, Serialize};

/// The block's useful-work claim (DESIGN.md §2): which task, from which iterate, at what
/// cost, with which output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkClaim {
    /// The task stepped.
    pub task_id: Hash256,
    /// `params_hash` of the input iterate (the witness).
    pub input_hash: Hash256,
    /// The task's step cost in work units.
    pub cost: u64,
    /// `params_hash` of the step's output.
    pub output_hash: Hash256,
}

/// A block header: Bitcoin's fields plus the work claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Block version (1).
    pub version: u32,
    /// Hash of the parent header.
    pub prev: Hash256,
    /// Merkle root of the txids.
    pub merkle_root: Hash256,
    /// Unix time in seconds.
    pub time: u64,
    /// Compact target.
    pub bits: u32,
    /// The useful-work claim.
    pub work: WorkClaim,
    /// Free field the miner varies (each value needs a new step).
    pub nonce: u64,
}

impl Header {
    /// `H(encode(header))`.
    pub fn hash(&self) -> Hash256 {
        sha256d(&encode::encode(self))
    }

    /// The block hash as the number compared with `target * cost`.
    pub fn pow_value(&self) -> U256 {
        U256::from_hash_le(&self.hash().0)
    }

    /// The seed of this header's mining ticket: `H("gradientcoin/ticket/v1" ||
    /// encode(header with output_hash = 0))`.
    pub fn ticket_seed(&self) -> [u8; 32] {
        let mut h = *self;
        h.work.output_hash = Hash256::ZERO;
        ticket::ticket_seed(&encode::encode(&h))
    }
}

/// The data the work claim commits to: the input iterate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkWitness {
    /// The input parameters (their `params_hash` is `work.input_hash`).
    pub input_params: Vec<f64>,
}

/// A block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The witness of the work claim.
    pub witness: WorkWitness,
    /// Transactions, coinbase first.
    pub txs: Vec<Transaction>,
}

impl Block {
    /// The block hash (its header's).
    pub fn hash(&self) -> Hash256 {
        self.header.hash()
    }

    /// Encoded size in bytes.
    pub fn size(&self) -> usize {
        encode::encoded_len(self)
    }

    /// The txids in order.
    pub fn txids(&self) -> Vec<Hash256> {
        self.txs.iter().map(Transaction::txid).collect()
    }

    /// The merkle root of the transactions.
    pub fn compute_merkle_root(&self) -> Hash256 {
        merkle_root(&self.txids())
    }

    /// The SPV proof that transaction `index` is in this block.
    pub fn merkle_proof(&self, index: usize) -> Option<MerkleBranch> {
        merkle_branch(&self.txids(), index)
    }

    /// The witness as `Params`.
    pub fn input_params(&self) -> Params {
        Params(self.witness.input_params.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            version: 1,
            prev: Hash256([1; 32]),
            merkle_root: Hash256([2; 32]),
            time: 1_700_000_000,
            bits: 0x207f_ffff,
            work: WorkClaim {
                task_id: Hash256([3; 32]),
                input_hash: Hash256([4; 32]),
                cost: 9,
                output_hash: Hash256([5; 32]),
            },
            nonce: 0,
        }
    }

    #[test]
    fn ticket_seed_ignores_only_the_output_hash() {
        let h = header();
        let mut other_output = h;
        other_output.work.output_hash = Hash256([6; 32]);
        assert_eq!(h.ticket_seed(), other_output.ticket_seed());
        assert_ne!(h.hash(), other_output.hash());
        let mut other_nonce = h;
        other_nonce.nonce = 1;
        assert_ne!(h.ticket_seed(), other_nonce.ticket_seed());
        let mut other_time = h;
        other_time.time += 1;
        assert_ne!(h.ticket_seed(), other_time.ticket_seed());
    }

    #[test]
    fn header_encoding_is_fixed_size() {
        // version 4 + prev 32 + root 32 + time 8 + bits 4 + work (32+32+8+32) + nonce 8.
        assert_eq!(encode::encode(&header()).len(), 4 + 32 + 32 + 8 + 4 + 104 + 8);
    }
}
