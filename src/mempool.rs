//! The transaction pool: transactions waiting for a block, ordered by fee rate, bounded
//! in bytes, with conflict tracking, revalidated after every tip change.
//!
//! This is *policy*, not consensus: every validity rule is `chain`'s
//! ([`Transaction::check`], [`Transaction::verify_signatures`], [`State::check_tx`]); the
//! pool only adds relay rules on top (a minimum fee rate, no conflicting spends, one model
//! update and one reclaim per task, a byte bound). It must not decide validity on its own,
//! touch the store or the network, or mutate the chain state (it only dry-runs
//! transactions against it).
//!
//! # Confirmed inputs only
//! Every input of a pool transaction must be in the UTXO set of the current tip: there are
//! no chains of unconfirmed transactions (no child spending a parent still in the pool).
//! That keeps eviction, replacement and revalidation per transaction (nothing has
//! descendants to cascade to) and makes every pool transaction checkable against the tip
//! state on its own. A wallet wanting to spend change waits for its block.
//!
//! Main entry points: [`Mempool::add`] for a transaction from a peer, the RPC or the
//! wallet; [`Mempool::remove_for_block`] and [`Mempool::revalidate`] when the tip moves;
//! [`Mempool::readd`] for transactions of disconnected blocks; [`Mempool::select`] for a
//! block template.

use crate::chain::amount::Amount;
use crate::chain::block::Block;
use crate::chain::fault::{Classify, Fault};
use crate::chain::params::ChainParams;
use crate::chain::state::{StateError, StateView};
use crate::chain::tx::{OutPoint, Transaction, TxError};
use crate::hash::Hash256;
use crate::pouw::task::TaskLimits;
use crate::pouw::verify;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// Limits of a pool (node configuration, not consensus).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Upper bound on the summed encoded size of the pool's transactions.
    pub max_bytes: usize,
    /// Minimum fee rate in base units per encoded byte (reclaims are exempt).
    pub min_fee_rate: u64,
}

/// A fee rate `fee / size`, compared exactly (cross-multiplied in u128, never rounded).
#[derive(Clone, Copy, Debug)]
pub struct FeeRate {
    /// Fee in base units.
    pub fee: u64,
    /// Encoded size in bytes (at least 1).
    pub size: u64,
}

impl FeeRate {
    /// `fee / size`; a size of zero is treated as one byte so the rate stays defined.
    pub fn new(fee: Amount, size: usize) -> FeeRate {
        FeeRate { fee: fee.units(), size: (size as u64).max(1) }
    }

    /// Base units per byte, rounded down (for display; ordering uses the exact ratio).
    pub fn per_byte(&self) -> u64 {
        self.fee / self.size
    }

    /// True when the rate is below `min` base units per byte.
    pub fn below(&self, min: u64) -> bool {
        u128::from(self.fee) < u128::from(min) * u128::from(self.size)
    }
}

impl PartialEq for FeeRate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for FeeRate {}

impl PartialOrd for FeeRate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for FeeRate {
    fn cmp(&self, other: &Self) -> Ordering {
        // a/b vs c/d  <=>  a·d vs c·b; u64·u64 always fits in u128.
        (u128::from(self.fee) * u128::from(other.size)).cmp(&(u128::from(other.fee) * u128::from(self.size)))
    }
}

impl fmt::Display for FeeRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} units/byte ({} units over {} bytes)", self.per_byte(), self.fee, self.size)
    }
}

/// A transaction in the pool with what the pool knows about it.
#[derive(Clone, Debug)]
pub struct MempoolEntry {
    /// The transaction.
    pub tx: Transaction,
    /// Its txid.
    pub txid: Hash256,
    /// Its fee (zero for a reclaim).
    pub fee: Amount,
    /// Its encoded size in bytes.
    pub size: usize,
    /// `fee / size`.
    pub fee_rate: FeeRate,
    /// Arrival order (strictly increasing over the pool's life); breaks fee-rate ties.
    pub seq: u64,
}

/// Priority order: highest fee rate first, then earliest arrival. `seq` is unique, so
/// keys never collide.
type Priority = (Reverse<FeeRate>, u64);

