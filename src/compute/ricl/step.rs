//! The RICL kind's mining step (DESIGN.md §3.2, v2; §3.4) and its price.
//!
//! One ticket ([`RICL_TICKET_RULE`]): perturb (tag 10) and clamp onto the box; the
//! objective, the gradient and the Jacobian on the full validation set; the Gauss–Newton
//! matrix `JacᵀJac/V`; then the projected Levenberg–Marquardt path: for each of the
//! [`RICL_LM_CANDIDATES`] shifts `μ_j = μ₀·64^j` (`μ₀ = 1e-6·tr(JacᵀJac/V)/m` scaled by the
//! seed's damping level, tag 11, the softmax family's [`damping`]) the full step `θ −
//! (JacᵀJac/V + (λ + μ_j)I)⁻¹∇J`, clamped onto the box and evaluated; then the exact
//! Hessian `H` of the data term ([`RiclProblem::hessian_from`], from the Gauss–Newton
//! matrix) and, for the [`RICL_NEWTON_CANDIDATES`] smallest shifts, the Newton step `θ −
//! (H + (λ + μ_j)I)⁻¹∇J`, clamped and evaluated the same way. The lowest value below the
//! start's is taken. [R] SOLVERS.md §2.2's "LM steps with the GN system", with the
//! accept/reject loop over `μ` replaced by a fixed set of shifts so the work is constant;
//! the smallest shift is the Gauss–Newton step (LARICL's step when taken from `θ = 0`).
//!
//! `H` is indefinite away from a minimum. Its factorisation
//! ([`Cholesky::factor_flagged`]) does the same work whatever the matrix: a pivot that is
//! not positive is replaced and flagged, and the flagged candidate is stepped with a zero
//! direction and scored `+inf`, so it costs what any candidate costs and is never taken.
//!
//! Why this step (`gradientcoin bench mining --only ricl`, counted flops of chained
//! tickets from `θ = 0` to `1e-14` of the way back from the off-chain solve's score,
//! 2026-12-03, eleven shapes: the paper's biased prompt on eight seeds, its balanced one on
//! two, a 128-example prompt): 4 Gauss–Newton shifts a factor 64 apart with 3 Newton
//! candidates reach 10 of the 11 targets at 0.87–2.01x the solve's flops (median 1.33x).
//! With 2 Newton candidates the worst is 2.32x, with 1 2.52x, and without any 7.97x:
//! near a minimum Gauss–Newton converges only linearly on a non-zero residual, as the
//! off-chain solve's Newton tail showed (0.94 per iteration at `m = 256, V = 4096`). Other
//! shift ratios (4x32, 4x128, 5x16, 3x256, all with Newton candidates) reach fewer targets
//! or need 2.5–35x on some; the paper's gradient descent as a ticket reaches 1. The
//! eleventh shape (seed 3) ends every rule of this family in another local minimum than
//! the solve's (projected |∇J| 1e-10, `J` 3% above the solve's): the objective is not
//! convex. Single shapes move by up to 2x when the step's bits change, so the ranking of
//! close rules is within the noise; the rules far apart are not.
//!
//! # Consensus
//! The transcript absorbs, in this order: the perturbed iterate's objective, its
//! gradient, then for each candidate (the Gauss–Newton ones, then the Newton ones) its
//! direction and its objective (`+inf` when its evaluation or its factorisation failed),
//! and the chosen candidate's index ([`RiclStepRule::candidates`] when none is below the
//! start and the output is the perturbed iterate). Every stage always runs; a non-finite
//! value, or a failed factorisation of the Gauss–Newton matrix (positive definite by
//! construction), is an error, never a cheap output.

use super::RiclProblem;
use super::objective::Level;
use crate::compute::det::{Cholesky, count_flops};
use crate::compute::nmr::EXP_FLOPS;
use crate::compute::problem::{
    FLOPS_PER_MWU, Params, Problem, ProblemError, Stage, StepOutput, Transcript, perturb, require_finite,
};
use crate::compute::sketch;
use crate::compute::softmax::damping;

/// Levenberg–Marquardt shifts the mining step tries, all of them.
pub const RICL_LM_CANDIDATES: usize = 4;
/// `log2` of the ratio between consecutive shifts.
pub const RICL_LM_STEP_LOG2: usize = 6;
/// Newton candidates: the smallest shifts applied to the exact Hessian as well.
pub const RICL_NEWTON_CANDIDATES: usize = 3;

/// The smallest step length of [`RiclStepRule::GradientPath`] (the paper's `η = 10`,
/// SOLVERS.md §2.2, sits at its third candidate).
const GD_PATH_ETA0: f64 = 0.625;

