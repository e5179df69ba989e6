//! Bit-exact BLAS-like kernels: dot, axpy, scal, sum, gemv, gemm, weighted syrk and a
//! row-wise triangular solve.
//!
//! # Consensus
//! Each output element is one fused multiply-add chain over the reduction index in
//! increasing order (see the module docs of `det`). The exact formula of every kernel is
//! in its doc comment; any faster implementation must give the same bits. [`reference`](mod@reference)
//! holds the naive loops that define them; the tests compare every [`Path`] against it.
//!
//! # Implementation
//! The hot kernels have one generic `#[inline(always)]` body each, compiled several times
//! (one per [`Path`]): for the build target, inside `#[target_feature(enable = "avx2,fma")]`
//! and inside `#[target_feature(enable = "avx512f,avx2,fma")]` wrappers, and with a
//! software FMA for tests. Without the `fma` target feature `f64::mul_add` is an
//! out-of-line call (about 45x slower), so the wrappers are what make the kernels fast;
//! they never change a bit, because the chains are the same and FMA is correctly rounded.
//!
//! * [`gemm()`]: GotoBLAS/BLIS loop nest with 64-byte-aligned packed panels and a
//!   register-blocked micro-kernel (AVX2 6x8 with KC 256, AVX-512 6x32 with KC 512,
//!   portable 4x8). When K is split into KC blocks the micro-kernel reloads its
//!   accumulators from C, so each chain simply continues; partial sums are never added.
//! * [`syrk`]: the same machinery on `Aᵀ (diag(w) A)`, weights applied while packing, only
//!   the tiles touching the upper triangle computed, then mirrored.
//! * [`gemv`]: row-major views run 8 rows as independent chains; transposed views
//!   (contiguous columns) run axpy-style over 32 (AVX2) or 64 (AVX-512) outputs at once.
//! * [`trsm_rows`]: many independent rows, so a block of rows is transposed into a buffer and
//!   solved with the rows across SIMD lanes; each row's chain is unchanged.
//! * [`dot`] is one serial chain by contract; its wrapper only makes the FMA inline.
//!   [`axpy`] vectorises across elements.
//!
//! The only `unsafe` is calling a `#[target_feature]` wrapper after [`Path::checked`] has
//! confirmed the CPU features with `is_x86_feature_detected!`.

use super::{Mat, MatRef, count_flops};
use std::fmt;
use std::sync::OnceLock;

/// Repeats `$body` with `$i` bound to `0, 1, ..., 7`, skipping indices `>= $n`.
///
/// `$n` is a const generic, so the untaken branches fold away. Unrolling the rows of a
/// register tile by hand leaves LLVM only the contiguous column loop to vectorise; with a
/// plain `for i in 0..MR` loop it vectorised the rows instead, with gathers and spills
/// (30-40x slower).
macro_rules! unroll_rows {
    ($n:expr, |$i:ident| $body:block) => {{
        unroll_rows!(@one $n, $i, 0, $body);
        unroll_rows!(@one $n, $i, 1, $body);
        unroll_rows!(@one $n, $i, 2, $body);
        unroll_rows!(@one $n, $i, 3, $body);
        unroll_rows!(@one $n, $i, 4, $body);
        unroll_rows!(@one $n, $i, 5, $body);
        unroll_rows!(@one $n, $i, 6, $body);
        unroll_rows!(@one $n, $i, 7, $body);
    }};
    (@one $n:expr, $i:ident, $v:literal, $body:block) => {
        if $v < $n {
            let $i: usize = $v;
            $body
        }
    };
}

mod gemm;
mod level2;
mod mac;
pub mod reference;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests;

use gemm::GemmJob;

/// Which compilation of the kernels runs. Every path gives the same bits; they differ only
/// in speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    /// `f64::mul_add` compiled for the build target. On the default x86_64 target every
    /// FMA is an out-of-line call (slow but exact); on targets with FMA it is inline.
    Portable,
    /// AVX2 + FMA (x86_64 only): gemm 6x8 micro-kernel with KC 256, SIMD gemv/axpy/trsm.
    Avx2Fma,
    /// AVX-512F (+ AVX2, FMA; x86_64 only): gemm 6x32 micro-kernel with KC 512.
    Avx512,
    /// Pure software FMA (integer arithmetic, no FMA instruction) on the portable blocking:
    /// what a CPU without FMA computes. Hundreds of times slower; for tests only.
    SoftFma,
}

