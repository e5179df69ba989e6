//! The softmax-family objective at one point: its value and parts, gradient, exact
//! Hessian and Gauss–Newton factor (SOLVERS.md §0.4, §3.2, §9.2, all [V]).
//!
//! Shared by the mining step, the certificate and the off-chain solve. Every sum is a
//! `compute::det` kernel; it owns no randomness and no step logic.

use super::{MIN_PROTECTED_LOSS, SoftmaxProblem};
use crate::compute::copyright::CopyrightVariant;
use crate::compute::det::{self, Mat, count_flops, math};
use crate::compute::nmr::{self, Term};
use crate::compute::problem::ProblemError;

/// The objective and its parts at one point.
#[derive(Clone, Debug)]
pub(super) struct Eval {
    pub(super) z: Vec<f64>,
    pub(super) main: Term,
    /// ℓ₁ term: over all rows with mask m₁, or over the protected rows (per-block).
    pub(super) prot: Option<Term>,
    pub(super) reg: f64,
    pub(super) value: f64,
}

impl Eval {
    pub(super) fn l1(&self) -> Option<f64> {
        self.prot.as_ref().map(|t| t.loss)
    }
}

impl SoftmaxProblem {
    /// Evaluates the objective at `x` (no derivatives). Every term is computed before
    /// any error is returned, so a failing point costs as much as a good one.
    pub(super) fn eval(&self, x: &[f64]) -> Result<Eval, ProblemError> {
        let n = self.n();
        let mut z = vec![0.0; n];
        det::gemv(self.a.view(), x, &mut z, false);
        let phi = nmr::eval_phi(self.phi, &z);
        let main_mask = self.main_mask();
        let prot = match (&self.copyright, &phi) {
            (None, _) => None,
            (Some(c), _) if c.spec.variant == CopyrightVariant::PerBlock => {
                let z1: Vec<f64> = c.spec.rows.iter().map(|&r| z[r]).collect();
                Some(nmr::eval_phi(self.phi, &z1).and_then(|phi1| nmr::term(phi1, &c.b1, None)))
            }
            (Some(c), Ok(phi)) => Some(nmr::term(phi.clone(), &self.b, Some(&c.m1))),
            (Some(_), Err(e)) => Some(Err(e.clone())),
        };
        let main = phi.and_then(|phi| nmr::term(phi, &self.b, main_mask.as_deref()));
        count_flops(n as u64);
        let wz: Vec<f64> = self.w2.iter().zip(&z).map(|(w, z)| w * z).collect();
        let reg = 0.5 * det::dot(&wz, &z);
        let main = main?;
        let prot = prot.transpose()?;
        let mut value = main.loss + reg;
        if let (Some(c), Some(t)) = (&self.copyright, &prot) {
            if !(t.loss >= MIN_PROTECTED_LOSS) {
                return Err(ProblemError::ProtectedLossZero { l1: t.loss });
            }
            value += c.spec.gamma / t.loss;
        }
        if !value.is_finite() {
            return Err(ProblemError::NonFinite { what: "objective", index: 0 });
        }
        Ok(Eval { z, main, prot, reg, value })
    }

    /// The ℓ₁ term's z-space gradient scattered to all `n` rows.
    pub(super) fn prot_grad_z(&self, ev: &Eval) -> Option<Vec<f64>> {
        let (c, t) = (self.copyright.as_ref()?, ev.prot.as_ref()?);
        let g = t.grad_z();
        Some(match c.spec.variant {
            CopyrightVariant::PerBlock => scatter(&g, &c.spec.rows, self.n()),
            _ => g,
        })
    }

    /// `(∇L, ∇ℓ₁)` at an evaluated point.
    pub(super) fn gradient(&self, ev: &Eval) -> (Vec<f64>, Option<Vec<f64>>) {
        let n = self.n();
        let mut gz = ev.main.grad_z();
        count_flops(2 * n as u64);
        for i in 0..n {
            gz[i] = self.w2[i].mul_add(ev.z[i], gz[i]);
        }
        let mut g1 = None;
        if let (Some(c), Some(gz1)) = (&self.copyright, self.prot_grad_z(ev)) {
            let l1 = ev.prot.as_ref().map_or(1.0, |t| t.loss);
            let coef = -(c.spec.gamma / (l1 * l1));
            count_flops(2 * n as u64);
            for i in 0..n {
                gz[i] = coef.mul_add(gz1[i], gz[i]);
            }
            let mut g = vec![0.0; self.a.cols()];
            det::gemv(self.a.t(), &gz1, &mut g, false);
            g1 = Some(g);
        }
        let mut g = vec![0.0; self.a.cols()];
        det::gemv(self.a.t(), &gz, &mut g, false);
        (g, g1)
    }

