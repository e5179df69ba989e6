//! `gradientcoin bench cost`: the calibration sweep of DESIGN.md §3.1. Replays steps of
//! admissible tasks of every kind across the admission domain — the minimum shape, n ~ d,
//! n >> d, the largest and smallest data scales, every copyright variant, with and
//! without a regulariser — and prints microseconds per mWU for each. The last line is
//! `spread X.XX`, the largest over the smallest µs/mWU of the sweep: how much a miner can
//! gain by choosing which task to mine (required <= 1.5 in release, goal 1.25).

use crate::compute::attention::{AttentionShape, Kernel, attention_flop_classes};
use crate::compute::copyright::CopyrightVariant;
use crate::compute::problem::Problem;
use crate::compute::ricl::{RiclShape, ricl_flop_classes};
use crate::compute::softmax::step_flop_classes;
use crate::pouw::task::{
    ATTN_MAX_SYNTHETIC_SCALE, ATTN_MAX_WIDTH, ATTN_MIN_ROWS, ATTN_MIN_SYNTHETIC_SCALE, CopyrightSpec,
    MAX_SYNTHETIC_SCALE, MIN_ROWS, MIN_SYNTHETIC_SCALE, RICL_MAX_PROMPT, RICL_MIN_PROMPT, RICL_MIN_VALIDATION,
    TaskData, TaskKind, TaskSpec,
};
use std::io::Write;
use std::time::Instant;

/// One case of the sweep.
pub struct Case {
    /// What it is.
    pub name: String,
    /// The task.
    pub spec: TaskSpec,
}

