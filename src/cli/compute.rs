//! `gradientcoin compute ...`: off-chain solving and kernel benchmarks.

use crate::compute::attention::{AttentionProblem, AttentionSolver, AttentionSynthetic, Kernel};
use crate::compute::copyright::{Copyright, CopyrightVariant, parse_rows};
use crate::compute::data::{self, Format};
use crate::compute::det::{Mat, bench};
use crate::compute::nmr::Phi;
use crate::compute::problem::{Certificate, Params, Problem, SolveInfo, SolveOpts, StopReason};
use crate::compute::ricl::{RiclProblem, RiclSolver, RiclSynthetic};
use crate::compute::softmax::{SoftmaxOptions, SoftmaxProblem, Synthetic, uniform_reg};
use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `compute` subcommands.
#[derive(Debug, Subcommand)]
pub enum ComputeCommand {
    /// Solve a task locally to a tolerance and print its certificate.
    Run(RunArgs),
    /// Benchmark the deterministic kernels against a reference measured in the same run.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Re-run a paper's experiment and check its claim (`--list` for the papers).
    Reproduce(super::reproduce::ReproduceArgs),
}

/// `compute bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// GFLOP/s of det gemm on every code path this CPU has, against ndarray's `dot`.
    Gemm {
        /// Square sizes to measure, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "128,256,512")]
        sizes: Vec<usize>,
        /// Interleaved rounds per size (best and median are reported).
        #[arg(long, default_value_t = 20)]
        rounds: usize,
    },
}

/// A task kind `compute run` can solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Softmax regression (arXiv 2310.11685 / 2308.12247).
    Softmax,
    /// ResNet + softmax regression, φ(z) = e^z + z (arXiv 2309.13482).
    #[value(name = "resnet_softmax")]
    ResnetSoftmax,
    /// Linear-attention baseline φ = elu + 1 (arXiv 2310.11685).
    #[value(name = "linear_elu")]
    LinearElu,
    /// One-layer attention regression ||S(X) A3 Y − B||² over X, Y (arXiv 2309.07418);
    /// `--kernel linear` for linear attention (arXiv 2310.11685).
    Attention,
    /// Reweighted in-context learning: the example weights of a frozen attention predictor
    /// fitted on a validation set (RICL, LARICL; arXiv 2310.03331).
    Ricl,
}

impl KindArg {
    fn phi(self) -> Phi {
        match self {
            KindArg::Softmax | KindArg::Attention | KindArg::Ricl => Phi::Softmax,
            KindArg::ResnetSoftmax => Phi::ResnetSoftmax,
            KindArg::LinearElu => Phi::EluPlusOne,
        }
    }
}

/// The attention kernel of `--kernel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KernelArg {
    /// Row-softmax attention.
    Softmax,
    /// Normalised linear attention, ψ = elu + 1.
    Linear,
}

impl From<KernelArg> for Kernel {
    fn from(k: KernelArg) -> Kernel {
        match k {
            KernelArg::Softmax => Kernel::Softmax,
            KernelArg::Linear => Kernel::Linear,
        }
    }
}

/// The off-chain solver of `--solver` (attention and ricl).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SolverArg {
    /// Levenberg–Marquardt: attention jointly over (X, Y); ricl on the Gauss–Newton
    /// system over the example log-weights.
    #[value(name = "joint-lm", alias = "lm")]
    JointLm,
    /// Attention: the paper's alternating algorithm (exact Y least squares, Newton in X).
    Alternating,
    /// Ricl: the paper's gradient descent with Armijo backtracking.
    Gd,
    /// Ricl: LARICL, the closed-form linear approximation (one linear solve).
    Laricl,
}

/// The parsed `--synthetic` value: every key any kind takes, checked for its type; each
/// kind then takes its own keys ([`SyntheticArg::softmax`], [`SyntheticArg::ricl`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyntheticArg {
    n: Option<usize>,
    d: Option<usize>,
    seed: Option<u64>,
    scale: Option<f64>,
    m: Option<usize>,
    v: Option<usize>,
    flip: Option<f64>,
    test: Option<usize>,
}

impl SyntheticArg {
    /// The softmax-family or attention dataset (keys n, d, seed, scale over `default`).
    pub fn softmax(&self, default: Synthetic) -> anyhow::Result<Synthetic> {
        if self.m.is_some() || self.v.is_some() || self.flip.is_some() || self.test.is_some() {
            bail!("--synthetic keys m, v, flip and test are for ricl; this kind takes n, d, seed, scale");
        }
        Ok(Synthetic {
            n: self.n.unwrap_or(default.n),
            d: self.d.unwrap_or(default.d),
            seed: self.seed.unwrap_or(default.seed),
            scale: self.scale.unwrap_or(default.scale),
        })
    }