/// Why a transaction was not accepted (or was dropped).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MempoolError {
    /// Already in the pool.
    #[error("transaction {0} is already in the pool")]
    Duplicate(Hash256),
    /// Coinbases exist only inside blocks.
    #[error("transaction {0} is a coinbase, which is only valid as the first transaction of a block")]
    Coinbase(Hash256),
    /// Invalid on its own (shape, size, values) or badly signed.
    #[error("transaction {txid} is invalid: {error}")]
    Invalid {
        /// The transaction.
        txid: Hash256,
        /// What is wrong.
        error: TxError,
    },
    /// Invalid against the current tip's state.
    #[error("transaction {txid} is invalid at the current tip: {error}")]
    State {
        /// The transaction.
        txid: Hash256,
        /// What is wrong.
        error: StateError,
    },
    /// Spends an outpoint (or reclaims a task) that a pool transaction already does.
    #[error("transaction {new} conflicts with pool transaction {txid}")]
    Conflict {
        /// The pool transaction it conflicts with.
        txid: Hash256,
        /// The rejected transaction.
        new: Hash256,
    },
    /// Pays less than the pool's minimum fee rate.
    #[error("transaction {txid} pays {fee} for {size} bytes, below the minimum of {min_fee_rate} units/byte")]
    FeeTooLow {
        /// The transaction.
        txid: Hash256,
        /// Its fee.
        fee: Amount,
        /// Its size.
        size: usize,
        /// The pool's minimum rate.
        min_fee_rate: u64,
    },
    /// A model update no better than the one the pool holds for its task.
    #[error(
        "model update {txid} for task {task} scores {score:e}, not better than {best:e} of pool transaction {pool_txid}"
    )]
    NotBest {
        /// The rejected update.
        txid: Hash256,
        /// Its task.
        task: Hash256,
        /// Its claimed score.
        score: f64,
        /// The pool's update for the task.
        pool_txid: Hash256,
        /// That update's score.
        best: f64,
    },
    /// The pool is full of transactions paying at least as much per byte.
    #[error(
        "pool is full ({max_bytes} bytes): transaction {txid} at {fee_rate} is below every transaction it would displace"
    )]
    PoolFull {
        /// The transaction.
        txid: Hash256,
        /// Its fee rate.
        fee_rate: FeeRate,
        /// The pool's byte bound.
        max_bytes: usize,
    },
}

/// Only a transaction that no honest node would relay is the relayer's fault. Errors that
/// depend on our tip (an input a block we have already spent, an update no longer
/// improving, a task that just expired) or on our pool (conflicts are honest races) are
/// not; nor is our policy (fee, size).
impl Classify for MempoolError {
    fn fault(&self) -> Fault {
        match self {
            MempoolError::Coinbase(_) | MempoolError::Invalid { .. } => Fault::Peer,
            MempoolError::State { error, .. } => error.fault(),
            MempoolError::Duplicate(_) | MempoolError::Conflict { .. } | MempoolError::NotBest { .. } => {
                Fault::TipDependent
            }
            MempoolError::FeeTooLow { .. } | MempoolError::PoolFull { .. } => Fault::Local,
        }
    }
}

/// The pool. Owned by the node's single state task; not shared across threads.
#[derive(Debug)]
pub struct Mempool {
    config: MempoolConfig,
    entries: HashMap<Hash256, MempoolEntry>,
    /// Priority index over `entries`: iterate forward to select, backward to evict.
    by_priority: BTreeMap<Priority, Hash256>,
    /// Outpoint -> the pool transaction spending it.
    spent: HashMap<OutPoint, Hash256>,
    /// Task -> the pool's (single) model update for it.
    updates: HashMap<Hash256, Hash256>,
    /// Task -> the pool's (single) reclaim of it.
    reclaims: HashMap<Hash256, Hash256>,
    bytes: usize,
    next_seq: u64,
}

/// The task a transaction is a model update for, with its claimed score.
fn update_of(tx: &Transaction) -> Option<(Hash256, f64)> {
    match tx {
        Transaction::ModelUpdate { task_id, claimed, .. } => Some((*task_id, claimed.score)),
        _ => None,
    }
}

/// The task a transaction reclaims.
fn reclaim_of(tx: &Transaction) -> Option<Hash256> {
    match tx {
        Transaction::ReclaimTask { task_id, .. } => Some(*task_id),
        _ => None,
    }
}

impl Mempool {
    /// An empty pool.
    pub fn new(config: MempoolConfig) -> Mempool {
        Mempool {
            config,
            entries: HashMap::new(),
            by_priority: BTreeMap::new(),
            spent: HashMap::new(),
            updates: HashMap::new(),
            reclaims: HashMap::new(),
            bytes: 0,
            next_seq: 0,
        }
    }

    /// The limits.
    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the pool holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Summed encoded size of the pool's transactions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The entry of `txid`.
    pub fn get(&self, txid: &Hash256) -> Option<&MempoolEntry> {
        self.entries.get(txid)
    }

    /// True when `txid` is in the pool.
    pub fn contains(&self, txid: &Hash256) -> bool {
        self.entries.contains_key(txid)
    }

    /// The pool transaction spending `outpoint`, if any (a wallet avoids such coins).
    pub fn spender(&self, outpoint: &OutPoint) -> Option<Hash256> {
        self.spent.get(outpoint).copied()
    }

