//! The one-layer attention objective at one point: value, gradient, Gauss–Newton
//! operators and their normal matrix, exact Hessian–vector products, and the Kronecker
//! form of the exact `X`-block Hessian (SOLVERS.md §5.1–5.2, all [V]).
//!
//! `L(X, Y) = ||S(X) A3 Y − B||²_F + ρ(||X||² + ||Y||²)` with `S` the row-softmax of `A1 X
//! A2ᵀ` ([`Kernel::Softmax`]) or the normalised linear attention `D⁻¹ ψ(A1 X) ψ(A2)ᵀ`,
//! `ψ = elu + 1` ([`Kernel::Linear`], SOLVERS.md §1.1), never formed as an `n x n` matrix.
//!
//! Both kernels share one Jacobian structure, which every second-order operator here uses:
//! with `O = S W`, `W = A3 Y`, `R = O − B`,
//! - `∂O[j,i₀]/∂X[k,l] = A1[j,k] · Qb_j[l,i₀]` for a `d x d` block `Qb_j` per token row `j`
//!   (softmax: `Qb_j = A2ᵀ (diag(s_j) − s_j s_jᵀ) W`; linear: `Qb_j[l,i₀] = ψ'(q_jl)(C[l,i₀] −
//!   O[j,i₀] k_l)/den_j` with `C = ψ(A2)ᵀ W`, `k = ψ(A2)ᵀ 1`);
//! - `∂O[j,i₀]/∂Y[k,l] = M[j,k] δ(i₀,l)` with `M = S A3`.
//!
//! The softmax kernel streams the rows of `S` in blocks of [`ROW_BLOCK`] rows, so memory
//! stays `O(n·ROW_BLOCK)`; every reduction over rows is one `det` chain over the whole
//! row range (per-row results are kept, `n x d`), so the bits do not depend on the block.
//! Owns no randomness and no step logic.

#![allow(clippy::needless_range_loop)] // index loops mirror the formulas

use super::{AttentionProblem, Kernel};
use crate::compute::det::{self, Mat, MatRef, count_flops, math};
use crate::compute::nmr::EXP_FLOPS;
use crate::compute::problem::ProblemError;

/// Rows of `S` computed at once by the softmax kernel (memory `ROW_BLOCK·n` values).
pub const ROW_BLOCK: usize = 64;

/// How much of the objective a pass computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The value only.
    Value,
    /// The value and the gradient.
    Gradient,
    /// The value, the gradient and the Gauss–Newton blocks `Qb_j`.
    GaussNewton,
}

/// The objective and what its derivatives need, at one point.
#[derive(Clone, Debug)]
pub struct Eval {
    /// `L = ||R||² + ρ||x||²`.
    pub value: f64,
    /// `||R||²`.
    pub data_loss: f64,
    /// `X` (d x d).
    pub x: Mat,
    /// `Y` (d x d).
    pub y: Mat,
    /// `W = A3 Y` (n x d).
    pub w: Mat,
    /// The attention output `O = S W` (n x d).
    pub o: Mat,
    /// `R = O − B` (n x d).
    pub r: Mat,
    /// `M = S A3` (n x d): `O = M Y` (from [`Level::Gradient`]; zeros at [`Level::Value`]).
    pub m: Mat,
    /// `∇L` as `[vec(∇_X); vec(∇_Y)]` (from [`Level::Gradient`]).
    pub grad: Option<Vec<f64>>,
    /// Row `j` is `vec_r(Qb_j)` (n x d², from [`Level::GaussNewton`]).
    pub qb: Option<Mat>,
    /// Softmax only: `S A2` (n x d), from [`Level::GaussNewton`].
    pub sa2: Option<Mat>,
}

/// `[vec(X); vec(Y)]` split into the two `d x d` matrices.
pub fn split(x: &[f64], d: usize) -> (Mat, Mat) {
    let xm = Mat::from_vec(d, d, x[..d * d].to_vec()).expect("2d² params");
    let ym = Mat::from_vec(d, d, x[d * d..2 * d * d].to_vec()).expect("2d² params");
    (xm, ym)
}

/// A view of rows `j0..j1` of `m`.
fn rows(m: &Mat, j0: usize, j1: usize) -> MatRef<'_> {
    let c = m.cols();
    MatRef::row_major(&m.data()[j0 * c..j1 * c], j1 - j0, c)
}

