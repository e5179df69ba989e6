//! The attention kind's off-chain solvers (SOLVERS.md §5.3, §5.4): the paper's
//! alternating algorithm (exact least squares in `Y`, damped Newton in `X` with the exact
//! Kronecker-form Hessian) and the joint Levenberg–Marquardt solver over `(X, Y)` (explicit
//! normal equations up to [`LM_EXPLICIT_MAX_PARAMS`] unknowns, matrix-free conjugate
//! gradients on `JᵀJ + μI` above).
//!
//! Not consensus: iteration counts depend on the data. Every iterate is projected onto
//! the iterate balls, so what a solve returns can be published as a model update.

use super::objective::Level;
use super::{AttentionProblem, Eval};
use crate::compute::det::{self, Cholesky};
use crate::compute::problem::{IterReport, Params, Problem, ProblemError, SolveInfo, SolveOpts, StopReason};

/// Largest `2d²` for which the joint solver forms and factors `JᵀJ` (d <= 16); above it
/// the Levenberg–Marquardt systems are solved by conjugate gradients with `J` and `Jᵀ`
/// products.
pub const LM_EXPLICIT_MAX_PARAMS: usize = 512;
/// Conjugate-gradient iterations per Levenberg–Marquardt system, at most.
pub const CG_MAX_ITER: usize = 200;
/// Conjugate gradients stop at this residual relative to the right-hand side.
pub const CG_REL_TOL: f64 = 1e-10;
/// Armijo constant of the alternating solver's `X`-step.
const ARMIJO_C1: f64 = 1e-4;
/// The joint solver's stopping rule on the data loss, relative to `||B||²` (SOLVERS.md §5.4).
const LOSS_REL_TOL: f64 = 1e-28;

/// Which off-chain algorithm [`AttentionProblem::solve_with`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionSolver {
    /// Joint Levenberg–Marquardt on `(X, Y)` (SOLVERS.md §5.4): the default.
    JointLm,
    /// The paper's alternating algorithm: exact `Y` least squares, then one damped Newton
    /// step in `X` with the exact Hessian (SOLVERS.md §5.3).
    Alternating,
}

impl AttentionSolver {
    /// Stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            AttentionSolver::JointLm => "joint-lm",
            AttentionSolver::Alternating => "alternating",
        }
    }
}

impl std::str::FromStr for AttentionSolver {
    type Err = ProblemError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "joint-lm" | "lm" => Ok(AttentionSolver::JointLm),
            "alternating" => Ok(AttentionSolver::Alternating),
            other => Err(ProblemError::InvalidSpec {
                what: "solver",
                reason: format!("{other:?} is not joint-lm or alternating"),
            }),
        }
    }
}

/// Solves `(A + sI) v = b` by conjugate gradients, `A` applied by `apply`; stops at
/// [`CG_REL_TOL`] relative residual or [`CG_MAX_ITER`] iterations.
fn conjugate_gradients(apply: &dyn Fn(&[f64]) -> Vec<f64>, s: f64, b: &[f64]) -> Vec<f64> {
    let mut x = vec![0.0; b.len()];
    let mut r = b.to_vec();
    let mut p = r.clone();
    let mut rr = det::dot(&r, &r);
    let stop = CG_REL_TOL * CG_REL_TOL * rr;
    for _ in 0..CG_MAX_ITER {
        if rr <= stop || rr == 0.0 {
            break;
        }
        let mut ap = apply(&p);
        det::axpy(s, &p, &mut ap);
        let pap = det::dot(&p, &ap);
        if !(pap > 0.0) {
            break;
        }
        let alpha = rr / pap;
        det::axpy(alpha, &p, &mut x);
        det::axpy(-alpha, &ap, &mut r);
        let rr_new = det::dot(&r, &r);
        let beta = rr_new / rr;
        for (pi, ri) in p.iter_mut().zip(&r) {
            *pi = beta.mul_add(*pi, *ri);
        }
        rr = rr_new;
    }
    x
}

