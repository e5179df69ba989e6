//! Generic bodies of dot, axpy, gemv and trsm_rows, instantiated per path.
//!
//! # Consensus
//! Every output keeps its own chain in the order of the contract. Speed comes only from
//! running many *independent* chains side by side (several gemv rows, blocks of outputs
//! of a transposed gemv, blocks of trsm rows across SIMD lanes) and from inline FMA.

use super::gemm::AlignedBuf;
use super::mac::Mac;
use crate::compute::det::{Mat, MatRef};

/// `chain_i fma(x_i, y_i, ·)` from `+0.0`. One serial chain: nothing to parallelise.
#[inline(always)]
pub(super) fn dot_body<M: Mac>(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = 0.0f64;
    for (a, b) in x.iter().zip(y) {
        acc = M::mac(*a, *b, acc);
    }
    acc
}

/// `y_i = fma(a, x_i, y_i)`: independent elements, vectorised by LLVM.
#[inline(always)]
pub(super) fn axpy_body<M: Mac>(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi = M::mac(a, *xi, *yi);
    }
}

/// `y (+)= A x` for any view. `R` rows run side by side on row-major views; blocks of `W`
/// outputs (and narrower tails) run side by side on views with contiguous columns.
#[inline(always)]
pub(super) fn gemv_body<M: Mac, const R: usize, const W: usize>(
    a: MatRef<'_>,
    x: &[f64],
    y: &mut [f64],
    accumulate: bool,
) {
    let (m, k) = (a.rows(), a.cols());
    if m == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            y.fill(0.0);
        }
        return;
    }
    if a.cs() == 1 {
        if m >= R {
            rows_cover::<M, R>(a, x, y, accumulate);
        } else if m >= 4 {
            rows_cover::<M, 4>(a, x, y, accumulate);
        } else {
            rows_cover::<M, 1>(a, x, y, accumulate);
        }
    } else if a.rs() == 1 {
        if m >= W {
            cols_cover::<M, W>(a, x, y, accumulate);
        } else if m >= 32 {
            cols_cover::<M, 32>(a, x, y, accumulate);
        } else if m >= 16 {
            cols_cover::<M, 16>(a, x, y, accumulate);
        } else if m >= 8 {
            cols_cover::<M, 8>(a, x, y, accumulate);
        } else if m >= 4 {
            cols_cover::<M, 4>(a, x, y, accumulate);
        } else {
            cols_cover::<M, 1>(a, x, y, accumulate);
        }
    } else {
        // Neither stride is 1 (a strided sub-view): rare, one chain at a time.
        let (data, rs, cs) = (a.data(), a.rs(), a.cs());
        for (i, yi) in y.iter_mut().enumerate() {
            let mut acc = if accumulate { *yi } else { 0.0 };
            for (kk, xk) in x.iter().enumerate() {
                acc = M::mac(data[i * rs + kk * cs], *xk, acc);
            }
            *yi = acc;
        }
    }
}

/// The start values of outputs `i0..i0+B`.
#[inline(always)]
fn init<const B: usize>(y: &[f64], i0: usize, accumulate: bool) -> [f64; B] {
    let mut acc = [0.0f64; B];
    if accumulate {
        acc.copy_from_slice(&y[i0..i0 + B]);
    }
    acc
}

/// Row-major `A` (`cs == 1`), `y.len() >= B`: blocks of `B` rows as `B` independent
/// chains, each row streamed once.
///
/// The last block is aligned to the end and overlaps its predecessor; it runs first, from
/// the untouched start values, and only its new part is stored. Recomputing a chain gives
/// the same bits, so no narrow tail loop (latency-bound chains one at a time) is needed.
#[inline(always)]
fn rows_cover<M: Mac, const B: usize>(a: MatRef<'_>, x: &[f64], y: &mut [f64], accumulate: bool) {
    let n = y.len();
    let tail0 = n - B;
    let full = n / B * B;
    let tail = (full < n).then(|| rows_block::<M, B>(a, x, tail0, init::<B>(y, tail0, accumulate)));
    for i0 in (0..full).step_by(B) {
        let r = rows_block::<M, B>(a, x, i0, init::<B>(y, i0, accumulate));
        y[i0..i0 + B].copy_from_slice(&r);
    }
    if let Some(tail) = tail {
        y[full..].copy_from_slice(&tail[full - tail0..]);
    }
}