/// CPU features found at run time, looked up once.
#[derive(Clone, Copy, Debug)]
struct Features {
    avx2_fma: bool,
    avx512: bool,
}

fn features() -> Features {
    static FEATURES: OnceLock<Features> = OnceLock::new();
    *FEATURES.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2_fma = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            let avx512 = avx2_fma && is_x86_feature_detected!("avx512f");
            Features { avx2_fma, avx512 }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Features { avx2_fma: false, avx512: false }
        }
    })
}

impl Path {
    /// The fastest path this CPU supports (looked up once, then cached).
    pub fn detect() -> Path {
        let f = features();
        if f.avx512 {
            Path::Avx512
        } else if f.avx2_fma {
            Path::Avx2Fma
        } else {
            Path::Portable
        }
    }

    /// Every hardware path this CPU supports, slowest first: `Portable`, then `Avx2Fma` and
    /// `Avx512` when present. [`Path::SoftFma`] is always usable but not listed.
    pub fn available() -> Vec<Path> {
        [Path::Portable, Path::Avx2Fma, Path::Avx512].into_iter().filter(|p| p.is_available()).collect()
    }

    /// True when this CPU can run the path.
    pub fn is_available(self) -> bool {
        let f = features();
        match self {
            Path::Portable | Path::SoftFma => true,
            Path::Avx2Fma => f.avx2_fma,
            Path::Avx512 => f.avx512,
        }
    }

    /// A short name: `portable`, `avx2+fma`, `avx512`, `soft-fma`.
    pub fn name(self) -> &'static str {
        match self {
            Path::Portable => "portable",
            Path::Avx2Fma => "avx2+fma",
            Path::Avx512 => "avx512",
            Path::SoftFma => "soft-fma",
        }
    }

    /// `self`, after checking that the CPU supports it. The dispatchers call the
    /// `#[target_feature]` wrappers only for a path returned by this function.
    ///
    /// # Panics
    /// If the CPU lacks the path's features (asking for them is a caller bug; use
    /// [`Path::available`]).
    pub fn checked(self) -> Path {
        assert!(self.is_available(), "kernel path {} is not available on this CPU", self.name());
        self
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `Σ x_i y_i` as one fused chain from `+0.0`, `i` ascending.
///
/// # Panics
/// If the lengths differ (a caller bug: shapes are checked at the API boundary).
pub fn dot(x: &[f64], y: &[f64]) -> f64 {
    dot_with(Path::detect(), x, y)
}

/// [`dot`] on a chosen [`Path`].
///
/// # Panics
/// If the lengths differ, or the path is not available.
pub fn dot_with(path: Path, x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "dot of different lengths");
    count_flops(2 * x.len() as u64);
    match path.checked() {
        Path::Portable => level2::dot_body::<mac::Fused>(x, y),
        Path::SoftFma => level2::dot_body::<mac::Soft>(x, y),
        #[cfg(target_arch = "x86_64")]
        Path::Avx2Fma | Path::Avx512 => {
            // SAFETY: `checked` returned one of these paths, so is_x86_feature_detected!
            // found avx2 and fma, the only features `dot_avx2` enables.
            #[allow(unsafe_code)]
            let r = unsafe { x86::dot_avx2(x, y) };
            r
        }
        #[cfg(not(target_arch = "x86_64"))]
        Path::Avx2Fma | Path::Avx512 => unreachable!("checked() admits no x86 path here"),
    }
}

/// `Σ x_i`, left to right from `+0.0` (plain adds). A chain of plain adds needs no FMA
/// and nothing in it can be reordered, so the reference is the only path.
pub use reference::sum;

/// Euclidean norm `sqrt(dot(x, x))`.
pub fn nrm2(x: &[f64]) -> f64 {
    dot(x, x).sqrt()
}