/// Row-softmax of `z` in place (max shift, `det::sum` of each row).
fn rowsoftmax(z: &mut Mat) {
    let n = z.cols();
    count_flops(z.rows() as u64 * n as u64 * (EXP_FLOPS + 3));
    for j in 0..z.rows() {
        let row = z.row_mut(j);
        let mut zmax = f64::NEG_INFINITY;
        for &v in row.iter() {
            zmax = zmax.max(v);
        }
        for v in row.iter_mut() {
            *v = math::exp(*v - zmax);
        }
        let s = det::sum(row);
        for v in row.iter_mut() {
            *v /= s;
        }
    }
}

/// `ψ(z) = elu(z) + 1` and `ψ'(z)`, elementwise.
pub fn psi(z: f64) -> (f64, f64) {
    if z > 0.0 {
        (z + 1.0, 1.0)
    } else {
        let e = math::exp(z);
        (e, e)
    }
}

/// `ψ''(z)`.
fn psi2(z: f64) -> f64 {
    if z > 0.0 { 0.0 } else { math::exp(z) }
}

/// `K[i, (l, i₀)] = P[i,l]·Q[i,i₀]` (n x d²): the row-wise Khatri–Rao product.
fn khatri_rao(p: &Mat, q: &Mat) -> Mat {
    let (n, d) = (p.rows(), p.cols());
    let e = q.cols();
    count_flops((n * d * e) as u64);
    let mut out = Mat::zeros(n, d * e);
    for i in 0..n {
        let (pr, qr) = (p.row(i), q.row(i));
        let o = out.row_mut(i);
        for l in 0..d {
            for i0 in 0..e {
                o[l * e + i0] = pr[l] * qr[i0];
            }
        }
    }
    out
}

impl AttentionProblem {
    /// Rows `j0..j1` of the softmax attention matrix `S = rowsoftmax(A1 X A2ᵀ)`.
    fn attention_rows(&self, xm: &Mat, j0: usize, j1: usize) -> Mat {
        let mut q = Mat::zeros(j1 - j0, self.d());
        det::gemm(rows(&self.a1, j0, j1), xm.view(), &mut q, false);
        let mut s = Mat::zeros(j1 - j0, self.a2.rows());
        det::gemm(q.view(), self.a2.t(), &mut s, false);
        rowsoftmax(&mut s);
        s
    }

    /// Evaluates the objective at `x = [vec(X); vec(Y)]` to `level`. Every row is computed
    /// before a non-finite value is reported, so a failing point costs what a good one does.
    pub fn eval(&self, x: &[f64], level: Level) -> Result<Eval, ProblemError> {
        let d = self.d();
        if x.len() != 2 * d * d {
            return Err(ProblemError::Dimension { what: "params", expected: 2 * d * d, got: x.len() });
        }
        let (xm, ym) = split(x, d);
        let mut w = Mat::zeros(self.a3.rows(), d);
        det::gemm(self.a3.view(), ym.view(), &mut w, false);
        let mut ev = match self.kernel {
            Kernel::Softmax => self.softmax_pass(xm, ym, w, level),
            Kernel::Linear => self.linear_pass(xm, ym, w, level),
        };
        ev.data_loss = det::dot(ev.r.data(), ev.r.data());
        let reg = self.rho * det::dot(x, x);
        ev.value = ev.data_loss + reg;
        if let Some(g) = &mut ev.grad {
            count_flops(2 * x.len() as u64);
            for (gi, xi) in g.iter_mut().zip(x) {
                *gi = (2.0 * self.rho).mul_add(*xi, *gi);
            }
        }
        if !ev.value.is_finite() {
            return Err(ProblemError::NonFinite { what: "objective", index: 0 });
        }
        if let Some(g) = &ev.grad
            && let Some(i) = g.iter().position(|v| !v.is_finite())
        {
            return Err(ProblemError::NonFinite { what: "gradient", index: i });
        }
        Ok(ev)
    }

    /// The residual `R = O − B` elementwise.
    fn residual(&self, o: &Mat) -> Mat {
        count_flops(o.data().len() as u64);
        let r: Vec<f64> = o.data().iter().zip(self.b.data()).map(|(o, b)| o - b).collect();
        Mat::from_vec(o.rows(), o.cols(), r).expect("same shape")
    }