    /// The ricl dataset (keys m, d, v, seed, flip, test over the §2.5 defaults: m=64, d=4,
    /// v=256, seed=1, flip=0.9, test=2000).
    pub fn ricl(&self) -> anyhow::Result<RiclSynthetic> {
        if self.n.is_some() || self.scale.is_some() {
            bail!("--synthetic keys n and scale are not ricl's; ricl takes m, d, v, seed, flip, test");
        }
        let p = RiclSynthetic::paper(self.seed.unwrap_or(1));
        Ok(RiclSynthetic {
            m: self.m.unwrap_or(p.m),
            d: self.d.unwrap_or(p.d),
            v: self.v.unwrap_or(p.v),
            test: self.test.unwrap_or(p.test),
            seed: p.seed,
            flip: self.flip.unwrap_or(p.flip),
        })
    }
}

/// Memory `compute run` may plan to use when `/proc/meminfo` cannot be read: 64 GiB.
const FALLBACK_MEMORY_BYTES: u64 = 64 << 30;

/// The memory this machine has available now (`MemAvailable` in `/proc/meminfo`), or
/// [`FALLBACK_MEMORY_BYTES`] where that is not readable.
fn available_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(FALLBACK_MEMORY_BYTES, |kib| kib.saturating_mul(1024))
}

/// Refuses a problem whose data and solver matrices would not fit in memory, before any of
/// it is allocated (an allocation that fails aborts the process). `values` is an estimate
/// of the `f64`s the data and the solve hold at once, computed without overflow.
fn check_fits(what: &str, values: u128) -> anyhow::Result<()> {
    let bytes = values.saturating_mul(8);
    let available = available_memory();
    if bytes > u128::from(available) {
        let gib = |b: u128| b as f64 / f64::from(1u32 << 30);
        bail!(
            "{what} needs about {:.1} GiB of memory (the data and the solver's matrices); this machine has {:.1} GiB available",
            gib(bytes),
            gib(u128::from(available))
        );
    }
    Ok(())
}

/// `f64`s a softmax-family solve holds: the data and its row-scaled copies (`n x d`), the
/// Hessian, its factor and the step's `d x d` work, the row vectors.
fn softmax_values(n: usize, d: usize) -> u128 {
    let (n, d) = (n as u128, d as u128);
    4 * n * d + 6 * d * d + 8 * n
}

/// `f64`s an attention solve holds: the three `n x d` matrices and their products, the
/// softmax kernel's `n x n` scores, the `2d² x 2d²` normal matrix and its factor.
fn attention_values(n: usize, d: usize) -> u128 {
    let (n, d) = (n as u128, d as u128);
    let p = 2 * d * d;
    6 * n * d + 4 * n * n + 4 * p * p
}

/// `f64`s a ricl solve holds: the inputs, the `V x m` scores, exponentials, weights and
/// Jacobian (and their copies), the `m x m` matrices and factors.
fn ricl_values(m: usize, d: usize, v: usize, test: usize) -> u128 {
    let (m, d, v, t) = (m as u128, d as u128, v as u128, test as u128);
    (m + v + t) * (d + 1) + d * d + 8 * v * m + t * m + 8 * m * m
}

