//! The task kind `attention`: one-layer attention regression (paper 2309.07418, SOLVERS.md
//! §5) with the softmax kernel or the normalised linear-attention kernel `ψ = elu + 1`
//! (paper 2310.11685, SOLVERS.md §1.1).
//!
//! Data `A1, A2, A3, B` (n x d), parameters `X, Y` (d x d), stored as `[vec_r(X);
//! vec_r(Y)]`. Objective `L = ||S(X) A3 Y − B||²_F + ρ(||X||² + ||Y||²)` (no ½, as in the
//! paper), `S = rowsoftmax(A1 X A2ᵀ)` or `D⁻¹ψ(A1 X)ψ(A2)ᵀ`. By concern: [`objective`]
//! (value, gradient, Gauss–Newton operators, Hessian–vector products, Kronecker forms),
//! [`step`] (the mining step and its price), [`solve`] (the paper's alternating algorithm
//! and the joint Levenberg–Marquardt solver), [`synthetic`] (seeded planted instances).
//! Everything a step, a certificate or a cost computes goes through `compute::det`.
//! Owns no I/O.

pub mod objective;
mod solve;
mod step;
mod synthetic;

pub use objective::{Eval, Level, ROW_BLOCK, split};
pub use solve::{AttentionSolver, LM_EXPLICIT_MAX_PARAMS};
pub use step::{
    ATTN_CLASS_WEIGHTS_16, ATTN_STEP_OVERHEAD_FLOPS, AttentionShape, AttnFlopClasses, LM_CANDIDATES,
    attention_flop_classes, attention_step_cost_mwu, lm_ridge_factor,
};
pub use synthetic::{AttentionSynthetic, Planted};

use crate::compute::det::{self, Mat};
use crate::compute::problem::{
    Certificate, Figure, IterReport, Params, Problem, ProblemError, SolveInfo, SolveOpts, StepOutput, Transcript,
};
use serde::{Deserialize, Serialize};

/// Every score `(A1 X A2ᵀ)[j,i]` of the softmax kernel and every query `(A1 X)[j,l]` of the
/// linear kernel at an admissible iterate satisfies `|·| <= Z_BOUND`: no entry of a row of
/// `S` falls below `e^{-2·Z_BOUND}` (products of up to four of them stay normal numbers,
/// so no stage runs on slow subnormal arithmetic), and no `ψ` underflows.
pub const Z_BOUND: f64 = 64.0;
/// Every value `(A3 Y)[j,l]` at an admissible iterate is at most `W_BOUND_FACTOR·max(1,
/// max|B|)` in magnitude.
pub const W_BOUND_FACTOR: f64 = 65536.0;
/// Projection scales onto `(1 − 2^-30)` of a radius, so the rounding of the scaled norm
/// never leaves the ball.
const PROJECT_MARGIN: f64 = 1.0 - 1.0 / (1u64 << 30) as f64;

/// The attention kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernel {
    /// `S = rowsoftmax(A1 X A2ᵀ)`.
    Softmax,
    /// `S = D⁻¹ ψ(A1 X) ψ(A2)ᵀ`, `ψ = elu + 1`, never formed (associativity).
    Linear,
}

impl Kernel {
    /// Stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Softmax => "softmax",
            Kernel::Linear => "linear",
        }
    }
}

impl std::str::FromStr for Kernel {
    type Err = ProblemError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "softmax" => Ok(Kernel::Softmax),
            "linear" => Ok(Kernel::Linear),
            other => {
                Err(ProblemError::InvalidSpec { what: "kernel", reason: format!("{other:?} is not softmax or linear") })
            }
        }
    }
}

/// What the linear kernel precomputes from the keys: `ψ(A2)ᵀ 1` and `ψ(A2)ᵀ A3`.
#[derive(Clone, Debug)]
struct LinearData {
    /// `k = ψ(A2)ᵀ 1` (d).
    k: Vec<f64>,
    /// `E = ψ(A2)ᵀ A3` (d x d).
    e: Mat,
}

/// A one-layer attention regression task.
#[derive(Clone, Debug)]
pub struct AttentionProblem {
    kernel: Kernel,
    a1: Mat,
    a2: Mat,
    a3: Mat,
    b: Mat,
    rho: f64,
    linear: Option<LinearData>,
    x_bound: f64,
    y_bound: f64,
}