    fn softmax_pass(&self, xm: Mat, ym: Mat, w: Mat, level: Level) -> Eval {
        // Queries are the rows of A1 (the task's tokens, or new ones in `predict`); keys and
        // values the rows of A2, A3.
        let (n, nk, d) = (self.a1.rows(), self.a2.rows(), self.d());
        let mut o = Mat::zeros(n, d);
        let mut m = Mat::zeros(n, d);
        let mut h = Mat::zeros(n, d); // rows of G_Z A2 / 2
        let gn = level >= Level::GaussNewton;
        let grad = level >= Level::Gradient;
        let mut qb = gn.then(|| Mat::zeros(n, d * d));
        let mut sa2 = gn.then(|| Mat::zeros(n, d));
        // K[i, (l, i₀)] = A2[i,l]·W[i,i₀]: then (S K)_j = vec(A2ᵀ diag(s_j) W).
        let kr = gn.then(|| khatri_rao(&self.a2, &w));
        let mut j0 = 0;
        while j0 < n {
            let j1 = (j0 + ROW_BLOCK).min(n);
            let nb = j1 - j0;
            let s = self.attention_rows(&xm, j0, j1);
            let mut ob = Mat::zeros(nb, d);
            det::gemm(s.view(), w.view(), &mut ob, false);
            o.data_mut()[j0 * d..j1 * d].copy_from_slice(ob.data());
            if grad {
                let mut mb = Mat::zeros(nb, d);
                det::gemm(s.view(), self.a3.view(), &mut mb, false);
                m.data_mut()[j0 * d..j1 * d].copy_from_slice(mb.data());
                // G_S/2 = R Wᵀ; G_Z/2 = S∘(G_S/2 − rowsum(S∘G_S/2)).
                let mut rb = Mat::zeros(nb, d);
                for (k, v) in rb.data_mut().iter_mut().enumerate() {
                    *v = ob.data()[k] - self.b.data()[j0 * d + k];
                }
                count_flops((nb * d) as u64);
                let mut gs = Mat::zeros(nb, nk);
                det::gemm(rb.view(), w.t(), &mut gs, false);
                count_flops(3 * (nb * nk) as u64);
                for jj in 0..nb {
                    let rr = det::dot(s.row(jj), gs.row(jj));
                    let (sr, gr) = (s.row(jj).to_vec(), gs.row_mut(jj));
                    for i in 0..nk {
                        gr[i] = sr[i] * (gr[i] - rr);
                    }
                }
                let mut hb = Mat::zeros(nb, d);
                det::gemm(gs.view(), self.a2.view(), &mut hb, false);
                h.data_mut()[j0 * d..j1 * d].copy_from_slice(hb.data());
            }
            if let (Some(qb), Some(sa2), Some(kr)) = (&mut qb, &mut sa2, &kr) {
                let mut t = Mat::zeros(nb, d * d);
                det::gemm(s.view(), kr.view(), &mut t, false);
                let mut sb = Mat::zeros(nb, d);
                det::gemm(s.view(), self.a2.view(), &mut sb, false);
                count_flops(2 * (nb * d * d) as u64);
                for jj in 0..nb {
                    let (tr, sr, or) = (t.row(jj), sb.row(jj), ob.row(jj));
                    let dst = qb.row_mut(j0 + jj);
                    for l in 0..d {
                        for i0 in 0..d {
                            dst[l * d + i0] = (-sr[l]).mul_add(or[i0], tr[l * d + i0]);
                        }
                    }
                }
                sa2.data_mut()[j0 * d..j1 * d].copy_from_slice(sb.data());
            }
            j0 = j1;
        }
        let r = self.residual(&o);
        let grad = grad.then(|| {
            let mut gx = Mat::zeros(d, d);
            det::gemm(self.a1.t(), h.view(), &mut gx, false);
            let mut gy = Mat::zeros(d, d);
            det::gemm(m.t(), r.view(), &mut gy, false);
            let mut g = gx.into_vec();
            g.extend_from_slice(gy.data());
            det::scal(2.0, &mut g);
            g
        });
        Eval { value: 0.0, data_loss: 0.0, x: xm, y: ym, w, o, r, m, grad, qb, sa2 }
    }

