//! Every path against [`reference`](super::reference), bit for bit.
//!
//! Inputs are seeded `u · 2^e` values (`u` uniform in `[-1, 1)`, `e` in `[-8, 8]`), mixed
//! with special values (signed zeros, subnormal-producing tiny values, `±1e300`, `±inf`).
//! NaN results only need to be NaN on both sides (payloads are not part of the contract).
//! Big sizes run only in release builds.

use super::gemm::{Blocking, GemmJob, gemm_blocked};
use super::mac::{Fused, Mac, Soft, soft_fma};
use super::*;
use crate::compute::det::{DetRng, flops, reset_flops};

/// A seeded stream for test inputs.
fn rng(t: u32) -> DetRng {
    DetRng::stream(&[0x5d; 32], crate::compute::det::rng::tags::SYNTHETIC, t)
}

/// `u · 2^e` with `u` uniform in `[-1, 1)` and `e` uniform in `[-8, 8]` (the product is
/// exact: scaling by a power of two).
fn val(r: &mut DetRng) -> f64 {
    let u = 2.0 * r.u01() - 1.0;
    let e = r.below(17) as i64 - 8;
    u * f64::from_bits(((e + 1023) as u64) << 52)
}

/// Mostly [`val`], with a fraction `p` of special values.
fn val_special(r: &mut DetRng, p: f64) -> f64 {
    const SPECIAL: [f64; 14] = [
        0.0,
        -0.0,
        1e-160,
        -1e-160,
        3e-170,
        -2.5e-155,
        5e-324,
        -2.2250738585072014e-308,
        1e300,
        -1e300,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1.0,
        -1.0,
    ];
    if r.bernoulli(p) { SPECIAL[r.below(SPECIAL.len() as u64) as usize] } else { val(r) }
}

fn rand_vec(r: &mut DetRng, n: usize, special: f64) -> Vec<f64> {
    (0..n).map(|_| val_special(r, special)).collect()
}

fn rand_mat(r: &mut DetRng, rows: usize, cols: usize, special: f64) -> Mat {
    Mat::from_vec(rows, cols, rand_vec(r, rows * cols, special)).unwrap()
}

/// Equal bits, or both NaN.
fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[track_caller]
fn assert_same(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (gb, wb) = (g.to_bits(), w.to_bits());
        assert!(same(*g, *w), "{what}: element {i}: got {g:e} ({gb:#x}), want {w:e} ({wb:#x})");
    }
}

/// The hardware paths plus the software FMA (for small problems).
fn all_paths() -> Vec<Path> {
    let mut p = Path::available();
    p.push(Path::SoftFma);
    p
}

/// A view with arbitrary strides over `data` (tests only: kernels must read through any
/// strides, not just the row-major and transposed ones `Mat` hands out).
fn strided(data: &[f64], rows: usize, cols: usize, rs: usize, cs: usize) -> MatRef<'_> {
    if rows > 0 && cols > 0 {
        assert!((rows - 1) * rs + (cols - 1) * cs < data.len());
    }
    MatRef { data, rows, cols, rs, cs }
}

