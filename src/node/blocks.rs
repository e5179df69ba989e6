//! Block intake with step replays off the node thread (DESIGN.md §3.6).
//!
//! A block offered to the node (by a peer, by sync, by our own miner) is checked and
//! stored on the node thread — cheap checks only — and fork choice then asks for the
//! replay of one step at a time ([`Step::Replay`]). The replay runs on the replay thread;
//! meanwhile the node thread keeps serving every other request from the state at the old
//! tip. When the replay comes back the round goes on, and once it is done every block that
//! waited on it gets its answer.
//!
//! Owns the sequencing only: what is valid is `chain`'s, and a replay is a pure function
//! of its [`WorkCheck`].

use super::{Node, NodeError, Reply, Request};
use crate::chain::block::Block;
use crate::chain::forkchoice::BlockStatus;
use crate::chain::pipeline::{Accepted, Step, Stored};
use crate::chain::state::{StateError, VerifiedWork, WorkCheck};
use crate::chain::validate::BlockError;
use crate::hash::Hash256;
use crate::store::ProcessError;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use tokio::sync::mpsc;

/// Who waits for a block's outcome.
pub(super) enum Waiter {
    /// A caller of `submit_block` (a peer's gossip, sync, a benchmark).
    Reply(Reply<Accepted>),
    /// Our own miner's find.
    Mined(Box<Block>),
}

/// The replay thread's outcome for one block: `None` when the replay panicked (a bug of
/// ours, not the block's: it stays unjudged).
pub(super) type ReplayOutcome = Option<Result<VerifiedWork, StateError>>;

/// The node thread's side of block intake.
pub(super) struct Intake {
    jobs: std::sync::mpsc::Sender<WorkCheck>,
    /// The block whose replay is running, if any (one at a time).
    in_flight: Option<Hash256>,
    /// Blocks waiting for the current round of fork choice.
    waiting: Vec<(Hash256, Waiter)>,
    /// Blocks found invalid in this round, with why.
    failures: HashMap<Hash256, BlockError>,
}

impl Intake {
    /// Starts the replay thread, which reports each outcome to the node through `node`
    /// (weakly held: the thread ends with the node).
    pub(super) fn start(node: mpsc::WeakSender<Request>) -> std::io::Result<Intake> {
        let (jobs, rx) = std::sync::mpsc::channel::<WorkCheck>();
        std::thread::Builder::new().name("gc-replay".into()).spawn(move || {
            // Ends when the node drops its sender.
            while let Ok(check) = rx.recv() {
                let block = check.block();
                let started = std::time::Instant::now();
                let result = std::panic::catch_unwind(AssertUnwindSafe(|| check.replay())).ok();
                tracing::debug!(%block, cost = check.cost(), ms = started.elapsed().as_secs_f64() * 1e3, "replayed a step");
                let Some(tx) = node.upgrade() else { return };
                if tx.blocking_send(Request::Replayed { block, result }).is_err() {
                    return;
                }
            }
        })?;
        Ok(Intake { jobs, in_flight: None, waiting: Vec::new(), failures: HashMap::new() })
    }

    /// Whether a replay is running.
    pub(super) fn busy(&self) -> bool {
        self.in_flight.is_some()
    }
}

impl Node {
    /// Checks and stores `block`, then runs fork choice as far as it goes without a replay
    /// on this thread; `waiter` is answered when the block's fate is known.
    pub(super) fn offer_block(&mut self, block: Block, waiter: Waiter) {
        let hash = block.hash();
        let now = self.now();
        match self.chain.accept_block(&block, now) {
            Err(e) => self.answer(waiter, Err(e.into())),
            Ok(Stored::Duplicate) => self.answer(waiter, Ok(Accepted::Duplicate)),
            // Less work than our tip: nothing to replay, nothing moves.
            Ok(Stored::New { can_become_tip: false }) => self.answer(waiter, Ok(Accepted::SideChain)),
            Ok(Stored::New { can_become_tip: true }) => {
                self.intake.waiting.push((hash, waiter));
                self.drive();
            }
        }
    }