    fn linear_pass(&self, xm: Mat, ym: Mat, w: Mat, level: Level) -> Eval {
        let (n, d) = (self.a1.rows(), self.d());
        let lin = self.linear.as_ref().expect("linear kernel data");
        let mut q = Mat::zeros(n, d);
        det::gemm(self.a1.view(), xm.view(), &mut q, false);
        count_flops((n * d) as u64 * (EXP_FLOPS + 2));
        let (mut p, mut dp) = (Mat::zeros(n, d), Mat::zeros(n, d));
        for (k, &z) in q.data().iter().enumerate() {
            let (u, v) = psi(z);
            p.data_mut()[k] = u;
            dp.data_mut()[k] = v;
        }
        // C = ψ(A2)ᵀ W = E Y; num = P C; den = P k; O = num/den.
        let mut c = Mat::zeros(d, d);
        det::gemm(lin.e.view(), ym.view(), &mut c, false);
        let mut o = Mat::zeros(n, d);
        det::gemm(p.view(), c.view(), &mut o, false);
        let mut den = vec![0.0; n];
        det::gemv(p.view(), &lin.k, &mut den, false);
        let want_m = level >= Level::Gradient;
        let mut m = Mat::zeros(n, d);
        if want_m {
            det::gemm(p.view(), lin.e.view(), &mut m, false);
        }
        count_flops(if want_m { 2 } else { 1 } * (n * d) as u64);
        for j in 0..n {
            let inv = den[j];
            for v in o.row_mut(j) {
                *v /= inv;
            }
            if want_m {
                for v in m.row_mut(j) {
                    *v /= inv;
                }
            }
        }
        let r = self.residual(&o);
        let grad = (level >= Level::Gradient).then(|| {
            // G_P_j/2 = (R_j Cᵀ − <R_j, O_j> kᵀ)/den_j; G_Q = G_P∘ψ'(Q); ∇_X = A1ᵀ G_Q.
            let mut gp = Mat::zeros(n, d);
            det::gemm(r.view(), c.t(), &mut gp, false);
            count_flops(4 * (n * d) as u64);
            for j in 0..n {
                let s = det::dot(r.row(j), o.row(j));
                let (dpr, gr) = (dp.row(j), gp.row_mut(j));
                for l in 0..d {
                    gr[l] = (-s).mul_add(lin.k[l], gr[l]) / den[j] * dpr[l];
                }
            }
            let mut gx = Mat::zeros(d, d);
            det::gemm(self.a1.t(), gp.view(), &mut gx, false);
            let mut gy = Mat::zeros(d, d);
            det::gemm(m.t(), r.view(), &mut gy, false);
            let mut g = gx.into_vec();
            g.extend_from_slice(gy.data());
            det::scal(2.0, &mut g);
            g
        });
        let qb = (level >= Level::GaussNewton).then(|| {
            count_flops(3 * (n * d * d) as u64);
            let mut qb = Mat::zeros(n, d * d);
            for j in 0..n {
                let (dpr, or) = (dp.row(j), o.row(j));
                let dst = qb.row_mut(j);
                for l in 0..d {
                    let scale = dpr[l] / den[j];
                    for i0 in 0..d {
                        dst[l * d + i0] = (-or[i0]).mul_add(lin.k[l], c.get(l, i0)) * scale;
                    }
                }
            }
            qb
        });
        Eval { value: 0.0, data_loss: 0.0, x: xm, y: ym, w, o, r, m, grad, qb, sa2: None }
    }

    /// The Gauss–Newton product `J [V; U]` (n x d): `A1[j,:] V Qb_j + M U`, from an
    /// [`Level::GaussNewton`] evaluation.
    pub fn jvp(&self, ev: &Eval, dir: &[f64]) -> Mat {
        let (n, d) = (self.n(), self.d());
        let (v, u) = split(dir, d);
        let qb = ev.qb.as_ref().expect("a Gauss–Newton evaluation");
        let mut av = Mat::zeros(n, d);
        det::gemm(self.a1.view(), v.view(), &mut av, false);
        let mut out = Mat::zeros(n, d);
        det::gemm(ev.m.view(), u.view(), &mut out, false);
        count_flops(2 * (n * d * d) as u64);
        for j in 0..n {
            let qj = MatRef::row_major(qb.row(j), d, d);
            let avj = av.row(j).to_vec();
            let oj = out.row_mut(j);
            for i0 in 0..d {
                let mut acc = oj[i0];
                for l in 0..d {
                    acc = avj[l].mul_add(qj.get(l, i0), acc);
                }
                oj[i0] = acc;
            }
        }
        out
    }

