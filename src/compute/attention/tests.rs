use super::objective::ROW_BLOCK;
use super::*;
use crate::compute::det::{self, Mat};
use crate::compute::problem::{Params, Problem, ProblemError, SolveOpts};

fn m(rows: usize, cols: usize, v: &[f64]) -> Mat {
    Mat::from_vec(rows, cols, v.to_vec()).unwrap()
}

/// SOLVERS.md §5.8's reference instance.
fn reference(kernel: Kernel) -> (AttentionProblem, Vec<f64>) {
    let a1 = m(3, 2, &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    let a2 = m(3, 2, &[1.0, 1.0, 0.0, 1.0, 1.0, 0.0]);
    let a3 = m(3, 2, &[1.0, 0.0, 0.0, 1.0, 0.5, 0.5]);
    let b = m(3, 2, &[0.5; 6]);
    let x = vec![0.1, 0.2, -0.3, 0.4, 0.1, 0.2, 0.3, 0.4];
    (AttentionProblem::new(kernel, a1, a2, a3, b, 0.0).unwrap(), x)
}

fn planted(kernel: Kernel, n: usize, d: usize, seed: u64) -> (AttentionProblem, Vec<f64>) {
    AttentionSynthetic { n, d, seed, scale: 1.0 }.problem(kernel, 0.0).unwrap()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-300)
}

/// The explicit `n x n` attention matrix (tests only).
fn explicit_s(p: &AttentionProblem, x: &[f64], a1: &Mat, a2: &Mat) -> Mat {
    let d = p.d();
    let (xm, _) = split(x, d);
    let n = a1.rows();
    let mut s = Mat::zeros(n, a2.rows());
    for j in 0..n {
        let q: Vec<f64> = (0..d).map(|l| (0..d).map(|k| a1.get(j, k) * xm.get(k, l)).sum()).collect();
        let w: Vec<f64> = (0..a2.rows())
            .map(|i| match p.kernel() {
                Kernel::Softmax => (0..d).map(|l| q[l] * a2.get(i, l)).sum::<f64>(),
                Kernel::Linear => (0..d).map(|l| objective::psi(q[l]).0 * objective::psi(a2.get(i, l)).0).sum::<f64>(),
            })
            .collect();
        let row: Vec<f64> = match p.kernel() {
            Kernel::Softmax => {
                let mx = w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = w.iter().map(|v| det::math::exp(v - mx)).collect();
                let t: f64 = e.iter().sum();
                e.iter().map(|v| v / t).collect()
            }
            Kernel::Linear => {
                let t: f64 = w.iter().sum();
                w.iter().map(|v| v / t).collect()
            }
        };
        s.row_mut(j).copy_from_slice(&row);
    }
    s
}

#[test]
fn reference_values_of_solvers_5_8_hold_to_1e_10() {
    let (p, x) = reference(Kernel::Softmax);
    let s = explicit_s(&p, &x, &p.a1, &p.a2);
    let want_s = [
        0.367165401111,
        0.332224993533,
        0.300609605356,
        0.331106218694,
        0.446946645548,
        0.221947135758,
        0.360982890737,
        0.440905498395,
        0.198111610867,
    ];
    for (got, want) in s.data().iter().zip(want_s) {
        assert!((got - want).abs() < 1e-11, "S {got} vs {want}");
    }
    let ev = p.eval(&x, Level::Gradient).unwrap();
    assert!(close(ev.value, 0.374338286502432, 1e-12), "L = {}", ev.value);
    let g = ev.grad.unwrap();
    let want_g = [
        0.074133692691,
        -0.000467719194,
        0.076955978053,
        -0.003984653872,
        -0.837773695206,
        -0.553855957899,
        -0.930061779408,
        -0.613979516714,
    ];
    for (got, want) in g.iter().zip(want_g) {
        // The reference is printed to 12 decimals.
        assert!((got - want).abs() < 1e-11 && close(*got, want, 1e-8), "grad {got} vs {want}");
    }
}