    /// A replay came back: record it and go on with the round.
    pub(super) fn on_replayed(&mut self, block: Hash256, result: ReplayOutcome) {
        if self.intake.in_flight == Some(block) {
            self.intake.in_flight = None;
        }
        match result {
            Some(result) => {
                self.record_replay(block, result);
                self.drive();
            }
            None => {
                tracing::error!(%block, "the step replay panicked: leaving the block unjudged");
                let err = || NodeError::Invalid(format!("internal error: the step replay of block {block} failed"));
                for (_, w) in std::mem::take(&mut self.intake.waiting) {
                    self.answer(w, Err(err()));
                }
                self.intake.failures.clear();
            }
        }
    }

    fn record_replay(&mut self, block: Hash256, result: Result<VerifiedWork, StateError>) {
        match self.chain.record_replay(block, result) {
            Ok(()) => {}
            Err(ProcessError::Block(e)) => {
                self.intake.failures.insert(block, e);
            }
            Err(e) => tracing::error!(%block, "recording a replay: {e}"),
        }
    }

    /// Runs fork choice until it is done or waits on a replay.
    fn drive(&mut self) {
        if self.intake.busy() {
            return;
        }
        loop {
            match self.chain.activate() {
                Ok(Step::Done(accepted)) => return self.finish_round(accepted),
                Ok(Step::Replay(check)) => {
                    let block = check.block();
                    match self.intake.jobs.send(check) {
                        Ok(()) => {
                            self.intake.in_flight = Some(block);
                            return;
                        }
                        // The replay thread is gone (it cannot panic out of its loop, so
                        // only at shutdown): replay here rather than stall.
                        Err(std::sync::mpsc::SendError(check)) => {
                            let result = check.replay();
                            self.record_replay(block, result);
                        }
                    }
                }
                Ok(Step::Invalid { block, error }) => {
                    self.intake.failures.insert(block, error);
                }
                Err(e) => {
                    tracing::error!("fork choice failed: {e}");
                    let msg = e.to_string();
                    for (_, w) in std::mem::take(&mut self.intake.waiting) {
                        self.answer(w, Err(NodeError::Invalid(format!("the node could not process the block: {msg}"))));
                    }
                    self.intake.failures.clear();
                    return;
                }
            }
        }
    }

    /// The round is done: bring the mempool, wallet and miner up to the tip, then answer
    /// every waiting block.
    fn finish_round(&mut self, accepted: Accepted) {
        if let Accepted::NewTip { disconnected, connected } = &accepted {
            if let Err(e) = self.after_tip_change(disconnected, connected) {
                tracing::error!("updating the mempool after a new tip: {e}");
            }
            self.log_tip();
            self.refresh_mining();
        }
        let failures = std::mem::take(&mut self.intake.failures);
        for (hash, waiter) in std::mem::take(&mut self.intake.waiting) {
            let outcome = self.outcome(&hash, &accepted, &failures);
            self.answer(waiter, outcome);
        }
    }

    /// What became of block `hash` in a round that ended with `accepted`.
    fn outcome(
        &self,
        hash: &Hash256,
        accepted: &Accepted,
        failures: &HashMap<Hash256, BlockError>,
    ) -> Result<Accepted, NodeError> {
        if let Some(e) = failures.get(hash) {
            return Err(ProcessError::Block(e.clone()).into());
        }
        let Some(entry) = self.chain.index().get(hash) else {
            return Ok(Accepted::SideChain);
        };
        if entry.status == BlockStatus::Invalid {
            // A descendant of a block found invalid: the ancestor's error, if known.
            let mut cur = entry.header.prev;
            while let Some(e) = self.chain.index().get(&cur) {
                if let Some(err) = failures.get(&cur) {
                    return Err(ProcessError::Block(err.clone()).into());
                }
                if e.height == 0 || e.status != BlockStatus::Invalid {
                    break;
                }
                cur = e.header.prev;
            }
            return Err(ProcessError::Block(BlockError::InvalidParent(entry.header.prev)).into());
        }
        let on_main = self.chain.hash_at(entry.height).ok().flatten() == Some(*hash);
        Ok(match (on_main, accepted) {
            (true, Accepted::NewTip { .. }) => accepted.clone(),
            (true, _) => Accepted::NewTip { disconnected: vec![], connected: vec![*hash] },
            (false, _) => Accepted::SideChain,
        })
    }

    fn answer(&mut self, waiter: Waiter, outcome: Result<Accepted, NodeError>) {
        match waiter {
            // The asker may have given up: not an error.
            Waiter::Reply(r) => drop(r.send(outcome)),
            Waiter::Mined(block) => self.after_mined(*block, outcome),
        }
    }
}