/// Arguments of `compute run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Task kind.
    #[arg(long, value_enum, default_value_t = KindArg::Softmax)]
    kind: KindArg,
    /// Seeded synthetic planted data: n=ROWS,d=COLS,seed=N[,scale=S] (the default when no
    /// data files are given is n=2000,d=32,seed=1; for attention n=128,d=6,seed=1,scale=1);
    /// for ricl m=EXAMPLES,d=WIDTH,v=VALIDATION,seed=N,flip=P,test=T (default
    /// m=64,d=4,v=256,seed=1,flip=0.9,test=2000: the biased prompt; flip=0 is balanced).
    #[arg(long, value_parser = parse_synthetic_arg, conflicts_with_all = ["data", "target", "a1", "prompt"])]
    synthetic: Option<SyntheticArg>,
    /// Attention: the kernel.
    #[arg(long, value_enum, default_value_t = KernelArg::Softmax)]
    kernel: KernelArg,
    /// Attention: the off-chain solver.
    #[arg(long, value_enum, default_value_t = SolverArg::JointLm)]
    solver: SolverArg,
    #[command(flatten)]
    files: AttentionFiles,
    #[command(flatten)]
    ricl: RiclFiles,
    /// Ricl: a labelled test set (T x (d+1), inputs then label) to report the test MSE on.
    #[arg(long, requires = "prompt")]
    test: Option<PathBuf>,
    /// Data matrix A (n x d) as .csv or .npy.
    #[arg(long, requires = "target")]
    data: Option<PathBuf>,
    /// Target vector b (n values: one column or one row) as .csv or .npy.
    #[arg(long, requires = "data")]
    target: Option<PathBuf>,
    /// Copyright option: rows=SPEC,gamma=G[,variant=all|unprotected|per-block]. SPEC is a
    /// count N (N rows picked by a seeded shuffle), a range A..B, or indices joined by '+'.
    #[arg(long, value_parser = parse_copyright_arg)]
    copyright: Option<CopyrightArg>,
    /// Regulariser strength λ: every row gets w² = λ/n² (attention: the ridge ρ on
    /// ||X||² + ||Y||²; ricl: (λ/2)||θ||² on the log-weights). Default 1e-8 (ricl 1e-4).
    #[arg(long)]
    reg: Option<f64>,
    /// Iteration cap.
    #[arg(long, default_value_t = 100)]
    max_iter: usize,
    /// Gradient tolerance, relative to |∇L(x0)|.
    #[arg(long, default_value_t = 1e-10)]
    tol: f64,
    /// After solving, predict on this matrix (.csv or .npy, d columns) and print f (for
    /// attention: the output row of each query token row).
    #[arg(long)]
    predict: Option<PathBuf>,
    /// Write the solution vector to this file (.csv or .npy).
    #[arg(long)]
    save_params: Option<PathBuf>,
    /// Start the solver from this parameter vector (.csv or .npy, one value per
    /// parameter: d for the softmax family, vec(X) then vec(Y) for attention) instead of
    /// the task's initial point.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Print one JSON object instead of human output.
    #[arg(long)]
    json: bool,
}

/// The four matrices of an attention task, as files (`compute run`, `task submit`).
#[derive(Debug, Args)]
pub struct AttentionFiles {
    /// Attention: the queries A1 (n x d, .csv or .npy); with --a2, --a3 and --b.
    #[arg(long, requires_all = ["a2", "a3", "b"], conflicts_with_all = ["synthetic", "data"])]
    a1: Option<PathBuf>,
    /// Attention: the keys A2 (n x d).
    #[arg(long, requires = "a1")]
    a2: Option<PathBuf>,
    /// Attention: the values A3 (n x d).
    #[arg(long, requires = "a1")]
    a3: Option<PathBuf>,
    /// Attention: the targets B (n x d).
    #[arg(long, requires = "a1")]
    b: Option<PathBuf>,
}

impl AttentionFiles {
    /// Whether the files were given.
    pub fn given(&self) -> bool {
        self.a1.is_some()
    }

    /// Reads `[A1, A2, A3, B]` and checks they have one shape (`None` when not given),
    /// with the four paths joined for messages.
    pub fn read(&self) -> anyhow::Result<Option<([Mat; 4], String)>> {
        let (Some(p1), Some(p2), Some(p3), Some(pb)) = (&self.a1, &self.a2, &self.a3, &self.b) else {
            return Ok(None);
        };
        let paths = [p1, p2, p3, pb];
        let m: Vec<Mat> = paths.iter().map(|p| read_matrix(p)).collect::<anyhow::Result<_>>()?;
        let (n, d) = (m[0].rows(), m[0].cols());
        for (mat, path) in m.iter().zip(paths).skip(1) {
            if (mat.rows(), mat.cols()) != (n, d) {
                bail!("{} is {}x{} but {} is {n}x{d}", path.display(), mat.rows(), mat.cols(), p1.display());
            }
        }
        let names = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ");
        let four: [Mat; 4] = m.try_into().map_err(|_| anyhow::anyhow!("four matrices"))?;
        Ok(Some((four, names)))
    }
}

/// The data of a ricl task, as files (`compute run`, `task submit`).
#[derive(Debug, Args)]
pub struct RiclFiles {
    /// Ricl: the prompt examples, m x (d+1) (.csv or .npy): the inputs, then the label.
    #[arg(long, requires = "validation", conflicts_with_all = ["data", "a1"])]
    prompt: Option<PathBuf>,
    /// Ricl: the unbiased validation set, V x (d+1): the inputs, then the label.
    #[arg(long, requires = "prompt")]
    validation: Option<PathBuf>,
    /// Ricl: the frozen attention matrix W (d x d; default the identity).
    #[arg(long, requires = "prompt")]
    w: Option<PathBuf>,
}

/// A ricl task's data read from files.
pub struct RiclFileData {
    /// Prompt inputs (m x d).
    pub xp: Mat,
    /// Prompt labels.
    pub yp: Vec<f64>,
    /// `W` (d x d).
    pub w: Mat,
    /// Validation inputs (V x d).
    pub q: Mat,
    /// Validation labels.
    pub yv: Vec<f64>,
    /// The paths, for messages.
    pub source: String,
}

