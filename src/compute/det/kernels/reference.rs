//! The naive kernels that define the bits: plain loops straight from each contract.
//!
//! # Consensus
//! These are the ground truth. Every [`Path`](super::Path) of the fast kernels in
//! [`kernels`](super) must return exactly these bits (NaN payloads excepted), which the
//! tests check on random and special inputs. They are slow: on the default x86_64 target
//! each `mul_add` is an out-of-line call. They count flops exactly like the fast kernels.

use crate::compute::det::{Mat, MatRef, count_flops};

/// `Σ x_i y_i` as one fused chain from `+0.0`, `i` ascending.
///
/// # Panics
/// If the lengths differ (a caller bug: shapes are checked at the API boundary).
pub fn dot(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "dot of different lengths");
    count_flops(2 * x.len() as u64);
    let mut acc = 0.0f64;
    for (a, b) in x.iter().zip(y) {
        acc = a.mul_add(*b, acc);
    }
    acc
}

/// `Σ x_i`, left to right from `+0.0` (plain adds).
pub fn sum(x: &[f64]) -> f64 {
    count_flops(x.len() as u64);
    let mut acc = 0.0f64;
    for a in x {
        acc += *a;
    }
    acc
}

/// Euclidean norm `sqrt(dot(x, x))`.
pub fn nrm2(x: &[f64]) -> f64 {
    dot(x, x).sqrt()
}

/// `y_i = fma(a, x_i, y_i)`.
///
/// # Panics
/// If the lengths differ.
pub fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    assert_eq!(x.len(), y.len(), "axpy of different lengths");
    count_flops(2 * x.len() as u64);
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi = a.mul_add(*xi, *yi);
    }
}

/// `x_i = a * x_i`.
pub fn scal(a: f64, x: &mut [f64]) {
    count_flops(x.len() as u64);
    for xi in x.iter_mut() {
        *xi *= a;
    }
}

/// `y = A x` (or `y += A x` when `accumulate`): `y_i = chain_k fma(A[i,k], x_k, y0_i)` with
/// `y0_i = 0` or the old `y_i`. `A` may be any view (pass `m.t()` for `Aᵀ x`).
///
/// # Panics
/// On shape mismatch.
pub fn gemv(a: MatRef<'_>, x: &[f64], y: &mut [f64], accumulate: bool) {
    assert_eq!(a.cols(), x.len(), "gemv: A has {} columns, x has {}", a.cols(), x.len());
    assert_eq!(a.rows(), y.len(), "gemv: A has {} rows, y has {}", a.rows(), y.len());
    count_flops(2 * (a.rows() * a.cols()) as u64);
    for (i, yi) in y.iter_mut().enumerate() {
        let mut acc = if accumulate { *yi } else { 0.0 };
        for (k, xk) in x.iter().enumerate() {
            acc = a.get(i, k).mul_add(*xk, acc);
        }
        *yi = acc;
    }
}

/// `C = A B` (or `C += A B` when `accumulate`): `C[i,j] = chain_k fma(A[i,k], B[k,j], C0[i,j])`.
/// `A` and `B` may be any views (transposes are free).
///
/// # Panics
/// On shape mismatch.
pub fn gemm(a: MatRef<'_>, b: MatRef<'_>, c: &mut Mat, accumulate: bool) {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    assert_eq!(b.rows(), k, "gemm: inner dimensions {k} and {}", b.rows());
    assert_eq!((c.rows(), c.cols()), (m, n), "gemm: C is {}x{}, want {m}x{n}", c.rows(), c.cols());
    count_flops(2 * (m * n * k) as u64);
    for i in 0..m {
        for j in 0..n {
            let mut acc = if accumulate { c.get(i, j) } else { 0.0 };
            for kk in 0..k {
                acc = a.get(i, kk).mul_add(b.get(kk, j), acc);
            }
            c.set(i, j, acc);
        }
    }
}

/// `C = Aᵀ diag(w) A` for `A` of `n x d` (`w = 1` when `None`): for `j <= l`,
/// `C[j,l] = C[l,j] = chain_i fma(A[i,j], w_i * A[i,l], 0)` where `w_i * A[i,l]` is one
/// rounded product. Weights may be negative.
///
/// # Panics
/// On shape mismatch.
pub fn syrk(a: MatRef<'_>, w: Option<&[f64]>, c: &mut Mat) {
    let (n, d) = (a.rows(), a.cols());
    if let Some(w) = w {
        assert_eq!(w.len(), n, "syrk: {} weights for {n} rows", w.len());
    }
    assert_eq!((c.rows(), c.cols()), (d, d), "syrk: C is {}x{}, want {d}x{d}", c.rows(), c.cols());
    count_flops((n * d * (d + 1) + n * d) as u64);
    for j in 0..d {
        for l in j..d {
            let mut acc = 0.0f64;
            for i in 0..n {
                let s = match w {
                    Some(w) => w[i] * a.get(i, l),
                    None => a.get(i, l),
                };
                acc = a.get(i, j).mul_add(s, acc);
            }
            c.set(j, l, acc);
            c.set(l, j, acc);
        }
    }
}

/// Replaces every row `y` of `m` by the solution of `L y' = y` (so `M <- M L⁻ᵀ`), `L` lower
/// triangular `d x d`: `y'_i = (chain_{k<i} fma(-L[i,k], y'_k, y_i)) / L[i,i]`.
///
/// # Panics
/// On shape mismatch.
#[allow(clippy::needless_range_loop)] // indexed exactly as the contract is written
pub fn trsm_rows(l: &Mat, m: &mut Mat) {
    let d = l.rows();
    assert_eq!(l.cols(), d, "trsm_rows: L is not square");
    assert_eq!(m.cols(), d, "trsm_rows: rows of length {} for L of order {d}", m.cols());
    count_flops((m.rows() * d * d) as u64);
    for r in 0..m.rows() {
        let y = m.row_mut(r);
        for i in 0..d {
            let mut s = y[i];
            for k in 0..i {
                s = (-l.get(i, k)).mul_add(y[k], s);
            }
            y[i] = s / l.get(i, i);
        }
    }
}

/// The Cholesky factor of `a + shift·I` (lower triangle of `a` read), row-major, zero above
/// the diagonal: `L[j,j] = sqrt(chain_{k<j} fma(-L[j,k], L[j,k], a[j,j] + shift))`,
/// `L[i,j] = (chain_{k<j} fma(-L[i,k], L[j,k], a[i,j])) / L[j,j]`. The first pivot that is
/// not `> 0` and finite is returned with its value, and replaced by `1`.
///
/// # Panics
/// If `a` is not square.
pub fn cholesky(a: &Mat, shift: f64) -> (Mat, Option<(usize, f64)>) {
    let n = a.rows();
    assert_eq!(a.cols(), n, "cholesky: a is not square");
    let mut l = Mat::zeros(n, n);
    let mut failed = None;
    for j in 0..n {
        let mut s = a.get(j, j) + shift;
        for k in 0..j {
            let ljk = l.get(j, k);
            s = (-ljk).mul_add(ljk, s);
        }
        if !(s > 0.0 && s.is_finite()) {
            failed.get_or_insert((j, s));
            s = 1.0;
        }
        let ljj = s.sqrt();
        l.set(j, j, ljj);
        for i in j + 1..n {
            let mut s = a.get(i, j);
            for k in 0..j {
                s = (-l.get(i, k)).mul_add(l.get(j, k), s);
            }
            l.set(i, j, s / ljj);
        }
    }
    (l, failed)
}