    /// The adjoint `Jᵀ Ξ` as `[vec(Σ_j A1[j,:]ᵀ (Qb_j Ξ_jᵀ)ᵀ); vec(Mᵀ Ξ)]`, from an
    /// [`Level::GaussNewton`] evaluation.
    pub fn vjp(&self, ev: &Eval, xi: &Mat) -> Vec<f64> {
        let (n, d) = (self.n(), self.d());
        let qb = ev.qb.as_ref().expect("a Gauss–Newton evaluation");
        // T[j,l] = Σ_i₀ Qb_j[l,i₀] Ξ[j,i₀]; ∂/∂X = A1ᵀ T.
        let mut t = Mat::zeros(n, d);
        count_flops(2 * (n * d * d) as u64);
        for j in 0..n {
            let qj = qb.row(j);
            let xr = xi.row(j);
            let tr = t.row_mut(j);
            for l in 0..d {
                tr[l] = det::dot(&qj[l * d..(l + 1) * d], xr);
            }
        }
        let mut gx = Mat::zeros(d, d);
        det::gemm(self.a1.t(), t.view(), &mut gx, false);
        let mut gy = Mat::zeros(d, d);
        det::gemm(ev.m.t(), xi.view(), &mut gy, false);
        let mut g = gx.into_vec();
        g.extend_from_slice(gy.data());
        g
    }

    /// The Gauss–Newton normal matrix `JᵀJ` (2d² x 2d²) from its Kronecker structure:
    /// `N_XX[(k,l),(k',l')] = Σ_j A1[j,k]A1[j,k'] (Qb_j Qb_jᵀ)[l,l']`, `N_XY[(k,l),(k',l')] =
    /// Σ_j A1[j,k] M[j,k'] Qb_j[l,l']`, `N_YY = MᵀM ⊗ I`: two `d² x n x d²` products and a
    /// Gram of `M`, `O(n d⁴)` instead of the `O(n d⁵)` of a Gram of the explicit Jacobian.
    pub fn normal_matrix(&self, ev: &Eval) -> Mat {
        let (n, d) = (self.n(), self.d());
        let dd = d * d;
        let qb = ev.qb.as_ref().expect("a Gauss–Newton evaluation");
        // G_j = Qb_j Qb_jᵀ, one row per token.
        let mut gj = Mat::zeros(n, dd);
        let mut tmp = Mat::zeros(d, d);
        for j in 0..n {
            let qj = MatRef::row_major(qb.row(j), d, d);
            det::gemm(qj, qj.t(), &mut tmp, false);
            gj.row_mut(j).copy_from_slice(tmp.data());
        }
        let u1 = khatri_rao(&self.a1, &self.a1);
        let u2 = khatri_rao(&self.a1, &ev.m);
        let mut pxx = Mat::zeros(dd, dd);
        det::gemm(u1.t(), gj.view(), &mut pxx, false);
        let mut pxy = Mat::zeros(dd, dd);
        det::gemm(u2.t(), qb.view(), &mut pxy, false);
        let mut mtm = Mat::zeros(d, d);
        det::syrk(ev.m.view(), None, &mut mtm);
        let p = 2 * dd;
        let mut nm = Mat::zeros(p, p);
        for k in 0..d {
            for l in 0..d {
                let row = k * d + l;
                for k2 in 0..d {
                    for l2 in 0..d {
                        let col = k2 * d + l2;
                        nm.set(row, col, pxx.get(k * d + k2, l * d + l2));
                        let xy = pxy.get(k * d + k2, l * d + l2);
                        nm.set(row, dd + col, xy);
                        nm.set(dd + col, row, xy);
                        if l == l2 {
                            nm.set(dd + row, dd + k2 * d + l, mtm.get(k, k2));
                        }
                    }
                }
            }
        }
        nm
    }

    /// The exact Hessian–vector product `∇²L [V; U]` (SOLVERS.md §5.2 for the softmax
    /// kernel, the directional derivative of the linear kernel's gradient), `2ρ[V; U]`
    /// included. Off-chain and for tests: `O(n² d)` per product for softmax.
    pub fn hvp(&self, x: &[f64], dir: &[f64]) -> Result<Vec<f64>, ProblemError> {
        Ok(self.hvp_at(&self.eval(x, Level::Gradient)?, dir))
    }

    /// [`AttentionProblem::hvp`] at an evaluated point (so many products share one
    /// evaluation).
    fn hvp_at(&self, ev: &Eval, dir: &[f64]) -> Vec<f64> {
        let d = self.d();
        let (vm, um) = split(dir, d);
        let mut out = match self.kernel {
            Kernel::Softmax => self.hvp_softmax(ev, &vm, &um),
            Kernel::Linear => self.hvp_linear(ev, &vm, &um),
        };
        for (o, v) in out.iter_mut().zip(dir) {
            *o = (2.0 * self.rho).mul_add(*v, *o);
        }
        out
    }

