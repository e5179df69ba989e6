//! Chain state: the UTXO set and the task registry, `connect(block) -> Undo` and
//! `disconnect(Undo)`.
//!
//! Owns the contextual rules of transactions and of a block's useful work (everything that
//! needs the state). It must not read headers' context (bits, time: `validate`) or do I/O:
//! `store` persists the [`Delta`] each connect returns.
//!
//! # Consensus
//! Connecting a block, in order: (1) the work claim against the parent's state — the task
//! exists and is open, the claimed cost is the task's, the input has the task's dimension,
//! lies in the task's iterate box and scores no worse than the task's best, and replaying
//! one step gives the claimed output (its hash covers the step's whole transcript); (2)
//! the block's own output becomes the task's best on any improvement, and if it meets the
//! target the task is solved and the coinbase may claim the bounty; (3) every other
//! transaction in order; (4) the coinbase pays at most subsidy + fees + bounty earned.

use crate::chain::address::Address;
use crate::chain::amount::{Amount, AmountError, subsidy};
use crate::chain::block::Block;
use crate::chain::params::ChainParams;
use crate::chain::tx::{OutPoint, Transaction, TxOut};
use crate::compute::problem::{Params, Problem};
use crate::hash::Hash256;
use crate::pouw::task::{TaskError, TaskSpec};
use crate::pouw::verify::{self, VerifyError};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// An unspent output and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UtxoEntry {
    /// The output.
    pub output: TxOut,
    /// Height of the block that created it.
    pub height: u64,
    /// Coinbase outputs and bounty payouts mature before they can be spent.
    pub maturing: bool,
}

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskStatus {
    /// Accepting work (until its expiry height).
    Open,
    /// Met its target; the bounty was paid.
    Solved {
        /// Height of the solving block.
        height: u64,
        /// Who was paid.
        by: Address,
    },
    /// Expired unsolved and its bounty returned to the creator.
    Reclaimed {
        /// Height of the reclaiming block.
        height: u64,
    },
}

/// A task's consensus state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    /// `H(encode(spec))`.
    pub spec_hash: Hash256,
    /// Who may reclaim it (none for the public task).
    pub creator: Option<Address>,
    /// Escrowed bounty (zero once paid or reclaimed).
    pub bounty: Amount,
    /// Solved when the score is `<= target_score`.
    pub target_score: f64,
    /// Last height at which it accepts work.
    pub expires_at_height: u64,
    /// Height of the submitting block.
    pub created_height: u64,
    /// The best parameters so far.
    pub best_params: Vec<f64>,
    /// Their score.
    pub best_score: f64,
    /// Height at which the best was set.
    pub best_height: u64,
    /// Life-cycle status.
    pub status: TaskStatus,
}

impl TaskState {
    /// True when the task accepts work and model updates in a block at `height`.
    pub fn is_open_at(&self, height: u64) -> bool {
        self.status == TaskStatus::Open && height <= self.expires_at_height
    }
}

/// What connecting a block changed, to undo it exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Undo {
    /// Outputs spent, with their entries.
    pub spent: Vec<(OutPoint, UtxoEntry)>,
    /// Outputs created.
    pub created: Vec<OutPoint>,
    /// Tasks touched, with their state before the block (`None`: created by it).
    pub tasks: Vec<(Hash256, Option<TaskState>)>,
}

/// What connecting a block changed, for the store to write (the forward view of [`Undo`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Delta {
    /// Outputs removed.
    pub spent: Vec<OutPoint>,
    /// Outputs added.
    pub created: Vec<(OutPoint, UtxoEntry)>,
    /// Tasks with their new state.
    pub tasks: Vec<(Hash256, TaskState)>,
    /// Specs of tasks submitted by the block.
    pub specs: Vec<(Hash256, TaskSpec)>,
}

