//! Mining: block templates and the ticket loop. One ticket is one solver step, so hash
//! power is solver throughput (DESIGN.md §3).
//!
//! This is the plain single-threaded loop; it decides nothing about validity (the template
//! follows `chain`'s rules and the node re-validates what it mines).

use crate::chain::address::Address;
use crate::chain::amount::{Amount, AmountError, subsidy};
use crate::chain::block::{Block, Header, WorkClaim, WorkWitness};
use crate::chain::params::ChainParams;
use crate::chain::pipeline::{BlockStore, Chain};
use crate::chain::state::{State, StateError, StateView};
use crate::chain::target::{U256, target_from_bits};
use crate::chain::tx::{Transaction, TxOut};
use crate::chain::validate::{ParentContext, effective_target, required_bits};
use crate::compute::problem::{Params, Problem};
use crate::hash::{Hash256, merkle_root};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

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
    state.fee_of(tx).ok_or_else(|| MineError::BadTx {
        txid: tx.txid(),
        reason: "an input is unknown or spent, or the outputs exceed the inputs".into(),
    })
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
pub fn template<S: BlockStore>(
    chain: &mut Chain<S>,
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
    template_on(&params, tip, &ctx, chain.view(), req)
}

/// Builds a template on `parent` (whose context is `ctx` and state is `state`): stepping
/// the task from its best parameters, paying subsidy + fees (+ the bounty claim).
pub fn template_on(
    params: &ChainParams,
    parent: Hash256,
    ctx: &ParentContext,
    state: StateView<'_>,
    req: TemplateRequest,
) -> Result<Template, MineError> {
    let height = ctx.height + 1;
    let bits = required_bits(ctx, params);
    let time = req.time.max(crate::chain::validate::time_window(ctx, req.time, params).0);
    let task_id = req.task.unwrap_or(params.public_task_id);
    let t = state.task(&task_id).ok_or(StateError::UnknownTask(task_id))?;
    if !t.is_open_at(height) {
        return Err(StateError::TaskExpired { task: task_id, expired_at: t.expires_at_height }.into());
    }
    let input = Params(t.best_params.clone());
    let problem = state.problem(&task_id)?;
    let mut fees = Amount::ZERO;
    for tx in &req.txs {
        fees = fees.checked_add(fee(state.state, tx)?)?;
    }
    let reward = subsidy(height, params.initial_subsidy, params.halving_interval)
        .checked_add(fees)?
        .checked_add(req.bounty_claim)?;
    // Past the last halving with no fees the reward is zero: the coinbase pays nothing
    // (an output of zero value is invalid).
    let outputs = if reward == Amount::ZERO { Vec::new() } else { vec![TxOut { value: reward, address: req.payee }] };
    let coinbase = Transaction::Coinbase { height, outputs };
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
    Ok(Template {
        effective_target: effective_target(target, problem.cost()),
        header,
        input,
        txs: all,
        problem,
        height,
    })
}

impl Template {
    /// One ticket: the step with nonce `nonce`; the block if its hash meets
    /// `target * cost`.
    pub fn try_nonce(&self, nonce: u64) -> Option<Block> {
        self.try_nonce_output(nonce).map(|(b, _)| b)
    }

    /// [`Template::try_nonce`], also returning the step's output (the block's new
    /// parameters for its task), so the miner can score it without another step.
    pub fn try_nonce_output(&self, nonce: u64) -> Option<(Block, Params)> {
        let mut header = self.header;
        header.nonce = nonce;
        let out = self.problem.step(&self.input, &header.ticket_seed()).ok()?;
        header.work.output_hash = out.output_hash();
        (header.pow_value() <= self.effective_target).then(|| {
            let block =
                Block { header, witness: WorkWitness { input_params: self.input.0.clone() }, txs: self.txs.clone() };
            (block, out.params)
        })
    }

    /// Tries nonces `start..start + max_steps`, one solver step each; returns the first
    /// block whose hash is at most `target * cost`.
    pub fn mine(&self, start: u64, max_steps: u64) -> Option<Block> {
        (start..start.saturating_add(max_steps)).find_map(|nonce| self.try_nonce(nonce))
    }
}

/// Nonces a miner thread claims at a time: small enough that a new job is picked up within
/// a few steps, large enough that the shared counter is not contended.
const NONCE_CHUNK: u64 = 4;

/// What receives a found block: `(job generation, block, the step's output)`.
pub type OnBlock = dyn Fn(u64, Block, Params) + Send + Sync;

/// The current job of the miner threads.
struct Job {
    template: Arc<Template>,
    generation: u64,
    next_nonce: AtomicU64,
}

