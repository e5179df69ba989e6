//! The blocked GEMM body shared by every path: GotoBLAS/BLIS loop nest, packed panels and
//! a register-blocked micro-kernel.
//!
//! # Consensus
//! Each `C[i,j]` is one chain `acc = fma(A[i,k], B[k,j], acc)`, `k` ascending, from `+0.0`
//! (or the old `C[i,j]` when accumulating). When K is split into KC blocks the micro-kernel
//! loads its accumulators from C and stores them back, so the chain continues; partial sums
//! are never added together. Hence the tile shape, the blocking and the SIMD width cannot
//! change a bit. Padding rows and columns are zeros whose results are never stored.

use super::mac::{Fused, Mac, Soft};
use crate::compute::det::MatRef;
use std::cell::RefCell;

/// Cache blocking: rows of A per packed block (`mc`), depth per block (`kc`), columns of B
/// per packed block (`nc`). Any values >= 1 give the same bits.
#[derive(Clone, Copy, Debug)]
pub(super) struct Blocking {
    /// Rows of A packed at once (a multiple of MR wastes nothing).
    pub mc: usize,
    /// Length of a chain segment between loads and stores of C.
    pub kc: usize,
    /// Columns of B packed at once (a multiple of NR wastes nothing).
    pub nc: usize,
}

/// The portable path's blocking (4x8 tiles).
pub(super) const PORTABLE_BLOCKING: Blocking = Blocking { mc: 96, kc: 256, nc: 1024 };

/// One GEMM: `C (+)= A · diag(s) B` where `s` scales the rows of B (`None`: no scaling).
#[derive(Clone, Copy, Debug)]
pub(super) struct GemmJob<'a> {
    /// `m x k`, any strides.
    pub a: MatRef<'a>,
    /// `k x n`, any strides.
    pub b: MatRef<'a>,
    /// `s_k` for each row `k` of B: the packed value is the rounded product `s_k * B[k,j]`.
    pub b_row_scale: Option<&'a [f64]>,
    /// Start the chains from the old C instead of `+0.0`.
    pub accumulate: bool,
    /// Compute only the tiles that hold some `i <= j` (syrk); others are left untouched.
    pub upper_only: bool,
}

/// A scratch `f64` buffer whose working slice starts on a 64-byte boundary, without
/// `unsafe`: over-allocate and skip to the first aligned element. Misaligned panels split
/// cache lines on every vector load (measured 3-15% slower).
///
/// The contents are unspecified (old data from an earlier call): every user writes each
/// element before reading it. Buffers come from a small per-thread pool, because a fresh
/// allocation of this size is a fresh `mmap` whose page faults cost more than a 128x128
/// gemm's packing.
pub(super) struct AlignedBuf {
    v: Vec<f64>,
    off: usize,
    len: usize,
}

thread_local! {
    /// Returned scratch buffers, reused by the next kernel call on this thread.
    static POOL: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
}

/// Buffers kept per thread (a gemm holds two at a time).
const POOL_KEEP: usize = 4;

impl AlignedBuf {
    /// At least `len` elements, 64-byte aligned, contents unspecified.
    pub fn new(len: usize) -> AlignedBuf {
        let need = len + 8;
        let mut v = POOL
            .try_with(|p| {
                let mut p = p.borrow_mut();
                match p.iter().position(|b| b.len() >= need) {
                    Some(i) => p.swap_remove(i),
                    None => p.pop().unwrap_or_default(),
                }
            })
            .unwrap_or_default();
        if v.len() < need {
            v.resize(need, 0.0);
        }
        // align_offset may in principle refuse (usize::MAX); an unaligned buffer is merely
        // slower, so fall back to the end of the 8 spare elements.
        let off = v.as_ptr().align_offset(64).min(8);
        AlignedBuf { v, off, len }
    }

    /// The buffer as rows of `W` values (`len / W` of them).
    pub fn rows_mut<const W: usize>(&mut self) -> &mut [[f64; W]] {
        self.v[self.off..self.off + self.len].as_chunks_mut::<W>().0
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.v);
        // During thread teardown the pool may be gone; the buffer is then simply freed.
        let _ = POOL.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut()
                && p.len() < POOL_KEEP
            {
                p.push(v);
            }
        });
    }
}

/// The portable path: 4x8 tiles, `mul_add` compiled for the build target.
pub(super) fn gemm_portable(job: &GemmJob<'_>, c: &mut [f64], ldc: usize) {
    gemm_blocked::<4, 8, Fused>(PORTABLE_BLOCKING, job, c, ldc)
}

