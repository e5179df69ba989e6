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

use crate::cli::testnet::demo_spec;
use crate::compute::attention::{AttentionSynthetic, Kernel};
use crate::compute::det;
use crate::compute::problem::{Params, Problem, SolveOpts, Transcript};
use crate::compute::ricl::{Level, RICL_TICKET_RULE, RiclStepRule, RiclSynthetic, projected_gradient};
use crate::compute::softmax::{StepRule, TICKET_RULE};
use crate::compute::trajectory::{self, Trajectory};
use crate::pouw::task::{TaskData, TaskKind, TaskSpec};
use anyhow::Context as _;
use std::io::Write;
use std::time::{Duration, Instant};

/// Fraction of the way back from the fully solved score to the start's score that the
/// target sits at: `1e-14` on a zero-residual planted task is `||x − x*||` about 1e-7
/// relative.
pub const TARGET_FRACTION: f64 = 1e-14;

/// Step cap of a measured chained trajectory.
const MAX_STEPS: u64 = 400;

/// One planted shape of part 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// The kind.
    pub kind: TaskKind,
    /// Rows.
    pub n: u32,
    /// Columns.
    pub d: u32,
    /// The regulariser λ (0: none).
    pub reg: f64,
    /// Row scale of the planted data (larger: the start is further from x* and the map
    /// more saturated).
    pub scale: f64,
    /// Dataset seed.
    pub seed: u64,
}

/// The planted shapes of part 1.
pub fn shapes() -> Vec<Shape> {
    vec![
        Shape { kind: TaskKind::Softmax, n: 2000, d: 16, reg: 0.0, scale: 0.5, seed: 11 },
        Shape { kind: TaskKind::Softmax, n: 10000, d: 64, reg: 0.0, scale: 0.5, seed: 11 },
        Shape { kind: TaskKind::Softmax, n: 8192, d: 48, reg: 1e-6, scale: 0.5, seed: 11 },
        Shape { kind: TaskKind::Softmax, n: 4096, d: 128, reg: 0.0, scale: 0.5, seed: 11 },
        Shape { kind: TaskKind::ResnetSoftmax, n: 6000, d: 32, reg: 1e-6, scale: 0.5, seed: 11 },
        Shape { kind: TaskKind::Softmax, n: 8192, d: 48, reg: 1e-6, scale: 4.0, seed: 11 },
        Shape { kind: TaskKind::Softmax, n: 4096, d: 32, reg: 1e-6, scale: 16.0, seed: 11 },
    ]
}

impl Shape {
    /// The task spec (seeded planted data).
    pub fn spec(&self) -> TaskSpec {
        TaskSpec {
            kind: self.kind,
            data: TaskData::Synthetic { n: self.n, d: self.d, seed: self.seed, scale: self.scale },
            reg_lambda: self.reg,
            copyright: None,
            target_score: 1e-12,
        }
    }

    /// `kind n x d scale S [seed N] [reg R]` (the seed only when it is not the default
    /// shapes' 11).
    pub fn name(&self) -> String {
        let reg = if self.reg > 0.0 { format!(" reg {:e}", self.reg) } else { String::new() };
        let seed = if self.seed != 11 { format!(" seed {}", self.seed) } else { String::new() };
        format!("{} {}x{} scale {}{seed}{reg}", self.kind.name(), self.n, self.d, self.scale)
    }

