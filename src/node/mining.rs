//! The node's built-in miner: which task to step, the job the miner threads work on, and
//! what to do with what they find.
//!
//! Owns the mining policy only. Validity stays `chain`'s (a found block goes through the
//! same `accept_block` as a peer's) and the ticket loop is `miner::MinerPool`'s.
//!
//! Bounties: a block's own step that solves a task would burn the bounty unless the
//! coinbase had claimed it beforehand (the ticket seed commits to the coinbase). So when a
//! found block's output solves a task with a bounty, the miner does not publish that block:
//! it keeps the output as a private, fee-less model update paying the bounty to its payout
//! address, and mines it into its next block, whose own step then goes to another task.

use super::{Announce, Node, NodeError, Request};
use crate::chain::address::Address;
use crate::chain::amount::Amount;
use crate::chain::block::Block;
use crate::chain::pipeline::Accepted;
use crate::chain::state::StateView;
use crate::chain::tx::Transaction;
use crate::compute::problem::Params;
use crate::hash::Hash256;
use crate::miner::{self, MinerEvent, MinerPool, SharedIterate, TaskJob, TemplateRequest};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// The running miner.
pub(super) struct Mining {
    pool: MinerPool,
    /// Our own iterate of every task we step (DESIGN.md §3.4), kept across jobs.
    iterates: HashMap<Hash256, Arc<SharedIterate>>,
    /// The figures of the iterates of tasks that closed, oldest first.
    finished: Vec<IterateInfo>,
    payout: Address,
    started: Instant,
    blocks_found: u64,
    tasks: Vec<(Hash256, f64)>,
    /// Model updates that solve a task, waiting for our next block.
    held: Vec<Transaction>,
    /// The last rate sample `(when, steps)` and the rate it gave.
    sample: (Instant, u64),
    rate: f64,
    /// Our own finds the node refused.
    blocks_refused: u64,
    /// While every template would be too early for our own node: the unix time from
    /// which one is not, and whether a wake-up is scheduled for it.
    paused_until: Option<u64>,
    wake_pending: bool,
}

/// The miner's iterate of one task.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IterateInfo {
    /// The task.
    pub task: Hash256,
    /// The iterate's objective (the task's score at it).
    pub objective: f64,
    /// Steps computed from it since mining started.
    pub steps: u64,
    /// Of those, the outputs it adopted.
    pub adopted: u64,
    /// Of those, the ones that improved it by the network's relative margin: the useful
    /// steps (a lower objective by the perturbation's noise alone is adopted, not useful).
    pub useful: u64,
    /// Whether the task is still open (the miner keeps the figures of the last
    /// [`FINISHED_KEPT`] tasks it stopped mining).
    pub open: bool,
}

/// Closed tasks whose iterate figures `mining_info` keeps.
pub const FINISHED_KEPT: usize = 64;

fn iterate_info(task: Hash256, it: &SharedIterate, open: bool) -> IterateInfo {
    let (steps, adopted, useful) = it.counts();
    IterateInfo { task, objective: it.objective(), steps, adopted, useful, open }
}

/// What `mining_info` reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MiningInfo {
    /// Whether the miner threads run.
    pub running: bool,
    /// Number of miner threads.
    pub threads: usize,
    /// Who the coinbase (and claimed bounties) pay.
    pub payout: Option<Address>,
    /// The task the current job gives the largest share of its steps.
    pub task: Option<Hash256>,
    /// Every task the current job steps, with its share of the steps.
    pub tasks: Vec<(Hash256, f64)>,
    /// Steps (tickets) tried since mining started.
    pub steps: u64,
    /// Steps whose output the miner adopted (it lowered its iterate of the task); the
    /// useful ones among them are counted per task in `iterates`.
    pub steps_adopted: u64,
    /// Per task the miner has an iterate of: its objective, the steps computed from it,
    /// the outputs it adopted and the useful ones.
    pub iterates: Vec<IterateInfo>,
    /// Recent steps per second (over the last second or more).
    pub steps_per_sec: f64,
    /// Blocks mined into the chain since mining started.
    pub blocks_found: u64,
    /// Solving model updates held for our next block.
    pub held_updates: usize,
    /// Our own finds the node refused since mining started.
    pub blocks_refused: u64,
    /// Set while mining waits for the clock: every template would be dated more than the
    /// future-drift limit ahead of it (blocks came faster than one a second for a while,
    /// and a block's time must exceed the median time past). Unix time it resumes.
    pub paused_until: Option<u64>,
}