/// Splits a labelled file (rows of inputs then one label) into inputs and labels.
pub(super) fn read_labelled(path: &Path) -> anyhow::Result<(Mat, Vec<f64>)> {
    let m = read_matrix(path)?;
    if m.cols() < 2 {
        bail!("{} has {} column(s): a labelled set needs the inputs and then the label", path.display(), m.cols());
    }
    let d = m.cols() - 1;
    let x = Mat::from_fn(m.rows(), d, |i, j| m.get(i, j));
    let y = (0..m.rows()).map(|i| m.get(i, d)).collect();
    Ok((x, y))
}

impl RiclFiles {
    /// Whether the files were given.
    pub fn given(&self) -> bool {
        self.prompt.is_some()
    }

    /// Reads the prompt, the validation set and `W` (`None` when not given), checking
    /// that their widths agree.
    pub fn read(&self) -> anyhow::Result<Option<RiclFileData>> {
        let (Some(pp), Some(pv)) = (&self.prompt, &self.validation) else {
            return Ok(None);
        };
        let (xp, yp) = read_labelled(pp)?;
        let (q, yv) = read_labelled(pv)?;
        let d = xp.cols();
        if q.cols() != d {
            bail!("{} has {} input columns but {} has {d}", pv.display(), q.cols(), pp.display());
        }
        let w = match &self.w {
            Some(path) => {
                let w = read_matrix(path)?;
                if (w.rows(), w.cols()) != (d, d) {
                    bail!("{} is {}x{}: W must be {d}x{d} for inputs of width {d}", path.display(), w.rows(), w.cols());
                }
                w
            }
            None => Mat::identity(d),
        };
        let mut source = format!("prompt {} + validation {}", pp.display(), pv.display());
        if let Some(path) = &self.w {
            source.push_str(&format!(" + W {}", path.display()));
        }
        Ok(Some(RiclFileData { xp, yp, w, q, yv, source }))
    }
}

/// The parsed `--copyright` value.
#[derive(Debug, Clone)]
pub struct CopyrightArg {
    rows: RowsArg,
    gamma: f64,
    variant: CopyrightVariant,
}

#[derive(Debug, Clone)]
enum RowsArg {
    Count(usize),
    Explicit(Vec<usize>),
}

/// Splits `k=v,k=v` into pairs, rejecting repeats and malformed items.
pub(super) fn key_values(s: &str) -> Result<Vec<(&str, &str)>, String> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (k, v) = item.split_once('=').ok_or_else(|| format!("{item:?} is not key=value"))?;
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(format!("{k} is given twice"));
        }
        out.push((k.trim(), v.trim()));
    }
    Ok(out)
}

/// Parses `--synthetic`: every key of every kind, each value checked for its type.
pub(super) fn parse_synthetic_arg(s: &str) -> Result<SyntheticArg, String> {
    let mut a = SyntheticArg::default();
    for (k, v) in key_values(s)? {
        let bad = |what: &str| format!("{k}={v:?} is not {what}");
        let positive = || v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| bad("a positive integer"));
        match k {
            "n" => a.n = Some(positive()?),
            "d" => a.d = Some(positive()?),
            "m" => a.m = Some(positive()?),
            "v" => a.v = Some(positive()?),
            "test" => a.test = Some(v.parse().map_err(|_| bad("a non-negative integer"))?),
            "seed" => a.seed = Some(v.parse().map_err(|_| bad("an unsigned integer"))?),
            "scale" => {
                a.scale = Some(
                    v.parse()
                        .ok()
                        .filter(|s: &f64| *s > 0.0 && s.is_finite())
                        .ok_or_else(|| bad("a positive number"))?,
                )
            }
            "flip" => {
                a.flip = Some(
                    v.parse()
                        .ok()
                        .filter(|p: &f64| (0.0..=1.0).contains(p))
                        .ok_or_else(|| bad("a probability in [0, 1]"))?,
                )
            }
            other => {
                return Err(format!(
                    "unknown key {other:?} (expected n, d, seed, scale; for ricl m, d, v, seed, flip, test)"
                ));
            }
        }
    }
    Ok(a)
}