    /// Parses `n=ROWS,d=COLS[,scale=S][,seed=N][,reg=R][,kind=K]` (defaults: scale 0.5,
    /// seed 11, reg 0, kind softmax), the `--shape` of `bench mining`.
    ///
    /// # Errors
    /// A one-line message naming the malformed, unknown or missing key.
    pub fn parse(s: &str) -> Result<Shape, String> {
        let mut shape = Shape { kind: TaskKind::Softmax, n: 0, d: 0, reg: 0.0, scale: 0.5, seed: 11 };
        for (k, v) in crate::cli::compute::key_values(s)? {
            let bad = |what: &str| format!("{k}={v:?} is not {what}");
            match k {
                "n" => shape.n = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad("a positive integer"))?,
                "d" => shape.d = v.parse().ok().filter(|d| *d > 0).ok_or_else(|| bad("a positive integer"))?,
                "seed" => shape.seed = v.parse().map_err(|_| bad("an unsigned integer"))?,
                "scale" => {
                    shape.scale = v
                        .parse()
                        .ok()
                        .filter(|x: &f64| *x > 0.0 && x.is_finite())
                        .ok_or_else(|| bad("a positive number"))?
                }
                "reg" => {
                    shape.reg = v
                        .parse()
                        .ok()
                        .filter(|x: &f64| *x >= 0.0 && x.is_finite())
                        .ok_or_else(|| bad("a finite non-negative number"))?
                }
                "kind" => shape.kind = v.parse().map_err(|e: crate::pouw::task::TaskError| e.to_string())?,
                other => return Err(format!("unknown key {other:?} (expected n, d, scale, seed, reg, kind)")),
            }
        }
        if shape.n == 0 || shape.d == 0 {
            return Err(format!("{s:?} needs both n=ROWS and d=COLS"));
        }
        Ok(shape)
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

/// The start's score, the target ([`TARGET_FRACTION`] of the way back from the score a
/// full solve of `p` from `x0` reaches) and the solve's iterations and flops to it.
fn solve_target(
    p: &dyn Problem,
    x0: &Params,
    max_iter: usize,
    tol_grad: f64,
) -> anyhow::Result<(f64, f64, trajectory::SolveCost)> {
    let start = p.certify(x0)?.score;
    let opts = SolveOpts { max_iter, tol_grad, x0: None };
    let (_, best) = trajectory::solve_to(p, x0, f64::NEG_INFINITY, &opts)?;
    let best = p.certify(&best)?.score;
    let target = trajectory::relative_target(start, best, TARGET_FRACTION);
    let (solve, _) = trajectory::solve_to(p, x0, target, &opts)?;
    Ok((start, target, solve))
}

/// Measures one shape: the full solve (to find the best score), the target, the solve's
/// flops to it, and each rule's chained trajectory to it.
pub fn measure(shape: &Shape, rules: &[StepRule]) -> anyhow::Result<ShapeResult> {
    let problem = shape.spec().build_softmax()?;
    let x0: Params = problem.init();
    let (_, target, solve) = solve_target(&problem, &x0, 100, 1e-12)?;
    let mut out = Vec::new();
    for &rule in rules {
        let t = trajectory::chained(&problem, &x0, target, MAX_STEPS, |x, seed| {
            Ok(problem.step_with(rule, x, seed, Transcript::new(problem.kind()))?.0)
        })?;
        out.push((rule, t));
    }
    Ok(ShapeResult { target, solve, rules: out })
}

/// The end of a rule's row: nothing when it met the target, else where it stopped, so a
/// shape the step stalls on shows how close it came (a slow tail against a step that made
/// no progress at all).
fn reach_note(t: &Trajectory, target: f64) -> String {
    if t.reached {
        String::new()
    } else {
        format!(" not reached in {} steps: score {:.4e}, target {:.4e}", t.steps, t.score, target)
    }
}

/// Part 1: prints the table for `shapes`, each measured with `rules` (the consensus rule
/// first), and returns the worst consensus-rule ratio (infinite when a target was not
/// reached).
pub fn planted(shapes: &[Shape], rules: &[StepRule]) -> anyhow::Result<f64> {
    outln!("== chained ticket steps from x = 0 to the target vs the off-chain solve (counted flops, 1 WU = 1e6)");
    outln!("   target: {TARGET_FRACTION:e} of the way back from the solved score to the start's");
    outln!("  {:<44} {:<20} {:>6} {:>8} {:>10} {:>8}", "task", "step", "steps", "adopted", "WU", "vs solve");
    let mut worst = 0.0f64;
    for shape in shapes {
        let r = measure(shape, rules)?;
        let name = shape.name();
        outln!("  {name}: target score {:.3e}", r.target);
        outln!(
            "  {:<44} {:<20} {:>6} {:>8} {:>10.1} {:>8}",
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
            let reached = reach_note(t, r.target);
            outln!(
                "  {:<44} {:<20} {:>6} {:>8} {:>10.1} {:>8.2}{mark}{reached}",
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

/// What part 2 measured.
pub struct NetworkRun {
    /// Steps the miner computed on the task from submit to solved.
    pub task_steps: u64,
    /// Of those, the outputs its iterate adopted.
    pub task_adopted: u64,
    /// Of those, the ones improving it by the network's relative margin.
    pub task_useful: u64,
    /// Every step the miner computed meanwhile (the others stepped the public task while
    /// the solving update waited for a block).
    pub all_steps: u64,
    /// Blocks from the submission to the solve.
    pub blocks: u64,
    /// Seconds from the submission's block to the solve.
    pub seconds: f64,
    /// Seconds to compute the same number of chained steps without a node.
    pub offline_seconds: f64,
    /// Seconds of the off-chain `solve` (`compute run`) of the task.
    pub solve_seconds: f64,
}

/// Part 2: a one-node test network (real node thread, sled store, one miner thread)
/// funds itself, submits the README demo's task (`testnet::demo_spec`) with a bounty, and
/// mines it until solved.
pub fn network() -> anyhow::Result<NetworkRun> {
    let rt = super::runtime()?;
    let node = super::BenchNode::start_with(crate::chain::params::ChainParams::test())?;
    let run = rt.block_on(async {
        let n = &node.node;
        let payout = n.new_address("bench").await?;
        n.mining_start(1, Some(payout)).await?;
        let spec = demo_spec();
        let bounty = crate::chain::amount::Amount::from_units(crate::chain::amount::COIN);
        let deadline = Instant::now() + Duration::from_secs(300);
        // Coinbases mature after the network's maturity: mine until one is spendable.
        while n.balance().await?.spendable < bounty.checked_add(crate::chain::amount::Amount::from_units(1_000_000))? {
            if Instant::now() > deadline {
                anyhow::bail!("no mature coinbase within 300 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, task) = n.submit_task(spec, bounty, 1000, 2).await?;
        // The task counts from the block that includes it.
        let (submitted_at, since) = loop {
            if n.task(task).await.is_ok() {
                break (n.tip().await?.height, Instant::now());
            }
            if Instant::now() > deadline {
                anyhow::bail!("the task was not mined within 300 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let steps_before = n.mining_info().await?.steps;
        let solved_at = loop {
            if let crate::chain::state::TaskStatus::Solved { height, .. } = n.task(task).await?.status {
                break height;
            }
            if Instant::now() > deadline {
                anyhow::bail!("the task was not solved within 300 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let seconds = since.elapsed().as_secs_f64();
        let info = n.mining_stop().await?;
        let it = info.iterates.iter().find(|i| i.task == task).context("the miner stepped the task")?;
        Ok::<_, anyhow::Error>(NetworkRun {
            task_steps: it.steps,
            task_adopted: it.adopted,
            task_useful: it.useful,
            all_steps: info.steps - steps_before,
            blocks: solved_at - submitted_at,
            seconds,
            offline_seconds: 0.0,
            solve_seconds: 0.0,
        })
    });
    super::shut_down(rt, vec![node]);
    let mut run = run?;
    // The same chained steps without a node, and the off-chain solve of the same task.
    let problem = demo_spec().build_unchecked()?;
    let started = Instant::now();
    let x0 = problem.init();
    trajectory::chained(&problem, &x0, f64::NEG_INFINITY, run.task_steps, |x, seed| problem.step(x, seed))?;
    run.offline_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    problem.solve(&SolveOpts::default(), &mut |_| {})?;
    run.solve_seconds = started.elapsed().as_secs_f64();
    Ok(run)
}

/// Prints part 2 and returns the useful fraction.
fn print_network(r: &NetworkRun) -> anyhow::Result<f64> {
    let spec = demo_spec();
    let (n, d) = spec.data.shape();
    outln!(
        "== one-node test network, one miner thread: the README demo's {n}x{d} softmax task (target {:e}) with a bounty, from submit to solved",
        spec.target_score
    );
    let useful = r.task_useful as f64 / r.task_steps.max(1) as f64;
    outln!("  steps on the task            {:>8}", r.task_steps);
    outln!("  outputs adopted              {:>8}", r.task_adopted);
    outln!("  of which improving by 1e-6   {:>8}  (useful fraction {useful:.2})", r.task_useful);
    outln!(
        "  every step of the miner      {:>8}  (the rest stepped the public task while the solving update waited for a block)",
        r.all_steps
    );
    outln!("  blocks from submit to solved {:>8}", r.blocks);
    outln!(
        "  wall time {:.2} s; the same {} chained steps without a node {:.3} s ({:.1}x); the off-chain solve {:.3} s",
        r.seconds,
        r.task_steps,
        r.offline_seconds,
        r.seconds / r.offline_seconds.max(1e-9),
        r.solve_seconds
    );
    let held = useful >= 0.9;
    outln!(
        "  claim: at least 0.9 of the task's steps were useful: {useful:.2} -> {}",
        if held { "held" } else { "NOT held" }
    );
    Ok(useful)
}

/// A family of kinds whose planted comparison `bench mining --only` runs alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Family {
    /// softmax and resnet_softmax.
    Softmax,
    /// attention and attention_linear.
    Attention,
    /// ricl.
    Ricl,
}

/// Runs the benchmark: part 1 on the default shapes with every rule, or on `custom`
/// shapes with the consensus rule only (the measured alternatives are slower and their
/// comparison is the default shapes' job); part 2 unless `planted_only`, custom shapes
/// or `only` one family.
pub fn run(planted_only: bool, custom: Vec<Shape>, only: Option<Family>) -> anyhow::Result<()> {
    if let Some(family) = only {
        let ratio = match family {
            Family::Softmax if custom.is_empty() => planted(&shapes(), &StepRule::ALL)?,
            Family::Softmax => planted(&custom, &[TICKET_RULE])?,
            Family::Attention => attention()?,
            Family::Ricl => ricl(&RICL_SHAPES, &RiclStepRule::ALL)?,
        };
        outln!("wu-ratio {ratio:.2}");
        return Ok(());
    }
    let ratio = if custom.is_empty() { planted(&shapes(), &StepRule::ALL)? } else { planted(&custom, &[TICKET_RULE])? };
    if custom.is_empty() {
        attention()?;
        ricl(&RICL_SHAPES, &RiclStepRule::ALL)?;
    }
    if planted_only || !custom.is_empty() {
        outln!("wu-ratio {ratio:.2}");
        return Ok(());
    }
    let useful = print_network(&network()?)?;
    outln!("useful {useful:.2} wu-ratio {ratio:.2}");
    Ok(())
}

/// The planted attention shapes of part 1 (kernel, n, d, seed, scale).
const ATTENTION_SHAPES: [(Kernel, usize, usize, u64, f64); 5] = [
    (Kernel::Softmax, 128, 6, 5, 1.0),
    (Kernel::Softmax, 128, 6, 1, 0.5),
    (Kernel::Softmax, 64, 4, 3, 0.5),
    (Kernel::Linear, 128, 6, 1, 1.0),
    (Kernel::Linear, 1000, 4, 2, 1.0),
];

/// Part 1 for the attention kind: chained consensus tickets from `X = Y = 0` against the
/// off-chain joint solve to the same target. The loss is not convex, so a trajectory can
/// end in another local minimum than the solve's; such a row says where it stopped.
/// Prints `attention wu-ratio X.XX (reached k of m)`, the worst ratio of those reached,
/// and returns it (infinite when none was reached).
fn attention() -> anyhow::Result<f64> {
    outln!("== attention: chained consensus tickets from X = Y = 0 to the target vs the off-chain joint LM solve");
    outln!("  {:<36} {:>8} {:>8} {:>10} {:>8}", "task", "steps", "adopted", "WU", "vs solve");
    let (mut worst, mut reached) = (0.0f64, 0);
    for (kernel, n, d, seed, scale) in ATTENTION_SHAPES {
        let (p, _) = AttentionSynthetic { n, d, seed, scale }.problem(kernel, 0.0)?;
        let name = format!("{} {n}x{d} seed {seed} scale {scale}", p.kind());
        let x0 = p.init();
        let (_, target, solve) = solve_target(&p, &x0, 200, 1e-12)?;
        let t = trajectory::chained(&p, &x0, target, MAX_STEPS, |x, seed| p.step(x, seed))?;
        let ratio = t.flops as f64 / solve.flops.max(1) as f64;
        if t.reached {
            reached += 1;
            worst = worst.max(ratio);
        }
        outln!(
            "  {name:<36} {:>8} {:>8} {:>10.1} {:>8.2}{}",
            t.steps,
            t.adopted,
            t.flops as f64 / 1e6,
            ratio,
            reach_note(&t, target)
        );
        outln!(
            "  {:<36} {:>8} {:>8} {:>10.1} {:>8}",
            "  solve (joint LM)",
            solve.iterations,
            "-",
            solve.flops as f64 / 1e6,
            "1.00"
        );
    }
    outln!("attention wu-ratio {worst:.2} (reached {reached} of {})", ATTENTION_SHAPES.len());
    Ok(if reached == 0 { f64::INFINITY } else { worst })
}

/// A planted ricl shape of part 1: the §2.5 dataset (`m` prompt examples of width `d`,
/// `v` validation rows, the prompt's flip probability, the dataset seed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RiclShape {
    /// Prompt examples.
    pub m: usize,
    /// Input width.
    pub d: usize,
    /// Validation rows.
    pub v: usize,
    /// Flip probability of the prompt (0.9: the paper's biased prompt, 0: balanced).
    pub flip: f64,
    /// Dataset seed.
    pub seed: u64,
}

/// The planted ricl shapes: the paper's biased prompt on eight seeds, its balanced one on
/// two, and one with twice the paper's prompt (near the step-cost cap).
pub const RICL_SHAPES: [RiclShape; 11] = [
    RiclShape { m: 64, d: 4, v: 256, flip: 0.9, seed: 1 },
    RiclShape { m: 64, d: 4, v: 256, flip: 0.9, seed: 2 },
    RiclShape { m: 64, d: 4, v: 256, flip: 0.9, seed: 3 },
    RiclShape { m: 64, d: 4, v: 256, flip: 0.9, seed: 4 },
    RiclShape { m: 64, d: 4, v: 256, flip: 0.9, seed: 5 },
    RiclShape { m: 64, d: 4, v: 256, flip: 0.9, seed: 6 },
    RiclShape { m: 64, d: 4, v: 256, flip: 0.9, seed: 7 },
    RiclShape { m: 64, d: 4, v: 256, flip: 0.9, seed: 8 },
    RiclShape { m: 64, d: 4, v: 256, flip: 0.0, seed: 1 },
    RiclShape { m: 64, d: 4, v: 256, flip: 0.0, seed: 2 },
    RiclShape { m: 128, d: 8, v: 400, flip: 0.9, seed: 1 },
];

/// The ricl ridge of part 1 (the `compute run --kind ricl` default).
const RICL_BENCH_LAMBDA: f64 = 1e-4;

/// One ricl shape: the LM solve to its best score, the target, the solve's flops to it,
/// and each rule's chained trajectory from `θ = 0` to it.
pub fn measure_ricl(shape: &RiclShape, rules: &[RiclStepRule]) -> anyhow::Result<RiclResult> {
    let RiclShape { m, d, v, flip, seed } = *shape;
    let (p, _) = RiclSynthetic { m, d, v, test: 0, seed, flip }.problem(RICL_BENCH_LAMBDA)?;
    let x0 = p.init();
    let (start, target, solve) = solve_target(&p, &x0, 500, 1e-14)?;
    let mut rows = Vec::new();
    for &rule in rules {
        let mut end = x0.clone();
        let mut end_score = start;
        let t = trajectory::chained(&p, &x0, target, MAX_STEPS, |x, seed| {
            let out = p.step_with(rule, x, seed, Transcript::new(p.kind()))?.0;
            if out.objective < end_score {
                (end, end_score) = (out.params.clone(), out.objective);
            }
            Ok(out)
        })?;
        let g = p.eval(&end.0, Level::Gradient)?.grad.expect("gradient level");
        let end_pg = det::nrm2(&projected_gradient(&end.0, &g));
        rows.push(RiclRow { rule, t, end_pg });
    }
    Ok(RiclResult { target, solve, rows })
}

/// One rule's chained trajectory on a ricl shape.
pub struct RiclRow {
    /// The rule.
    pub rule: RiclStepRule,
    /// Its trajectory.
    pub t: Trajectory,
    /// The box's projected gradient norm where it ended: about zero when a trajectory
    /// that missed the target stopped in another local minimum than the solve's.
    pub end_pg: f64,
}

/// [`measure_ricl`]'s result.
pub struct RiclResult {
    /// The target score.
    pub target: f64,
    /// The LM solve's iterations and flops to it.
    pub solve: trajectory::SolveCost,
    /// Every rule's row.
    pub rows: Vec<RiclRow>,
}

/// Part 1 for the ricl kind: chained tickets of every rule from `θ = 0` against the
/// off-chain Levenberg–Marquardt solve to the same target. The objective is not convex,
/// so a trajectory can end in another local minimum; such a row says where it stopped.
/// Prints `ricl wu-ratio X.XX (reached k of m)`, the consensus rule's worst ratio over the
/// shapes it reached, and returns it (infinite when none was reached).
fn ricl(shapes: &[RiclShape], rules: &[RiclStepRule]) -> anyhow::Result<f64> {
    outln!(
        "== ricl: chained tickets from theta = 0 to the target vs the off-chain LM solve (ridge {RICL_BENCH_LAMBDA:e})"
    );
    outln!("  {:<40} {:<20} {:>6} {:>8} {:>10} {:>8}", "task", "step", "steps", "adopted", "WU", "vs solve");
    let (mut worst, mut reached) = (0.0f64, 0);
    for shape in shapes {
        let RiclResult { target, solve, rows } = measure_ricl(shape, rules)?;
        let name = format!("ricl m={} d={} v={} flip={} seed={}", shape.m, shape.d, shape.v, shape.flip, shape.seed);
        outln!("  {name}: target score {target:.6e}");
        outln!(
            "  {:<40} {:<20} {:>6} {:>8} {:>10.1} {:>8}",
            "",
            "solve (LM)",
            solve.iterations,
            "-",
            solve.flops as f64 / 1e6,
            "1.00"
        );
        for RiclRow { rule, t, end_pg } in &rows {
            let ratio = t.flops as f64 / solve.flops.max(1) as f64;
            let consensus = *rule == RICL_TICKET_RULE;
            let stationary = if t.reached { String::new() } else { format!(", projected |grad| {end_pg:.1e}") };
            if consensus && t.reached {
                reached += 1;
                worst = worst.max(ratio);
            }
            outln!(
                "  {:<40} {:<20} {:>6} {:>8} {:>10.1} {:>8.2}{}{}{stationary}",
                "",
                rule.name(),
                t.steps,
                t.adopted,
                t.flops as f64 / 1e6,
                ratio,
                if consensus { " (consensus)" } else { "" },
                reach_note(t, target),
            );
        }
    }
    let worst = if reached == 0 { f64::INFINITY } else { worst };
    outln!("ricl wu-ratio {worst:.2} (reached {reached} of {})", shapes.len());
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DESIGN.md §3.4's goal on tiny planted shapes (the benchmark's larger ones must
    /// hold 1.5x): the consensus step reaches the target within 2x the solve's flops, and
    /// the sampled rules it was chosen over need more. 2x, not 1.5x: these take 3–5 chained
    /// steps, so one ticket that draws a high damping level (one in 16 is damped,
    /// `DAMPED_ONE_IN`) costs a whole extra step, +25–33%.
    #[test]
    fn the_consensus_step_is_the_cheapest_rule_and_within_2x_of_the_solve_on_tiny_shapes() {
        for shape in [
            Shape { kind: TaskKind::Softmax, n: 1000, d: 12, reg: 0.0, scale: 0.5, seed: 11 },
            Shape { kind: TaskKind::ResnetSoftmax, n: 1000, d: 12, reg: 1e-6, scale: 2.0, seed: 11 },
        ] {
            let r = measure(&shape, &StepRule::ALL).unwrap();
            assert!(r.rules.iter().all(|(_, t)| t.reached), "{}: every rule reaches the target", shape.name());
            let ratio = r.ticket_ratio();
            assert!(ratio <= 2.0, "{}: {ratio:.2}x the solve", shape.name());
            let ticket = r.rules[0].1.flops;
            assert!(
                r.rules[1..].iter().all(|(_, t)| t.flops > ticket),
                "{}: the sampled rules cost more",
                shape.name()
            );
        }
    }

    /// The ricl part on the paper's first biased seed: the consensus ticket reaches the
    /// off-chain solve's target within its flops (0.87x when measured).
    #[test]
    fn chained_ricl_tickets_reach_the_solves_score_on_the_papers_first_seed() {
        let r = measure_ricl(&RICL_SHAPES[0], &[RICL_TICKET_RULE]).unwrap();
        let row = &r.rows[0];
        assert!(row.t.reached, "score {} target {}", row.t.score, r.target);
        assert!(row.t.flops <= r.solve.flops, "{} flops against the solve's {}", row.t.flops, r.solve.flops);
    }

    /// What the Newton candidates are for: on the paper's fourth biased seed Gauss–Newton
    /// alone converges linearly in the tail (7.97x the solve's flops when measured); with
    /// the exact Hessian's candidates the ticket reaches the target at 1.92x.
    #[test]
    fn newton_candidates_cut_the_ricl_tail_where_gauss_newton_alone_crawls() {
        use crate::compute::ricl::RICL_LM_CANDIDATES;
        let gn_only = RiclStepRule::LmPath { candidates: RICL_LM_CANDIDATES, log2_ratio: 6, newton: 0 };
        let r = measure_ricl(&RICL_SHAPES[3], &[RICL_TICKET_RULE, gn_only]).unwrap();
        let (ticket, gn) = (&r.rows[0].t, &r.rows[1].t);
        assert!(ticket.reached, "score {} target {}", ticket.score, r.target);
        let ratio = ticket.flops as f64 / r.solve.flops as f64;
        assert!(ratio <= 2.5, "the ticket takes {ratio:.2}x the solve's flops");
        assert!(2 * ticket.flops < gn.flops, "ticket {} flops, Gauss–Newton only {}", ticket.flops, gn.flops);
    }

    #[test]
    fn a_row_that_missed_its_target_says_how_close_it_came() {
        let shape = Shape::parse("n=600,d=8,seed=3").unwrap();
        let r = measure(&shape, &[TICKET_RULE]).unwrap();
        let t = &r.rules[0].1;
        assert_eq!(reach_note(t, r.target), "");
        // The same trajectory measured against a target below the optimum.
        let unreachable = r.target / 2.0;
        let note = reach_note(&Trajectory { reached: false, ..t.clone() }, unreachable);
        assert_eq!(
            note,
            format!(" not reached in {} steps: score {:.4e}, target {:.4e}", t.steps, t.score, unreachable)
        );
    }

    #[test]
    fn a_shape_parses_with_defaults_and_every_key() {
        let s = Shape::parse("n=8192,d=48").unwrap();
        assert_eq!(s, Shape { kind: TaskKind::Softmax, n: 8192, d: 48, reg: 0.0, scale: 0.5, seed: 11 });
        let s = Shape::parse("kind=resnet_softmax, n=100,d=4,scale=8,seed=21,reg=1e-6").unwrap();
        assert_eq!(s, Shape { kind: TaskKind::ResnetSoftmax, n: 100, d: 4, reg: 1e-6, scale: 8.0, seed: 21 });
        assert_eq!(s.name(), "resnet_softmax 100x4 scale 8 seed 21 reg 1e-6");
    }

    #[test]
    fn a_malformed_shape_is_a_one_line_error_naming_the_key() {
        for (arg, needle) in [
            ("n=10", "needs both n=ROWS and d=COLS"),
            ("n=10,d=0", "d=\"0\" is not a positive integer"),
            ("n=10,d=3,scale=-1", "scale=\"-1\" is not a positive number"),
            ("n=10,d=3,reg=nan", "reg=\"nan\" is not a finite non-negative number"),
            ("n=10,d=3,kind=svm", "svm"),
            ("n=10,d=3,rows=4", "unknown key \"rows\""),
            ("n=10,n=11,d=3", "n is given twice"),
        ] {
            let e = Shape::parse(arg).unwrap_err();
            assert!(e.contains(needle) && !e.contains('\n'), "{arg}: {e}");
        }
    }

    /// A custom shape is measured like a default one: the consensus rule's trajectory
    /// from the planted start reaches the solve's target on a small scale-0.5 task.
    #[test]
    fn a_custom_shape_is_measured_with_the_consensus_rule() {
        let shape = Shape::parse("n=600,d=8,seed=3").unwrap();
        let r = measure(&shape, &[TICKET_RULE]).unwrap();
        assert_eq!(r.rules.len(), 1);
        let (rule, t) = &r.rules[0];
        assert_eq!(*rule, TICKET_RULE);
        assert!(t.reached && t.score <= r.target, "{}: {} > {}", shape.name(), t.score, r.target);
        assert!(r.ticket_ratio() > 0.0);
    }

    /// Regression: at this saturated planted shape the undamped exact Gauss–Newton ticket
    /// was still far from the solve's score after 400 chained steps (8.2x its flops),
    /// because an iterate where the Gauss–Newton model is wrong drew the same failing
    /// step on every nonce. With one ticket in sixteen damped it reaches the target.
    #[test]
    fn a_saturated_task_that_stalled_the_undamped_ticket_is_solved_by_chained_tickets() {
        let shape = Shape::parse("n=8192,d=48,scale=8,seed=21,reg=1e-6").unwrap();
        let r = measure(&shape, &[TICKET_RULE]).unwrap();
        let t = &r.rules[0].1;
        assert!(t.reached, "{}: {} after {} steps, target {}", shape.name(), t.score, t.steps, r.target);
        assert!(r.ticket_ratio() <= 1.5, "{}: {:.2}x the solve", shape.name(), r.ticket_ratio());
    }
}
