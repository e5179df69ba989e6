//! The attention kind's mining step (DESIGN.md §3.2, v2; §3.4) and its price.
//!
//! One ticket: perturb (tag 10) and project onto the iterate balls; objective, gradient
//! and the Gauss–Newton blocks; the joint Gauss–Newton normal matrix `JᵀJ` over `(X, Y)`
//! formed exactly from its Kronecker structure (`O(n d⁴)`, [`AttentionProblem::normal_matrix`]);
//! then the Levenberg–Marquardt path: for each of the [`LM_CANDIDATES`] ridges `μ_j = μ₀·16^j`
//! (`μ₀ = 1e-6·tr(JᵀJ)/2d²` scaled by the seed's damping level, tag 11, the softmax
//! family's [`damping`], and by the relative residual, [`residual_ridge_scale`]) the full step `x − (JᵀJ + (ρ+μ_j)I)⁻¹∇L/2`, projected onto the balls
//! and evaluated; the lowest value below the start's is taken. [R] the joint
//! Levenberg–Marquardt variant of SOLVERS.md §5.4, with the accept/reject loop over `μ`
//! replaced by a fixed set of ridges so the work is constant.
//!
//! Why this step: measured with chained tickets from `X = Y = 0` against the off-chain
//! joint LM solve on planted 128x6 tasks (5 seeds, two scales, both kernels), the ridge
//! path reached the solve's loss within 300 tickets on 15 of 20 tasks, a Gauss–Newton
//! direction with 6 step lengths `4^-j` on 9, and either step preceded by an exact `Y`
//! least-squares solve on 0 and 3.
//! The problem is not convex: from `X = 0` every method, the off-chain solve included,
//! sometimes ends in a local minimum.
//!
//! # Consensus
//! The transcript absorbs, in this order: the perturbed iterate's objective, its
//! gradient, then for each candidate its direction and its objective (`+inf` when its
//! evaluation failed), and the chosen candidate's index ([`LM_CANDIDATES`] when none is
//! below the start and the output is the perturbed iterate). Every stage always runs;
//! a non-finite value or a failed factorisation is an error, never a cheap output.

use super::objective::Level;
use super::{AttentionProblem, Kernel};
use crate::compute::det::{Cholesky, count_flops, dot, math};
use crate::compute::nmr::EXP_FLOPS;
use crate::compute::problem::{
    FLOPS_PER_MWU, Params, Problem, ProblemError, Stage, StepOutput, Transcript, perturb, require_finite,
};
use crate::compute::sketch;
use crate::compute::softmax::damping;

/// Levenberg–Marquardt ridges the mining step tries, all of them: `μ_j = μ₀·16^j`,
/// `j < LM_CANDIDATES`, each a full step `x − (JᵀJ + (ρ+μ_j)I)⁻¹∇L/2`.
pub const LM_CANDIDATES: usize = 6;
/// `log2` of the ratio between consecutive candidate ridges.
pub const LM_RIDGE_STEP_LOG2: usize = 4;

/// The `j`-th candidate's ridge multiplier, `2^(LM_RIDGE_STEP_LOG2·j)`.
///
/// # Consensus
/// Part of every attention ticket step.
pub fn lm_ridge_factor(j: usize) -> f64 {
    (1u64 << (LM_RIDGE_STEP_LOG2 * j)) as f64
}

/// `log2` of the smallest factor [`residual_ridge_scale`] applies to the base ridge.
pub const RESIDUAL_RIDGE_FLOOR_LOG2: i32 = 16;

/// The factor on the base ridge: the relative residual `√(2L/‖B‖²_F)` clamped to
/// `[2^-RESIDUAL_RIDGE_FLOOR_LOG2, 1]` (`1` when `B = 0`). [R] a residual-scaled
/// Levenberg–Marquardt parameter in the manner of Yamashita and Fukushima (`μ ∝ ‖r‖`),
/// so the ridge fades as the fit nears an exact one and the step tends to the
/// Gauss–Newton step, where convergence is fastest; the floor keeps the shifted normal
/// matrix well inside what the Cholesky factorisation resolves.
///
/// Measured with chained tickets from `X = Y = 0` on 60 planted tasks (both kernels,
/// both scales, n in {64, 128}, d in {4, 6}): the same 47 tasks reached the off-chain
/// solve's loss as with the unscaled ridge, with a geometric-mean ratio of ticket work to
/// solve work of 1.61 against 2.06; floors of 2^-16 to 2^-30 gave identical results.
///
/// # Consensus
/// Part of every attention ticket step; `L` is the perturbed iterate's objective.
pub fn residual_ridge_scale(objective: f64, b_norm2: f64) -> f64 {
    if !(b_norm2 > 0.0) {
        return 1.0;
    }
    let floor = 1.0 / (1u64 << RESIDUAL_RIDGE_FLOOR_LOG2) as f64;
    math::sqrt(2.0 * objective / b_norm2).clamp(floor, 1.0)
}

