//! The softmax-family task kinds `softmax` and `resnet_softmax` (papers 2310.11685,
//! 2309.13482), the linear-attention baselines, and the copyright option (2308.12247).
//!
//! Objective: `L(x) = ½||m∘(f(Ax) - b)||² + ½ Σ w²ᵢ zᵢ² [+ γ/ℓ₁(x)]` with `f = φ(z)/Σφ(z)`
//! (SOLVERS.md §0.4, §3.1, §9.1). This file holds the problem, its iterate box and the
//! `Problem` contract; by concern: [`objective`] (value and derivatives), [`step`] (the
//! v2 mining step and its price), [`solve`] (off-chain Newton), [`synthetic`] (seeded
//! planted data). Everything a step, a certificate or a cost computes goes through
//! `compute::det`. Owns no I/O.

mod objective;
mod solve;
mod step;
mod synthetic;

pub use step::{
    CLASS_WEIGHTS_16, FlopClasses, PERTURB_FLOOR_OF_BOX, STEP_OVERHEAD_FLOPS, StepRule, StepShape, TICKET_RULE,
    damping, step_cost_mwu, step_flop_classes, step_flops, step_length,
};
pub use synthetic::{Synthetic, synthetic_seed, uniform_reg};

use crate::compute::copyright::{Copyright, CopyrightVariant};
use crate::compute::det::{self, Mat};
use crate::compute::nmr::{self, Phi};
use crate::compute::problem::{
    Certificate, Figure, IterReport, Params, Problem, ProblemError, SolveInfo, SolveOpts, StepOutput, Transcript,
};

/// Oversampling factor of the leverage-score row sampling: `K = β·d` rows are drawn
/// (SOLVERS.md §0.5 item 3: β = 8).
pub const SAMPLE_BETA: usize = 8;
/// CountSketch rows per parameter when approximating leverage scores.
pub const SKETCH_ROWS_PER_DIM: usize = 8;
/// Step lengths the mining step evaluates, all of them: `4^-j`, `j < LINE_SEARCH_CANDIDATES`
/// (down to 1/64: a Gauss–Newton direction from the box is accepted at one of them; more
/// candidates cost an objective each on every step, the line search being the step's
/// largest cost after the Gram).
pub const LINE_SEARCH_CANDIDATES: usize = 6;
/// `log2` of the ratio between consecutive candidate step lengths.
pub const LINE_SEARCH_SHRINK_LOG2: usize = 2;
/// One ticket in [`DAMPED_ONE_IN`] of the exact Gauss–Newton rule is damped: its ridge
/// is multiplied by `2^(DAMPING_STEP_LOG2·k)` for `k` uniform in `1..=DAMPING_LEVELS`,
/// drawn from the ticket seed (stream tag 11); the others take the full Gauss–Newton
/// step. The damped ones are Levenberg–Marquardt steps from 16x up to 16^10 (~1e12) times
/// the base ridge, down to gradient-like steps. Without them, an iterate where the
/// Gauss–Newton model is wrong repeats the same failing step on every nonce: `bench mining
/// --shape n=65536,d=96,scale=16,seed=21,reg=1e-6` stopped at 2.6e-4 for 400 steps.
pub const DAMPING_LEVELS: u64 = 10;
/// A ticket is damped with probability `1/DAMPED_ONE_IN` (few enough that a converging
/// trajectory loses little, enough that a stalled iterate soon draws every level).
pub const DAMPED_ONE_IN: u64 = 16;
/// `log2` of the ratio between consecutive damping levels.
pub const DAMPING_STEP_LOG2: u64 = 4;
/// Armijo constant `c₁`.
pub const ARMIJO_C1: f64 = 1e-4;
/// Every `z = Ax` of an iterate in the box satisfies `|z_i| <= Z_BOUND` (DESIGN.md §3.2):
/// `e^z` neither overflows (ResNet+softmax) nor underflows to zero (softmax's shift).
pub const Z_BOUND: f64 = 128.0;
/// Smallest protected loss ℓ₁ for which `γ/ℓ₁` is evaluated (SOLVERS.md §9.3).
pub const MIN_PROTECTED_LOSS: f64 = 1e-300;

/// A softmax-family regression task.
#[derive(Clone, Debug)]
pub struct SoftmaxProblem {
    phi: Phi,
    a: Mat,
    b: Vec<f64>,
    w2: Vec<f64>,
    has_reg: bool,
    mask: Option<Vec<f64>>,
    copyright: Option<CopyrightTerms>,
    /// Half-width of the iterate box: [`Z_BOUND`] over the largest row 1-norm of `A`.
    x_bound: f64,
}

/// The copyright option, validated and expanded into masks.
#[derive(Clone, Debug)]
struct CopyrightTerms {
    spec: Copyright,
    /// `m₁`: 1 on protected rows.
    m1: Vec<f64>,
    /// `m₂ = 1 - m₁`.
    m2: Vec<f64>,
    /// Targets of the protected rows (per-block variant).
    b1: Vec<f64>,
}