impl AttentionProblem {
    /// `tr(JᵀJ) = Σ_j ||A1[j,:]||² ||Qb_j||²_F + d·||M||²_F`, without forming `JᵀJ`.
    fn normal_trace(&self, ev: &Eval) -> f64 {
        let qb = ev.qb.as_ref().expect("a Gauss–Newton evaluation");
        let mut t = 0.0;
        for j in 0..self.n() {
            let a = self.a1.row(j);
            t += det::dot(a, a) * det::dot(qb.row(j), qb.row(j));
        }
        t + self.d() as f64 * det::dot(ev.m.data(), ev.m.data())
    }

    /// The Levenberg–Marquardt direction `(JᵀJ + sI)⁻¹ ∇L/2`.
    fn lm_direction(&self, ev: &Eval, s: f64) -> Result<Vec<f64>, ProblemError> {
        let g = ev.grad.as_ref().expect("gradient level");
        let half: Vec<f64> = g.iter().map(|v| 0.5 * v).collect();
        if self.dim() <= LM_EXPLICIT_MAX_PARAMS {
            let nm = self.normal_matrix(ev);
            let chol = Cholesky::factor_shifted(&nm, s)?;
            Ok(chol.solve(&half))
        } else {
            Ok(self.lm_direction_cg(ev, s))
        }
    }

    /// The Levenberg–Marquardt direction by matrix-free conjugate gradients.
    pub(super) fn lm_direction_cg(&self, ev: &Eval, s: f64) -> Vec<f64> {
        let g = ev.grad.as_ref().expect("gradient level");
        let half: Vec<f64> = g.iter().map(|v| 0.5 * v).collect();
        let apply = |v: &[f64]| self.vjp(ev, &self.jvp(ev, v));
        conjugate_gradients(&apply, s, &half)
    }

    /// Off-chain solve by `solver`; calls `observe` after every iteration.
    pub fn solve_with(
        &self,
        solver: AttentionSolver,
        opts: &SolveOpts,
        observe: &mut dyn FnMut(&IterReport),
    ) -> Result<(Params, SolveInfo), ProblemError> {
        let x0 = opts.x0.clone().unwrap_or_else(|| self.init());
        x0.check(self.dim())?;
        // SOLVERS.md §5.4: start from the exact Y for the given X.
        let x = self.project(self.y_step(&x0.0)?);
        match solver {
            AttentionSolver::JointLm => self.joint_lm(x, opts, observe),
            AttentionSolver::Alternating => self.alternating(x, opts, observe),
        }
    }

    fn joint_lm(
        &self,
        mut x: Vec<f64>,
        opts: &SolveOpts,
        observe: &mut dyn FnMut(&IterReport),
    ) -> Result<(Params, SolveInfo), ProblemError> {
        let b2 = det::dot(self.b.data(), self.b.data());
        let mut ev = self.eval(&x, Level::GaussNewton)?;
        let grad_norm0 = det::nrm2(ev.grad.as_ref().expect("gradient"));
        let tol = (opts.tol_grad * grad_norm0).max(f64::MIN_POSITIVE);
        let mut info = SolveInfo {
            iterations: 0,
            reason: StopReason::MaxIterations,
            converged: false,
            grad_norm0,
            max_mu: 0.0,
            history: Vec::new(),
        };
        let mut mu_rel = 1e-3;
        for it in 1..=opts.max_iter {
            let gnorm = det::nrm2(ev.grad.as_ref().expect("gradient"));
            if gnorm <= tol || ev.data_loss <= LOSS_REL_TOL * b2 {
                info.reason = StopReason::GradientTolerance;
                info.converged = true;
                break;
            }
            let scale = self.normal_trace(&ev) / self.dim() as f64;
            let mut accepted = None;
            for _ in 0..40 {
                let mu = mu_rel * scale;
                let dir = self.lm_direction(&ev, self.rho + mu)?;
                let cand = self.project(x.iter().zip(&dir).map(|(a, b)| a - b).collect());
                // The Gauss–Newton blocks only for an accepted candidate.
                if let Ok(e) = self.eval(&cand, Level::Value)
                    && e.value < ev.value
                {
                    let e = self.eval(&cand, Level::GaussNewton)?;
                    accepted = Some((cand, e, mu));
                    mu_rel = (mu_rel / 3.0).max(1e-15);
                    break;
                }
                mu_rel *= 4.0;
            }
            let Some((cand, e, mu)) = accepted else {
                info.reason = StopReason::Stalled;
                break;
            };
            x = cand;
            ev = e;
            info.max_mu = info.max_mu.max(mu);
            info.iterations = it;
            let grad_norm = det::nrm2(ev.grad.as_ref().expect("gradient"));
            let report = IterReport { iter: it, loss: ev.value, grad_norm, step_len: 1.0, mu };
            observe(&report);
            info.history.push(report);
        }
        if !info.converged {
            let gnorm = det::nrm2(ev.grad.as_ref().expect("gradient"));
            if gnorm <= tol || ev.data_loss <= LOSS_REL_TOL * b2 {
                info.reason = StopReason::GradientTolerance;
                info.converged = true;
            }
        }
        Ok((Params(x), info))
    }

