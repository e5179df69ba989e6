//! The block pipeline: check -> index -> connect/reorg -> persist, over a [`BlockStore`],
//! with the cost table of DESIGN.md §3.1. The model is nakamoto's `BlockCache<S: Store>`:
//! the rules live here, the store only persists.
//!
//! [`Chain`] keeps the block index, the state at the tip and the cost table in memory,
//! in step with its store: the sled store (`store::Store`) for nodes, [`MemStore`] for
//! consensus tests. It is pure in the sense of `chain`: no clock (callers pass `now`), no
//! network, no randomness; the only I/O is through the store trait.
//!
//! # Consensus
//! A block is checked cheapest first, so a peer sending garbage pays more than we do:
//! 1. header alone: version, bits, `0 < cost <= max_step_cost` (context-free);
//! 2. the parent is known (an unknown parent is an orphan, not a fault) and not invalid;
//! 3. the cost table: the task must be registered and `header.work.cost` must equal its
//!    registered cost. Every ancestor of a known parent is stored and every stored block's
//!    tasks are registered, so an unknown task here means the block is invalid;
//! 4. proof of work against the *table* cost: `hash <= target(bits) * table_cost`;
//! 5. header against its parent: ASERT bits, time after the median time past, not too far
//!    ahead of the clock (that one is transient);
//! 6. the body alone (structure, witness, transactions, task limits, size, merkle root,
//!    signatures);
//! 7. the block is stored, its tasks are registered in the cost table, and fork choice
//!    connects (replaying its step) only along a chain with more work than the tip.

use crate::chain::block::{Block, Header};
use crate::chain::fault::{Classify, Fault};
use crate::chain::forkchoice::{BlockIndex, BlockStatus, IndexEntry, TipChange};
use crate::chain::params::{ChainParams, MTP_WINDOW};
use crate::chain::problems::ProblemCache;
use crate::chain::state::{
    Delta, State, StateError, StateView, TaskSpecs, TaskStates, Undo, Utxos, VerifiedWork, WorkCheck,
};
use crate::chain::target::{U256, chainwork};
use crate::chain::tx::Transaction;
use crate::chain::validate::{
    BlockError, ParentContext, check_block_body, check_header_alone, check_header_context, check_pow,
};
use crate::hash::Hash256;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// What the pipeline needs from persistence. Every write is atomic; a write that returns
/// `Ok` is durable (the sled store flushes before returning).
pub trait BlockStore {
    /// The store's own failure.
    type Error: std::error::Error + Send + Sync + 'static;
    /// The stored genesis hash (`None` for a fresh store).
    fn genesis(&self) -> Result<Option<Hash256>, Self::Error>;
    /// Writes a fresh chain: genesis block, its entry, main[0], the genesis tasks, the cost
    /// table's first entries, the tip.
    fn init_genesis(
        &self,
        genesis: &Block,
        entry: &IndexEntry,
        delta: &Delta,
        costs: &[(Hash256, u64)],
    ) -> Result<(), Self::Error>;
    /// Every index entry.
    fn load_index(&self) -> Result<HashMap<Hash256, IndexEntry>, Self::Error>;
    /// The UTXO set, task registry and specs at the tip.
    fn load_state(&self) -> Result<(Utxos, TaskStates, TaskSpecs), Self::Error>;
    /// The cost table.
    fn load_costs(&self) -> Result<HashMap<Hash256, u64>, Self::Error>;
    /// The stored tip.
    fn tip(&self) -> Result<Option<Hash256>, Self::Error>;
    /// The main-chain hash at `height`.
    fn main_hash(&self, height: u64) -> Result<Option<Hash256>, Self::Error>;
    /// Stores a block (not connected), its index entry and the costs of the tasks it
    /// submits, atomically.
    fn put_block(&self, block: &Block, entry: &IndexEntry, costs: &[(Hash256, u64)]) -> Result<(), Self::Error>;
    /// Updates index entries (status changes).
    fn put_index_entries(&self, entries: &[(Hash256, IndexEntry)]) -> Result<(), Self::Error>;
    /// A stored block.
    fn block(&self, h: &Hash256) -> Result<Option<Block>, Self::Error>;
    /// A stored undo record.
    fn undo(&self, h: &Hash256) -> Result<Option<Undo>, Self::Error>;
    /// Connects block `h` at `height`: the delta, the undo record, the entry, main[height],
    /// the tip and the transaction index, atomically.
    #[allow(clippy::too_many_arguments)]
    fn connect(
        &self,
        h: &Hash256,
        height: u64,
        entry: &IndexEntry,
        undo: &Undo,
        delta: &Delta,
        txids: &[Hash256],
    ) -> Result<(), Self::Error>;
    /// Disconnects the tip at `height` back to `parent`, restoring `undo`, atomically.
    fn disconnect(&self, height: u64, parent: &Hash256, undo: &Undo) -> Result<(), Self::Error>;
}