/// Why a block or transaction is invalid against the state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateError {
    /// The work claim names a task that does not exist.
    #[error("task {0} is unknown")]
    UnknownTask(Hash256),
    /// The task is solved.
    #[error("task {0} is already solved")]
    TaskSolved(Hash256),
    /// The task expired (or was reclaimed).
    #[error("task {task} expired at height {expired_at}")]
    TaskExpired {
        /// The task.
        task: Hash256,
        /// Its expiry height.
        expired_at: u64,
    },
    /// Header cost differs from the task's step cost.
    #[error("work claim cost {claimed} mWU, the task's step costs {actual} mWU")]
    WrongCost {
        /// Claimed.
        claimed: u64,
        /// Actual.
        actual: u64,
    },
    /// Parameter vector of the wrong length.
    #[error("parameters have length {got}, the task has dimension {expected}")]
    WrongParamsLen {
        /// Length given.
        got: usize,
        /// The task's dimension.
        expected: usize,
    },
    /// The useful work does not verify.
    #[error("useful work: {0}")]
    Work(#[from] VerifyError),
    /// An input spends an output that does not exist (never created, or already spent
    /// in an earlier block).
    #[error("transaction {tx}: input {txid}:{vout} is unknown or already spent")]
    MissingInput {
        /// Spending txid.
        tx: Hash256,
        /// Spent txid.
        txid: Hash256,
        /// Spent index.
        vout: u32,
    },
    /// An output spent twice inside one block.
    #[error("transaction {tx}: input {txid}:{vout} is spent twice in this block")]
    DoubleSpendInBlock {
        /// Spending txid.
        tx: Hash256,
        /// Spent txid.
        txid: Hash256,
        /// Spent index.
        vout: u32,
    },
    /// The input's key is not the key the output pays.
    #[error("transaction {tx}: input {index} is signed by a key that does not own the output")]
    WrongKey {
        /// Spending txid.
        tx: Hash256,
        /// Input index.
        index: usize,
    },
    /// A coinbase or bounty output spent before maturity.
    #[error(
        "transaction {tx}: input {index} spends an output of height {created} before maturity ({maturity} blocks) at height {height}"
    )]
    ImmatureSpend {
        /// Spending txid.
        tx: Hash256,
        /// Input index.
        index: usize,
        /// Creation height.
        created: u64,
        /// Spending height.
        height: u64,
        /// Maturity.
        maturity: u64,
    },
    /// Outputs (and bounty) exceed inputs.
    #[error("transaction {tx} spends {outputs} but its inputs hold {inputs}")]
    Overspend {
        /// Txid.
        tx: Hash256,
        /// Inputs.
        inputs: Amount,
        /// Outputs plus bounty.
        outputs: Amount,
    },
    /// Value arithmetic overflowed.
    #[error("{0}")]
    Amount(#[from] AmountError),
    /// A submitted task is not admissible.
    #[error("task not admissible: {0}")]
    Task(#[from] TaskError),
    /// A submitted task expires at or before its own block.
    #[error("task expires at height {expires}, not after its block at height {height}")]
    ExpiryInPast {
        /// Expiry.
        expires: u64,
        /// Block height.
        height: u64,
    },
    /// A reclaim before the task expired.
    #[error("task {task} cannot be reclaimed before it expires at height {expires}")]
    NotExpired {
        /// The task.
        task: Hash256,
        /// Its expiry.
        expires: u64,
    },
    /// A reclaim by someone other than the creator.
    #[error("task {0} can only be reclaimed by its creator")]
    NotCreator(Hash256),
    /// A reclaim of a task that is not open (solved or reclaimed already).
    #[error("task {0} has no bounty left to reclaim")]
    NothingToReclaim(Hash256),
    /// The coinbase pays more than it may.
    #[error("coinbase pays {paid}, at most {allowed} is allowed (subsidy + fees + bounty)")]
    CoinbaseTooLarge {
        /// Paid.
        paid: Amount,
        /// Allowed.
        allowed: Amount,
    },
    /// The coinbase height field is not the block's height.
    #[error("coinbase claims height {claimed}, the block is at height {height}")]
    CoinbaseHeight {
        /// Claimed.
        claimed: u64,
        /// Actual.
        height: u64,
    },
    /// The block does not start with a coinbase (`validate::check_block` rejects this
    /// first; repeated here so `connect` is safe on its own).
    #[error("block does not start with a coinbase")]
    NoCoinbase,
    /// A coinbase offered outside a block (to the mempool).
    #[error("a coinbase is only valid as the first transaction of a block")]
    LooseCoinbase,
    /// The public task could not be built (a broken ChainParams).
    #[error("genesis task: {0}")]
    Genesis(TaskError),
}

impl StateError {
    /// Whether the peer that sent the block is to blame. Every state error is: the state
    /// a block is checked against is the one its own parent defines.
    pub fn fault(&self) -> bool {
        !matches!(self, StateError::Genesis(_))
    }
}

/// The UTXO set, by outpoint.
pub type Utxos = HashMap<OutPoint, UtxoEntry>;
/// The task registry, by task id.
pub type TaskStates = HashMap<Hash256, TaskState>;
/// The specs of registered tasks, by task id.
pub type TaskSpecs = HashMap<Hash256, TaskSpec>;

/// The UTXO set and task registry at one tip, plus the built problems of open tasks.
#[derive(Clone, Default)]
pub struct State {
    utxos: HashMap<OutPoint, UtxoEntry>,
    tasks: HashMap<Hash256, TaskState>,
    specs: HashMap<Hash256, TaskSpec>,
    /// Built problems (derived data, not consensus state): building one generates or
    /// copies its data, so it is done once per task.
    problems: HashMap<Hash256, Arc<dyn Problem>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("utxos", &self.utxos.len()).field("tasks", &self.tasks.len()).finish()
    }
}

