//! End-to-end tests of `gradientcoin compute run`: real processes of the built binary on
//! real files; bad input gives one line on stderr and exit code 1, usage errors exit 2.

use gradientcoin::compute::data::{parse_csv, write_csv, write_npy};
use gradientcoin::compute::det::Mat;
use gradientcoin::compute::nmr::Phi;
use gradientcoin::compute::problem::Problem;
use gradientcoin::compute::softmax::{SoftmaxOptions, SoftmaxProblem, Synthetic, uniform_reg};
use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradientcoin")).args(args).output().expect("run the binary")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_one_line_error(o: &Output, code: i32, needle: &str) {
    assert_eq!(o.status.code(), Some(code), "stderr: {}", stderr(o));
    let err = stderr(o);
    assert!(err.contains(needle), "stderr {err:?} does not mention {needle:?}");
    if code == 1 {
        assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
        assert!(err.starts_with("error: "), "{err:?}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "stderr: {}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("stdout is one JSON object")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn synthetic_run_prints_a_converged_certificate_as_json() {
    let o = run(&["compute", "run", "--kind", "resnet_softmax", "--synthetic", "n=400,d=6,seed=3", "--json"]);
    let v = json(&o);
    assert_eq!(v["kind"], "resnet_softmax");
    assert_eq!(v["converged"], true);
    assert_eq!(v["params"].as_array().unwrap().len(), 6);
    assert!(v["iterations"].as_u64().unwrap() >= 1);
    let g = v["grad_norm"].as_f64().unwrap();
    let g0 = v["grad_norm0"].as_f64().unwrap();
    assert!(g <= 1e-10 * g0.max(1.0), "grad {g}");
    assert!(v["loss"].as_f64().unwrap() < 1e-9);
}

#[test]
fn human_output_shows_iterations_and_the_certificate() {
    let o = run(&["compute", "run", "--synthetic", "n=300,d=4,seed=1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("iter    1  loss"), "{out}");
    assert!(out.contains("converged after"), "{out}");
    assert!(out.contains("certificate") && out.contains("|grad|"), "{out}");
}

#[test]
fn csv_and_npy_data_give_the_library_solution_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _) = Synthetic { n: 300, d: 5, seed: 8, scale: 0.5 }.generate(Phi::Softmax).unwrap();
    let bm = Mat::from_vec(b.len(), 1, b.clone()).unwrap();
    let a_csv = write(dir.path(), "A.csv", write_csv(&a).as_bytes());
    let b_csv = write(dir.path(), "b.csv", write_csv(&bm).as_bytes());
    let a_npy = write(dir.path(), "A.npy", &write_npy(&a));
    let b_npy = write(dir.path(), "b.npy", &write_npy(&bm));
    let saved = dir.path().join("x.csv");
    let saved_s = saved.to_string_lossy().into_owned();
    let from_csv =
        json(&run(&["compute", "run", "--data", &a_csv, "--target", &b_csv, "--json", "--save-params", &saved_s]));
    let from_npy = json(&run(&["compute", "run", "--data", &a_npy, "--target", &b_npy, "--json"]));
    assert_eq!(from_csv["params"], from_npy["params"]);

    let p = SoftmaxProblem::new(
        Phi::Softmax,
        a,
        b,
        SoftmaxOptions { w2: Some(uniform_reg(1e-8, 300)), ..Default::default() },
    )
    .unwrap();
    let (x, _) = p.solve(&Default::default(), &mut |_| {}).unwrap();
    let cli: Vec<f64> = from_csv["params"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(cli, x.0, "CLI and library disagree");
    let back = parse_csv(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(back.data(), x.0.as_slice(), "--save-params does not round-trip");
}

#[test]
fn copyright_option_and_predict_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _, _) = Synthetic { n: 10, d: 16, seed: 4, scale: 1.0 }.generate(Phi::Softmax).unwrap();
    let new_rows = write(dir.path(), "new.csv", write_csv(&a).as_bytes());
    let v = json(&run(&[
        "compute",
        "run",
        "--synthetic",
        "n=500,d=16,seed=3,scale=1",
        "--copyright",
        "rows=50,gamma=1e-10",
        "--predict",
        &new_rows,
        "--json",
    ]));
    let l1 = v["figures"]["loss_protected"].as_f64().unwrap();
    assert!(l1 > 1e-7, "protected loss {l1} was not kept away from zero");
    let f: Vec<f64> = v["prediction"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(f.len(), 10);
    assert!((f.iter().sum::<f64>() - 1.0).abs() < 1e-12);
}

#[test]
fn bad_data_files_are_one_line_errors_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let good_a = write(dir.path(), "A.csv", b"1,2\n3,4\n5,7\n");
    let good_b = write(dir.path(), "b.csv", b"0.2\n0.3\n0.5\n");

    let o = run(&["compute", "run", "--data", "/nonexistent/A.csv", "--target", &good_b]);
    assert_one_line_error(&o, 1, "cannot read /nonexistent/A.csv");

    let bad_cell = write(dir.path(), "bad.csv", b"1,2\n3,4\n5,abc\n");
    let o = run(&["compute", "run", "--data", &bad_cell, "--target", &good_b]);
    assert_one_line_error(&o, 1, "line 3, column 2");

    let nan = write(dir.path(), "nan.csv", b"1,2\nNaN,4\n5,6\n");
    let o = run(&["compute", "run", "--data", &nan, "--target", &good_b]);
    assert_one_line_error(&o, 1, "NaN");

    let short_b = write(dir.path(), "short.csv", b"0.5\n0.5\n");
    let o = run(&["compute", "run", "--data", &good_a, "--target", &short_b]);
    assert_one_line_error(&o, 1, "has 2 values but");

    let ragged = write(dir.path(), "ragged.csv", b"1,2\n3\n");
    let o = run(&["compute", "run", "--data", &ragged, "--target", &good_b]);
    assert_one_line_error(&o, 1, "line 2 has 1 columns");

    let matrix_b = write(dir.path(), "mb.csv", b"1,2\n3,4\n5,6\n");
    let o = run(&["compute", "run", "--data", &good_a, "--target", &matrix_b]);
    assert_one_line_error(&o, 1, "mb.csv");

    let garbage_npy = write(dir.path(), "g.npy", b"not numpy at all");
    let o = run(&["compute", "run", "--data", &garbage_npy, "--target", &good_b]);
    assert_one_line_error(&o, 1, "g.npy");

    let txt = write(dir.path(), "A.xlsx", b"");
    let o = run(&["compute", "run", "--data", &txt, "--target", &good_b]);
    assert_one_line_error(&o, 1, "xlsx");

    let o = run(&["compute", "run", "--data", &good_a, "--target", &good_b, "--copyright", "rows=7..9,gamma=0.1"]);
    assert_one_line_error(&o, 1, "out of range");

    // A good run on the same files works (the errors above were about the input).
    assert!(run(&["compute", "run", "--data", &good_a, "--target", &good_b]).status.success());
}

/// Regression (issue 12): `--synthetic n=100000,d=100000` aborted on a failed allocation
/// (exit 134) and `n = d = 2^32 − 1` panicked (exit 101). Sizes are checked against the
/// machine's available memory before anything is allocated.
#[test]
fn a_problem_too_large_for_memory_is_one_line_error_before_any_allocation() {
    for (kind, synthetic) in [
        ("softmax", "n=100000,d=100000"),
        ("resnet_softmax", "n=4294967295,d=4294967295"),
        ("attention", "n=1000000,d=8"),
        ("ricl", "m=4000000,d=4,v=4000000"),
    ] {
        let o = run(&["compute", "run", "--kind", kind, "--synthetic", synthetic]);
        assert_one_line_error(&o, 1, "GiB of memory (the data and the solver's matrices); this machine has");
        assert!(stderr(&o).contains(&format!("synthetic {synthetic}")), "{kind}: {}", stderr(&o));
    }
}

#[test]
fn usage_errors_exit_with_code_2() {
    for args in [
        vec!["compute", "run", "--kind", "sdp"],
        vec!["compute", "run", "--synthetic", "n=abc"],
        vec!["compute", "run", "--synthetic", "q=1"],
        vec!["compute", "run", "--copyright", "gamma=1"],
        vec!["compute", "run", "--data", "A.csv"],
        vec!["compute", "run", "--no-such-flag"],
        vec!["compute", "frobnicate"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
}

/// SOLVERS.md §0.5 item 4 as measured: an absolute gradient tolerance stopped this solve
/// at 1.2e-4 relative gradient and ||x − x*|| = 8e-4. With relative tolerances it recovers
/// the planted x* to 1e-8 relative. Release only: a debug build takes minutes on it.
#[test]
#[cfg_attr(debug_assertions, ignore = "seconds in release, minutes in debug")]
fn a_large_planted_solve_recovers_x_star_to_1e_8_relative() {
    let o =
        run(&["compute", "run", "--kind", "softmax", "--synthetic", "n=50000,d=128,seed=3", "--reg", "0", "--json"]);
    let v = json(&o);
    assert_eq!(v["converged"], true, "{}", v["reason"]);
    let err = v["x_err_rel"].as_f64().expect("planted data reports x_err_rel");
    assert!(err <= 1e-8, "||x - x*|| / ||x*|| = {err:e}");
    // The data loss and the regulariser are reported apart.
    assert_eq!(v["loss_reg"].as_f64(), Some(0.0));
    assert!(v["loss_data"].as_f64().unwrap() <= v["loss"].as_f64().unwrap());
}

#[test]
fn attention_run_on_four_matrix_files_solves_and_predicts_the_model_output() {
    use gradientcoin::compute::attention::{AttentionSynthetic, Kernel};
    let dir = tempfile::tempdir().unwrap();
    for kernel in ["softmax", "linear"] {
        let k: Kernel = kernel.parse().unwrap();
        // Seed 3: from X = 0 both kernels reach the planted optimum (the loss is not convex;
        // other seeds of this small shape stop the softmax kernel in a local minimum).
        let p = AttentionSynthetic { n: 60, d: 3, seed: 3, scale: 1.0 }.generate(k).unwrap();
        let files: Vec<String> = [("a1", &p.a1), ("a2", &p.a2), ("a3", &p.a3)]
            .iter()
            .map(|(n, m)| write(dir.path(), &format!("{kernel}_{n}.npy"), &write_npy(m)))
            .chain([write(dir.path(), &format!("{kernel}_b.csv"), write_csv(&p.b).as_bytes())])
            .collect();
        let query = write(dir.path(), &format!("{kernel}_q.csv"), write_csv(&p.a1.select_rows(&[0, 1])).as_bytes());
        let o = run(&[
            "compute",
            "run",
            "--kind",
            "attention",
            "--kernel",
            kernel,
            "--reg",
            "0",
            "--a1",
            &files[0],
            "--a2",
            &files[1],
            "--a3",
            &files[2],
            "--b",
            &files[3],
            "--predict",
            &query,
            "--json",
        ]);
        let v = json(&o);
        assert_eq!(v["kind"], if kernel == "softmax" { "attention" } else { "attention_linear" });
        assert_eq!(v["params"].as_array().unwrap().len(), 18);
        let b2: f64 = p.b.data().iter().map(|x| x * x).sum();
        assert!(v["loss"].as_f64().unwrap() <= 1e-16 * b2, "{kernel}: {}", v["loss"]);
        // The model reproduces the targets of the query rows it was given.
        let pred: Vec<f64> = v["prediction"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert_eq!(pred.len(), 6);
        for (a, b) in pred.iter().zip(&p.b.data()[..6]) {
            assert!((a - b).abs() < 1e-6, "{kernel}: {a} vs {b}");
        }
    }
    // A matrix of the wrong shape is a one-line error naming both files.
    let bad = write(dir.path(), "bad.csv", b"1,2\n3,4\n");
    let a1 = dir.path().join("softmax_a1.npy").to_string_lossy().into_owned();
    let o = run(&["compute", "run", "--kind", "attention", "--a1", &a1, "--a2", &bad, "--a3", &a1, "--b", &a1]);
    assert_one_line_error(&o, 1, "bad.csv is 2x2");
    // Softmax-family files for an attention run, and attention files for a softmax run.
    let o = run(&["compute", "run", "--kind", "attention", "--data", &a1, "--target", &bad]);
    assert_one_line_error(&o, 1, "attention takes --a1");
}

#[test]
fn reproduce_lists_its_papers_and_every_default_claim_holds_but_the_one_known_to_fail() {
    let o = run(&["compute", "reproduce", "--list", "--json"]);
    let list = json(&o);
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|p| p["paper"].as_str().unwrap()).collect();
    assert!(ids.contains(&"2309.07418") && ids.contains(&"2310.11685"), "{ids:?}");
    for id in ids {
        let v = json(&run(&["compute", "reproduce", id, "--json"]));
        let claims = v["claims"].as_array().unwrap();
        assert!(!claims.is_empty() && !v["tables"].as_array().unwrap().is_empty(), "{id}");
        for c in claims {
            let text = c["claim"].as_str().unwrap();
            // The reconstruction does not reproduce this claim (README: LARICL beats plain
            // ICL but not the fine-tuning baseline); the run must keep saying so until it does.
            let known_fail = id == "2310.03331" && text.contains("LARICL has a lower mean test MSE");
            assert_eq!(c["held"], !known_fail, "{id}: {text} ({})", c["evidence"]);
        }
    }
    let o = run(&["compute", "reproduce", "1234.5678"]);
    assert_one_line_error(&o, 1, "unknown paper");
}

/// `rows` inputs and their labels as one labelled matrix: the inputs, then the label.
fn labelled(x: &Mat, y: &[f64]) -> Mat {
    Mat::from_fn(x.rows(), x.cols() + 1, |i, j| if j < x.cols() { x.get(i, j) } else { y[i] })
}

#[test]
fn ricl_run_on_labelled_files_gives_the_library_solution_and_beats_plain_icl_on_the_test_set() {
    use gradientcoin::compute::problem::SolveOpts;
    use gradientcoin::compute::ricl::{RiclProblem, RiclSolver, RiclSynthetic};
    let dir = tempfile::tempdir().unwrap();
    let g = RiclSynthetic { m: 32, d: 3, v: 128, test: 300, seed: 2, flip: 0.9 }.generate().unwrap();
    let prompt = write(dir.path(), "prompt.csv", write_csv(&labelled(&g.xp, &g.yp)).as_bytes());
    let val = write(dir.path(), "val.npy", &write_npy(&labelled(&g.q, &g.yv)));
    let test = write(dir.path(), "test.csv", write_csv(&labelled(&g.xt, &g.yt)).as_bytes());
    let queries = g.xt.select_rows(&[0, 1, 2]);
    let query = write(dir.path(), "q.csv", write_csv(&queries).as_bytes());
    let w = write(dir.path(), "w.csv", write_csv(&Mat::identity(3)).as_bytes());
    let files = ["--prompt", prompt.as_str(), "--validation", val.as_str(), "--test", test.as_str()];
    let o =
        run(&[&["compute", "run", "--kind", "ricl"], &files[..], &["--w", &w, "--predict", &query, "--json"]].concat());
    let v = json(&o);
    assert_eq!(v["kind"], "ricl");
    assert_eq!(v["converged"], true, "{}", v["reason"]);
    let params: Vec<f64> = v["params"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(params.len(), 32);
    // The library's Levenberg–Marquardt solve of the same data, bit for bit (ridge 1e-4,
    // the kind's default), and its reweighted predictions of the query rows.
    let p = RiclProblem::new(g.xp.clone(), g.yp.clone(), Mat::identity(3), g.q.clone(), g.yv.clone(), 1e-4).unwrap();
    let (x, _) = p.solve_with(RiclSolver::Lm, &SolveOpts::default(), &mut |_| {}).unwrap();
    assert_eq!(params, x.0);
    let pred: Vec<f64> = v["prediction"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(pred, p.predict_queries(&x.0, &queries).unwrap());
    // Reweighting the biased prompt lowers the test error below plain ICL's.
    let (t, plain) = (v["test_mse"].as_f64().unwrap(), v["test_mse_plain_icl"].as_f64().unwrap());
    assert_eq!(t, p.mse(&x.0, &g.xt, &g.yt).unwrap());
    assert!(t < 0.5 * plain, "test MSE {t} against plain ICL's {plain}");
    // LARICL is the closed form, also bit for bit.
    let o = run(&[&["compute", "run", "--kind", "ricl", "--solver", "laricl"], &files[..], &["--json"]].concat());
    let v = json(&o);
    let theta: Vec<f64> = v["params"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(theta, p.laricl().unwrap().theta);
    // The human output names the parameters and reports the test error.
    let o = run(&[&["compute", "run", "--kind", "ricl"], &files[..]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("test MSE") && out.contains("plain ICL"), "{out}");
}

#[test]
fn bad_ricl_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let prompt = write(dir.path(), "prompt.csv", b"1,0,1\n0,1,0\n1,1,1\n");
    let val = write(dir.path(), "val.csv", b"1,0,1\n0,1,0\n");
    let one_col = write(dir.path(), "one.csv", b"1\n2\n");
    let wide = write(dir.path(), "wide.csv", b"1,0,0,1\n0,1,0,0\n");
    let w3 = write(dir.path(), "w3.csv", b"1,0,0\n0,1,0\n0,0,1\n");
    let nan = write(dir.path(), "nan.csv", b"1,0,1\n0,nan,0\n");
    let ricl = |extra: &[&str]| run(&[&["compute", "run", "--kind", "ricl"], extra].concat());
    assert_one_line_error(&ricl(&["--prompt", &one_col, "--validation", &val]), 1, "one.csv has 1 column(s)");
    assert_one_line_error(&ricl(&["--prompt", &prompt, "--validation", &wide]), 1, "wide.csv has 3 input columns");
    assert_one_line_error(&ricl(&["--prompt", &prompt, "--validation", &val, "--w", &w3]), 1, "W must be 2x2");
    assert_one_line_error(&ricl(&["--prompt", &prompt, "--validation", &val, "--test", &wide]), 1, "wide.csv has 3");
    assert_one_line_error(&ricl(&["--prompt", &nan, "--validation", &val]), 1, "nan.csv");
    let missing = dir.path().join("absent.csv").to_string_lossy().into_owned();
    assert_one_line_error(&ricl(&["--prompt", &missing, "--validation", &val]), 1, "absent.csv");
    // Softmax data for a ricl run; --prompt without --validation is a usage error.
    assert_one_line_error(&ricl(&["--data", &prompt, "--target", &val]), 1, "ricl takes --prompt and --validation");
    assert_one_line_error(&ricl(&["--prompt", &prompt]), 2, "--validation");
    assert_one_line_error(
        &ricl(&["--prompt", &prompt, "--validation", &val, "--solver", "alternating"]),
        1,
        "ricl takes",
    );
}