/// Why a block was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError<E: std::error::Error + 'static> {
    /// The block is invalid (or cannot be judged yet: see [`BlockError::is_transient`]).
    #[error("{0}")]
    Block(#[from] BlockError),
    /// The store failed.
    #[error("{0}")]
    Store(E),
    /// The store contradicts itself.
    #[error("inconsistent chain store: {0}")]
    Inconsistent(String),
}

impl<E: std::error::Error + 'static> Classify for ProcessError<E> {
    fn fault(&self) -> Fault {
        match self {
            ProcessError::Block(e) => e.fault(),
            ProcessError::Store(_) | ProcessError::Inconsistent(_) => Fault::Local,
        }
    }
}

/// What accepting a block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Already known; nothing changed.
    Duplicate,
    /// Stored on a side chain (less work than the tip).
    SideChain,
    /// The tip moved: blocks disconnected (old tip first) and connected (oldest first).
    NewTip {
        /// Disconnected hashes.
        disconnected: Vec<Hash256>,
        /// Connected hashes.
        connected: Vec<Hash256>,
    },
}

/// The costs of the tasks a block submits: `(task id = txid, cost in mWU)`.
///
/// # Consensus
/// Registered in the cost table when the block is stored, on any chain (DESIGN.md §3.1).
/// Only for blocks whose body passed [`check_block_body`], which checks every spec's
/// limits, so every registered cost is within the cap.
pub fn submitted_costs(block: &Block) -> Vec<(Hash256, u64)> {
    block
        .txs
        .iter()
        .filter_map(|tx| match tx {
            Transaction::SubmitTask { spec, .. } => Some((tx.txid(), spec.cost())),
            _ => None,
        })
        .collect()
}

/// The chain: parameters, store, index, state at the tip, cost table.
pub struct Chain<S: BlockStore> {
    params: ChainParams,
    store: S,
    index: BlockIndex,
    state: State,
    costs: HashMap<Hash256, u64>,
    tip: Hash256,
    problems: ProblemCache,
    verified: HashMap<Hash256, VerifiedWork>,
    verified_order: VecDeque<Hash256>,
    /// The tip when the current round of [`Chain::activate`] began.
    round_from: Option<Hash256>,
}

type PResult<T, S> = Result<T, ProcessError<<S as BlockStore>::Error>>;

