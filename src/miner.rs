//! Mining: block templates and the ticket loop. One ticket is one solver step, so hash
//! power is solver throughput (DESIGN.md §3); and mining is training (§3.4): the threads
//! chain their steps from the miner's own iterate of each task, adopting every output that
//! lowers it, and share their steps among a job's tasks in proportion to their weights.
//!
//! It decides nothing about validity (the template follows `chain`'s rules and the node
//! re-validates what it mines) and nothing about which tasks to mine (the node's policy).

use crate::chain::address::Address;
use crate::chain::amount::{Amount, AmountError, subsidy};
use crate::chain::block::{Block, Header, WorkClaim, WorkWitness};
use crate::chain::params::ChainParams;
use crate::chain::pipeline::{BlockStore, Chain};
use crate::chain::state::{State, StateError, StateView};
use crate::chain::target::{U256, target_from_bits};
use crate::chain::tx::{Transaction, TxOut};
use crate::chain::validate::{ParentContext, effective_target, required_bits};
use crate::compute::problem::{Params, Problem, StepOutput};
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
        self.step_at(&self.input, self.header.work.input_hash, nonce)?.1
    }

    /// Tries nonces `start..start + max_steps`, one solver step each; returns the first
    /// block whose hash is at most `target * cost`.
    pub fn mine(&self, start: u64, max_steps: u64) -> Option<Block> {
        (start..start.saturating_add(max_steps)).find_map(|nonce| self.try_nonce(nonce))
    }
}

/// The miner's own iterate of one task, shared by its threads (DESIGN.md §3.4): every
/// step starts from it, and a step's output replaces it when its objective is lower.
pub struct SharedIterate {
    inner: Mutex<Iterate>,
    /// Steps computed from this iterate, how many of their outputs it adopted, and how
    /// many of those improved it by at least the network's relative margin (useful).
    steps: AtomicU64,
    adopted: AtomicU64,
    useful: AtomicU64,
}

/// A point and its objective.
#[derive(Clone, Debug)]
pub struct Iterate {
    /// The parameters.
    pub params: Params,
    /// Their params hash (a header's `input_hash` when stepped from).
    pub hash: Hash256,
    /// Their objective (the task's score).
    pub objective: f64,
}

impl SharedIterate {
    /// Starts at `params` with objective `objective`.
    pub fn new(params: Params, objective: f64) -> SharedIterate {
        let hash = params.hash();
        SharedIterate {
            inner: Mutex::new(Iterate { params, hash, objective }),
            steps: AtomicU64::new(0),
            adopted: AtomicU64::new(0),
            useful: AtomicU64::new(0),
        }
    }

    /// `(steps computed from this iterate, outputs adopted, adopted outputs that improved
    /// it by the relative margin)` since it was made.
    pub fn counts(&self) -> (u64, u64, u64) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        (load(&self.steps), load(&self.adopted), load(&self.useful))
    }

    /// The current point.
    pub fn get(&self) -> Iterate {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The current objective.
    pub fn objective(&self) -> f64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).objective
    }

    /// Adopts `params` if `objective` is lower than the current one. Returns `None` when
    /// not adopted, else whether the improvement reached the relative `margin` (a lower
    /// objective by the perturbation's noise alone is adopted, but is not useful work).
    pub fn offer(&self, params: &Params, objective: f64, margin: f64) -> Option<bool> {
        let mut it = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if objective < it.objective {
            let useful = crate::pouw::verify::improves(objective, it.objective, margin);
            *it = Iterate { params: params.clone(), hash: params.hash(), objective };
            Some(useful)
        } else {
            None
        }
    }

    /// Replaces the point unconditionally (the chain's best is better than ours).
    pub fn reset(&self, params: Params, objective: f64) {
        let hash = params.hash();
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = Iterate { params, hash, objective };
    }
}

/// One task of a mining job: its template, the shared iterate its steps chain from, its
/// share of the steps, and the score that solves it (when it pays a bounty).
pub struct TaskJob {
    /// The template (its `work.input_hash` is set per step from the iterate).
    pub template: Template,
    /// The miner's iterate of the task.
    pub iterate: Arc<SharedIterate>,
    /// Relative share of the steps (bounty per WU).
    pub weight: f64,
    /// A step whose output scores at most this solves the task (it pays a bounty).
    pub solves_at: Option<f64>,
    /// The network's relative improvement margin: an adopted output that improves by
    /// less is counted as adopted, not as useful.
    pub margin: f64,
}

/// What a miner thread reports.
pub enum MinerEvent {
    /// A step's hash met its target: `(job generation, block, the step's output)`.
    Block {
        /// The job's generation.
        generation: u64,
        /// The block.
        block: Block,
        /// The step's output.
        output: Params,
    },
    /// The miner's iterate of `task` now meets its target (it pays a bounty).
    TargetMet {
        /// The job's generation.
        generation: u64,
        /// The task.
        task: Hash256,
        /// The solving point.
        params: Params,
    },
}

/// What receives the miner threads' events.
pub type OnEvent = dyn Fn(MinerEvent) + Send + Sync;

impl Template {
    /// One chained ticket: the step of `nonce` from `input` (the header's `input_hash`
    /// set to it); the block too if its hash meets `target * cost`.
    pub fn step_from(&self, input: &Iterate, nonce: u64) -> Option<(StepOutput, Option<Block>)> {
        self.step_at(&input.params, input.hash, nonce)
    }