    /// Every entry in priority order (highest fee rate first, arrival order on ties).
    pub fn iter(&self) -> impl Iterator<Item = &MempoolEntry> + '_ {
        self.by_priority.values().filter_map(|txid| self.entries.get(txid))
    }

    /// Offers `tx` for a block at `height` (the next block on the tip whose state is
    /// `state`). Returns its txid when accepted.
    ///
    /// Checks run in order of cost, so a flooding peer pays before we do: already known,
    /// coinbase, context-free checks, conflicts with pool transactions, the pool's
    /// per-task rules and a fee pre-check (lookups only), the full dry run against the
    /// state ([`State::check_tx`], which gives the fee and recomputes a model update's
    /// certificate), the fee rate, and the signatures. Finally the byte bound may evict
    /// cheaper transactions, or reject this one if it is the cheapest.
    ///
    /// # Security
    /// A model update is relayed only while it improves its task's best by the network's
    /// margin (`check_tx`) and beats the pool's update for the task by that margin too,
    /// so near-identical updates cannot make every node re-verify certificates.
    pub fn add(
        &mut self,
        tx: Transaction,
        state: StateView<'_>,
        height: u64,
        params: &ChainParams,
    ) -> Result<Hash256, MempoolError> {
        let txid = tx.txid();
        if self.entries.contains_key(&txid) {
            return Err(MempoolError::Duplicate(txid));
        }
        if tx.is_coinbase() {
            return Err(MempoolError::Coinbase(txid));
        }
        tx.check(&params.tx_limits).map_err(|error| MempoolError::Invalid { txid, error })?;

        // Conflicts. The pool's own update for the same task may share inputs with a
        // better one (the same wallet funding both); that is a replacement, decided below.
        let update = update_of(&tx);
        let replaced = update.and_then(|(task, _)| self.updates.get(&task).copied());
        for i in tx.inputs() {
            if let Some(other) = self.spent.get(&i.prevout)
                && Some(*other) != replaced
            {
                return Err(MempoolError::Conflict { txid: *other, new: txid });
            }
        }
        if let Some(task) = reclaim_of(&tx)
            && let Some(other) = self.reclaims.get(&task)
        {
            return Err(MempoolError::Conflict { txid: *other, new: txid });
        }
        // The claimed score is unverified here, but comparing it is free: a worse claim is
        // rejected whether it is true or false.
        if let (Some((task, score)), Some(pool_txid)) = (update, replaced) {
            self.check_better(txid, task, score, pool_txid, params)?;
        }
        let size = tx.size();
        let exempt = matches!(tx, Transaction::ReclaimTask { .. });
        if !exempt && let Some(fee) = state.fee_of(&tx) {
            self.check_fee_rate(txid, fee, size)?;
        }

        let fee = state.check_tx(&tx, height, params).map_err(|error| MempoolError::State { txid, error })?;
        if !exempt {
            self.check_fee_rate(txid, fee, size)?;
        }
        tx.verify_signatures(&params.chain_id).map_err(|error| MempoolError::Invalid { txid, error })?;

        // Byte bound: would the pool fit with this tx once every cheaper entry (and the
        // update it replaces) is gone? If not, reject without touching anything.
        let fee_rate = FeeRate::new(fee, size);
        let replaced_bytes = replaced.and_then(|r| self.entries.get(&r)).map_or(0, |e| e.size);
        let new_priority: Priority = (Reverse(fee_rate), self.next_seq);
        let cheaper_bytes: usize = self
            .by_priority
            .range(new_priority..)
            .filter(|(_, t)| Some(**t) != replaced)
            .filter_map(|(_, t)| self.entries.get(t))
            .map(|e| e.size)
            .sum();
        let after = self.bytes.saturating_sub(replaced_bytes).saturating_add(size);
        if after.saturating_sub(cheaper_bytes) > self.config.max_bytes {
            return Err(MempoolError::PoolFull { txid, fee_rate, max_bytes: self.config.max_bytes });
        }

        if let Some(old) = replaced {
            self.remove(&old);
        }
        self.insert(MempoolEntry { tx, txid, fee, size, fee_rate, seq: self.next_seq });
        self.next_seq += 1;
        // Evict from the cheapest end; the pre-check guarantees we stop before `txid`.
        while self.bytes > self.config.max_bytes {
            let Some((_, victim)) = self.by_priority.last_key_value() else {
                break;
            };
            let victim = *victim;
            if victim == txid {
                break;
            }
            self.remove(&victim);
        }
        Ok(txid)
    }

    /// Rejects a model update unless it beats the pool's update for its task by the
    /// network margin.
    fn check_better(
        &self,
        txid: Hash256,
        task: Hash256,
        score: f64,
        pool_txid: Hash256,
        params: &ChainParams,
    ) -> Result<(), MempoolError> {
        let best = self.entries.get(&pool_txid).and_then(|e| update_of(&e.tx)).map(|(_, s)| s);
        match best {
            Some(best) if !verify::improves(score, best, params.min_relative_improvement) => {
                Err(MempoolError::NotBest { txid, task, score, pool_txid, best })
            }
            _ => Ok(()),
        }
    }

    fn check_fee_rate(&self, txid: Hash256, fee: Amount, size: usize) -> Result<(), MempoolError> {
        if FeeRate::new(fee, size).below(self.config.min_fee_rate) {
            return Err(MempoolError::FeeTooLow { txid, fee, size, min_fee_rate: self.config.min_fee_rate });
        }
        Ok(())
    }

    fn insert(&mut self, e: MempoolEntry) {
        for i in e.tx.inputs() {
            self.spent.insert(i.prevout, e.txid);
        }
        if let Some((task, _)) = update_of(&e.tx) {
            self.updates.insert(task, e.txid);
        }
        if let Some(task) = reclaim_of(&e.tx) {
            self.reclaims.insert(task, e.txid);
        }
        self.by_priority.insert((Reverse(e.fee_rate), e.seq), e.txid);
        self.bytes += e.size;
        self.entries.insert(e.txid, e);
    }

    /// Removes `txid` and its index entries; returns the entry if it was there.
    fn remove(&mut self, txid: &Hash256) -> Option<MempoolEntry> {
        let e = self.entries.remove(txid)?;
        for i in e.tx.inputs() {
            if self.spent.get(&i.prevout) == Some(txid) {
                self.spent.remove(&i.prevout);
            }
        }
        if let Some((task, _)) = update_of(&e.tx)
            && self.updates.get(&task) == Some(txid)
        {
            self.updates.remove(&task);
        }
        if let Some(task) = reclaim_of(&e.tx)
            && self.reclaims.get(&task) == Some(txid)
        {
            self.reclaims.remove(&task);
        }
        self.by_priority.remove(&(Reverse(e.fee_rate), e.seq));
        self.bytes -= e.size;
        Some(e)
    }

    /// Drops the transactions `block` confirmed and every pool transaction conflicting
    /// with them (spending one of their inputs, or reclaiming a task they reclaim).
    /// Returns the txids dropped. Model updates made stale by the block are dropped by
    /// [`Mempool::revalidate`], which needs the new state.
    pub fn remove_for_block(&mut self, block: &Block) -> Vec<Hash256> {
        let mut dropped = Vec::new();
        for tx in &block.txs {
            let txid = tx.txid();
            if self.remove(&txid).is_some() {
                dropped.push(txid);
            }
            let mut conflicting: Vec<Hash256> =
                tx.inputs().iter().filter_map(|i| self.spent.get(&i.prevout).copied()).collect();
            if let Some(task) = reclaim_of(tx) {
                conflicting.extend(self.reclaims.get(&task).copied());
            }
            for c in conflicting {
                if self.remove(&c).is_some() {
                    dropped.push(c);
                }
            }
        }
        dropped
    }

    /// After a new tip or a reorg: dry-runs every pool transaction against `state` for a
    /// block at `height` and drops those that fail (inputs spent, tasks expired, solved
    /// or reclaimed, model updates no longer improving). Returns what was dropped, with why.
    pub fn revalidate(
        &mut self,
        state: StateView<'_>,
        height: u64,
        params: &ChainParams,
    ) -> Vec<(Hash256, MempoolError)> {
        // Pool transactions never conflict with each other, so each is checked alone.
        let order: Vec<Hash256> = self.by_priority.values().copied().collect();
        let mut dropped = Vec::new();
        for txid in order {
            let Some(e) = self.entries.get(&txid) else {
                continue;
            };
            if let Err(error) = state.check_tx(&e.tx, height, params) {
                self.remove(&txid);
                dropped.push((txid, MempoolError::State { txid, error }));
            }
        }
        dropped
    }

    /// Offers the transactions of disconnected blocks again (after the reorg's new blocks
    /// are connected and the pool revalidated), skipping coinbases. Returns the txids
    /// accepted; the others are dropped silently, as they would have been from a peer.
    pub fn readd(
        &mut self,
        txs: Vec<Transaction>,
        state: StateView<'_>,
        height: u64,
        params: &ChainParams,
    ) -> Vec<Hash256> {
        txs.into_iter()
            .filter(|tx| !tx.is_coinbase())
            .filter_map(|tx| self.add(tx, state, height, params).ok())
            .collect()
    }

    /// Transactions for a block template, highest fee rate first (arrival order on ties),
    /// summing to at most `max_bytes`: an entry that does not fit is skipped and smaller
    /// ones after it may still fit. Never two transactions spending the same outpoint,
    /// two model updates for one task, or two reclaims of one task.
    ///
    /// The block's task submissions stay within `limits` (count and expanded data bytes
    /// per block), so the template is valid.
    ///
    /// Call after [`Mempool::revalidate`] on the tip the block builds on.
    pub fn select(&self, max_bytes: usize, limits: &TaskLimits) -> Vec<Transaction> {
        let mut out = Vec::new();
        let mut used = 0usize;
        let (mut task_count, mut task_bytes) = (0usize, 0usize);
        let mut spent: HashSet<OutPoint> = HashSet::new();
        let mut tasks: HashSet<(bool, Hash256)> = HashSet::new();
        for e in self.iter() {
            if used.saturating_add(e.size) > max_bytes {
                continue;
            }
            if let Transaction::SubmitTask { spec, .. } = &e.tx {
                let bytes = task_bytes.saturating_add(spec.data_bytes());
                if task_count + 1 > limits.max_tasks_per_block || bytes > limits.max_task_bytes_per_block {
                    continue;
                }
                if e.tx.inputs().iter().all(|i| !spent.contains(&i.prevout)) {
                    task_count += 1;
                    task_bytes = bytes;
                }
            }
            if e.tx.inputs().iter().any(|i| spent.contains(&i.prevout)) {
                continue;
            }
            let task = update_of(&e.tx).map(|(t, _)| (true, t)).or_else(|| reclaim_of(&e.tx).map(|t| (false, t)));
            if let Some(key) = task
                && !tasks.insert(key)
            {
                continue;
            }
            spent.extend(e.tx.inputs().iter().map(|i| i.prevout));
            used += e.size;
            out.push(e.tx.clone());
        }
        out
    }
}