impl<S: BlockStore> Chain<S> {
    /// Loads the chain from `store` (writing genesis into a fresh one), checks the stored
    /// tip against the index, and moves to the best known chain if a block was stored but
    /// not connected before a crash.
    pub fn load(store: S, params: ChainParams) -> PResult<Chain<S>, S> {
        let genesis_hash = params.genesis_hash();
        let problems = ProblemCache::default();
        match store.genesis().map_err(ProcessError::Store)? {
            None => {
                let state = State::genesis(&params, &problems).map_err(BlockError::from)?;
                let index = BlockIndex::new(&params.genesis.header);
                let entry = index.get(&genesis_hash).expect("genesis is indexed").clone();
                let delta = Delta {
                    spent: vec![],
                    created: vec![],
                    tasks: state.tasks().iter().map(|(k, v)| (*k, v.clone())).collect(),
                    specs: state.specs().iter().map(|(k, v)| (*k, v.clone())).collect(),
                };
                let costs = [(params.public_task_id, params.public_task.cost())];
                store.init_genesis(&params.genesis, &entry, &delta, &costs).map_err(ProcessError::Store)?;
            }
            Some(found) if found != genesis_hash => {
                return Err(ProcessError::Inconsistent(format!(
                    "the store holds the chain with genesis {found}, this network's genesis is {genesis_hash}: use another data directory"
                )));
            }
            Some(_) => {}
        }
        let entries = store.load_index().map_err(ProcessError::Store)?;
        let index = BlockIndex::from_entries(genesis_hash, entries);
        let (utxos, tasks, specs) = store.load_state().map_err(ProcessError::Store)?;
        let state = State::from_parts(utxos, tasks, specs);
        let costs = store.load_costs().map_err(ProcessError::Store)?;
        let tip = store
            .tip()
            .map_err(ProcessError::Store)?
            .ok_or_else(|| ProcessError::Inconsistent("no tip recorded".into()))?;
        let tip_entry =
            index.get(&tip).ok_or_else(|| ProcessError::Inconsistent(format!("tip {tip} is not in the index")))?;
        if tip_entry.status != BlockStatus::Valid {
            return Err(ProcessError::Inconsistent(format!("tip {tip} is not marked valid")));
        }
        let height = tip_entry.height;
        if store.main_hash(height).map_err(ProcessError::Store)? != Some(tip) {
            return Err(ProcessError::Inconsistent(format!("main chain at height {height} is not the tip {tip}")));
        }
        if store.main_hash(height + 1).map_err(ProcessError::Store)?.is_some() {
            return Err(ProcessError::Inconsistent(format!("main chain extends past the tip at height {height}")));
        }
        if costs.get(&params.public_task_id) != Some(&params.public_task.cost()) {
            return Err(ProcessError::Inconsistent("the cost table has no entry for the public task".into()));
        }
        let mut chain = Chain {
            params,
            store,
            index,
            state,
            costs,
            tip,
            problems,
            verified: HashMap::new(),
            verified_order: VecDeque::new(),
            round_from: None,
        };
        // A block stored but not connected before a crash: try to connect it now. A failure
        // marks it invalid and keeps the best remaining tip, so loading still succeeds.
        if let Err(e) = chain.activate_inline() {
            tracing::warn!("connecting stored blocks at open: {e}");
        }
        Ok(chain)
    }

    /// The parameters.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The tip hash.
    pub fn tip(&self) -> Hash256 {
        self.tip
    }

    /// The tip's index entry.
    pub fn tip_entry(&self) -> &IndexEntry {
        self.index.get(&self.tip).expect("the tip is indexed")
    }

    /// The tip height.
    pub fn height(&self) -> u64 {
        self.tip_entry().height
    }

    /// The block index.
    pub fn index(&self) -> &BlockIndex {
        &self.index
    }

