use super::*;
use crate::compute::det::{self, math};
use crate::compute::problem::{ProblemError, SolveOpts};

fn paper(seed: u64, flip: f64) -> (RiclProblem, RiclData) {
    RiclSynthetic { flip, ..RiclSynthetic::paper(seed) }.problem(1e-4).unwrap()
}

fn theta_random(m: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut rng = det::DetRng::stream(&[seed as u8; 32], 99, 0);
    (0..m).map(|_| scale * rng.normal()).collect()
}

fn counted<T>(f: impl FnOnce() -> T) -> (T, u64) {
    det::reset_flops();
    let out = f();
    (out, det::flops())
}

#[test]
fn uniform_weights_reproduce_plain_attention_icl_and_weights_sum_to_one() {
    let (p, data) = paper(1, 0.9);
    let ev = p.eval(&vec![0.0; p.m()], Level::Value).unwrap();
    for k in 0..p.v() {
        let s: f64 = ev.pi.row(k).iter().sum();
        assert!((s - 1.0).abs() <= 1e-14, "row {k} sums to {s}");
    }
    // Plain ICL written out: ŷ(q) = Σ e^{x_iᵀq} y_i / Σ e^{x_iᵀq} (W = I).
    let yhat = p.predict(&p.init(), &data.xt).unwrap();
    for t in 0..50 {
        let q = data.xt.row(t);
        let s: Vec<f64> = (0..p.m()).map(|i| data.xp.row(i).iter().zip(q).map(|(a, b)| a * b).sum()).collect();
        let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = s.iter().map(|v| math::exp(v - mx)).collect();
        let want = e.iter().zip(&data.yp).map(|(a, b)| a * b).sum::<f64>() / e.iter().sum::<f64>();
        assert!((yhat[t] - want).abs() <= 1e-13, "query {t}: {} vs {want}", yhat[t]);
    }
}

#[test]
fn gradient_and_jacobian_agree_with_central_finite_differences() {
    let (p, _) = paper(2, 0.9);
    let theta = theta_random(p.m(), 2, 0.5);
    let ev = p.eval(&theta, Level::Gradient).unwrap();
    let (g, jac) = (ev.grad.as_ref().unwrap(), ev.jac.as_ref().unwrap());
    let h = 1e-5;
    let mut worst = 0.0f64;
    for i in (0..p.m()).step_by(7) {
        let mut tp = theta.clone();
        let mut tm = theta.clone();
        tp[i] += h;
        tm[i] -= h;
        let (ep, em) = (p.eval(&tp, Level::Value).unwrap(), p.eval(&tm, Level::Value).unwrap());
        worst = worst.max(((ep.value - em.value) / (2.0 * h) - g[i]).abs());
        for k in (0..p.v()).step_by(31) {
            let fd = (ep.yhat[k] - em.yhat[k]) / (2.0 * h);
            assert!((fd - jac.get(k, i)).abs() <= 1e-9, "Jac[{k},{i}]: {fd} vs {}", jac.get(k, i));
        }
    }
    assert!(worst <= 1e-10, "gradient vs finite differences: {worst:e}");
}

/// The exact Hessian the off-chain solve uses in its tail: each column against central
/// differences of the gradient (the ridge's `λI` is the factorisation's shift, added here).
#[test]
fn the_data_hessian_agrees_with_finite_differences_of_the_gradient() {
    let (p, _) = paper(3, 0.9);
    let theta = theta_random(p.m(), 3, 0.5);
    let h = p.data_hessian(&p.eval(&theta, Level::Gradient).unwrap());
    let step = 1e-5;
    let mut worst = 0.0f64;
    for i in (0..p.m()).step_by(5) {
        let (mut tp, mut tm) = (theta.clone(), theta.clone());
        tp[i] += step;
        tm[i] -= step;
        let gp = p.eval(&tp, Level::Gradient).unwrap().grad.unwrap();
        let gm = p.eval(&tm, Level::Gradient).unwrap().grad.unwrap();
        for j in 0..p.m() {
            let fd = (gp[j] - gm[j]) / (2.0 * step);
            let want = h.get(j, i) + if i == j { p.lambda() } else { 0.0 };
            worst = worst.max((fd - want).abs());
        }
    }
    assert!(worst <= 1e-9, "Hessian vs finite differences: {worst:e}");
    // Symmetric, and not the Gauss–Newton matrix (the residual is not zero).
    let nm = p.normal_matrix(&p.eval(&theta, Level::Gradient).unwrap());
    let (mut asym, mut diff) = (0.0f64, 0.0f64);
    for i in 0..p.m() {
        for j in 0..p.m() {
            asym = asym.max((h.get(i, j) - h.get(j, i)).abs());
            diff = diff.max((h.get(i, j) - nm.get(i, j)).abs());
        }
    }
    assert!(asym <= 1e-15 && diff > 1e-4, "asymmetry {asym:e}, distance from Gauss–Newton {diff:e}");
}

