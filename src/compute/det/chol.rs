//! Cholesky factorisation `A = L Lᵀ`, its Levenberg–Marquardt fallback, and triangular
//! solves.
//!
//! # Consensus
//! Same contract as the kernels: `L[i,j] = (chain_{k<j} fma(-L[i,k], L[j,k], A[i,j])) / L[j,j]`
//! and `L[j,j] = sqrt(chain_{k<j} fma(-L[j,k], L[j,k], A[j,j]))`, `k` ascending
//! ([`kernels::cholesky`], SIMD across the rows of a column). A pivot that is not `> 0`
//! and finite fails with its index and value.

use super::{Mat, count_flops, kernels};

/// Why a factorisation failed.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum CholError {
    /// The matrix is not square.
    #[error("cholesky of a non-square {rows}x{cols} matrix")]
    NotSquare {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
    /// Pivot `pivot` was `value <= 0` (or NaN): the matrix is not positive definite.
    #[error("matrix is not positive definite: pivot {pivot} is {value:e}")]
    NotPositiveDefinite {
        /// 0-based index of the failing pivot.
        pivot: usize,
        /// The value under the square root at that pivot.
        value: f64,
    },
    /// Every Levenberg–Marquardt shift up to `mu` failed.
    #[error("matrix is not positive definite even with shift mu = {mu:e}: pivot {pivot} is {value:e}")]
    ShiftExhausted {
        /// The last shift tried.
        mu: f64,
        /// 0-based index of the failing pivot at that shift.
        pivot: usize,
        /// The value under the square root at that pivot.
        value: f64,
    },
}

/// A lower-triangular Cholesky factor `L` with `A = L Lᵀ`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cholesky {
    l: Mat,
}

impl Cholesky {
    /// Factors `a + shift·I` (only the lower triangle of `a` is read), by [`kernels::cholesky`].
    ///
    /// # Errors
    /// The first pivot that is not `> 0` and finite. The work is the same either way.
    pub fn factor_shifted(a: &Mat, shift: f64) -> Result<Cholesky, CholError> {
        match Cholesky::factor_flagged(a, shift)? {
            (c, None) => Ok(c),
            (_, Some(e)) => Err(e),
        }
    }

    /// Factors `a + shift·I` whatever the matrix: the first pivot that is not `> 0` and
    /// finite comes back as the error beside a factor in which it was replaced by `1` (not
    /// a factor of `a`; its solves are finite whenever the matrix is). For the mining steps
    /// whose candidates may be indefinite: a failed candidate does the same work as any
    /// other and is scored, not skipped.
    ///
    /// # Errors
    /// Only a non-square `a`.
    pub fn factor_flagged(a: &Mat, shift: f64) -> Result<(Cholesky, Option<CholError>), CholError> {
        let n = a.rows();
        if a.cols() != n {
            return Err(CholError::NotSquare { rows: n, cols: a.cols() });
        }
        let (l, failed) = kernels::cholesky(a, shift);
        Ok((Cholesky { l }, failed.map(|(pivot, value)| CholError::NotPositiveDefinite { pivot, value })))
    }

    /// Factors `a`.
    pub fn factor(a: &Mat) -> Result<Cholesky, CholError> {
        Cholesky::factor_shifted(a, 0.0)
    }

    /// Levenberg–Marquardt safeguard (SOLVERS.md §0.5 item 1): try `μ = 0`; on failure set
    /// `μ = max(2μ, 1e-8·tr(A)/n)` and retry, at most `max_tries` factorisations.
    /// Returns the factor and the shift that succeeded.
    ///
    /// Off-chain only: the number of attempts depends on the data, which a mining step must
    /// not (DESIGN.md §3 (e)); steps use [`Cholesky::factor_shifted`] with a fixed ridge.
    pub fn factor_lm(a: &Mat, max_tries: usize) -> Result<(Cholesky, f64), CholError> {
        let n = a.rows();
        if a.cols() != n {
            return Err(CholError::NotSquare { rows: n, cols: a.cols() });
        }
        let trace: f64 = (0..n).map(|i| a.get(i, i).abs()).sum();
        let floor = if n == 0 { 0.0 } else { (1e-8 * trace / n as f64).max(f64::MIN_POSITIVE) };
        let mut mu = 0.0;
        let mut last = CholError::NotPositiveDefinite { pivot: 0, value: f64::NAN };
        for _ in 0..max_tries.max(1) {
            match Cholesky::factor_shifted(a, mu) {
                Ok(c) => return Ok((c, mu)),
                Err(e) => last = e,
            }
            mu = (2.0 * mu).max(floor);
        }
        match last {
            CholError::NotPositiveDefinite { pivot, value } => Err(CholError::ShiftExhausted { mu, pivot, value }),
            other => Err(other),
        }
    }

    /// The factor `L`.
    pub fn l(&self) -> &Mat {
        &self.l
    }

    /// Order of the matrix.
    pub fn dim(&self) -> usize {
        self.l.rows()
    }

    /// Solves `A x = b`: forward then backward substitution.
    ///
    /// # Panics
    /// If `b` has the wrong length.
    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        let mut x = b.to_vec();
        solve_lower(&self.l, &mut x);
        solve_lower_t(&self.l, &mut x);
        x
    }

    /// `log det A = 2 Σ ln L[i,i]`.
    pub fn log_det(&self) -> f64 {
        let mut s = 0.0;
        for i in 0..self.dim() {
            s += 2.0 * super::math::ln(self.l.get(i, i));
        }
        s
    }
}

