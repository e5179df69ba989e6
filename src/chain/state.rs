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
use crate::chain::fault::{Classify, Fault};
use crate::chain::params::ChainParams;
use crate::chain::problems::ProblemCache;
use crate::chain::tx::{OutPoint, Transaction, TxOut};
use crate::compute::problem::{Params, Problem, StepOutput};
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
    /// Height at which the best last improved on [`TaskState::improved_score`] by the
    /// network's relative margin (the stall rule's clock, DESIGN.md §3.4).
    pub improved_height: u64,
    /// The best score as of `improved_height`.
    pub improved_score: f64,
    /// Life-cycle status.
    pub status: TaskStatus,
}

impl TaskState {
    /// A new open task whose best is `params` scoring `score`, set at `height`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        spec_hash: Hash256,
        creator: Option<Address>,
        bounty: Amount,
        target_score: f64,
        expires_at_height: u64,
        height: u64,
        params: Vec<f64>,
        score: f64,
    ) -> TaskState {
        TaskState {
            spec_hash,
            creator,
            bounty,
            target_score,
            expires_at_height,
            created_height: height,
            best_params: params,
            best_score: score,
            best_height: height,
            improved_height: height,
            improved_score: score,
            status: TaskStatus::Open,
        }
    }

    /// True when the task accepts work and model updates in a block at `height`.
    pub fn is_open_at(&self, height: u64) -> bool {
        self.status == TaskStatus::Open && height <= self.expires_at_height
    }

    /// Stalled at `height`: open, and its best has not improved by the relative margin
    /// for more than `stall_blocks` blocks (DESIGN.md §3.4). Miners skip stalled tasks;
    /// blocks and model updates for them stay valid.
    pub fn is_stalled_at(&self, height: u64, stall_blocks: u64) -> bool {
        self.is_open_at(height) && height.saturating_sub(self.improved_height) > stall_blocks
    }

    /// Records a new best (lower than the current one) at `height`, moving the stall clock
    /// when it improves on `improved_score` by `margin` (relative).
    fn record_best(&mut self, params: Vec<f64>, score: f64, height: u64, margin: f64) {
        self.best_params = params;
        self.best_score = score;
        self.best_height = height;
        if verify::improves(score, self.improved_score, margin) {
            self.improved_height = height;
            self.improved_score = score;
        }
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

/// As a transaction offered for the next block (the mempool's view). In a block every
/// state error is the block's own fault (`BlockError` says so): the state a block is
/// checked against is the one its parent defines. No `_` arm: a new variant has to choose.
impl Classify for StateError {
    fn fault(&self) -> Fault {
        match self {
            // Depend on which blocks we have: another honest node may see it differently.
            StateError::UnknownTask(_)
            | StateError::TaskSolved(_)
            | StateError::TaskExpired { .. }
            | StateError::MissingInput { .. }
            | StateError::DoubleSpendInBlock { .. }
            | StateError::ImmatureSpend { .. }
            | StateError::ExpiryInPast { .. }
            | StateError::NotExpired { .. }
            | StateError::NothingToReclaim(_) => Fault::TipDependent,
            StateError::Genesis(_) => Fault::Local,
            StateError::Work(v) => match v {
                // The task's best moves with every block.
                VerifyError::NotImproving { .. } | VerifyError::InputWorse { .. } => Fault::TipDependent,
                VerifyError::Problem(_)
                | VerifyError::OutputMismatch { .. }
                | VerifyError::CertificateMismatch { .. } => Fault::Peer,
            },
            // Wrong whatever the tip (given the inputs exist, which the checks above cover).
            StateError::WrongCost { .. }
            | StateError::WrongParamsLen { .. }
            | StateError::WrongKey { .. }
            | StateError::Overspend { .. }
            | StateError::Amount(_)
            | StateError::Task(_)
            | StateError::NotCreator(_)
            | StateError::CoinbaseTooLarge { .. }
            | StateError::CoinbaseHeight { .. }
            | StateError::NoCoinbase
            | StateError::LooseCoinbase => Fault::Peer,
        }
    }
}

/// The UTXO set, by outpoint.
pub type Utxos = HashMap<OutPoint, UtxoEntry>;
/// The task registry, by task id.
pub type TaskStates = HashMap<Hash256, TaskState>;
/// The specs of registered tasks, by task id.
pub type TaskSpecs = HashMap<Hash256, TaskSpec>;

/// The UTXO set and task registry at one tip. Built problems are derived data and live in
/// a [`ProblemCache`] beside it, so every check takes `&State`.
#[derive(Clone, Default, PartialEq)]
pub struct State {
    utxos: HashMap<OutPoint, UtxoEntry>,
    tasks: HashMap<Hash256, TaskState>,
    specs: HashMap<Hash256, TaskSpec>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("utxos", &self.utxos.len()).field("tasks", &self.tasks.len()).finish()
    }
}