#[test]
fn kronecker_identity_and_matrix_form_equal_the_literal_double_sum() {
    let (p, x) = reference(Kernel::Softmax);
    let (n, d) = (3, 2);
    let (xm, ym) = split(&x, d);
    // (A1 ⊗ A2)[j0·n + i, k·d + l] = A1[j0,k]·A2[i,l]; its row block j0 times vec_r(X) is
    // row j0 of A1 X A2ᵀ.
    for j0 in 0..n {
        for i in 0..n {
            let kron: f64 = (0..d * d).map(|c| p.a1.get(j0, c / d) * p.a2.get(i, c % d) * x[c]).sum();
            let direct: f64 =
                (0..d).map(|k| (0..d).map(|l| p.a1.get(j0, k) * xm.get(k, l) * p.a2.get(i, l)).sum::<f64>()).sum();
            assert!((kron - direct).abs() <= 1e-15, "{kron} vs {direct}");
        }
    }
    // L = Σ_j0 Σ_i0 (<softmax(𝖠_j0 x), A3 Y[:, i0]> − B[j0, i0])².
    let mut literal = 0.0;
    for j0 in 0..n {
        let z: Vec<f64> =
            (0..n).map(|i| (0..d * d).map(|c| p.a1.get(j0, c / d) * p.a2.get(i, c % d) * x[c]).sum()).collect();
        let e: Vec<f64> = z.iter().map(|v| det::math::exp(*v)).collect();
        let t: f64 = e.iter().sum();
        for i0 in 0..d {
            let col: Vec<f64> = (0..n).map(|i| (0..d).map(|k| p.a3.get(i, k) * ym.get(k, i0)).sum()).collect();
            let inner: f64 = (0..n).map(|i| e[i] / t * col[i]).sum();
            let r = inner - p.b.get(j0, i0);
            literal += r * r;
        }
    }
    let ev = p.eval(&x, Level::Value).unwrap();
    assert!(close(ev.value, literal, 1e-14), "{} vs {literal}", ev.value);
}

/// Central differences of `f` along `dir`.
fn fd(f: &dyn Fn(&[f64]) -> f64, x: &[f64], dir: &[f64], h: f64) -> f64 {
    let at = |t: f64| f(&x.iter().zip(dir).map(|(a, b)| a + t * b).collect::<Vec<_>>());
    (at(h) - at(-h)) / (2.0 * h)
}

fn direction(len: usize, salt: u64) -> Vec<f64> {
    (0..len).map(|i| (((i as u64 * 7919 + salt * 104729) % 1000) as f64 / 500.0) - 1.0).collect()
}

#[test]
fn gradients_and_hessian_vector_products_match_finite_differences() {
    for kernel in [Kernel::Softmax, Kernel::Linear] {
        let (mut p, xs) = planted(kernel, 24, 3, 5);
        p.rho = 1e-3;
        // Away from the optimum, so second-order terms matter.
        let x: Vec<f64> = xs.iter().zip(direction(xs.len(), 1)).map(|(a, b)| a + 0.3 * b).collect();
        let g = p.eval(&x, Level::Gradient).unwrap().grad.unwrap();
        let f = |y: &[f64]| p.eval(y, Level::Value).unwrap().value;
        for salt in 0..4 {
            let v = direction(x.len(), salt + 10);
            let want = fd(&f, &x, &v, 1e-5);
            let got = det::dot(&g, &v);
            assert!((got - want).abs() <= 1e-8 * want.abs().max(1.0), "{kernel:?} grad: {got} vs {want}");
            // HVP against differences of the gradient.
            let hv = p.hvp(&x, &v).unwrap();
            let gf = |y: &[f64]| det::dot(&p.eval(y, Level::Gradient).unwrap().grad.unwrap(), &direction(x.len(), 99));
            let want_h = fd(&gf, &x, &v, 1e-5);
            let got_h = det::dot(&hv, &direction(x.len(), 99));
            assert!((got_h - want_h).abs() <= 1e-7 * want_h.abs().max(1.0), "{kernel:?} hvp: {got_h} vs {want_h}");
        }
    }
}