#[test]
fn soft_fma_is_correctly_rounded() {
    let mut r = rng(1);
    let mut cases: Vec<(f64, f64, f64)> = Vec::new();
    let specials = [
        0.0,
        -0.0,
        5e-324,
        -5e-324,
        2.2250738585072014e-308,
        1e-300,
        1e-160,
        1.0,
        -1.0,
        1.5,
        1e300,
        -1e300,
        f64::MAX,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    for &a in &specials {
        for &b in &specials {
            for &c in &specials {
                cases.push((a, b, c));
            }
        }
    }
    for _ in 0..20000 {
        let a = val_special(&mut r, 0.1);
        let b = val_special(&mut r, 0.1);
        // Exponents spread over the whole range: overflow, underflow, subnormal results.
        let ea = r.below(2100) as i32 - 1075;
        let eb = r.below(2100) as i32 - 1075;
        let (a2, b2) = (a * libm::ldexp(1.0, ea / 2), b * libm::ldexp(1.0, eb / 2));
        let c = match r.below(6) {
            // Cancellation: c close to -a*b, exercising the sticky bit and exact zeros.
            0 => -(a2 * b2),
            1 => -(a2 * b2) * (1.0 + f64::EPSILON),
            2 => -(a * b),
            3 => val(&mut r) * libm::ldexp(1.0, r.below(2100) as i32 - 1075),
            4 => (a * b) * 1e-17,
            _ => val_special(&mut r, 0.2),
        };
        cases.push((a, b, c));
        cases.push((a2, b2, c));
        cases.push((a2, b2, -c * libm::ldexp(1.0, -60)));
    }
    for (a, b, c) in cases {
        let want = a.mul_add(b, c);
        let got = soft_fma(a, b, c);
        assert!(same(got, want), "soft_fma({a:e}, {b:e}, {c:e}) = {got:e}, want {want:e}");
        assert!(same(got, libm::fma(a, b, c)));
        assert!(same(Soft::mac(a, b, c), Fused::mac(a, b, c)));
    }
}

#[test]
fn path_detection_is_consistent() {
    let avail = Path::available();
    assert_eq!(avail[0], Path::Portable);
    assert_eq!(*avail.last().unwrap(), Path::detect());
    assert!(!avail.contains(&Path::SoftFma));
    assert!(Path::SoftFma.is_available());
    for p in [Path::Portable, Path::Avx2Fma, Path::Avx512, Path::SoftFma] {
        assert_eq!(p.is_available(), avail.contains(&p) || p == Path::SoftFma);
        if p.is_available() {
            assert_eq!(p.checked(), p);
        } else {
            assert!(std::panic::catch_unwind(|| p.checked()).is_err(), "{p} should refuse");
            let a = Mat::zeros(2, 2);
            let mut c = Mat::zeros(2, 2);
            let refused = std::panic::catch_unwind(move || gemm_with(p, a.view(), a.view(), &mut c, false));
            assert!(refused.is_err(), "gemm_with({p}) should refuse");
        }
        assert_eq!(p.to_string(), p.name());
    }
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        assert!(avail.contains(&Path::Avx2Fma));
    }
}

/// Runs gemm on `path` and on the reference, returns nothing; panics on any difference.
#[track_caller]
fn check_gemm(path: Path, a: MatRef<'_>, b: MatRef<'_>, c0: &Mat, accumulate: bool, what: &str) {
    let mut want = c0.clone();
    reference::gemm(a, b, &mut want, accumulate);
    let mut got = c0.clone();
    gemm_with(path, a, b, &mut got, accumulate);
    assert_same(got.data(), want.data(), &format!("gemm {what} on {path}"));
}

/// Shapes `(m, k, n)`: empty, single, m != k != n, edge tiles, K across KC 256 and 512.
const GEMM_SHAPES: [(usize, usize, usize); 16] = [
    (0, 0, 0),
    (0, 5, 3),
    (4, 0, 3),
    (3, 5, 0),
    (1, 1, 1),
    (1, 9, 1),
    (2, 3, 4),
    (6, 8, 8),
    (7, 13, 131),
    (13, 7, 9),
    (12, 16, 40),
    (25, 31, 17),
    (9, 257, 10),
    (5, 300, 33),
    (7, 513, 3),
    (100, 3, 97),
];

#[test]
fn gemm_matches_reference_on_random_shapes_and_views() {
    let mut r = rng(2);
    for (s, &(m, k, n)) in GEMM_SHAPES.iter().enumerate() {
        let a = rand_mat(&mut r, m, k, 0.0);
        let at = rand_mat(&mut r, k, m, 0.0);
        let b = rand_mat(&mut r, k, n, 0.0);
        let bt = rand_mat(&mut r, n, k, 0.0);
        let c0 = rand_mat(&mut r, m, n, 0.0);
        let small = m * n * k <= 20_000;
        for path in all_paths() {
            if path == Path::SoftFma && !small {
                continue;
            }
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let av = if ta { at.t() } else { a.view() };
                let bv = if tb { bt.t() } else { b.view() };
                for accumulate in [false, true] {
                    let what = format!("shape #{s} {m}x{k}x{n} ta={ta} tb={tb} acc={accumulate}");
                    check_gemm(path, av, bv, &c0, accumulate, &what);
                }
            }
        }
    }
}