    fn alternating(
        &self,
        mut x: Vec<f64>,
        opts: &SolveOpts,
        observe: &mut dyn FnMut(&IterReport),
    ) -> Result<(Params, SolveInfo), ProblemError> {
        let dd = self.d() * self.d();
        let mut ev = self.eval(&x, Level::Gradient)?;
        let grad_norm0 = det::nrm2(ev.grad.as_ref().expect("gradient"));
        let tol = (opts.tol_grad * grad_norm0).max(f64::MIN_POSITIVE);
        let mut info = SolveInfo {
            iterations: 0,
            reason: StopReason::MaxIterations,
            converged: false,
            grad_norm0,
            max_mu: 0.0,
            history: Vec::new(),
        };
        for it in 1..=opts.max_iter {
            let g = ev.grad.clone().expect("gradient");
            if det::nrm2(&g) <= tol {
                info.reason = StopReason::GradientTolerance;
                info.converged = true;
                break;
            }
            // X-step: damped Newton with the exact X-block Hessian.
            let h = self.hessian_xx(&x)?;
            let (chol, mu) = Cholesky::factor_lm(&h, 200)?;
            info.max_mu = info.max_mu.max(mu);
            let dir = chol.solve(&g[..dd]);
            let decrement = det::dot(&g[..dd], &dir);
            let mut t = 1.0f64;
            let mut moved = None;
            for _ in 0..=30 {
                let mut cand = x.clone();
                for (c, di) in cand[..dd].iter_mut().zip(&dir) {
                    *c = (-t).mul_add(*di, *c);
                }
                let cand = self.project(cand);
                if let Ok(e) = self.eval(&cand, Level::Value)
                    && e.value <= (-(ARMIJO_C1 * t)).mul_add(decrement, ev.value)
                {
                    moved = Some(cand);
                    break;
                }
                t *= 0.5;
            }
            let Some(cand) = moved else {
                info.reason = StopReason::Stalled;
                break;
            };
            // Y-step: exact least squares for the new X.
            x = self.project(self.y_step(&cand)?);
            ev = self.eval(&x, Level::Gradient)?;
            info.iterations = it;
            let grad_norm = det::nrm2(ev.grad.as_ref().expect("gradient"));
            let report = IterReport { iter: it, loss: ev.value, grad_norm, step_len: t, mu };
            observe(&report);
            info.history.push(report);
        }
        if !info.converged && det::nrm2(ev.grad.as_ref().expect("gradient")) <= tol {
            info.reason = StopReason::GradientTolerance;
            info.converged = true;
        }
        Ok((Params(x), info))
    }
}
