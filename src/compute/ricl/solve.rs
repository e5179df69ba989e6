//! The RICL kind's off-chain solvers (SOLVERS.md §2.2–2.4): RICL by Levenberg–Marquardt
//! on the Gauss–Newton system with the exact Hessian in the tail (the default) or by the
//! paper's gradient descent with Armijo backtracking, LARICL in closed form, and the
//! fine-tuning baseline (gradient descent on the frozen `W`).
//!
//! Not consensus: iteration counts depend on the data. Every iterate is clamped onto the
//! box `|θ_i| <= THETA_BOUND`, so what a solve returns can be published as a model update.

use super::objective::Level;
use super::{RiclProblem, THETA_BOUND};
use crate::compute::det::{self, Cholesky, Mat};
use crate::compute::problem::{IterReport, Params, Problem, ProblemError, SolveInfo, SolveOpts, StopReason};

/// Armijo sufficient-decrease constant.
const ARMIJO_C1: f64 = 1e-4;
/// First gradient-descent step length (SOLVERS.md §2.2: `η = 10`).
const GD_ETA0: f64 = 10.0;
/// Step-length growth after an accepted gradient step.
const GD_GROW: f64 = 1.5;
/// Step-length shrink on a rejected one.
const GD_SHRINK: f64 = 0.5;
/// Backtracking halvings per iteration before the solver calls the iterate stalled.
const MAX_BACKTRACKS: usize = 60;
/// Levenberg–Marquardt: the smallest non-zero shift, relative to `tr(JacᵀJac/V)/m`.
const LM_MU_REL: f64 = 1e-8;
/// Levenberg–Marquardt shift growth on a rejected step and shrink on an accepted one.
const LM_FACTOR: f64 = 4.0;
/// SOLVERS.md §2.2 stops at `||∇J|| <= 1e-8` (absolute), as well as at the relative
/// tolerance of the options.
const GRAD_ABS_TOL: f64 = 1e-8;
/// Levenberg–Marquardt: the projected gradient, relative to the start's, below which the
/// solve uses the exact Hessian instead of the Gauss–Newton matrix.
const NEWTON_TAIL: f64 = 1e-2;

/// Which off-chain algorithm [`RiclProblem::solve_with`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RiclSolver {
    /// Levenberg–Marquardt on `(JacᵀJac/V + (λ + μ)I) Δ = −∇J`, `μ` starting at 0, so the
    /// first step from `θ = 0` is LARICL's: the default. Once the projected gradient is
    /// 1/100 of the start's, the exact Hessian
    /// ([`RiclProblem::data_hessian`]) replaces the Gauss–Newton matrix (a shift that
    /// leaves it indefinite counts as a rejected step): on the §2.5 tasks Gauss–Newton
    /// converges only linearly there (0.94 per iteration at `m = 256, V = 4096`: 314
    /// iterations against 21).
    Lm,
    /// Gradient descent with Armijo backtracking (`η = 10`, `×1.5` after an accepted step,
    /// `×0.5` on a rejected one): the algorithm of SOLVERS.md §2.2.
    Gradient,
}

impl RiclSolver {
    /// Stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            RiclSolver::Lm => "lm",
            RiclSolver::Gradient => "gd",
        }
    }
}

/// The fine-tuning baseline's result.
#[derive(Clone, Debug)]
pub struct FineTune {
    /// The fine-tuned `W`.
    pub w: Mat,
    /// The validation data loss `(1/2V)Σr²` after every iteration (index 0: the start).
    pub history: Vec<f64>,
}

/// LARICL's result (SOLVERS.md §2.3).
#[derive(Clone, Debug)]
pub struct Laricl {
    /// `Δ* = −(Jac0ᵀJac0/V + λI)⁻¹ Jac0ᵀ r0 / V`, the log-weights before the box.
    pub delta: Vec<f64>,
    /// `Δ*` clamped onto the box (the publishable iterate; `w = e^θ`).
    pub theta: Vec<f64>,
    /// The certificate: `||(Jac0ᵀJac0/V + λI)Δ* + Jac0ᵀr0/V||` (SOLVERS.md §2.6).
    pub residual: f64,
}