/// The result of a block's step replay, checked against its claim: what
/// [`State::connect`] needs to apply the block's work without stepping again.
///
/// Made by [`WorkCheck::replay`] only, so holding one means the replay matched the header's
/// `output_hash`.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedWork {
    block: Hash256,
    output: StepOutput,
    /// The witness's score when the replay certified it (it was not the stored best).
    witness_score: Option<f64>,
}

impl VerifiedWork {
    /// The block whose work this is.
    pub fn block(&self) -> Hash256 {
        self.block
    }

    /// The replayed step's output.
    pub fn output(&self) -> &StepOutput {
        &self.output
    }
}

/// A block's work claim after the cheap checks against its parent's state
/// ([`State::check_work`]): everything its replay needs, and nothing borrowed, so the
/// replay can run on another thread while the state moves on.
#[derive(Clone)]
pub struct WorkCheck {
    block: Hash256,
    problem: Arc<dyn Problem>,
    input: Params,
    seed: [u8; 32],
    output_hash: Hash256,
    /// The task's best at the parent when the witness still needs its certificate (it is
    /// not the stored best).
    certify_against: Option<f64>,
}

impl std::fmt::Debug for WorkCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkCheck").field("block", &self.block).field("cost", &self.problem.cost()).finish()
    }
}

impl WorkCheck {
    /// The block.
    pub fn block(&self) -> Hash256 {
        self.block
    }

    /// The replay's price in mWU (the task's registered cost).
    pub fn cost(&self) -> u64 {
        self.problem.cost()
    }

    /// A block's replay planned without its parent's state (deeper in a reorganisation):
    /// the work claim's cheap checks and the witness certificate are left to
    /// [`State::connect`]. Any failure of the step itself is the block's on every state.
    pub fn without_state(block: &Block, problem: Arc<dyn Problem>) -> WorkCheck {
        WorkCheck {
            block: block.hash(),
            problem,
            input: block.input_params(),
            seed: block.header.ticket_seed(),
            output_hash: block.header.work.output_hash,
            certify_against: None,
        }
    }

    /// The expensive part, pure: the witness's certificate when it is not the stored best,
    /// then one step replay compared with the claimed output hash.
    ///
    /// # Consensus
    /// DESIGN.md §3.3 step 5: the loss certificate before the replay, the replay last.
    pub fn replay(&self) -> Result<VerifiedWork, StateError> {
        let witness_score = match self.certify_against {
            Some(best) => Some(verify::check_input(self.problem.as_ref(), &self.input, best)?),
            None => None,
        };
        let output = verify::replay(self.problem.as_ref(), &self.input, &self.seed, &self.output_hash)?;
        Ok(VerifiedWork { block: self.block, output, witness_score })
    }
}

/// A state with the problem cache beside it: what the mempool, the wallet and the miner
/// read (every method takes `&self`).
#[derive(Clone, Copy, Debug)]
pub struct StateView<'a> {
    /// The state.
    pub state: &'a State,
    /// Its tasks' built problems.
    pub problems: &'a ProblemCache,
}

impl std::ops::Deref for StateView<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.state
    }
}

impl StateView<'_> {
    /// The built problem of task `id` (built on first use).
    pub fn problem(&self, id: &Hash256) -> Result<Arc<dyn Problem>, StateError> {
        self.state.problem(id, self.problems)
    }

    /// [`State::check_tx`] with this view's problems.
    pub fn check_tx(&self, tx: &Transaction, height: u64, params: &ChainParams) -> Result<Amount, StateError> {
        self.state.check_tx(tx, height, params, self.problems)
    }
}

/// What checking one transaction found, for applying it without checking again.
struct CheckedTx {
    txid: Hash256,
    spent: Vec<(OutPoint, UtxoEntry)>,
    fee: Amount,
    effect: Effect,
}

/// A transaction's effect on the task registry, with what its check computed.
enum Effect {
    None,
    Submit { score: f64, init: Params },
    Update { score: f64 },
    Reclaim,
}