#[test]
fn the_fine_tuning_gradient_agrees_with_finite_differences_in_w() {
    let (p, _) = RiclSynthetic { m: 12, d: 3, v: 40, test: 0, seed: 3, flip: 0.9 }.problem(1e-4).unwrap();
    let zero = vec![0.0; p.m()];
    let gw = p.w_gradient(&p.eval(&zero, Level::Gradient).unwrap());
    let h = 1e-6;
    for idx in 0..9 {
        let mut wp = p.w().clone();
        let mut wm = p.w().clone();
        wp.data_mut()[idx] += h;
        wm.data_mut()[idx] -= h;
        let lp = p.with_w(wp).unwrap().eval(&zero, Level::Value).unwrap().data_loss;
        let lm = p.with_w(wm).unwrap().eval(&zero, Level::Value).unwrap().data_loss;
        let fd = (lp - lm) / (2.0 * h);
        assert!((fd - gw.data()[idx]).abs() <= 1e-9, "dW[{idx}]: {fd} vs {}", gw.data()[idx]);
    }
}

#[test]
fn constant_labels_leave_the_prediction_fixed_and_the_gradient_is_the_ridge() {
    let (p, data) = paper(4, 0.9);
    let c = 0.375;
    let p = RiclProblem::new(data.xp, vec![c; p.m()], p.w().clone(), data.q, data.yv, 1e-3).unwrap();
    for seed in [1, 2] {
        let theta = theta_random(p.m(), seed, 2.0);
        let ev = p.eval(&theta, Level::Gradient).unwrap();
        assert!(ev.yhat.iter().all(|y| (y - c).abs() <= 1e-15), "ŷ moved off the constant");
        for (gi, ti) in ev.grad.unwrap().iter().zip(&theta) {
            assert!((gi - 1e-3 * ti).abs() <= 1e-15, "∇J {gi} vs λθ {}", 1e-3 * ti);
        }
    }
}

#[test]
fn duplicating_an_example_k_times_equals_multiplying_its_weight_by_k() {
    let x = Mat::from_vec(3, 2, vec![0.3, -1.1, 0.8, 0.4, -0.5, 0.9]).unwrap();
    let y = vec![1.0, -0.5, 0.25];
    let q = Mat::from_vec(4, 2, vec![0.1, 0.2, -0.7, 0.3, 1.2, -0.4, 0.5, 0.5]).unwrap();
    let yv = vec![0.0; 4];
    let base = RiclProblem::new(x.clone(), y.clone(), Mat::identity(2), q.clone(), yv.clone(), 0.0).unwrap();
    for k in [2usize, 3, 5] {
        let mut rows = vec![0usize; k];
        rows.extend([1, 2]);
        let dup_x = x.select_rows(&rows);
        let dup_y: Vec<f64> = rows.iter().map(|&r| y[r]).collect();
        let dup = RiclProblem::new(dup_x, dup_y, Mat::identity(2), q.clone(), yv.clone(), 0.0).unwrap();
        let want = dup.predict(&dup.init(), &q).unwrap();
        let got = base.predict(&Params(vec![math::ln(k as f64), 0.0, 0.0]), &q).unwrap();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-15, "k = {k}: {a} vs {b}");
        }
    }
}

#[test]
fn laricl_is_bitwise_the_first_gauss_newton_step_of_ricl_from_uniform_weights() {
    for (seed, flip) in [(1, 0.9), (5, 0.0)] {
        let (p, _) = paper(seed, flip);
        let la = p.laricl().unwrap();
        assert!(la.delta.iter().all(|d| d.abs() < THETA_BOUND), "seed {seed}: Δ* leaves the box");
        let opts = SolveOpts { max_iter: 1, tol_grad: 0.0, x0: None };
        let (x1, info) = p.solve_with(RiclSolver::Lm, &opts, &mut |_| {}).unwrap();
        assert_eq!(info.history[0].mu, 0.0, "the first LM step used a shift");
        let a: Vec<u64> = x1.0.iter().map(|v| v.to_bits()).collect();
        let b: Vec<u64> = la.theta.iter().map(|v| v.to_bits()).collect();
        assert_eq!(a, b, "seed {seed}: LARICL and the first RICL step differ");
        assert!(la.residual <= 1e-14, "normal-equation residual {:e}", la.residual);
    }
}

