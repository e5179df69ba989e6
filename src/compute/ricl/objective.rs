//! The RICL objective and its derivatives (SOLVERS.md §2.2; derivatives [V]).
//!
//! With `π_{v,i} = softmax_i(S[v,i] + θ_i)`, `ŷ_v = Σ_i π_{v,i} y_i`, `r_v = ŷ_v − y_v`:
//! `J = (1/2V) Σ r_v² + (λ/2)||θ||²`, `Jac[v,i] = ∂ŷ_v/∂θ_i = π_{v,i}(y_i − ŷ_v)`,
//! `∇J = Jacᵀ r / V + λθ`, Gauss–Newton matrix `JacᵀJac / V` (the ridge `λ` is added by
//! the factorisation's shift). Consensus arithmetic: every sum is a `det` kernel or a
//! documented left-to-right loop.

use super::RiclProblem;
use crate::compute::det::{self, Mat, count_flops, math};
use crate::compute::nmr::EXP_FLOPS;
use crate::compute::problem::ProblemError;

/// How much of the objective an evaluation computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `π`, `ŷ`, `r`, `J`.
    Value,
    /// Also the Jacobian and `∇J`.
    Gradient,
}

/// One evaluation at `θ`.
#[derive(Clone, Debug)]
pub struct Eval {
    /// Attention weights `π` (V x m), rows summing to 1.
    pub pi: Mat,
    /// Predictions `ŷ_v`.
    pub yhat: Vec<f64>,
    /// Residuals `r_v = ŷ_v − y_v`.
    pub r: Vec<f64>,
    /// `(1/2V) Σ r_v²`.
    pub data_loss: f64,
    /// `J(θ)`.
    pub value: f64,
    /// `Jac` (V x m), at [`Level::Gradient`].
    pub jac: Option<Mat>,
    /// `∇J`, at [`Level::Gradient`].
    pub grad: Option<Vec<f64>>,
}

/// `out = softmax(s + θ)` computed directly: `z_i = s_i + θ_i`, the max shift, `e^{z_i −
/// max}` by `libm`, `det::sum` of the row, then one division per entry. For any scores and
/// any `θ` (the off-chain predictor on new queries); the objective uses the factored form
/// of [`attention_weights`].
pub fn softmax_weights(s: &[f64], theta: &[f64], out: &mut [f64]) {
    let m = s.len();
    count_flops(m as u64 * (EXP_FLOPS + 3));
    let mut zmax = f64::NEG_INFINITY;
    for ((o, &si), &ti) in out.iter_mut().zip(s).zip(theta) {
        *o = si + ti;
        zmax = zmax.max(*o);
    }
    for o in out.iter_mut() {
        *o = math::exp(*o - zmax);
    }
    let z = det::sum(out);
    for o in out.iter_mut() {
        *o /= z;
    }
}

/// `E[v,i] = e^{S[v,i] − max_i S[v,i]}` by `libm`: the scores' exponentials, computed once
/// per task, so an evaluation of the objective needs `m` exponentials, not `V·m`.
pub fn exp_scores(s: &Mat) -> Mat {
    let (v, m) = (s.rows(), s.cols());
    count_flops((v * m) as u64 * (EXP_FLOPS + 2));
    let mut e = Mat::zeros(v, m);
    for k in 0..v {
        let row = s.row(k);
        let smax = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        for (o, &si) in e.row_mut(k).iter_mut().zip(row) {
            *o = math::exp(si - smax);
        }
    }
    e
}

/// `u_i = e^{θ_i − max θ}` by `libm`: the example weights up to a common factor.
pub fn example_weights(theta: &[f64]) -> Vec<f64> {
    count_flops(theta.len() as u64 * (EXP_FLOPS + 2));
    let tmax = theta.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    theta.iter().map(|&t| math::exp(t - tmax)).collect()
}

/// `out = softmax(s + θ)` in factored form: `out_i = E_i·u_i / Σ_j E_j·u_j` with `E` a row
/// of [`exp_scores`] and `u` the [`example_weights`] (one product per entry, `det::sum` of
/// the row, one division per entry). The sum is at least `e^{−2·THETA_BOUND}` for `θ` in
/// the box (the row's largest score has `E = 1`), so nothing divides by zero.
pub fn attention_weights(e: &[f64], u: &[f64], out: &mut [f64]) {
    // The products and the divisions; `det::sum` counts its own.
    count_flops(2 * e.len() as u64);
    for ((o, &ei), &ui) in out.iter_mut().zip(e).zip(u) {
        *o = ei * ui;
    }
    let z = det::sum(out);
    for o in out.iter_mut() {
        *o /= z;
    }
}