/// Fixed per-step overhead in priced flops (allocations of the per-block buffers, the
/// transcript's SHA-256, the random streams' set-up), per kernel `[softmax, linear]`;
/// fitted with [`ATTN_CLASS_WEIGHTS_16`].
pub const ATTN_STEP_OVERHEAD_FLOPS: [u64; 2] = [627_638, 425_677];

/// Everything the price of a step depends on, known from a task spec before any data is
/// built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    /// Token rows.
    pub n: usize,
    /// Width.
    pub d: usize,
    /// The kernel.
    pub kernel: Kernel,
}

/// The flops of one step by class (the classes run at different speeds per flop, so the
/// price weighs each by its own calibrated rate, [`attention_step_cost_mwu`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttnFlopClasses {
    /// Exponentials, [`EXP_FLOPS`] each.
    pub transcendental: u64,
    /// Scalar passes over rows: residuals, normalisations, the `Qb` assembly.
    pub elementwise: u64,
    /// Matrix products (`det::gemm`, `syrk`).
    pub gemm: u64,
    /// The Cholesky factorisation and its solves.
    pub factor: u64,
    /// Token rows visited, once per objective evaluation: the per-row loop overhead,
    /// which at `d = 2` outweighs the row's arithmetic (counted as one flop each).
    pub rows: u64,
}

impl AttnFlopClasses {
    /// Every flop, unweighted.
    pub fn total(&self) -> u64 {
        self.transcendental + self.elementwise + self.gemm + self.factor + self.rows
    }
}

/// Flops of one objective evaluation at `level`, by class.
fn eval_classes(n: u64, d: u64, kernel: Kernel, level: Level, c: &mut AttnFlopClasses) {
    let grad = level >= Level::Gradient;
    let gn = level >= Level::GaussNewton;
    c.gemm += 2 * n * d * d; // W = A3 Y
    match kernel {
        Kernel::Softmax => {
            c.gemm += 2 * n * d * d + 4 * n * n * d; // Q, Z = Q A2ᵀ, S W
            c.transcendental += n * n * EXP_FLOPS;
            c.elementwise += 3 * n * n;
            if grad {
                c.elementwise += n * d + 5 * n * n;
                c.gemm += 6 * n * n * d + 4 * n * d * d; // S A3, R Wᵀ, G_Z A2, A1ᵀ H, Mᵀ R
                c.elementwise += 2 * d * d;
            }
            if gn {
                c.elementwise += n * d * d + 2 * n * d * d;
                c.gemm += 2 * n * n * d * d + 2 * n * n * d; // S K, S A2
            }
        }
        Kernel::Linear => {
            c.gemm += 4 * n * d * d + 2 * d * d * d + 2 * n * d; // Q, P C, C, den
            c.transcendental += n * d * EXP_FLOPS;
            c.elementwise += 2 * n * d + n * d;
            if grad {
                c.gemm += 8 * n * d * d; // P E, R Cᵀ, A1ᵀ G_Q, Mᵀ R
                c.elementwise += n * d;
                c.elementwise += 4 * n * d + 2 * n * d + 2 * d * d;
            }
            if gn {
                c.elementwise += 3 * n * d * d;
            }
        }
    }
    c.rows += n;
    c.elementwise += n * d + 2 * n * d + 4 * d * d; // residual, ||R||², ||x||²
    if grad {
        c.elementwise += 4 * d * d;
    }
}

/// Flops of one consensus step of a task of this shape, by formula and class.
pub fn attention_flop_classes(shape: &AttentionShape) -> AttnFlopClasses {
    let (n, d) = (shape.n as u64, shape.d as u64);
    let (dd, p) = (d * d, 2 * d * d);
    let mut c = AttnFlopClasses::default();
    // Perturbation and projection of the start and of every candidate.
    let project = 2 * (2 * dd) + p;
    c.elementwise += 3 * p + project;
    eval_classes(n, d, shape.kernel, Level::GaussNewton, &mut c);
    // Normal matrix: Qb_j Qb_jᵀ, two Khatri–Rao products, two d² x n x d² products, MᵀM.
    c.gemm += 2 * n * d * d * d + 4 * n * dd * dd + n * d * (d + 1) + n * d;
    c.elementwise += 2 * n * dd;
    // Ridge, the halved gradient, then per candidate: factor, solve, step, projection, value.
    c.elementwise += 2 * p;
    for _ in 0..LM_CANDIDATES {
        c.factor += p * p * p / 3 + 2 * p * p;
        c.elementwise += p + project;
        eval_classes(n, d, shape.kernel, Level::Value, &mut c);
    }
    c
}

