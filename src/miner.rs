//! Mining: block templates and the ticket loop. One ticket is one solver step, so hash
//! power is solver throughput (DESIGN.md §3).
//!
//! This is the plain single-threaded loop; it decides nothing about validity (the template
//! follows `chain`'s rules and the node re-validates what it mines).

use crate::chain::address::Address;
use crate::chain::amount::{subsidy, Amount, AmountError};
use crate::chain::block::{Block, Header, WorkClaim, WorkWitness};
use crate::chain::params::ChainParams;
use crate::chain::state::{State, StateError};
use crate::chain::target::{target_from_bits, U256};
use crate::chain::tx::{Transaction, TxOut};
use crate::chain::validate::{effective_target, required_bits, ParentContext};
use crate::compute::problem::{Params, Problem};
use crate::hash::{merkle_root, Hash256};
use crate::store::ChainStore;
use std::sync::Arc;

/// Why no template could be built.
#[derive(Debug, thiserror::Error)]
pub enum MineError {
    /// The chosen task is not open.
    #[error("{0}")]
    State(#[from] StateError),
    /// A transaction's fee could not be computed.
    #[error("transaction {txid}: {reason}")]
    BadTx {
        /// The transaction.
        txid: Hash256,
        /// Why.
        reason: String,
    },
    /// Values overflow.
    #[error("{0}")]
    Amount(#[from] AmountError),
}

/// A block being mined: everything but the nonce and the step's output.
pub struct Template {
    /// The header (its `nonce` and `work.output_hash` are set by [`Template::mine`]).
    pub header: Header,
    /// The input iterate.
    pub input: Params,
    /// The transactions, coinbase first.
    pub txs: Vec<Transaction>,
    /// The task's problem.
    pub problem: Arc<dyn Problem>,
    /// `target * cost`.
    pub effective_target: U256,
    /// Height of the block.
    pub height: u64,
}

/// The fee a transaction pays at `state` (inputs − outputs − bounty; zero for a reclaim).
pub fn fee(state: &State, tx: &Transaction) -> Result<Amount, MineError> {
    if matches!(tx, Transaction::ReclaimTask { .. }) {
        return Ok(Amount::ZERO);
    }
    let txid = tx.txid();
    let mut inputs = Amount::ZERO;
    for i in tx.inputs() {
        let e = state.utxo(&i.prevout).ok_or_else(|| MineError::BadTx {
            txid,
            reason: format!("input {}:{} is unknown or spent", i.prevout.txid, i.prevout.vout),
        })?;
        inputs = inputs.checked_add(e.output.value)?;
    }
    let mut out = Amount::checked_sum(tx.outputs().iter().map(|o| o.value))?;
    if let Transaction::SubmitTask { bounty, .. } = tx {
        out = out.checked_add(*bounty)?;
    }
    inputs.checked_sub(out).map_err(|_| MineError::BadTx { txid, reason: "outputs exceed inputs".into() })
}

/// What a block template is built from.
pub struct TemplateRequest {
    /// Who the coinbase pays.
    pub payee: Address,
    /// Proposed header time (raised to the median time past + 1 if needed).
    pub time: u64,
    /// Transactions after the coinbase.
    pub txs: Vec<Transaction>,
    /// The task to step (the public task when `None`).
    pub task: Option<Hash256>,
    /// Bounty the coinbase claims, on the bet that this block's own step solves the task.
    pub bounty_claim: Amount,
}

/// Builds a template on the current tip of `chain`.
pub fn template(
    chain: &mut ChainStore,
    payee: Address,
    time: u64,
    txs: Vec<Transaction>,
    task: Option<Hash256>,
    bounty_claim: Amount,
) -> Result<Template, MineError> {
    let params = chain.params().clone();
    let tip = chain.tip();
    let ctx = chain.index().parent_context(&tip).expect("the tip is indexed");
    let req = TemplateRequest { payee, time, txs, task, bounty_claim };
    template_on(&params, tip, &ctx, chain.state_mut(), req)
}

/// Builds a template on `parent` (whose context is `ctx` and state is `state`): stepping
/// the task from its best parameters, paying subsidy + fees (+ the bounty claim).
pub fn template_on(
    params: &ChainParams,
    parent: Hash256,
    ctx: &ParentContext,
    state: &mut State,
    req: TemplateRequest,
) -> Result<Template, MineError> {
    let height = ctx.height + 1;
    let bits = required_bits(ctx, params);
    let time = req.time.max(ctx.median_time_past + 1);
    let task_id = req.task.unwrap_or(params.public_task_id);
    let t = state.task(&task_id).ok_or(StateError::UnknownTask(task_id))?;
    if !t.is_open_at(height) {
        return Err(StateError::TaskExpired { task: task_id, expired_at: t.expires_at_height }.into());
    }
    let input = Params(t.best_params.clone());
    let problem = state.problem(&task_id)?;
    let mut fees = Amount::ZERO;
    for tx in &req.txs {
        fees = fees.checked_add(fee(state, tx)?)?;
    }
    let reward = subsidy(height, params.initial_subsidy, params.halving_interval)
        .checked_add(fees)?
        .checked_add(req.bounty_claim)?;
    let coinbase = Transaction::Coinbase { height, outputs: vec![TxOut { value: reward, address: req.payee }] };
    let mut all = vec![coinbase];
    all.extend(req.txs);
    let txids: Vec<Hash256> = all.iter().map(Transaction::txid).collect();
    let target = target_from_bits(bits).expect("required bits are valid");
    let header = Header {
        version: 1,
        prev: parent,
        merkle_root: merkle_root(&txids),
        time,
        bits,
        work: WorkClaim { task_id, input_hash: input.hash(), cost: problem.cost(), output_hash: Hash256::ZERO },
        nonce: 0,
    };
    Ok(Template { effective_target: effective_target(target, problem.cost()), header, input, txs: all, problem, height })
}

impl Template {
    /// Tries nonces `start..start + max_steps`, one solver step each; returns the first
    /// block whose hash is at most `target * cost`.
    pub fn mine(&mut self, start: u64, max_steps: u64) -> Option<Block> {
        for nonce in start..start.saturating_add(max_steps) {
            self.header.nonce = nonce;
            let seed = self.header.ticket_seed();
            let Ok(out) = self.problem.step(&self.input, &seed) else { continue };
            self.header.work.output_hash = out.hash();
            if self.header.pow_value() <= self.effective_target {
                return Some(Block {
                    header: self.header,
                    witness: WorkWitness { input_params: self.input.0.clone() },
                    txs: self.txs.clone(),
                });
            }
        }
        None
    }
}