/// The software-FMA path: same tiles as the portable one.
pub(super) fn gemm_soft(job: &GemmJob<'_>, c: &mut [f64], ldc: usize) {
    gemm_blocked::<4, 8, Soft>(PORTABLE_BLOCKING, job, c, ldc)
}

/// Runs `job` into the row-major `c` (row stride `ldc`) with `MR x NR` register tiles.
///
/// Loop nest: `jc` (NC columns) → `pc` (KC depth; pack B into NR-wide panels) → `ic` (MC
/// rows; pack A into MR-tall panels) → `jr` → `ir` → micro-kernel.
#[inline(always)]
pub(super) fn gemm_blocked<const MR: usize, const NR: usize, M: Mac>(
    bl: Blocking,
    job: &GemmJob<'_>,
    c: &mut [f64],
    ldc: usize,
) {
    const { assert!(MR >= 1 && MR <= 8 && NR >= 1, "tile rows are unrolled up to 8") };
    let (a, b) = (job.a, job.b);
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // Empty chains: the start value is the result.
        if !job.accumulate {
            for i in 0..m {
                c[i * ldc..][..n].fill(0.0);
            }
        }
        return;
    }
    let (mc, kc, nc) = (bl.mc.max(1), bl.kc.max(1), bl.nc.max(1));
    let kc_max = kc.min(k);
    let mut abuf = AlignedBuf::new(mc.min(m).div_ceil(MR) * MR * kc_max);
    let mut bbuf = AlignedBuf::new(nc.min(n).div_ceil(NR) * NR * kc_max);
    let apack = abuf.rows_mut::<MR>();
    let bpack = bbuf.rows_mut::<NR>();
    for jc in (0..n).step_by(nc) {
        let ncb = nc.min(n - jc);
        let b_panels = ncb.div_ceil(NR);
        for pc in (0..k).step_by(kc) {
            let kcb = kc.min(k - pc);
            // The first segment of a chain starts from +0.0 unless accumulating; later
            // segments continue from what the previous one stored.
            let load = pc > 0 || job.accumulate;
            // Panel widths stop at the block's edge (not C's): with nc < NR a panel
            // reaching into the next block would advance those chains twice.
            for p in 0..b_panels {
                let col0 = jc + p * NR;
                let panel = &mut bpack[p * kcb..(p + 1) * kcb];
                pack_b::<NR>(b, job.b_row_scale, pc, col0, NR.min(jc + ncb - col0), panel);
            }
            for ic in (0..m).step_by(mc) {
                if job.upper_only && ic >= jc + ncb {
                    // Every row from here on is below every column of this block.
                    break;
                }
                let mcb = mc.min(m - ic);
                let a_panels = mcb.div_ceil(MR);
                for q in 0..a_panels {
                    let row0 = ic + q * MR;
                    let panel = &mut apack[q * kcb..(q + 1) * kcb];
                    pack_a::<MR>(a, pc, row0, MR.min(ic + mcb - row0), panel);
                }
                for p in 0..b_panels {
                    let col0 = jc + p * NR;
                    let nr = NR.min(jc + ncb - col0);
                    let bp = &bpack[p * kcb..(p + 1) * kcb];
                    for q in 0..a_panels {
                        let row0 = ic + q * MR;
                        if job.upper_only && row0 >= col0 + nr {
                            break;
                        }
                        let ap = &apack[q * kcb..(q + 1) * kcb];
                        let mr = MR.min(ic + mcb - row0);
                        tile::<MR, NR, M>(ap, bp, c, ldc, row0, col0, mr, nr, load);
                    }
                }
            }
        }
    }
}

/// Packs `A[row0..row0+mr, pc..pc+dst.len()]` into `dst[k][i]`, zero rows below `mr`.
///
/// Contiguous cases are inlined into the `#[target_feature]` wrapper (plain vector moves);
/// the others are out of line, compiled for the baseline target: inlined into the AVX-512
/// wrapper, LLVM vectorised those strided copies with gathers and scatters, which are far
/// slower than scalar moves. Packing does no FMA (its only arithmetic is syrk's weight,
/// one correctly rounded product), so where it is compiled cannot change a bit.
#[inline(always)]
fn pack_a<const MR: usize>(a: MatRef<'_>, pc: usize, row0: usize, mr: usize, dst: &mut [[f64; MR]]) {
    let (data, cs) = (a.data(), a.cs());
    if a.rs() != 1 {
        pack_a_strided::<MR>(a, pc, row0, mr, dst);
    } else if mr == MR {
        // A transposed view: each column of the panel is contiguous. Fixed-size array
        // copies compile to a few moves; a slice copy of unknown length calls memmove.
        for (kk, d) in dst.iter_mut().enumerate() {
            *d = *data[(pc + kk) * cs + row0..].first_chunk::<MR>().expect("panel inside the view");
        }
    } else {
        // Unrolled selects: a variable-length copy here became a memcpy into a stack
        // temporary re-read as a vector (a store-forwarding stall).
        for (kk, d) in dst.iter_mut().enumerate() {
            let src = &data[(pc + kk) * cs + row0..][..mr];
            unroll_rows!(MR, |i| {
                d[i] = if i < mr { src[i] } else { 0.0 };
            });
        }
    }
}

