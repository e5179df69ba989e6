//! The task kind `ricl`: reweighted in-context learning (RICL) and its linear
//! approximation (LARICL), paper 2310.03331, SOLVERS.md §2.
//!
//! [R] the model is the reconstruction of SOLVERS.md §2.1: a frozen one-layer
//! softmax-attention in-context predictor over a prompt of `m` examples `(x_i, y_i)`,
//! `ŷ(q; θ) = Σ_i π_i(q; θ) y_i` with `π_i = softmax_i(x_iᵀ W q + θ_i)`, where `θ = log w`
//! are the example weights (`θ = 0` is plain ICL). The parameters are `θ ∈ R^m`; the
//! objective is the loss on an unbiased validation set `J(θ) = (1/2V) Σ_v r_v² + (λ/2)
//! ||θ||²`, `r_v = ŷ(q_v; θ) − y_v` (§2.2). By concern: [`objective`] (predictor, value,
//! gradient, Jacobian, Gauss–Newton matrix, exact Hessian), [`step`] (the mining step and
//! its price), [`solve`] (RICL by Levenberg–Marquardt or by the paper's gradient descent
//! with Armijo steps, LARICL in closed form, and the fine-tuning baseline), [`synthetic`] (the seeded
//! numerical dataset of §2.5). Everything a step, a certificate or a cost computes goes
//! through `compute::det`. Owns no I/O.
//!
//! The constraint set: the weights `w = e^θ` are positive by construction; the iterate box
//! `|θ_i| <= THETA_BOUND` (weights within a factor `e^THETA_BOUND` of uniform) is the
//! projection every step and solver applies.

pub mod objective;
mod solve;
mod step;
mod synthetic;

pub use objective::{Eval, Level};
pub use solve::{FineTune, Laricl, RiclSolver, projected_gradient};
pub use step::{
    RICL_CLASS_WEIGHTS_16, RICL_LM_CANDIDATES, RICL_NEWTON_CANDIDATES, RICL_STEP_OVERHEAD_FLOPS, RICL_TICKET_RULE,
    RiclFlopClasses, RiclShape, RiclStepRule, ricl_flop_classes, ricl_step_cost_mwu,
};
pub use synthetic::{RiclData, RiclSynthetic};

use crate::compute::det::{self, Mat};
use crate::compute::problem::{
    Certificate, Figure, IterReport, Params, Problem, ProblemError, SolveInfo, SolveOpts, StepOutput, Transcript,
    require_finite,
};

/// Every example weight lies within `e^±THETA_BOUND` of uniform: `|θ_i| <= THETA_BOUND`.
///
/// # Consensus
/// A witness outside the box is invalid; steps and solvers clamp onto it. With the score
/// bound [`SCORE_BOUND`] every attention weight of every admitted task is at least
/// `e^{-2(SCORE_BOUND + THETA_BOUND)}/m` (about `1e-42/m`), so no product of up to four of
/// them and of the admitted labels leaves the normal range: no stage of a step runs on
/// slow subnormal arithmetic.
pub const THETA_BOUND: f64 = 16.0;
/// Every score `x_iᵀ W q_v` of an admitted task's validation queries is at most this in
/// magnitude (checked at admission).
pub const SCORE_BOUND: f64 = 32.0;

/// A RICL task: prompt, frozen attention matrix, validation set, ridge.
#[derive(Clone, Debug)]
pub struct RiclProblem {
    /// Prompt inputs `x_i` (m x d).
    xp: Mat,
    /// Prompt labels `y_i` (m).
    yp: Vec<f64>,
    /// The frozen `W = W_Kᵀ W_Q` (d x d).
    w: Mat,
    /// Validation queries `q_v` (V x d).
    q: Mat,
    /// Validation labels `y_v` (V).
    yv: Vec<f64>,
    /// The ridge λ on `θ`.
    lambda: f64,
    /// The scores `S[v,i] = x_iᵀ W q_v` (V x m), fixed by the data.
    scores: Mat,
    /// Their row-shifted exponentials ([`objective::exp_scores`]), fixed by the data.
    exp_scores: Mat,
}

/// `S = Q (X W)ᵀ`: `S[v,i] = (x_iᵀ W) q_v`, one fused chain over the width for each entry.
pub fn score_matrix(xp: &Mat, w: &Mat, q: &Mat) -> Mat {
    let mut xw = Mat::zeros(xp.rows(), w.cols());
    det::gemm(xp.view(), w.view(), &mut xw, false);
    let mut s = Mat::zeros(q.rows(), xp.rows());
    det::gemm(q.view(), xw.t(), &mut s, false);
    s
}

