//! The normalised-map regression core (SOLVERS.md §0.4), shared by softmax, ResNet+softmax,
//! linear attention and copyright regression.
//!
//! For `z = A x`, `u = φ(z)`, `α = Σ u`, `f = u/α`, masked residual `c = m∘(f - b)`:
//! loss `½||c||²`, z-space gradient `(v∘c - <f,c> v)/α` and z-space Hessian
//! `diag(δ) + (κ v vᵀ - p vᵀ - v pᵀ)/α²` ([V] in SOLVERS.md). Works in z-space only; the
//! callers map through `A`. Pure and deterministic: every sum is a `det` kernel.

use crate::compute::det::{self, count_flops, math};
use crate::compute::problem::ProblemError;
use serde::{Deserialize, Serialize};

/// Largest `z` for which the unshifted `e^z` is evaluated (ResNet+softmax, SOLVERS.md §3.3).
pub const EXP_GUARD: f64 = 700.0;

/// Flops charged for one `exp` in cost formulas and flop counts.
pub const EXP_FLOPS: u64 = 20;

/// The entrywise map φ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phi {
    /// `e^z`, evaluated with the max shift (softmax is shift invariant).
    Softmax,
    /// `e^z + z` (paper 2309.13482); no shift invariance, guarded by [`EXP_GUARD`].
    ResnetSoftmax,
    /// Linear attention `elu(z) + 1`: `z + 1` for `z > 0`, `e^z` otherwise.
    EluPlusOne,
    /// Raw linear attention `z` (needs `Σ z > 0`).
    Identity,
}

impl Phi {
    /// Flops of evaluating `(u, v, s)` over `n` rows, exps counted as [`EXP_FLOPS`].
    pub fn eval_flops(self, n: usize) -> u64 {
        let n = n as u64;
        match self {
            Phi::Softmax | Phi::ResnetSoftmax | Phi::EluPlusOne => n * (EXP_FLOPS + 3),
            Phi::Identity => n,
        }
    }
}

/// `u = φ(z)`, `v = φ'(z)`, `s = φ''(z)` up to a common positive factor (the softmax shift).
#[derive(Clone, Debug, PartialEq)]
pub struct PhiVals {
    /// φ(z).
    pub u: Vec<f64>,
    /// φ'(z).
    pub v: Vec<f64>,
    /// φ''(z).
    pub s: Vec<f64>,
}

/// Evaluates φ and its derivatives at `z`. Every element is computed before any check, so
/// the work does not depend on the values.
pub fn eval_phi(phi: Phi, z: &[f64]) -> Result<PhiVals, ProblemError> {
    let n = z.len();
    count_flops(phi.eval_flops(n));
    let (mut u, mut v, mut s) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    match phi {
        Phi::Softmax => {
            let mut zmax = f64::NEG_INFINITY;
            for &zi in z {
                zmax = zmax.max(zi);
            }
            for i in 0..n {
                let e = math::exp(z[i] - zmax);
                u[i] = e;
                v[i] = e;
                s[i] = e;
            }
        }
        Phi::ResnetSoftmax => {
            for i in 0..n {
                let e = math::exp(z[i]);
                u[i] = e + z[i];
                v[i] = e + 1.0;
                s[i] = e;
            }
            if let Some(i) = z.iter().position(|&zi| zi > EXP_GUARD) {
                return Err(ProblemError::ExpOverflow { index: i, z: z[i], limit: EXP_GUARD });
            }
        }
        Phi::EluPlusOne => {
            for i in 0..n {
                let e = math::exp(z[i].min(0.0));
                if z[i] > 0.0 {
                    u[i] = z[i] + 1.0;
                    v[i] = 1.0;
                    s[i] = 0.0;
                } else {
                    u[i] = e;
                    v[i] = e;
                    s[i] = e;
                }
            }
        }
        Phi::Identity => {
            for i in 0..n {
                u[i] = z[i];
                v[i] = 1.0;
                s[i] = 0.0;
            }
        }
    }
    if let Some(i) = z.iter().position(|zi| !zi.is_finite()) {
        return Err(ProblemError::NonFinite { what: "z = Ax", index: i });
    }
    Ok(PhiVals { u, v, s })
}

/// One regression term `½||m∘(f - b)||²` evaluated at a point.
#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    /// φ values.
    pub phi: PhiVals,
    /// `α = Σ u` (left-to-right sum).
    pub alpha: f64,
    /// `f = u / α`.
    pub f: Vec<f64>,
    /// `c = m∘(f - b)`.
    pub c: Vec<f64>,
    /// `<f, c>`.
    pub fc: f64,
    /// `½ ||c||²`.
    pub loss: f64,
}

