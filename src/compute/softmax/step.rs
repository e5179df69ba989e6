//! The softmax family's mining step (DESIGN.md §3.2, v2; §3.4) and its price.
//!
//! One ticket ([`TICKET_RULE`], exact Gauss–Newton): perturb (tag 10) and project onto
//! the box; objective and gradient; the Gauss–Newton matrix `H = Jᵀdiag(m)J +
//! Aᵀdiag(w²)A [+ 2γ/ℓ₁³ g₁g₁ᵀ]` formed exactly (one weighted Gram of `A` and a rank-2
//! term), with a ridge scaled by the seed's damping level ([`damping`]); the direction
//! `H⁻¹∇L`; every one of the
//! [`LINE_SEARCH_CANDIDATES`] step lengths [`step_length`] evaluated (projected onto the
//! box), the best satisfying Armijo taken. [R] SOLVERS.md §0.5 items 2–3 with the
//! Gauss–Newton matrix formed exactly.
//!
//! Why exact: measured by `gradientcoin bench mining` (chained tickets from `x = 0` to
//! the target against the off-chain `solve`), exact Gauss–Newton reaches the target in a
//! handful of steps, while the sampled rules ([`StepRule::CountSketchSampled`], the v2
//! step of issue 8, and [`StepRule::JlSampled`]) converge linearly and need several times
//! the flops. The sampled rules stay here as the measured alternatives; only
//! [`TICKET_RULE`] is consensus.
//!
//! # Consensus
//! The transcript absorbs, in this order: the perturbed iterate's objective, its
//! gradient, the direction, each candidate's objective (`+inf` for a candidate outside
//! the map's domain), and the chosen candidate's index ([`LINE_SEARCH_CANDIDATES`] when
//! none passes Armijo and the output is the perturbed iterate). Every stage always runs;
//! a non-finite value or a failed factorisation is an error, never a cheap output.

use super::objective::add_rank1;
use super::{
    ARMIJO_C1, DAMPED_ONE_IN, DAMPING_LEVELS, DAMPING_STEP_LOG2, LINE_SEARCH_CANDIDATES, LINE_SEARCH_SHRINK_LOG2,
    SAMPLE_BETA, SKETCH_ROWS_PER_DIM, SoftmaxProblem,
};
use crate::compute::copyright::CopyrightVariant;
use crate::compute::det::rng::tags;
use crate::compute::det::{self, Cholesky, DetRng, Mat, count_flops};
use crate::compute::nmr::Phi;
use crate::compute::problem::{
    FLOPS_PER_MWU, Params, Problem, ProblemError, Stage, StepOutput, Transcript, perturb, require_finite,
};
use crate::compute::sketch;

/// How a ticket step builds its curvature matrix (DESIGN.md §3.4: the ticket step is the
/// deterministic step most useful per flop, chosen by measurement).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepRule {
    /// `H = MᵀM` formed exactly (`rows·d²` flops): the consensus ticket step.
    ExactGaussNewton,
    /// `K = 8d` rows of `M` drawn by CountSketch leverage scores (`||L⁻¹mᵢ||²` for every
    /// row, `rows·d²` flops of triangular solves): the issue-8 step, measured only.
    CountSketchSampled,
    /// `K = 8d` rows drawn by JL-approximated leverage scores (Drineas et al. 2012:
    /// `||mᵢ L⁻ᵀ Π||²` with a `d x` [`sketch::JL_COLS`] sign matrix, `rows·d·k` flops):
    /// measured only.
    JlSampled,
}

impl StepRule {
    /// Every rule, the consensus one first.
    pub const ALL: [StepRule; 3] = [StepRule::ExactGaussNewton, StepRule::CountSketchSampled, StepRule::JlSampled];

    /// Stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            StepRule::ExactGaussNewton => "exact-gauss-newton",
            StepRule::CountSketchSampled => "countsketch-sampled",
            StepRule::JlSampled => "jl-sampled",
        }
    }
}

/// The rule of every consensus ticket step of the family.
pub const TICKET_RULE: StepRule = StepRule::ExactGaussNewton;