    /// `∇L(x)` (for experiments and tests).
    pub fn gradient_at(&self, x: &[f64]) -> Result<Vec<f64>, ProblemError> {
        Ok(self.gradient(&self.eval(x)?).0)
    }

    /// The exact Hessian `∇²L(x)` (for experiments and tests).
    pub fn hessian_at(&self, x: &[f64]) -> Result<Mat, ProblemError> {
        let ev = self.eval(x)?;
        let (_, g1) = self.gradient(&ev);
        Ok(self.hessian(&ev, g1.as_deref()))
    }

    /// The diagonal part `Aᵀ diag(δ + w²) A` of the Hessian of a task without the
    /// copyright option: `∇²L(x)` minus it is `Aᵀ(κvvᵀ − pvᵀ − vpᵀ)A/α²`, rank at most 2
    /// (SOLVERS.md §0.4; the "low-rank plus diagonal" structure of 2309.13482).
    pub fn hessian_diagonal_part_at(&self, x: &[f64]) -> Result<Mat, ProblemError> {
        let ev = self.eval(x)?;
        let mut diag = ev.main.hess_diag(self.main_mask().as_deref());
        for (d, w) in diag.iter_mut().zip(&self.w2) {
            *d += w;
        }
        let mut h = Mat::zeros(self.a.cols(), self.a.cols());
        det::syrk(self.a.view(), Some(&diag), &mut h);
        Ok(h)
    }

    /// The exact Hessian `∇²L` at an evaluated point (SOLVERS.md §0.4, §9.2).
    pub(super) fn hessian(&self, ev: &Eval, g1: Option<&[f64]>) -> Mat {
        let (n, d) = (self.n(), self.a.cols());
        let main_mask = self.main_mask();
        let mut diag = ev.main.hess_diag(main_mask.as_deref());
        for i in 0..n {
            diag[i] += self.w2[i];
        }
        let mut h = Mat::zeros(d, d);
        let (p, kappa) = ev.main.rank2(&self.b, main_mask.as_deref());
        let mut low = vec![(1.0 / (ev.main.alpha * ev.main.alpha), kappa, ev.main.phi.v.clone(), p)];
        if let (Some(c), Some(t)) = (&self.copyright, &ev.prot) {
            let l1 = t.loss;
            let coef = -(c.spec.gamma / (l1 * l1));
            let (d1, v1, p1, kappa1) = match c.spec.variant {
                CopyrightVariant::PerBlock => {
                    let (p1, k1) = t.rank2(&c.b1, None);
                    let rows = &c.spec.rows;
                    (scatter(&t.hess_diag(None), rows, n), scatter(&t.phi.v, rows, n), scatter(&p1, rows, n), k1)
                }
                _ => {
                    let (p1, k1) = t.rank2(&self.b, Some(&c.m1));
                    (t.hess_diag(Some(&c.m1)), t.phi.v.clone(), p1, k1)
                }
            };
            for i in 0..n {
                diag[i] = coef.mul_add(d1[i], diag[i]);
            }
            low.push((coef / (t.alpha * t.alpha), kappa1, v1, p1));
        }
        det::syrk(self.a.view(), Some(&diag), &mut h);
        for (coef, kappa, v, p) in low {
            let mut av = vec![0.0; d];
            let mut ap = vec![0.0; d];
            det::gemv(self.a.t(), &v, &mut av, false);
            det::gemv(self.a.t(), &p, &mut ap, false);
            add_rank2(&mut h, coef, kappa, &av, &ap);
        }
        if let (Some(c), Some(g1), Some(t)) = (&self.copyright, g1, &ev.prot) {
            let l1 = t.loss;
            add_rank1(&mut h, 2.0 * c.spec.gamma / (l1 * l1 * l1), g1);
        }
        h
    }