/// The projected gradient of the box: `g_i`, except 0 where `θ_i` sits on a bound and
/// `−g_i` points out of the box. Zero exactly at the box-constrained stationary points.
pub fn projected_gradient(theta: &[f64], g: &[f64]) -> Vec<f64> {
    theta
        .iter()
        .zip(g)
        .map(|(&t, &gi)| if (t >= THETA_BOUND && gi < 0.0) || (t <= -THETA_BOUND && gi > 0.0) { 0.0 } else { gi })
        .collect()
}

fn pg_norm(theta: &[f64], g: &[f64]) -> f64 {
    det::nrm2(&projected_gradient(theta, g))
}

fn report(iter: usize, loss: f64, grad_norm: f64, step_len: f64, mu: f64) -> IterReport {
    IterReport { iter, loss, grad_norm, step_len, mu }
}

impl RiclProblem {
    /// LARICL: one Gauss–Newton solve at `θ = 0` with the shift `λ` (SOLVERS.md §2.3).
    ///
    /// # Errors
    /// The system is singular (`λ = 0` with a rank-deficient Jacobian).
    pub fn laricl(&self) -> Result<Laricl, ProblemError> {
        let zero = vec![0.0; self.m()];
        let ev = self.eval(&zero, Level::Gradient)?;
        let g = ev.grad.as_ref().expect("gradient level");
        let nm = self.normal_matrix(&ev);
        let neg: Vec<f64> = g.iter().map(|v| -v).collect();
        let delta = Cholesky::factor_shifted(&nm, self.lambda)?.solve(&neg);
        let mut res = g.clone();
        det::gemv(nm.view(), &delta, &mut res, true);
        det::axpy(self.lambda, &delta, &mut res);
        let residual = det::nrm2(&res);
        let theta = self.project(zero.iter().zip(&delta).map(|(t, d)| t + d).collect());
        Ok(Laricl { delta, theta, residual })
    }