/// The perturbation floor as a fraction of the iterate box's half-width (`2^-10`).
pub const PERTURB_FLOOR_OF_BOX: f64 = 1.0 / 1024.0;

/// Fixed per-step overhead in priced flops (allocation, the transcript's SHA-256, the
/// random streams' set-up), added to every step's price so small shapes pay for it;
/// fitted with [`CLASS_WEIGHTS_16`].
pub const STEP_OVERHEAD_FLOPS: u64 = 105_152;

/// Everything the cost of a step depends on: known from a task spec before any data is
/// built, so admission can refuse an over-priced task cheaply.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepShape {
    /// Data rows.
    pub n: usize,
    /// Parameters.
    pub d: usize,
    /// The map φ.
    pub phi: Phi,
    /// Whether any row has a non-zero regulariser weight.
    pub has_reg: bool,
    /// The copyright variant and the number of protected rows, if the option is on.
    pub copyright: Option<(CopyrightVariant, usize)>,
}

/// The flops of one step by formula, split by the kind of work (DESIGN.md §3.1): the
/// classes run at very different speeds per flop, so the price weighs each by its own
/// calibrated rate ([`step_cost_mwu`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlopClasses {
    /// Evaluations of φ (the exponentials), counted as [`crate::compute::nmr::EXP_FLOPS`] each.
    pub transcendental: u64,
    /// Other per-row scalar passes: residuals, normalisations, scans.
    pub elementwise: u64,
    /// Matrix-vector work, O(n·d): products with `A`, building the Gauss–Newton rows.
    pub level2: u64,
    /// The Gauss–Newton Gram matrix (`syrk` of every row of `M`), O(rows·d²).
    pub gram: u64,
    /// Factorisations and small dense solves, O(d³).
    pub factor: u64,
}

impl FlopClasses {
    /// Every flop, unweighted (compared with the kernels' own count in tests).
    pub fn total(&self) -> u64 {
        self.transcendental + self.elementwise + self.level2 + self.gram + self.factor
    }
}

/// Flops of one consensus step ([`TICKET_RULE`]) of a task of this shape, by formula and
/// class (leading terms of every kernel and elementwise pass the step performs).
pub fn step_flop_classes(shape: &StepShape) -> FlopClasses {
    let (n, d) = (shape.n as u64, shape.d as u64);
    let phi = shape.phi.eval_flops(1);
    let cr = shape.copyright;
    let n1 = cr.map_or(0, |c| c.1 as u64);
    let evals = 1 + LINE_SEARCH_CANDIDATES as u64;
    let mut c = FlopClasses::default();
    // One objective value: gemv, φ, term, regulariser, and the ℓ₁ term; `evals` of them.
    let term = |m: u64| 8 * m;
    let (prot_phi, prot_elem) = match cr.map(|c| c.0) {
        None => (0, 0),
        Some(CopyrightVariant::PerBlock) => (n1 * phi, term(n1)),
        Some(_) => (0, term(n)),
    };
    c.transcendental += evals * (n * phi + prot_phi);
    c.elementwise += evals * (term(n) + 3 * n + prot_elem);
    c.level2 += evals * 2 * n * d;
    // Gradient (and the ℓ₁ gradient).
    c.elementwise += 6 * n;
    c.level2 += 2 * n * d;
    if let Some((variant, _)) = cr {
        let m = if variant == CopyrightVariant::PerBlock { n1 } else { n };
        c.elementwise += 4 * m + 2 * n;
        c.level2 += 2 * n * d;
    }
    // The Gauss–Newton matrix: weights, one weighted Gram of A, q and r, the rank-2 term.
    c.elementwise += 8 * n;
    c.gram += n * d * (d + 1) + n * d;
    c.level2 += 4 * n * d;
    c.factor += 4 * d * (d + 1);
    // The box's active set, ridge, factor, solve, (rank-1 term), the direction's dot
    // product.
    c.elementwise += 3 * d;
    c.factor += d * d * d / 3 + 2 * d * d + if cr.is_some() { d * (d + 1) } else { 0 };
    c.level2 += 2 * d;
    // Candidates (axpy and projection) and the perturbation with its projection.
    c.level2 += LINE_SEARCH_CANDIDATES as u64 * 4 * d + 5 * d;
    c
}