/// The sweep: every kind and option across the admission domain's corners and middle.
pub fn cases() -> Vec<Case> {
    let base = |kind, n: u32, d: u32, scale: f64| TaskSpec {
        kind,
        data: TaskData::Synthetic { n, d, seed: 3, scale },
        reg_lambda: 1e-8,
        copyright: None,
        target_score: 1e-300, // never met: the regulariser keeps the loss above it
    };
    let mut out = Vec::new();
    let mut push = |name: String, spec: TaskSpec| out.push(Case { name, spec });
    for kind in [TaskKind::Softmax, TaskKind::ResnetSoftmax] {
        let k = kind.name();
        let min = MIN_ROWS as u32;
        push(format!("{k} {min}x2 (minimum shape)"), base(kind, min, 2, 0.5));
        push(format!("{k} 256x8"), base(kind, 256, 8, 0.5));
        push(format!("{k} 1000x16"), base(kind, 1000, 16, 0.5));
        push(format!("{k} 2000x32"), base(kind, 2000, 32, 0.5));
        push(format!("{k} 64x16 (smallest n/d)"), base(kind, 64, 16, 0.5));
        push(format!("{k} 256x64 (smallest n/d)"), base(kind, 256, 64, 0.5));
        push(format!("{k} 512x128 (smallest n/d)"), base(kind, 512, 128, 0.5));
        push(format!("{k} 100000x2 (n >> d)"), base(kind, 100_000, 2, 0.5));
        push(format!("{k} 20000x16 (n >> d)"), base(kind, 20_000, 16, 0.5));
        push(format!("{k} 5000x64 (largest data)"), base(kind, 5000, 64, 0.5));
        push(format!("{k} 2000x128"), base(kind, 2000, 128, 0.5));
        push(format!("{k} 1000x32 smallest scale"), base(kind, 1000, 32, MIN_SYNTHETIC_SCALE));
        push(format!("{k} 1000x32 largest scale"), base(kind, 1000, 32, MAX_SYNTHETIC_SCALE));
        push(format!("{k} 1000x32 no regulariser"), TaskSpec { reg_lambda: 0.0, ..base(kind, 1000, 32, 0.5) });
        for (v, variant) in [
            ("all", CopyrightVariant::All),
            ("unprotected", CopyrightVariant::UnprotectedOnly),
            ("per-block", CopyrightVariant::PerBlock),
        ] {
            let cr = CopyrightSpec { rows: (0..100).collect(), gamma: 1e-9, variant };
            push(format!("{k}+copyright({v}) 1000x32"), TaskSpec { copyright: Some(cr), ..base(kind, 1000, 32, 0.5) });
        }
    }
    let wmax = ATTN_MAX_WIDTH as u32;
    for kernel in [Kernel::Softmax, Kernel::Linear] {
        let kind = TaskKind::Attention(kernel);
        let k = kind.full_name();
        let min = ATTN_MIN_ROWS as u32;
        push(format!("{k} {min}x2 (minimum shape)"), base(kind, min, 2, 1.0));
        push(format!("{k} 16x{wmax} (smallest n/d)"), base(kind, 2 * wmax, wmax, 1.0));
        push(format!("{k} 64x4"), base(kind, 64, 4, 1.0));
        push(format!("{k} 128x6"), base(kind, 128, 6, 1.0));
        let largest = largest_admissible(2 * wmax, 100_000, |n| base(kind, n, wmax, 1.0));
        push(format!("{k} {largest}x{wmax} (largest n at d = {wmax})"), base(kind, largest, wmax, 1.0));
        push(format!("{k} 128x{wmax} smallest scale"), base(kind, 128, wmax, ATTN_MIN_SYNTHETIC_SCALE));
        push(format!("{k} 128x{wmax} largest scale"), base(kind, 128, wmax, ATTN_MAX_SYNTHETIC_SCALE));
        push(format!("{k} 128x{wmax} no ridge"), TaskSpec { reg_lambda: 0.0, ..base(kind, 128, wmax, 1.0) });
    }
    // The largest admissible n at d = 2 and 4 (the step-cost cap or the data limit).
    for (kernel, d) in [(Kernel::Softmax, 2), (Kernel::Linear, 2), (Kernel::Linear, 4)] {
        let kind = TaskKind::Attention(kernel);
        let n = largest_admissible(ATTN_MIN_ROWS as u32, 1_000_000, |n| base(kind, n, d, 1.0));
        push(format!("{} {n}x{d} (n >> d)", kind.full_name()), base(kind, n, d, 1.0));
    }
    // ricl: the step's work depends on the prompt size m and the validation rows V only
    // (the scores are computed once when the task is built), so the sweep spans (m, V)
    // from the minimum to the cap.
    let ricl = |m: u32, d: u32, v: u32, flip: f64| TaskSpec {
        kind: TaskKind::Ricl,
        data: TaskData::RiclSynthetic { m, d, v, seed: 3, flip },
        reg_lambda: 1e-4,
        copyright: None,
        target_score: 1e-300,
    };
    let (pmin, vmin) = (RICL_MIN_PROMPT as u32, RICL_MIN_VALIDATION as u32);
    // The Cholesky factorisations grow as m^3 and the evaluations as V·m; up to m = 64
    // the 4 MiB data limit binds before the step-cost cap (the scores and their
    // exponentials are part of the task's data). The largest rows are searched, not
    // written down, so the sweep follows the price.
    let most_rows = |m: u32| largest_admissible(vmin, 10_000_000, |v| ricl(m, 4, v, 0.9));
    push(format!("ricl {pmin}x{vmin} (minimum shape)"), ricl(pmin, 1, vmin, 0.9));
    let v = most_rows(pmin);
    push(format!("ricl {pmin}x{v} (most validation rows)"), ricl(pmin, 4, v, 0.9));
    push("ricl 16x14000".to_string(), ricl(16, 4, 14_000, 0.9));
    push("ricl 32x7500".to_string(), ricl(32, 4, 7500, 0.9));
    push("ricl 64x256 (the paper's)".to_string(), ricl(64, 4, 256, 0.9));
    push("ricl 64x256 balanced prompt".to_string(), ricl(64, 4, 256, 0.0));
    let v = most_rows(64);
    push(format!("ricl 64x{v} (most rows at m = 64)"), ricl(64, 4, v, 0.9));
    push("ricl 128x16 (fewest rows)".to_string(), ricl(128, 4, vmin, 0.9));
    let v = most_rows(128);
    push(format!("ricl 128x{v} (most rows at m = 128)"), ricl(128, 4, v, 0.9));
    let mmax = RICL_MAX_PROMPT as u32;
    if ricl(mmax, 4, vmin, 0.9).check_limits(&sweep_limits()).is_ok() {
        let v = most_rows(mmax);
        push(format!("ricl {mmax}x{vmin} (largest prompt, fewest rows)"), ricl(mmax, 4, vmin, 0.9));
        push(format!("ricl {mmax}x{v} (largest prompt, most rows)"), ricl(mmax, 4, v, 0.9));
    }
    // Wider synthetic inputs (N(0, 1) entries, W = I) exceed the score bound.
    push("ricl 128x256 d=16".to_string(), ricl(128, 16, 256, 0.9));
    push("ricl 64x256 ridge 1".to_string(), TaskSpec { reg_lambda: 1.0, ..ricl(64, 4, 256, 0.9) });
    out
}

/// The limits the sweep's cases must meet: the test network's (the same as every network's).
fn sweep_limits() -> crate::pouw::task::TaskLimits {
    crate::chain::params::ChainParams::test().task_limits
}

/// The largest `n` in `[lo, hi)` for which `spec(n)` is admissible, by bisection (the
/// limits are monotone in a task's size); `lo` itself when nothing above it is.
fn largest_admissible(lo: u32, hi: u32, spec: impl Fn(u32) -> TaskSpec) -> u32 {
    let limits = sweep_limits();
    let (mut ok, mut bad) = (lo, hi);
    while bad - ok > 1 {
        let mid = ok + (bad - ok) / 2;
        if spec(mid).check_limits(&limits).is_ok() {
            ok = mid;
        } else {
            bad = mid;
        }
    }
    ok
}

/// One timed step of `p` from `x` with seed `r`.
fn time_step(p: &dyn Problem, x: &crate::compute::problem::Params, r: usize) -> anyhow::Result<f64> {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(r as u64).to_le_bytes());
    let started = Instant::now();
    std::hint::black_box(p.step(x, &seed)?);
    Ok(started.elapsed().as_secs_f64())
}