impl Mining {
    /// Steps per second, updated at most once a second (a shorter window is noise).
    fn rate(&mut self) -> f64 {
        let (now, steps) = (Instant::now(), self.pool.steps());
        let dt = now.duration_since(self.sample.0).as_secs_f64();
        if dt >= 1.0 {
            self.rate = (steps - self.sample.1) as f64 / dt;
            self.sample = (now, steps);
        } else if self.rate == 0.0 {
            let total = now.duration_since(self.started).as_secs_f64();
            if total > 0.0 {
                self.rate = steps as f64 / total;
            }
        }
        self.rate
    }
}

/// The task of a model update.
fn update_task(tx: &Transaction) -> Option<Hash256> {
    match tx {
        Transaction::ModelUpdate { task_id, .. } => Some(*task_id),
        _ => None,
    }
}

/// The tasks to mine and each one's share of the steps (DESIGN.md §3.4): every open task
/// with a bounty that is not stalled and not in `exclude`, weighted by its bounty per work
/// unit of a step, so one task cannot starve the others; the public task alone (idle work)
/// when there is none.
pub fn schedule_tasks(
    state: StateView<'_>,
    public: Hash256,
    height: u64,
    stall_blocks: u64,
    exclude: &HashSet<Hash256>,
) -> Vec<(Hash256, f64)> {
    let mut open: Vec<(Hash256, Amount)> = state
        .tasks()
        .iter()
        .filter(|(id, t)| {
            t.is_open_at(height)
                && t.bounty > Amount::ZERO
                && !t.is_stalled_at(height, stall_blocks)
                && !exclude.contains(id)
        })
        .map(|(id, t)| (*id, t.bounty))
        .collect();
    open.sort_by_key(|(id, _)| *id); // a fixed order
    let mut out = Vec::new();
    for (id, bounty) in open {
        let Ok(problem) = state.problem(&id) else { continue };
        out.push((id, bounty.units() as f64 / problem.cost().max(1) as f64));
    }
    if out.is_empty() && state.task(&public).is_some_and(|t| t.is_open_at(height)) && !exclude.contains(&public) {
        out.push((public, 1.0));
    }
    out
}

impl Node {
    /// Starts (or restarts with a new thread count) the miner, paying `payout` (a wallet
    /// address when `None`).
    pub(super) fn start_mining(&mut self, threads: usize, payout: Option<Address>) -> Result<MiningInfo, NodeError> {
        let payout = self.payout(payout)?;
        let (held, iterates) = self.mining.take().map(|m| (m.held, m.iterates)).unwrap_or_default();
        let weak = self.weak_self.clone();
        // `try_send`: a miner thread must never block on a full queue while the node thread
        // joins it (stopping the miner); a dropped find is one lost block at worst, and a
        // dropped target report is made up for by the task's next find (its witness then
        // solves the task and `on_mined` builds the update).
        let on_event = Arc::new(move |event: MinerEvent| {
            if let Some(tx) = weak.upgrade() {
                let _ = tx.try_send(match event {
                    MinerEvent::Block { generation, block, output } => Request::Mined { generation, block, output },
                    MinerEvent::TargetMet { task, params, .. } => Request::TargetMet { task, params },
                });
            }
        });
        let pool = MinerPool::start(threads, on_event);
        let now = Instant::now();
        self.mining = Some(Mining {
            pool,
            iterates,
            finished: Vec::new(),
            payout,
            started: now,
            blocks_found: 0,
            tasks: Vec::new(),
            held,
            sample: (now, 0),
            rate: 0.0,
            blocks_refused: 0,
            paused_until: None,
            wake_pending: false,
        });
        tracing::info!(threads, payout = %payout.to_string_for(self.chain.params().network), "mining started");
        self.refresh_mining();
        Ok(self.mining_info())
    }