/// Solves `L y = b` in place (forward substitution, `L` lower triangular).
///
/// # Panics
/// On shape mismatch.
pub fn solve_lower(l: &Mat, b: &mut [f64]) {
    let n = l.rows();
    assert_eq!(b.len(), n, "solve_lower: b has {} values for order {n}", b.len());
    count_flops((n * n) as u64);
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s = (-l.get(i, k)).mul_add(b[k], s);
        }
        b[i] = s / l.get(i, i);
    }
}

/// Solves `Lᵀ x = y` in place (backward substitution), `k` descending from `n-1`.
///
/// # Panics
/// On shape mismatch.
pub fn solve_lower_t(l: &Mat, y: &mut [f64]) {
    let n = l.rows();
    assert_eq!(y.len(), n, "solve_lower_t: y has {} values for order {n}", y.len());
    count_flops((n * n) as u64);
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in (i + 1..n).rev() {
            s = (-l.get(k, i)).mul_add(y[k], s);
        }
        y[i] = s / l.get(i, i);
    }
}

/// Replaces each row `y` of `m` by `L⁻¹ y` (rows of `M L⁻ᵀ`); see [`kernels::trsm_rows`].
pub fn solve_lower_rows(l: &Mat, m: &mut Mat) {
    kernels::trsm_rows(l, m);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::det::{DetRng, gemm};

    fn spd(n: usize, seed: u8) -> Mat {
        let mut r = DetRng::stream(&[seed; 32], 8, 0);
        let g = Mat::from_fn(n + 3, n, |_, _| r.normal());
        let mut a = Mat::zeros(n, n);
        gemm(g.t(), g.view(), &mut a, false);
        a
    }

    #[test]
    fn factor_reconstructs_and_solves_spd_systems() {
        let a = spd(12, 1);
        let c = Cholesky::factor(&a).unwrap();
        let mut llt = Mat::zeros(12, 12);
        gemm(c.l().view(), c.l().t(), &mut llt, false);
        for i in 0..12 {
            for j in 0..12 {
                assert!((llt.get(i, j) - a.get(i, j)).abs() <= 1e-12 * a.get(i, i).abs().max(1.0));
            }
        }
        let b: Vec<f64> = (0..12).map(|i| i as f64 - 3.5).collect();
        let x = c.solve(&b);
        let mut ax = vec![0.0; 12];
        crate::compute::det::gemv(a.view(), &x, &mut ax, false);
        for i in 0..12 {
            assert!((ax[i] - b[i]).abs() < 1e-9, "{} vs {}", ax[i], b[i]);
        }
    }

    #[test]
    fn indefinite_matrix_names_the_failing_pivot() {
        let a = Mat::from_vec(3, 3, vec![4.0, 2.0, 0.0, 2.0, 1.0, 0.0, 0.0, 0.0, 1.0]).unwrap();
        match Cholesky::factor(&a) {
            Err(CholError::NotPositiveDefinite { pivot, value }) => {
                assert_eq!(pivot, 1);
                assert!(value <= 0.0);
            }
            other => panic!("expected pivot failure, got {other:?}"),
        }
        let nan = Mat::from_vec(1, 1, vec![f64::NAN]).unwrap();
        assert!(matches!(Cholesky::factor(&nan), Err(CholError::NotPositiveDefinite { pivot: 0, .. })));
        assert!(matches!(Cholesky::factor(&Mat::zeros(2, 3)), Err(CholError::NotSquare { .. })));
    }

    #[test]
    fn lm_fallback_shifts_an_indefinite_matrix_until_it_factors() {
        let a = Mat::from_vec(2, 2, vec![1.0, 0.0, 0.0, -1e-9]).unwrap();
        let (c, mu) = Cholesky::factor_lm(&a, 60).unwrap();
        assert!(mu > 1e-9, "mu {mu}");
        assert_eq!(c.dim(), 2);
        let (_, mu0) = Cholesky::factor_lm(&spd(4, 2), 60).unwrap();
        assert_eq!(mu0, 0.0);
        let bad = Mat::from_vec(1, 1, vec![-1.0]).unwrap();
        assert!(matches!(Cholesky::factor_lm(&bad, 3), Err(CholError::ShiftExhausted { pivot: 0, .. })));
    }

    #[test]
    fn triangular_solves_invert_each_other() {
        let c = Cholesky::factor(&spd(7, 3)).unwrap();
        let b: Vec<f64> = (0..7).map(|i| (i as f64).sin()).collect();
        let mut y = b.clone();
        solve_lower(c.l(), &mut y);
        let mut back = vec![0.0; 7];
        crate::compute::det::gemv(c.l().view(), &y, &mut back, false);
        for i in 0..7 {
            assert!((back[i] - b[i]).abs() < 1e-12);
        }
        let mut m = Mat::from_fn(3, 7, |r, j| b[j] * (r as f64 + 1.0));
        solve_lower_rows(c.l(), &mut m);
        for r in 0..3 {
            for j in 0..7 {
                assert!((m.get(r, j) - y[j] * (r as f64 + 1.0)).abs() < 1e-12);
            }
        }
    }
}
