//! The softmax family's off-chain solver: exact Newton with a Levenberg–Marquardt
//! safeguard and Armijo backtracking (SOLVERS.md §0.5, [V] on planted instances).
//!
//! Not consensus: its iteration count depends on the data. It stays inside the iterate
//! box, so what it returns can be published as a model update and mined from.

use super::{ARMIJO_C1, SoftmaxProblem};
use crate::compute::det::{self, Cholesky};
use crate::compute::problem::{IterReport, Params, Problem, ProblemError, SolveInfo, SolveOpts, StopReason};

impl SoftmaxProblem {
    /// Exact Newton with the Levenberg–Marquardt safeguard and Armijo backtracking
    /// (SOLVERS.md §0.5 items 1, 2, 4), every trial point projected onto the iterate box so the
    /// result is a valid witness. Off-chain: iteration counts depend on the data.
    pub(super) fn newton_solve(
        &self,
        opts: &SolveOpts,
        observe: &mut dyn FnMut(&IterReport),
    ) -> Result<(Params, SolveInfo), ProblemError> {
        let mut x = opts.x0.clone().unwrap_or_else(|| self.init());
        x.check(self.dim())?;
        let mut ev = self.eval(&x.0)?;
        let (mut g, mut g1) = self.gradient(&ev);
        let mut gnorm = det::nrm2(&g);
        let grad_norm0 = gnorm;
        // Relative (SOLVERS.md §0.5 item 4 as measured): on planted data ||∇L(x0)|| is
        // 1e-7..1e-4, so an absolute floor of 1 stopped a 50000 x 128 solve at 1e-4
        // relative. The floor only keeps a start at the optimum from dividing by zero.
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
            if gnorm <= tol {
                info.reason = StopReason::GradientTolerance;
                info.converged = true;
                break;
            }
            let h = self.hessian(&ev, g1.as_deref());
            let (chol, mu) = Cholesky::factor_lm(&h, 200)?;
            info.max_mu = info.max_mu.max(mu);
            let dir = chol.solve(&g);
            let decrement = det::dot(&g, &dir);
            let mut t = 1.0f64;
            let mut accepted = None;
            for _ in 0..=30 {
                let cand = self.project(x.0.iter().zip(&dir).map(|(xi, di)| (-t).mul_add(*di, *xi)).collect());
                if let Ok(e) = self.eval(&cand)
                    && e.value <= (-(ARMIJO_C1 * t)).mul_add(decrement, ev.value)
                {
                    accepted = Some((cand, e));
                    break;
                }
                t *= 0.5;
            }
            let Some((cand, e)) = accepted else {
                info.reason = StopReason::Stalled;
                break;
            };
            x = Params(cand);
            ev = e;
            (g, g1) = self.gradient(&ev);
            gnorm = det::nrm2(&g);
            info.iterations = it;
            let report = IterReport { iter: it, loss: ev.value, grad_norm: gnorm, step_len: t, mu };
            observe(&report);
            info.history.push(report);
            if gnorm <= tol {
                info.reason = StopReason::GradientTolerance;
                info.converged = true;
                break;
            }
            // Relative to the loss (the loss of this family is O(1/n²), so `max(1, L)`
            // made this an absolute 2e-16 and stopped at a 1e-9 relative decrease).
            if decrement <= 2e-16 * ev.value.abs() {
                info.reason = StopReason::NewtonDecrement;
                info.converged = true;
                break;
            }
        }
        Ok((x, info))
    }
}
