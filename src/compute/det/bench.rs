//! GEMM throughput of the deterministic kernel on each [`Path`] against ndarray's `dot`.
//!
//! Not consensus code: a measurement behind `gradientcoin compute bench gemm`. ndarray
//! (matrixmultiply) is only a speed yardstick here; its results are not the contract's
//! bits for K > 256. While timing, the bench also checks that every deterministic path
//! produced the same bits.
//!
//! Method: square `n x n` inputs of seeded `u · 2^e` values; one thread; rounds interleave
//! the engines (so a noisy spell on a shared host hits all of them); each sample times
//! enough calls to last about half a millisecond; GFLOP/s is `2n³/t`, reported as the best
//! sample and the median. Best-of is the robust statistic on noisy hosts.

use super::kernels::{Path, gemm_with};
use super::rng::{DetRng, tags};
use super::{Mat, bits_hash};
use crate::hash::Hash256;
use std::fmt;
use std::time::Instant;

/// What computed a [`GemmBenchRow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmEngine {
    /// The deterministic [`gemm_with`] on this path.
    Det(Path),
    /// `ndarray::linalg::general_mat_mul` (matrixmultiply), the yardstick.
    Ndarray,
}

impl fmt::Display for GemmEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GemmEngine::Det(p) => write!(f, "det {p}"),
            GemmEngine::Ndarray => f.write_str("ndarray"),
        }
    }
}

/// One engine at one size.
#[derive(Clone, Debug)]
pub struct GemmBenchRow {
    /// Matrix order (`n x n` times `n x n`).
    pub n: usize,
    /// What ran.
    pub engine: GemmEngine,
    /// Best sample, GFLOP/s.
    pub best_gflops: f64,
    /// Median sample, GFLOP/s.
    pub median_gflops: f64,
    /// `best_gflops` over ndarray's best at the same `n` (1 for ndarray itself).
    pub ratio_best: f64,
    /// `median_gflops` over ndarray's median at the same `n`.
    pub ratio_median: f64,
    /// SHA-256 of the output bits.
    pub bits: Hash256,
    /// Deterministic rows: the bits equal those of every other deterministic path at this
    /// `n` (false is a bug). The ndarray row: its bits happen to equal the deterministic
    /// ones (informational; expected only for `n <= 256` on FMA CPUs).
    pub bits_match: bool,
}

impl fmt::Display for GemmBenchRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = match (self.engine, self.bits_match) {
            (GemmEngine::Ndarray, true) => "= det",
            (GemmEngine::Ndarray, false) => "differs from det",
            (GemmEngine::Det(_), true) => "identical",
            (GemmEngine::Det(_), false) => "MISMATCH",
        };
        write!(
            f,
            "{:>5}  {:<14} {:>8.2} {:>8.2}   {:>5.2} / {:<5.2}  {} {}",
            self.n,
            self.engine.to_string(),
            self.best_gflops,
            self.median_gflops,
            self.ratio_best,
            self.ratio_median,
            &self.bits.to_string()[..16],
            bits
        )
    }
}

/// Seeded `u · 2^e` entries, `u` uniform in `[-1, 1)`, `e` in `[-8, 8]`.
fn bench_matrix(n: usize, which: u32) -> Mat {
    let mut r = DetRng::stream(&[0x42; 32], tags::SYNTHETIC, (n as u32) << 1 | which);
    Mat::from_fn(n, n, |_, _| {
        let u = 2.0 * r.u01() - 1.0;
        let e = r.below(17) as i64 - 8;
        u * f64::from_bits(((e + 1023) as u64) << 52)
    })
}

/// Calls per sample so that a sample is about 2^24 flops (about half a millisecond at
/// 30 GFLOP/s), at least one.
fn reps_for(n: usize) -> usize {
    let flops = 2.0 * (n * n * n) as f64;
    ((16_777_216.0 / flops.max(1.0)).ceil() as usize).max(1)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let h = v.len() / 2;
    if v.len() % 2 == 1 { v[h] } else { 0.5 * (v[h - 1] + v[h]) }
}

