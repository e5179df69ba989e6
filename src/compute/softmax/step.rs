//! The softmax family's mining step (DESIGN.md §3.2, v2) and its price.
//!
//! One ticket: perturb (tag 10) and project onto the box; objective and gradient; the
//! Gauss–Newton factor; CountSketch leverage scores (tag 2); `K = 8d` rows drawn by
//! leverage (tag 1); `H̃ = SᵀS [+ 2γ/ℓ₁³ g₁g₁ᵀ]` with a fixed ridge; the direction
//! `H̃⁻¹∇L`; every one of the [`LINE_SEARCH_CANDIDATES`] step lengths evaluated (projected
//! onto the box), the best satisfying Armijo taken. [R] SOLVERS.md §0.5 item 3.
//!
//! # Consensus
//! The transcript absorbs, in this order: the perturbed iterate's objective, its
//! gradient, the direction, each candidate's objective (`+inf` for a candidate outside
//! the map's domain), and the chosen candidate's index ([`LINE_SEARCH_CANDIDATES`] when
//! none passes Armijo and the output is the perturbed iterate). Every stage always runs;
//! a non-finite value or a failed factorisation is an error, never a cheap output.

use super::{SoftmaxProblem, LINE_SEARCH_CANDIDATES, ARMIJO_C1, SAMPLE_BETA, SKETCH_ROWS_PER_DIM};
use super::objective::add_rank1;
use crate::compute::copyright::CopyrightVariant;
use crate::compute::det::{self, count_flops, Cholesky, Mat};
use crate::compute::nmr::Phi;
use crate::compute::problem::{perturb, Params, Problem, ProblemError, Stage, StepOutput, Transcript, FLOPS_PER_MWU};
use crate::compute::sketch;

/// Fixed per-step overhead in flop-equivalents (allocation, the transcript's SHA-256, the
/// random streams' set-up), added to every step's price so small shapes pay for it.
pub const STEP_OVERHEAD_FLOPS: u64 = 20_000;

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

/// Flops of one step of a task of this shape, by formula (leading terms of every kernel
/// and elementwise pass the step performs; exps count [`nmr::EXP_FLOPS`]).
pub fn step_flops(shape: &StepShape) -> u64 {
    let (n, d) = (shape.n as u64, shape.d as u64);
    let has_reg = shape.has_reg;
    let rows = if has_reg { 2 * n } else { n };
    let s = (SKETCH_ROWS_PER_DIM as u64 * d).min(rows);
    let k = SAMPLE_BETA as u64 * d;
    let phi = shape.phi.eval_flops(1);
    let cr = shape.copyright;
    let n1 = cr.map_or(0, |c| c.1 as u64);
    // One objective value: gemv, φ, term, regulariser, and the ℓ₁ term.
    let term = |m: u64| 8 * m;
    let prot_eval = match cr.map(|c| c.0) {
        None => 0,
        Some(CopyrightVariant::PerBlock) => n1 * phi + term(n1),
        Some(_) => term(n),
    };
    let value = 2 * n * d + n * phi + term(n) + 3 * n + prot_eval;
    let grad = 4 * n + 2 * n + 2 * n * d
        + cr.map_or(0, |c| {
            let m = if c.0 == CopyrightVariant::PerBlock { n1 } else { n };
            4 * m + 2 * n + 2 * n * d
        });
    let gn = 2 * n * d + 4 * n * d + if has_reg { n * d + n } else { 0 };
    let sketch = 2 * rows * d + rows + s * d * (d + 1) + d + d * d * d / 3;
    let leverage = rows * d * d + 2 * rows * d + rows;
    let halvings = (u64::BITS - (rows - 1).leading_zeros()) as u64;
    let sample = k * (2 + halvings) + k * d + k * d * (d + 1) + k * d;
    let solve = d + d * d * d / 3 + 2 * d * d + 2 * d + if cr.is_some() { 2 * d * d } else { 0 };
    let search = LINE_SEARCH_CANDIDATES as u64 * (4 * d + value);
    5 * d + value + grad + gn + sketch + leverage + sample + solve + search
}

/// The price of one step of this shape in mWU: the calibrated flop formula plus the fixed
/// overhead, rounded up.
///
/// # Consensus
/// The cost table's entry for every task of the family (DESIGN.md §3.1).
pub fn step_cost_mwu(shape: &StepShape) -> u64 {
    (step_flops(shape) + STEP_OVERHEAD_FLOPS).div_ceil(FLOPS_PER_MWU)
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

    /// The v2 ticket step (module docs), absorbing its stages into `transcript`.
    pub fn ticket_step(&self, x: &Params, seed: &[u8; 32], mut transcript: Transcript) -> Result<(StepOutput, Vec<Stage>), ProblemError> {
        self.check_iterate(x)?;
        let d = self.dim();
        let x = self.project(perturb(&x.0, seed));
        let ev = self.eval(&x)?;
        let (g, g1) = self.gradient(&ev);
        check_finite("gradient", &g)?;
        transcript.scalar(ev.value);
        transcript.vector(&g);
        let m = self.gn_rows(&ev);
        let sketch_rows = (SKETCH_ROWS_PER_DIM * d).min(m.rows());
        let lev = sketch::countsketch_leverage(&m, sketch_rows, seed)?;
        let s = sketch::sample_rows(&m, &lev, SAMPLE_BETA * d, seed)
            .map_err(|e| ProblemError::Degenerate { what: "sum of leverage scores", value: e.total })?;
        let mut h = Mat::zeros(d, d);
        det::syrk(s.view(), None, &mut h);
        if let (Some(c), Some(g1), Some(l1)) = (&self.copyright, &g1, ev.l1()) {
            add_rank1(&mut h, 2.0 * c.spec.gamma / (l1 * l1 * l1), g1);
        }
        let chol = Cholesky::factor_shifted(&h, sketch::ridge(&h))?;
        let dir = chol.solve(&g);
        check_finite("search direction", &dir)?;
        transcript.vector(&dir);
        let slope = det::dot(&g, &dir);
        let mut best: Option<(usize, f64, Vec<f64>)> = None;
        for j in 0..LINE_SEARCH_CANDIDATES {
            let t = 1.0 / (1u64 << j) as f64;
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

/// A non-finite stage result is an error (DESIGN.md §3.2).
fn check_finite(what: &'static str, v: &[f64]) -> Result<(), ProblemError> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(ProblemError::NonFinite { what, index }),
        None => Ok(()),
    }
}