/// A dev-network chain in a temp dir for the unit tests of the pool and the wallet.
#[cfg(test)]
pub(crate) mod testkit {
    use crate::chain::address::Address;
    use crate::chain::amount::Amount;
    use crate::chain::block::Block;
    use crate::chain::params::ChainParams;
    use crate::chain::pipeline::Accepted;
    use crate::chain::tx::{OutPoint, Sig64, Transaction, TxIn, TxOut};
    use crate::hash::Hash256;
    use crate::miner;
    use crate::pouw::task::{TaskData, TaskKind, TaskSpec};
    use crate::store::ChainStore;
    use ed25519_dalek::SigningKey;

    /// The deterministic key `i`.
    pub fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    /// The address of key `i`.
    pub fn addr(i: u8) -> Address {
        Address::from_pubkey(&key(i).verifying_key().to_bytes())
    }

    /// A small admissible task (the spec the chain tests use).
    pub fn spec(target: f64) -> TaskSpec {
        TaskSpec {
            kind: TaskKind::Softmax,
            data: TaskData::Synthetic { n: 120, d: 4, seed: 9, scale: 0.5 },
            reg_lambda: 1e-8,
            copyright: None,
            target_score: target,
        }
    }

    /// A dev chain on a real store.
    pub struct TestChain {
        _dir: tempfile::TempDir,
        /// The chain.
        pub cs: ChainStore,
    }