    /// The step of `nonce` from `params` (whose params hash is `hash`), and the block if
    /// its hash meets `target * cost`; `None` if the step fails.
    fn step_at(&self, params: &Params, hash: Hash256, nonce: u64) -> Option<(StepOutput, Option<Block>)> {
        let mut header = self.header;
        header.nonce = nonce;
        header.work.input_hash = hash;
        let out = self.problem.step(params, &header.ticket_seed()).ok()?;
        header.work.output_hash = out.output_hash();
        let block = (header.pow_value() <= self.effective_target).then(|| Block {
            header,
            witness: WorkWitness { input_params: params.0.clone() },
            txs: self.txs.clone(),
        });
        Some((out, block))
    }
}

/// The current job of the miner threads.
struct Job {
    tasks: Vec<TaskJob>,
    generation: u64,
    next_nonce: AtomicU64,
    /// Stride scheduling: each task's pass; the next step goes to the lowest, which then
    /// advances by `1 / weight`, so steps are shared in proportion to the weights.
    passes: Mutex<Vec<f64>>,
}

impl Job {
    fn next_task(&self) -> usize {
        let mut passes = self.passes.lock().unwrap_or_else(|p| p.into_inner());
        let (i, _) = passes.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).expect("a job has at least one task");
        passes[i] += 1.0 / self.tasks[i].weight;
        i
    }
}

struct Shared {
    job: Mutex<Option<Arc<Job>>>,
    wake: Condvar,
    generation: AtomicU64,
    stop: AtomicBool,
    steps: AtomicU64,
    adopted: AtomicU64,
}

/// Mining threads chaining steps of the tasks of one job (DESIGN.md §3.4). A new job (a
/// new tip, new transactions) replaces the old at once: each thread notices at its next
/// step. The iterates outlive jobs: the node hands the same ones to the next job.
pub struct MinerPool {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl MinerPool {
    /// Starts `threads` idle miner threads reporting to `on_event`.
    pub fn start(threads: usize, on_event: Arc<OnEvent>) -> MinerPool {
        let shared = Arc::new(Shared {
            job: Mutex::new(None),
            wake: Condvar::new(),
            generation: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            steps: AtomicU64::new(0),
            adopted: AtomicU64::new(0),
        });
        let threads = (0..threads.max(1))
            .map(|i| {
                let shared = shared.clone();
                let on_event = on_event.clone();
                std::thread::Builder::new()
                    .name(format!("gc-miner-{i}"))
                    .spawn(move || miner_thread(&shared, on_event.as_ref()))
                    .expect("spawning a miner thread")
            })
            .collect();
        MinerPool { shared, threads }
    }

    /// Replaces the job (all threads switch to it); returns its generation. Tasks with a
    /// weight that is not positive and finite get none of the steps; an empty job pauses.
    pub fn set_job(&self, tasks: Vec<TaskJob>) -> u64 {
        let tasks: Vec<TaskJob> = tasks.into_iter().filter(|t| t.weight > 0.0 && t.weight.is_finite()).collect();
        if tasks.is_empty() {
            self.clear_job();
            return self.generation();
        }
        let generation = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let passes = Mutex::new(vec![0.0; tasks.len()]);
        let job = Arc::new(Job { tasks, generation, next_nonce: AtomicU64::new(0), passes });
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

    /// Steps (tickets) computed since start, over all threads.
    pub fn steps(&self) -> u64 {
        self.shared.steps.load(Ordering::Relaxed)
    }

    /// Steps whose output the miner adopted (it lowered its iterate's objective).
    pub fn adopted(&self) -> u64 {
        self.shared.adopted.load(Ordering::Relaxed)
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

fn miner_thread(shared: &Shared, on_event: &OnEvent) {
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
            let task = &job.tasks[job.next_task()];
            let nonce = job.next_nonce.fetch_add(1, Ordering::Relaxed);
            let input = task.iterate.get();
            shared.steps.fetch_add(1, Ordering::Relaxed);
            task.iterate.steps.fetch_add(1, Ordering::Relaxed);
            let Some((out, block)) = task.template.step_from(&input, nonce) else {
                // Outside the step's domain (never for an admitted task in its box): no
                // block can come from this point; the work is counted, and lost.
                continue;
            };
            if let Some(useful) = task.iterate.offer(&out.params, out.objective, task.margin) {
                shared.adopted.fetch_add(1, Ordering::Relaxed);
                task.iterate.adopted.fetch_add(1, Ordering::Relaxed);
                if useful {
                    task.iterate.useful.fetch_add(1, Ordering::Relaxed);
                }
                if task.solves_at.is_some_and(|t| out.objective <= t) {
                    on_event(MinerEvent::TargetMet {
                        generation: job.generation,
                        task: task.template.header.work.task_id,
                        params: out.params.clone(),
                    });
                }
            }
            if let Some(block) = block {
                on_event(MinerEvent::Block { generation: job.generation, block, output: out.params });
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

    fn job(template: Template) -> TaskJob {
        let objective = template.problem.certify(&template.input).unwrap().score;
        let iterate = Arc::new(SharedIterate::new(template.input.clone(), objective));
        TaskJob { template, iterate, weight: 1.0, solves_at: None, margin: 1e-6 }
    }

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
            Arc::new(move |e| {
                if let MinerEvent::Block { generation, block, .. } = e {
                    let _ = tx.lock().unwrap().send((generation, block));
                }
            }),
        );
        assert_eq!(pool.threads(), 2);
        let g1 = pool.set_job(vec![job(dev_template(&mut chain, 1))]);
        let (g, b) = rx.recv_timeout(std::time::Duration::from_secs(30)).expect("a dev block within seconds");
        assert_eq!(g, g1);
        assert!(chain.process_block(&b, now).is_ok(), "a pool block is valid");
        // A new job on the new tip: finds after the switch build on it.
        let g2 = pool.set_job(vec![job(dev_template(&mut chain, 2))]);
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