/// A task's problem, built from its spec.
fn build_problem(spec: &TaskSpec) -> Result<Arc<dyn Problem>, TaskError> {
    Ok(Arc::new(spec.build_unchecked()?))
}

impl State {
    /// The state right after genesis: the public task registered, no outputs.
    pub fn genesis(params: &ChainParams) -> Result<State, StateError> {
        let mut s = State::default();
        let problem = build_problem(&params.public_task).map_err(StateError::Genesis)?;
        let init = problem.init();
        let score = verify::score(problem.as_ref(), &init)?;
        let id = params.public_task_id;
        s.tasks.insert(
            id,
            TaskState {
                spec_hash: crate::hash::sha256d(&crate::chain::encode::encode(&params.public_task)),
                creator: None,
                bounty: Amount::ZERO,
                target_score: params.public_task.target_score,
                expires_at_height: u64::MAX,
                created_height: 0,
                best_params: init.0,
                best_score: score,
                best_height: 0,
                status: TaskStatus::Open,
            },
        );
        s.specs.insert(id, params.public_task.clone());
        s.problems.insert(id, problem);
        Ok(s)
    }

    /// Rebuilds a state from stored parts (the store's load path).
    pub fn from_parts(
        utxos: HashMap<OutPoint, UtxoEntry>,
        tasks: HashMap<Hash256, TaskState>,
        specs: HashMap<Hash256, TaskSpec>,
    ) -> State {
        State { utxos, tasks, specs, problems: HashMap::new() }
    }

    /// An unspent output.
    pub fn utxo(&self, o: &OutPoint) -> Option<&UtxoEntry> {
        self.utxos.get(o)
    }

    /// Every unspent output.
    pub fn utxos(&self) -> &HashMap<OutPoint, UtxoEntry> {
        &self.utxos
    }

    /// A task's state.
    pub fn task(&self, id: &Hash256) -> Option<&TaskState> {
        self.tasks.get(id)
    }

    /// Every task.
    pub fn tasks(&self) -> &HashMap<Hash256, TaskState> {
        &self.tasks
    }