    /// The Gauss–Newton matrix `G = Jᵀdiag(m)J + Aᵀdiag(w²)A` formed exactly from one
    /// weighted Gram of `A` and a rank-2 correction, without building `J`: with `q = Aᵀv`,
    /// `r = Aᵀ(m∘v∘f)` and `σ = Σ mᵢfᵢ²`, `G = Aᵀdiag(m∘v²/α² + w²)A + (σ qqᵀ − rqᵀ − qrᵀ)/α²`
    /// (expanding `Jᵢ = (vᵢaᵢ − fᵢq)/α`; SOLVERS.md §0.4). Half the Gram work of the
    /// stacked factor `[m∘J; diag(w)A]` when the task has a regulariser.
    pub(super) fn gn_gram(&self, ev: &Eval) -> Mat {
        let (n, d) = (self.n(), self.a.cols());
        let t = &ev.main;
        let mask = self.main_mask();
        let inv_a2 = 1.0 / (t.alpha * t.alpha);
        count_flops(6 * n as u64);
        let mut weights = vec![0.0; n];
        let mut mvf = vec![0.0; n];
        let mut mf = vec![0.0; n];
        for i in 0..n {
            let mi = mask.as_ref().map_or(1.0, |m| m[i]);
            let v = t.phi.v[i];
            weights[i] = (mi * v * v).mul_add(inv_a2, self.w2[i]);
            mvf[i] = mi * v * t.f[i];
            mf[i] = mi * t.f[i];
        }
        let mut h = Mat::zeros(d, d);
        det::syrk(self.a.view(), Some(&weights), &mut h);
        let mut q = vec![0.0; d];
        let mut r = vec![0.0; d];
        det::gemv(self.a.t(), &t.phi.v, &mut q, false);
        det::gemv(self.a.t(), &mvf, &mut r, false);
        let sigma = det::dot(&mf, &t.f);
        add_rank2(&mut h, inv_a2, sigma, &q, &r);
        h
    }

    /// Rows of the Gauss–Newton factor `M = [m∘J; diag(w) A]` (the regulariser rows only
    /// when the task has one), `J = (diag(v) A - f (vᵀA))/α`.
    pub(super) fn gn_rows(&self, ev: &Eval) -> Mat {
        let (n, d) = (self.n(), self.a.cols());
        let rows = if self.has_reg { 2 * n } else { n };
        let mut m = Mat::zeros(rows, d);
        let t = &ev.main;
        let mut q = vec![0.0; d];
        det::gemv(self.a.t(), &t.phi.v, &mut q, false);
        let mask = self.main_mask();
        count_flops((4 * n * d) as u64);
        for i in 0..n {
            let mi = mask.as_ref().map_or(1.0, |m| m[i]);
            let (vi, fi) = (t.phi.v[i] * mi, t.f[i] * mi);
            let ai = self.a.row(i);
            let row = m.row_mut(i);
            for j in 0..d {
                row[j] = vi.mul_add(ai[j], -(fi * q[j])) / t.alpha;
            }
        }
        if self.has_reg {
            count_flops((n * d + n) as u64);
            for i in 0..n {
                let w = math::sqrt(self.w2[i]);
                let ai = self.a.row(i);
                let row = m.row_mut(n + i);
                for j in 0..d {
                    row[j] = w * ai[j];
                }
            }
        }
        m
    }
}

/// `out[rows[k]] = v[k]`, zeros elsewhere.
pub(super) fn scatter(v: &[f64], rows: &[usize], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n];
    for (k, &r) in rows.iter().enumerate() {
        out[r] = v[k];
    }
    out
}

/// `H += coef·(κ a aᵀ - p aᵀ - a pᵀ)` for `j <= l`, mirrored (so `H` stays exactly symmetric).
pub(super) fn add_rank2(h: &mut Mat, coef: f64, kappa: f64, a: &[f64], p: &[f64]) {
    let d = a.len();
    count_flops((4 * d * (d + 1)) as u64);
    for j in 0..d {
        for l in j..d {
            let inner = (kappa * a[j]).mul_add(a[l], -(p[j] * a[l])) - a[j] * p[l];
            let v = coef.mul_add(inner, h.get(j, l));
            h.set(j, l, v);
            h.set(l, j, v);
        }
    }
}

/// `H += coef·g gᵀ` for `j <= l`, mirrored.
pub(super) fn add_rank1(h: &mut Mat, coef: f64, g: &[f64]) {
    let d = g.len();
    count_flops((d * (d + 1)) as u64);
    for j in 0..d {
        for l in j..d {
            let v = (coef * g[j]).mul_add(g[l], h.get(j, l));
            h.set(j, l, v);
            h.set(l, j, v);
        }
    }
}