#[test]
fn ricl_solvers_converge_and_agree_and_lower_the_test_error_under_a_biased_prompt() {
    let (p, data) = paper(1, 0.9);
    let opts = SolveOpts { max_iter: 500, tol_grad: 1e-10, x0: None };
    let (lm, info) = p.solve_with(RiclSolver::Lm, &opts, &mut |_| {}).unwrap();
    assert!(info.converged, "LM: {:?} after {}", info.reason, info.iterations);
    let mut losses = Vec::new();
    let (gd, _) = p.solve_with(RiclSolver::Gradient, &opts, &mut |r| losses.push(r.loss)).unwrap();
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "gradient descent must decrease J every iteration");
    let (jl, jg) = (p.certify(&lm).unwrap().loss, p.certify(&gd).unwrap().loss);
    assert!(jl <= jg * (1.0 + 1e-6), "LM {jl:e} vs GD {jg:e}");
    let plain = p.mse(&vec![0.0; p.m()], &data.xt, &data.yt).unwrap();
    let ricl = p.mse(&lm.0, &data.xt, &data.yt).unwrap();
    assert!(ricl < 0.5 * plain, "test MSE: RICL {ricl} vs plain ICL {plain}");
}

#[test]
fn equal_seeds_give_equal_bits_and_different_seeds_different_outputs() {
    let (p, _) = paper(6, 0.9);
    let x = Params(theta_random(p.m(), 6, 0.3));
    let a = p.step(&x, &[1u8; 32]).unwrap();
    assert_eq!(a, p.step(&x, &[1u8; 32]).unwrap());
    let b = p.step(&x, &[2u8; 32]).unwrap();
    assert_ne!(a.params, b.params);
    assert_ne!(a.digest, b.digest);
    // From θ = 0 too: the perturbation floor moves a zero log-weight.
    let z0 = p.step(&p.init(), &[1u8; 32]).unwrap();
    let z1 = p.step(&p.init(), &[2u8; 32]).unwrap();
    assert_ne!(z0.output_hash(), z1.output_hash());
    assert!(z0.objective < p.certify(&p.init()).unwrap().score);
}

#[test]
fn the_transcript_absorbs_every_stage_in_the_documented_order() {
    let (p, _) = paper(7, 0.9);
    let (out, stages) = p.ticket_step(&p.init(), &[4u8; 32], Transcript::recording("ricl")).unwrap();
    assert_eq!(stages.len(), 2 + 2 * (RICL_LM_CANDIDATES + RICL_NEWTON_CANDIDATES) + 1);
    assert!(matches!(stages[0], crate::compute::problem::Stage::Scalar(_)));
    assert!(matches!(&stages[1], crate::compute::problem::Stage::Vector(g) if g.len() == p.m()));
    assert_eq!(out.digest, Transcript::digest_of("ricl", &stages));
}

/// Attack: far from a minimum the exact Hessian is indefinite. A miner must not get a
/// cheaper step there (a factorisation that stops at the failed pivot) nor an output from
/// a failed candidate: it does the whole work, is scored `+inf` and is never taken.
#[test]
fn an_indefinite_hessian_costs_the_full_step_and_its_newton_candidate_is_never_taken() {
    let (p, _) = paper(2, 0.9);
    let (_, w0) = counted(|| p.step(&p.init(), &[3u8; 32]).unwrap());
    let mut failed_seen = 0;
    for seed in 0..8u8 {
        let x = Params(theta_random(p.m(), u64::from(seed), 4.0));
        let ((out, stages), w) = counted(|| p.ticket_step(&x, &[seed; 32], Transcript::recording("ricl")).unwrap());
        assert_eq!(w, w0, "seed {seed}: the work does not depend on the iterate");
        // Stages: value, gradient, then (direction, value) per candidate, then the index.
        let value = |c: usize| match stages[2 + 2 * c + 1] {
            crate::compute::problem::Stage::Scalar(v) => v,
            ref other => panic!("candidate {c}: {other:?}"),
        };
        let Some(crate::compute::problem::Stage::Index(chosen)) = stages.last() else { panic!("no index") };
        for c in RICL_LM_CANDIDATES..RICL_LM_CANDIDATES + RICL_NEWTON_CANDIDATES {
            if value(c) == f64::INFINITY {
                failed_seen += 1;
                assert_ne!(*chosen as usize, c, "seed {seed}: a failed candidate is never chosen");
                let crate::compute::problem::Stage::Vector(dir) = &stages[2 + 2 * c] else { panic!() };
                assert!(dir.iter().all(|&d| d == 0.0), "seed {seed}: a failed candidate's direction is zero");
            }
        }
        assert!(out.objective.is_finite());
    }
    assert!(failed_seen > 0, "some of these iterates have an indefinite shifted Hessian");
}

