//! The x86_64 compilations of the generic bodies: thin `#[target_feature]` wrappers.
//!
//! Everything on the hot path is `#[inline(always)]` into these functions, so `mul_add`
//! becomes an inline `vfmadd` (any helper left out of line would be compiled for the
//! baseline target and call the `fma` routine again). Note `avx2` does not imply `fma`.
//! The wrappers are safe functions; calling them needs the CPU features, which the
//! dispatchers in `kernels` check first.

use super::gemm::{Blocking, GemmJob, gemm_blocked};
use super::level2::{axpy_body, chol_body, dot_body, gemv_body, trsm_body};
use super::mac::Fused;
use crate::compute::det::{Mat, MatRef};

/// AVX2 blocking for 6x8 tiles: a 6x8 tile uses 12 of the 16 ymm registers as
/// accumulators; KC 256 keeps an 8-wide B panel (16 KiB) in L1.
const AVX2_BLOCKING: Blocking = Blocking { mc: 96, kc: 256, nc: 1024 };

/// AVX-512 blocking for 6x32 tiles (24 zmm accumulators); KC 512 measured faster than 256.
const AVX512_BLOCKING: Blocking = Blocking { mc: 96, kc: 512, nc: 1024 };

/// GEMM with 6x8 tiles on AVX2 + FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) fn gemm_avx2(job: &GemmJob<'_>, c: &mut [f64], ldc: usize) {
    gemm_blocked::<6, 8, Fused>(AVX2_BLOCKING, job, c, ldc)
}

/// GEMM with 6x32 tiles on AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) fn gemm_avx512(job: &GemmJob<'_>, c: &mut [f64], ldc: usize) {
    gemm_blocked::<6, 32, Fused>(AVX512_BLOCKING, job, c, ldc)
}

/// gemv: 8 rows at once (row-major) or 32 outputs at once (8 ymm chains, transposed).
#[target_feature(enable = "avx2,fma")]
pub(super) fn gemv_avx2(a: MatRef<'_>, x: &[f64], y: &mut [f64], accumulate: bool) {
    gemv_body::<Fused, 8, 32>(a, x, y, accumulate)
}

/// gemv: 64 outputs at once on transposed views (8 zmm chains); row-major views use the
/// AVX2 compilation, because with avx512f LLVM turned the 8 row chains into one zmm chain
/// fed by a gather per step.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) fn gemv_avx512(a: MatRef<'_>, x: &[f64], y: &mut [f64], accumulate: bool) {
    if a.cs() == 1 {
        // A safe call: this function's features include all of gemv_avx2's.
        gemv_avx2(a, x, y, accumulate)
    } else {
        gemv_body::<Fused, 8, 64>(a, x, y, accumulate)
    }
}

/// dot with inline FMA (one serial chain: no wider version would help).
#[target_feature(enable = "avx2,fma")]
pub(super) fn dot_avx2(x: &[f64], y: &[f64]) -> f64 {
    dot_body::<Fused>(x, y)
}

/// axpy on ymm vectors.
#[target_feature(enable = "avx2,fma")]
pub(super) fn axpy_avx2(a: f64, x: &[f64], y: &mut [f64]) {
    axpy_body::<Fused>(a, x, y)
}

/// axpy on zmm vectors.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) fn axpy_avx512(a: f64, x: &[f64], y: &mut [f64]) {
    axpy_body::<Fused>(a, x, y)
}

/// trsm_rows with 32 rows across lanes (8 independent ymm chains per step).
#[target_feature(enable = "avx2,fma")]
pub(super) fn trsm_avx2(l: &Mat, m: &mut Mat) {
    trsm_body::<Fused, 32>(l, m)
}

/// trsm_rows with 64 rows across lanes (8 independent zmm chains per step).
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) fn trsm_avx512(l: &Mat, m: &mut Mat) {
    trsm_body::<Fused, 64>(l, m)
}

/// Cholesky with its column updates on ymm vectors.
#[target_feature(enable = "avx2,fma")]
pub(super) fn chol_avx2(a: &Mat, shift: f64, lt: &mut [f64]) -> Option<(usize, f64)> {
    chol_body::<Fused>(a, shift, lt)
}

/// Cholesky with its column updates on zmm vectors.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) fn chol_avx512(a: &Mat, shift: f64, lt: &mut [f64]) -> Option<(usize, f64)> {
    chol_body::<Fused>(a, shift, lt)
}