/// Calibrated weights of the flop classes, in sixteenths of a priced flop, per kernel
/// `[softmax, linear]`: fitted so that every attention case of `gradientcoin bench cost`
/// replays at the softmax family's median µs per mWU (`scripts/fit_cost.sh 20 attention 2`,
/// release build, AMD EPYC, 2026-12-03, after the SIMD Cholesky: within 1.02x of that
/// rate over the softmax-kernel cases, 1.06x over the linear ones; the fit puts the
/// softmax kernel's per-row weight at 0). The kernels get their
/// own weights: the softmax kernel's elementwise passes stream `ROW_BLOCK x n` blocks, the
/// linear kernel's run over `n x d` rows, at different speeds per flop. The exponentials
/// and the elementwise passes around them come in a fixed ratio, so the fit cannot split
/// them: the `exp` weight is held at one priced flop per counted flop. The linear
/// kernel's gemm weight is held at 1/16 (its gemms grow with the elementwise and factor
/// work on every admissible shape, and a free fit puts it at 0).
pub const ATTN_CLASS_WEIGHTS_16: [AttnFlopClasses; 2] = [
    AttnFlopClasses { transcendental: 16, elementwise: 1_200, gemm: 2, factor: 97, rows: 0 },
    AttnFlopClasses { transcendental: 16, elementwise: 1_295, gemm: 1, factor: 96, rows: 24_503 },
];

/// The price of one step of this shape in mWU: the flop classes weighted by the kernel's
/// [`ATTN_CLASS_WEIGHTS_16`], plus its fixed overhead, rounded up. Integer arithmetic only.
///
/// # Consensus
/// The cost table's entry for every attention task (DESIGN.md §3.1).
pub fn attention_step_cost_mwu(shape: &AttentionShape) -> u64 {
    let c = attention_flop_classes(shape);
    let k = match shape.kernel {
        Kernel::Softmax => 0,
        Kernel::Linear => 1,
    };
    let w = ATTN_CLASS_WEIGHTS_16[k];
    let weighted = (c.transcendental.saturating_mul(w.transcendental))
        .saturating_add(c.elementwise.saturating_mul(w.elementwise))
        .saturating_add(c.gemm.saturating_mul(w.gemm))
        .saturating_add(c.factor.saturating_mul(w.factor))
        .saturating_add(c.rows.saturating_mul(w.rows))
        .div_ceil(16);
    weighted.saturating_add(ATTN_STEP_OVERHEAD_FLOPS[k]).div_ceil(FLOPS_PER_MWU)
}

impl AttentionProblem {
    /// Flops of one step by formula, all classes unweighted.
    pub fn step_flops(&self) -> u64 {
        attention_flop_classes(&self.shape()).total()
    }

    /// The consensus ticket step (module docs), absorbing its stages into `transcript`.
    pub fn ticket_step(
        &self,
        x: &Params,
        seed: &[u8; 32],
        mut transcript: Transcript,
    ) -> Result<(StepOutput, Vec<Stage>), ProblemError> {
        self.check_iterate(x)?;
        let x = self.project(perturb(&x.0, seed, self.perturbation_floor()));
        let ev = self.eval(&x, Level::GaussNewton)?;
        let g = ev.grad.clone().expect("gradient level");
        transcript.scalar(ev.value);
        transcript.vector(&g);
        let nm = self.normal_matrix(&ev);
        let base =
            sketch::ridge(&nm) * damping(seed) * residual_ridge_scale(ev.value, dot(self.b.data(), self.b.data()));
        count_flops(g.len() as u64);
        let half: Vec<f64> = g.iter().map(|v| 0.5 * v).collect();
        let mut best: Option<(usize, f64, Vec<f64>)> = None;
        for j in 0..LM_CANDIDATES {
            let chol = Cholesky::factor_shifted(&nm, self.rho + base * lm_ridge_factor(j))?;
            let dir = chol.solve(&half);
            require_finite("search direction", &dir)?;
            transcript.vector(&dir);
            count_flops(x.len() as u64);
            let cand = self.project(x.iter().zip(&dir).map(|(xi, di)| xi - di).collect());
            let value = self.eval(&cand, Level::Value).map_or(f64::INFINITY, |e| e.value);
            transcript.scalar(value);
            if value < ev.value && best.as_ref().is_none_or(|(_, v, _)| value < *v) {
                best = Some((j, value, cand));
            }
        }
        let (index, objective, params) = best.unwrap_or((LM_CANDIDATES, ev.value, x));
        transcript.index(index as u64);
        let (digest, stages) = transcript.finish_with_log();
        Ok((StepOutput { params: Params(params), objective, digest }, stages))
    }
}