/// Rows `i0..i0+B` of a row-major `A` times `x`, each row's chain from `acc`.
///
/// LLVM packs the `B` scalar chains into vectors, gathering one element per row per step
/// (two loads and a shuffle per element); measured faster than a 16-row variant with 4x4
/// in-register transposes, which ran out of registers for the row pointers.
#[inline(always)]
fn rows_block<M: Mac, const B: usize>(a: MatRef<'_>, x: &[f64], i0: usize, mut acc: [f64; B]) -> [f64; B] {
    let (data, rs) = (a.data(), a.rs());
    let k = x.len();
    // Straight-line slices of length k (array::from_fn stayed out of line, hiding the
    // lengths and leaving a bounds check per row and step).
    let mut rows: [&[f64]; B] = [&[]; B];
    unroll_rows!(B, |r| {
        rows[r] = &data[(i0 + r) * rs..][..k];
    });
    for (kk, xk) in x.iter().enumerate() {
        unroll_rows!(B, |r| {
            acc[r] = M::mac(rows[r][kk], *xk, acc[r]);
        });
    }
    acc
}

/// Bytes of A per column chunk of the transposed gemv: the chunk stays in L1 while every
/// block of outputs runs over it.
const COL_CHUNK_BYTES: usize = 16 * 1024;

/// `A` with contiguous columns (`rs == 1`, e.g. `Mᵀ` of a row-major `M`), `y.len() >= B`:
/// blocks of `B` outputs, axpy-style over the columns (one vector FMA per 4 or 8 outputs).
///
/// One block per pass over A would stream A from memory once per block, with a stride.
/// Instead A is walked once, in chunks of columns small enough for L1; every block runs
/// over the chunk, parking its partial chains in `part` between chunks (a chain that is
/// stored and reloaded is the same chain). The last block is aligned to the end and
/// overlaps its predecessor, so it keeps its own chains and only its new part is stored.
#[inline(always)]
fn cols_cover<M: Mac, const B: usize>(a: MatRef<'_>, x: &[f64], y: &mut [f64], accumulate: bool) {
    let n = y.len();
    let k = x.len();
    let tail0 = n - B;
    let full = n / B * B;
    let mut storage = AlignedBuf::new(full);
    let part = storage.rows_mut::<B>();
    for (p, blk) in part.iter_mut().enumerate() {
        *blk = init::<B>(y, p * B, accumulate);
    }
    let has_tail = full < n;
    let mut tail = init::<B>(y, tail0, accumulate);
    // A single block needs no chunking: it reads A once anyway.
    let blocks = part.len() + usize::from(has_tail);
    let chunk = if blocks <= 1 { k } else { (COL_CHUNK_BYTES / (8 * n)).max(4) };
    for k0 in (0..k).step_by(chunk) {
        let xs = &x[k0..k.min(k0 + chunk)];
        for (p, blk) in part.iter_mut().enumerate() {
            *blk = cols_block::<M, B>(a, xs, k0, p * B, *blk);
        }
        if has_tail {
            tail = cols_block::<M, B>(a, xs, k0, tail0, tail);
        }
    }
    for (p, blk) in part.iter().enumerate() {
        y[p * B..(p + 1) * B].copy_from_slice(blk);
    }
    y[full..].copy_from_slice(&tail[full - tail0..]);
}

/// Continues the chains of outputs `i0..i0+B` over columns `k0..k0+xs.len()` of `A`
/// (contiguous columns), from `acc`.
#[inline(always)]
fn cols_block<M: Mac, const B: usize>(a: MatRef<'_>, xs: &[f64], k0: usize, i0: usize, mut acc: [f64; B]) -> [f64; B] {
    let (data, cs) = (a.data(), a.cs());
    for (kk, xk) in xs.iter().enumerate() {
        let col = data[(k0 + kk) * cs + i0..].first_chunk::<B>().expect("column inside the view");
        for j in 0..B {
            acc[j] = M::mac(col[j], *xk, acc[j]);
        }
    }
    acc
}