impl RiclProblem {
    /// Builds a task from the prompt `(xp, yp)`, the frozen `w`, the validation set `(q,
    /// yv)` and the ridge `λ >= 0`, checking shapes and finiteness.
    pub fn new(xp: Mat, yp: Vec<f64>, w: Mat, q: Mat, yv: Vec<f64>, lambda: f64) -> Result<RiclProblem, ProblemError> {
        let (m, d) = (xp.rows(), xp.cols());
        if m == 0 || d == 0 {
            return Err(ProblemError::InvalidSpec {
                what: "prompt",
                reason: format!("is {m}x{d}, need at least one example and one input column"),
            });
        }
        if yp.len() != m {
            return Err(ProblemError::Dimension { what: "prompt labels", expected: m, got: yp.len() });
        }
        if (w.rows(), w.cols()) != (d, d) {
            return Err(ProblemError::InvalidSpec {
                what: "attention matrix W",
                reason: format!("is {}x{}, the inputs have {d} columns: W must be {d}x{d}", w.rows(), w.cols()),
            });
        }
        if q.rows() == 0 {
            return Err(ProblemError::InvalidSpec { what: "validation set", reason: "has no rows".into() });
        }
        if q.cols() != d {
            return Err(ProblemError::Dimension { what: "validation columns", expected: d, got: q.cols() });
        }
        if yv.len() != q.rows() {
            return Err(ProblemError::Dimension { what: "validation labels", expected: q.rows(), got: yv.len() });
        }
        require_finite("prompt inputs", xp.data())?;
        require_finite("prompt labels", &yp)?;
        require_finite("attention matrix W", w.data())?;
        require_finite("validation queries", q.data())?;
        require_finite("validation labels", &yv)?;
        if !(lambda >= 0.0 && lambda.is_finite()) {
            return Err(ProblemError::InvalidSpec { what: "ridge lambda", reason: format!("{lambda} is not >= 0") });
        }
        let scores = score_matrix(&xp, &w, &q);
        require_finite("scores", scores.data())?;
        let exp_scores = objective::exp_scores(&scores);
        Ok(RiclProblem { xp, yp, w, q, yv, lambda, scores, exp_scores })
    }

    /// Prompt examples `m` (the parameters).
    pub fn m(&self) -> usize {
        self.xp.rows()
    }

    /// Input width `d`.
    pub fn d(&self) -> usize {
        self.xp.cols()
    }

    /// Validation rows `V`.
    pub fn v(&self) -> usize {
        self.q.rows()
    }

    /// The ridge λ.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    /// The prompt inputs.
    pub fn prompt_x(&self) -> &Mat {
        &self.xp
    }

    /// The prompt labels.
    pub fn prompt_y(&self) -> &[f64] {
        &self.yp
    }

    /// The frozen attention matrix `W`.
    pub fn w(&self) -> &Mat {
        &self.w
    }

    /// The validation queries.
    pub fn validation_x(&self) -> &Mat {
        &self.q
    }

    /// The validation labels.
    pub fn validation_y(&self) -> &[f64] {
        &self.yv
    }

    /// The validation scores `S[v,i] = x_iᵀ W q_v`.
    pub fn scores(&self) -> &Mat {
        &self.scores
    }

    /// The largest `|S[v,i]|` (the admission domain bounds it by [`SCORE_BOUND`]).
    pub fn max_abs_score(&self) -> f64 {
        self.scores.data().iter().fold(0.0f64, |m, v| m.max(v.abs()))
    }

    /// The same prompt and validation set with another frozen `W` (fine-tuning).
    pub fn with_w(&self, w: Mat) -> Result<RiclProblem, ProblemError> {
        RiclProblem::new(self.xp.clone(), self.yp.clone(), w, self.q.clone(), self.yv.clone(), self.lambda)
    }

    /// Clamps every `θ_i` onto `[-THETA_BOUND, THETA_BOUND]` (one pass, constant work).
    pub fn project(&self, mut theta: Vec<f64>) -> Vec<f64> {
        det::count_flops(theta.len() as u64);
        for t in &mut theta {
            *t = t.clamp(-THETA_BOUND, THETA_BOUND);
        }
        theta
    }

    /// What the price of a step depends on.
    pub fn shape(&self) -> RiclShape {
        RiclShape { m: self.m(), v: self.v() }
    }