    /// Stops the miner threads.
    pub(super) fn stop_mining(&mut self) -> MiningInfo {
        let info = self.mining_info();
        if self.mining.take().is_some() {
            tracing::info!("mining stopped");
        }
        MiningInfo { running: false, ..info }
    }

    /// The miner's figures.
    pub(super) fn mining_info(&mut self) -> MiningInfo {
        match self.mining.as_mut() {
            None => MiningInfo {
                running: false,
                threads: 0,
                payout: None,
                task: None,
                tasks: Vec::new(),
                steps: 0,
                steps_adopted: 0,
                iterates: Vec::new(),
                steps_per_sec: 0.0,
                blocks_found: 0,
                held_updates: 0,
                blocks_refused: 0,
                paused_until: None,
            },
            Some(m) => MiningInfo {
                running: true,
                threads: m.pool.threads(),
                payout: Some(m.payout),
                task: m.tasks.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map(|t| t.0),
                tasks: m.tasks.clone(),
                steps: m.pool.steps(),
                steps_adopted: m.pool.adopted(),
                iterates: {
                    let mut v: Vec<IterateInfo> =
                        m.iterates.iter().map(|(task, it)| iterate_info(*task, it, true)).collect();
                    v.sort_by_key(|i| i.task);
                    v.extend(m.finished.iter().cloned());
                    v
                },
                steps_per_sec: m.rate(),
                blocks_found: m.blocks_found,
                held_updates: m.held.len(),
                blocks_refused: m.blocks_refused,
                paused_until: m.paused_until,
            },
        }
    }

    /// Recent steps per second of the miner (0 when not mining), for the block log line.
    pub(super) fn steps_per_sec(&mut self) -> f64 {
        self.mining.as_mut().map_or(0.0, Mining::rate)
    }

    /// Gives the miner threads a new job on the current tip and pool (after a new tip or a
    /// new transaction). On failure mining pauses until the next refresh.
    pub(super) fn refresh_mining(&mut self) {
        if self.mining.is_none() {
            return;
        }
        if let Err(e) = self.set_mining_job() {
            tracing::warn!("mining paused: {e}");
            if let Some(m) = &self.mining {
                m.pool.clear_job();
            }
        }
    }