/// [`pack_a`] for views whose columns are not contiguous (row-major and general strides).
#[inline(never)]
fn pack_a_strided<const MR: usize>(a: MatRef<'_>, pc: usize, row0: usize, mr: usize, dst: &mut [[f64; MR]]) {
    let (data, rs, cs) = (a.data(), a.rs(), a.cs());
    let kcb = dst.len();
    if mr == MR && cs == 1 {
        // Row-major: MR contiguous row streams, interleaved. Each row slice has length
        // kcb, so the loop below needs no bounds checks.
        let mut rows: [&[f64]; MR] = [&[]; MR];
        unroll_rows!(MR, |i| {
            rows[i] = &data[(row0 + i) * rs + pc..][..kcb];
        });
        for (kk, d) in dst.iter_mut().enumerate() {
            unroll_rows!(MR, |i| {
                d[i] = rows[i][kk];
            });
        }
    } else {
        for (kk, d) in dst.iter_mut().enumerate() {
            unroll_rows!(MR, |i| {
                d[i] = if i < mr { data[(row0 + i) * rs + (pc + kk) * cs] } else { 0.0 };
            });
        }
    }
}

/// Packs `B[pc..pc+dst.len(), col0..col0+nr]` into `dst[k][j]`, zero columns beyond `nr`,
/// each row `k` multiplied by `scale[pc + k]` when given. Contiguous rows are inlined, the
/// rest out of line (see [`pack_a`]).
#[inline(always)]
fn pack_b<const NR: usize>(
    b: MatRef<'_>,
    scale: Option<&[f64]>,
    pc: usize,
    col0: usize,
    nr: usize,
    dst: &mut [[f64; NR]],
) {
    let (data, rs) = (b.data(), b.rs());
    if b.cs() != 1 {
        pack_b_strided::<NR>(b, scale, pc, col0, nr, dst);
        return;
    }
    // Row-major: the scale (syrk's weights) is fused into the copy. The product is the
    // same one rounding wherever it is computed.
    for (kk, d) in dst.iter_mut().enumerate() {
        let sk = scale.map(|s| s[pc + kk]);
        if nr == NR {
            let src = data[(pc + kk) * rs + col0..].first_chunk::<NR>().expect("panel inside the view");
            // Whole-array operations: the element loop came out as scalar vmulsd/vmovsd.
            let mut row = *src;
            if let Some(sk) = sk {
                for v in row.iter_mut() {
                    *v *= sk;
                }
            }
            *d = row;
        } else {
            let src = &data[(pc + kk) * rs + col0..][..nr];
            for (j, v) in d.iter_mut().enumerate() {
                let x = if j < nr { src[j] } else { 0.0 };
                *v = match sk {
                    None => x,
                    Some(sk) => x * sk,
                };
            }
        }
    }
}

/// [`pack_b`] for views whose rows are not contiguous (transposed and general strides).
#[inline(never)]
fn pack_b_strided<const NR: usize>(
    b: MatRef<'_>,
    scale: Option<&[f64]>,
    pc: usize,
    col0: usize,
    nr: usize,
    dst: &mut [[f64; NR]],
) {
    let (data, rs, cs) = (b.data(), b.rs(), b.cs());
    let kcb = dst.len();
    if rs == 1 {
        // A transposed view: each column of the panel is contiguous.
        for j in 0..NR {
            if j < nr {
                let col = &data[(col0 + j) * cs + pc..][..kcb];
                for (d, v) in dst.iter_mut().zip(col) {
                    d[j] = *v;
                }
            } else {
                for d in dst.iter_mut() {
                    d[j] = 0.0;
                }
            }
        }
    } else {
        for (kk, d) in dst.iter_mut().enumerate() {
            for (j, v) in d.iter_mut().enumerate() {
                *v = if j < nr { data[(pc + kk) * rs + (col0 + j) * cs] } else { 0.0 };
            }
        }
    }
    // Here too, not in the wrapper: across the packed rows this loop became gathers and
    // scatters in the AVX-512 build.
    if let Some(s) = scale {
        for (d, sk) in dst.iter_mut().zip(&s[pc..pc + kcb]) {
            for v in d.iter_mut() {
                *v *= *sk;
            }
        }
    }
}