/// The fastest of `rounds` steps per case, the cases taken round-robin so that a change
/// in the machine's load touches every case alike; each round steps from the initial
/// iterate and from one far from it (the work must not depend on the iterate).
pub fn seconds_per_step(problems: &[Box<dyn Problem>], rounds: usize) -> anyhow::Result<Vec<f64>> {
    let starts: Vec<_> = problems
        .iter()
        .map(|p| Ok((p.init(), p.step(&p.init(), &[200u8; 32])?.params)))
        .collect::<anyhow::Result<_>>()?;
    let mut best = vec![f64::INFINITY; problems.len()];
    for r in 0..rounds {
        for (i, (p, (x0, far))) in problems.iter().zip(&starts).enumerate() {
            for x in [x0, far] {
                best[i] = best[i].min(time_step(p.as_ref(), x, r)?);
            }
        }
    }
    Ok(best)
}

/// Runs the sweep and prints the table and the spread.
pub fn run(reps: usize, classes: bool) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        outln!("note: a debug build; calibration figures are for release builds (cargo run --release)");
    }
    outln!(
        "== cost calibration: replay time per mWU across the admission domain (fastest of {} steps per case, cases round-robin)",
        2 * reps
    );
    outln!("  {:<44} {:>9} {:>11} {:>9}", "task", "cost mWU", "replay ms", "us / mWU");
    let cases = cases();
    let problems: Vec<Box<dyn Problem>> = cases
        .iter()
        .map(|c| Ok(Box::new(c.spec.build_unchecked()?) as Box<dyn Problem>))
        .collect::<anyhow::Result<_>>()?;
    let secs = seconds_per_step(&problems, reps)?;
    let mut per = Vec::new();
    for ((case, p), secs) in cases.iter().zip(&problems).zip(secs) {
        let us = secs * 1e6 / p.cost() as f64;
        outln!("  {:<44} {:>9} {:>11.3} {:>9.4}", case.name, p.cost(), secs * 1e3, us);
        if classes && let TaskKind::Attention(kernel) = case.spec.kind {
            let (n, d) = case.spec.data.shape();
            let c = attention_flop_classes(&AttentionShape { n, d, kernel });
            outln!(
                "    attention classes: transcendental {} elementwise {} gemm {} factor {} rows {} seconds {secs:e}",
                c.transcendental,
                c.elementwise,
                c.gemm,
                c.factor,
                c.rows
            );
        } else if classes && let Some((m, _, v)) = case.spec.data.ricl_shape() {
            let c = ricl_flop_classes(&RiclShape { m, v });
            outln!(
                "    ricl classes: transcendental {} elementwise {} gemm {} factor {} seconds {secs:e}",
                c.transcendental,
                c.elementwise,
                c.gemm,
                c.factor
            );
        } else if classes && let Some(shape) = case.spec.shape() {
            let c = step_flop_classes(&shape);
            outln!(
                "    classes: transcendental {} elementwise {} level2 {} gram {} factor {} seconds {secs:e}",
                c.transcendental,
                c.elementwise,
                c.level2,
                c.gram,
                c.factor
            );
        }
        per.push((case.name.clone(), us));
    }
    let (min, max) = per.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), (_, v)| (lo.min(*v), hi.max(*v)));
    let slowest = per.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map_or("", |c| c.0.as_str());
    let fastest = per.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map_or("", |c| c.0.as_str());
    outln!("  slowest per mWU: {slowest}; fastest: {fastest}");
    outln!("  claim: spread <= 1.5 (goal 1.25): {}", if max / min <= 1.5 { "held" } else { "NOT held" });
    outln!("spread {:.2}", max / min);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::params::ChainParams;

    /// The attention and ricl cases measure what the network admits: a case above a cap would
    /// calibrate the price of a task no block can carry. (Two softmax-family cases, the
    /// n >> d ones fitted before the cap, lie above it.)
    #[test]
    fn every_attention_and_ricl_case_of_the_sweep_is_admissible_on_the_test_network() {
        let limits = ChainParams::test().task_limits;
        assert_eq!(limits, sweep_limits());
        for case in cases().into_iter().filter(|c| matches!(c.spec.kind, TaskKind::Attention(_) | TaskKind::Ricl)) {
            case.spec.check_limits(&limits).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        }
    }

    /// The sweep's "largest" cases sit on the boundary of the admission domain.
    #[test]
    fn largest_admissible_finds_the_boundary_of_the_domain() {
        let limits = ChainParams::test().task_limits;
        let spec = |v: u32| TaskSpec {
            kind: TaskKind::Ricl,
            data: TaskData::RiclSynthetic { m: 64, d: 4, v, seed: 3, flip: 0.9 },
            reg_lambda: 1e-4,
            copyright: None,
            target_score: 1e-300,
        };
        let v = largest_admissible(RICL_MIN_VALIDATION as u32, 10_000_000, spec);
        assert!(v > RICL_MIN_VALIDATION as u32);
        assert!(spec(v).check_limits(&limits).is_ok());
        assert!(spec(v + 1).check_limits(&limits).is_err());
    }
}