impl RiclProblem {
    /// Evaluates the objective at `θ` (length m) to `level`.
    ///
    /// # Errors
    /// A non-finite value (impossible inside the admission domain).
    pub fn eval(&self, theta: &[f64], level: Level) -> Result<Eval, ProblemError> {
        let (m, v) = (self.m(), self.v());
        if theta.len() != m {
            return Err(ProblemError::Dimension { what: "params", expected: m, got: theta.len() });
        }
        let u = example_weights(theta);
        let mut pi = Mat::zeros(v, m);
        let mut yhat = vec![0.0; v];
        for (k, yk) in yhat.iter_mut().enumerate() {
            attention_weights(self.exp_scores.row(k), &u, pi.row_mut(k));
            *yk = det::dot(pi.row(k), &self.yp);
        }
        count_flops(v as u64);
        let r: Vec<f64> = yhat.iter().zip(&self.yv).map(|(a, b)| a - b).collect();
        let inv_2v = 0.5 / v as f64;
        count_flops(4);
        let data_loss = det::dot(&r, &r) * inv_2v;
        let value = (0.5 * self.lambda).mul_add(det::dot(theta, theta), data_loss);
        if !value.is_finite() {
            return Err(ProblemError::NonFinite { what: "ricl objective", index: 0 });
        }
        let mut ev = Eval { pi, yhat, r, data_loss, value, jac: None, grad: None };
        if level >= Level::Gradient {
            // Jac[v,i] = π_{v,i} (y_i − ŷ_v): one subtraction and one product per entry.
            count_flops(2 * (v * m) as u64);
            let mut jac = Mat::zeros(v, m);
            for k in 0..v {
                let (row, yk) = (ev.pi.row(k), ev.yhat[k]);
                for ((j, &p), &yi) in jac.row_mut(k).iter_mut().zip(row).zip(&self.yp) {
                    *j = p * (yi - yk);
                }
            }
            let mut g = vec![0.0; m];
            det::gemv(jac.t(), &ev.r, &mut g, false);
            let inv_v = 1.0 / v as f64;
            count_flops(3 * m as u64);
            for (gi, &ti) in g.iter_mut().zip(theta) {
                *gi = self.lambda.mul_add(ti, *gi * inv_v);
            }
            if let Some(index) = g.iter().position(|x| !x.is_finite()) {
                return Err(ProblemError::NonFinite { what: "ricl gradient", index });
            }
            ev.jac = Some(jac);
            ev.grad = Some(g);
        }
        Ok(ev)
    }

    /// The Gauss–Newton matrix `JacᵀJac / V` (m x m) of a [`Level::Gradient`] evaluation.
    pub fn normal_matrix(&self, ev: &Eval) -> Mat {
        let jac = ev.jac.as_ref().expect("a gradient-level evaluation");
        let m = self.m();
        let mut nm = Mat::zeros(m, m);
        det::syrk(jac.view(), None, &mut nm);
        let inv_v = 1.0 / self.v() as f64;
        count_flops((m * m) as u64);
        for x in nm.data_mut() {
            *x *= inv_v;
        }
        nm
    }

    /// The gradient of the validation loss `(1/2V)Σr²` with respect to the frozen `W` at
    /// `θ` (the fine-tuning baseline, SOLVERS.md §2.4): `∇_W = (1/V) Σ_v Σ_i r_v
    /// π_{v,i}(y_i − ŷ_v) x_i q_vᵀ = Xᵀ (diag(r) Jac)ᵀ Q / V`.
    pub fn w_gradient(&self, ev: &Eval) -> Mat {
        let jac = ev.jac.as_ref().expect("a gradient-level evaluation");
        let (m, v, d) = (self.m(), self.v(), self.d());
        let mut g = jac.clone();
        for k in 0..v {
            let rk = ev.r[k] / v as f64;
            for x in g.row_mut(k) {
                *x *= rk;
            }
        }
        let mut t = Mat::zeros(m, d);
        det::gemm(g.t(), self.q.view(), &mut t, false);
        let mut gw = Mat::zeros(d, d);
        det::gemm(self.xp.t(), t.view(), &mut gw, false);
        gw
    }

    /// The exact Hessian of the data term, `(JacᵀJac + S)/V` with the second-order part
    /// `S = diag(Jacᵀr) − Pᵀdiag(r)Jac − Jacᵀdiag(r)P` (`P = π`, from
    /// `∂²ŷ_v/∂θ_i∂θ_j = δ_ij Jac_vi − π_vi Jac_vj − Jac_vi π_vj`); the ridge is the
    /// factorisation's shift. It is not positive definite everywhere. [V] against finite
    /// differences of the gradient.
    pub fn data_hessian(&self, ev: &Eval) -> Mat {
        self.hessian_from(ev, &self.normal_matrix(ev))
    }

    /// [`RiclProblem::data_hessian`] from the Gauss–Newton matrix `nm = JacᵀJac/V` of the
    /// same evaluation: `H[i,j] = (Jacᵀr[i]·δ_ij − M[i,j] − M[j,i])/V + nm[i,j]` with `M =
    /// Pᵀdiag(r)Jac` (one `gemm`, one `gemv`), so a step that has `nm` pays only for `S`.
    ///
    /// # Consensus
    /// Part of every ricl ticket step: `diag(r)Jac` row by row, `M = det::gemm(Pᵀ,
    /// diag(r)Jac)`, `Jacᵀr = det::gemv`, then each entry as written, left to right.
    pub fn hessian_from(&self, ev: &Eval, nm: &Mat) -> Mat {
        let jac = ev.jac.as_ref().expect("a gradient-level evaluation");
        let (m, v) = (self.m(), self.v());
        let mut rj = jac.clone();
        for k in 0..v {
            let rk = ev.r[k];
            for x in rj.row_mut(k) {
                *x *= rk;
            }
        }
        let mut pm = Mat::zeros(m, m);
        det::gemm(ev.pi.t(), rj.view(), &mut pm, false);
        let mut jr = vec![0.0; m];
        det::gemv(jac.t(), &ev.r, &mut jr, false);
        count_flops((v * m + 4 * m * m + m) as u64);
        let inv_v = 1.0 / v as f64;
        let mut h = Mat::zeros(m, m);
        for i in 0..m {
            for j in 0..m {
                let diag = if i == j { jr[i] } else { 0.0 };
                let x = (diag - pm.get(i, j) - pm.get(j, i)) * inv_v + nm.get(i, j);
                h.set(i, j, x);
            }
        }
        h
    }
}