/// Options for [`SoftmaxProblem::new`].
#[derive(Clone, Debug, Default)]
pub struct SoftmaxOptions {
    /// Per-row regulariser weights `w²ᵢ >= 0` (none: no regulariser).
    pub w2: Option<Vec<f64>>,
    /// A 0/1 row mask on the data term.
    pub mask: Option<Vec<f64>>,
    /// The copyright option.
    pub copyright: Option<Copyright>,
}

impl SoftmaxProblem {
    /// Builds a task from data `a` (n x d), targets `b` (n) and options, checking every
    /// value: shapes, finiteness, `w² >= 0`, masks in {0, 1}, the copyright option.
    pub fn new(phi: Phi, a: Mat, b: Vec<f64>, opts: SoftmaxOptions) -> Result<SoftmaxProblem, ProblemError> {
        let (n, d) = (a.rows(), a.cols());
        if n == 0 || d == 0 {
            return Err(ProblemError::InvalidSpec {
                what: "data",
                reason: format!("A is {n}x{d}, need at least one row and column"),
            });
        }
        if b.len() != n {
            return Err(ProblemError::Dimension { what: "target b", expected: n, got: b.len() });
        }
        if let Some(i) = a.data().iter().position(|v| !v.is_finite()) {
            return Err(ProblemError::NonFinite { what: "data A", index: i });
        }
        if let Some(i) = b.iter().position(|v| !v.is_finite()) {
            return Err(ProblemError::NonFinite { what: "target b", index: i });
        }
        let w2 = match opts.w2 {
            Some(w2) => {
                if w2.len() != n {
                    return Err(ProblemError::Dimension { what: "regulariser weights", expected: n, got: w2.len() });
                }
                if let Some(i) = w2.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
                    return Err(ProblemError::InvalidSpec {
                        what: "regulariser weights",
                        reason: format!("w2[{i}] = {} is not a finite non-negative number", w2[i]),
                    });
                }
                w2
            }
            None => vec![0.0; n],
        };
        let has_reg = w2.iter().any(|w| *w > 0.0);
        if let Some(m) = &opts.mask {
            if m.len() != n {
                return Err(ProblemError::Dimension { what: "mask", expected: n, got: m.len() });
            }
            if let Some(i) = m.iter().position(|v| *v != 0.0 && *v != 1.0) {
                return Err(ProblemError::InvalidSpec {
                    what: "mask",
                    reason: format!("mask[{i}] = {} is not 0 or 1", m[i]),
                });
            }
        }
        let copyright = match opts.copyright {
            Some(spec) => {
                spec.validate(n)?;
                let m1 = spec.protected_mask(n);
                let m2 = spec.unprotected_mask(n);
                let b1 = spec.rows.iter().map(|&r| b[r]).collect();
                Some(CopyrightTerms { spec, m1, m2, b1 })
            }
            None => None,
        };
        let x_bound = Z_BOUND / max_row_l1(&a);
        Ok(SoftmaxProblem { phi, a, b, w2, has_reg, mask: opts.mask, copyright, x_bound })
    }

    /// Half-width of the iterate box: every coordinate of an admissible iterate lies in
    /// `[-x_bound, x_bound]`, so `|(Ax)_i| <= Z_BOUND` for every row.
    ///
    /// # Consensus
    /// A witness outside the box is invalid; steps and the solver project onto it.
    pub fn x_bound(&self) -> f64 {
        self.x_bound
    }

    /// The map φ.
    pub fn phi(&self) -> Phi {
        self.phi
    }

    /// The data matrix.
    pub fn a(&self) -> &Mat {
        &self.a
    }

    /// The targets.
    pub fn b(&self) -> &[f64] {
        &self.b
    }

    /// Number of data rows.
    pub fn n(&self) -> usize {
        self.a.rows()
    }

    /// The copyright option, if set.
    pub fn copyright(&self) -> Option<&Copyright> {
        self.copyright.as_ref().map(|c| &c.spec)
    }

    /// The mask of the main data term: the user mask, times `m₂` for the
    /// unprotected-only copyright variant.
    fn main_mask(&self) -> Option<Vec<f64>> {
        let cr = self.copyright.as_ref().filter(|c| c.spec.variant == CopyrightVariant::UnprotectedOnly);
        match (&self.mask, cr) {
            (None, None) => None,
            (Some(m), None) => Some(m.clone()),
            (None, Some(c)) => Some(c.m2.clone()),
            (Some(m), Some(c)) => Some(m.iter().zip(&c.m2).map(|(a, b)| a * b).collect()),
        }
    }

    /// Flops of one [`Problem::step`] by formula (the basis of [`Problem::cost`]); a test
    /// checks it against the kernels' own count.
    pub fn step_flops(&self) -> u64 {
        step_flops(&self.shape())
    }

    /// What the cost of a step depends on.
    pub fn shape(&self) -> StepShape {
        StepShape {
            n: self.n(),
            d: self.a.cols(),
            phi: self.phi,
            has_reg: self.has_reg,
            copyright: self.copyright.as_ref().map(|c| (c.spec.variant, c.spec.rows.len())),
        }
    }
}