#[test]
fn gemm_special_values_match_reference() {
    let mut r = rng(3);
    for &(m, k, n) in &[(5, 6, 7), (13, 21, 17), (6, 300, 9)] {
        for round in 0..3 {
            let p = [0.05, 0.2, 0.5][round];
            let a = rand_mat(&mut r, m, k, p);
            let b = rand_mat(&mut r, k, n, p);
            let c0 = rand_mat(&mut r, m, n, p);
            for path in all_paths() {
                for accumulate in [false, true] {
                    check_gemm(path, a.view(), b.view(), &c0, accumulate, &format!("specials p={p}"));
                    check_gemm(path, b.t(), a.t(), &Mat::zeros(n, m), accumulate, "specials transposed");
                }
            }
        }
    }
    // Products that underflow to subnormals and to signed zeros, sums that overflow.
    let tiny = Mat::from_fn(4, 4, |i, j| if (i + j) % 2 == 0 { 1e-160 } else { -3e-165 });
    let huge = Mat::from_fn(4, 4, |i, j| if i == j { 1e300 } else { -1e300 });
    for path in all_paths() {
        check_gemm(path, tiny.view(), tiny.t(), &Mat::zeros(4, 4), false, "subnormal products");
        check_gemm(path, huge.view(), huge.view(), &Mat::zeros(4, 4), false, "overflow");
        check_gemm(path, tiny.view(), huge.view(), &Mat::zeros(4, 4), false, "tiny*huge");
    }
}

#[test]
fn gemm_reads_through_arbitrary_strides() {
    let mut r = rng(4);
    let buf_a = rand_vec(&mut r, 4000, 0.0);
    let buf_b = rand_vec(&mut r, 4000, 0.0);
    // (m, k, n, rs_a, cs_a, rs_b, cs_b): sub-views, every other element, odd strides.
    let cases = [
        (7, 9, 11, 20, 1, 30, 1),
        (7, 9, 11, 2, 17, 3, 40),
        (13, 10, 9, 25, 2, 1, 13),
        (6, 33, 8, 1, 7, 9, 1),
        (9, 5, 14, 3, 31, 29, 2),
    ];
    for (m, k, n, rsa, csa, rsb, csb) in cases {
        let a = strided(&buf_a, m, k, rsa, csa);
        let b = strided(&buf_b, k, n, rsb, csb);
        let c0 = rand_mat(&mut r, m, n, 0.0);
        for path in all_paths() {
            for accumulate in [false, true] {
                check_gemm(path, a, b, &c0, accumulate, &format!("strides {rsa},{csa} x {rsb},{csb}"));
            }
        }
    }
}

/// Direct calls of the generic body with odd tiles and blockings.
fn blocked<const MR: usize, const NR: usize>(bl: Blocking, job: &GemmJob<'_>, ldc: usize, rows: usize) -> Vec<f64> {
    let mut c = vec![f64::NAN; rows * ldc];
    gemm_blocked::<MR, NR, Fused>(bl, job, &mut c, ldc);
    c
}