/// `y_i = fma(a, x_i, y_i)`.
///
/// # Panics
/// If the lengths differ.
pub fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    axpy_with(Path::detect(), a, x, y)
}

/// [`axpy`] on a chosen [`Path`].
///
/// # Panics
/// If the lengths differ, or the path is not available.
pub fn axpy_with(path: Path, a: f64, x: &[f64], y: &mut [f64]) {
    assert_eq!(x.len(), y.len(), "axpy of different lengths");
    count_flops(2 * x.len() as u64);
    match path.checked() {
        Path::Portable => level2::axpy_body::<mac::Fused>(a, x, y),
        Path::SoftFma => level2::axpy_body::<mac::Soft>(a, x, y),
        #[cfg(target_arch = "x86_64")]
        Path::Avx2Fma => {
            // SAFETY: `checked` returned Avx2Fma, so is_x86_feature_detected! found avx2
            // and fma, the features `axpy_avx2` enables.
            #[allow(unsafe_code)]
            unsafe {
                x86::axpy_avx2(a, x, y)
            };
        }
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => {
            // SAFETY: `checked` returned Avx512, so is_x86_feature_detected! found avx512f,
            // avx2 and fma, the features `axpy_avx512` enables.
            #[allow(unsafe_code)]
            unsafe {
                x86::axpy_avx512(a, x, y)
            };
        }
        #[cfg(not(target_arch = "x86_64"))]
        Path::Avx2Fma | Path::Avx512 => unreachable!("checked() admits no x86 path here"),
    }
}

/// `x_i = a * x_i`.
pub fn scal(a: f64, x: &mut [f64]) {
    // Plain products, one rounding each: the baseline target vectorises this already.
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
    gemv_with(Path::detect(), a, x, y, accumulate)
}

/// [`gemv`] on a chosen [`Path`].
///
/// # Panics
/// On shape mismatch, or if the path is not available.
pub fn gemv_with(path: Path, a: MatRef<'_>, x: &[f64], y: &mut [f64], accumulate: bool) {
    assert_eq!(a.cols(), x.len(), "gemv: A has {} columns, x has {}", a.cols(), x.len());
    assert_eq!(a.rows(), y.len(), "gemv: A has {} rows, y has {}", a.rows(), y.len());
    count_flops(2 * (a.rows() * a.cols()) as u64);
    match path.checked() {
        Path::Portable => level2::gemv_body::<mac::Fused, 4, 8>(a, x, y, accumulate),
        Path::SoftFma => level2::gemv_body::<mac::Soft, 4, 8>(a, x, y, accumulate),
        #[cfg(target_arch = "x86_64")]
        Path::Avx2Fma => {
            // SAFETY: `checked` returned Avx2Fma, so is_x86_feature_detected! found avx2
            // and fma, the features `gemv_avx2` enables.
            #[allow(unsafe_code)]
            unsafe {
                x86::gemv_avx2(a, x, y, accumulate)
            };
        }
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => {
            // SAFETY: `checked` returned Avx512, so is_x86_feature_detected! found avx512f,
            // avx2 and fma, the features `gemv_avx512` enables.
            #[allow(unsafe_code)]
            unsafe {
                x86::gemv_avx512(a, x, y, accumulate)
            };
        }
        #[cfg(not(target_arch = "x86_64"))]
        Path::Avx2Fma | Path::Avx512 => unreachable!("checked() admits no x86 path here"),
    }
}

/// `C = A B` (or `C += A B` when `accumulate`): `C[i,j] = chain_k fma(A[i,k], B[k,j], C0[i,j])`.
/// `A` and `B` may be any views (transposes are free).
///
/// # Panics
/// On shape mismatch.
pub fn gemm(a: MatRef<'_>, b: MatRef<'_>, c: &mut Mat, accumulate: bool) {
    gemm_with(Path::detect(), a, b, c, accumulate)
}