impl State {
    /// The state right after genesis: the public task registered, no outputs. Its built
    /// problem goes into `problems`.
    pub fn genesis(params: &ChainParams, problems: &ProblemCache) -> Result<State, StateError> {
        let mut s = State::default();
        let id = params.public_task_id;
        let problem = problems.get(&id, &params.public_task).map_err(StateError::Genesis)?;
        let init = problem.init();
        let score = verify::score(problem.as_ref(), &init)?;
        let spec_hash = crate::hash::sha256d(&crate::chain::encode::encode(&params.public_task));
        let target = params.public_task.target_score;
        s.tasks.insert(id, TaskState::new(spec_hash, None, Amount::ZERO, target, u64::MAX, 0, init.0, score));
        s.specs.insert(id, params.public_task.clone());
        Ok(s)
    }

    /// Rebuilds a state from stored parts (the store's load path).
    pub fn from_parts(
        utxos: HashMap<OutPoint, UtxoEntry>,
        tasks: HashMap<Hash256, TaskState>,
        specs: HashMap<Hash256, TaskSpec>,
    ) -> State {
        State { utxos, tasks, specs }
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

    /// The built problem of registered task `id`, from `problems` (built on first use).
    pub fn problem(&self, id: &Hash256, problems: &ProblemCache) -> Result<Arc<dyn Problem>, StateError> {
        let spec = self.specs.get(id).ok_or(StateError::UnknownTask(*id))?;
        Ok(problems.get(id, spec)?)
    }

    /// The consensus content (UTXOs, tasks, specs), for comparing two states.
    pub fn same_content(&self, other: &State) -> bool {
        self == other
    }

    /// The cheap checks of `block`'s work claim against this state (its parent's, the
    /// block at `height`), in order: the task exists and is open, the claimed cost is the
    /// task's, the witness has the task's dimension. Returns what the replay needs; the
    /// witness's certificate is part of the replay unless the witness is the task's
    /// stored best (whose score is known), which only needs to lie in the box.
    pub fn check_work(&self, block: &Block, height: u64, problems: &ProblemCache) -> Result<WorkCheck, StateError> {
        let work = block.header.work;
        let task = self.open_task(&work.task_id, height)?;
        let problem = self.problem(&work.task_id, problems)?;
        if work.cost != problem.cost() {
            return Err(StateError::WrongCost { claimed: work.cost, actual: problem.cost() });
        }
        let input = block.input_params();
        if input.len() != problem.dim() {
            return Err(StateError::WrongParamsLen { got: input.len(), expected: problem.dim() });
        }
        let stored_best = input.0.len() == task.best_params.len()
            && input.0.iter().zip(&task.best_params).all(|(a, b)| a.to_bits() == b.to_bits());
        let certify_against = if stored_best {
            problem.check_iterate(&input).map_err(VerifyError::from)?;
            None
        } else {
            Some(task.best_score)
        };
        Ok(WorkCheck {
            block: block.hash(),
            problem,
            input,
            seed: block.header.ticket_seed(),
            output_hash: work.output_hash,
            certify_against,
        })
    }

    /// Connects `block` at `height` (its parent's state is `self`) with its replayed work
    /// (`work`, from [`WorkCheck::replay`] on this block). On error the state is
    /// unchanged. Returns the undo record and the forward delta.
    pub fn connect(
        &mut self,
        block: &Block,
        height: u64,
        params: &ChainParams,
        problems: &ProblemCache,
        work: &VerifiedWork,
    ) -> Result<(Undo, Delta), StateError> {
        debug_assert_eq!(work.block, block.hash(), "verified work belongs to its block");
        let mut undo = Undo { spent: Vec::new(), created: Vec::new(), tasks: Vec::new() };
        let mut specs = Vec::new();
        match self.connect_inner(block, height, params, problems, work, &mut undo, &mut specs) {
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

    /// [`State::connect`] with the block's replay run here: its work claim checked, its
    /// step replayed, then connected.
    pub fn connect_replaying(
        &mut self,
        block: &Block,
        height: u64,
        params: &ChainParams,
        problems: &ProblemCache,
    ) -> Result<(Undo, Delta), StateError> {
        let work = self.check_work(block, height, problems)?.replay()?;
        self.connect(block, height, params, problems, &work)
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

    #[allow(clippy::too_many_arguments)]
    fn connect_inner(
        &mut self,
        block: &Block,
        height: u64,
        params: &ChainParams,
        problems: &ProblemCache,
        verified: &VerifiedWork,
        undo: &mut Undo,
        specs: &mut Vec<(Hash256, TaskSpec)>,
    ) -> Result<(), StateError> {
        // (1) The work claim: the cheap checks again (the replay may have been checked
        // against another state's view of this block only if it was this parent's: the
        // state at a block hash is unique), the witness certificate if the replay did
        // not include it, then the replayed output.
        let work = block.header.work;
        let check = self.check_work(block, height, problems)?;
        let witness_score = match (check.certify_against, verified.witness_score) {
            (None, _) => self.tasks[&work.task_id].best_score,
            (Some(_), Some(score)) => score,
            (Some(best), None) => verify::check_input(check.problem.as_ref(), &check.input, best)?,
        };
        let output = &verified.output;

        // (2) The block's work is a model update (any improvement counts): the task's best
        // becomes the lower of the witness's score and the output's (DESIGN.md §3.3 step
        // 6; a miner's own iterate, better than the chain's best, reaches the chain as a
        // block's witness). Both scores come from the replay or the witness certificate, so
        // neither needs a certificate of its own.
        let mut bounty_earned = Amount::ZERO;
        {
            let (score, params_new) = if output.objective < witness_score {
                (output.objective, &output.params.0)
            } else {
                (witness_score, &check.input.0)
            };
            let t = &self.tasks[&work.task_id];
            if score < t.best_score {
                let solved = score <= t.target_score && t.bounty > Amount::ZERO;
                let coinbase_payee = match block.txs.first() {
                    Some(Transaction::Coinbase { outputs, .. }) => outputs.first().map(|o| o.address),
                    _ => None,
                };
                self.touch_task(undo, work.task_id);
                let t = self.tasks.get_mut(&work.task_id).expect("task checked open above");
                t.record_best(params_new.clone(), score, height, params.min_relative_improvement);
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
            let checked = self.check_tx_at(tx, height, params, problems, &spent_here)?;
            fees = fees.checked_add(checked.fee)?;
            spent_here.extend(checked.spent.iter().map(|(o, _)| *o));
            self.apply_checked(tx, checked, height, params.min_relative_improvement, undo, specs);
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

    /// The inputs of `tx` (checking ownership and maturity), not yet spent.
    fn check_inputs(
        &self,
        tx: &Transaction,
        txid: Hash256,
        height: u64,
        maturity: u64,
        spent_here: &HashSet<OutPoint>,
    ) -> Result<Vec<(OutPoint, UtxoEntry)>, StateError> {
        let mut spent = Vec::with_capacity(tx.inputs().len());
        for (index, input) in tx.inputs().iter().enumerate() {
            let o = input.prevout;
            // A repeated input within one transaction is rejected context-free
            // (`Transaction::check`); it is a double spend here too, for safety.
            let entry = match self.utxos.get(&o) {
                Some(e) if !spent_here.contains(&o) && !spent.iter().any(|(p, _)| *p == o) => *e,
                _ => {
                    return Err(if spent_here.contains(&o) || spent.iter().any(|(p, _)| *p == o) {
                        StateError::DoubleSpendInBlock { tx: txid, txid: o.txid, vout: o.vout }
                    } else {
                        StateError::MissingInput { tx: txid, txid: o.txid, vout: o.vout }
                    });
                }
            };
            if Address::from_pubkey(&input.pubkey) != entry.output.address {
                return Err(StateError::WrongKey { tx: txid, index });
            }
            if entry.maturing && height < entry.height + maturity {
                return Err(StateError::ImmatureSpend { tx: txid, index, created: entry.height, height, maturity });
            }
            spent.push((o, entry));
        }
        Ok(spent)
    }

    /// Checks one non-coinbase transaction at `height` on this state, with the outputs in
    /// `spent_here` already spent by earlier transactions of the same block. Cheapest
    /// first: task-level checks, inputs, amounts, then the expensive ones (a submitted
    /// task's admission, a model update's certificate).
    fn check_tx_at(
        &self,
        tx: &Transaction,
        height: u64,
        params: &ChainParams,
        problems: &ProblemCache,
        spent_here: &HashSet<OutPoint>,
    ) -> Result<CheckedTx, StateError> {
        let txid = tx.txid();
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
                let dim = self.problem(task_id, problems)?.dim();
                if p.len() != dim {
                    return Err(StateError::WrongParamsLen { got: p.len(), expected: dim });
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
        let spent = self.check_inputs(tx, txid, height, params.coinbase_maturity, spent_here)?;
        let inputs = Amount::checked_sum(spent.iter().map(|(_, e)| e.output.value))?;
        let outputs = Amount::checked_sum(tx.outputs().iter().map(|o| o.value))?;
        let spent_out = outputs.checked_add(bounty_out)?;
        if !matches!(tx, Transaction::ReclaimTask { .. }) && spent_out > inputs {
            return Err(StateError::Overspend { tx: txid, inputs, outputs: spent_out });
        }
        let effect = match tx {
            Transaction::SubmitTask { spec, .. } => {
                // The task id is the txid, so a problem cached under it is this spec's,
                // built by an earlier admission (the mempool's, or another chain's).
                let problem = match problems.cached(&txid) {
                    Some(p) => p,
                    None => {
                        let p: Arc<dyn Problem> = Arc::new(spec.admit(&params.task_limits)?);
                        problems.insert(txid, p.clone(), spec.data_bytes());
                        p
                    }
                };
                let init = problem.init();
                let score = verify::score(problem.as_ref(), &init)?;
                Effect::Submit { score, init }
            }
            Transaction::ModelUpdate { task_id, params: p, claimed, .. } => {
                let problem = self.problem(task_id, problems)?;
                let best = self.tasks[task_id].best_score;
                let cert = verify::check_model_update(
                    problem.as_ref(),
                    &Params(p.clone()),
                    claimed,
                    best,
                    params.min_relative_improvement,
                )?;
                Effect::Update { score: cert.score }
            }
            Transaction::ReclaimTask { .. } => Effect::Reclaim,
            Transaction::Transfer { .. } | Transaction::Coinbase { .. } => Effect::None,
        };
        Ok(CheckedTx { txid, spent, fee: inputs.checked_sub(spent_out).unwrap_or(Amount::ZERO), effect })
    }

    /// Applies a transaction [`State::check_tx_at`] accepted at this state.
    fn apply_checked(
        &mut self,
        tx: &Transaction,
        checked: CheckedTx,
        height: u64,
        margin: f64,
        undo: &mut Undo,
        specs: &mut Vec<(Hash256, TaskSpec)>,
    ) {
        let txid = checked.txid;
        for (o, entry) in checked.spent {
            self.utxos.remove(&o);
            undo.spent.push((o, entry));
        }
        for (vout, out) in tx.outputs().iter().enumerate() {
            self.add_output(
                undo,
                OutPoint { txid, vout: vout as u32 },
                UtxoEntry { output: *out, height, maturing: false },
            );
        }
        match (tx, checked.effect) {
            (
                Transaction::SubmitTask { inputs: ins, spec, bounty, expires_at_height, .. },
                Effect::Submit { score, init },
            ) => {
                self.touch_task(undo, txid);
                let task = TaskState::new(
                    crate::hash::sha256d(&crate::chain::encode::encode(spec)),
                    ins.first().map(|i| Address::from_pubkey(&i.pubkey)),
                    *bounty,
                    spec.target_score,
                    *expires_at_height,
                    height,
                    init.0,
                    score,
                );
                self.tasks.insert(txid, task);
                self.specs.insert(txid, spec.clone());
                specs.push((txid, spec.clone()));
            }
            (Transaction::ModelUpdate { task_id, params: p, reward_to, outputs, .. }, Effect::Update { score }) => {
                self.touch_task(undo, *task_id);
                let t = self.tasks.get_mut(task_id).expect("checked open");
                t.record_best(p.clone(), score, height, margin);
                if score <= t.target_score && t.bounty > Amount::ZERO {
                    let payout = t.bounty;
                    t.bounty = Amount::ZERO;
                    t.status = TaskStatus::Solved { height, by: *reward_to };
                    let o = OutPoint { txid, vout: outputs.len() as u32 };
                    let out = TxOut { value: payout, address: *reward_to };
                    self.add_output(undo, o, UtxoEntry { output: out, height, maturing: true });
                }
            }
            (Transaction::ReclaimTask { task_id, .. }, Effect::Reclaim) => {
                self.touch_task(undo, *task_id);
                let t = self.tasks.get_mut(task_id).expect("checked");
                let payout = t.bounty;
                let creator = t.creator.expect("checked");
                t.bounty = Amount::ZERO;
                t.status = TaskStatus::Reclaimed { height };
                let o = OutPoint { txid, vout: 0 };
                self.add_output(
                    undo,
                    o,
                    UtxoEntry { output: TxOut { value: payout, address: creator }, height, maturing: false },
                );
            }
            _ => {}
        }
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
    /// `height` on this state, and returns its fee. Context-free checks and signatures are
    /// the caller's (`Transaction::check`, `Transaction::verify_signatures`). Used by the
    /// mempool and the wallet.
    pub fn check_tx(
        &self,
        tx: &Transaction,
        height: u64,
        params: &ChainParams,
        problems: &ProblemCache,
    ) -> Result<Amount, StateError> {
        if tx.is_coinbase() {
            return Err(StateError::LooseCoinbase);
        }
        Ok(self.check_tx_at(tx, height, params, problems, &HashSet::new())?.fee)
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
                }
            }
        }
    }
}