#[test]
fn blocking_and_tile_shape_never_change_bits() {
    let mut r = rng(5);
    let (m, k, n) = (13, 530, 11);
    let a = rand_mat(&mut r, m, k, 0.01);
    let b = rand_mat(&mut r, k, n, 0.01);
    let mut want = Mat::zeros(m, n);
    reference::gemm(a.view(), b.view(), &mut want, false);
    let job = GemmJob { a: a.view(), b: b.view(), b_row_scale: None, accumulate: false, upper_only: false };
    let blockings = [
        Blocking { mc: 1, kc: 1, nc: 1 },
        Blocking { mc: 2, kc: 3, nc: 5 },
        Blocking { mc: 7, kc: 64, nc: 9 },
        Blocking { mc: 96, kc: 256, nc: 1024 },
        Blocking { mc: 96, kc: 512, nc: 1024 },
        Blocking { mc: 1000, kc: 1000, nc: 1000 },
    ];
    for bl in blockings {
        let what = format!("{bl:?}");
        assert_same(&blocked::<3, 5>(bl, &job, n, m), want.data(), &format!("3x5 {what}"));
        assert_same(&blocked::<6, 8>(bl, &job, n, m), want.data(), &format!("6x8 {what}"));
        assert_same(&blocked::<8, 4>(bl, &job, n, m), want.data(), &format!("8x4 {what}"));
        assert_same(&blocked::<1, 1>(bl, &job, n, m), want.data(), &format!("1x1 {what}"));
    }
    // The AVX-512 tile shape and blocking, run here on whatever the build target has.
    let bl512 = Blocking { mc: 96, kc: 512, nc: 1024 };
    assert_same(&blocked::<6, 32>(bl512, &job, n, m), want.data(), "6x32 kc512");
    // The syrk mode (row-scaled B, upper tiles only) under odd blockings: every entry with
    // i <= j must be the contract's, whatever the tile and block edges.
    let (rows, d) = (300, 23);
    let x = rand_mat(&mut r, rows, d, 0.01);
    let w = rand_vec(&mut r, rows, 0.01);
    let mut want_s = Mat::zeros(d, d);
    reference::syrk(x.view(), Some(&w), &mut want_s);
    let job_s = GemmJob { a: x.t(), b: x.view(), b_row_scale: Some(&w), accumulate: false, upper_only: true };
    for bl in blockings {
        for (shape, got) in [
            ("3x5", blocked::<3, 5>(bl, &job_s, d, d)),
            ("6x8", blocked::<6, 8>(bl, &job_s, d, d)),
            ("8x4", blocked::<8, 4>(bl, &job_s, d, d)),
            ("6x32", blocked::<6, 32>(bl, &job_s, d, d)),
        ] {
            for i in 0..d {
                let what = format!("syrk {shape} {bl:?}");
                assert_same(&got[i * d + i..(i + 1) * d], &want_s.row(i)[i..], &what);
            }
        }
    }
    // C with a row stride larger than its width (ldc > n): the gap must stay untouched.
    let ldc = n + 3;
    let c = blocked::<6, 8>(Blocking { mc: 6, kc: 100, nc: 8 }, &job, ldc, m);
    for i in 0..m {
        assert_same(&c[i * ldc..i * ldc + n], want.row(i), "ldc > n");
        assert!(c[i * ldc + n..(i + 1) * ldc].iter().all(|v| v.is_nan()), "gap written");
    }
}

#[test]
fn gemv_matches_reference_in_both_orientations() {
    let mut r = rng(6);
    let ms = [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100];
    let ks = [0, 1, 2, 17, 300];
    for &m in &ms {
        for &k in &ks {
            let a = rand_mat(&mut r, m, k, 0.0);
            let at = rand_mat(&mut r, k, m, 0.0);
            let x = rand_vec(&mut r, k, 0.0);
            let y0 = rand_vec(&mut r, m, 0.0);
            for path in all_paths() {
                if path == Path::SoftFma && m * k > 5000 {
                    continue;
                }
                for (name, view) in [("N", a.view()), ("T", at.t())] {
                    for accumulate in [false, true] {
                        let mut want = y0.clone();
                        reference::gemv(view, &x, &mut want, accumulate);
                        let mut got = y0.clone();
                        gemv_with(path, view, &x, &mut got, accumulate);
                        let what = format!("gemv {name} {m}x{k} acc={accumulate} on {path}");
                        assert_same(&got, &want, &what);
                    }
                }
            }
        }
    }
}

#[test]
fn gemv_special_values_and_strides_match_reference() {
    let mut r = rng(7);
    let buf = rand_vec(&mut r, 6000, 0.1);
    for &(m, k) in &[(9, 13), (40, 7), (70, 33), (5, 2)] {
        let a = rand_mat(&mut r, m, k, 0.2);
        let at = rand_mat(&mut r, k, m, 0.2);
        let x = rand_vec(&mut r, k, 0.2);
        let y0 = rand_vec(&mut r, m, 0.2);
        let views = [
            ("N", a.view()),
            ("T", at.t()),
            ("sub-rows", strided(&buf, m, k, k + 5, 1)),
            ("sub-cols", strided(&buf, m, k, 1, m + 2)),
            ("both", strided(&buf, m, k, 2 * k + 1, 2)),
        ];
        for path in all_paths() {
            for (name, view) in views {
                for accumulate in [false, true] {
                    let mut want = y0.clone();
                    reference::gemv(view, &x, &mut want, accumulate);
                    let mut got = y0.clone();
                    gemv_with(path, view, &x, &mut got, accumulate);
                    assert_same(&got, &want, &format!("gemv {name} {m}x{k} on {path}"));
                }
            }
        }
    }
}