/// [`gemm()`] on a chosen [`Path`].
///
/// # Panics
/// On shape mismatch, or if the path is not available.
pub fn gemm_with(path: Path, a: MatRef<'_>, b: MatRef<'_>, c: &mut Mat, accumulate: bool) {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    assert_eq!(b.rows(), k, "gemm: inner dimensions {k} and {}", b.rows());
    assert_eq!((c.rows(), c.cols()), (m, n), "gemm: C is {}x{}, want {m}x{n}", c.rows(), c.cols());
    count_flops(2 * (m * n * k) as u64);
    let job = GemmJob { a, b, b_row_scale: None, accumulate, upper_only: false };
    gemm_dispatch(path, &job, c.data_mut(), n);
}

/// Runs a [`GemmJob`] into the row-major `c` (row stride `ldc`) on `path`.
fn gemm_dispatch(path: Path, job: &GemmJob<'_>, c: &mut [f64], ldc: usize) {
    match path.checked() {
        Path::Portable => gemm::gemm_portable(job, c, ldc),
        Path::SoftFma => gemm::gemm_soft(job, c, ldc),
        #[cfg(target_arch = "x86_64")]
        Path::Avx2Fma => {
            // SAFETY: `checked` returned Avx2Fma, so is_x86_feature_detected! found avx2
            // and fma, the features `gemm_avx2` enables.
            #[allow(unsafe_code)]
            unsafe {
                x86::gemm_avx2(job, c, ldc)
            };
        }
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => {
            // SAFETY: `checked` returned Avx512, so is_x86_feature_detected! found avx512f,
            // avx2 and fma, the features `gemm_avx512` enables.
            #[allow(unsafe_code)]
            unsafe {
                x86::gemm_avx512(job, c, ldc)
            };
        }
        #[cfg(not(target_arch = "x86_64"))]
        Path::Avx2Fma | Path::Avx512 => unreachable!("checked() admits no x86 path here"),
    }
}

/// `C = Aᵀ diag(w) A` for `A` of `n x d` (`w = 1` when `None`): for `j <= l`,
/// `C[j,l] = C[l,j] = chain_i fma(A[i,j], w_i * A[i,l], 0)` where `w_i * A[i,l]` is one
/// rounded product. Weights may be negative.
///
/// # Panics
/// On shape mismatch.
pub fn syrk(a: MatRef<'_>, w: Option<&[f64]>, c: &mut Mat) {
    syrk_with(Path::detect(), a, w, c)
}

/// [`syrk`] on a chosen [`Path`].
///
/// # Panics
/// On shape mismatch, or if the path is not available.
pub fn syrk_with(path: Path, a: MatRef<'_>, w: Option<&[f64]>, c: &mut Mat) {
    let (n, d) = (a.rows(), a.cols());
    if let Some(w) = w {
        assert_eq!(w.len(), n, "syrk: {} weights for {n} rows", w.len());
    }
    assert_eq!((c.rows(), c.cols()), (d, d), "syrk: C is {}x{}, want {d}x{d}", c.rows(), c.cols());
    count_flops((n * d * (d + 1) + n * d) as u64);
    // The upper triangle is (Aᵀ B)[j,l] with B = diag(w) A: the gemm chain over i is
    // fma(Aᵀ[j,i], B[i,l]) = fma(A[i,j], w_i*A[i,l]), exactly the contract for j <= l.
    // The weights are applied while packing B; tiles wholly below the diagonal are skipped.
    let job = GemmJob { a: a.t(), b: a, b_row_scale: w, accumulate: false, upper_only: true };
    gemm_dispatch(path, &job, c.data_mut(), d);
    // Tiles straddling the diagonal also computed some (l > j) entries as the chain with the
    // factors swapped; the contract wants the mirror of the upper entry there.
    let data = c.data_mut();
    for j in 0..d {
        for l in j + 1..d {
            data[l * d + j] = data[j * d + l];
        }
    }
}

/// Replaces every row `y` of `m` by the solution of `L y' = y` (so `M <- M L⁻ᵀ`), `L` lower
/// triangular `d x d`: `y'_i = (chain_{k<i} fma(-L[i,k], y'_k, y_i)) / L[i,i]`.
///
/// # Panics
/// On shape mismatch.
pub fn trsm_rows(l: &Mat, m: &mut Mat) {
    trsm_rows_with(Path::detect(), l, m)
}

