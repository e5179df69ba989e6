//! Block validation that does not need the UTXO set: checks on the block alone, and checks
//! of a header against its ancestors (difficulty, time). Ordered by cost so a peer sending
//! garbage pays more than we do.
//!
//! The state-dependent rules (spends, tasks, the step replay) are in `state`.

use crate::chain::block::{Block, Header};
use crate::chain::fault::{Classify, Fault};
use crate::chain::params::ChainParams;
use crate::chain::state::StateError;
use crate::chain::target::{TargetError, U256, next_target, target_from_bits};
use crate::chain::tx::{Transaction, TxError};
use crate::compute::problem::Params;
use crate::hash::{Hash256, merkle_root};
use crate::pouw::task::TaskError;
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
    /// A claimed step cost above the network's cap (context-free).
    #[error("work claim cost {cost} mWU is above the cap of {cap} mWU")]
    CostAboveCap {
        /// Claimed.
        cost: u64,
        /// The cap.
        cap: u64,
    },
    /// The work claim names a task in no stored block (with a known parent: every
    /// ancestor's tasks are registered, so the task cannot exist on this chain).
    #[error("work claim names task {0}, which is not in the cost table")]
    UnknownTask(Hash256),
    /// The claimed cost is not the task's registered cost.
    #[error("work claim cost {claimed} mWU, the task's registered cost is {registered} mWU")]
    WrongCost {
        /// Claimed.
        claimed: u64,
        /// Registered.
        registered: u64,
    },
    /// The block hash is above `target * cost`.
    #[error("block hash {hash} is above the target times the step cost")]
    HighHash {
        /// The block hash.
        hash: Hash256,
    },
    /// More `SubmitTask` transactions than a block may carry.
    #[error("block submits {count} tasks, at most {limit} are allowed")]
    TooManyTasks {
        /// Submitted.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The tasks of one block expand to more data than allowed.
    #[error("block's tasks expand to {bytes} bytes of data, at most {limit} are allowed")]
    TaskDataTooLarge {
        /// Bytes.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A submitted task is not admissible by its shape, size or hyper-parameters.
    #[error("transaction {index}: task not admissible: {error}")]
    Task {
        /// Its position in the block.
        index: usize,
        /// Why.
        error: TaskError,
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

/// A block is judged against the state its own parent defines, so every refusal is the
/// sender's fault except an unknown parent and a time ahead of our clock (retried later)
/// and a broken genesis task (ours). No `_` arm: a new variant has to choose.
impl Classify for BlockError {
    fn fault(&self) -> Fault {
        match self {
            BlockError::UnknownParent(_) | BlockError::TimeTooNew { .. } => Fault::Transient,
            BlockError::State(StateError::Genesis(_)) => Fault::Local,
            BlockError::State(_)
            | BlockError::Oversize { .. }
            | BlockError::BadVersion(_)
            | BlockError::NoTransactions
            | BlockError::FirstNotCoinbase(_)
            | BlockError::ExtraCoinbase(_)
            | BlockError::DuplicateTx(_)
            | BlockError::BadMerkleRoot { .. }
            | BlockError::BadBits(_)
            | BlockError::BitsAboveMax { .. }
            | BlockError::ZeroCost
            | BlockError::CostAboveCap { .. }
            | BlockError::UnknownTask(_)
            | BlockError::WrongCost { .. }
            | BlockError::HighHash { .. }
            | BlockError::TooManyTasks { .. }
            | BlockError::TaskDataTooLarge { .. }
            | BlockError::Task { .. }
            | BlockError::WitnessNonFinite(_)
            | BlockError::WitnessTooLong { .. }
            | BlockError::WitnessMismatch { .. }
            | BlockError::Tx { .. }
            | BlockError::WrongBits { .. }
            | BlockError::TimeTooOld { .. }
            | BlockError::KnownInvalid(_)
            | BlockError::InvalidParent(_) => Fault::Peer,
        }
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

/// Checks a header alone, without any context: version, bits that decode to a target not
/// above the network's maximum, and a claimed cost in `1..=max_step_cost`.
pub fn check_header_alone(header: &Header, params: &ChainParams) -> Result<(), BlockError> {
    if header.version != 1 {
        return Err(BlockError::BadVersion(header.version));
    }
    let target = target_from_bits(header.bits)?;
    if target > params.max_target() {
        return Err(BlockError::BitsAboveMax { bits: header.bits });
    }
    if header.work.cost == 0 {
        return Err(BlockError::ZeroCost);
    }
    let cap = params.task_limits.max_step_cost;
    if header.work.cost > cap {
        return Err(BlockError::CostAboveCap { cost: header.work.cost, cap });
    }
    Ok(())
}

/// Checks the proof of work of a header against its task's cost from the cost table:
/// `header.work.cost == table_cost` and `hash <= target(bits) * table_cost`. One hash.
///
/// # Consensus
/// DESIGN.md §3.1: the claimed cost is never trusted; a miner gains nothing by claiming
/// more than its task costs.
pub fn check_pow(header: &Header, table_cost: u64, params: &ChainParams) -> Result<(), BlockError> {
    if header.work.cost != table_cost {
        return Err(BlockError::WrongCost { claimed: header.work.cost, registered: table_cost });
    }
    let target = target_from_bits(header.bits)?;
    if target > params.max_target() {
        return Err(BlockError::BitsAboveMax { bits: header.bits });
    }
    if header.pow_value() > effective_target(target, table_cost) {
        return Err(BlockError::HighHash { hash: header.hash() });
    }
    Ok(())
}

/// Checks that need only the block's body, ordered by cost: structure, witness, each
/// transaction on its own, the block's tasks against the per-block limits and each
/// spec's shape and cost (no data is built), size, merkle root (hashes every
/// transaction), signatures (the expensive part). The header's own checks are
/// [`check_header_alone`] and [`check_pow`].
pub fn check_block_body(block: &Block, params: &ChainParams) -> Result<(), BlockError> {
    let h = &block.header;
    match block.txs.first() {
        None => return Err(BlockError::NoTransactions),
        Some(Transaction::Coinbase { .. }) => {}
        Some(other) => return Err(BlockError::FirstNotCoinbase(other.kind_name())),
    }
    if let Some(i) = block.txs.iter().skip(1).position(Transaction::is_coinbase) {
        return Err(BlockError::ExtraCoinbase(i + 1));
    }
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
    check_block_tasks(block, params)?;
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

/// The block's `SubmitTask`s: at most `max_tasks_per_block`, expanding to at most
/// `max_task_bytes_per_block` bytes of data, each spec within its limits (so the cost
/// table only ever registers admissible costs).
///
/// # Consensus
/// DESIGN.md §6: the cost of admitting a block's tasks is bounded like any other
/// validation cost.
fn check_block_tasks(block: &Block, params: &ChainParams) -> Result<(), BlockError> {
    let limits = &params.task_limits;
    let (mut count, mut bytes) = (0usize, 0usize);
    for (index, tx) in block.txs.iter().enumerate() {
        let Transaction::SubmitTask { spec, .. } = tx else { continue };
        count += 1;
        if count > limits.max_tasks_per_block {
            return Err(BlockError::TooManyTasks { count, limit: limits.max_tasks_per_block });
        }
        spec.check_limits(limits).map_err(|error| BlockError::Task { index, error })?;
        bytes = bytes.saturating_add(spec.data_bytes());
        if bytes > limits.max_task_bytes_per_block {
            return Err(BlockError::TaskDataTooLarge { bytes, limit: limits.max_task_bytes_per_block });
        }
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
    /// The time of the parent's ancestor at height 1 (the ASERT anchor); `None` when the
    /// parent is the genesis block.
    pub block_one_time: Option<u64>,
}

/// The bits a child of `parent` must carry (ASERT).
///
/// # Consensus
/// DESIGN.md §6: block 1 is at the max target; every later block follows ASERT anchored
/// at block 1 of its own chain, `{height 1, max target, parent time = block 1's time −
/// spacing}`, so a chain started long after its genesis timestamp is on schedule from
/// its first block.
pub fn required_bits(parent: &ParentContext, params: &ChainParams) -> u32 {
    let t = match parent.block_one_time {
        None => params.max_target(),
        Some(time) => next_target(&params.anchor(time), parent.height, parent.time, &params.asert),
    };
    crate::chain::target::bits_from_target(t)
}

/// Checks a header against its parent: ASERT bits, time after the median time past, and
/// not too far ahead of `now` (that one is transient: the block is retried later).
pub fn check_header_context(
    header: &Header,
    parent: &ParentContext,
    now: u64,
    params: &ChainParams,
) -> Result<(), BlockError> {
    let expected = required_bits(parent, params);
    if header.bits != expected {
        return Err(BlockError::WrongBits { got: header.bits, expected });
    }
    let (earliest, latest) = time_window(parent, now, params);
    if header.time < earliest {
        return Err(BlockError::TimeTooOld { time: header.time, mtp: parent.median_time_past });
    }
    if header.time > latest {
        return Err(BlockError::TimeTooNew { time: header.time, now, drift: params.max_future_drift_secs });
    }
    Ok(())
}

/// The times a child of `parent` may carry at clock `now`, inclusive: after the median
/// time past, at most the future drift ahead of the clock. Empty (`earliest > latest`)
/// when blocks have run ahead of the clock: a miner then waits.
///
/// # Consensus
/// The time rule of [`check_header_context`] (the drift part is transient: it depends on
/// our clock).
pub fn time_window(parent: &ParentContext, now: u64, params: &ChainParams) -> (u64, u64) {
    (parent.median_time_past.saturating_add(1), now.saturating_add(params.max_future_drift_secs))
}