#[track_caller]
fn check_syrk(path: Path, a: MatRef<'_>, w: Option<&[f64]>, what: &str) {
    let d = a.cols();
    let mut want = Mat::zeros(d, d);
    reference::syrk(a, w, &mut want);
    // Start from garbage: syrk must overwrite every entry.
    let mut got = Mat::from_fn(d, d, |_, _| f64::NAN);
    syrk_with(path, a, w, &mut got);
    assert_same(got.data(), want.data(), &format!("syrk {what} on {path}"));
}

#[test]
fn syrk_matches_reference_with_and_without_weights() {
    let mut r = rng(8);
    for &(n, d) in &[(0, 3), (4, 0), (1, 1), (5, 2), (7, 7), (40, 13), (300, 9), (260, 33), (600, 17)] {
        let a = rand_mat(&mut r, n, d, 0.0);
        let at = rand_mat(&mut r, d, n, 0.0);
        let w_pos: Vec<f64> = (0..n).map(|_| r.u01() * 4.0).collect();
        let w_mixed = rand_vec(&mut r, n, 0.0);
        for path in all_paths() {
            if path == Path::SoftFma && n * d * d > 60_000 {
                continue;
            }
            let weights = [("none", None), ("positive", Some(&w_pos[..])), ("mixed sign", Some(&w_mixed[..]))];
            for (wn, w) in weights {
                check_syrk(path, a.view(), w, &format!("{n}x{d} w={wn}"));
                check_syrk(path, at.t(), w, &format!("{n}x{d} transposed w={wn}"));
            }
        }
    }
    // Special values in A and in the weights.
    for &(n, d) in &[(30, 5), (70, 14)] {
        let a = rand_mat(&mut r, n, d, 0.15);
        let w = rand_vec(&mut r, n, 0.15);
        for path in all_paths() {
            check_syrk(path, a.view(), Some(&w), &format!("specials {n}x{d}"));
            check_syrk(path, a.view(), None, &format!("specials {n}x{d} unweighted"));
        }
    }
}

/// A random lower-triangular `L` with diagonal entries away from zero.
fn rand_lower(r: &mut DetRng, d: usize, special: f64) -> Mat {
    Mat::from_fn(d, d, |i, j| match i.cmp(&j) {
        std::cmp::Ordering::Less => 0.0,
        std::cmp::Ordering::Equal => r.sign() * (1.0 + 4.0 * r.u01()),
        std::cmp::Ordering::Greater => 0.5 * val_special(r, special),
    })
}

#[test]
fn trsm_rows_matches_reference() {
    let mut r = rng(9);
    for &d in &[0, 1, 2, 5, 17, 40] {
        let l = rand_lower(&mut r, d, 0.0);
        for &rows in &[0, 1, 3, 4, 5, 31, 32, 33, 65, 70] {
            let m0 = rand_mat(&mut r, rows, d, 0.0);
            let mut want = m0.clone();
            reference::trsm_rows(&l, &mut want);
            for path in all_paths() {
                let mut got = m0.clone();
                trsm_rows_with(path, &l, &mut got);
                assert_same(got.data(), want.data(), &format!("trsm {rows}x{d} on {path}"));
            }
        }
    }
    // Special values in L and M, and a zero on the diagonal (division by zero).
    for &(rows, d) in &[(9, 6), (40, 11)] {
        let mut l = rand_lower(&mut r, d, 0.15);
        let m0 = rand_mat(&mut r, rows, d, 0.15);
        for zero_pivot in [false, true] {
            if zero_pivot {
                l.set(d / 2, d / 2, 0.0);
            }
            let mut want = m0.clone();
            reference::trsm_rows(&l, &mut want);
            for path in all_paths() {
                let mut got = m0.clone();
                trsm_rows_with(path, &l, &mut got);
                assert_same(got.data(), want.data(), &format!("trsm specials {rows}x{d} on {path}"));
            }
        }
    }
}

#[test]
fn dot_axpy_and_friends_match_reference() {
    let mut r = rng(10);
    for &n in &[0, 1, 2, 3, 7, 8, 9, 100, 1001] {
        for special in [0.0, 0.1] {
            let x = rand_vec(&mut r, n, special);
            let y = rand_vec(&mut r, n, special);
            let a = val_special(&mut r, special);
            for path in all_paths() {
                let got = dot_with(path, &x, &y);
                let want = reference::dot(&x, &y);
                assert!(same(got, want), "dot n={n} on {path}: {got:e} vs {want:e}");
                let mut got = y.clone();
                axpy_with(path, a, &x, &mut got);
                let mut want = y.clone();
                reference::axpy(a, &x, &mut want);
                assert_same(&got, &want, &format!("axpy n={n} on {path}"));
            }
            assert!(same(dot(&x, &y), reference::dot(&x, &y)));
            assert!(same(nrm2(&x), reference::nrm2(&x)));
            assert!(same(sum(&x), reference::sum(&x)));
            let (mut got, mut want) = (x.clone(), x.clone());
            scal(a, &mut got);
            reference::scal(a, &mut want);
            assert_same(&got, &want, "scal");
        }
    }
}