    fn hvp_softmax(&self, ev: &Eval, vm: &Mat, um: &Mat) -> Vec<f64> {
        let (n, d) = (self.n(), self.d());
        let mut du = Mat::zeros(n, d); // dW = A3 U
        det::gemm(self.a3.view(), um.view(), &mut du, false);
        let mut hx_rows = Mat::zeros(n, d); // rows of dG_Z A2
        let mut dr = Mat::zeros(n, d);
        let mut dsa3 = Mat::zeros(n, d);
        let mut j0 = 0;
        while j0 < n {
            let j1 = (j0 + ROW_BLOCK).min(n);
            let nb = j1 - j0;
            let s = self.attention_rows(&ev.x, j0, j1);
            let mut qv = Mat::zeros(nb, d);
            det::gemm(rows(&self.a1, j0, j1), vm.view(), &mut qv, false);
            let mut dz = Mat::zeros(nb, n);
            det::gemm(qv.view(), self.a2.t(), &mut dz, false);
            // dS = S∘(dZ − rowsum(S∘dZ)).
            let mut ds = Mat::zeros(nb, n);
            for jj in 0..nb {
                let c = det::dot(s.row(jj), dz.row(jj));
                for i in 0..n {
                    ds.set(jj, i, s.get(jj, i) * (dz.get(jj, i) - c));
                }
            }
            // dR = dS W + S dW (dW = A3 U).
            let mut drb = Mat::zeros(nb, d);
            det::gemm(ds.view(), ev.w.view(), &mut drb, false);
            det::gemm(s.view(), du.view(), &mut drb, true);
            let mut dsa3b = Mat::zeros(nb, d);
            det::gemm(ds.view(), self.a3.view(), &mut dsa3b, false);
            // G_S = 2 R Wᵀ, dG_S = 2 (dR Wᵀ + R dWᵀ).
            let rb = rows(&ev.r, j0, j1);
            let mut gs = Mat::zeros(nb, n);
            det::gemm(rb, ev.w.t(), &mut gs, false);
            let mut dgs = Mat::zeros(nb, n);
            det::gemm(drb.view(), ev.w.t(), &mut dgs, false);
            det::gemm(rb, du.t(), &mut dgs, true);
            let mut dgz = Mat::zeros(nb, n);
            for jj in 0..nb {
                let (sr, dsr, gsr, dgsr) = (s.row(jj), ds.row(jj), gs.row(jj), dgs.row(jj));
                let r = 2.0 * det::dot(sr, gsr);
                let mut dr_ = 0.0;
                for i in 0..n {
                    dr_ += 2.0 * (dsr[i] * gsr[i] + sr[i] * dgsr[i]);
                }
                for i in 0..n {
                    let v = dsr[i] * (2.0 * gsr[i] - r) + sr[i] * (2.0 * dgsr[i] - dr_);
                    dgz.set(jj, i, v);
                }
            }
            let mut hb = Mat::zeros(nb, d);
            det::gemm(dgz.view(), self.a2.view(), &mut hb, false);
            hx_rows.data_mut()[j0 * d..j1 * d].copy_from_slice(hb.data());
            dr.data_mut()[j0 * d..j1 * d].copy_from_slice(drb.data());
            dsa3.data_mut()[j0 * d..j1 * d].copy_from_slice(dsa3b.data());
            j0 = j1;
        }
        let mut hx = Mat::zeros(d, d);
        det::gemm(self.a1.t(), hx_rows.view(), &mut hx, false);
        // H_Y· = 2 (dS A3)ᵀ R + 2 (S A3)ᵀ dR.
        let mut hy = Mat::zeros(d, d);
        det::gemm(dsa3.t(), ev.r.view(), &mut hy, false);
        det::gemm(ev.m.t(), dr.view(), &mut hy, true);
        det::scal(2.0, hy.data_mut());
        let mut out = hx.into_vec();
        out.extend_from_slice(hy.data());
        out
    }

