//! The RICL kind's mining step (DESIGN.md §3.2, v2; §3.4) and its price.
//!
//! One ticket: perturb (tag 10) and clamp onto the box; the objective, the gradient and
//! the Jacobian on the full validation set; the Gauss–Newton matrix `JacᵀJac/V`; then the
//! projected Levenberg–Marquardt path: for each of the [`RICL_LM_CANDIDATES`] shifts `μ_j =
//! μ₀·16^j` (`μ₀ = 1e-6·tr(JacᵀJac/V)/m` scaled by the seed's damping level, tag 11, the
//! softmax family's [`damping`]) the full step `θ − (JacᵀJac/V + (λ + μ_j)I)⁻¹∇J`,
//! clamped onto the box and evaluated; the lowest value below the start's is taken. [R]
//! SOLVERS.md §2.2's "LM steps with the GN system", with the accept/reject loop over `μ`
//! replaced by a fixed set of shifts so the work is constant; the smallest shift is the
//! Gauss–Newton step (LARICL's step when taken from `θ = 0`).
//!
//! Why this step: not yet measured. The off-chain Levenberg–Marquardt solve, which takes
//! the same steps with an adaptive shift, reaches a projected |∇J| of 1e-8 in 40–100
//! iterations on the §2.5 biased prompts where the paper's gradient descent is still 3%
//! of the gap J(0) − J* away after 500 (`gradientcoin compute reproduce 2310.03331`); the
//! chained-ticket measurement against `solve` (`bench mining`) is still to be made.
//!
//! # Consensus
//! The transcript absorbs, in this order: the perturbed iterate's objective, its
//! gradient, then for each candidate its direction and its objective (`+inf` when its
//! evaluation failed), and the chosen candidate's index ([`RICL_LM_CANDIDATES`] when
//! none is below the start and the output is the perturbed iterate). Every stage always
//! runs; a non-finite value or a failed factorisation is an error, never a cheap output.

use super::RiclProblem;
use super::objective::Level;
use crate::compute::det::{Cholesky, count_flops};
use crate::compute::nmr::EXP_FLOPS;
use crate::compute::problem::{FLOPS_PER_MWU, Params, Problem, ProblemError, Stage, StepOutput, Transcript, perturb};
use crate::compute::sketch;
use crate::compute::softmax::damping;

/// Levenberg–Marquardt shifts the mining step tries, all of them.
pub const RICL_LM_CANDIDATES: usize = 6;
/// `log2` of the ratio between consecutive shifts.
pub const RICL_LM_STEP_LOG2: usize = 4;

/// The `j`-th candidate's shift multiplier, `2^(RICL_LM_STEP_LOG2·j)`.
///
/// # Consensus
/// Part of every ricl ticket step.
pub fn ricl_lm_factor(j: usize) -> f64 {
    (1u64 << (RICL_LM_STEP_LOG2 * j)) as f64
}

/// Everything the price of a step depends on, known from a task spec before any data is
/// built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RiclShape {
    /// Prompt examples (the parameters).
    pub m: usize,
    /// Validation rows.
    pub v: usize,
}

/// The flops of one step by class (each class is priced at its own calibrated rate,
/// [`ricl_step_cost_mwu`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RiclFlopClasses {
    /// Exponentials, [`EXP_FLOPS`] each.
    pub transcendental: u64,
    /// Scalar passes: shifts, normalisations, residuals, the Jacobian.
    pub elementwise: u64,
    /// Products (`dot`, `gemv`, `syrk`).
    pub gemm: u64,
    /// The Cholesky factorisations and their solves.
    pub factor: u64,
}

impl RiclFlopClasses {
    /// Every flop, unweighted.
    pub fn total(&self) -> u64 {
        self.transcendental + self.elementwise + self.gemm + self.factor
    }
}

/// Flops of one objective evaluation at `level`, by class.
fn eval_classes(m: u64, v: u64, level: Level, c: &mut RiclFlopClasses) {
    c.transcendental += v * m * EXP_FLOPS;
    c.elementwise += 3 * v * m + v + 4;
    c.gemm += 2 * v * m + 2 * v + 2 * m;
    if level >= Level::Gradient {
        c.elementwise += 2 * v * m + 3 * m;
        c.gemm += 2 * v * m;
    }
}

