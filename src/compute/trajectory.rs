//! Chained ticket trajectories and their cost against the off-chain solve (DESIGN.md
//! §3.4): how many steps, and how many counted flops, a miner that adopts every step's
//! output when it lowers the objective needs to bring a task from its start to a target
//! score, next to what [`Problem::solve`] needs to reach the same score.
//!
//! Measurement only (the benchmark `bench mining` and the tests that check the ticket
//! step's choice): nothing here is consensus, and it owns no I/O. Flops are the kernels'
//! own count (`compute::det::flops`), on the calling thread.

use crate::compute::det;
use crate::compute::problem::{Params, Problem, ProblemError, SolveOpts, StepOutput};
use crate::hash::sha256_parts;

/// What a chained run did.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    /// Steps computed.
    pub steps: u64,
    /// Steps whose output was adopted (it lowered the objective).
    pub adopted: u64,
    /// Counted flops of every step (and of scoring the start).
    pub flops: u64,
    /// Whether the target was met within the step cap.
    pub reached: bool,
    /// The score at the end.
    pub score: f64,
    /// The score after every step (adopted or not).
    pub history: Vec<f64>,
}

/// The seed of the `i`-th step of a measured trajectory (stands in for a header's ticket
/// seed: every step gets a fresh one).
pub fn step_seed(i: u64) -> [u8; 32] {
    sha256_parts(&[b"gradientcoin/trajectory/v1", &i.to_le_bytes()]).0
}

/// Chains `step` from `x0` until the score is at most `target` or `max_steps` steps ran:
/// every step starts from the best point so far and its output is adopted when its
/// objective is lower (DESIGN.md §3.4).
///
/// # Errors
/// The start cannot be scored, or a step fails (a ticket step never fails inside its
/// admission domain).
pub fn chained(
    problem: &dyn Problem,
    x0: &Params,
    target: f64,
    max_steps: u64,
    mut step: impl FnMut(&Params, &[u8; 32]) -> Result<StepOutput, ProblemError>,
) -> Result<Trajectory, ProblemError> {
    let start = det::flops();
    let mut x = x0.clone();
    let mut score = problem.certify(&x)?.score;
    let mut t = Trajectory { steps: 0, adopted: 0, flops: 0, reached: score <= target, score, history: Vec::new() };
    while !t.reached && t.steps < max_steps {
        let out = step(&x, &step_seed(t.steps))?;
        t.steps += 1;
        if out.objective < score {
            score = out.objective;
            x = out.params;
            t.adopted += 1;
        }
        t.history.push(score);
        t.reached = score <= target;
    }
    t.score = score;
    t.flops = det::flops().wrapping_sub(start);
    Ok(t)
}

/// What the off-chain solve needed to reach a target.
#[derive(Clone, Debug, PartialEq)]
pub struct SolveCost {
    /// Iterations until the target was met (all of them when it never was).
    pub iterations: usize,
    /// Counted flops until then.
    pub flops: u64,
    /// Whether the target was met.
    pub reached: bool,
}

/// Runs [`Problem::solve`] from `x0` with `opts` and records the flops it had spent when
/// its loss first met `target` (the solve's score is its loss for every kind so far).
///
/// # Errors
/// The solve fails.
pub fn solve_to(
    problem: &dyn Problem,
    x0: &Params,
    target: f64,
    opts: &SolveOpts,
) -> Result<(SolveCost, Params), ProblemError> {
    let start = det::flops();
    let mut hit: Option<(usize, u64)> = None;
    let opts = SolveOpts { x0: Some(x0.clone()), ..opts.clone() };
    let (x, info) = problem.solve(&opts, &mut |r| {
        if hit.is_none() && r.loss <= target {
            hit = Some((r.iter, det::flops().wrapping_sub(start)));
        }
    })?;
    let total = det::flops().wrapping_sub(start);
    let cost = match hit {
        Some((iterations, flops)) => SolveCost { iterations, flops, reached: true },
        None => SolveCost { iterations: info.iterations, flops: total, reached: false },
    };
    Ok((cost, x))
}

/// A target `fraction` of the way from the best score a full solve reaches (`best`) back
/// to the start's score: `best + fraction·(start − best)`.
pub fn relative_target(start: f64, best: f64, fraction: f64) -> f64 {
    best + fraction * (start - best).max(0.0)
}