    fn hvp_linear(&self, ev: &Eval, vm: &Mat, um: &Mat) -> Vec<f64> {
        let (n, d) = (self.n(), self.d());
        let lin = self.linear.as_ref().expect("linear kernel data");
        let mut q = Mat::zeros(n, d);
        det::gemm(self.a1.view(), ev.x.view(), &mut q, false);
        let mut dq = Mat::zeros(n, d);
        det::gemm(self.a1.view(), vm.view(), &mut dq, false);
        let mut c = Mat::zeros(d, d);
        det::gemm(lin.e.view(), ev.y.view(), &mut c, false);
        let mut dc = Mat::zeros(d, d);
        det::gemm(lin.e.view(), um.view(), &mut dc, false);
        let mut hx_rows = Mat::zeros(n, d);
        let mut dm = Mat::zeros(n, d);
        let mut dr = Mat::zeros(n, d);
        for j in 0..n {
            let (mut p, mut dp, mut ddp, mut dpj) = (vec![0.0; d], vec![0.0; d], vec![0.0; d], vec![0.0; d]);
            for l in 0..d {
                let z = q.get(j, l);
                let (u, v) = psi(z);
                p[l] = u;
                dp[l] = v;
                ddp[l] = psi2(z);
                dpj[l] = v * dq.get(j, l);
            }
            let den = det::dot(&p, &lin.k);
            let dden = det::dot(&dpj, &lin.k);
            let oj = ev.o.row(j);
            let rj = ev.r.row(j);
            // dN = dP C + P dC; dO = (dN − O dden)/den.
            let mut dnum = vec![0.0; d];
            for i0 in 0..d {
                let mut acc = 0.0;
                for l in 0..d {
                    acc += dpj[l] * c.get(l, i0) + p[l] * dc.get(l, i0);
                }
                dnum[i0] = acc;
            }
            let doj: Vec<f64> = (0..d).map(|i0| (dnum[i0] - oj[i0] * dden) / den).collect();
            // dM_j = (dP_j E − dden M_j)/den.
            for k in 0..d {
                let mut acc = 0.0;
                for l in 0..d {
                    acc += dpj[l] * lin.e.get(l, k);
                }
                dm.set(j, k, (acc - dden * ev.m.get(j, k)) / den);
            }
            // G_O = 2R, s = <G_O, O>, G_P = (G_O Cᵀ − s k)/den.
            let s = 2.0 * det::dot(rj, oj);
            let ds = 2.0 * (det::dot(&doj, oj) + det::dot(rj, &doj));
            for l in 0..d {
                let mut goc = 0.0;
                let mut dgoc = 0.0;
                for i0 in 0..d {
                    goc += 2.0 * rj[i0] * c.get(l, i0);
                    dgoc += 2.0 * (doj[i0] * c.get(l, i0) + rj[i0] * dc.get(l, i0));
                }
                let gp = (goc - s * lin.k[l]) / den;
                let dgp = (dgoc - ds * lin.k[l]) / den - gp * dden / den;
                hx_rows.set(j, l, ddp[l] * dq.get(j, l) * gp + dp[l] * dgp);
            }
            dr.row_mut(j).copy_from_slice(&doj);
        }
        let mut hx = Mat::zeros(d, d);
        det::gemm(self.a1.t(), hx_rows.view(), &mut hx, false);
        let mut hy = Mat::zeros(d, d);
        det::gemm(dm.t(), ev.r.view(), &mut hy, false);
        det::gemm(ev.m.t(), dr.view(), &mut hy, true);
        det::scal(2.0, hy.data_mut());
        let mut out = hx.into_vec();
        out.extend_from_slice(hy.data());
        out
    }