/// Flops of one step of a task of this shape, by formula (all classes, unweighted).
pub fn step_flops(shape: &StepShape) -> u64 {
    step_flop_classes(shape).total()
}

/// Calibrated weights of the flop classes, in sixteenths of a priced flop (a flop of the
/// Gauss–Newton Gram is 16): fitted to minimise the spread of replay time per mWU over the
/// sweep of `gradientcoin bench cost --classes` (release build with the binary's mimalloc
/// allocator, AMD EPYC, 2026-12-03, after the SIMD Cholesky: `scripts/fit_cost.sh 20
/// softmax 3`, each case at its fastest of three sweeps, spread 1.43 on them). The fit
/// cannot go lower: the softmax kind replays up to 1.4x slower than the ResNet kind on
/// shapes with the same flops by class (32x2, 256x8, 64x16), and both share the weights.
/// The counted-flop formula itself stays unweighted. The fit is ill-conditioned (several
/// classes grow together with n·d; the elementwise weight absorbs the per-row memory
/// passes; single sweeps put the factor weight anywhere from 17 to 134), so the weights are
/// a good price, not a measurement of each class.
pub const CLASS_WEIGHTS_16: FlopClasses =
    FlopClasses { transcendental: 427, elementwise: 2, level2: 65, gram: 16, factor: 134 };

/// The price of one step of this shape in mWU: the flop classes weighted by
/// [`CLASS_WEIGHTS_16`], plus the fixed overhead, rounded up. Integer arithmetic only.
///
/// # Consensus
/// The cost table's entry for every task of the family (DESIGN.md §3.1).
pub fn step_cost_mwu(shape: &StepShape) -> u64 {
    let c = step_flop_classes(shape);
    let w = CLASS_WEIGHTS_16;
    let weighted = (c.transcendental * w.transcendental
        + c.elementwise * w.elementwise
        + c.level2 * w.level2
        + c.gram * w.gram
        + c.factor * w.factor)
        .div_ceil(16);
    (weighted + STEP_OVERHEAD_FLOPS).div_ceil(FLOPS_PER_MWU)
}

impl SoftmaxProblem {
    /// Clamps every coordinate into the iterate box (constant work).
    pub fn project(&self, mut x: Vec<f64>) -> Vec<f64> {
        let b = self.x_bound;
        count_flops(2 * x.len() as u64);
        for v in &mut x {
            *v = v.max(-b).min(b);
        }
        x
    }

    /// The consensus ticket step (module docs), absorbing its stages into `transcript`.
    pub fn ticket_step(
        &self,
        x: &Params,
        seed: &[u8; 32],
        transcript: Transcript,
    ) -> Result<(StepOutput, Vec<Stage>), ProblemError> {
        self.step_with(TICKET_RULE, x, seed, transcript)
    }