/// Measures deterministic gemm on every available hardware path (the portable one only
/// for `n <= 128`: it runs at well under 1 GFLOP/s on x86_64) and ndarray, at each size,
/// over `rounds` interleaved rounds (at least 1), single-threaded.
///
/// Returns one row per engine and size, ndarray first at each size.
pub fn gemm_bench(sizes: &[usize], rounds: usize) -> Vec<GemmBenchRow> {
    let rounds = rounds.max(1);
    let mut out = Vec::new();
    for &n in sizes {
        let a = bench_matrix(n, 0);
        let b = bench_matrix(n, 1);
        let mut engines = vec![GemmEngine::Ndarray];
        for p in Path::available() {
            if p != Path::Portable || n <= 128 {
                engines.push(GemmEngine::Det(p));
            }
        }
        let na = ndarray::Array2::from_shape_vec((n, n), a.data().to_vec()).expect("n x n buffer");
        let nb = ndarray::Array2::from_shape_vec((n, n), b.data().to_vec()).expect("n x n buffer");
        let mut nc = ndarray::Array2::<f64>::zeros((n, n));
        let mut dc = Mat::zeros(n, n);
        let reps = reps_for(n);
        let flops = 2.0 * (n * n * n) as f64 * reps as f64;
        let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); engines.len()];
        let mut bits: Vec<Hash256> = Vec::with_capacity(engines.len());
        // Warm-up round (not timed): faults the buffers in and records each output.
        for e in &engines {
            match e {
                GemmEngine::Ndarray => {
                    ndarray::linalg::general_mat_mul(1.0, &na, &nb, 0.0, &mut nc);
                    bits.push(bits_hash(nc.as_slice().expect("standard layout")));
                }
                GemmEngine::Det(p) => {
                    gemm_with(*p, a.view(), b.view(), &mut dc, false);
                    bits.push(bits_hash(dc.data()));
                }
            }
        }
        for _ in 0..rounds {
            for (e, s) in engines.iter().zip(samples.iter_mut()) {
                let t0 = Instant::now();
                for _ in 0..reps {
                    match e {
                        GemmEngine::Ndarray => ndarray::linalg::general_mat_mul(
                            1.0,
                            std::hint::black_box(&na),
                            std::hint::black_box(&nb),
                            0.0,
                            &mut nc,
                        ),
                        GemmEngine::Det(p) => gemm_with(
                            *p,
                            std::hint::black_box(a.view()),
                            std::hint::black_box(b.view()),
                            &mut dc,
                            false,
                        ),
                    }
                }
                let dt = t0.elapsed().as_secs_f64();
                std::hint::black_box(&dc);
                std::hint::black_box(&nc);
                s.push(flops / dt.max(1e-12) / 1e9);
            }
        }
        let det_bits = bits[1..].first().copied();
        let stats: Vec<(f64, f64)> =
            samples.iter_mut().map(|s| (s.iter().copied().fold(0.0, f64::max), median(s))).collect();
        let (nd_best, nd_median) = stats[0];
        for ((e, (best, med)), h) in engines.iter().zip(&stats).zip(&bits) {
            let bits_match = match e {
                GemmEngine::Ndarray => det_bits == Some(*h),
                GemmEngine::Det(_) => bits[1..].iter().all(|o| o == h),
            };
            out.push(GemmBenchRow {
                n,
                engine: *e,
                best_gflops: *best,
                median_gflops: *med,
                ratio_best: best / nd_best,
                ratio_median: med / nd_median,
                bits: *h,
                bits_match,
            });
        }
    }
    out
}

/// True when, at every size, all deterministic paths produced the same bits.
pub fn det_paths_agree(rows: &[GemmBenchRow]) -> bool {
    rows.iter().filter(|r| matches!(r.engine, GemmEngine::Det(_))).all(|r| r.bits_match)
}

/// A readable table of [`gemm_bench`] rows, with the selected path and a verdict on the
/// bit-identity check.
pub fn format_gemm_bench(rows: &[GemmBenchRow]) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "GEMM C = A B, n x n, one thread, GFLOP/s = 2n^3/t (best and median of interleaved rounds)\n\
         selected path: {}\n\n",
        Path::detect()
    ));
    s.push_str("    n  engine             best   median   vs ndarray best/median  bits (sha256)\n");
    let mut last_n = None;
    for r in rows {
        if last_n.is_some() && last_n != Some(r.n) {
            s.push('\n');
        }
        last_n = Some(r.n);
        s.push_str(&format!("{r}\n"));
    }
    s.push_str(if det_paths_agree(rows) {
        "\ndeterministic paths: bit-identical at every size\n"
    } else {
        "\ndeterministic paths: BITS DIFFER (a bug: consensus requires identical results)\n"
    });
    s
}