#[test]
fn dispatching_entry_points_match_reference() {
    let mut r = rng(11);
    let a = rand_mat(&mut r, 19, 23, 0.0);
    let b = rand_mat(&mut r, 23, 21, 0.0);
    let (mut got, mut want) = (Mat::zeros(19, 21), Mat::zeros(19, 21));
    gemm(a.view(), b.view(), &mut got, false);
    reference::gemm(a.view(), b.view(), &mut want, false);
    assert_same(got.data(), want.data(), "gemm");
    let x = rand_vec(&mut r, 23, 0.0);
    let (mut gy, mut wy) = (vec![0.0; 19], vec![0.0; 19]);
    gemv(a.view(), &x, &mut gy, false);
    reference::gemv(a.view(), &x, &mut wy, false);
    assert_same(&gy, &wy, "gemv");
    let (mut gs, mut ws) = (Mat::zeros(23, 23), Mat::zeros(23, 23));
    syrk(a.view(), Some(&x[..19]), &mut gs);
    reference::syrk(a.view(), Some(&x[..19]), &mut ws);
    assert_same(gs.data(), ws.data(), "syrk");
    let l = rand_lower(&mut r, 23, 0.0);
    let (mut gm, mut wm) = (a.clone(), a.clone());
    trsm_rows(&l, &mut gm);
    reference::trsm_rows(&l, &mut wm);
    assert_same(gm.data(), wm.data(), "trsm_rows");
    let mut gy = x.clone();
    let mut wy = x.clone();
    axpy(0.75, &b.data()[..23], &mut gy);
    reference::axpy(0.75, &b.data()[..23], &mut wy);
    assert_same(&gy, &wy, "axpy");
}

/// Discards a kernel's result (only its flop count matters here).
fn drop_f64(v: f64) {
    std::hint::black_box(v);
}

/// Flops counted by `f`.
fn counted(f: impl FnOnce()) -> u64 {
    reset_flops();
    f();
    flops()
}

#[test]
fn flop_counts_equal_the_reference() {
    let mut r = rng(12);
    let a = rand_mat(&mut r, 11, 7, 0.0);
    let b = rand_mat(&mut r, 7, 5, 0.0);
    let x7 = rand_vec(&mut r, 7, 0.0);
    let w = rand_vec(&mut r, 11, 0.0);
    let l = rand_lower(&mut r, 7, 0.0);
    for path in all_paths() {
        let mut c = Mat::zeros(11, 5);
        assert_eq!(
            counted(|| gemm_with(path, a.view(), b.view(), &mut c, true)),
            counted(|| reference::gemm(a.view(), b.view(), &mut c, true))
        );
        let mut y = vec![0.0; 11];
        assert_eq!(
            counted(|| gemv_with(path, a.view(), &x7, &mut y, false)),
            counted(|| reference::gemv(a.view(), &x7, &mut y, false))
        );
        let mut s = Mat::zeros(7, 7);
        assert_eq!(
            counted(|| syrk_with(path, a.view(), Some(&w), &mut s)),
            counted(|| reference::syrk(a.view(), Some(&w), &mut s))
        );
        let mut m = a.clone();
        assert_eq!(counted(|| trsm_rows_with(path, &l, &mut m)), counted(|| reference::trsm_rows(&l, &mut m)));
        assert_eq!(counted(|| drop_f64(dot_with(path, &x7, &x7))), counted(|| drop_f64(reference::dot(&x7, &x7))));
        let mut y7 = x7.clone();
        assert_eq!(counted(|| axpy_with(path, 2.0, &x7, &mut y7)), counted(|| reference::axpy(2.0, &x7, &mut y7)));
    }
    assert_eq!(counted(|| drop_f64(nrm2(&x7))), counted(|| drop_f64(reference::nrm2(&x7))));
    assert_eq!(counted(|| drop_f64(sum(&x7))), counted(|| drop_f64(reference::sum(&x7))));
    let mut v = x7.clone();
    assert_eq!(counted(|| scal(3.0, &mut v)), counted(|| reference::scal(3.0, &mut v)));
    let mut c = Mat::zeros(11, 5);
    assert_eq!(counted(|| gemm(a.view(), b.view(), &mut c, false)), 2 * 11 * 7 * 5);
}