    /// The state at the tip.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The state at the tip with the built problems of its tasks.
    pub fn view(&self) -> StateView<'_> {
        StateView { state: &self.state, problems: &self.problems }
    }

    /// The built problems of registered tasks.
    pub fn problems(&self) -> &ProblemCache {
        &self.problems
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The registered step cost of task `id` in mWU (DESIGN.md §3.1), if any stored block
    /// (on any chain) or genesis submitted it.
    pub fn task_cost(&self, id: &Hash256) -> Option<u64> {
        self.costs.get(id).copied()
    }

    /// A stored block.
    pub fn block(&self, h: &Hash256) -> PResult<Option<Block>, S> {
        self.store.block(h).map_err(ProcessError::Store)
    }

    /// The main-chain block hash at `height`.
    pub fn hash_at(&self, height: u64) -> PResult<Option<Hash256>, S> {
        self.store.main_hash(height).map_err(ProcessError::Store)
    }

    /// Accepts a block: the checks of the module docs in order, storage, then fork choice
    /// (connecting, or reorganising to, the chain with the most work), replaying steps on
    /// this thread. A block that fails to connect is marked invalid with its descendants
    /// and the best remaining chain is restored; the first such failure is the error.
    ///
    /// A node keeps replays off its state thread with [`Chain::accept_block`],
    /// [`Chain::activate`] and [`Chain::record_replay`] instead; this is their composition
    /// with every replay run inline.
    pub fn process_block(&mut self, block: &Block, now: u64) -> PResult<Accepted, S> {
        if self.accept_block(block, now)? == Stored::Duplicate {
            return Ok(Accepted::Duplicate);
        }
        self.activate_inline()
    }

    /// Fork choice with every replay run inline, until done. The first invalid block found
    /// is the error (after the tip has moved to the best remaining chain).
    fn activate_inline(&mut self) -> PResult<Accepted, S> {
        let mut first_failure = None;
        loop {
            match self.activate()? {
                Step::Done(accepted) => return first_failure.map_or(Ok(accepted), |e: BlockError| Err(e.into())),
                Step::Replay(check) => {
                    let result = check.replay();
                    if let Err(e) = self.record_replay(check.block(), result) {
                        match e {
                            ProcessError::Block(be) => {
                                first_failure.get_or_insert(be);
                            }
                            other => return Err(other),
                        }
                    }
                }
                Step::Invalid { error, .. } => {
                    first_failure.get_or_insert(error);
                }
            }
        }
    }

    /// Checks 1-6 of the module docs and stores the block (registering its tasks' costs),
    /// without moving the tip: [`Chain::activate`] does that.
    pub fn accept_block(&mut self, block: &Block, now: u64) -> PResult<Stored, S> {
        let hash = block.hash();
        if let Some(e) = self.index.get(&hash) {
            if e.status == BlockStatus::Invalid {
                return Err(BlockError::KnownInvalid(hash).into());
            }
            return Ok(Stored::Duplicate);
        }
        let header = &block.header;
        check_header_alone(header, &self.params)?;
        let parent = self.index.get(&header.prev).ok_or(BlockError::UnknownParent(header.prev))?;
        if parent.status == BlockStatus::Invalid {
            return Err(BlockError::InvalidParent(header.prev).into());
        }
        let cost = self.task_cost(&header.work.task_id).ok_or(BlockError::UnknownTask(header.work.task_id))?;
        check_pow(header, cost, &self.params)?;
        let ctx = self.index.parent_context(&header.prev).expect("parent is indexed");
        check_header_context(header, &ctx, now, &self.params)?;
        check_block_body(block, &self.params)?;
        let entry = self.index.insert(header).map_err(|_| BlockError::UnknownParent(header.prev))?.clone();
        let costs = submitted_costs(block);
        self.store.put_block(block, &entry, &costs).map_err(ProcessError::Store)?;
        self.costs.extend(costs);
        Ok(Stored::New { can_become_tip: entry.work() > self.tip_entry().work() })
    }

    /// Checks a chain of headers offered in sync (DESIGN.md §3.6) without their blocks:
    /// each header alone, linked to the previous one, with the bits ASERT gives after its
    /// parent, a time after the median time past, and proof of work against the cost
    /// table when its task is registered (against its claimed cost, itself capped by
    /// `max_step_cost`, while the task is only submitted by a block not downloaded yet).
    /// `headers[0].prev` must be in the index. Returns the chainwork the headers add.
    pub fn check_headers(&self, headers: &[Header], now: u64) -> Result<U256, BlockError> {
        let Some(first) = headers.first() else { return Ok(U256::ZERO) };
        let fork = self.index.get(&first.prev).ok_or(BlockError::UnknownParent(first.prev))?;
        if fork.status == BlockStatus::Invalid {
            return Err(BlockError::InvalidParent(first.prev));
        }
        // The times of the fork point and its ancestors, most recent last.
        let mut times = Vec::with_capacity(MTP_WINDOW);
        let mut cur = Some(first.prev);
        while let Some(h) = cur.filter(|_| times.len() < MTP_WINDOW) {
            let e = self.index.get(&h).ok_or(BlockError::UnknownParent(h))?;
            times.push(e.header.time);
            cur = (e.height > 0).then_some(e.header.prev);
        }
        times.reverse();
        let (mut parent_hash, mut parent_height) = (first.prev, fork.height);
        let mut block_one_time = (fork.height > 0).then_some(fork.block_one_time);
        let mut work = U256::ZERO;
        for h in headers {
            if h.prev != parent_hash {
                return Err(BlockError::UnknownParent(h.prev));
            }
            check_header_alone(h, &self.params)?;
            let cost = self.task_cost(&h.work.task_id).unwrap_or(h.work.cost);
            check_pow(h, cost, &self.params)?;
            let mut window: Vec<u64> = times[times.len().saturating_sub(MTP_WINDOW)..].to_vec();
            window.sort_unstable();
            let ctx = ParentContext {
                height: parent_height,
                time: *times.last().expect("the fork point's time is in the window"),
                median_time_past: window[window.len() / 2],
                block_one_time,
            };
            check_header_context(h, &ctx, now, &self.params)?;
            let target = crate::chain::target::target_from_bits(h.bits)?;
            work = work.saturating_add(chainwork(target));
            times.push(h.time);
            parent_hash = h.hash();
            parent_height += 1;
            block_one_time = block_one_time.or(Some(h.time));
        }
        Ok(work)
    }

    /// One step of fork choice towards the best valid candidate.
    ///
    /// Nothing moves until every block on the way has its step replayed: the first that
    /// has not is returned as [`Step::Replay`] (one replay at a time, so a peer's invalid
    /// chain costs one replay), to be run anywhere and handed back to
    /// [`Chain::record_replay`]. A block found invalid on the way (cheap checks, or its
    /// transactions while connecting) is marked with its descendants and returned as
    /// [`Step::Invalid`]; call again to go on. [`Step::Done`] reports the tip's change since
    /// the first call of the round.
    ///
    /// # Consensus
    /// Only blocks on a chain with more work than the tip are replayed (DESIGN.md §3.6).
    /// When the block's parent is the tip, the cheap checks of its work claim run here
    /// against the parent's state and its witness certificate joins the replay; deeper in
    /// a reorganisation the parent's state is not at hand, so those checks (and the
    /// certificate) run when the block is connected.
    pub fn activate(&mut self) -> PResult<Step, S> {
        let from = *self.round_from.get_or_insert(self.tip);
        loop {
            let best = self.index.best();
            if self.index.get(&best).map(IndexEntry::work) <= self.index.get(&self.tip).map(IndexEntry::work) {
                break;
            }
            let TipChange::Reorg { disconnect, connect } = self.index.path(&self.tip, &best).expect("both are indexed")
            else {
                break;
            };
            match self.next_replay(&disconnect, &connect)? {
                NextReplay::None => {}
                NextReplay::Replay(check) => return Ok(Step::Replay(check)),
                NextReplay::Invalid(block, error) => {
                    self.mark_invalid(&block)?;
                    return Ok(Step::Invalid { block, error });
                }
            }
            for h in &disconnect {
                self.disconnect_tip(h)?;
            }
            for h in &connect {
                match self.connect_block(h) {
                    Ok(()) => {}
                    Err(ProcessError::Block(error)) => {
                        self.mark_invalid(h)?;
                        return Ok(Step::Invalid { block: *h, error });
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.round_from = None;
        if self.tip == from {
            return Ok(Step::Done(Accepted::SideChain));
        }
        let TipChange::Reorg { disconnect, connect } = self.index.path(&from, &self.tip).expect("indexed") else {
            return Ok(Step::Done(Accepted::SideChain));
        };
        Ok(Step::Done(Accepted::NewTip { disconnected: disconnect, connected: connect }))
    }

    /// Records the outcome of a [`WorkCheck::replay`] of block `block`: kept for its
    /// connection, or (a mismatch, an invalid witness) the block is marked invalid with its
    /// descendants and the error returned. Call [`Chain::activate`] next.
    pub fn record_replay(&mut self, block: Hash256, result: Result<VerifiedWork, StateError>) -> PResult<(), S> {
        match result {
            Ok(work) => {
                debug_assert_eq!(work.block(), block);
                self.remember(work);
                Ok(())
            }
            Err(e) => {
                self.mark_invalid(&block)?;
                Err(BlockError::from(e).into())
            }
        }
    }

    /// Whether every block of `connect` has its replay, or which one is next (or found
    /// invalid by its cheap checks).
    fn next_replay(&self, disconnect: &[Hash256], connect: &[Hash256]) -> PResult<NextReplay, S> {
        for (i, h) in connect.iter().enumerate() {
            if self.verified.contains_key(h) {
                continue;
            }
            let block = self
                .block(h)?
                .ok_or_else(|| ProcessError::Inconsistent(format!("block {h} is indexed but not stored")))?;
            let height = self.index.get(h).expect("connect path is indexed").height;
            if i == 0 && disconnect.is_empty() {
                return Ok(match self.state.check_work(&block, height, &self.problems) {
                    Ok(check) => NextReplay::Replay(check),
                    Err(e) => NextReplay::Invalid(*h, e.into()),
                });
            }
            // Deeper: the task's spec is in our state or submitted earlier on this branch;
            // if neither, connecting the block fails on its unknown task without a replay.
            let task = block.header.work.task_id;
            let spec = match self.state.spec(&task) {
                Some(s) => Some(s.clone()),
                None => self.spec_on_branch(&connect[..i], &task)?,
            };
            let Some(spec) = spec else { return Ok(NextReplay::None) };
            let problem = match self.problems.get(&task, &spec) {
                Ok(p) => p,
                Err(e) => return Ok(NextReplay::Invalid(*h, BlockError::from(StateError::from(e)))),
            };
            return Ok(NextReplay::Replay(WorkCheck::without_state(&block, problem)));
        }
        Ok(NextReplay::None)
    }

    /// The spec of task `task` if one of `blocks` submits it.
    fn spec_on_branch(&self, blocks: &[Hash256], task: &Hash256) -> PResult<Option<crate::pouw::task::TaskSpec>, S> {
        for h in blocks {
            let Some(b) = self.block(h)? else { continue };
            for tx in &b.txs {
                if let Transaction::SubmitTask { spec, .. } = tx
                    && tx.txid() == *task
                {
                    return Ok(Some(spec.clone()));
                }
            }
        }
        Ok(None)
    }

    /// Keeps a replay for the block's connection, and for reconnecting it after a failed
    /// reorganisation; the oldest beyond [`MAX_VERIFIED`] are dropped (a dropped one costs
    /// a replay again).
    fn remember(&mut self, work: VerifiedWork) {
        let h = work.block();
        if self.verified.insert(h, work).is_none() {
            self.verified_order.push_back(h);
        }
        while self.verified_order.len() > MAX_VERIFIED {
            if let Some(old) = self.verified_order.pop_front() {
                self.verified.remove(&old);
            }
        }
    }

    /// Marks `h` and its descendants invalid, in the index and the store.
    fn mark_invalid(&mut self, h: &Hash256) -> PResult<(), S> {
        let marked = self.index.mark_invalid(h);
        for m in &marked {
            if self.verified.remove(m).is_some() {
                self.verified_order.retain(|x| x != m);
            }
        }
        let updates: Vec<(Hash256, IndexEntry)> =
            marked.iter().filter_map(|h| self.index.get(h).map(|e| (*h, e.clone()))).collect();
        self.store.put_index_entries(&updates).map_err(ProcessError::Store)
    }

    fn connect_block(&mut self, h: &Hash256) -> PResult<(), S> {
        let block =
            self.block(h)?.ok_or_else(|| ProcessError::Inconsistent(format!("block {h} is indexed but not stored")))?;
        let entry = self.index.get(h).expect("connect path is indexed").clone();
        let work = match self.verified.get(h) {
            Some(w) => w.clone(),
            None => {
                // Only when the task was unknown at planning: the cheap checks fail first.
                let check = self.state.check_work(&block, entry.height, &self.problems).map_err(BlockError::from)?;
                let work = check.replay().map_err(BlockError::from)?;
                self.remember(work.clone());
                work
            }
        };
        let (undo, delta) =
            self.state.connect(&block, entry.height, &self.params, &self.problems, &work).map_err(BlockError::from)?;
        let mut valid = entry;
        valid.status = BlockStatus::Valid;
        let txids: Vec<Hash256> = block.txs.iter().map(|t| t.txid()).collect();
        if let Err(e) = self.store.connect(h, valid.height, &valid, &undo, &delta, &txids) {
            self.state.disconnect(&undo);
            return Err(ProcessError::Store(e));
        }
        self.index.mark_valid(h);
        self.tip = *h;
        Ok(())
    }

    fn disconnect_tip(&mut self, h: &Hash256) -> PResult<(), S> {
        debug_assert_eq!(*h, self.tip);
        let entry = self.index.get(h).expect("tip is indexed").clone();
        let undo = self
            .store
            .undo(h)
            .map_err(ProcessError::Store)?
            .ok_or_else(|| ProcessError::Inconsistent(format!("no undo record for {h}")))?;
        self.store.disconnect(entry.height, &entry.header.prev, &undo).map_err(ProcessError::Store)?;
        self.state.disconnect(&undo);
        self.tip = entry.header.prev;
        Ok(())
    }
}

/// Replays kept for connecting (and reconnecting) blocks: a few reorganisations' worth.
pub const MAX_VERIFIED: usize = 1024;

enum NextReplay {
    None,
    Replay(WorkCheck),
    Invalid(Hash256, BlockError),
}

/// What [`Chain::accept_block`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Already known; nothing changed.
    Duplicate,
    /// Checked and stored, not connected yet.
    New {
        /// Whether its chain has more work than the tip (else fork choice leaves it be).
        can_become_tip: bool,
    },
}

/// One step of [`Chain::activate`].
#[derive(Debug)]
pub enum Step {
    /// Fork choice is done; the tip's change since the round began.
    Done(Accepted),
    /// This block's step must be replayed ([`WorkCheck::replay`], on any thread) and
    /// the outcome given to [`Chain::record_replay`] before fork choice can go on.
    Replay(WorkCheck),
    /// This block was found invalid (marked, with its descendants); fork choice goes on.
    Invalid {
        /// The block.
        block: Hash256,
        /// Why.
        error: BlockError,
    },
}

/// An in-memory [`BlockStore`] for consensus tests: the same contract as the sled store,
/// with nothing on disk.
#[derive(Default)]
pub struct MemStore {
    inner: Mutex<MemInner>,
}

#[derive(Default, Clone)]
struct MemInner {
    genesis: Option<Hash256>,
    tip: Option<Hash256>,
    blocks: HashMap<Hash256, Block>,
    index: HashMap<Hash256, IndexEntry>,
    main: HashMap<u64, Hash256>,
    utxos: Utxos,
    tasks: TaskStates,
    specs: TaskSpecs,
    undo: HashMap<Hash256, Undo>,
    costs: HashMap<Hash256, u64>,
}

impl MemStore {
    fn with<T>(&self, f: impl FnOnce(&mut MemInner) -> T) -> Result<T, std::convert::Infallible> {
        Ok(f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner())))
    }
}

impl BlockStore for MemStore {
    type Error = std::convert::Infallible;

    fn genesis(&self) -> Result<Option<Hash256>, Self::Error> {
        self.with(|m| m.genesis)
    }

    fn init_genesis(
        &self,
        genesis: &Block,
        entry: &IndexEntry,
        delta: &Delta,
        costs: &[(Hash256, u64)],
    ) -> Result<(), Self::Error> {
        self.with(|m| {
            let h = genesis.hash();
            m.blocks.insert(h, genesis.clone());
            m.index.insert(h, entry.clone());
            m.main.insert(0, h);
            m.tasks.extend(delta.tasks.iter().cloned());
            m.specs.extend(delta.specs.iter().cloned());
            m.costs.extend(costs.iter().copied());
            m.genesis = Some(h);
            m.tip = Some(h);
        })
    }

    fn load_index(&self) -> Result<HashMap<Hash256, IndexEntry>, Self::Error> {
        self.with(|m| m.index.clone())
    }

    fn load_state(&self) -> Result<(Utxos, TaskStates, TaskSpecs), Self::Error> {
        self.with(|m| (m.utxos.clone(), m.tasks.clone(), m.specs.clone()))
    }

    fn load_costs(&self) -> Result<HashMap<Hash256, u64>, Self::Error> {
        self.with(|m| m.costs.clone())
    }

    fn tip(&self) -> Result<Option<Hash256>, Self::Error> {
        self.with(|m| m.tip)
    }

    fn main_hash(&self, height: u64) -> Result<Option<Hash256>, Self::Error> {
        self.with(|m| m.main.get(&height).copied())
    }

    fn put_block(&self, block: &Block, entry: &IndexEntry, costs: &[(Hash256, u64)]) -> Result<(), Self::Error> {
        self.with(|m| {
            let h = block.hash();
            m.blocks.insert(h, block.clone());
            m.index.insert(h, entry.clone());
            m.costs.extend(costs.iter().copied());
        })
    }

    fn put_index_entries(&self, entries: &[(Hash256, IndexEntry)]) -> Result<(), Self::Error> {
        self.with(|m| m.index.extend(entries.iter().cloned()))
    }

    fn block(&self, h: &Hash256) -> Result<Option<Block>, Self::Error> {
        self.with(|m| m.blocks.get(h).cloned())
    }

    fn undo(&self, h: &Hash256) -> Result<Option<Undo>, Self::Error> {
        self.with(|m| m.undo.get(h).cloned())
    }

    fn connect(
        &self,
        h: &Hash256,
        height: u64,
        entry: &IndexEntry,
        undo: &Undo,
        delta: &Delta,
        _txids: &[Hash256],
    ) -> Result<(), Self::Error> {
        self.with(|m| {
            for o in &delta.spent {
                m.utxos.remove(o);
            }
            m.utxos.extend(delta.created.iter().copied());
            m.tasks.extend(delta.tasks.iter().cloned());
            m.specs.extend(delta.specs.iter().cloned());
            m.undo.insert(*h, undo.clone());
            m.index.insert(*h, entry.clone());
            m.main.insert(height, *h);
            m.tip = Some(*h);
        })
    }

    fn disconnect(&self, height: u64, parent: &Hash256, undo: &Undo) -> Result<(), Self::Error> {
        self.with(|m| {
            for o in &undo.created {
                m.utxos.remove(o);
            }
            m.utxos.extend(undo.spent.iter().copied());
            for (id, before) in &undo.tasks {
                match before {
                    Some(t) => {
                        m.tasks.insert(*id, t.clone());
                    }
                    None => {
                        m.tasks.remove(id);
                        m.specs.remove(id);
                    }
                }
            }
            m.main.remove(&height);
            m.tip = Some(*parent);
        })
    }
}

/// A chain on a [`MemStore`].
pub type MemChain = Chain<MemStore>;

impl MemChain {
    /// A fresh in-memory chain of `params`.
    pub fn in_memory(params: ChainParams) -> Result<MemChain, ProcessError<std::convert::Infallible>> {
        Chain::load(MemStore::default(), params)
    }
}