/// Evaluates a term from φ values, targets and an optional 0/1 mask. Every value is
/// computed before `α` is checked, so the work does not depend on the point.
pub fn term(phi: PhiVals, b: &[f64], mask: Option<&[f64]>) -> Result<Term, ProblemError> {
    let n = phi.u.len();
    let alpha = det::sum(&phi.u);
    count_flops(3 * n as u64);
    let f: Vec<f64> = phi.u.iter().map(|u| u / alpha).collect();
    let mut c: Vec<f64> = f.iter().zip(b).map(|(f, b)| f - b).collect();
    if let Some(m) = mask {
        for (ci, mi) in c.iter_mut().zip(m) {
            *ci *= mi;
        }
    }
    let fc = det::dot(&f, &c);
    let loss = 0.5 * det::dot(&c, &c);
    if !(alpha > 0.0) || !alpha.is_finite() {
        return Err(ProblemError::AlphaNotPositive { alpha });
    }
    Ok(Term { phi, alpha, f, c, fc, loss })
}

impl Term {
    /// The z-space gradient `(v∘c - <f,c> v)/α`, each element `fma(v_i, c_i, -fc·v_i)/α`.
    pub fn grad_z(&self) -> Vec<f64> {
        count_flops(4 * self.c.len() as u64);
        let v = &self.phi.v;
        (0..self.c.len()).map(|i| v[i].mul_add(self.c[i], -(self.fc * v[i])) / self.alpha).collect()
    }

    /// The diagonal `δ = m∘v∘v/α² + (c - <f,c>)∘s/α` of the z-space Hessian.
    pub fn hess_diag(&self, mask: Option<&[f64]>) -> Vec<f64> {
        let n = self.c.len();
        count_flops(8 * n as u64);
        let a2 = self.alpha * self.alpha;
        let (v, s) = (&self.phi.v, &self.phi.s);
        (0..n)
            .map(|i| {
                let m = mask.map_or(1.0, |m| m[i]);
                let first = m * v[i] * v[i] / a2;
                first + (self.c[i] - self.fc) * s[i] / self.alpha
            })
            .collect()
    }

    /// The rank-2 data `(p, κ)`: `p = m∘v∘(2f - b)`, `κ = <m∘(3f - 2b), f>`; the z-space
    /// Hessian adds `(κ v vᵀ - p vᵀ - v pᵀ)/α²`.
    pub fn rank2(&self, b: &[f64], mask: Option<&[f64]>) -> (Vec<f64>, f64) {
        let n = self.c.len();
        count_flops(6 * n as u64);
        let v = &self.phi.v;
        let p: Vec<f64> = (0..n).map(|i| mask.map_or(1.0, |m| m[i]) * v[i] * (2.0 * self.f[i] - b[i])).collect();
        let w: Vec<f64> = (0..n).map(|i| mask.map_or(1.0, |m| m[i]) * (3.0 * self.f[i] - 2.0 * b[i])).collect();
        (p, det::dot(&w, &self.f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_values_at_zero_match_the_closed_forms() {
        let z = [0.0; 4];
        let sm = eval_phi(Phi::Softmax, &z).unwrap();
        assert_eq!(sm.u, vec![1.0; 4]);
        let rs = eval_phi(Phi::ResnetSoftmax, &z).unwrap();
        assert_eq!((rs.u[0], rs.v[0], rs.s[0]), (1.0, 2.0, 1.0));
        let elu = eval_phi(Phi::EluPlusOne, &z).unwrap();
        assert_eq!(elu.u, vec![1.0; 4]);
        let id = eval_phi(Phi::Identity, &[1.0, 2.0]).unwrap();
        assert_eq!((id.u.clone(), id.v.clone(), id.s.clone()), (vec![1.0, 2.0], vec![1.0; 2], vec![0.0; 2]));
    }

    #[test]
    fn resnet_guard_and_identity_alpha_zero_are_typed_errors() {
        assert!(matches!(eval_phi(Phi::ResnetSoftmax, &[0.0, 701.0]), Err(ProblemError::ExpOverflow { index: 1, .. })));
        let id = eval_phi(Phi::Identity, &[0.0, 0.0]).unwrap();
        assert!(matches!(term(id, &[0.5, 0.5], None), Err(ProblemError::AlphaNotPositive { .. })));
        // SOLVERS.md §3.7: one z_i = -3, others 0, n = 2 gives alpha < 0.
        let rs = eval_phi(Phi::ResnetSoftmax, &[-3.0, 0.0]).unwrap();
        assert!(matches!(term(rs, &[0.5, 0.5], None), Err(ProblemError::AlphaNotPositive { .. })));
        assert!(matches!(eval_phi(Phi::Softmax, &[f64::NAN]), Err(ProblemError::NonFinite { .. })));
    }

    #[test]
    fn f_sums_to_one_for_every_phi() {
        let z = [0.3, -1.2, 2.0, 0.7, -0.1];
        for phi in [Phi::Softmax, Phi::ResnetSoftmax, Phi::EluPlusOne, Phi::Identity] {
            let t = term(eval_phi(phi, &z).unwrap(), &[0.2; 5], None).unwrap();
            let s: f64 = t.f.iter().sum();
            assert!((s - 1.0).abs() < 1e-15, "{phi:?}: {s}");
        }
    }
}
