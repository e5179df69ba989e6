//! Block validation that does not need the UTXO set: checks on the block alone, and checks
//! of a header against its ancestors (difficulty, time). Ordered by cost so a peer sending
//! garbage pays more than we do.
//!
//! The state-dependent rules (spends, tasks, the step replay) are in `state`.

use crate::chain::block::{Block, Header};
use crate::chain::params::ChainParams;
use crate::chain::state::StateError;
use crate::chain::target::{next_target, target_from_bits, TargetError, U256};
use crate::chain::tx::{Transaction, TxError};
use crate::compute::problem::Params;
use crate::hash::{merkle_root, Hash256};
use std::collections::HashSet;

/// Why a block is invalid (or cannot be judged yet).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BlockError {
    /// Encoded size above the limit.
    #[error("block of {size} bytes exceeds the limit of {limit}")]
    Oversize {
        /// Size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// Unknown header version.
    #[error("unknown block version {0}")]
    BadVersion(u32),
    /// No transactions at all.
    #[error("block has no transactions")]
    NoTransactions,
    /// The first transaction is not a coinbase.
    #[error("first transaction is a {0}, not a coinbase")]
    FirstNotCoinbase(&'static str),
    /// A second coinbase.
    #[error("transaction {0} is a second coinbase")]
    ExtraCoinbase(usize),
    /// The same txid twice (CVE-2012-2459).
    #[error("transaction {0} appears twice in the block")]
    DuplicateTx(Hash256),
    /// The merkle root does not match the transactions.
    #[error("merkle root {header} does not match the transactions ({computed})")]
    BadMerkleRoot {
        /// In the header.
        header: Hash256,
        /// Computed.
        computed: Hash256,
    },
    /// Undecodable or out-of-range bits.
    #[error("bad difficulty bits: {0}")]
    BadBits(#[from] TargetError),
    /// A target easier than the network allows.
    #[error("bits {bits:#010x} encode a target above the network maximum")]
    BitsAboveMax {
        /// The bits.
        bits: u32,
    },
    /// A claimed step cost of zero.
    #[error("work claim has cost 0")]
    ZeroCost,
    /// The block hash is above `target * cost`.
    #[error("block hash {hash} is above the target times the step cost")]
    HighHash {
        /// The block hash.
        hash: Hash256,
    },
    /// The witness has NaN or inf.
    #[error("witness parameter {0} is not finite")]
    WitnessNonFinite(usize),
    /// The witness is larger than any task.
    #[error("witness has {len} parameters, above the limit of {limit}")]
    WitnessTooLong {
        /// Length.
        len: usize,
        /// Limit.
        limit: usize,
    },
    /// The witness does not hash to the claimed input hash.
    #[error("witness hashes to {computed}, the work claim says {claimed}")]
    WitnessMismatch {
        /// Computed.
        computed: Hash256,
        /// Claimed.
        claimed: Hash256,
    },
    /// A transaction is invalid on its own.
    #[error("transaction {index}: {error}")]
    Tx {
        /// Its position in the block.
        index: usize,
        /// Why.
        error: TxError,
    },
    /// The block was already found invalid.
    #[error("block {0} is known to be invalid")]
    KnownInvalid(Hash256),
    /// The parent was found invalid.
    #[error("parent block {0} is invalid")]
    InvalidParent(Hash256),
    /// The parent is not known (an orphan; not the peer's fault).
    #[error("parent block {0} is unknown")]
    UnknownParent(Hash256),
    /// The bits are not what ASERT gives after the parent.
    #[error("bits {got:#010x}, expected {expected:#010x} after the parent")]
    WrongBits {
        /// In the header.
        got: u32,
        /// Required.
        expected: u32,
    },
    /// Time not after the median of the previous 11 blocks.
    #[error("block time {time} is not after the median time past {mtp}")]
    TimeTooOld {
        /// The header time.
        time: u64,
        /// The median time past.
        mtp: u64,
    },
    /// Time too far in the future (kept and retried later; not the peer's fault).
    #[error("block time {time} is more than {drift} s ahead of the local clock {now}")]
    TimeTooNew {
        /// The header time.
        time: u64,
        /// The local clock.
        now: u64,
        /// Allowed drift.
        drift: u64,
    },
    /// The block is invalid against the chain state.
    #[error("{0}")]
    State(#[from] StateError),
}

impl BlockError {
    /// Whether the peer that sent the block is to blame (disconnect and ban), or the block
    /// merely cannot be used yet (orphan, early).
    pub fn fault(&self) -> bool {
        match self {
            BlockError::UnknownParent(_) | BlockError::TimeTooNew { .. } => false,
            BlockError::State(e) => e.fault(),
            BlockError::Oversize { .. }
            | BlockError::BadVersion(_)
            | BlockError::NoTransactions
            | BlockError::FirstNotCoinbase(_)
            | BlockError::ExtraCoinbase(_)
            | BlockError::DuplicateTx(_)
            | BlockError::BadMerkleRoot { .. }
            | BlockError::BadBits(_)
            | BlockError::BitsAboveMax { .. }
            | BlockError::ZeroCost
            | BlockError::HighHash { .. }
            | BlockError::WitnessNonFinite(_)
            | BlockError::WitnessTooLong { .. }
            | BlockError::WitnessMismatch { .. }
            | BlockError::Tx { .. }
            | BlockError::WrongBits { .. }
            | BlockError::TimeTooOld { .. }
            | BlockError::KnownInvalid(_)
            | BlockError::InvalidParent(_) => true,
        }
    }

    /// True when the block should be kept and retried later rather than dropped.
    pub fn is_transient(&self) -> bool {
        matches!(self, BlockError::TimeTooNew { .. } | BlockError::UnknownParent(_))
    }
}

/// `target(bits) * cost`, saturating: the bound a block hash must not exceed.
///
/// # Consensus
/// DESIGN.md §3 step 4: expected steps per block scale as `1/cost`, so expected work per
/// block is the same whatever task is mined.
pub fn effective_target(target: U256, cost: u64) -> U256 {
    target.saturating_mul_u64(cost)
}

/// Checks the proof of work of a header alone: valid bits not above the maximum, a
/// non-zero cost, and `hash <= target * cost`. One hash: the cheapest filter there is.
pub fn check_pow(header: &Header, params: &ChainParams) -> Result<(), BlockError> {
    let target = target_from_bits(header.bits)?;
    if target > params.max_target() {
        return Err(BlockError::BitsAboveMax { bits: header.bits });
    }
    if header.work.cost == 0 {
        return Err(BlockError::ZeroCost);
    }
    if header.pow_value() > effective_target(target, header.work.cost) {
        return Err(BlockError::HighHash { hash: header.hash() });
    }
    Ok(())
}

/// Checks that need only the block, ordered by cost: version and structure, proof of work
/// (one hash), witness, transactions on their own, size, merkle root (hashes every
/// transaction), signatures (the expensive part).
pub fn check_block(block: &Block, params: &ChainParams) -> Result<(), BlockError> {
    let h = &block.header;
    if h.version != 1 {
        return Err(BlockError::BadVersion(h.version));
    }
    match block.txs.first() {
        None => return Err(BlockError::NoTransactions),
        Some(Transaction::Coinbase { .. }) => {}
        Some(other) => return Err(BlockError::FirstNotCoinbase(other.kind_name())),
    }
    if let Some(i) = block.txs.iter().skip(1).position(Transaction::is_coinbase) {
        return Err(BlockError::ExtraCoinbase(i + 1));
    }
    check_pow(h, params)?;
    let w = &block.witness.input_params;
    if w.len() > params.tx_limits.max_params {
        return Err(BlockError::WitnessTooLong { len: w.len(), limit: params.tx_limits.max_params });
    }
    if let Some(i) = w.iter().position(|v| !v.is_finite()) {
        return Err(BlockError::WitnessNonFinite(i));
    }
    let input_hash = Params(w.clone()).hash();
    if input_hash != h.work.input_hash {
        return Err(BlockError::WitnessMismatch { computed: input_hash, claimed: h.work.input_hash });
    }
    for (index, tx) in block.txs.iter().enumerate() {
        tx.check(&params.tx_limits).map_err(|error| BlockError::Tx { index, error })?;
    }
    let size = block.size();
    if size > params.max_block_bytes {
        return Err(BlockError::Oversize { size, limit: params.max_block_bytes });
    }
    let txids = block.txids();
    let mut seen = HashSet::with_capacity(txids.len());
    for id in &txids {
        if !seen.insert(*id) {
            return Err(BlockError::DuplicateTx(*id));
        }
    }
    let computed = merkle_root(&txids);
    if computed != h.merkle_root {
        return Err(BlockError::BadMerkleRoot { header: h.merkle_root, computed });
    }
    for (index, tx) in block.txs.iter().enumerate() {
        tx.verify_signatures(&params.chain_id).map_err(|error| BlockError::Tx { index, error })?;
    }
    Ok(())
}

/// What a header is checked against: its parent and the parent's median time past.
#[derive(Clone, Copy, Debug)]
pub struct ParentContext {
    /// Parent height.
    pub height: u64,
    /// Parent time.
    pub time: u64,
    /// Median of the times of the parent and up to 10 of its ancestors.
    pub median_time_past: u64,
}

/// The bits a child of `parent` must carry (ASERT).
pub fn required_bits(parent: &ParentContext, params: &ChainParams) -> u32 {
    let t = next_target(&params.anchor(), parent.height, parent.time, &params.asert);
    crate::chain::target::bits_from_target(t)
}

/// Checks a header against its parent: ASERT bits, time after the median time past, and
/// not too far ahead of `now` (that one is transient: the block is retried later).
pub fn check_header_context(header: &Header, parent: &ParentContext, now: u64, params: &ChainParams) -> Result<(), BlockError> {
    let expected = required_bits(parent, params);
    if header.bits != expected {
        return Err(BlockError::WrongBits { got: header.bits, expected });
    }
    if header.time <= parent.median_time_past {
        return Err(BlockError::TimeTooOld { time: header.time, mtp: parent.median_time_past });
    }
    let drift = params.max_future_drift_secs;
    if header.time > now.saturating_add(drift) {
        return Err(BlockError::TimeTooNew { time: header.time, now, drift });
    }
    Ok(())
}