#[test]
fn jacobian_products_match_differences_and_are_adjoint() {
    for kernel in [Kernel::Softmax, Kernel::Linear] {
        let (p, xs) = planted(kernel, 20, 3, 6);
        let x: Vec<f64> = xs.iter().zip(direction(xs.len(), 2)).map(|(a, b)| a + 0.2 * b).collect();
        let ev = p.eval(&x, Level::GaussNewton).unwrap();
        let v = direction(x.len(), 3);
        let jv = p.jvp(&ev, &v);
        // J v against differences of the output O.
        let xi = Mat::from_vec(20, 3, direction(60, 4)).unwrap();
        let of = |y: &[f64]| det::dot(p.eval(y, Level::Value).unwrap().o.data(), xi.data());
        let want = fd(&of, &x, &v, 1e-6);
        let got = det::dot(jv.data(), xi.data());
        assert!((got - want).abs() <= 1e-8 * want.abs().max(1.0), "{kernel:?} jvp: {got} vs {want}");
        // <J v, Ξ> = <v, Jᵀ Ξ>.
        let jt = p.vjp(&ev, &xi);
        let rhs = det::dot(&v, &jt);
        assert!((got - rhs).abs() <= 1e-12 * got.abs().max(1.0), "{kernel:?} adjoint: {got} vs {rhs}");
        // ∇L = 2 Jᵀ R (ρ = 0).
        let g = ev.grad.as_ref().unwrap();
        let jtr = p.vjp(&ev, &ev.r);
        for (a, b) in g.iter().zip(&jtr) {
            assert!((a - 2.0 * b).abs() <= 1e-12 * a.abs().max(1e-6), "{kernel:?} 2JᵀR: {a} vs {}", 2.0 * b);
        }
    }
}

#[test]
fn normal_matrix_equals_the_gram_of_the_explicit_jacobian() {
    for kernel in [Kernel::Softmax, Kernel::Linear] {
        let (p, xs) = planted(kernel, 16, 3, 7);
        let x: Vec<f64> = xs.iter().zip(direction(xs.len(), 5)).map(|(a, b)| a + 0.1 * b).collect();
        let ev = p.eval(&x, Level::GaussNewton).unwrap();
        let dim = x.len();
        let cols: Vec<Vec<f64>> = (0..dim)
            .map(|c| {
                let mut e = vec![0.0; dim];
                e[c] = 1.0;
                p.jvp(&ev, &e).into_vec()
            })
            .collect();
        let nm = p.normal_matrix(&ev);
        for a in 0..dim {
            for b in 0..dim {
                let want: f64 = cols[a].iter().zip(&cols[b]).map(|(u, v)| u * v).sum();
                let got = nm.get(a, b);
                assert!((got - want).abs() <= 1e-12 * want.abs().max(1e-3), "{kernel:?} N[{a},{b}] {got} vs {want}");
            }
        }
    }
}

#[test]
fn kronecker_x_hessian_equals_hessian_vector_products() {
    let (mut p, xs) = planted(Kernel::Softmax, 30, 3, 8);
    p.rho = 1e-2;
    let x: Vec<f64> = xs.iter().zip(direction(xs.len(), 6)).map(|(a, b)| a + 0.4 * b).collect();
    let h = p.hessian_xx(&x).unwrap();
    let dd = 9;
    for c in 0..dd {
        let mut e = vec![0.0; 2 * dd];
        e[c] = 1.0;
        let col = p.hvp(&x, &e).unwrap();
        for r in 0..dd {
            let (got, want) = (h.get(r, c), col[r]);
            assert!((got - want).abs() <= 1e-11 * want.abs().max(1e-2), "H[{r},{c}] {got} vs {want}");
        }
    }
}

#[test]
fn planted_model_has_zero_loss_and_the_y_step_recovers_y_star() {
    for kernel in [Kernel::Softmax, Kernel::Linear] {
        let (p, xs) = planted(kernel, 40, 4, 9);
        let ev = p.eval(&xs, Level::Gradient).unwrap();
        let b2 = det::dot(p.b().data(), p.b().data());
        assert!(ev.value <= 1e-28 * b2, "{kernel:?} L(x*) = {}", ev.value);
        assert!(det::nrm2(ev.grad.as_ref().unwrap()) <= 1e-13, "{kernel:?}");
        let mut from_x: Vec<f64> = xs[..16].to_vec();
        from_x.extend(vec![0.0; 16]);
        let y = p.y_step(&from_x).unwrap();
        for (a, b) in y[16..].iter().zip(&xs[16..]) {
            assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{kernel:?} Y {a} vs {b}");
        }
        assert!(p.check_iterate(&Params(xs.clone())).is_ok(), "{kernel:?}: planted model outside the ball");
    }
}