    /// A task's spec.
    pub fn spec(&self, id: &Hash256) -> Option<&TaskSpec> {
        self.specs.get(id)
    }

    /// Every stored spec.
    pub fn specs(&self) -> &HashMap<Hash256, TaskSpec> {
        &self.specs
    }

    /// The built problem of task `id` (built on first use).
    pub fn problem(&mut self, id: &Hash256) -> Result<Arc<dyn Problem>, StateError> {
        if let Some(p) = self.problems.get(id) {
            return Ok(p.clone());
        }
        let spec = self.specs.get(id).ok_or(StateError::UnknownTask(*id))?;
        let p = build_problem(spec)?;
        self.problems.insert(*id, p.clone());
        Ok(p)
    }

    /// The consensus content (UTXOs, tasks, specs), for comparing two states.
    pub fn same_content(&self, other: &State) -> bool {
        self.utxos == other.utxos && self.tasks == other.tasks && self.specs == other.specs
    }

    /// Connects `block` at `height` (its parent's state is `self`). On error the state is
    /// unchanged. Returns the undo record and the forward delta.
    pub fn connect(&mut self, block: &Block, height: u64, params: &ChainParams) -> Result<(Undo, Delta), StateError> {
        let mut undo = Undo { spent: Vec::new(), created: Vec::new(), tasks: Vec::new() };
        let mut specs = Vec::new();
        match self.connect_inner(block, height, params, &mut undo, &mut specs) {
            Ok(()) => {
                let delta = self.delta_of(&undo, specs);
                Ok((undo, delta))
            }
            Err(e) => {
                self.disconnect(&undo);
                Err(e)
            }
        }
    }

    fn delta_of(&self, undo: &Undo, specs: Vec<(Hash256, TaskSpec)>) -> Delta {
        Delta {
            spent: undo.spent.iter().map(|(o, _)| *o).collect(),
            created: undo.created.iter().filter_map(|o| self.utxos.get(o).map(|e| (*o, *e))).collect(),
            tasks: undo.tasks.iter().filter_map(|(id, _)| self.tasks.get(id).map(|t| (*id, t.clone()))).collect(),
            specs,
        }
    }

    /// Records a task's state before its first change in this block.
    fn touch_task(&self, undo: &mut Undo, id: Hash256) {
        if !undo.tasks.iter().any(|(t, _)| *t == id) {
            undo.tasks.push((id, self.tasks.get(&id).cloned()));
        }
    }

    fn add_output(&mut self, undo: &mut Undo, o: OutPoint, entry: UtxoEntry) {
        self.utxos.insert(o, entry);
        undo.created.push(o);
    }

    fn open_task(&self, id: &Hash256, height: u64) -> Result<&TaskState, StateError> {
        let t = self.tasks.get(id).ok_or(StateError::UnknownTask(*id))?;
        match t.status {
            TaskStatus::Solved { .. } => Err(StateError::TaskSolved(*id)),
            TaskStatus::Reclaimed { .. } => Err(StateError::TaskExpired { task: *id, expired_at: t.expires_at_height }),
            TaskStatus::Open if height > t.expires_at_height => {
                Err(StateError::TaskExpired { task: *id, expired_at: t.expires_at_height })
            }
            TaskStatus::Open => Ok(t),
        }
    }