fn parse_copyright_arg(s: &str) -> Result<CopyrightArg, String> {
    let (mut rows, mut gamma, mut variant) = (None, None, CopyrightVariant::All);
    for (k, v) in key_values(s)? {
        match k {
            "rows" => {
                rows = Some(match v.parse::<usize>() {
                    Ok(0) => return Err("rows=0 protects nothing".into()),
                    Ok(n) => RowsArg::Count(n),
                    Err(_) => RowsArg::Explicit(parse_rows(v).map_err(|e| e.to_string())?),
                })
            }
            "gamma" => {
                gamma = Some(
                    v.parse::<f64>()
                        .ok()
                        .filter(|g| *g >= 0.0 && g.is_finite())
                        .ok_or_else(|| format!("gamma={v:?} is not a finite non-negative number"))?,
                )
            }
            "variant" => variant = CopyrightVariant::parse(v).map_err(|e| e.to_string())?,
            other => return Err(format!("unknown key {other:?} (expected rows, gamma, variant)")),
        }
    }
    Ok(CopyrightArg {
        rows: rows.ok_or("rows=... is required")?,
        gamma: gamma.ok_or("gamma=... is required")?,
        variant,
    })
}

/// Runs a `compute` subcommand.
pub fn run(cmd: ComputeCommand) -> anyhow::Result<()> {
    match cmd {
        ComputeCommand::Run(args) => run_solve(args),
        ComputeCommand::Reproduce(args) => super::reproduce::run(args),
        ComputeCommand::Bench(BenchCommand::Gemm { sizes, rounds }) => {
            if sizes.is_empty() || sizes.contains(&0) || rounds == 0 {
                bail!("--sizes must be positive integers and --rounds at least 1");
            }
            let rows = bench::gemm_bench(&sizes, rounds);
            out!("{}", bench::format_gemm_bench(&rows));
            if !bench::det_paths_agree(&rows) {
                bail!("the det gemm paths gave different bits: a consensus bug");
            }
            Ok(())
        }
    }
}

/// Reads a matrix file (.csv or .npy), naming the file in every error.
pub(super) fn read_matrix(path: &Path) -> anyhow::Result<Mat> {
    let format = Format::from_path(path).with_context(|| path.display().to_string())?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    data::parse_matrix(format, &bytes).with_context(|| path.display().to_string())
}

/// A built `compute run` task: the problem, its token or data rows, where the data came
/// from, the planted solution if known.
struct Built {
    problem: Task,
    rows: usize,
    source: String,
    planted: Option<Vec<f64>>,
}

/// The problem of a `compute run`.
enum Task {
    Softmax(SoftmaxProblem),
    /// An attention task and the solver asked for.
    Attention(AttentionProblem, AttentionSolver),
    /// A ricl task, the solver asked for (`None`: LARICL), and a labelled test set.
    Ricl(RiclProblem, Option<RiclSolver>, Option<(Mat, Vec<f64>)>),
}

/// `--reg` when not given (ricl: [`DEFAULT_RICL_REG`]).
const DEFAULT_REG: f64 = 1e-8;
/// `--reg` of a ricl task when not given (SOLVERS.md §2.5: λ = 1e-4).
pub(super) const DEFAULT_RICL_REG: f64 = 1e-4;

/// Builds a ricl task from the arguments.
fn build_ricl(args: &RunArgs) -> anyhow::Result<Built> {
    if args.copyright.is_some() || args.data.is_some() || args.files.given() {
        bail!("ricl takes --prompt and --validation (or --synthetic m=..,d=..,v=..), not --data/--a1/--copyright");
    }
    let reg = args.reg.unwrap_or(DEFAULT_RICL_REG);
    if !(reg >= 0.0) || !reg.is_finite() {
        bail!("--reg {reg} is not a finite non-negative number");
    }
    let solver = match args.solver {
        SolverArg::JointLm => Some(RiclSolver::Lm),
        SolverArg::Gd => Some(RiclSolver::Gradient),
        SolverArg::Laricl => None,
        SolverArg::Alternating => bail!("--solver alternating is attention's; ricl takes joint-lm (lm), gd or laricl"),
    };
    let (problem, source, test) = match args.ricl.read()? {
        Some(f) => {
            let p = RiclProblem::new(f.xp, f.yp, f.w, f.q, f.yv, reg).context("invalid task")?;
            let test = match &args.test {
                Some(path) => {
                    let (x, y) = read_labelled(path)?;
                    if x.cols() != p.d() {
                        bail!("{} has {} input columns, the prompt has {}", path.display(), x.cols(), p.d());
                    }
                    Some((x, y))
                }
                None => None,
            };
            (p, f.source, test)
        }
        None => {
            let syn = args.synthetic.clone().unwrap_or_default().ricl()?;
            let src = format!(
                "synthetic m={},d={},v={},seed={},flip={},test={}",
                syn.m, syn.d, syn.v, syn.seed, syn.flip, syn.test
            );
            check_fits(&src, ricl_values(syn.m, syn.d, syn.v, syn.test))?;
            let (p, data) = syn.problem(reg).context("synthetic data")?;
            (p, src, (syn.test > 0).then_some((data.xt, data.yt)))
        }
    };
    let rows = problem.m();
    Ok(Built { problem: Task::Ricl(problem, solver, test), rows, source, planted: None })
}