    /// One ticket step by `rule` (only [`TICKET_RULE`] is consensus; the others are the
    /// measured alternatives of `bench mining`).
    pub fn step_with(
        &self,
        rule: StepRule,
        x: &Params,
        seed: &[u8; 32],
        mut transcript: Transcript,
    ) -> Result<(StepOutput, Vec<Stage>), ProblemError> {
        self.check_iterate(x)?;
        let d = self.dim();
        let x = self.project(perturb(&x.0, seed, self.perturbation_floor()));
        let ev = self.eval(&x)?;
        let (g, g1) = self.gradient(&ev);
        require_finite("gradient", &g)?;
        transcript.scalar(ev.value);
        transcript.vector(&g);
        let mut h = Mat::zeros(d, d);
        match rule {
            StepRule::ExactGaussNewton => h = self.gn_gram(&ev),
            StepRule::CountSketchSampled | StepRule::JlSampled => {
                let m = self.gn_rows(&ev);
                let sketch_rows = (SKETCH_ROWS_PER_DIM * d).min(m.rows());
                let lev = if rule == StepRule::JlSampled {
                    sketch::jl_leverage(&m, sketch_rows, seed)?
                } else {
                    sketch::countsketch_leverage(&m, sketch_rows, seed)?
                };
                let s = sketch::sample_rows(&m, &lev, SAMPLE_BETA * d, seed)
                    .map_err(|e| ProblemError::Degenerate { what: "sum of leverage scores", value: e.total })?;
                det::syrk(s.view(), None, &mut h);
            }
        }
        if let (Some(c), Some(g1), Some(l1)) = (&self.copyright, &g1, ev.l1()) {
            add_rank1(&mut h, 2.0 * c.spec.gamma / (l1 * l1 * l1), g1);
        }
        // Projected Newton on the box (Bertsekas 1982): a coordinate at its bound whose
        // descent direction points out of the box is held fixed (its row and column of H
        // become the identity's, its gradient entry 0), so the step moves the free ones
        // instead of projecting a full step back. Constant work: one pass over d.
        let mut g_free = g.clone();
        let b = self.x_bound();
        count_flops(2 * d as u64);
        for j in 0..d {
            let outward = (x[j] >= b && g[j] < 0.0) || (x[j] <= -b && g[j] > 0.0);
            if outward {
                g_free[j] = 0.0;
                for k in 0..d {
                    h.set(j, k, 0.0);
                    h.set(k, j, 0.0);
                }
                h.set(j, j, 1.0);
            }
        }
        // Only the consensus rule is damped: the sampled rules stay issue 8's measured step.
        let damp = if rule == StepRule::ExactGaussNewton { damping(seed) } else { 1.0 };
        let chol = Cholesky::factor_shifted(&h, sketch::ridge(&h) * damp)?;
        let dir = chol.solve(&g_free);
        require_finite("search direction", &dir)?;
        transcript.vector(&dir);
        let slope = det::dot(&g_free, &dir);
        let mut best: Option<(usize, f64, Vec<f64>)> = None;
        for j in 0..LINE_SEARCH_CANDIDATES {
            let t = step_length(j);
            count_flops(2 * d as u64);
            let cand = self.project(x.iter().zip(&dir).map(|(xi, di)| (-t).mul_add(*di, *xi)).collect());
            // A candidate outside the map's domain (α <= 0, a vanishing protected loss)
            // is not a step; its evaluation still ran to the end (`eval`).
            let value = self.eval(&cand).map_or(f64::INFINITY, |e| e.value);
            transcript.scalar(value);
            let armijo = value <= (-(ARMIJO_C1 * t)).mul_add(slope, ev.value);
            if armijo && best.as_ref().is_none_or(|(_, v, _)| value < *v) {
                best = Some((j, value, cand));
            }
        }
        let (index, objective, params) = best.unwrap_or((LINE_SEARCH_CANDIDATES, ev.value, x));
        transcript.index(index as u64);
        let (digest, stages) = transcript.finish_with_log();
        Ok((StepOutput { params: Params(params), objective, digest }, stages))
    }
}

/// The ridge multiplier of the ticket with `seed` (stream tag 11, one draw): 1 with
/// probability `1 − 1/DAMPED_ONE_IN`, else `2^(DAMPING_STEP_LOG2·k)`, `k` uniform in `1..=DAMPING_LEVELS`
/// ([`DAMPING_LEVELS`] says why). The work of the step does not depend on it: one
/// factorisation of `H + μI` whatever `μ`.
///
/// # Consensus
/// Part of every ticket step of the family.
pub fn damping(seed: &[u8; 32]) -> f64 {
    let mut rng = DetRng::stream(seed, tags::TICKET_DAMPING, 0);
    let undamped = (DAMPED_ONE_IN - 1) * DAMPING_LEVELS;
    let r = rng.below(DAMPED_ONE_IN * DAMPING_LEVELS);
    if r < undamped { 1.0 } else { (1u64 << (DAMPING_STEP_LOG2 * (1 + r - undamped))) as f64 }
}

/// The `j`-th candidate step length, `2^(-LINE_SEARCH_SHRINK_LOG2·j)`.
///
/// # Consensus
/// Part of every ticket step.
pub fn step_length(j: usize) -> f64 {
    1.0 / (1u64 << (LINE_SEARCH_SHRINK_LOG2 * j)) as f64
}