/// Release only: full-size problems (the reference alone takes seconds in a debug build).
#[cfg(not(debug_assertions))]
#[test]
fn large_problems_match_reference() {
    let mut r = rng(13);
    for &(m, k, n) in &[(512, 512, 512), (131, 1030, 67)] {
        let a = rand_mat(&mut r, m, k, 0.0);
        let b = rand_mat(&mut r, k, n, 0.0);
        let mut want = Mat::zeros(m, n);
        reference::gemm(a.view(), b.view(), &mut want, false);
        for path in Path::available() {
            let mut got = Mat::zeros(m, n);
            gemm_with(path, a.view(), b.view(), &mut got, false);
            assert_same(got.data(), want.data(), &format!("gemm {m}x{k}x{n} on {path}"));
        }
    }
    let (n, d) = (4000, 96);
    let a = rand_mat(&mut r, n, d, 0.0);
    let w = rand_vec(&mut r, n, 0.0);
    let mut want = Mat::zeros(d, d);
    reference::syrk(a.view(), Some(&w), &mut want);
    let x = rand_vec(&mut r, n, 0.0);
    let mut want_t = vec![0.0; d];
    reference::gemv(a.t(), &x, &mut want_t, false);
    let l = rand_lower(&mut r, d, 0.0);
    let mut want_m = a.clone();
    reference::trsm_rows(&l, &mut want_m);
    for path in Path::available() {
        let mut got = Mat::zeros(d, d);
        syrk_with(path, a.view(), Some(&w), &mut got);
        assert_same(got.data(), want.data(), &format!("syrk {n}x{d} on {path}"));
        let mut got_t = vec![0.0; d];
        gemv_with(path, a.t(), &x, &mut got_t, false);
        assert_same(&got_t, &want_t, &format!("gemv T {n}x{d} on {path}"));
        let mut got_m = a.clone();
        trsm_rows_with(path, &l, &mut got_m);
        assert_same(got_m.data(), want_m.data(), &format!("trsm {n}x{d} on {path}"));
    }
}

/// `GᵀG` for a random `(n + 2) x n` matrix `G`: positive definite.
fn rand_spd(r: &mut DetRng, n: usize) -> Mat {
    let g = rand_mat(r, n + 2, n, 0.0);
    let mut a = Mat::zeros(n, n);
    reference::gemm(g.t(), g.view(), &mut a, false);
    a
}

#[test]
fn cholesky_matches_reference_on_definite_indefinite_and_special_matrices() {
    let mut r = rng(11);
    // Orders around the 4-column unroll and the SIMD widths.
    for &n in &[0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33, 70] {
        let spd = rand_spd(&mut r, n);
        let indefinite = rand_mat(&mut r, n, n, 0.0);
        let special = rand_mat(&mut r, n, n, 0.15);
        for (what, a, shift) in [
            ("spd", &spd, 0.0),
            ("spd shifted", &spd, 0.75),
            ("indefinite", &indefinite, 0.0),
            ("special", &special, 1.0),
        ] {
            let (want, want_failed) = reference::cholesky(a, shift);
            for path in all_paths() {
                let (got, got_failed) = cholesky_with(path, a, shift);
                let what = format!("cholesky {what} n={n} on {path}");
                assert_same(got.data(), want.data(), &what);
                match (got_failed, want_failed) {
                    (None, None) => {}
                    (Some((gp, gv)), Some((wp, wv))) => assert!(gp == wp && same(gv, wv), "{what}: failed pivot"),
                    other => panic!("{what}: failed pivots differ: {other:?}"),
                }
            }
            if what == "spd" && n > 0 {
                assert!(want_failed.is_none(), "a Gram matrix of full rank factors");
            }
            if what == "indefinite" && n > 8 {
                assert!(want_failed.is_some(), "a random matrix of order {n} is not definite");
            }
        }
    }
}