/// Builds an attention task from the arguments.
fn build_attention(args: &RunArgs) -> anyhow::Result<Built> {
    if args.copyright.is_some() || args.data.is_some() {
        bail!("--copyright and --data/--target are for the softmax family; attention takes --a1 --a2 --a3 --b");
    }
    let reg = args.reg.unwrap_or(DEFAULT_REG);
    if !(reg >= 0.0) || !reg.is_finite() {
        bail!("--reg {reg} is not a finite non-negative number");
    }
    if !matches!(args.solver, SolverArg::JointLm | SolverArg::Alternating) {
        bail!("--solver {:?} is a ricl solver; attention takes joint-lm or alternating", args.solver);
    }
    let kernel: Kernel = args.kernel.into();
    let (a1, a2, a3, b, source, planted) = match args.files.read()? {
        Some(([a1, a2, a3, b], src)) => (a1, a2, a3, b, src, None),
        _ => {
            let s =
                args.synthetic.clone().unwrap_or_default().softmax(Synthetic { n: 128, d: 6, seed: 1, scale: 1.0 })?;
            let syn = AttentionSynthetic { n: s.n, d: s.d, seed: s.seed, scale: s.scale };
            let src = format!("synthetic n={},d={},seed={},scale={}", s.n, s.d, s.seed, s.scale);
            check_fits(&src, attention_values(s.n, s.d))?;
            let p = syn.generate(kernel).context("synthetic data")?;
            (p.a1, p.a2, p.a3, p.b, src, Some(p.x_star))
        }
    };
    let rows = a1.rows();
    check_fits(&source, attention_values(rows, a1.cols()))?;
    let problem = AttentionProblem::new(kernel, a1, a2, a3, b, reg).context("invalid task")?;
    let solver = match args.solver {
        SolverArg::Alternating => AttentionSolver::Alternating,
        _ => AttentionSolver::JointLm,
    };
    Ok(Built { problem: Task::Attention(problem, solver), rows, source, planted })
}

/// Builds the task from the arguments: the data, its source description, and the problem.
fn build(args: &RunArgs) -> anyhow::Result<Built> {
    match args.kind {
        KindArg::Attention => return build_attention(args),
        KindArg::Ricl => return build_ricl(args),
        _ => {}
    }
    if args.ricl.given() {
        bail!("--prompt/--validation/--w are ricl data; the softmax family takes --data and --target");
    }
    if !matches!(args.solver, SolverArg::JointLm) {
        bail!("--solver is for attention and ricl; the softmax family has one solver");
    }
    if args.files.given() {
        bail!("--a1/--a2/--a3/--b are attention data; the softmax family takes --data and --target");
    }
    let phi = args.kind.phi();
    let (a, b, source, planted, syn) = match (&args.data, &args.target) {
        (Some(a_path), Some(b_path)) => {
            let a = read_matrix(a_path)?;
            let b = data::to_vector(read_matrix(b_path)?).with_context(|| b_path.display().to_string())?;
            if b.len() != a.rows() {
                bail!("{} has {} values but {} has {} rows", b_path.display(), b.len(), a_path.display(), a.rows());
            }
            let source = format!("{} + {}", a_path.display(), b_path.display());
            check_fits(&source, softmax_values(a.rows(), a.cols()))?;
            (a, b, source, None, None)
        }
        _ => {
            let syn = args.synthetic.clone().unwrap_or_default().softmax(Synthetic {
                n: 2000,
                d: 32,
                seed: 1,
                scale: 0.5,
            })?;
            let src = format!("synthetic n={},d={},seed={},scale={}", syn.n, syn.d, syn.seed, syn.scale);
            check_fits(&src, softmax_values(syn.n, syn.d))?;
            let (a, b, xs) = syn.generate(phi).context("synthetic data")?;
            (a, b, src, Some(xs), Some(syn))
        }
    };
    let reg = args.reg.unwrap_or(DEFAULT_REG);
    if !(reg >= 0.0) || !reg.is_finite() {
        bail!("--reg {reg} is not a finite non-negative number");
    }
    let n = a.rows();
    let copyright = match &args.copyright {
        None => None,
        Some(c) => {
            let rows = match &c.rows {
                RowsArg::Explicit(r) => r.clone(),
                RowsArg::Count(k) => {
                    if *k >= n {
                        bail!("--copyright rows={k} must be fewer than the {n} data rows");
                    }
                    // File data has no seed of its own: shuffle with dataset seed 0.
                    let s = syn.unwrap_or(Synthetic { n, d: a.cols(), seed: 0, scale: 1.0 });
                    Synthetic { n, ..s }.protected_rows(*k)
                }
            };
            Some(Copyright { rows, gamma: c.gamma, variant: c.variant })
        }
    };
    let w2 = if reg > 0.0 { Some(uniform_reg(reg, n)) } else { None };
    let problem =
        SoftmaxProblem::new(phi, a, b, SoftmaxOptions { w2, mask: None, copyright }).context("invalid task")?;
    Ok(Built { problem: Task::Softmax(problem), rows: n, source, planted })
}