    /// The exact `X`-block Hessian `∇²_X L` (d² x d²), `2ρI` included. Softmax: the
    /// Kronecker form of SOLVERS.md §5.2, `Σ_j (a_j a_jᵀ) ⊗ A2ᵀ B_j A2` with `A2ᵀ B_j A2 =
    /// 2 Qb_j Qb_jᵀ + A2ᵀ diag(G_Z[j,:]) A2 − u_j w_jᵀ − w_j u_jᵀ + 2γ_j u_j u_jᵀ` (`u_j = A2ᵀ
    /// s_j`, `w_j = A2ᵀ(G_S[j,:]∘s_j)`, `γ_j = <G_S[j,:], s_j>`), `O(n² d² + n d⁴)`. Linear:
    /// `d²` Hessian–vector products of `O(n d²)` each. For the paper's alternating
    /// algorithm (Newton in `X`).
    pub fn hessian_xx(&self, x: &[f64]) -> Result<Mat, ProblemError> {
        let d = self.d();
        let dd = d * d;
        if self.kernel == Kernel::Linear {
            let ev = self.eval(x, Level::Gradient)?;
            let mut h = Mat::zeros(dd, dd);
            for c in 0..dd {
                let mut e = vec![0.0; 2 * dd];
                e[c] = 1.0;
                let col = self.hvp_at(&ev, &e);
                for r in 0..dd {
                    h.set(r, c, col[r]);
                }
            }
            return Ok(h);
        }
        let n = self.n();
        let ev = self.eval(x, Level::GaussNewton)?;
        let qb = ev.qb.as_ref().expect("gauss-newton level");
        let sa2 = ev.sa2.as_ref().expect("softmax kernel");
        let k2 = khatri_rao(&self.a2, &self.a2);
        let mut hb = Mat::zeros(n, dd);
        let mut j0 = 0;
        while j0 < n {
            let j1 = (j0 + ROW_BLOCK).min(n);
            let nb = j1 - j0;
            let s = self.attention_rows(&ev.x, j0, j1);
            let mut gs = Mat::zeros(nb, n);
            det::gemm(rows(&ev.r, j0, j1), ev.w.t(), &mut gs, false);
            det::scal(2.0, gs.data_mut());
            let mut gz = Mat::zeros(nb, n);
            let mut gss = Mat::zeros(nb, n);
            let mut gamma = vec![0.0; nb];
            for jj in 0..nb {
                let g = det::dot(s.row(jj), gs.row(jj));
                gamma[jj] = g;
                for i in 0..n {
                    gz.set(jj, i, s.get(jj, i) * (gs.get(jj, i) - g));
                    gss.set(jj, i, gs.get(jj, i) * s.get(jj, i));
                }
            }
            let mut dj = Mat::zeros(nb, dd);
            det::gemm(gz.view(), k2.view(), &mut dj, false);
            let mut wj = Mat::zeros(nb, d);
            det::gemm(gss.view(), self.a2.view(), &mut wj, false);
            let mut g2 = Mat::zeros(d, d);
            for jj in 0..nb {
                let j = j0 + jj;
                let qj = MatRef::row_major(qb.row(j), d, d);
                det::gemm(qj, qj.t(), &mut g2, false);
                let (u, w) = (sa2.row(j), wj.row(jj));
                let dst = hb.row_mut(j);
                for l in 0..d {
                    for l2 in 0..d {
                        dst[l * d + l2] = 2.0 * g2.get(l, l2) + dj.get(jj, l * d + l2) - u[l] * w[l2] - w[l] * u[l2]
                            + 2.0 * gamma[jj] * u[l] * u[l2];
                    }
                }
            }
            j0 = j1;
        }
        let u1 = khatri_rao(&self.a1, &self.a1);
        let mut p = Mat::zeros(dd, dd);
        det::gemm(u1.t(), hb.view(), &mut p, false);
        let mut h = Mat::zeros(dd, dd);
        for k in 0..d {
            for l in 0..d {
                for k2 in 0..d {
                    for l2 in 0..d {
                        h.set(k * d + l, k2 * d + l2, p.get(k * d + k2, l * d + l2));
                    }
                }
            }
        }
        for i in 0..dd {
            h.set(i, i, h.get(i, i) + 2.0 * self.rho);
        }
        Ok(h)
    }

    /// The exact least-squares `Y` for a fixed `X` (the paper's `Y`-step, SOLVERS.md §5.3):
    /// `(MᵀM + ρI) Y = Mᵀ B` with `M = S(X) A3`.
    pub fn y_step(&self, x: &[f64]) -> Result<Vec<f64>, ProblemError> {
        let d = self.d();
        let ev = self.eval(x, Level::Gradient)?;
        let mut mtm = Mat::zeros(d, d);
        det::syrk(ev.m.view(), None, &mut mtm);
        let mut rhs = Mat::zeros(d, d);
        det::gemm(ev.m.t(), self.b.view(), &mut rhs, false);
        let (chol, _) = det::Cholesky::factor_lm(&shift(&mtm, self.rho), 60)?;
        let mut y = Mat::zeros(d, d);
        for col in 0..d {
            let b: Vec<f64> = (0..d).map(|k| rhs.get(k, col)).collect();
            let sol = chol.solve(&b);
            for k in 0..d {
                y.set(k, col, sol[k]);
            }
        }
        let mut out = x[..d * d].to_vec();
        out.extend_from_slice(y.data());
        Ok(out)
    }
}

/// `a + s·I`.
pub fn shift(a: &Mat, s: f64) -> Mat {
    let mut out = a.clone();
    for i in 0..a.rows() {
        out.set(i, i, out.get(i, i) + s);
    }
    out
}
