//! Golden vectors for the deterministic numerics: the SHA-256 of the output bits of every
//! `det` kernel on fixed seeded inputs, pinned in `tests/vectors/det_kernels.json`.
//!
//! Every node must compute these bits (consensus), so the test recomputes each vector on
//! every code path this CPU has (`kernels::Path::available()`), on the software-FMA path
//! and with the naive `kernels::reference`, and compares all of them with the file. A
//! mismatch means a kernel, the RNG or the math functions changed their results.
//!
//! `GC_BLESS_VECTORS=1 cargo test --test det_vectors` rewrites the file instead (after
//! checking that all paths agree with each other; see `common::vectors`). Only do that for an intended change of
//! the numerics, which is a consensus change.

mod common;

use gradientcoin::compute::det::chol::Cholesky;
use gradientcoin::compute::det::kernels::{self, Path, reference};
use gradientcoin::compute::det::rng::{DetRng, tags};
use gradientcoin::compute::det::{Mat, bits_hash, math};
use std::collections::BTreeMap;

/// The seed of every input stream.
const SEED: [u8; 32] = *b"gradientcoin det golden vectors!";

/// Who computes the kernels that have several code paths.
#[derive(Clone, Copy, Debug)]
enum Engine {
    /// `kernels::*_with(path, ..)`.
    Path(Path),
    /// `kernels::reference::*`.
    Reference,
}

impl Engine {
    fn name(self) -> String {
        match self {
            Engine::Path(p) => p.to_string(),
            Engine::Reference => "reference".to_string(),
        }
    }

    fn dot(self, x: &[f64], y: &[f64]) -> f64 {
        match self {
            Engine::Path(p) => kernels::dot_with(p, x, y),
            Engine::Reference => reference::dot(x, y),
        }
    }

    fn axpy(self, a: f64, x: &[f64], y: &mut [f64]) {
        match self {
            Engine::Path(p) => kernels::axpy_with(p, a, x, y),
            Engine::Reference => reference::axpy(a, x, y),
        }
    }

    fn gemv(self, a: gradientcoin::compute::det::MatRef<'_>, x: &[f64], y: &mut [f64], acc: bool) {
        match self {
            Engine::Path(p) => kernels::gemv_with(p, a, x, y, acc),
            Engine::Reference => reference::gemv(a, x, y, acc),
        }
    }

    fn gemm(
        self,
        a: gradientcoin::compute::det::MatRef<'_>,
        b: gradientcoin::compute::det::MatRef<'_>,
        c: &mut Mat,
        acc: bool,
    ) {
        match self {
            Engine::Path(p) => kernels::gemm_with(p, a, b, c, acc),
            Engine::Reference => reference::gemm(a, b, c, acc),
        }
    }

    fn syrk(self, a: gradientcoin::compute::det::MatRef<'_>, w: Option<&[f64]>, c: &mut Mat) {
        match self {
            Engine::Path(p) => kernels::syrk_with(p, a, w, c),
            Engine::Reference => reference::syrk(a, w, c),
        }
    }

    fn trsm_rows(self, l: &Mat, m: &mut Mat) {
        match self {
            Engine::Path(p) => kernels::trsm_rows_with(p, l, m),
            Engine::Reference => reference::trsm_rows(l, m),
        }
    }
}

/// A seeded `u · 2^e` stream (`u` uniform in `[-1, 1)`, `e` in `[-8, 8]`).
struct Vals(DetRng);

impl Vals {
    fn new(t: u32) -> Vals {
        Vals(DetRng::stream(&SEED, tags::SYNTHETIC, t))
    }

    fn next(&mut self) -> f64 {
        let u = 2.0 * self.0.u01() - 1.0;
        let e = self.0.below(17) as i64 - 8;
        u * f64::from_bits(((e + 1023) as u64) << 52)
    }

    fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.next()).collect()
    }

    fn mat(&mut self, rows: usize, cols: usize) -> Mat {
        Mat::from_vec(rows, cols, self.vec(rows * cols)).unwrap()
    }
}

fn hex(v: &[f64]) -> String {
    bits_hash(v).to_string()
}