fn run_solve(args: RunArgs) -> anyhow::Result<()> {
    if args.max_iter == 0 {
        bail!("--max-iter must be at least 1");
    }
    if !(args.tol > 0.0) || !args.tol.is_finite() {
        bail!("--tol {} is not a positive number", args.tol);
    }
    let Built { problem: task, rows, source, planted } = build(&args)?;
    let (problem, width): (&dyn Problem, Option<usize>) = match &task {
        Task::Softmax(p) => (p, None),
        Task::Attention(p, _) => (p, Some(p.d())),
        Task::Ricl(p, _, _) => (p, None),
    };
    let predict_input = args.predict.as_deref().map(read_matrix).transpose()?;
    let pb = if args.json { ProgressBar::hidden() } else { ProgressBar::new(args.max_iter as u64) };
    pb.set_style(
        ProgressStyle::with_template("{spinner} iteration {pos}/{len} {wide_msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let x0 = match &args.init {
        Some(path) => {
            let v = data::to_vector(read_matrix(path)?).with_context(|| path.display().to_string())?;
            if v.len() != problem.dim() {
                bail!("{} has {} values, the task has {} parameters", path.display(), v.len(), problem.dim());
            }
            Params(v)
        }
        None => problem.init(),
    };
    let cert0 = problem.certify(&x0).context("initial point")?;
    if !args.json {
        outln!(
            "{} on {} ({} x {}), {} mWU per mining step",
            problem.kind(),
            source,
            rows,
            problem.dim(),
            problem.cost()
        );
        outln!("iter {:>4}  loss {:.6e}  |grad| {:.3e}", 0, cert0.loss, cert0.grad_norm);
    }
    let json = args.json;
    let started = Instant::now();
    let opts = SolveOpts { max_iter: args.max_iter, tol_grad: args.tol, x0: Some(x0) };
    let mut observe = |r: &crate::compute::problem::IterReport| {
        pb.set_position(r.iter as u64);
        pb.set_message(format!("loss {:.6e} |grad| {:.3e}", r.loss, r.grad_norm));
        if !json {
            let line = format!(
                "iter {:>4}  loss {:.6e}  |grad| {:.3e}  step {:.3e}  mu {:.1e}",
                r.iter, r.loss, r.grad_norm, r.step_len, r.mu
            );
            // indicatif swallows println on a hidden bar (output not a terminal).
            if pb.is_hidden() {
                let _ = writeln!(std::io::stdout(), "{line}");
            } else {
                pb.println(line)
            }
        }
    };
    let solved = match &task {
        Task::Attention(p, solver) => p.solve_with(*solver, &opts, &mut observe),
        Task::Softmax(p) => p.solve(&opts, &mut observe),
        Task::Ricl(p, Some(solver), _) => p.solve_with(*solver, &opts, &mut observe),
        Task::Ricl(p, None, _) => laricl_solve(p),
    };
    let (x, info) = solved.context("solve failed")?;
    pb.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let cert = problem.certify(&x).context("certificate")?;
    // Ricl: the test error of the fitted weights and of plain ICL (uniform weights).
    let test_mse = match &task {
        Task::Ricl(p, _, Some((xt, yt))) => {
            Some((p.mse(&x.0, xt, yt).context("test set")?, p.mse(&vec![0.0; p.m()], xt, yt).context("test set")?))
        }
        _ => None,
    };
    let prediction = match &predict_input {
        Some(m) => Some(problem.predict(&x, m).context("predict")?),
        None => None,
    };
    if let Some(path) = &args.save_params {
        let m = Mat::from_vec(x.len(), 1, x.0.clone()).context("params")?;
        let bytes = match Format::from_path(path)? {
            Format::Csv => data::write_csv(&m).into_bytes(),
            Format::Npy => data::write_npy(&m),
        };
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        let figures: serde_json::Map<String, serde_json::Value> =
            cert.figures.iter().map(|f| (f.name.clone(), json!(f.value))).collect();
        // ||x − x*|| / ||x*|| when the data is planted.
        let x_err_rel = planted.as_deref().map(|xs| {
            let err: f64 = x.0.iter().zip(xs).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
            err / xs.iter().map(|v| v * v).sum::<f64>().sqrt().max(f64::MIN_POSITIVE)
        });
        let out = json!({
            "kind": problem.kind(),
            "source": source,
            "n": rows,
            "d": problem.dim(),
            "cost_mwu": problem.cost(),
            "iterations": info.iterations,
            "converged": info.converged,
            "reason": info.reason,
            "loss": cert.loss,
            "loss_data": cert.figure("loss_data"),
            "loss_reg": cert.figure("loss_reg"),
            "x_err_rel": x_err_rel,
            "grad_norm": cert.grad_norm,
            "grad_norm0": info.grad_norm0,
            "score": cert.score,
            "figures": figures,
            "max_mu": info.max_mu,
            "seconds": seconds,
            "params": x.0,
            "params_hash": x.hash().to_string(),
            "history": info.history,
            "prediction": prediction,
            "test_mse": test_mse.map(|t| t.0),
            "test_mse_plain_icl": test_mse.map(|t| t.1),
        });
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_human(problem, &x, &cert, &info, seconds, planted.as_deref(), prediction.as_deref(), width)?;
        if let Some((t, plain)) = test_mse {
            outln!("test MSE   {t:.6e}  (plain ICL, uniform weights: {plain:.6e})");
        }
        if matches!(task, Task::Ricl(..)) {
            outln!("(ricl parameters are log-weights θ_i = ln w_i of the prompt examples, in prompt order)");
        }
    }
    Ok(())
}

/// LARICL as a one-iteration solve (its report and stopping reason).
fn laricl_solve(p: &RiclProblem) -> Result<(Params, SolveInfo), crate::compute::problem::ProblemError> {
    let g0 = p.certify(&p.init())?.grad_norm;
    let la = p.laricl()?;
    let x = Params(la.theta);
    let c = p.certify(&x)?;
    let r =
        crate::compute::problem::IterReport { iter: 1, loss: c.loss, grad_norm: c.grad_norm, step_len: 1.0, mu: 0.0 };
    let info = SolveInfo {
        iterations: 1,
        reason: StopReason::ClosedForm,
        converged: true,
        grad_norm0: g0,
        max_mu: 0.0,
        history: vec![r],
    };
    Ok((x, info))
}

#[allow(clippy::too_many_arguments)] // one per part of the report
fn print_human(
    problem: &dyn Problem,
    x: &Params,
    cert: &Certificate,
    info: &SolveInfo,
    seconds: f64,
    planted: Option<&[f64]>,
    prediction: Option<&[f64]>,
    width: Option<usize>,
) -> anyhow::Result<()> {
    let status = if info.converged { "converged" } else { "NOT converged" };
    outln!("{status} after {} iterations ({:?}) in {seconds:.3} s", info.iterations, info.reason);
    outln!("certificate");
    outln!("  score      {:.12e}", cert.score);
    outln!("  loss       {:.12e}", cert.loss);
    outln!("  |grad|     {:.6e}  (start {:.6e})", cert.grad_norm, info.grad_norm0);
    for f in &cert.figures {
        outln!("  {:<16} {:.12e}", f.name, f.value);
    }
    if info.max_mu > 0.0 {
        // The softmax family's Newton solve shifts only an indefinite Hessian; the
        // Levenberg–Marquardt solves (attention, ricl) raise the shift on a rejected step.
        let lm = problem.kind() == "ricl" || problem.kind().starts_with("attention");
        let why = if lm {
            "raised where a Gauss–Newton step did not lower the objective"
        } else {
            "the Hessian was not positive definite somewhere"
        };
        outln!("  LM shift   {:.3e} ({why})", info.max_mu);
    }
    if let Some(xs) = planted {
        let err: f64 = x.0.iter().zip(xs).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
        outln!("  |x - x*|   {err:.6e}  (planted solution known)");
    }
    outln!("params ({}, hash {})", problem.dim(), x.hash());
    let shown = x.len().min(16);
    for chunk in x.0[..shown].chunks(4) {
        let line: Vec<String> = chunk.iter().map(|v| format!("{v:>22.15e}")).collect();
        outln!("  {}", line.join(" "));
    }
    if shown < x.len() {
        outln!("  ... {} more (use --json or --save-params for all)", x.len() - shown);
    }
    match (prediction, width) {
        (Some(f), Some(d)) => {
            outln!("prediction ({} rows of {d} outputs)", f.len() / d);
            for (i, row) in f.chunks(d).enumerate() {
                let line: Vec<String> = row.iter().map(|v| format!("{v:.12e}")).collect();
                outln!("  {i:>6}  {}", line.join(" "));
            }
        }
        (Some(f), None) => {
            outln!("prediction ({} rows)", f.len());
            for (i, v) in f.iter().enumerate() {
                outln!("  {i:>6}  {v:.12e}");
            }
        }
        (None, _) => {}
    }
    Ok(())
}