    fn set_mining_job(&mut self) -> Result<(), NodeError> {
        let params = self.chain.params().clone();
        let height = self.chain.height() + 1;
        let Some(m) = self.mining.as_mut() else { return Ok(()) };
        let payee = m.payout;
        let held = std::mem::take(&mut m.held);
        // Held updates still valid here (one mined, or beaten by another block, is gone).
        let state = self.chain.view();
        let held: Vec<Transaction> =
            held.into_iter().filter(|tx| state.check_tx(tx, height, &params).is_ok()).collect();
        let held_tasks: HashSet<Hash256> = held.iter().filter_map(update_task).collect();
        let tasks = schedule_tasks(state, params.public_task_id, height, params.stall_blocks, &held_tasks);
        if tasks.is_empty() {
            m.held = held;
            return Err(NodeError::NotFound("an open task to mine".into()));
        }
        let pool_txs = self.mempool.select(params.max_block_bytes / 2, &params.task_limits);
        let time = self.now();
        let tip = self.chain.tip();
        let ctx = self.chain.index().parent_context(&tip).expect("the tip is indexed");
        // A block's time must exceed the median time past and may not be more than the
        // drift ahead of the clock: past that, every block we found would be refused as
        // too early, so wait for the clock instead of mining.
        let (earliest, latest) = crate::chain::validate::time_window(&ctx, time, &params);
        if earliest > latest {
            let drift = params.max_future_drift_secs;
            let m = self.mining.as_mut().expect("checked above");
            m.held = held;
            m.pool.clear_job();
            let resume = earliest - drift;
            if m.paused_until != Some(resume) {
                tracing::info!(resume, "mining waits for the clock: the next block may not be dated before {earliest}");
            }
            m.paused_until = Some(resume);
            self.wake_mining_at(resume);
            return Ok(());
        }
        let mut jobs = Vec::new();
        for &(task, weight) in &tasks {
            // The block's own step is applied before its transactions: a pool update of the
            // same task could then fail to improve on it and invalidate the block.
            let mut txs = held.clone();
            txs.extend(
                pool_txs
                    .iter()
                    .filter(|t| update_task(t).is_none_or(|id| id != task && !held_tasks.contains(&id)))
                    .cloned(),
            );
            let req = TemplateRequest { payee, time, txs, task: Some(task), bounty_claim: Amount::ZERO };
            let template = match miner::template_on(&params, tip, &ctx, self.chain.view(), req) {
                Ok(t) => t,
                Err(e) => {
                    self.mining.as_mut().expect("checked above").held = held;
                    return Err(e.into());
                }
            };
            let t = self.chain.state().task(&task).expect("scheduled tasks exist");
            let (best, best_score) = (Params(t.best_params.clone()), t.best_score);
            let solves_at = (t.bounty > Amount::ZERO).then_some(t.target_score);
            let m = self.mining.as_mut().expect("checked above");
            // Keep our iterate when it beats the chain's best; take the chain's otherwise
            // (another miner got further, or a reorganisation).
            let iterate = m
                .iterates
                .entry(task)
                .or_insert_with(|| Arc::new(SharedIterate::new(best.clone(), best_score)))
                .clone();
            if !(iterate.objective() <= best_score) {
                iterate.reset(best, best_score);
            }
            jobs.push(TaskJob { template, iterate, weight, solves_at, margin: params.min_relative_improvement });
        }
        let m = self.mining.as_mut().expect("checked above");
        m.held = held;
        m.paused_until = None;
        let state = self.chain.state();
        let closed: Vec<Hash256> =
            m.iterates.keys().filter(|id| !state.task(id).is_some_and(|t| t.is_open_at(height))).copied().collect();
        for id in closed {
            if let Some(it) = m.iterates.remove(&id) {
                m.finished.push(iterate_info(id, &it, false));
            }
        }
        let excess = m.finished.len().saturating_sub(FINISHED_KEPT);
        m.finished.drain(..excess);
        m.tasks = tasks;
        m.pool.set_job(jobs);
        Ok(())
    }