struct Shared {
    job: Mutex<Option<Arc<Job>>>,
    wake: Condvar,
    generation: AtomicU64,
    stop: AtomicBool,
    steps: AtomicU64,
}

/// Mining threads working on one template at a time. A new template (a new tip, new
/// transactions) replaces the job at once: threads notice within [`NONCE_CHUNK`] steps and
/// abandon the stale work.
pub struct MinerPool {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl MinerPool {
    /// Starts `threads` idle miner threads; `on_block` receives every block found with the
    /// generation of the job it solves (so stale finds can be told apart) and the step's
    /// output.
    pub fn start(threads: usize, on_block: Arc<OnBlock>) -> MinerPool {
        let shared = Arc::new(Shared {
            job: Mutex::new(None),
            wake: Condvar::new(),
            generation: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            steps: AtomicU64::new(0),
        });
        let threads = (0..threads.max(1))
            .map(|i| {
                let shared = shared.clone();
                let on_block = on_block.clone();
                std::thread::Builder::new()
                    .name(format!("gc-miner-{i}"))
                    .spawn(move || miner_thread(&shared, on_block.as_ref()))
                    .expect("spawning a miner thread")
            })
            .collect();
        MinerPool { shared, threads }
    }

    /// Replaces the job (all threads switch to it); returns its generation.
    pub fn set_job(&self, template: Template) -> u64 {
        let generation = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let job = Arc::new(Job { template: Arc::new(template), generation, next_nonce: AtomicU64::new(0) });
        *self.shared.job.lock().unwrap_or_else(|p| p.into_inner()) = Some(job);
        self.shared.wake.notify_all();
        generation
    }

    /// Stops work without stopping the threads (mining paused).
    pub fn clear_job(&self) {
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        *self.shared.job.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The generation of the current job.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::SeqCst)
    }

    /// Steps (tickets) tried since start, over all threads.
    pub fn steps(&self) -> u64 {
        self.shared.steps.load(Ordering::Relaxed)
    }

    /// Number of threads.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }
}

impl Drop for MinerPool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.clear_job();
        self.shared.wake.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn miner_thread(shared: &Shared, on_block: &OnBlock) {
    loop {
        let job = {
            let mut guard = shared.job.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                match guard.as_ref() {
                    Some(j) if j.generation == shared.generation.load(Ordering::SeqCst) => break j.clone(),
                    _ => guard = shared.wake.wait(guard).unwrap_or_else(|p| p.into_inner()),
                }
            }
        };
        while job.generation == shared.generation.load(Ordering::SeqCst) && !shared.stop.load(Ordering::SeqCst) {
            let start = job.next_nonce.fetch_add(NONCE_CHUNK, Ordering::Relaxed);
            for nonce in start..start + NONCE_CHUNK {
                shared.steps.fetch_add(1, Ordering::Relaxed);
                if let Some((block, output)) = job.template.try_nonce_output(nonce) {
                    on_block(job.generation, block, output);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::params::ChainParams;
    use crate::store::ChainStore;
    use std::sync::mpsc;

    fn dev_template(chain: &mut ChainStore, payee: u8) -> Template {
        let t = chain.tip_entry().header.time + 1;
        template(chain, Address([payee; 20]), t, vec![], None, Amount::ZERO).unwrap()
    }

    #[test]
    fn pool_threads_find_valid_blocks_for_the_current_job_only() {
        let dir = tempfile::tempdir().unwrap();
        let params = ChainParams::dev();
        let now = params.genesis.header.time + 1_000_000;
        let mut chain = ChainStore::open(dir.path(), params).unwrap();
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let pool = MinerPool::start(
            2,
            Arc::new(move |g, b, _out| {
                let _ = tx.lock().unwrap().send((g, b));
            }),
        );
        assert_eq!(pool.threads(), 2);
        let g1 = pool.set_job(dev_template(&mut chain, 1));
        let (g, b) = rx.recv_timeout(std::time::Duration::from_secs(30)).expect("a dev block within seconds");
        assert_eq!(g, g1);
        assert!(chain.process_block(&b, now).is_ok(), "a pool block is valid");
        // A new job on the new tip: finds after the switch build on it.
        let g2 = pool.set_job(dev_template(&mut chain, 2));
        let tip = chain.tip();
        let found = loop {
            let (g, b) = rx.recv_timeout(std::time::Duration::from_secs(30)).expect("another block");
            if g == g2 {
                break b;
            }
        };
        assert_eq!(found.header.prev, tip);
        assert!(pool.steps() >= 2);
        pool.clear_job();
        drop(pool); // joins every thread
    }
}