/// Flops of one consensus step of a task of this shape, by formula and class.
pub fn ricl_flop_classes(shape: &RiclShape) -> RiclFlopClasses {
    let (m, v) = (shape.m as u64, shape.v as u64);
    let mut c = RiclFlopClasses::default();
    c.elementwise += 3 * m + m; // perturbation, box
    eval_classes(m, v, Level::Gradient, &mut c);
    c.gemm += v * m * (m + 1) + v * m; // syrk
    c.elementwise += m * m + m + m; // 1/V scaling, ridge trace, negated gradient
    for _ in 0..RICL_LM_CANDIDATES {
        c.factor += m * m * m / 3 + 2 * m * m;
        c.elementwise += 2 * m; // step, box
        eval_classes(m, v, Level::Value, &mut c);
    }
    c
}

/// Fixed per-step overhead in priced flops (allocations, the transcript's SHA-256, the
/// random streams' set-up). Provisional: not yet fitted by `bench cost`.
pub const RICL_STEP_OVERHEAD_FLOPS: u64 = 60_000;

/// Weights of the flop classes, in sixteenths of a priced flop. Provisional (one priced
/// flop per counted flop): the ricl cases have not yet joined the `bench cost` sweep.
pub const RICL_CLASS_WEIGHTS_16: RiclFlopClasses =
    RiclFlopClasses { transcendental: 16, elementwise: 16, gemm: 16, factor: 16 };

/// The price of one step of this shape in mWU: the flop classes weighted by
/// [`RICL_CLASS_WEIGHTS_16`], plus the fixed overhead, rounded up. Integer arithmetic only.
///
/// # Consensus
/// The cost table's entry for every ricl task (DESIGN.md §3.1).
pub fn ricl_step_cost_mwu(shape: &RiclShape) -> u64 {
    let c = ricl_flop_classes(shape);
    let w = RICL_CLASS_WEIGHTS_16;
    let weighted = (c.transcendental.saturating_mul(w.transcendental))
        .saturating_add(c.elementwise.saturating_mul(w.elementwise))
        .saturating_add(c.gemm.saturating_mul(w.gemm))
        .saturating_add(c.factor.saturating_mul(w.factor))
        .div_ceil(16);
    weighted.saturating_add(RICL_STEP_OVERHEAD_FLOPS).div_ceil(FLOPS_PER_MWU)
}

impl RiclProblem {
    /// Flops of one step by formula, all classes unweighted.
    pub fn step_flops(&self) -> u64 {
        ricl_flop_classes(&self.shape()).total()
    }

    /// The consensus ticket step (module docs), absorbing its stages into `transcript`.
    pub fn ticket_step(
        &self,
        x: &Params,
        seed: &[u8; 32],
        mut transcript: Transcript,
    ) -> Result<(StepOutput, Vec<Stage>), ProblemError> {
        self.check_iterate(x)?;
        let theta = self.project(perturb(&x.0, seed, self.perturbation_floor()));
        let ev = self.eval(&theta, Level::Gradient)?;
        let g = ev.grad.clone().expect("gradient level");
        transcript.scalar(ev.value);
        transcript.vector(&g);
        let nm = self.normal_matrix(&ev);
        let base = sketch::ridge(&nm) * damping(seed);
        count_flops(g.len() as u64);
        let neg: Vec<f64> = g.iter().map(|v| -v).collect();
        let mut best: Option<(usize, f64, Vec<f64>)> = None;
        for j in 0..RICL_LM_CANDIDATES {
            let chol = Cholesky::factor_shifted(&nm, self.lambda + base * ricl_lm_factor(j))?;
            let dir = chol.solve(&neg);
            if let Some(index) = dir.iter().position(|v| !v.is_finite()) {
                return Err(ProblemError::NonFinite { what: "search direction", index });
            }
            transcript.vector(&dir);
            count_flops(theta.len() as u64);
            let cand = self.project(theta.iter().zip(&dir).map(|(t, d)| t + d).collect());
            let value = self.eval(&cand, Level::Value).map_or(f64::INFINITY, |e| e.value);
            transcript.scalar(value);
            if value < ev.value && best.as_ref().is_none_or(|(_, v, _)| value < *v) {
                best = Some((j, value, cand));
            }
        }
        let (index, objective, params) = best.unwrap_or((RICL_LM_CANDIDATES, ev.value, theta));
        transcript.index(index as u64);
        let (digest, stages) = transcript.finish_with_log();
        Ok((StepOutput { params: Params(params), objective, digest }, stages))
    }
}