/// One `mr x nr` tile of C at `(row0, col0)` over one packed depth block.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn tile<const MR: usize, const NR: usize, M: Mac>(
    ap: &[[f64; MR]],
    bp: &[[f64; NR]],
    c: &mut [f64],
    ldc: usize,
    row0: usize,
    col0: usize,
    mr: usize,
    nr: usize,
    load: bool,
) {
    if mr == MR && nr == NR {
        let mut acc = [[0.0f64; NR]; MR];
        if load {
            unroll_rows!(MR, |i| {
                acc[i].copy_from_slice(&c[(row0 + i) * ldc + col0..][..NR]);
            });
        }
        let acc = micro::<MR, NR, MR, NR, M>(ap, bp, acc);
        unroll_rows!(MR, |i| {
            c[(row0 + i) * ldc + col0..][..NR].copy_from_slice(&acc[i]);
        });
        return;
    }
    // Edge tile: a smaller register tile (2 or 4 rows; 4, 8 or 16 columns) over the same
    // packed panels, so that e.g. the last 2 rows of a 6-row panel cost 2 rows of work.
    // Tiny syrk/gemm shapes (d = 8: one 6-row and one 2-row panel) are mostly edges.
    // (A literal row count above MR, e.g. 4 for MR = 3, is only named in a branch that
    // cannot run for that MR.)
    macro_rules! cols {
        ($r:tt) => {
            if NR > 4 && nr <= 4 {
                edge::<MR, NR, $r, 4, M>(ap, bp, c, ldc, row0, col0, mr, nr, load)
            } else if NR > 8 && nr <= 8 {
                edge::<MR, NR, $r, 8, M>(ap, bp, c, ldc, row0, col0, mr, nr, load)
            } else if NR > 16 && nr <= 16 {
                edge::<MR, NR, $r, 16, M>(ap, bp, c, ldc, row0, col0, mr, nr, load)
            } else {
                edge::<MR, NR, $r, NR, M>(ap, bp, c, ldc, row0, col0, mr, nr, load)
            }
        };
    }
    if MR > 2 && mr <= 2 {
        cols!(2)
    } else if MR > 4 && mr <= 4 {
        cols!(4)
    } else {
        cols!(MR)
    }
}

/// An `mr x nr` edge tile computed with an `R x C` register tile (`mr <= R <= MR`,
/// `nr <= C <= NR`) reading the first `R` rows and `C` columns of the packed panels.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn edge<const MR: usize, const NR: usize, const R: usize, const C: usize, M: Mac>(
    ap: &[[f64; MR]],
    bp: &[[f64; NR]],
    c: &mut [f64],
    ldc: usize,
    row0: usize,
    col0: usize,
    mr: usize,
    nr: usize,
    load: bool,
) {
    let mut acc = [[0.0f64; C]; R];
    if load {
        for (i, row) in acc.iter_mut().enumerate().take(mr) {
            row[..nr].copy_from_slice(&c[(row0 + i) * ldc + col0..][..nr]);
        }
    }
    let acc = micro::<MR, NR, R, C, M>(ap, bp, acc);
    for (i, row) in acc.iter().enumerate().take(mr) {
        c[(row0 + i) * ldc + col0..][..nr].copy_from_slice(&row[..nr]);
    }
}

/// The register tile: `acc[i][j] = fma(a[k][i], b[k][j], acc[i][j])` for `k` ascending,
/// over the first `R` of `MR` packed rows and `C` of `NR` packed columns.
///
/// The accumulators are a by-value array that LLVM keeps in registers; the rows are
/// unrolled so only the contiguous `j` loop is vectorised (AVX2 6x8: 6 broadcasts, 2
/// loads, 12 `vfmadd231pd` per `k`).
#[inline(always)]
fn micro<const MR: usize, const NR: usize, const R: usize, const C: usize, M: Mac>(
    ap: &[[f64; MR]],
    bp: &[[f64; NR]],
    mut acc: [[f64; C]; R],
) -> [[f64; C]; R] {
    for (a, b) in ap.iter().zip(bp) {
        unroll_rows!(R, |i| {
            let ai = a[i];
            let row = &mut acc[i];
            for j in 0..C {
                row[j] = M::mac(ai, b[j], row[j]);
            }
        });
    }
    acc
}