    fn connect_inner(
        &mut self,
        block: &Block,
        height: u64,
        params: &ChainParams,
        undo: &mut Undo,
        specs: &mut Vec<(Hash256, TaskSpec)>,
    ) -> Result<(), StateError> {
        // (1) The work claim, cheapest checks first, the replay last.
        let work = block.header.work;
        let task = self.open_task(&work.task_id, height)?;
        let best = task.best_score;
        let problem = self.problem(&work.task_id)?;
        if work.cost != problem.cost() {
            return Err(StateError::WrongCost { claimed: work.cost, actual: problem.cost() });
        }
        let input = block.input_params();
        if input.len() != problem.dim() {
            return Err(StateError::WrongParamsLen { got: input.len(), expected: problem.dim() });
        }
        verify::check_input(problem.as_ref(), &input, best)?;
        let output = verify::replay(problem.as_ref(), &input, &block.header.ticket_seed(), &work.output_hash)?;

        // (2) The block's own output is a model update (any improvement counts). Its
        // objective comes from the replay itself, so it needs no certificate of its own.
        let mut bounty_earned = Amount::ZERO;
        {
            let score = output.objective;
            let t = &self.tasks[&work.task_id];
            if score < t.best_score {
                let solved = score <= t.target_score && t.bounty > Amount::ZERO;
                let coinbase_payee = match block.txs.first() {
                    Some(Transaction::Coinbase { outputs, .. }) => outputs.first().map(|o| o.address),
                    _ => None,
                };
                self.touch_task(undo, work.task_id);
                let t = self.tasks.get_mut(&work.task_id).expect("task checked open above");
                t.best_params = output.params.0;
                t.best_score = score;
                t.best_height = height;
                if solved {
                    bounty_earned = t.bounty;
                    t.bounty = Amount::ZERO;
                    t.status = TaskStatus::Solved { height, by: coinbase_payee.unwrap_or(Address([0; 20])) };
                }
            }
        }

        // (3) Transactions in order.
        let mut fees = Amount::ZERO;
        let mut spent_here: HashSet<OutPoint> = HashSet::new();
        for tx in block.txs.iter().skip(1) {
            let fee = self.apply_tx(tx, height, params, undo, specs, &mut spent_here)?;
            fees = fees.checked_add(fee)?;
        }

        // (4) The coinbase.
        let Some(Transaction::Coinbase { height: cb_height, outputs }) = block.txs.first() else {
            return Err(StateError::NoCoinbase);
        };
        if *cb_height != height {
            return Err(StateError::CoinbaseHeight { claimed: *cb_height, height });
        }
        let allowed = subsidy(height, params.initial_subsidy, params.halving_interval)
            .checked_add(fees)?
            .checked_add(bounty_earned)?;
        let paid = Amount::checked_sum(outputs.iter().map(|o| o.value))?;
        if paid > allowed {
            return Err(StateError::CoinbaseTooLarge { paid, allowed });
        }
        let txid = block.txs[0].txid();
        for (vout, out) in outputs.iter().enumerate() {
            self.add_output(
                undo,
                OutPoint { txid, vout: vout as u32 },
                UtxoEntry { output: *out, height, maturing: true },
            );
        }
        Ok(())
    }

    /// Spends the inputs of `tx` (checking ownership and maturity) and returns their total.
    fn spend_inputs(
        &mut self,
        tx: &Transaction,
        txid: Hash256,
        height: u64,
        maturity: u64,
        undo: &mut Undo,
        spent_here: &mut HashSet<OutPoint>,
    ) -> Result<Amount, StateError> {
        let mut total = Amount::ZERO;
        for (index, input) in tx.inputs().iter().enumerate() {
            let o = input.prevout;
            let Some(entry) = self.utxos.get(&o).copied() else {
                return Err(if spent_here.contains(&o) {
                    StateError::DoubleSpendInBlock { tx: txid, txid: o.txid, vout: o.vout }
                } else {
                    StateError::MissingInput { tx: txid, txid: o.txid, vout: o.vout }
                });
            };
            if Address::from_pubkey(&input.pubkey) != entry.output.address {
                return Err(StateError::WrongKey { tx: txid, index });
            }
            if entry.maturing && height < entry.height + maturity {
                return Err(StateError::ImmatureSpend { tx: txid, index, created: entry.height, height, maturity });
            }
            total = total.checked_add(entry.output.value)?;
            self.utxos.remove(&o);
            spent_here.insert(o);
            undo.spent.push((o, entry));
        }
        Ok(total)
    }