/// [`trsm_rows`] on a chosen [`Path`].
///
/// # Panics
/// On shape mismatch, or if the path is not available.
pub fn trsm_rows_with(path: Path, l: &Mat, m: &mut Mat) {
    let d = l.rows();
    assert_eq!(l.cols(), d, "trsm_rows: L is not square");
    assert_eq!(m.cols(), d, "trsm_rows: rows of length {} for L of order {d}", m.cols());
    count_flops((m.rows() * d * d) as u64);
    match path.checked() {
        Path::Portable => level2::trsm_body::<mac::Fused, 8>(l, m),
        Path::SoftFma => level2::trsm_body::<mac::Soft, 4>(l, m),
        #[cfg(target_arch = "x86_64")]
        Path::Avx2Fma => {
            // SAFETY: `checked` returned Avx2Fma, so is_x86_feature_detected! found avx2
            // and fma, the features `trsm_avx2` enables.
            #[allow(unsafe_code)]
            unsafe {
                x86::trsm_avx2(l, m)
            };
        }
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => {
            // SAFETY: `checked` returned Avx512, so is_x86_feature_detected! found avx512f,
            // avx2 and fma, the features `trsm_avx512` enables.
            #[allow(unsafe_code)]
            unsafe {
                x86::trsm_avx512(l, m)
            };
        }
        #[cfg(not(target_arch = "x86_64"))]
        Path::Avx2Fma | Path::Avx512 => unreachable!("checked() admits no x86 path here"),
    }
}

/// The Cholesky factor `L` of `a + shift·I` (only the lower triangle of `a` is read),
/// row-major with zeros above the diagonal, and the first pivot that was not `> 0` and
/// finite with its value. Such a pivot is replaced by `1` and the factorisation goes on, so
/// the work is the same for every matrix of the order (a mining step's cost must not depend
/// on its data, DESIGN.md §3.2); a factor with a failed pivot is not a factor of `a`.
///
/// # Consensus
/// `L[j,j] = sqrt(chain_{k<j} fma(-L[j,k], L[j,k], a[j,j] + shift))` and
/// `L[i,j] = (chain_{k<j} fma(-L[i,k], L[j,k], a[i,j])) / L[j,j]`, `k` ascending
/// ([`reference::cholesky`]).
///
/// # Panics
/// If `a` is not square.
pub fn cholesky(a: &Mat, shift: f64) -> (Mat, Option<(usize, f64)>) {
    cholesky_with(Path::detect(), a, shift)
}

/// [`cholesky`] on a chosen [`Path`]: the columns' updates run with the rows below the
/// pivot across SIMD lanes.
///
/// # Panics
/// If `a` is not square, or if the path is not available.
pub fn cholesky_with(path: Path, a: &Mat, shift: f64) -> (Mat, Option<(usize, f64)>) {
    let n = a.rows();
    assert_eq!(a.cols(), n, "cholesky: a is not square");
    count_flops((n * n * n / 3) as u64);
    let mut lt = vec![0.0; n * n];
    let failed = match path.checked() {
        Path::Portable => level2::chol_body::<mac::Fused>(a, shift, &mut lt),
        Path::SoftFma => level2::chol_body::<mac::Soft>(a, shift, &mut lt),
        #[cfg(target_arch = "x86_64")]
        Path::Avx2Fma => {
            // SAFETY: `checked` returned Avx2Fma, so is_x86_feature_detected! found avx2
            // and fma, the features `chol_avx2` enables.
            #[allow(unsafe_code)]
            unsafe {
                x86::chol_avx2(a, shift, &mut lt)
            }
        }
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => {
            // SAFETY: `checked` returned Avx512, so is_x86_feature_detected! found avx512f,
            // avx2 and fma, the features `chol_avx512` enables.
            #[allow(unsafe_code)]
            unsafe {
                x86::chol_avx512(a, shift, &mut lt)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Path::Avx2Fma | Path::Avx512 => unreachable!("checked() admits no x86 path here"),
    };
    let l = Mat::from_fn(n, n, |i, j| if i >= j { lt[j * n + i] } else { 0.0 });
    (l, failed)
}