    impl TestChain {
        /// A fresh dev chain.
        pub fn new() -> TestChain {
            let dir = tempfile::tempdir().expect("temp dir");
            let cs = ChainStore::open(dir.path(), ChainParams::dev()).expect("open chain");
            TestChain { _dir: dir, cs }
        }

        /// The params.
        pub fn params(&self) -> ChainParams {
            self.cs.params().clone()
        }

        /// Height of the next block.
        pub fn next_height(&self) -> u64 {
            self.cs.height() + 1
        }

        /// Mines a block with `txs` paying `payee`; panics unless it becomes the tip.
        pub fn mine(&mut self, payee: Address, txs: Vec<Transaction>) -> Block {
            let time = self.cs.tip_entry().header.time + self.cs.params().asert.spacing;
            let t = miner::template(&mut self.cs, payee, time, txs, None, Amount::ZERO).expect("template");
            let b = t.mine(0, 1_000_000).expect("dev blocks take a few steps");
            let now = self.cs.params().genesis.header.time + 10_000_000;
            match self.cs.process_block(&b, now) {
                Ok(Accepted::NewTip { .. }) => b,
                other => panic!("mined block not accepted: {other:?}"),
            }
        }

        /// Mines `n` empty blocks to `payee`.
        pub fn mine_n(&mut self, n: usize, payee: Address) {
            for _ in 0..n {
                self.mine(payee, vec![]);
            }
        }

        /// `n` spendable coinbase outputs of `owner` (mines `n` blocks to it, then
        /// maturity blocks to an unrelated key).
        pub fn funded(&mut self, owner: Address, n: usize) -> Vec<(OutPoint, Amount)> {
            let blocks: Vec<Block> = (0..n).map(|_| self.mine(owner, vec![])).collect();
            let m = self.cs.params().coinbase_maturity as usize;
            self.mine_n(m, addr(250));
            blocks.iter().map(|b| (OutPoint { txid: b.txs[0].txid(), vout: 0 }, b.txs[0].outputs()[0].value)).collect()
        }
    }