/// How a ricl step chooses its candidates (DESIGN.md §3.4: the ticket step is the
/// deterministic step most useful per flop, chosen by measurement, `bench mining`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RiclStepRule {
    /// Projected Levenberg–Marquardt: `candidates` shifts `μ₀·2^(log2_ratio·j)` on the
    /// Gauss–Newton system, each a Cholesky factorisation and an evaluation.
    LmPath {
        /// Shifts tried.
        candidates: usize,
        /// `log2` of the ratio between consecutive shifts.
        log2_ratio: usize,
        /// Newton candidates: the first `newton` shifts also applied to the exact Hessian
        /// ([`RiclProblem::hessian_from`]); one whose shifted Hessian is not positive
        /// definite is factored all the same and scored `+inf`.
        newton: usize,
    },
    /// Projected gradient descent: `candidates` step lengths `η₀·4^j` along `−∇J`
    /// (no Gauss–Newton matrix): the paper's algorithm as a ticket.
    GradientPath {
        /// Step lengths tried.
        candidates: usize,
    },
}

impl RiclStepRule {
    /// Every rule `bench mining` measures, the consensus one first.
    pub const ALL: [RiclStepRule; 8] = [
        RICL_TICKET_RULE,
        RiclStepRule::LmPath { candidates: 4, log2_ratio: 6, newton: 2 },
        RiclStepRule::LmPath { candidates: 4, log2_ratio: 6, newton: 1 },
        RiclStepRule::LmPath { candidates: 5, log2_ratio: 6, newton: 3 },
        RiclStepRule::LmPath { candidates: 3, log2_ratio: 8, newton: 2 },
        RiclStepRule::LmPath { candidates: 4, log2_ratio: 6, newton: 0 },
        RiclStepRule::LmPath { candidates: 6, log2_ratio: 4, newton: 0 },
        RiclStepRule::GradientPath { candidates: 6 },
    ];

    /// Candidates tried (each one evaluation of the objective).
    pub fn candidates(self) -> usize {
        match self {
            RiclStepRule::LmPath { candidates, newton, .. } => candidates + newton,
            RiclStepRule::GradientPath { candidates } => candidates,
        }
    }

    /// Stable name, e.g. `lm-path 6x16` or `lm-path 4x64+newton 2`.
    pub fn name(self) -> String {
        match self {
            RiclStepRule::LmPath { candidates, log2_ratio, newton: 0 } => {
                format!("lm-path {candidates}x{}", 1u64 << log2_ratio)
            }
            RiclStepRule::LmPath { candidates, log2_ratio, newton } => {
                format!("lm-path {candidates}x{}+newton {newton}", 1u64 << log2_ratio)
            }
            RiclStepRule::GradientPath { candidates } => format!("gradient-path {candidates}x4"),
        }
    }
}

/// The rule of every consensus ricl ticket.
///
/// # Consensus
/// Every ricl ticket step is this rule.
pub const RICL_TICKET_RULE: RiclStepRule = RiclStepRule::LmPath {
    candidates: RICL_LM_CANDIDATES,
    log2_ratio: RICL_LM_STEP_LOG2,
    newton: RICL_NEWTON_CANDIDATES,
};

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
    c.transcendental += m * EXP_FLOPS;
    c.elementwise += 3 * v * m + v + 4 + 2 * m;
    c.gemm += 2 * v * m + 2 * v + 2 * m;
    if level >= Level::Gradient {
        c.elementwise += 2 * v * m + 3 * m;
        c.gemm += 2 * v * m;
    }
}

/// Flops of one consensus step of a task of this shape, by formula and class.
pub fn ricl_flop_classes(shape: &RiclShape) -> RiclFlopClasses {
    rule_flop_classes(RICL_TICKET_RULE, shape)
}

/// Flops of one step by `rule`, by formula and class.
pub fn rule_flop_classes(rule: RiclStepRule, shape: &RiclShape) -> RiclFlopClasses {
    let (m, v) = (shape.m as u64, shape.v as u64);
    let mut c = RiclFlopClasses::default();
    c.elementwise += 3 * m + m; // perturbation, box
    eval_classes(m, v, Level::Gradient, &mut c);
    let factorisations = match rule {
        RiclStepRule::LmPath { candidates, newton, .. } => {
            c.gemm += v * m * (m + 1) + v * m; // syrk
            c.elementwise += m * m + m + m; // 1/V scaling, ridge trace, negated gradient
            if newton > 0 {
                // diag(r)Jac, M = Pᵀdiag(r)Jac, Jacᵀr, the entries.
                c.gemm += 2 * m * v * m + 2 * v * m;
                c.elementwise += v * m + 4 * m * m + m;
            }
            candidates + newton
        }
        RiclStepRule::GradientPath { .. } => 0,
    };
    for _ in 0..factorisations {
        c.factor += m * m * m / 3 + 2 * m * m;
    }
    for _ in 0..rule.candidates() {
        c.elementwise += 2 * m; // step, box
        eval_classes(m, v, Level::Value, &mut c);
    }
    if let RiclStepRule::GradientPath { candidates } = rule {
        c.elementwise += candidates as u64 * m; // the scaled gradients
    }
    c
}