    /// Applies one non-coinbase transaction; returns its fee.
    fn apply_tx(
        &mut self,
        tx: &Transaction,
        height: u64,
        params: &ChainParams,
        undo: &mut Undo,
        specs: &mut Vec<(Hash256, TaskSpec)>,
        spent_here: &mut HashSet<OutPoint>,
    ) -> Result<Amount, StateError> {
        let txid = tx.txid();
        // Task-level checks before any input is spent (cheaper, and nothing to roll back).
        let mut bounty_out = Amount::ZERO;
        match tx {
            Transaction::SubmitTask { spec, bounty, expires_at_height, .. } => {
                if *expires_at_height <= height {
                    return Err(StateError::ExpiryInPast { expires: *expires_at_height, height });
                }
                spec.check_limits(&params.task_limits)?;
                bounty_out = *bounty;
            }
            Transaction::ModelUpdate { task_id, params: p, .. } => {
                self.open_task(task_id, height)?;
                let problem = self.problem(task_id)?;
                if p.len() != problem.dim() {
                    return Err(StateError::WrongParamsLen { got: p.len(), expected: problem.dim() });
                }
            }
            Transaction::ReclaimTask { task_id, pubkey, .. } => {
                let t = self.tasks.get(task_id).ok_or(StateError::UnknownTask(*task_id))?;
                if t.status != TaskStatus::Open || t.bounty == Amount::ZERO {
                    return Err(StateError::NothingToReclaim(*task_id));
                }
                if height <= t.expires_at_height {
                    return Err(StateError::NotExpired { task: *task_id, expires: t.expires_at_height });
                }
                if t.creator != Some(Address::from_pubkey(pubkey)) {
                    return Err(StateError::NotCreator(*task_id));
                }
            }
            Transaction::Transfer { .. } | Transaction::Coinbase { .. } => {}
        }
        let inputs = self.spend_inputs(tx, txid, height, params.coinbase_maturity, undo, spent_here)?;
        let outputs = Amount::checked_sum(tx.outputs().iter().map(|o| o.value))?;
        let spent_out = outputs.checked_add(bounty_out)?;
        if !matches!(tx, Transaction::ReclaimTask { .. }) && spent_out > inputs {
            return Err(StateError::Overspend { tx: txid, inputs, outputs: spent_out });
        }
        for (vout, out) in tx.outputs().iter().enumerate() {
            self.add_output(
                undo,
                OutPoint { txid, vout: vout as u32 },
                UtxoEntry { output: *out, height, maturing: false },
            );
        }
        match tx {
            Transaction::SubmitTask { inputs: ins, spec, bounty, expires_at_height, .. } => {
                let problem = Arc::new(spec.admit(&params.task_limits)?);
                let init = problem.init();
                let score = verify::score(problem.as_ref(), &init)?;
                self.touch_task(undo, txid);
                self.tasks.insert(
                    txid,
                    TaskState {
                        spec_hash: crate::hash::sha256d(&crate::chain::encode::encode(spec)),
                        creator: ins.first().map(|i| Address::from_pubkey(&i.pubkey)),
                        bounty: *bounty,
                        target_score: spec.target_score,
                        expires_at_height: *expires_at_height,
                        created_height: height,
                        best_params: init.0,
                        best_score: score,
                        best_height: height,
                        status: TaskStatus::Open,
                    },
                );
                self.specs.insert(txid, spec.clone());
                self.problems.insert(txid, problem);
                specs.push((txid, spec.clone()));
            }
            Transaction::ModelUpdate { task_id, params: p, claimed, reward_to, outputs, .. } => {
                let problem = self.problem(task_id)?;
                let best = self.tasks[task_id].best_score;
                let cert = verify::check_model_update(
                    problem.as_ref(),
                    &Params(p.clone()),
                    claimed,
                    best,
                    params.min_relative_improvement,
                )?;
                self.touch_task(undo, *task_id);
                let t = self.tasks.get_mut(task_id).expect("checked open above");
                t.best_params = p.clone();
                t.best_score = cert.score;
                t.best_height = height;
                if cert.score <= t.target_score && t.bounty > Amount::ZERO {
                    let payout = t.bounty;
                    t.bounty = Amount::ZERO;
                    t.status = TaskStatus::Solved { height, by: *reward_to };
                    let o = OutPoint { txid, vout: outputs.len() as u32 };
                    let out = TxOut { value: payout, address: *reward_to };
                    self.add_output(undo, o, UtxoEntry { output: out, height, maturing: true });
                }
            }
            Transaction::ReclaimTask { task_id, .. } => {
                self.touch_task(undo, *task_id);
                let t = self.tasks.get_mut(task_id).expect("checked above");
                let payout = t.bounty;
                let creator = t.creator.expect("checked above");
                t.bounty = Amount::ZERO;
                t.status = TaskStatus::Reclaimed { height };
                let o = OutPoint { txid, vout: 0 };
                self.add_output(
                    undo,
                    o,
                    UtxoEntry { output: TxOut { value: payout, address: creator }, height, maturing: false },
                );
            }
            Transaction::Transfer { .. } | Transaction::Coinbase { .. } => {}
        }
        Ok(inputs.checked_sub(spent_out).unwrap_or(Amount::ZERO))
    }