/// The largest row 2-norm of `a` (`det::nrm2` of each row).
fn max_row_norm(a: &Mat) -> f64 {
    (0..a.rows()).map(|i| det::nrm2(a.row(i))).fold(0.0f64, f64::max)
}

impl AttentionProblem {
    /// Builds a task from `A1, A2, A3, B` (all n x d) and the ridge `ρ >= 0`, checking
    /// shapes and finiteness.
    pub fn new(kernel: Kernel, a1: Mat, a2: Mat, a3: Mat, b: Mat, rho: f64) -> Result<AttentionProblem, ProblemError> {
        let (n, d) = (a1.rows(), a1.cols());
        if n == 0 || d == 0 {
            return Err(ProblemError::InvalidSpec {
                what: "data",
                reason: format!("A1 is {n}x{d}, need at least one row and column"),
            });
        }
        for (what, m) in [("data A2", &a2), ("data A3", &a3), ("target B", &b)] {
            if (m.rows(), m.cols()) != (n, d) {
                return Err(ProblemError::InvalidSpec {
                    what,
                    reason: format!(
                        "is {}x{}, A1 is {n}x{d}: all four matrices must have the same shape",
                        m.rows(),
                        m.cols()
                    ),
                });
            }
        }
        for (what, m) in [("data A1", &a1), ("data A2", &a2), ("data A3", &a3), ("target B", &b)] {
            if let Some(i) = m.data().iter().position(|v| !v.is_finite()) {
                return Err(ProblemError::NonFinite { what, index: i });
            }
        }
        if !(rho >= 0.0 && rho.is_finite()) {
            return Err(ProblemError::InvalidSpec { what: "ridge rho", reason: format!("{rho} is not >= 0") });
        }
        // |a_jᵀ X a_i| <= ||a_j|| ||X||_F ||a_i||, |(A1 X)[j,l]| <= ||a_j|| ||X||_F and
        // |(A3 Y)[j,l]| <= ||a3_j|| ||Y||_F: Frobenius balls bound every score. (A coordinate
        // box would have to allow for sign-aligned rows and excluded planted models.)
        let l1 = max_row_norm(&a1);
        let x_bound = match kernel {
            Kernel::Softmax => Z_BOUND / (l1 * max_row_norm(&a2)),
            Kernel::Linear => Z_BOUND / l1,
        };
        let bmax = b.data().iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let y_bound = W_BOUND_FACTOR * bmax.max(1.0) / max_row_norm(&a3);
        if !(x_bound.is_finite() && x_bound > 0.0 && y_bound.is_finite() && y_bound > 0.0) {
            return Err(ProblemError::InvalidSpec {
                what: "data",
                reason: "a data matrix has an all-zero or unbounded row norm".into(),
            });
        }
        let linear = (kernel == Kernel::Linear).then(|| {
            let kt = Mat::from_vec(n, d, a2.data().iter().map(|&z| objective::psi(z).0).collect()).expect("n x d");
            let mut k = vec![0.0; d];
            det::gemv(kt.t(), &vec![1.0; n], &mut k, false);
            let mut e = Mat::zeros(d, d);
            det::gemm(kt.t(), a3.view(), &mut e, false);
            LinearData { k, e }
        });
        if let Some(lin) = &linear
            && let Some(l) = lin.k.iter().position(|v| !(*v > 0.0))
        {
            return Err(ProblemError::Degenerate { what: "linear-attention key mass psi(A2)ᵀ1", value: lin.k[l] });
        }
        Ok(AttentionProblem { kernel, a1, a2, a3, b, rho, linear, x_bound, y_bound })
    }

    /// The kernel.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Token rows `n`.
    pub fn n(&self) -> usize {
        self.a1.rows()
    }

    /// Model width `d` (the parameters are `2d²`).
    pub fn d(&self) -> usize {
        self.a1.cols()
    }

    /// The ridge `ρ`.
    pub fn rho(&self) -> f64 {
        self.rho
    }

    /// The targets `B`.
    pub fn b(&self) -> &Mat {
        &self.b
    }

    /// Radii of the iterate balls `||X||_F <= r_X`, `||Y||_F <= r_Y`.
    ///
    /// # Consensus
    /// A witness outside them is invalid; steps and the solvers project onto them.
    pub fn bounds(&self) -> (f64, f64) {
        (self.x_bound, self.y_bound)
    }