/// The largest row 1-norm of `a` (each row summed left to right by `det::sum`).
fn max_row_l1(a: &Mat) -> f64 {
    let mut best = 0.0f64;
    for i in 0..a.rows() {
        let abs: Vec<f64> = a.row(i).iter().map(|v| v.abs()).collect();
        best = best.max(det::sum(&abs));
    }
    best
}

impl Problem for SoftmaxProblem {
    fn kind(&self) -> &'static str {
        match self.phi {
            Phi::Softmax => "softmax",
            Phi::ResnetSoftmax => "resnet_softmax",
            Phi::EluPlusOne => "linear_elu",
            Phi::Identity => "linear",
        }
    }

    fn dim(&self) -> usize {
        self.a.cols()
    }

    fn init(&self) -> Params {
        Params(vec![0.0; self.dim()])
    }

    fn check_iterate(&self, x: &Params) -> Result<(), ProblemError> {
        x.check(self.dim())?;
        match x.0.iter().position(|v| v.abs() > self.x_bound) {
            Some(index) => {
                Err(ProblemError::OutsideBox { what: "params", index, value: x.0[index], bound: self.x_bound })
            }
            None => Ok(()),
        }
    }

    /// [`PERTURB_FLOOR_OF_BOX`] of the iterate box: at `x = 0` the perturbation moves `z =
    /// Ax` by about `2^-40·2^-10·Z_BOUND/sqrt(d)` whatever the data's scale (the box
    /// scales inversely with it), far above the rounding of `e^z`.
    ///
    /// # Consensus
    /// Part of every ticket step.
    fn perturbation_floor(&self) -> f64 {
        self.x_bound * PERTURB_FLOOR_OF_BOX
    }

    /// The v2 ticket step ([`step`]).
    fn step(&self, x: &Params, seed: &[u8; 32]) -> Result<StepOutput, ProblemError> {
        Ok(self.ticket_step(x, seed, Transcript::new(self.kind()))?.0)
    }

    fn certify(&self, x: &Params) -> Result<Certificate, ProblemError> {
        x.check(self.dim())?;
        let ev = self.eval(&x.0)?;
        let (g, _) = self.gradient(&ev);
        let grad_norm = det::nrm2(&g);
        let mut figures = vec![
            Figure { name: "loss_data".into(), value: ev.main.loss },
            Figure { name: "loss_reg".into(), value: ev.reg },
        ];
        if let (Some(c), Some(t)) = (&self.copyright, &ev.prot) {
            // ℓ₂ from the main term's residual on the unprotected rows.
            let c2: Vec<f64> = ev.main.c.iter().zip(&c.m2).map(|(a, b)| a * b).collect();
            let (l1, l2) = if c.spec.variant == CopyrightVariant::PerBlock {
                // ℓ₁ as the paper's criterion reads it: the protected rows of the global softmax.
                let c1: Vec<f64> = ev.main.c.iter().zip(&c.m1).map(|(a, b)| a * b).collect();
                (0.5 * det::dot(&c1, &c1), 0.5 * det::dot(&c2, &c2))
            } else {
                (t.loss, 0.5 * det::dot(&c2, &c2))
            };
            figures.push(Figure { name: "loss_protected".into(), value: l1 });
            figures.push(Figure { name: "loss_unprotected".into(), value: l2 });
            figures.push(Figure { name: "penalty".into(), value: c.spec.gamma / t.loss });
        }
        let cert = Certificate { score: ev.value, loss: ev.value, grad_norm, figures };
        cert.check_finite()?;
        Ok(cert)
    }

    fn cost(&self) -> u64 {
        step_cost_mwu(&self.shape())
    }

    fn predict(&self, x: &Params, input: &Mat) -> Result<Vec<f64>, ProblemError> {
        x.check(self.dim())?;
        if input.cols() != self.dim() {
            return Err(ProblemError::Dimension { what: "input columns", expected: self.dim(), got: input.cols() });
        }
        if input.rows() == 0 {
            return Err(ProblemError::InvalidSpec { what: "input", reason: "no rows".into() });
        }
        if let Some(i) = input.data().iter().position(|v| !v.is_finite()) {
            return Err(ProblemError::NonFinite { what: "input", index: i });
        }
        let mut z = vec![0.0; input.rows()];
        det::gemv(input.view(), &x.0, &mut z, false);
        let phi = nmr::eval_phi(self.phi, &z)?;
        let alpha = det::sum(&phi.u);
        if !(alpha > 0.0) || !alpha.is_finite() {
            return Err(ProblemError::AlphaNotPositive { alpha });
        }
        Ok(phi.u.iter().map(|u| u / alpha).collect())
    }

    fn solve(
        &self,
        opts: &SolveOpts,
        observe: &mut dyn FnMut(&IterReport),
    ) -> Result<(Params, SolveInfo), ProblemError> {
        self.newton_solve(opts, observe)
    }
}

#[cfg(test)]
mod tests;