/// Solves `L y' = y` for every row `y` of `m`. Blocks of `W` rows are transposed into a
/// buffer (`buf[k][r]` = element `k` of row `r`) so that row `r` is SIMD lane `r`: each
/// step `k` of the chains of all `W` rows is one vector FMA with the broadcast `-L[i,k]`.
/// Rows of a partial last block are zero padding whose results are dropped.
#[inline(always)]
pub(super) fn trsm_body<M: Mac, const W: usize>(l: &Mat, m: &mut Mat) {
    let d = l.rows();
    let rows = m.rows();
    if d == 0 || rows == 0 {
        return;
    }
    let mut storage = AlignedBuf::new(d * W);
    let buf = storage.rows_mut::<W>();
    let ld = l.data();
    for r0 in (0..rows).step_by(W) {
        let w = W.min(rows - r0);
        load_rows::<W>(m, r0, w, buf);
        for i in 0..d {
            let (done, rest) = buf.split_at_mut(i);
            let mut s = rest[0];
            for (lik, yk) in ld[i * d..i * d + i].iter().zip(done.iter()) {
                let neg = -*lik;
                for j in 0..W {
                    s[j] = M::mac(neg, yk[j], s[j]);
                }
            }
            let lii = ld[i * d + i];
            for v in s.iter_mut() {
                *v /= lii;
            }
            rest[0] = s;
        }
        store_rows::<W>(m, r0, w, buf);
    }
}

/// `buf[k][r] = m[r0 + r, k]` for `r < w`, zero for the padding lanes `w <= r < W`.
///
/// Out of line: a pure copy, and inlined into the AVX-512 wrapper it became gathers.
#[inline(never)]
fn load_rows<const W: usize>(m: &Mat, r0: usize, w: usize, buf: &mut [[f64; W]]) {
    for bk in buf.iter_mut() {
        bk.fill(0.0);
    }
    for r in 0..w {
        for (bk, v) in buf.iter_mut().zip(m.row(r0 + r)) {
            bk[r] = *v;
        }
    }
}

/// `m[r0 + r, k] = buf[k][r]` for `r < w` (the inverse of [`load_rows`]).
#[inline(never)]
fn store_rows<const W: usize>(m: &mut Mat, r0: usize, w: usize, buf: &[[f64; W]]) {
    for r in 0..w {
        for (v, bk) in m.row_mut(r0 + r).iter_mut().zip(buf) {
            *v = bk[r];
        }
    }
}

/// Cholesky of `a + shift·I` into `lt`, column-major (`lt[j*n + i] = L[i,j]`, `i >= j`;
/// the entries above the diagonal are left as they are). Column `j` starts from `a[i][j]`
/// (`+ shift` on the diagonal) and takes `fma(-L[i,k], L[j,k], ·)` for `k = 0, 1, ..., j-1`
/// in that order, all rows `i >= j` side by side (columns of `L` are contiguous in `lt`).
/// A pivot that is not `> 0` and finite is recorded (the first one, with its value) and
/// replaced by `1`, so the work never depends on the data.
#[inline(always)]
pub(super) fn chol_body<M: Mac>(a: &Mat, shift: f64, lt: &mut [f64]) -> Option<(usize, f64)> {
    let n = a.rows();
    let mut failed = None;
    for j in 0..n {
        let (done, rest) = lt.split_at_mut(j * n);
        let w = &mut rest[j..n];
        for (r, wi) in w.iter_mut().enumerate() {
            *wi = a.get(j + r, j);
        }
        w[0] += shift;
        // Four columns of `L` per pass over `w`: each entry's chain still takes k in
        // ascending order, with a quarter of the loads and stores of `w`.
        let mut k = 0;
        while k + 4 <= j {
            let (c0, c1, c2, c3) = (
                &done[k * n + j..k * n + n],
                &done[(k + 1) * n + j..(k + 1) * n + n],
                &done[(k + 2) * n + j..(k + 2) * n + n],
                &done[(k + 3) * n + j..(k + 3) * n + n],
            );
            let (l0, l1, l2, l3) = (c0[0], c1[0], c2[0], c3[0]);
            for r in 0..w.len() {
                let mut s = w[r];
                s = M::mac(-c0[r], l0, s);
                s = M::mac(-c1[r], l1, s);
                s = M::mac(-c2[r], l2, s);
                s = M::mac(-c3[r], l3, s);
                w[r] = s;
            }
            k += 4;
        }
        while k < j {
            let c = &done[k * n + j..k * n + n];
            let l0 = c[0];
            for (wi, ci) in w.iter_mut().zip(c) {
                *wi = M::mac(-*ci, l0, *wi);
            }
            k += 1;
        }
        let mut s = w[0];
        if !(s > 0.0 && s.is_finite()) {
            failed.get_or_insert((j, s));
            s = 1.0;
        }
        let ljj = s.sqrt();
        w[0] = ljj;
        for wi in &mut w[1..] {
            *wi /= ljj;
        }
    }
    failed
}