    /// Refreshes the mining job once the clock reads `at` (one wake-up at a time; on the
    /// mock clock of the dev network, `set_mock_time` refreshes instead).
    fn wake_mining_at(&mut self, at: u64) {
        let real = self.mock_time.is_none();
        let Some(m) = self.mining.as_mut() else { return };
        if m.wake_pending || !real {
            return;
        }
        m.wake_pending = true;
        let wait = at.saturating_sub(self.now());
        let weak = self.weak_self.clone();
        let spawned = std::thread::Builder::new().name("gc-mining-wake".into()).spawn(move || {
            // A timer, not a poll: one sleep to the time the clock allows a block.
            std::thread::sleep(std::time::Duration::from_millis(wait.saturating_mul(1000).saturating_add(50)));
            if let Some(tx) = weak.upgrade() {
                let _ = tx.try_send(Request::MiningWake);
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot schedule the miner's wake-up: {e}");
            if let Some(m) = self.mining.as_mut() {
                m.wake_pending = false;
            }
        }
    }

    /// The clock may now allow a block: rebuild the job.
    pub(super) fn on_mining_wake(&mut self) {
        if let Some(m) = self.mining.as_mut() {
            m.wake_pending = false;
        }
        self.refresh_mining();
    }

    /// A miner thread found `block` (for job `generation`) with step output `output`.
    pub(super) fn on_mined(&mut self, generation: u64, block: Block, output: Params) {
        let Some(m) = self.mining.as_ref() else { return };
        if block.header.prev != self.chain.tip() {
            return; // stale: the tip moved on since the job was set
        }
        let (payout, height) = (m.payout, self.chain.height() + 1);
        let task_id = block.header.work.task_id;
        if m.held.iter().any(|t| update_task(t) == Some(task_id)) {
            // A find of an older job on a task we already hold a solution for: the held
            // update is mined next; this block would compete with it.
            return;
        }
        // The block's work sets the task's best to the lower of its witness and its output
        // (DESIGN.md §3.3): either may solve the task.
        let problem = self.chain.view().problem(&task_id).ok();
        let score = |x: &Params| problem.as_ref().and_then(|p| p.certify(x).ok()).map_or(f64::INFINITY, |c| c.score);
        let witness = block.input_params();
        let best = if score(&witness) < score(&output) { witness } else { output };
        if let Some(tx) = self.solving_update(task_id, height, &best, payout) {
            tracing::info!(task = %task_id, generation, "a step solved the task: claiming its bounty by a model update in our next block");
            if let Some(m) = self.mining.as_mut() {
                m.held.push(tx);
            }
            self.refresh_mining();
            return;
        }
        self.offer_block(block.clone(), super::blocks::Waiter::Mined(Box::new(block)));
    }

    /// Our iterate of `task` meets its target: claim the bounty by a model update held for
    /// our next block (DESIGN.md §3.5), and give the task's steps to the others.
    pub(super) fn on_target_met(&mut self, task: Hash256, params: Params) {
        let Some(m) = self.mining.as_ref() else { return };
        if m.held.iter().any(|t| update_task(t) == Some(task)) {
            return;
        }
        let (payout, height) = (m.payout, self.chain.height() + 1);
        if let Some(tx) = self.solving_update(task, height, &params, payout) {
            tracing::info!(task = %task, "our iterate meets the task's target: claiming its bounty by a model update in our next block");
            if let Some(m) = self.mining.as_mut() {
                m.held.push(tx);
            }
            self.refresh_mining();
        }
    }

    /// What our own find became: announced if it is the tip; if refused for good, the
    /// template was wrong (a held update no longer valid with the rest), so the held
    /// updates are dropped and the job rebuilt rather than mining it forever.
    pub(super) fn after_mined(&mut self, block: Block, outcome: Result<Accepted, NodeError>) {
        match outcome {
            Ok(Accepted::NewTip { .. }) => {
                if let Some(m) = self.mining.as_mut() {
                    m.blocks_found += 1;
                }
                let _ = self.announce.send(Announce::Block(block));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("a mined block was refused: {e}");
                if let Some(m) = self.mining.as_mut() {
                    m.blocks_refused += 1;
                }
                if crate::chain::fault::Classify::fault(&e) != crate::chain::fault::Fault::Transient
                    && let Some(m) = self.mining.as_mut()
                {
                    m.held.clear();
                    self.refresh_mining();
                }
            }
        }
    }

    /// A fee-less model update with `output` paying `payout`, if `output` solves a task
    /// that has a bounty to pay.
    fn solving_update(
        &mut self,
        task_id: Hash256,
        height: u64,
        output: &Params,
        payout: Address,
    ) -> Option<Transaction> {
        let t = self.chain.state().task(&task_id)?;
        if t.bounty == Amount::ZERO || !t.is_open_at(height) {
            return None;
        }
        let target = t.target_score;
        let problem = self.chain.view().problem(&task_id).ok()?;
        let cert = problem.certify(output).ok()?;
        if cert.score > target {
            return None;
        }
        let state = self.chain.view();
        match self.wallet.model_update(state, height, task_id, output.clone(), cert, payout, 0) {
            Ok(tx) => Some(tx),
            Err(e) => {
                tracing::warn!(task = %task_id, "cannot build the solving model update: {e}");
                None
            }
        }
    }
}
