//! Deterministic numerics: the only arithmetic a consensus computation may use.
//!
//! Owns the matrix types ([`Mat`], [`MatRef`]), the bit-exact kernels ([`kernels`]),
//! Cholesky and triangular solves ([`chol`]), transcendental functions ([`math`]) and the
//! seeded ChaCha20 stream ([`rng`]). It must not use BLAS, ndarray's `dot`, std's
//! `exp`/`ln`/`powf`, threads inside a reduction, or any randomness but [`rng`].
//!
//! # Consensus
//! Every node must compute the same bits (DESIGN.md §4). The contract of every kernel
//! here: each output element is one *fused* multiply-add chain (`f64::mul_add`, one
//! rounding per step) over the reduction index in increasing order, starting from `+0.0`
//! (or from the output's previous value where a kernel says it accumulates). Blocking,
//! SIMD width and code path (portable, AVX2+FMA, AVX-512) never change the bits; the tests
//! in `kernels` run every path the machine has and compare. Plain sums (no products) are
//! left-to-right `+`. Only `+ - * / sqrt` come from the hardware; `exp`, `ln`, `pow`,
//! `sin`, `cos` come from the pure-Rust `libm` crate.

pub mod bench;
pub mod chol;
pub mod kernels;
pub mod math;
pub mod rng;

use std::cell::Cell;

pub use chol::{CholError, Cholesky, solve_lower_t};
pub use kernels::{axpy, dot, gemm, gemv, nrm2, scal, sum, syrk, trsm_rows};
pub use rng::DetRng;

thread_local! {
    static FLOPS: Cell<u64> = const { Cell::new(0) };
}

/// Adds `n` to this thread's flop counter (a multiply-add counts 2).
///
/// Kernels call this once per call with their exact count, so a test can measure the work
/// of a step without timing it.
#[inline]
pub fn count_flops(n: u64) {
    FLOPS.with(|f| f.set(f.get().wrapping_add(n)));
}

/// Flops counted on this thread since the last [`reset_flops`].
pub fn flops() -> u64 {
    FLOPS.with(|f| f.get())
}

/// Sets this thread's flop counter to zero.
pub fn reset_flops() {
    FLOPS.with(|f| f.set(0));
}

/// A dense row-major `rows x cols` matrix of f64.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Mat {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

/// Why a buffer cannot become a [`Mat`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {rows}x{cols} matrix needs {} values, got {len}", rows * cols)]
pub struct ShapeError {
    /// Rows asked for.
    pub rows: usize,
    /// Columns asked for.
    pub cols: usize,
    /// Values given.
    pub len: usize,
}

impl Mat {
    /// A matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Mat {
        Mat { rows, cols, data: vec![0.0; rows * cols] }
    }

    /// Wraps a row-major buffer; its length must be `rows * cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f64>) -> Result<Mat, ShapeError> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(ShapeError { rows, cols, len: data.len() });
        }
        Ok(Mat { rows, cols, data })
    }

    /// Builds a matrix from `f(i, j)`, filled in row-major order.
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> f64) -> Mat {
        let mut data = Vec::with_capacity(rows * cols);
        for i in 0..rows {
            for j in 0..cols {
                data.push(f(i, j));
            }
        }
        Mat { rows, cols, data }
    }

    /// The identity matrix of order `n`.
    pub fn identity(n: usize) -> Mat {
        Mat::from_fn(n, n, |i, j| if i == j { 1.0 } else { 0.0 })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The row-major buffer.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// The row-major buffer, mutable.
    pub fn data_mut(&mut self) -> &mut [f64] {
        &mut self.data
    }

    /// Consumes the matrix, returning its row-major buffer.
    pub fn into_vec(self) -> Vec<f64> {
        self.data
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Row `i`, mutable.
    pub fn row_mut(&mut self, i: usize) -> &mut [f64] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Element `(i, j)`.
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }

    /// Sets element `(i, j)`.
    #[inline]
    pub fn set(&mut self, i: usize, j: usize, v: f64) {
        self.data[i * self.cols + j] = v;
    }

    /// A borrowed view of the whole matrix.
    pub fn view(&self) -> MatRef<'_> {
        MatRef { data: &self.data, rows: self.rows, cols: self.cols, rs: self.cols, cs: 1 }
    }

    /// A view of the transpose (no copy).
    pub fn t(&self) -> MatRef<'_> {
        self.view().t()
    }

    /// The rows `idx`, in that order, copied into a new matrix.
    pub fn select_rows(&self, idx: &[usize]) -> Mat {
        let mut data = Vec::with_capacity(idx.len() * self.cols);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Mat { rows: idx.len(), cols: self.cols, data }
    }

    /// True when every element is finite.
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }
}

/// A borrowed strided matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
///
/// Transposing a view swaps the strides, so kernels take `A` and `Aᵀ` alike.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f64],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major view of `data` as `rows x cols`.
    ///
    /// # Panics
    /// If `data` is shorter than `rows * cols` (an internal invariant: callers build
    /// views from [`Mat`] or checked buffers).
    pub fn row_major(data: &'a [f64], rows: usize, cols: usize) -> MatRef<'a> {
        assert!(data.len() >= rows * cols, "view of {rows}x{cols} over {} values", data.len());
        MatRef { data, rows, cols, rs: cols, cs: 1 }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row stride.
    pub fn rs(&self) -> usize {
        self.rs
    }

    /// Column stride.
    pub fn cs(&self) -> usize {
        self.cs
    }

    /// The underlying buffer.
    pub fn data(&self) -> &'a [f64] {
        self.data
    }

    /// Element `(i, j)`.
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.rs + j * self.cs]
    }

    /// The transpose (swaps shape and strides).
    pub fn t(self) -> MatRef<'a> {
        MatRef { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    /// Copies the view into a row-major [`Mat`].
    pub fn to_mat(&self) -> Mat {
        Mat::from_fn(self.rows, self.cols, |i, j| self.get(i, j))
    }
}

/// SHA-256 of the little-endian bytes of `v`: how tests pin the output bits of a kernel.
pub fn bits_hash(v: &[f64]) -> crate::hash::Hash256 {
    let mut bytes = Vec::with_capacity(v.len() * 8);
    for x in v {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    crate::hash::sha256(&bytes)
}