    /// The fee `tx` pays at this state from UTXO lookups alone (inputs − outputs − bounty;
    /// zero for a reclaim), or `None` when an input is missing or the values do not add
    /// up — [`State::check_tx`] then reports the precise error. Cheap: no task checks.
    pub fn fee_of(&self, tx: &Transaction) -> Option<Amount> {
        if matches!(tx, Transaction::ReclaimTask { .. }) {
            return Some(Amount::ZERO);
        }
        let mut inputs = Amount::ZERO;
        for i in tx.inputs() {
            inputs = inputs.checked_add(self.utxos.get(&i.prevout)?.output.value).ok()?;
        }
        let mut out = Amount::checked_sum(tx.outputs().iter().map(|o| o.value)).ok()?;
        if let Transaction::SubmitTask { bounty, .. } = tx {
            out = out.checked_add(*bounty).ok()?;
        }
        inputs.checked_sub(out).ok()
    }

    /// Checks `tx` (not a coinbase) as if it were the next transaction of a block at
    /// `height` on this state, and returns its fee; the state is left unchanged. Context-free
    /// checks and signatures are the caller's (`Transaction::check`,
    /// `Transaction::verify_signatures`). Used by the mempool and the wallet.
    pub fn check_tx(&mut self, tx: &Transaction, height: u64, params: &ChainParams) -> Result<Amount, StateError> {
        if tx.is_coinbase() {
            return Err(StateError::LooseCoinbase);
        }
        let mut undo = Undo { spent: Vec::new(), created: Vec::new(), tasks: Vec::new() };
        let mut specs = Vec::new();
        let mut spent_here = HashSet::new();
        let result = self.apply_tx(tx, height, params, &mut undo, &mut specs, &mut spent_here);
        self.disconnect(&undo);
        result
    }

    /// Reverts a connect exactly (outputs created removed, spent restored, tasks restored).
    pub fn disconnect(&mut self, undo: &Undo) {
        for o in undo.created.iter().rev() {
            self.utxos.remove(o);
        }
        for (o, e) in undo.spent.iter().rev() {
            self.utxos.insert(*o, *e);
        }
        for (id, before) in undo.tasks.iter().rev() {
            match before {
                Some(t) => {
                    self.tasks.insert(*id, t.clone());
                }
                None => {
                    self.tasks.remove(id);
                    self.specs.remove(id);
                    self.problems.remove(id);
                }
            }
        }
    }
}