    /// The reweighted predictor `ŷ(q; θ)` on the rows of `queries` (d columns), with the
    /// task's prompt and `W`. Off-chain (any scores, no bound).
    pub fn predict_queries(&self, theta: &[f64], queries: &Mat) -> Result<Vec<f64>, ProblemError> {
        if theta.len() != self.m() {
            return Err(ProblemError::Dimension { what: "params", expected: self.m(), got: theta.len() });
        }
        if queries.cols() != self.d() {
            return Err(ProblemError::Dimension { what: "query columns", expected: self.d(), got: queries.cols() });
        }
        require_finite("queries", queries.data())?;
        let s = score_matrix(&self.xp, &self.w, queries);
        require_finite("query scores", s.data())?;
        let mut pi = vec![0.0; self.m()];
        Ok((0..queries.rows())
            .map(|v| {
                objective::softmax_weights(s.row(v), theta, &mut pi);
                det::dot(&pi, &self.yp)
            })
            .collect())
    }

    /// Mean squared error `(1/T) Σ_t (ŷ(q_t; θ) − y_t)²` on a labelled set (test MSE).
    pub fn mse(&self, theta: &[f64], queries: &Mat, labels: &[f64]) -> Result<f64, ProblemError> {
        if labels.len() != queries.rows() {
            return Err(ProblemError::Dimension { what: "labels", expected: queries.rows(), got: labels.len() });
        }
        let yhat = self.predict_queries(theta, queries)?;
        let r: Vec<f64> = yhat.iter().zip(labels).map(|(a, b)| a - b).collect();
        Ok(det::dot(&r, &r) / labels.len() as f64)
    }
}

impl Problem for RiclProblem {
    fn kind(&self) -> &'static str {
        "ricl"
    }

    fn dim(&self) -> usize {
        self.m()
    }

    /// `θ = 0`: uniform weights, plain ICL.
    fn init(&self) -> Params {
        Params(vec![0.0; self.m()])
    }

    fn check_iterate(&self, x: &Params) -> Result<(), ProblemError> {
        x.check(self.dim())?;
        if let Some(i) = x.0.iter().position(|t| t.abs() > THETA_BOUND) {
            return Err(ProblemError::InvalidSpec {
                what: "example weights",
                reason: format!("log-weight {i} is {:e}, outside [-{THETA_BOUND}, {THETA_BOUND}]", x.0[i]),
            });
        }
        Ok(())
    }

    /// `2^-10` of the box, so a zero log-weight moves the logits by about `2^-46`, far
    /// above the rounding of `e^z`.
    ///
    /// # Consensus
    /// Part of every ticket step.
    fn perturbation_floor(&self) -> f64 {
        THETA_BOUND / 1024.0
    }

    fn step(&self, x: &Params, seed: &[u8; 32]) -> Result<StepOutput, ProblemError> {
        Ok(self.ticket_step(x, seed, Transcript::new(self.kind()))?.0)
    }

    /// Score: the validation objective `J(θ)`; figures: the validation data loss
    /// `(1/2V)Σr²`, the validation MSE `(1/V)Σr²`, the norm of the box's projected
    /// gradient (zero at a constrained stationary point), and the weights' spread `max θ −
    /// min θ`.
    fn certify(&self, x: &Params) -> Result<Certificate, ProblemError> {
        x.check(self.dim())?;
        let ev = self.eval(&x.0, Level::Gradient)?;
        let g = ev.grad.as_ref().expect("gradient level");
        let (lo, hi) = x.0.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &t| (l.min(t), h.max(t)));
        let cert = Certificate {
            score: ev.value,
            loss: ev.value,
            grad_norm: det::nrm2(g),
            figures: vec![
                Figure { name: "loss_data".into(), value: ev.data_loss },
                Figure { name: "validation_mse".into(), value: 2.0 * ev.data_loss },
                Figure { name: "projected_grad_norm".into(), value: det::nrm2(&projected_gradient(&x.0, g)) },
                Figure { name: "log_weight_spread".into(), value: hi - lo },
            ],
        };
        cert.check_finite()?;
        Ok(cert)
    }

    fn cost(&self) -> u64 {
        ricl_step_cost_mwu(&self.shape())
    }

    /// The reweighted predictor on new query rows (d columns): one value `ŷ(q; θ) =
    /// Σ_i π_i(q; θ) y_i` per row, over the task's own prompt. Each row's softmax runs over
    /// the prompt's examples, never over the rows passed in, so one query gives the same
    /// value alone or among others.
    fn predict(&self, x: &Params, input: &Mat) -> Result<Vec<f64>, ProblemError> {
        x.check(self.dim())?;
        if input.rows() == 0 {
            return Err(ProblemError::InvalidSpec { what: "input", reason: "no rows".into() });
        }
        self.predict_queries(&x.0, input)
    }

    fn solve(
        &self,
        opts: &SolveOpts,
        observe: &mut dyn FnMut(&IterReport),
    ) -> Result<(Params, SolveInfo), ProblemError> {
        self.solve_with(RiclSolver::Lm, opts, observe)
    }
}

#[cfg(test)]
mod tests;