    /// Off-chain solve by `solver` from `opts.x0` (default `θ = 0`); calls `observe` after
    /// every iteration. Reports and the stopping rule use the box's projected gradient
    /// ([`projected_gradient`]).
    pub fn solve_with(
        &self,
        solver: RiclSolver,
        opts: &SolveOpts,
        observe: &mut dyn FnMut(&IterReport),
    ) -> Result<(Params, SolveInfo), ProblemError> {
        let x0 = opts.x0.clone().unwrap_or_else(|| self.init());
        x0.check(self.dim())?;
        let mut theta = self.project(x0.0);
        let mut ev = self.eval(&theta, Level::Gradient)?;
        let grad_norm0 = pg_norm(&theta, ev.grad.as_ref().expect("gradient level"));
        let stop = (opts.tol_grad * grad_norm0).max(GRAD_ABS_TOL);
        let mut info = SolveInfo {
            iterations: 0,
            reason: StopReason::MaxIterations,
            converged: false,
            grad_norm0,
            max_mu: 0.0,
            history: Vec::new(),
        };
        let (mut mu, mut eta) = (0.0f64, GD_ETA0);
        for iter in 1..=opts.max_iter {
            let g = ev.grad.clone().expect("gradient level");
            if pg_norm(&theta, &g) <= stop {
                info.reason = StopReason::GradientTolerance;
                info.converged = true;
                break;
            }
            let accepted = match solver {
                RiclSolver::Lm => {
                    // Gauss–Newton far from a minimum (robust), the exact Hessian in the tail,
                    // where Gauss–Newton converges only linearly on a non-zero residual.
                    let tail = pg_norm(&theta, &g) <= NEWTON_TAIL * grad_norm0;
                    let nm = if tail { self.data_hessian(&ev) } else { self.normal_matrix(&ev) };
                    let mu_min = LM_MU_REL * (0..self.m()).map(|i| nm.get(i, i)).sum::<f64>() / self.m() as f64
                        + f64::MIN_POSITIVE;
                    let neg: Vec<f64> = g.iter().map(|v| -v).collect();
                    let mut found = None;
                    for _ in 0..MAX_BACKTRACKS {
                        let Ok(chol) = Cholesky::factor_shifted(&nm, self.lambda + mu) else {
                            mu = (mu * LM_FACTOR).max(mu_min);
                            info.max_mu = info.max_mu.max(mu);
                            continue;
                        };
                        let dir = chol.solve(&neg);
                        let cand = self.project(theta.iter().zip(&dir).map(|(t, d)| t + d).collect());
                        let e = self.eval(&cand, Level::Value)?;
                        if e.value < ev.value {
                            found = Some((cand, 1.0, mu));
                            mu = if mu / LM_FACTOR < mu_min { 0.0 } else { mu / LM_FACTOR };
                            break;
                        }
                        mu = (mu * LM_FACTOR).max(mu_min);
                        info.max_mu = info.max_mu.max(mu);
                    }
                    found
                }
                RiclSolver::Gradient => {
                    let mut found = None;
                    for _ in 0..MAX_BACKTRACKS {
                        let cand = self.project(theta.iter().zip(&g).map(|(t, gi)| t - eta * gi).collect());
                        let moved: Vec<f64> = cand.iter().zip(&theta).map(|(a, b)| a - b).collect();
                        let e = self.eval(&cand, Level::Value)?;
                        if e.value <= ARMIJO_C1.mul_add(det::dot(&g, &moved), ev.value) && e.value < ev.value {
                            found = Some((cand, eta, 0.0));
                            eta *= GD_GROW;
                            break;
                        }
                        eta *= GD_SHRINK;
                    }
                    found
                }
            };
            let Some((cand, step_len, used_mu)) = accepted else {
                info.reason = StopReason::Stalled;
                break;
            };
            theta = cand;
            ev = self.eval(&theta, Level::Gradient)?;
            info.iterations = iter;
            let r =
                report(iter, ev.value, pg_norm(&theta, ev.grad.as_ref().expect("gradient level")), step_len, used_mu);
            observe(&r);
            info.history.push(r);
        }
        if info.reason == StopReason::MaxIterations
            && pg_norm(&theta, ev.grad.as_ref().expect("gradient level")) <= stop
        {
            info.reason = StopReason::GradientTolerance;
            info.converged = true;
        }
        Ok((Params(theta), info))
    }

    /// The "classic fine-tuning" baseline (SOLVERS.md §2.4, [R]): uniform weights, gradient
    /// descent with Armijo backtracking on `W` for the validation loss, `iters` iterations
    /// (first step length 1, `×1.5` / `×0.5`).
    pub fn fine_tune(&self, iters: usize) -> Result<FineTune, ProblemError> {
        let zero = vec![0.0; self.m()];
        let mut p = self.clone();
        let mut ev = p.eval(&zero, Level::Gradient)?;
        let mut history = vec![ev.data_loss];
        let mut eta = 1.0f64;
        for _ in 0..iters {
            let gw = p.w_gradient(&ev);
            let gg = det::dot(gw.data(), gw.data());
            if gg <= GRAD_ABS_TOL * GRAD_ABS_TOL {
                break;
            }
            let mut next = None;
            for _ in 0..MAX_BACKTRACKS {
                let w: Vec<f64> = p.w.data().iter().zip(gw.data()).map(|(a, g)| a - eta * g).collect();
                let cand = p.with_w(Mat::from_vec(self.d(), self.d(), w).expect("d x d"))?;
                let e = cand.eval(&zero, Level::Gradient)?;
                if e.data_loss <= (-ARMIJO_C1 * eta).mul_add(gg, ev.data_loss) {
                    next = Some((cand, e));
                    eta *= GD_GROW;
                    break;
                }
                eta *= GD_SHRINK;
            }
            let Some((cand, e)) = next else { break };
            p = cand;
            ev = e;
            history.push(ev.data_loss);
        }
        Ok(FineTune { w: p.w, history })
    }
}