    /// A signed transfer of `coin` (owned by key `from`) paying `fee` and the rest to `to`.
    pub fn transfer(chain_id: &Hash256, from: u8, coin: (OutPoint, Amount), to: Address, fee: u64) -> Transaction {
        let mut tx = Transaction::Transfer {
            inputs: vec![TxIn { prevout: coin.0, pubkey: [0; 32], signature: Sig64::EMPTY }],
            outputs: vec![TxOut { value: Amount::from_units(coin.1.units() - fee), address: to }],
        };
        tx.sign(chain_id, &[&key(from)]);
        tx
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::{TestChain, addr, key, spec, transfer};
    use super::*;
    use crate::chain::tx::{Sig64, TxIn, TxOut};
    use crate::compute::problem::{Params, SolveOpts};
    use crate::pouw::verify::VerifyError;

    fn pool(max_bytes: usize, min_fee_rate: u64) -> Mempool {
        Mempool::new(MempoolConfig { max_bytes, min_fee_rate })
    }

    fn add(mp: &mut Mempool, tc: &mut TestChain, tx: Transaction) -> Result<Hash256, MempoolError> {
        let p = tc.params();
        let h = tc.next_height();
        mp.add(tx, tc.cs.view(), h, &p)
    }

    #[test]
    fn select_orders_by_fee_rate_then_arrival() {
        let mut tc = TestChain::new();
        let coins = tc.funded(addr(1), 4);
        let id = tc.params().chain_id;
        let mut mp = pool(1 << 20, 1);
        let fees = [2_000u64, 9_000, 5_000, 9_000];
        let txs: Vec<Transaction> = coins.iter().zip(fees).map(|(c, f)| transfer(&id, 1, *c, addr(2), f)).collect();
        for tx in &txs {
            add(&mut mp, &mut tc, tx.clone()).expect("accepted");
        }
        assert_eq!(mp.len(), 4);
        assert_eq!(mp.bytes(), txs.iter().map(Transaction::size).sum::<usize>());
        // Same sizes: 9000 (first arrival), 9000 (second), 5000, 2000.
        assert_eq!(
            mp.select(1 << 20, &crate::chain::params::ChainParams::dev().task_limits),
            vec![txs[1].clone(), txs[3].clone(), txs[2].clone(), txs[0].clone()]
        );
        assert_eq!(
            mp.iter().map(|e| e.txid).collect::<Vec<_>>(),
            mp.select(1 << 20, &crate::chain::params::ChainParams::dev().task_limits)
                .iter()
                .map(Transaction::txid)
                .collect::<Vec<_>>()
        );
        // A byte budget of two transactions takes the two best.
        let size = txs[0].size();
        assert_eq!(
            mp.select(2 * size + size / 2, &crate::chain::params::ChainParams::dev().task_limits),
            vec![txs[1].clone(), txs[3].clone()]
        );
        assert_eq!(mp.get(&txs[2].txid()).map(|e| e.fee), Some(Amount::from_units(5_000)));
        // The selection is a valid block.
        let sel = mp.select(1 << 20, &crate::chain::params::ChainParams::dev().task_limits);
        tc.mine(addr(9), sel);
    }

    #[test]
    fn conflicts_duplicates_and_coinbases_are_rejected() {
        let mut tc = TestChain::new();
        let coins = tc.funded(addr(1), 1);
        let id = tc.params().chain_id;
        let mut mp = pool(1 << 20, 1);
        let a = transfer(&id, 1, coins[0], addr(2), 3_000);
        let b = transfer(&id, 1, coins[0], addr(3), 50_000);
        let a_id = add(&mut mp, &mut tc, a.clone()).expect("first spend");
        assert_eq!(add(&mut mp, &mut tc, a.clone()), Err(MempoolError::Duplicate(a_id)));
        // A higher fee does not replace: no replace-by-fee.
        let e = add(&mut mp, &mut tc, b.clone()).expect_err("conflict");
        assert_eq!(e, MempoolError::Conflict { txid: a_id, new: b.txid() });
        assert!(!e.is_peer_fault());
        let cb = Transaction::Coinbase {
            height: 5,
            outputs: vec![TxOut { value: Amount::from_units(1), address: addr(1) }],
        };
        let e = add(&mut mp, &mut tc, cb).expect_err("coinbase");
        assert!(matches!(e, MempoolError::Coinbase(_)) && e.is_peer_fault());
        // A forged signature is the relayer's fault.
        let mut forged = transfer(&id, 1, coins[0], addr(4), 3_000);
        if let Transaction::Transfer { inputs, .. } = &mut forged {
            inputs[0].signature = Sig64([7; 64]);
        }
        let mut mp2 = pool(1 << 20, 1);
        let e = add(&mut mp2, &mut tc, forged).expect_err("bad signature");
        assert!(
            matches!(e, MempoolError::Invalid { error: TxError::BadSignature { index: 0 }, .. }) && e.is_peer_fault(),
            "{e}"
        );
        // Spending a coin that does not exist is not the relayer's fault (maybe our tip).
        let missing = transfer(
            &id,
            1,
            (OutPoint { txid: Hash256([5; 32]), vout: 0 }, Amount::from_units(10_000)),
            addr(2),
            1_000,
        );
        let e = add(&mut mp2, &mut tc, missing).expect_err("missing input");
        assert!(
            matches!(e, MempoolError::State { error: StateError::MissingInput { .. }, .. }) && !e.is_peer_fault(),
            "{e}"
        );
        assert_eq!(mp.len(), 1);
        assert_eq!(mp.spender(&coins[0].0), Some(a_id));
    }

    #[test]
    fn fee_rate_below_the_minimum_is_rejected() {
        let mut tc = TestChain::new();
        let coins = tc.funded(addr(1), 1);
        let id = tc.params().chain_id;
        let size = transfer(&id, 1, coins[0], addr(2), 1).size() as u64;
        let mut mp = pool(1 << 20, 10);
        let low = transfer(&id, 1, coins[0], addr(2), 10 * size - 1);
        let e = add(&mut mp, &mut tc, low).expect_err("one unit short");
        assert!(matches!(e, MempoolError::FeeTooLow { min_fee_rate: 10, .. }) && !e.is_peer_fault(), "{e}");
        let exact = transfer(&id, 1, coins[0], addr(2), 10 * size);
        add(&mut mp, &mut tc, exact).expect("exactly the minimum");
        assert_eq!(mp.iter().next().map(|e| e.fee_rate.per_byte()), Some(10));
    }

    #[test]
    fn eviction_drops_the_cheapest_and_keeps_the_byte_bound() {
        let mut tc = TestChain::new();
        let coins = tc.funded(addr(1), 5);
        let id = tc.params().chain_id;
        let tx = |i: usize, fee: u64| transfer(&id, 1, coins[i], addr(2), fee);
        let size = tx(0, 1).size();
        let mut mp = pool(2 * size, 1);
        let (t0, t1, t2) = (tx(0, 3_000), tx(1, 8_000), tx(2, 5_000));
        add(&mut mp, &mut tc, t0.clone()).expect("fits");
        add(&mut mp, &mut tc, t1.clone()).expect("fits");
        assert_eq!(mp.bytes(), 2 * size);
        // Better than t0: t0 goes.
        add(&mut mp, &mut tc, t2.clone()).expect("evicts the cheapest");
        assert!(!mp.contains(&t0.txid()) && mp.contains(&t1.txid()) && mp.contains(&t2.txid()));
        assert!(mp.bytes() <= 2 * size);
        assert_eq!(mp.spender(&coins[0].0), None, "the evicted spend is forgotten");
        // Cheaper than everything: rejected, nothing changes.
        let e = add(&mut mp, &mut tc, tx(3, 4_000)).expect_err("cheapest");
        assert!(matches!(e, MempoolError::PoolFull { .. }) && !e.is_peer_fault(), "{e}");
        // Equal to the cheapest: the earlier arrival stays.
        assert!(matches!(add(&mut mp, &mut tc, tx(3, 5_000)), Err(MempoolError::PoolFull { .. })));
        assert_eq!(mp.len(), 2);
        // The evicted coin can be spent again.
        add(&mut mp, &mut tc, tx(0, 9_000)).expect("re-spend of an evicted coin");
        assert!(!mp.contains(&t2.txid()));
        // Larger than the whole pool.
        let mut tiny = pool(size - 1, 0);
        assert!(matches!(add(&mut tiny, &mut tc, tx(4, 1_000_000)), Err(MempoolError::PoolFull { .. })));
    }

    /// A fee-less model update for `task` with `params`.
    fn update(tc: &mut TestChain, task: Hash256, params: &Params, to: u8) -> Transaction {
        let p = tc.cs.view().problem(&task).expect("task");
        let claimed = p.certify(params).expect("certify");
        Transaction::ModelUpdate {
            inputs: vec![],
            outputs: vec![],
            task_id: task,
            params: params.0.clone(),
            claimed,
            reward_to: addr(to),
        }
    }

    /// Submits and mines a task of key 1 with `bounty` expiring `ttl` blocks ahead.
    fn submitted_task(tc: &mut TestChain, coin: (OutPoint, Amount), bounty: u64, ttl: u64, target: f64) -> Hash256 {
        let mut tx = Transaction::SubmitTask {
            inputs: vec![TxIn { prevout: coin.0, pubkey: [0; 32], signature: Sig64::EMPTY }],
            outputs: vec![TxOut { value: Amount::from_units(coin.1.units() - bounty - 1_000), address: addr(1) }],
            spec: spec(target),
            bounty: Amount::from_units(bounty),
            expires_at_height: tc.cs.height() + ttl,
        };
        tx.sign(&tc.params().chain_id, &[&key(1)]);
        let id = tx.txid();
        tc.mine(addr(9), vec![tx]);
        id
    }

    #[test]
    fn model_update_is_replaced_by_a_better_one_and_a_worse_one_is_rejected() {
        let mut tc = TestChain::new();
        let coins = tc.funded(addr(1), 1);
        let task = submitted_task(&mut tc, coins[0], 5_000, 100, 1e-30);
        let p = tc.cs.view().problem(&task).expect("task");
        let (rough, _) = p.solve(&SolveOpts { max_iter: 1, ..Default::default() }, &mut |_| {}).expect("solve");
        let (good, _) = p.solve(&SolveOpts { max_iter: 6, ..Default::default() }, &mut |_| {}).expect("solve");
        let mut mp = pool(1 << 20, 0);
        let worse = update(&mut tc, task, &rough, 3);
        let better = update(&mut tc, task, &good, 4);
        let worse_id = add(&mut mp, &mut tc, worse.clone()).expect("improves the chain's best");
        let better_id = add(&mut mp, &mut tc, better.clone()).expect("replaces the worse");
        assert_eq!(mp.len(), 1);
        assert!(mp.contains(&better_id) && !mp.contains(&worse_id));
        let e = add(&mut mp, &mut tc, worse).expect_err("worse than the pool's");
        assert!(
            matches!(e, MempoolError::NotBest { pool_txid, .. } if pool_txid == better_id) && !e.is_peer_fault(),
            "{e}"
        );
        // An update of the chain's current best is not relayed.
        let best = Params(tc.cs.state().task(&task).expect("task").best_params.clone());
        let same = update(&mut tc, task, &best, 3);
        let e = add(&mut pool(1 << 20, 0), &mut tc, same).expect_err("not improving");
        assert!(
            matches!(e, MempoolError::State { error: StateError::Work(VerifyError::NotImproving { .. }), .. })
                && !e.is_peer_fault(),
            "{e}"
        );
        // The selection holds one update per task, and it is a valid block.
        let sel = mp.select(1 << 20, &crate::chain::params::ChainParams::dev().task_limits);
        assert_eq!(sel, vec![better]);
        let b = tc.mine(addr(9), sel);
        mp.remove_for_block(&b);
        assert!(mp.is_empty());
    }

    #[test]
    fn select_keeps_task_submissions_within_the_block_limits() {
        let mut tc = TestChain::new();
        let coins = tc.funded(addr(1), 3);
        let mut mp = pool(1 << 20, 0);
        for coin in &coins {
            let mut tx = Transaction::SubmitTask {
                inputs: vec![TxIn { prevout: coin.0, pubkey: [0; 32], signature: Sig64::EMPTY }],
                outputs: vec![TxOut { value: Amount::from_units(coin.1.units() - 5_000 - 10_000), address: addr(1) }],
                spec: spec(1e-9),
                bounty: Amount::from_units(5_000),
                expires_at_height: tc.cs.height() + 50,
            };
            tx.sign(&tc.params().chain_id, &[&key(1)]);
            add(&mut mp, &mut tc, tx).expect("admissible task");
        }
        let limits = tc.params().task_limits;
        assert_eq!(mp.select(1 << 20, &limits).len(), 3);
        let two = TaskLimits { max_tasks_per_block: 2, ..limits };
        let sel = mp.select(1 << 20, &two);
        assert_eq!(sel.len(), 2);
        let one_task_bytes = spec(1e-9).data_bytes();
        let tight = TaskLimits { max_task_bytes_per_block: 2 * one_task_bytes - 1, ..limits };
        assert_eq!(mp.select(1 << 20, &tight).len(), 1);
        // What it selects is a valid block under the network's limits.
        let mut strict = tc.params();
        strict.task_limits = two;
        let b = tc.mine(addr(9), sel);
        assert!(crate::chain::validate::check_block_body(&b, &strict).is_ok());
        assert_eq!(b.txs.len(), 3, "two tasks mined, plus the coinbase");
    }

    #[test]
    fn remove_for_block_drops_mined_and_conflicting_transactions() {
        let mut tc = TestChain::new();
        let coins = tc.funded(addr(1), 3);
        let id = tc.params().chain_id;
        let mut mp = pool(1 << 20, 1);
        let a = transfer(&id, 1, coins[0], addr(2), 2_000);
        let b = transfer(&id, 1, coins[1], addr(2), 2_000);
        let c = transfer(&id, 1, coins[2], addr(2), 2_000);
        for t in [&a, &b, &c] {
            add(&mut mp, &mut tc, t.clone()).expect("accepted");
        }
        // The block mines `a` and a different spend of `b`'s coin.
        let b2 = transfer(&id, 1, coins[1], addr(7), 4_000);
        let block = tc.mine(addr(9), vec![a.clone(), b2]);
        let mut dropped = mp.remove_for_block(&block);
        dropped.sort();
        let mut want = vec![a.txid(), b.txid()];
        want.sort();
        assert_eq!(dropped, want);
        assert_eq!(mp.len(), 1);
        assert!(mp.contains(&c.txid()));
        assert_eq!(mp.bytes(), c.size());
        assert_eq!(mp.spender(&coins[1].0), None);
    }

    #[test]
    fn revalidate_drops_transactions_whose_inputs_a_block_spent() {
        let mut tc = TestChain::new();
        let coins = tc.funded(addr(1), 2);
        let id = tc.params().chain_id;
        let mut mp = pool(1 << 20, 1);
        let a = transfer(&id, 1, coins[0], addr(2), 2_000);
        let keep = transfer(&id, 1, coins[1], addr(2), 2_000);
        add(&mut mp, &mut tc, a.clone()).expect("accepted");
        add(&mut mp, &mut tc, keep.clone()).expect("accepted");
        // A block from elsewhere spends `a`'s coin; the pool is told only "new tip".
        tc.mine(addr(9), vec![transfer(&id, 1, coins[0], addr(8), 3_000)]);
        let (p, h) = (tc.params(), tc.next_height());
        let dropped = mp.revalidate(tc.cs.view(), h, &p);
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].0, a.txid());
        assert!(matches!(dropped[0].1, MempoolError::State { error: StateError::MissingInput { .. }, .. }));
        assert_eq!(mp.len(), 1);
        assert!(mp.contains(&keep.txid()));
        // Re-adding a disconnected block's transactions skips its coinbase.
        let cb = Transaction::Coinbase {
            height: 3,
            outputs: vec![TxOut { value: Amount::from_units(1), address: addr(1) }],
        };
        let mut mp2 = pool(1 << 20, 1);
        let added = mp2.readd(vec![cb, keep.clone(), a], tc.cs.view(), h, &p);
        assert_eq!(added, vec![keep.txid()]);
    }

    #[test]
    fn reclaims_pay_no_fee_but_only_one_per_task_is_pooled() {
        let mut tc = TestChain::new();
        let coins = tc.funded(addr(1), 1);
        let task = submitted_task(&mut tc, coins[0], 7_000, 2, 1e-30);
        tc.mine_n(2, addr(9));
        let mut reclaim = Transaction::ReclaimTask { task_id: task, pubkey: [0; 32], signature: Sig64::EMPTY };
        reclaim.sign(&tc.params().chain_id, &[&key(1)]);
        let mut mp = pool(1 << 20, 1_000);
        let rid = add(&mut mp, &mut tc, reclaim.clone()).expect("fee exempt");
        assert_eq!(mp.get(&rid).map(|e| e.fee), Some(Amount::ZERO));
        // Another reclaim of the same task (a different txid) conflicts.
        let mut other = reclaim.clone();
        if let Transaction::ReclaimTask { signature, .. } = &mut other {
            signature.0[0] ^= 1;
        }
        assert_eq!(add(&mut mp, &mut tc, other.clone()), Err(MempoolError::Conflict { txid: rid, new: other.txid() }));
        // A fee-less transfer is not exempt.
        let fee_less = transfer(&tc.params().chain_id, 9, tc.funded(addr(9), 1)[0], addr(2), 0);
        assert!(matches!(add(&mut mp, &mut tc, fee_less), Err(MempoolError::FeeTooLow { .. })));
        let b = tc.mine(addr(9), mp.select(1 << 20, &crate::chain::params::ChainParams::dev().task_limits));
        assert_eq!(mp.remove_for_block(&b), vec![rid]);
    }
}