#[test]
fn step_work_does_not_depend_on_the_iterate_and_matches_the_formula() {
    for (m, v) in [(16, 32), (64, 256), (128, 200)] {
        let (p, _) = RiclSynthetic { m, d: 4, v, test: 0, seed: 8, flip: 0.9 }.problem(1e-4).unwrap();
        let (_, w0) = counted(|| p.step(&p.init(), &[3u8; 32]).unwrap());
        let (_, w1) = counted(|| p.step(&Params(theta_random(m, 8, 3.0)), &[9u8; 32]).unwrap());
        assert_eq!(w0, w1, "{m}x{v}");
        let formula = p.step_flops();
        let ratio = formula as f64 / w0 as f64;
        assert!((0.95..=1.05).contains(&ratio), "{m}x{v}: formula {formula} vs counted {w0}");
        assert_eq!(p.cost(), ricl_step_cost_mwu(&p.shape()));
    }
}

#[test]
fn an_iterate_outside_the_box_is_refused_and_steps_stay_inside_it() {
    let (p, _) = paper(9, 0.9);
    let mut x = vec![0.0; p.m()];
    x[3] = THETA_BOUND * 1.001;
    assert!(p.step(&Params(x.clone()), &[1u8; 32]).is_err());
    assert!(p.check_iterate(&Params(x.clone())).is_err());
    x[3] = THETA_BOUND;
    let out = p.step(&Params(x), &[1u8; 32]).unwrap();
    p.check_iterate(&out.params).unwrap();
    assert!(matches!(p.certify(&Params(vec![f64::NAN; p.m()])), Err(ProblemError::NonFinite { .. })));
}

#[test]
fn bad_data_gives_typed_errors() {
    let x = Mat::from_vec(3, 2, vec![1.0; 6]).unwrap();
    let q = Mat::from_vec(2, 2, vec![1.0; 4]).unwrap();
    let new = |xp: Mat, yp: Vec<f64>, w: Mat, q: Mat, yv: Vec<f64>, l: f64| RiclProblem::new(xp, yp, w, q, yv, l);
    let e = new(x.clone(), vec![1.0; 2], Mat::identity(2), q.clone(), vec![0.0; 2], 0.0).unwrap_err();
    assert!(matches!(e, ProblemError::Dimension { what: "prompt labels", .. }), "{e}");
    let e = new(x.clone(), vec![1.0; 3], Mat::identity(3), q.clone(), vec![0.0; 2], 0.0).unwrap_err();
    assert!(e.to_string().contains("W must be 2x2"), "{e}");
    let e = new(x.clone(), vec![1.0, f64::NAN, 0.0], Mat::identity(2), q.clone(), vec![0.0; 2], 0.0).unwrap_err();
    assert!(matches!(e, ProblemError::NonFinite { what: "prompt labels", index: 1 }), "{e}");
    let e = new(x.clone(), vec![1.0; 3], Mat::identity(2), q.clone(), vec![0.0; 2], -1.0).unwrap_err();
    assert!(e.to_string().contains("lambda"), "{e}");
    let e = new(x, vec![1.0; 3], Mat::identity(2), Mat::zeros(2, 3), vec![0.0; 2], 0.0).unwrap_err();
    assert!(matches!(e, ProblemError::Dimension { what: "validation columns", .. }), "{e}");
}

#[test]
fn the_synthetic_prompt_is_imbalanced_as_asked_and_reproducible() {
    let biased = RiclSynthetic::paper(11).generate().unwrap();
    let balanced = RiclSynthetic { flip: 0.0, ..RiclSynthetic::paper(11) }.generate().unwrap();
    let positive = |d: &RiclData| (0..64).filter(|&i| det::dot(&d.beta, d.xp.row(i)) >= 0.0).count();
    assert!(positive(&biased) >= 55, "biased prompt has {} of 64 on the positive side", positive(&biased));
    assert!((20..=44).contains(&positive(&balanced)), "balanced: {}", positive(&balanced));
    // The flip coins are drawn for every example: validation and test sets are shared.
    assert_eq!(biased.q, balanced.q);
    assert_eq!(biased.yt, balanced.yt);
    let again = RiclSynthetic::paper(11).generate().unwrap();
    assert_eq!(again.yp, biased.yp);
}