/// Fixed per-step overhead in priced flops (allocations, the transcript's SHA-256, the
/// random streams' set-up), fitted with [`RICL_CLASS_WEIGHTS_16`].
pub const RICL_STEP_OVERHEAD_FLOPS: u64 = 275_643;

/// Calibrated weights of the flop classes, in sixteenths of a priced flop: fitted so that
/// every ricl case of `gradientcoin bench cost` replays at the softmax family's median µs
/// per mWU (`scripts/fit_cost.sh 20 ricl 2`; release build, AMD EPYC, 2026-12-03: every
/// ricl case within 1.15x of that rate, spread 1.33 over them). An evaluation takes only
/// `m` exponentials (the scores' are computed once per task), too few for the fit to see:
/// their weight is held at a `libm` `exp`'s measured 16 ns. The elementwise passes (a
/// product and a division per weight) cost 26 priced flops per counted flop, the
/// Cholesky factorisations 7 (SIMD across the rows of a column, `det::kernels`).
pub const RICL_CLASS_WEIGHTS_16: RiclFlopClasses =
    RiclFlopClasses { transcendental: 260, elementwise: 422, gemm: 10, factor: 106 };

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
        transcript: Transcript,
    ) -> Result<(StepOutput, Vec<Stage>), ProblemError> {
        self.step_with(RICL_TICKET_RULE, x, seed, transcript)
    }

    /// One step by `rule`: the consensus ticket for [`RICL_TICKET_RULE`], the others
    /// measured by `bench mining` only (their work is not what [`ricl_step_cost_mwu`]
    /// prices).
    pub fn step_with(
        &self,
        rule: RiclStepRule,
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
        let candidates = rule.candidates();
        let mut best: Option<(usize, f64, Vec<f64>)> = None;
        // A candidate whose factorisation failed (`failed`) is stepped with a zero direction
        // and scored `+inf`: the same work as any other, and never taken.
        let mut try_candidate =
            |j: usize, mut dir: Vec<f64>, failed: bool, transcript: &mut Transcript| -> Result<(), ProblemError> {
                if failed {
                    dir.fill(0.0);
                }
                require_finite("search direction", &dir)?;
                transcript.vector(&dir);
                count_flops(theta.len() as u64);
                let cand = self.project(theta.iter().zip(&dir).map(|(t, d)| t + d).collect());
                let value = self.eval(&cand, Level::Value).map_or(f64::INFINITY, |e| e.value);
                let value = if failed { f64::INFINITY } else { value };
                transcript.scalar(value);
                if value < ev.value && best.as_ref().is_none_or(|(_, v, _)| value < *v) {
                    best = Some((j, value, cand));
                }
                Ok(())
            };
        match rule {
            RiclStepRule::LmPath { candidates, log2_ratio, newton } => {
                let nm = self.normal_matrix(&ev);
                let base = sketch::ridge(&nm) * damping(seed);
                count_flops(g.len() as u64);
                let neg: Vec<f64> = g.iter().map(|v| -v).collect();
                let shift = |j: usize| self.lambda + base * (1u64 << (log2_ratio * j)) as f64;
                for j in 0..candidates {
                    let chol = Cholesky::factor_shifted(&nm, shift(j))?;
                    try_candidate(j, chol.solve(&neg), false, &mut transcript)?;
                }
                if newton > 0 {
                    let h = self.hessian_from(&ev, &nm);
                    for j in 0..newton {
                        let (chol, failed) = Cholesky::factor_flagged(&h, shift(j))?;
                        try_candidate(candidates + j, chol.solve(&neg), failed.is_some(), &mut transcript)?;
                    }
                }
            }
            RiclStepRule::GradientPath { .. } => {
                let eta0 = GD_PATH_ETA0 * damping(seed).recip();
                for j in 0..candidates {
                    let eta = eta0 * (1u64 << (2 * j)) as f64;
                    count_flops(g.len() as u64);
                    try_candidate(j, g.iter().map(|v| -eta * v).collect(), false, &mut transcript)?;
                }
            }
        }
        let (index, objective, params) = best.unwrap_or((candidates, ev.value, theta));
        transcript.index(index as u64);
        let (digest, stages) = transcript.finish_with_log();
        Ok((StepOutput { params: Params(params), objective, digest }, stages))
    }
}