/// Every vector, computed with `engine` where a kernel has several paths.
fn vectors(engine: Engine) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut put = |name: &str, v: &[f64]| {
        out.insert(name.to_string(), hex(v));
    };

    // Level 1.
    let mut r = Vals::new(1);
    let (x, y) = (r.vec(1000), r.vec(1000));
    let a = r.next();
    put("dot_1000", &[engine.dot(&x, &y)]);
    put("nrm2_1000", &[engine.dot(&x, &x).sqrt(), kernels::nrm2(&x)]);
    put("sum_1000", &[kernels::sum(&x)]);
    let mut z = y.clone();
    engine.axpy(a, &x, &mut z);
    put("axpy_1000", &z);
    let mut s = x.clone();
    kernels::scal(a, &mut s);
    put("scal_1000", &s);

    // gemv, both orientations, with and without accumulation.
    let mut r = Vals::new(2);
    let a_n = r.mat(70, 45);
    let a_t = r.mat(45, 70);
    let x45 = r.vec(45);
    let y0 = r.vec(70);
    let mut yv = vec![0.0; 70];
    engine.gemv(a_n.view(), &x45, &mut yv, false);
    put("gemv_n_70x45", &yv);
    let mut yv = y0.clone();
    engine.gemv(a_n.view(), &x45, &mut yv, true);
    put("gemv_n_70x45_accumulate", &yv);
    let mut yv = vec![0.0; 70];
    engine.gemv(a_t.t(), &x45, &mut yv, false);
    put("gemv_t_70x45", &yv);
    let x70 = r.vec(70);
    let mut yv = vec![0.0; 45];
    engine.gemv(a_n.t(), &x70, &mut yv, false);
    put("gemv_t_45x70_of_a_n", &yv);

    // gemm: NN across KC = 256, TN across KC = 512, NT, and accumulation.
    let mut r = Vals::new(3);
    let (a, b) = (r.mat(37, 300), r.mat(300, 29));
    let mut c = Mat::zeros(37, 29);
    engine.gemm(a.view(), b.view(), &mut c, false);
    put("gemm_nn_37x300x29", c.data());
    let (at, b) = (r.mat(530, 20), r.mat(530, 17));
    let mut c = Mat::zeros(20, 17);
    engine.gemm(at.t(), b.view(), &mut c, false);
    put("gemm_tn_20x530x17", c.data());
    let (a, bt) = (r.mat(33, 41), r.mat(45, 41));
    let mut c = Mat::zeros(33, 45);
    engine.gemm(a.view(), bt.t(), &mut c, false);
    put("gemm_nt_33x41x45", c.data());
    let (a, b) = (r.mat(19, 23), r.mat(23, 21));
    let mut c = r.mat(19, 21);
    engine.gemm(a.view(), b.view(), &mut c, true);
    put("gemm_nn_19x23x21_accumulate", c.data());

    // syrk with mixed-sign weights (n > KC) and unweighted.
    let mut r = Vals::new(4);
    let a = r.mat(600, 19);
    let w = r.vec(600);
    let mut c = Mat::zeros(19, 19);
    engine.syrk(a.view(), Some(&w), &mut c);
    put("syrk_weighted_600x19", c.data());
    let a = r.mat(300, 12);
    let mut c = Mat::zeros(12, 12);
    engine.syrk(a.view(), None, &mut c);
    put("syrk_unweighted_300x12", c.data());

    // trsm_rows with a well-conditioned lower-triangular L.
    let mut r = Vals::new(5);
    let l = Mat::from_fn(37, 37, |i, j| match i.cmp(&j) {
        std::cmp::Ordering::Less => 0.0,
        std::cmp::Ordering::Equal => 2.0 + r.next().abs(),
        std::cmp::Ordering::Greater => 0.25 * r.next(),
    });
    let mut m = r.mat(70, 37);
    engine.trsm_rows(&l, &mut m);
    put("trsm_rows_70x37", m.data());

    // Cholesky of an SPD matrix (built with the reference syrk, so the input is the same
    // for every engine), then a solve.
    let mut r = Vals::new(6);
    let g = r.mat(40, 16);
    let mut spd = Mat::zeros(16, 16);
    reference::syrk(g.view(), None, &mut spd);
    for i in 0..16 {
        spd.set(i, i, spd.get(i, i) + 16.0);
    }
    let ch = Cholesky::factor(&spd).expect("SPD by construction");
    put("chol_factor_16", ch.l().data());
    let rhs = r.vec(16);
    put("chol_solve_16", &ch.solve(&rhs));
    put("chol_log_det_16", &[ch.log_det()]);

    // Transcendentals over a fixed grid.
    let grid: Vec<f64> = (0..64).map(|i| -30.0 + 60.0 * f64::from(i) / 63.0).collect();
    put("math_exp_64", &grid.iter().map(|&t| math::exp(t)).collect::<Vec<_>>());
    let pos: Vec<f64> = (0..64).map(|i| (1.0 + f64::from(i) / 64.0) * 2f64.powi(i - 32)).collect();
    put("math_ln_64", &pos.iter().map(|&t| math::ln(t)).collect::<Vec<_>>());
    let pw: Vec<f64> =
        (0..64).map(|i| math::pow(0.15 + f64::from(i) / 7.0, -5.0 + 10.0 * f64::from((i * 37) % 64) / 63.0)).collect();
    put("math_pow_64", &pw);

    // The first 64 outputs of DetRng, one fresh stream per conversion.
    let stream = |t: u32| DetRng::stream(&SEED, tags::SYNTHETIC, 100 + t);
    let mut g = stream(0);
    put("rng_u01_64", &(0..64).map(|_| g.u01()).collect::<Vec<_>>());
    let mut g = stream(1);
    put("rng_normal_64", &(0..64).map(|_| g.normal()).collect::<Vec<_>>());
    let mut g = stream(2);
    put("rng_below_1000_64", &(0..64).map(|_| g.below(1000) as f64).collect::<Vec<_>>());
    // k = 3·2^61 rejects a quarter of the words: pins the rejection rule. The values are
    // hashed as raw 64-bit words (they are below the NaN range as f64 bit patterns).
    let mut g = stream(3);
    put("rng_below_3x2e61_64", &(0..64).map(|_| f64::from_bits(g.below(3 << 61))).collect::<Vec<_>>());
    let mut g = stream(4);
    put("rng_sign_64", &(0..64).map(|_| g.sign()).collect::<Vec<_>>());
    out
}

/// The engines to check: the reference, every hardware path, and the software FMA.
fn engines() -> Vec<Engine> {
    let mut e = vec![Engine::Reference];
    e.extend(Path::available().into_iter().map(Engine::Path));
    e.push(Engine::Path(Path::SoftFma));
    e
}

#[test]
fn golden_vectors_match_on_every_path() {
    let all: Vec<(Engine, BTreeMap<String, String>)> = engines().into_iter().map(|e| (e, vectors(e))).collect();
    let (first_engine, first) = &all[0];
    // All engines must agree with each other before anything is compared or written.
    for (e, v) in &all[1..] {
        for (name, h) in first {
            assert_eq!(v.get(name), Some(h), "{name}: path {} differs from {}", e.name(), first_engine.name());
        }
    }
    // Every engine agrees; the stored file pins the common result.
    common::vectors::check("det_kernels", first);
}