    /// Scales `X` and `Y` back onto their balls where they lie outside (constant work:
    /// both norms, then one scaling pass whether or not it changes anything).
    pub fn project(&self, mut x: Vec<f64>) -> Vec<f64> {
        let dd = self.d() * self.d();
        for (part, r) in [(0..dd, self.x_bound), (dd..2 * dd, self.y_bound)] {
            let v = &mut x[part];
            let norm = det::nrm2(v);
            let c = if norm > r { r * PROJECT_MARGIN / norm } else { 1.0 };
            det::scal(c, v);
        }
        x
    }

    /// What the price of a step depends on.
    pub fn shape(&self) -> AttentionShape {
        AttentionShape { n: self.n(), d: self.d(), kernel: self.kernel }
    }
}

impl Problem for AttentionProblem {
    fn kind(&self) -> &'static str {
        match self.kernel {
            Kernel::Softmax => "attention",
            Kernel::Linear => "attention_linear",
        }
    }

    fn dim(&self) -> usize {
        2 * self.d() * self.d()
    }

    /// `X = 0` (uniform attention) and `Y = 0`.
    fn init(&self) -> Params {
        Params(vec![0.0; self.dim()])
    }

    fn check_iterate(&self, x: &Params) -> Result<(), ProblemError> {
        x.check(self.dim())?;
        let dd = self.d() * self.d();
        for (what, part, radius) in [("X", &x.0[..dd], self.x_bound), ("Y", &x.0[dd..], self.y_bound)] {
            let norm = det::nrm2(part);
            if norm > radius {
                return Err(ProblemError::OutsideBall { what, norm, radius });
            }
        }
        Ok(())
    }

    /// `2^-10` of the smaller ball radius, so a zero coordinate of either block moves.
    ///
    /// # Consensus
    /// Part of every ticket step.
    fn perturbation_floor(&self) -> f64 {
        self.x_bound.min(self.y_bound) / 1024.0
    }

    fn step(&self, x: &Params, seed: &[u8; 32]) -> Result<StepOutput, ProblemError> {
        Ok(self.ticket_step(x, seed, Transcript::new(self.kind()))?.0)
    }

    fn certify(&self, x: &Params) -> Result<Certificate, ProblemError> {
        x.check(self.dim())?;
        let ev = self.eval(&x.0, Level::Gradient)?;
        let g = ev.grad.as_ref().expect("gradient level");
        let dd = self.d() * self.d();
        let cert = Certificate {
            score: ev.value,
            loss: ev.value,
            grad_norm: det::nrm2(g),
            figures: vec![
                Figure { name: "loss_data".into(), value: ev.data_loss },
                Figure { name: "grad_norm_x".into(), value: det::nrm2(&g[..dd]) },
                Figure { name: "grad_norm_y".into(), value: det::nrm2(&g[dd..]) },
            ],
        };
        cert.check_finite()?;
        Ok(cert)
    }

    fn cost(&self) -> u64 {
        attention_step_cost_mwu(&self.shape())
    }

    /// The attention output for new query token rows: row `t` of the result is
    /// `Σ_i π_ti (A3 Y)[i,:]` with `π_t = softmax(a_t X A2ᵀ)` (or the normalised linear
    /// weights), over the task's own key and value rows; `m x d` values, row-major.
    fn predict(&self, x: &Params, input: &Mat) -> Result<Vec<f64>, ProblemError> {
        x.check(self.dim())?;
        let d = self.d();
        if input.cols() != d {
            return Err(ProblemError::Dimension { what: "input columns", expected: d, got: input.cols() });
        }
        if input.rows() == 0 {
            return Err(ProblemError::InvalidSpec { what: "input", reason: "no rows".into() });
        }
        if let Some(i) = input.data().iter().position(|v| !v.is_finite()) {
            return Err(ProblemError::NonFinite { what: "input", index: i });
        }
        let query = AttentionProblem { a1: input.clone(), b: Mat::zeros(input.rows(), d), ..self.clone() };
        Ok(query.eval(&x.0, Level::Value)?.o.into_vec())
    }

    fn solve(
        &self,
        opts: &SolveOpts,
        observe: &mut dyn FnMut(&IterReport),
    ) -> Result<(Params, SolveInfo), ProblemError> {
        self.solve_with(AttentionSolver::JointLm, opts, observe)
    }
}

#[cfg(test)]
mod tests;