#[test]
fn linear_attention_equals_its_explicit_n_by_n_form_and_rows_are_stochastic() {
    let (p, xs) = planted(Kernel::Linear, 30, 4, 10);
    let s = explicit_s(&p, &xs, &p.a1, &p.a2);
    let (_, ym) = split(&xs, 4);
    let mut w = Mat::zeros(30, 4);
    det::gemm(p.a3.view(), ym.view(), &mut w, false);
    let ev = p.eval(&xs, Level::Value).unwrap();
    for j in 0..30 {
        let row_sum: f64 = s.row(j).iter().sum();
        assert!((row_sum - 1.0).abs() < 1e-14 && s.row(j).iter().all(|v| *v >= 0.0));
        for i0 in 0..4 {
            let want: f64 = (0..30).map(|i| s.get(j, i) * w.get(i, i0)).sum();
            let got = ev.o.get(j, i0);
            assert!((got - want).abs() <= 1e-12 * want.abs().max(1e-3), "{got} vs {want}");
        }
    }
}

#[test]
fn softmax_attention_is_shift_invariant_and_linear_is_not() {
    // Adding c·1ᵀ to the scores of every row: with A2 having a constant column, X's
    // entries in that column shift every score of a row by the same amount.
    for kernel in [Kernel::Softmax, Kernel::Linear] {
        let a1 = m(3, 2, &[0.3, 1.0, -0.7, 1.0, 0.5, 1.0]);
        let a2 = m(3, 2, &[0.2, 1.0, -0.4, 1.0, 0.9, 1.0]);
        let a3 = m(3, 2, &[1.0, 0.1, 0.2, 1.0, 0.5, 0.4]);
        let p = AttentionProblem::new(kernel, a1, a2, a3, m(3, 2, &[0.1; 6]), 0.0).unwrap();
        let x = vec![0.3, 0.1, -0.2, 0.4, 1.0, 0.0, 0.0, 1.0];
        let mut shifted = x.clone();
        shifted[3] += 0.5; // X[1,1]: adds 0.5·A1[j,1]·A2[i,1] = 0.5 to every score.
        let o1 = p.eval(&x, Level::Value).unwrap().o;
        let o2 = p.eval(&shifted, Level::Value).unwrap().o;
        let diff: f64 = o1.data().iter().zip(o2.data()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        match kernel {
            Kernel::Softmax => assert!(diff < 1e-15, "softmax changed by {diff}"),
            Kernel::Linear => assert!(diff > 1e-3, "linear attention did not change ({diff})"),
        }
    }
}

#[test]
fn uniform_attention_at_x_zero_for_both_kernels() {
    for kernel in [Kernel::Softmax, Kernel::Linear] {
        let (p, _) = planted(kernel, 12, 3, 11);
        let s = explicit_s(&p, &[0.0; 18], &p.a1, &p.a2);
        if kernel == Kernel::Softmax {
            assert!(s.data().iter().all(|v| (v - 1.0 / 12.0).abs() < 1e-15));
        }
        // Linear at X = 0: ψ(0) = 1, so every query weighs key i by Σ_l ψ(A2[i,l]).
        let row0 = s.row(0).to_vec();
        for j in 1..12 {
            assert_eq!(s.row(j), &row0[..]);
        }
    }
}

#[test]
fn streamed_rows_give_the_same_bits_for_any_block() {
    assert!(ROW_BLOCK < 150);
    let (p, xs) = planted(Kernel::Softmax, 150, 3, 12);
    let x: Vec<f64> = xs.iter().zip(direction(xs.len(), 7)).map(|(a, b)| a + 0.1 * b).collect();
    let full = p.eval(&x, Level::GaussNewton).unwrap();
    // Row j's outputs do not depend on the other rows: evaluating a task made of the
    // first 10 query rows (same keys) gives the same bits for those rows.
    let few = AttentionProblem {
        a1: p.a1.select_rows(&(0..10).collect::<Vec<_>>()),
        b: p.b.select_rows(&(0..10).collect::<Vec<_>>()),
        ..p.clone()
    };
    let part = few.eval(&x, Level::GaussNewton).unwrap();
    assert_eq!(&full.o.data()[..30], part.o.data());
    assert_eq!(&full.qb.as_ref().unwrap().data()[..90], part.qb.as_ref().unwrap().data());
    assert_eq!(&full.m.data()[..30], part.m.data());
}

#[test]
fn steps_are_deterministic_seeded_and_lower_the_loss() {
    for kernel in [Kernel::Softmax, Kernel::Linear] {
        let (p, _) = planted(kernel, 48, 4, 13);
        let x = p.init();
        let a = p.step(&x, &[1u8; 32]).unwrap();
        assert_eq!(a, p.step(&x, &[1u8; 32]).unwrap());
        let b = p.step(&x, &[2u8; 32]).unwrap();
        assert_ne!(a.params, b.params, "{kernel:?}: seeds gave the same output from init");
        assert_ne!(a.output_hash(), b.output_hash());
        let before = p.certify(&x).unwrap().score;
        assert!(a.objective < before, "{kernel:?}: {} vs {before}", a.objective);
        assert_eq!(a.objective, p.certify(&a.params).unwrap().score);
        p.check_iterate(&a.params).unwrap();
    }
}

#[test]
fn chained_steps_train_a_planted_task_to_a_small_loss() {
    for (kernel, seed) in [(Kernel::Softmax, 5), (Kernel::Linear, 1)] {
        let (p, _) = planted(kernel, 128, 6, seed);
        let start = p.certify(&p.init()).unwrap().score;
        let mut x = p.init();
        let mut best = start;
        for s in 0..40u8 {
            let out = p.step(&x, &[s; 32]).unwrap();
            if out.objective < best {
                best = out.objective;
                x = out.params;
            }
        }
        assert!(best < 1e-12 * start, "{kernel:?}: {start:e} -> {best:e}");
    }
}

fn counted<T>(f: impl FnOnce() -> T) -> (T, u64) {
    det::reset_flops();
    let out = f();
    (out, det::flops())
}

#[test]
fn step_work_does_not_depend_on_the_iterate_and_matches_the_formula() {
    for (kernel, n, d) in
        [(Kernel::Softmax, 64, 4), (Kernel::Softmax, 200, 8), (Kernel::Linear, 300, 8), (Kernel::Linear, 64, 2)]
    {
        let (p, xs) = planted(kernel, n, d, 15);
        let (_, w0) = counted(|| p.step(&p.init(), &[3u8; 32]).unwrap());
        let (_, w1) = counted(|| p.step(&Params(xs.clone()), &[9u8; 32]).unwrap());
        assert_eq!(w0, w1, "{kernel:?} {n}x{d}");
        let formula = p.step_flops();
        let ratio = formula as f64 / w0 as f64;
        assert!((0.9..=1.1).contains(&ratio), "{kernel:?} {n}x{d}: formula {formula} vs counted {w0}");
        assert_eq!(p.cost(), attention_step_cost_mwu(&p.shape()));
    }
}

#[test]
fn an_iterate_outside_the_ball_is_refused_by_step_and_certify_is_finite() {
    let (p, _) = planted(Kernel::Softmax, 40, 3, 16);
    let (rx, _) = p.bounds();
    let mut x = vec![0.0; 18];
    x[0] = rx * 1.01;
    assert!(matches!(p.step(&Params(x.clone()), &[1u8; 32]), Err(ProblemError::OutsideBall { what: "X", .. })));
    x[0] = rx * 0.999;
    let out = p.step(&Params(x), &[1u8; 32]).unwrap();
    p.check_iterate(&out.params).unwrap();
    assert!(matches!(p.certify(&Params(vec![f64::NAN; 18])), Err(ProblemError::NonFinite { .. })));
}

#[test]
fn bad_data_gives_typed_errors() {
    let ok = m(3, 2, &[1.0; 6]);
    let bad_shape = AttentionProblem::new(Kernel::Softmax, ok.clone(), m(2, 2, &[1.0; 4]), ok.clone(), ok.clone(), 0.0);
    assert!(matches!(bad_shape, Err(ProblemError::InvalidSpec { what: "data A2", .. })));
    let nan = AttentionProblem::new(Kernel::Softmax, ok.clone(), ok.clone(), m(3, 2, &[f64::NAN; 6]), ok.clone(), 0.0);
    assert!(matches!(nan, Err(ProblemError::NonFinite { what: "data A3", index: 0 })));
    let zero_rows = AttentionProblem::new(Kernel::Softmax, Mat::zeros(3, 2), ok.clone(), ok.clone(), ok.clone(), 0.0);
    assert!(matches!(zero_rows, Err(ProblemError::InvalidSpec { what: "data", .. })));
    let neg_rho = AttentionProblem::new(Kernel::Linear, ok.clone(), ok.clone(), ok.clone(), ok, -1.0);
    assert!(matches!(neg_rho, Err(ProblemError::InvalidSpec { what: "ridge rho", .. })));
}

#[test]
fn predict_of_the_task_rows_is_the_model_output() {
    for kernel in [Kernel::Softmax, Kernel::Linear] {
        let (p, xs) = planted(kernel, 30, 3, 17);
        let out = p.predict(&Params(xs.clone()), &p.a1).unwrap();
        for (a, b) in out.iter().zip(p.b().data()) {
            assert!((a - b).abs() < 1e-12, "{kernel:?}");
        }
        let one = p.predict(&Params(xs.clone()), &p.a1.select_rows(&[4])).unwrap();
        assert_eq!(&one[..], &out[12..15]);
        assert!(p.predict(&Params(xs.clone()), &Mat::zeros(2, 4)).is_err());
    }
}

#[test]
fn joint_lm_reaches_rounding_level_from_both_initialisation_noises() {
    // SOLVERS.md §5.4: n = 300, d = 6; joint LM from X* + noise.
    for noise in [0.1, 1.0] {
        let (p, xs) = planted(Kernel::Softmax, 300, 6, 18);
        let x0: Vec<f64> = xs.iter().zip(direction(xs.len(), 8)).map(|(a, b)| a + noise * b).collect();
        let opts = SolveOpts { max_iter: 60, tol_grad: 1e-10, x0: Some(Params(x0)) };
        let (x, info) = p.solve(&opts, &mut |_| {}).unwrap();
        let loss = p.certify(&x).unwrap().loss;
        let b2 = det::dot(p.b().data(), p.b().data());
        assert!(info.converged, "noise {noise}: {info:?}");
        assert!(loss <= 1e-20 * b2, "noise {noise}: loss {loss:e} after {} iterations", info.iterations);
    }
}

#[test]
fn cg_and_explicit_lm_directions_agree() {
    let (p, xs) = planted(Kernel::Softmax, 60, 4, 19);
    let x: Vec<f64> = xs.iter().zip(direction(xs.len(), 9)).map(|(a, b)| a + 0.3 * b).collect();
    let ev = p.eval(&x, Level::GaussNewton).unwrap();
    let s = 1e-3;
    let explicit = {
        let nm = super::objective::shift(&p.normal_matrix(&ev), s);
        det::Cholesky::factor(&nm)
            .unwrap()
            .solve(&ev.grad.as_ref().unwrap().iter().map(|v| 0.5 * v).collect::<Vec<_>>())
    };
    let cg = p.lm_direction_cg(&ev, s);
    for (a, b) in explicit.iter().zip(&cg) {
        assert!((a - b).abs() <= 1e-7 * a.abs().max(1e-3), "{a} vs {b}");
    }
}

#[test]
fn alternating_solver_lowers_the_loss_from_a_near_start() {
    let (p, xs) = planted(Kernel::Softmax, 120, 4, 20);
    let x0: Vec<f64> = xs.iter().zip(direction(xs.len(), 10)).map(|(a, b)| a + 0.1 * b).collect();
    let start = p.certify(&Params(x0.clone())).unwrap().loss;
    let opts = SolveOpts { max_iter: 40, tol_grad: 1e-10, x0: Some(Params(x0)) };
    let (x, info) = p.solve_with(AttentionSolver::Alternating, &opts, &mut |_| {}).unwrap();
    let end = p.certify(&x).unwrap().loss;
    assert!(end < 1e-3 * start, "{start:e} -> {end:e} in {} iterations", info.iterations);
}

#[test]
fn residual_ridge_scale_follows_the_relative_residual_within_its_clamp() {
    use super::step::{RESIDUAL_RIDGE_FLOOR_LOG2, residual_ridge_scale};
    // L = ½‖R‖², so L = 0.125·‖B‖² is a relative residual of 0.5.
    assert_eq!(residual_ridge_scale(0.125 * 8.0, 8.0), 0.5);
    // A fit worse than B = 0 (L > ½‖B‖²) keeps the full ridge.
    assert_eq!(residual_ridge_scale(10.0, 8.0), 1.0);
    // An exact fit stops at the floor, so the shift never vanishes.
    let floor = 1.0 / (1u64 << RESIDUAL_RIDGE_FLOOR_LOG2) as f64;
    assert_eq!(residual_ridge_scale(0.0, 8.0), floor);
    assert_eq!(residual_ridge_scale(1e-40, 8.0), floor);
    // B = 0: no scale to measure against.
    assert_eq!(residual_ridge_scale(0.0, 0.0), 1.0);
}
