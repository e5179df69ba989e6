//! `TaskSpec`: what a task is (kind, data, hyper-parameters, target score), the admission
//! rules a spec must pass before it is escrowed on chain, and building the
//! `compute::Problem` from it.
//!
//! # Consensus
//! Admission is a consensus rule (a block with an inadmissible `SubmitTask` is invalid).
//! Checks run cheapest first: shapes, sizes and hyper-parameters, then the step cost
//! (from the shape alone: this is the task's entry in every node's cost table), and only
//! then is data generated or copied and scanned.
//!
//! The admission domain of the softmax family (DESIGN.md §3.2), chosen so that for every
//! admitted task and every iterate in its box no stage of a step degenerates:
//! - shape: at least [`MIN_ROWS`] rows, [`MIN_COLS`] columns and [`ROWS_PER_COL`] rows
//!   per column, so the fixed overhead and the d³ work stay priced within the calibration
//!   band;
//! - data: every entry of `A` finite, non-zero, with `|a| in [DATA_MIN_ABS, DATA_MAX_ABS]`
//!   (no overflow in `z`, no subnormal products in the Gram matrices), no duplicate
//!   rows; every target finite, `|b| <= DATA_MAX_ABS`, zero or normal (`>= TARGET_MIN_ABS`);
//! - hyper-parameters: `λ in [0, MAX_REG_LAMBDA]`, `γ in [0, MAX_COPYRIGHT_GAMMA]`, a
//!   synthetic scale in `[MIN_SYNTHETIC_SCALE, MAX_SYNTHETIC_SCALE]`;
//! - iterate box: `|x_j| <= Z_BOUND / max_i ||a_i||₁` (`compute::softmax`), so
//!   `|z_i| <= Z_BOUND` for every row at every admissible iterate.
//!
//! The admission domain of the attention kind:
//! - shape: `ATTN_MIN_ROWS <= n`, `ATTN_MIN_WIDTH <= d <= ATTN_MAX_WIDTH`, and `n >= 2d`
//!   (at least as many outputs `n·d` as parameters `2d²`);
//! - data: every entry of `A1, A2, A3` finite, non-zero, `|a| in [ATTN_DATA_MIN_ABS,
//!   ATTN_DATA_MAX_ABS]`, no duplicate rows within a matrix; for the linear kernel every
//!   key entry `A2[i,l] >= -ATTN_LINEAR_KEY_FLOOR`, so `ψ(A2) = elu(A2) + 1 >= e^-64` never
//!   underflows; targets `B` as the softmax family's;
//! - hyper-parameters: the ridge `ρ = reg_lambda in [0, MAX_REG_LAMBDA]`, no copyright
//!   option, a synthetic scale in `[ATTN_MIN_SYNTHETIC_SCALE, ATTN_MAX_SYNTHETIC_SCALE]`;
//! - iterate balls: `||X||_F`, `||Y||_F` bounded so every score is at most
//!   `attention::Z_BOUND` in magnitude (`compute::attention`).
//!
//! The admission domain of the ricl kind (reweighted in-context learning):
//! - shape: `RICL_MIN_PROMPT <= m <= RICL_MAX_PROMPT` prompt examples, `1 <= d <=
//!   RICL_MAX_WIDTH`, `RICL_MIN_VALIDATION <= V <= RICL_MAX_VALIDATION` validation rows;
//! - data: every entry of the prompt, `W` and the validation set finite, zero or of
//!   magnitude in `[DATA_MIN_ABS, RICL_DATA_MAX_ABS]` (no subnormal arithmetic); the prompt
//!   labels not all equal (else no weighting changes the prediction); every validation
//!   score `|x_iᵀ W q_v| <= ricl::SCORE_BOUND`, so no attention weight underflows at any
//!   admissible iterate;
//! - hyper-parameters: `λ = reg_lambda in [RICL_MIN_LAMBDA, MAX_REG_LAMBDA]` (a positive
//!   ridge keeps every Gauss–Newton system positive definite), no copyright option, a
//!   synthetic flip probability in `[0, 1]`;
//! - iterate box: `|θ_i| <= ricl::THETA_BOUND` (`compute::ricl`).

use crate::compute::attention::{self, AttentionProblem, AttentionShape, AttentionSynthetic, Kernel};
use crate::compute::copyright::{Copyright, CopyrightVariant};
use crate::compute::det::Mat;
use crate::compute::nmr::Phi;
use crate::compute::problem::{
    Certificate, IterReport, Params, Problem, ProblemError, SolveInfo, SolveOpts, StepOutput,
};
use crate::compute::ricl::{self, RiclProblem, RiclShape, RiclSynthetic};
use crate::compute::softmax::{SoftmaxOptions, SoftmaxProblem, StepShape, Synthetic, step_cost_mwu, uniform_reg};
use crate::hash::{Hash256, sha256d};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A task kind that can be mined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskKind {
    /// Softmax regression.
    Softmax,
    /// ResNet + softmax regression.
    ResnetSoftmax,
    /// One-layer attention regression (paper 2309.07418) with the given kernel.
    Attention(Kernel),
    /// Reweighted in-context learning (paper 2310.03331): the example weights of a frozen
    /// attention predictor, fitted on a validation set.
    Ricl,
}

impl TaskKind {
    /// The map φ of a softmax-family kind (`None` for attention).
    pub fn phi(self) -> Option<Phi> {
        match self {
            TaskKind::Softmax => Some(Phi::Softmax),
            TaskKind::ResnetSoftmax => Some(Phi::ResnetSoftmax),
            TaskKind::Attention(_) | TaskKind::Ricl => None,
        }
    }

    /// Stable lower-case name (the attention kind's kernel is shown apart: `attention`).
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Softmax => "softmax",
            TaskKind::ResnetSoftmax => "resnet_softmax",
            TaskKind::Attention(_) => "attention",
            TaskKind::Ricl => "ricl",
        }
    }

    /// The name with the kernel: `attention` or `attention_linear` for attention.
    pub fn full_name(self) -> &'static str {
        match self {
            TaskKind::Attention(Kernel::Linear) => "attention_linear",
            other => other.name(),
        }
    }
}

impl std::str::FromStr for TaskKind {
    type Err = TaskError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "softmax" => Ok(TaskKind::Softmax),
            "resnet_softmax" => Ok(TaskKind::ResnetSoftmax),
            "attention" => Ok(TaskKind::Attention(Kernel::Softmax)),
            "attention_linear" => Ok(TaskKind::Attention(Kernel::Linear)),
            "ricl" => Ok(TaskKind::Ricl),
            other => Err(TaskError::UnknownKind(other.to_string())),
        }
    }
}

/// Where a task's data comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TaskData {
    /// Data carried in the transaction: `a` is `rows x cols` row-major, `b` has `rows` values.
    Inline {
        /// Rows of A.
        rows: u32,
        /// Columns of A (= parameters).
        cols: u32,
        /// A, row-major.
        a: Vec<f64>,
        /// Targets.
        b: Vec<f64>,
    },
    /// A seeded synthetic planted instance (`compute::softmax::Synthetic`, or
    /// `compute::attention::AttentionSynthetic` for the attention kind).
    Synthetic {
        /// Rows.
        n: u32,
        /// Columns.
        d: u32,
        /// Dataset seed.
        seed: u64,
        /// Row scale.
        scale: f64,
    },
    /// Attention data carried in the transaction: four `rows x cols` matrices, row-major.
    AttentionInline {
        /// Token rows.
        rows: u32,
        /// Width `d` (the parameters are `2d²`).
        cols: u32,
        /// Queries `A1`.
        a1: Vec<f64>,
        /// Keys `A2`.
        a2: Vec<f64>,
        /// Values `A3`.
        a3: Vec<f64>,
        /// Targets `B`.
        b: Vec<f64>,
    },
    /// RICL data carried in the transaction.
    RiclInline {
        /// Prompt examples `m`.
        m: u32,
        /// Input width `d`.
        d: u32,
        /// Validation rows `V`.
        v: u32,
        /// Prompt inputs (m x d, row-major).
        prompt_x: Vec<f64>,
        /// Prompt labels (m).
        prompt_y: Vec<f64>,
        /// The frozen attention matrix `W` (d x d, row-major).
        w: Vec<f64>,
        /// Validation queries (V x d, row-major).
        val_x: Vec<f64>,
        /// Validation labels (V).
        val_y: Vec<f64>,
    },
    /// The seeded numerical dataset of the RICL experiment (`compute::ricl::RiclSynthetic`,
    /// `W = I`).
    RiclSynthetic {
        /// Prompt examples `m`.
        m: u32,
        /// Input width `d`.
        d: u32,
        /// Validation rows `V`.
        v: u32,
        /// Dataset seed.
        seed: u64,
        /// Probability that a prompt example on the negative side is flipped (0 balanced).
        flip: f64,
    },
}

impl TaskData {
    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            TaskData::Inline { rows, cols, .. } | TaskData::AttentionInline { rows, cols, .. } => {
                (*rows as usize, *cols as usize)
            }
            TaskData::Synthetic { n, d, .. } => (*n as usize, *d as usize),
            TaskData::RiclInline { m, d, .. } | TaskData::RiclSynthetic { m, d, .. } => (*m as usize, *d as usize),
        }
    }

    /// `(m, d, V)` of RICL data (`None` for other kinds' data).
    pub fn ricl_shape(&self) -> Option<(usize, usize, usize)> {
        match self {
            TaskData::RiclInline { m, d, v, .. } | TaskData::RiclSynthetic { m, d, v, .. } => {
                Some((*m as usize, *d as usize, *v as usize))
            }
            _ => None,
        }
    }
}

/// The copyright option of a task (rows as u32 to keep the encoding compact).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CopyrightSpec {
    /// Protected rows, strictly increasing.
    pub rows: Vec<u32>,
    /// γ_c.
    pub gamma: f64,
    /// Variant of the objective.
    pub variant: CopyrightVariant,
}

/// A training task as submitted on chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The kind.
    pub kind: TaskKind,
    /// The data.
    pub data: TaskData,
    /// Regulariser λ (every row gets `w² = λ/n²`; 0 for none).
    pub reg_lambda: f64,
    /// The copyright option.
    pub copyright: Option<CopyrightSpec>,
    /// The task is solved once its score is `<= target_score`.
    pub target_score: f64,
}

/// Fewest data rows of a softmax-family task.
pub const MIN_ROWS: usize = 32;
/// Fewest parameters of a softmax-family task.
pub const MIN_COLS: usize = 2;
/// At least this many rows per column: with fewer, the d³ and d² parts of a step run at
/// a speed per flop that no single price fits (DESIGN.md §3.1 calibration).
pub const ROWS_PER_COL: usize = 4;
/// Smallest magnitude of a data entry: `2^-40`.
pub const DATA_MIN_ABS: f64 = 1.0 / (1u64 << 40) as f64;
/// Smallest magnitude of a non-zero target: the smallest normal f64 (no subnormal
/// arithmetic, which is slow and would make a step cost more than its price).
pub const TARGET_MIN_ABS: f64 = f64::MIN_POSITIVE;
/// Largest magnitude of a data entry or target: `2^40`.
pub const DATA_MAX_ABS: f64 = (1u64 << 40) as f64;
/// Largest regulariser λ.
pub const MAX_REG_LAMBDA: f64 = 1e12;
/// Largest copyright weight γ.
pub const MAX_COPYRIGHT_GAMMA: f64 = 1e3;
/// Smallest synthetic row scale.
pub const MIN_SYNTHETIC_SCALE: f64 = 1.0 / 256.0;
/// Largest synthetic row scale (larger ones plant targets that underflow).
pub const MAX_SYNTHETIC_SCALE: f64 = 16.0;

/// Fewest token rows of an attention task.
pub const ATTN_MIN_ROWS: usize = 16;
/// Smallest width of an attention task.
pub const ATTN_MIN_WIDTH: usize = 2;
/// Largest width of an attention task: the step factors the `2d² x 2d²` Gauss–Newton
/// matrix once per candidate ridge, which at d = 8 (128 unknowns) is a small part of the
/// step and at d = 16 would be most of the cost cap.
pub const ATTN_MAX_WIDTH: usize = 8;
/// Smallest magnitude of an attention data entry, `2^-40` (as the softmax family's: a
/// Gaussian draw falls below `2^-20` once in about a million entries).
pub const ATTN_DATA_MIN_ABS: f64 = DATA_MIN_ABS;
/// Largest magnitude of an attention data entry, `2^20`.
pub const ATTN_DATA_MAX_ABS: f64 = (1u64 << 20) as f64;
/// Linear-kernel keys are at least `-ATTN_LINEAR_KEY_FLOOR`, so `ψ(A2) >= e^-64`.
pub const ATTN_LINEAR_KEY_FLOOR: f64 = 64.0;
/// Smallest synthetic token scale of an attention task.
pub const ATTN_MIN_SYNTHETIC_SCALE: f64 = 1.0 / 16.0;
/// Largest synthetic token scale of an attention task (scores of variance `scale⁴`).
pub const ATTN_MAX_SYNTHETIC_SCALE: f64 = 4.0;

/// Fewest prompt examples of a ricl task.
pub const RICL_MIN_PROMPT: usize = 8;
/// Most prompt examples of a ricl task: the step factors the `m x m` Gauss–Newton matrix
/// once per candidate shift.
pub const RICL_MAX_PROMPT: usize = 256;
/// Largest input width of a ricl task.
pub const RICL_MAX_WIDTH: usize = 64;
/// Fewest validation rows of a ricl task.
pub const RICL_MIN_VALIDATION: usize = 16;
/// Most validation rows of a ricl task.
pub const RICL_MAX_VALIDATION: usize = 65_536;
/// Largest magnitude of a ricl data entry, `2^20`.
pub const RICL_DATA_MAX_ABS: f64 = (1u64 << 20) as f64;
/// Smallest ridge λ of a ricl task.
pub const RICL_MIN_LAMBDA: f64 = 1e-8;

/// Limits a spec must respect (per network, from `ChainParams`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLimits {
    /// Bytes of task data (A and b, inline or generated).
    pub max_data_bytes: usize,
    /// Step cost cap in mWU (DESIGN.md §3.1: one replay stays well under 50 ms).
    pub max_step_cost: u64,
    /// Parameter count cap.
    pub max_params: usize,
    /// At most this many `SubmitTask` transactions in one block.
    pub max_tasks_per_block: usize,
    /// At most this many bytes of task data (inline or generated) submitted by one block.
    pub max_task_bytes_per_block: usize,
}

/// Why a spec is not admissible.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskError {
    /// An unknown kind name.
    #[error("unknown task kind {0:?} (expected softmax, resnet_softmax, attention, attention_linear or ricl)")]
    UnknownKind(String),
    /// The data variant does not fit the kind.
    #[error("{kind} tasks take {expected} data")]
    DataKindMismatch {
        /// The kind.
        kind: &'static str,
        /// What it takes.
        expected: &'static str,
    },
    /// An option the kind does not have.
    #[error("{kind} tasks have no {option} option")]
    UnsupportedOption {
        /// The kind.
        kind: &'static str,
        /// The option.
        option: &'static str,
    },
    /// A linear-attention key too negative for `ψ = elu + 1`.
    #[error(
        "key A2 at row {row}, column {col} is {value:e}: linear-attention keys must be >= -{floor} (psi = elu + 1 underflows below)"
    )]
    KeyTooNegative {
        /// 0-based row.
        row: usize,
        /// 0-based column.
        col: usize,
        /// The value.
        value: f64,
        /// The floor.
        floor: f64,
    },
    /// A shape is inconsistent.
    #[error("task data shape: {0}")]
    Shape(String),
    /// The data is larger than the limit.
    #[error("task data of {bytes} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Data size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The step would cost more than the cap.
    #[error("one step costs {cost} mWU, above the cap of {cap} mWU")]
    TooCostly {
        /// The step cost.
        cost: u64,
        /// The cap.
        cap: u64,
    },
    /// Too many parameters.
    #[error("{params} parameters exceed the limit of {limit}")]
    TooManyParams {
        /// Parameters.
        params: usize,
        /// The limit.
        limit: usize,
    },
    /// A hyper-parameter is out of its domain.
    #[error("invalid {what}: {value}")]
    BadValue {
        /// Which one.
        what: &'static str,
        /// Its value.
        value: f64,
    },
    /// The target score is not a positive finite number.
    #[error("target score {0} must be a positive number: scores are never below 0, so the task could never be solved")]
    TargetNotPositive(f64),
    /// The shape is below the kind's minimum.
    #[error(
        "task data is {rows}x{cols}: the minimum shape is {min_rows} rows, {min_cols} columns, and at least 4 rows per column"
    )]
    BelowMinimumShape {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// The minimum rows.
        min_rows: usize,
        /// The minimum columns.
        min_cols: usize,
    },
    /// A data value outside the admission range.
    #[error(
        "{what} at row {row}, column {col} is {value:e}, outside the admitted magnitudes [{min:e}, {max:e}] (zero only for targets; rescale the data)"
    )]
    OutOfRange {
        /// `data A` or `target b`.
        what: &'static str,
        /// 0-based row.
        row: usize,
        /// 0-based column (0 for targets).
        col: usize,
        /// The value.
        value: f64,
        /// Smallest magnitude admitted.
        min: f64,
        /// Largest magnitude admitted.
        max: f64,
    },
    /// An exact zero in dense data (it makes work predictable, DESIGN.md §3).
    #[error("data has an exact zero at row {row}, column {col} (dense kinds reject zeros; add jitter)")]
    ExactZero {
        /// 0-based row.
        row: usize,
        /// 0-based column.
        col: usize,
    },
    /// Two identical rows in dense data.
    #[error("data rows {first} and {second} are identical (dense kinds reject duplicate rows; add jitter)")]
    DuplicateRow {
        /// 0-based index of the first copy.
        first: usize,
        /// 0-based index of the second copy.
        second: usize,
    },
    /// An attention shape outside the admission domain.
    #[error("attention task data is {rows}x{cols}: {reason}")]
    AttentionShape {
        /// Rows.
        rows: usize,
        /// Width.
        cols: usize,
        /// What is wrong.
        reason: String,
    },
    /// A ricl shape outside the admission domain.
    #[error("ricl task has {m} prompt examples of width {d} and {v} validation rows: {reason}")]
    RiclShape {
        /// Prompt examples.
        m: usize,
        /// Width.
        d: usize,
        /// Validation rows.
        v: usize,
        /// What is wrong.
        reason: String,
    },
    /// A ricl value that is not zero and outside the admitted magnitudes.
    #[error(
        "{what} value {index} is {value:e}: ricl data must be 0 or of magnitude in [{min:e}, {max:e}] (rescale the data)"
    )]
    RiclOutOfRange {
        /// Which array.
        what: &'static str,
        /// Flat index.
        index: usize,
        /// The value.
        value: f64,
        /// Smallest non-zero magnitude.
        min: f64,
        /// Largest magnitude.
        max: f64,
    },
    /// A validation score too large for the attention weights to stay normal numbers.
    #[error(
        "score x_{example}ᵀ W q_{query} is {value:e}, beyond ±{bound}: scale the inputs or W down (attention weights would underflow)"
    )]
    RiclScore {
        /// Validation row.
        query: usize,
        /// Prompt example.
        example: usize,
        /// The score.
        value: f64,
        /// The bound.
        bound: f64,
    },
    /// Every prompt label is the same.
    #[error("every prompt label is {0:e}: no weighting of the examples can change the prediction")]
    ConstantLabels(f64),
    /// The numerics refused the data.
    #[error("task rejected by the solver: {0}")]
    Problem(#[from] ProblemError),
}

impl TaskSpec {
    /// `H(encode(spec))`, computed by the caller's encoding (`chain` passes its canonical
    /// bytes); here for specs that are not yet on chain.
    pub fn hash_of_bytes(encoded: &[u8]) -> Hash256 {
        sha256d(encoded)
    }

    /// The softmax-family step shape, from the spec alone (`None` for attention).
    pub fn shape(&self) -> Option<StepShape> {
        let (n, d) = self.data.shape();
        Some(StepShape {
            n,
            d,
            phi: self.kind.phi()?,
            has_reg: self.reg_lambda > 0.0,
            copyright: self.copyright.as_ref().map(|c| (c.variant, c.rows.len())),
        })
    }

    /// Step cost in mWU, from the shape alone (equals the built problem's `cost()`).
    ///
    /// # Consensus
    /// The task's entry in the cost table (DESIGN.md §3.1).
    pub fn cost(&self) -> u64 {
        if self.kind == TaskKind::Ricl {
            let (m, _, v) = self.data.ricl_shape().unwrap_or((0, 0, 0));
            return ricl::ricl_step_cost_mwu(&RiclShape { m, v });
        }
        match (self.kind, self.shape()) {
            (TaskKind::Attention(kernel), _) => {
                let (n, d) = self.data.shape();
                attention::attention_step_cost_mwu(&AttentionShape { n, d, kernel })
            }
            (_, Some(shape)) => step_cost_mwu(&shape),
            (_, None) => unreachable!("every softmax-family kind has a map"),
        }
    }

    /// Number of parameters of the task's model.
    pub fn params(&self) -> usize {
        let (_, d) = self.data.shape();
        match self.kind {
            TaskKind::Attention(_) => d.saturating_mul(d).saturating_mul(2),
            TaskKind::Ricl => self.data.ricl_shape().map_or(0, |(m, _, _)| m),
            _ => d,
        }
    }

    /// Bytes of data the task expands to (every matrix as f64, inline or generated; for
    /// ricl also the two `V x m` matrices the problem keeps, the scores and their
    /// exponentials).
    pub fn data_bytes(&self) -> usize {
        let (n, d) = self.data.shape();
        if let Some((m, d, v)) = self.data.ricl_shape() {
            let vm = v.saturating_mul(m);
            let sizes = [m.saturating_mul(d), m, d.saturating_mul(d), v.saturating_mul(d), v, vm, vm];
            return sizes.iter().fold(0usize, |a, &b| a.saturating_add(b)).saturating_mul(8);
        }
        let values = match self.kind {
            TaskKind::Attention(_) => n.saturating_mul(d).saturating_mul(4),
            _ => n.saturating_mul(d).saturating_add(n),
        };
        values.saturating_mul(8)
    }

    /// Cheap checks: shapes, sizes, hyper-parameters, cost. No data is generated, so a
    /// block's tasks are checked (and priced for the cost table) before anything else
    /// about them.
    pub fn check_limits(&self, limits: &TaskLimits) -> Result<(), TaskError> {
        let (n, d) = self.data.shape();
        if n == 0 || d == 0 {
            return Err(TaskError::Shape(format!("{n}x{d}: need at least one row and column")));
        }
        let attention = matches!(self.kind, TaskKind::Attention(_));
        let ricl_data = self.data.ricl_shape().is_some();
        if (self.kind == TaskKind::Ricl) != ricl_data {
            return Err(if ricl_data {
                TaskError::DataKindMismatch {
                    kind: self.kind.name(),
                    expected: "its own (not ricl prompt and validation)",
                }
            } else {
                TaskError::DataKindMismatch { kind: "ricl", expected: "prompt and validation (or ricl synthetic)" }
            });
        }
        if self.kind == TaskKind::Ricl {
            return self.check_ricl_limits(limits);
        }
        match (&self.data, attention) {
            (TaskData::Inline { .. }, true) => {
                return Err(TaskError::DataKindMismatch { kind: "attention", expected: "four-matrix (A1, A2, A3, B)" });
            }
            (TaskData::AttentionInline { .. }, false) => {
                return Err(TaskError::DataKindMismatch { kind: self.kind.name(), expected: "A and b" });
            }
            _ => {}
        }
        match self.kind {
            TaskKind::Attention(_) => self.check_attention_shape(n, d)?,
            _ => {
                if n < MIN_ROWS || d < MIN_COLS || ROWS_PER_COL * d > n {
                    return Err(TaskError::BelowMinimumShape {
                        rows: n,
                        cols: d,
                        min_rows: MIN_ROWS,
                        min_cols: MIN_COLS,
                    });
                }
            }
        }
        let params = self.params();
        if params > limits.max_params {
            return Err(TaskError::TooManyParams { params, limit: limits.max_params });
        }
        let bytes = self.data_bytes();
        if bytes > limits.max_data_bytes {
            return Err(TaskError::TooLarge { bytes, limit: limits.max_data_bytes });
        }
        match &self.data {
            TaskData::Inline { a, b, .. } => {
                if a.len() != n * d {
                    return Err(TaskError::Shape(format!("A has {} values for {n}x{d}", a.len())));
                }
                if b.len() != n {
                    return Err(TaskError::Shape(format!("b has {} values for {n} rows", b.len())));
                }
            }
            TaskData::AttentionInline { a1, a2, a3, b, .. } => {
                for (what, m) in [("A1", a1), ("A2", a2), ("A3", a3), ("B", b)] {
                    if m.len() != n * d {
                        return Err(TaskError::Shape(format!("{what} has {} values for {n}x{d}", m.len())));
                    }
                }
            }
            TaskData::RiclInline { .. } | TaskData::RiclSynthetic { .. } => {
                unreachable!("ricl data was checked above")
            }
            TaskData::Synthetic { scale, .. } => {
                let range = if attention {
                    ATTN_MIN_SYNTHETIC_SCALE..=ATTN_MAX_SYNTHETIC_SCALE
                } else {
                    MIN_SYNTHETIC_SCALE..=MAX_SYNTHETIC_SCALE
                };
                if !range.contains(scale) {
                    return Err(TaskError::BadValue { what: "synthetic scale", value: *scale });
                }
            }
        }
        if !(0.0..=MAX_REG_LAMBDA).contains(&self.reg_lambda) {
            return Err(TaskError::BadValue { what: "regulariser lambda", value: self.reg_lambda });
        }
        // DESIGN.md §3: scores are >= 0, so a target of 0 (or less) is unreachable and
        // would only hold its bounty (and, before the miner's stall rule, its miners).
        if !(self.target_score > 0.0 && self.target_score.is_finite()) {
            return Err(TaskError::TargetNotPositive(self.target_score));
        }
        if let Some(c) = &self.copyright {
            if attention {
                return Err(TaskError::UnsupportedOption { kind: "attention", option: "copyright" });
            }
            if !(0.0..=MAX_COPYRIGHT_GAMMA).contains(&c.gamma) {
                return Err(TaskError::BadValue { what: "copyright gamma", value: c.gamma });
            }
            self.copyright_option(c).validate(n)?;
        }
        let cost = self.cost();
        if cost > limits.max_step_cost {
            return Err(TaskError::TooCostly { cost, cap: limits.max_step_cost });
        }
        Ok(())
    }

    /// [`TaskSpec::check_limits`] for the ricl kind: shape, sizes, λ, target, cost.
    fn check_ricl_limits(&self, limits: &TaskLimits) -> Result<(), TaskError> {
        let (m, d, v) = self.data.ricl_shape().expect("ricl data");
        let reason = if !(RICL_MIN_PROMPT..=RICL_MAX_PROMPT).contains(&m) {
            format!("the prompt must have {RICL_MIN_PROMPT} to {RICL_MAX_PROMPT} examples")
        } else if !(1..=RICL_MAX_WIDTH).contains(&d) {
            format!("the width must be 1 to {RICL_MAX_WIDTH}")
        } else if !(RICL_MIN_VALIDATION..=RICL_MAX_VALIDATION).contains(&v) {
            format!("the validation set must have {RICL_MIN_VALIDATION} to {RICL_MAX_VALIDATION} rows")
        } else {
            String::new()
        };
        if !reason.is_empty() {
            return Err(TaskError::RiclShape { m, d, v, reason });
        }
        let bytes = self.data_bytes();
        if bytes > limits.max_data_bytes {
            return Err(TaskError::TooLarge { bytes, limit: limits.max_data_bytes });
        }
        match &self.data {
            TaskData::RiclInline { prompt_x, prompt_y, w, val_x, val_y, .. } => {
                for (what, arr, want) in [
                    ("prompt inputs", prompt_x, m * d),
                    ("prompt labels", prompt_y, m),
                    ("W", w, d * d),
                    ("validation inputs", val_x, v * d),
                    ("validation labels", val_y, v),
                ] {
                    if arr.len() != want {
                        return Err(TaskError::Shape(format!("{what} has {} values, expected {want}", arr.len())));
                    }
                }
            }
            TaskData::RiclSynthetic { flip, .. } => {
                if !(0.0..=1.0).contains(flip) {
                    return Err(TaskError::BadValue { what: "synthetic flip probability", value: *flip });
                }
            }
            _ => unreachable!("ricl data"),
        }
        if !(RICL_MIN_LAMBDA..=MAX_REG_LAMBDA).contains(&self.reg_lambda) {
            return Err(TaskError::BadValue { what: "ricl ridge lambda (at least 1e-8)", value: self.reg_lambda });
        }
        if !(self.target_score > 0.0 && self.target_score.is_finite()) {
            return Err(TaskError::TargetNotPositive(self.target_score));
        }
        if self.copyright.is_some() {
            return Err(TaskError::UnsupportedOption { kind: "ricl", option: "copyright" });
        }
        let cost = self.cost();
        if cost > limits.max_step_cost {
            return Err(TaskError::TooCostly { cost, cap: limits.max_step_cost });
        }
        Ok(())
    }

    /// Builds a ricl task's problem: every value scanned (finite, zero or in range), the
    /// labels not constant, every validation score within `ricl::SCORE_BOUND`.
    fn build_ricl(&self) -> Result<RiclProblem, TaskError> {
        let (m, d, v) = self.data.ricl_shape().ok_or(TaskError::DataKindMismatch {
            kind: "ricl",
            expected: "prompt and validation (or ricl synthetic)",
        })?;
        let mat = |r: usize, c: usize, x: &Vec<f64>| {
            Mat::from_vec(r, c, x.clone()).map_err(|e| TaskError::Shape(e.to_string()))
        };
        let (xp, yp, w, q, yv) = match &self.data {
            TaskData::RiclInline { prompt_x, prompt_y, w, val_x, val_y, .. } => {
                (mat(m, d, prompt_x)?, prompt_y.clone(), mat(d, d, w)?, mat(v, d, val_x)?, val_y.clone())
            }
            TaskData::RiclSynthetic { seed, flip, .. } => {
                let g = RiclSynthetic { m, d, v, test: 0, seed: *seed, flip: *flip }.generate()?;
                (g.xp, g.yp, Mat::identity(d), g.q, g.yv)
            }
            _ => unreachable!("ricl data"),
        };
        for (what, arr) in [
            ("prompt inputs", xp.data()),
            ("prompt labels", &yp[..]),
            ("W", w.data()),
            ("validation inputs", q.data()),
            ("validation labels", &yv[..]),
        ] {
            if let Some((index, &value)) = arr
                .iter()
                .enumerate()
                .find(|(_, x)| **x != 0.0 && !(DATA_MIN_ABS..=RICL_DATA_MAX_ABS).contains(&x.abs()))
            {
                return Err(TaskError::RiclOutOfRange {
                    what,
                    index,
                    value,
                    min: DATA_MIN_ABS,
                    max: RICL_DATA_MAX_ABS,
                });
            }
        }
        if yp.iter().all(|y| *y == yp[0]) {
            return Err(TaskError::ConstantLabels(yp[0]));
        }
        let p = RiclProblem::new(xp, yp, w, q, yv, self.reg_lambda)?;
        if let Some(k) = p.scores().data().iter().position(|s| s.abs() > ricl::SCORE_BOUND) {
            return Err(TaskError::RiclScore {
                query: k / m,
                example: k % m,
                value: p.scores().data()[k],
                bound: ricl::SCORE_BOUND,
            });
        }
        Ok(p)
    }

    fn check_attention_shape(&self, n: usize, d: usize) -> Result<(), TaskError> {
        let reason = if n < ATTN_MIN_ROWS {
            format!("need at least {ATTN_MIN_ROWS} token rows")
        } else if !(ATTN_MIN_WIDTH..=ATTN_MAX_WIDTH).contains(&d) {
            format!("the width must be {ATTN_MIN_WIDTH} to {ATTN_MAX_WIDTH}")
        } else if n < 2 * d {
            format!("need at least 2d = {} token rows (as many outputs as parameters)", 2 * d)
        } else {
            return Ok(());
        };
        Err(TaskError::AttentionShape { rows: n, cols: d, reason })
    }

    fn copyright_option(&self, c: &CopyrightSpec) -> Copyright {
        Copyright { rows: c.rows.iter().map(|&r| r as usize).collect(), gamma: c.gamma, variant: c.variant }
    }

    /// Admission (DESIGN.md §3.2): [`TaskSpec::check_limits`], then the data is built and
    /// scanned (range, exact zeros, duplicate rows), then the problem is constructed.
    pub fn admit(&self, limits: &TaskLimits) -> Result<TaskProblem, TaskError> {
        self.check_limits(limits)?;
        self.build_unchecked()
    }

    /// Builds the problem, scanning the data, without the size and cost limits (for specs
    /// already admitted, such as a genesis task).
    pub fn build_unchecked(&self) -> Result<TaskProblem, TaskError> {
        let p = match self.kind {
            TaskKind::Attention(kernel) => TaskProblem::Attention(self.build_attention(kernel)?),
            TaskKind::Ricl => TaskProblem::Ricl(self.build_ricl()?),
            _ => TaskProblem::Softmax(self.build_softmax()?),
        };
        debug_assert_eq!(p.cost(), self.cost());
        Ok(p)
    }

    /// Builds a softmax-family task's problem (for the measurements that need its
    /// family's own methods).
    pub fn build_softmax(&self) -> Result<SoftmaxProblem, TaskError> {
        let Some(phi) = self.kind.phi() else {
            return Err(TaskError::DataKindMismatch {
                kind: self.kind.name(),
                expected: "four-matrix (A1, A2, A3, B)",
            });
        };
        let (n, d) = self.data.shape();
        let (a, b) = match &self.data {
            TaskData::Inline { a, b, .. } => {
                let m = Mat::from_vec(n, d, a.clone()).map_err(|e| TaskError::Shape(e.to_string()))?;
                (m, b.clone())
            }
            TaskData::Synthetic { seed, scale, .. } => {
                let (a, b, _) = Synthetic { n, d, seed: *seed, scale: *scale }.generate(phi)?;
                (a, b)
            }
            TaskData::AttentionInline { .. } | TaskData::RiclInline { .. } | TaskData::RiclSynthetic { .. } => {
                return Err(TaskError::DataKindMismatch { kind: self.kind.name(), expected: "A and b" });
            }
        };
        check_dense(&a, "data A")?;
        check_targets(&b, 1)?;
        let w2 = (self.reg_lambda > 0.0).then(|| uniform_reg(self.reg_lambda, n));
        let copyright = self.copyright.as_ref().map(|c| self.copyright_option(c));
        Ok(SoftmaxProblem::new(phi, a, b, SoftmaxOptions { w2, mask: None, copyright })?)
    }

    /// Builds an attention task's problem: the four matrices scanned (range, exact
    /// zeros, duplicate rows, linear-kernel keys), the ridge `ρ = reg_lambda`.
    fn build_attention(&self, kernel: Kernel) -> Result<AttentionProblem, TaskError> {
        let (n, d) = self.data.shape();
        let mat = |v: &Vec<f64>| Mat::from_vec(n, d, v.clone()).map_err(|e| TaskError::Shape(e.to_string()));
        let (a1, a2, a3, b) = match &self.data {
            TaskData::AttentionInline { a1, a2, a3, b, .. } => (mat(a1)?, mat(a2)?, mat(a3)?, mat(b)?),
            TaskData::Synthetic { seed, scale, .. } => {
                let p = AttentionSynthetic { n, d, seed: *seed, scale: *scale }.generate(kernel)?;
                (p.a1, p.a2, p.a3, p.b)
            }
            TaskData::Inline { .. } | TaskData::RiclInline { .. } | TaskData::RiclSynthetic { .. } => {
                return Err(TaskError::DataKindMismatch { kind: "attention", expected: "four-matrix (A1, A2, A3, B)" });
            }
        };
        for (what, m) in [("data A1", &a1), ("data A2", &a2), ("data A3", &a3)] {
            check_dense_in(m, what, ATTN_DATA_MIN_ABS, ATTN_DATA_MAX_ABS)?;
        }
        if kernel == Kernel::Linear {
            for i in 0..n {
                for (j, &v) in a2.row(i).iter().enumerate() {
                    if v < -ATTN_LINEAR_KEY_FLOOR {
                        return Err(TaskError::KeyTooNegative {
                            row: i,
                            col: j,
                            value: v,
                            floor: ATTN_LINEAR_KEY_FLOOR,
                        });
                    }
                }
            }
        }
        check_targets(b.data(), d)?;
        Ok(AttentionProblem::new(kernel, a1, a2, a3, b, self.reg_lambda)?)
    }
}

/// A built task of any kind: what every check, step and certificate of the chain runs on.
#[derive(Clone, Debug)]
pub enum TaskProblem {
    /// A softmax-family task.
    Softmax(SoftmaxProblem),
    /// An attention task.
    Attention(AttentionProblem),
    /// A ricl task.
    Ricl(RiclProblem),
}

impl TaskProblem {
    fn inner(&self) -> &dyn Problem {
        match self {
            TaskProblem::Softmax(p) => p,
            TaskProblem::Attention(p) => p,
            TaskProblem::Ricl(p) => p,
        }
    }
}

impl Problem for TaskProblem {
    fn kind(&self) -> &'static str {
        self.inner().kind()
    }
    fn dim(&self) -> usize {
        self.inner().dim()
    }
    fn init(&self) -> Params {
        self.inner().init()
    }
    fn check_iterate(&self, x: &Params) -> Result<(), ProblemError> {
        self.inner().check_iterate(x)
    }
    fn perturbation_floor(&self) -> f64 {
        self.inner().perturbation_floor()
    }
    fn step(&self, x: &Params, seed: &[u8; 32]) -> Result<StepOutput, ProblemError> {
        self.inner().step(x, seed)
    }
    fn certify(&self, x: &Params) -> Result<Certificate, ProblemError> {
        self.inner().certify(x)
    }
    fn cost(&self) -> u64 {
        self.inner().cost()
    }
    fn predict(&self, x: &Params, input: &Mat) -> Result<Vec<f64>, ProblemError> {
        self.inner().predict(x, input)
    }
    fn solve(
        &self,
        opts: &SolveOpts,
        observe: &mut dyn FnMut(&IterReport),
    ) -> Result<(Params, SolveInfo), ProblemError> {
        self.inner().solve(opts, observe)
    }
}

/// Rejects exact zeros, values outside the softmax family's magnitudes (NaN and inf
/// among them) and duplicate rows.
fn check_dense(a: &Mat, what: &'static str) -> Result<(), TaskError> {
    check_dense_in(a, what, DATA_MIN_ABS, DATA_MAX_ABS)
}

/// Rejects exact zeros, magnitudes outside `[min, max]` (NaN and inf among them) and
/// duplicate rows.
fn check_dense_in(a: &Mat, what: &'static str, min: f64, max: f64) -> Result<(), TaskError> {
    for i in 0..a.rows() {
        for (j, &v) in a.row(i).iter().enumerate() {
            if v == 0.0 {
                return Err(TaskError::ExactZero { row: i, col: j });
            }
            if !(min..=max).contains(&v.abs()) {
                return Err(TaskError::OutOfRange { what, row: i, col: j, value: v, min, max });
            }
        }
    }
    let mut first_seen: HashMap<Vec<u64>, usize> = HashMap::with_capacity(a.rows());
    for i in 0..a.rows() {
        let key: Vec<u64> = a.row(i).iter().map(|v| v.to_bits()).collect();
        if let Some(&first) = first_seen.get(&key) {
            return Err(TaskError::DuplicateRow { first, second: i });
        }
        first_seen.insert(key, i);
    }
    Ok(())
}

/// Rejects targets (`cols` per row, row-major) that are non-finite, too large, or non-zero
/// below the smallest admitted magnitude.
fn check_targets(b: &[f64], cols: usize) -> Result<(), TaskError> {
    for (i, &v) in b.iter().enumerate() {
        if v != 0.0 && !(TARGET_MIN_ABS..=DATA_MAX_ABS).contains(&v.abs()) {
            return Err(TaskError::OutOfRange {
                what: "target b",
                row: i / cols,
                col: i % cols,
                value: v,
                min: TARGET_MIN_ABS,
                max: DATA_MAX_ABS,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> TaskLimits {
        TaskLimits {
            max_data_bytes: 4 << 20,
            max_step_cost: 200_000,
            max_params: 1 << 20,
            max_tasks_per_block: 8,
            max_task_bytes_per_block: 8 << 20,
        }
    }

    fn synthetic(n: u32, d: u32) -> TaskSpec {
        TaskSpec {
            kind: TaskKind::Softmax,
            data: TaskData::Synthetic { n, d, seed: 1, scale: 0.5 },
            reg_lambda: 1e-8,
            copyright: None,
            target_score: 1e-12,
        }
    }

    /// An inline 40x2 task with distinct non-zero rows; `edit` changes its data.
    fn inline(edit: impl FnOnce(&mut Vec<f64>, &mut Vec<f64>)) -> TaskSpec {
        let rows = 40;
        let mut a: Vec<f64> = (0..rows * 2).map(|k| 0.5 + k as f64 * 0.01).collect();
        let mut b = vec![1.0 / rows as f64; rows];
        edit(&mut a, &mut b);
        TaskSpec { data: TaskData::Inline { rows: rows as u32, cols: 2, a, b }, ..synthetic(1, 1) }
    }

    #[test]
    fn synthetic_spec_is_admitted_and_cost_matches_the_problem() {
        let spec = synthetic(500, 8);
        let p = spec.admit(&limits()).unwrap();
        assert_eq!(p.cost(), spec.cost());
        assert_eq!(p.dim(), 8);
    }

    #[test]
    fn inline_zeros_and_duplicate_rows_are_rejected() {
        assert_eq!(inline(|a, _| a[3] = 0.0).admit(&limits()).unwrap_err(), TaskError::ExactZero { row: 1, col: 1 });
        let dup = inline(|a, _| {
            a[10] = a[0];
            a[11] = a[1];
        });
        assert_eq!(dup.admit(&limits()).unwrap_err(), TaskError::DuplicateRow { first: 0, second: 5 });
        assert!(inline(|_, _| {}).admit(&limits()).is_ok());
    }

    #[test]
    fn data_outside_the_dynamic_range_is_rejected_at_admission() {
        // The scale-1e160 attack of issue 8: every step would fail cheaply.
        let huge = inline(|a, _| a.iter_mut().for_each(|v| *v *= 1e160));
        assert!(matches!(huge.admit(&limits()), Err(TaskError::OutOfRange { what: "data A", row: 0, col: 0, .. })));
        let tiny = inline(|a, _| a[7] = 1e-300);
        assert!(matches!(tiny.admit(&limits()), Err(TaskError::OutOfRange { what: "data A", row: 3, col: 1, .. })));
        let nan = inline(|a, _| a[2] = f64::NAN);
        assert!(matches!(nan.admit(&limits()), Err(TaskError::OutOfRange { row: 1, col: 0, .. })));
        let big_b = inline(|_, b| b[4] = 1e13);
        assert!(matches!(big_b.admit(&limits()), Err(TaskError::OutOfRange { what: "target b", row: 4, .. })));
        let subnormal_b = inline(|_, b| b[5] = 1e-310);
        assert!(matches!(subnormal_b.admit(&limits()), Err(TaskError::OutOfRange { what: "target b", row: 5, .. })));
        // Zero targets are fine (a class with no mass); the edges of the range are admitted.
        assert!(inline(|_, b| b[5] = 0.0).admit(&limits()).is_ok());
        assert!(
            inline(|a, _| {
                a[0] = DATA_MAX_ABS;
                a[1] = -DATA_MIN_ABS;
            })
            .admit(&limits())
            .is_ok()
        );
    }

    #[test]
    fn shapes_below_the_minimum_are_rejected_before_any_data() {
        for (n, d) in [(1, 1), (31, 2), (64, 1), (40, 41), (63, 16)] {
            assert!(
                matches!(synthetic(n, d).check_limits(&limits()), Err(TaskError::BelowMinimumShape { .. })),
                "{n}x{d}"
            );
        }
        assert!(synthetic(32, 2).admit(&limits()).is_ok());
        assert!(synthetic(64, 16).admit(&limits()).is_ok());
    }

    #[test]
    fn hyper_parameters_outside_their_domain_are_rejected() {
        for scale in [0.0, 1e-3, 17.0, f64::NAN, f64::INFINITY] {
            let s = TaskSpec { data: TaskData::Synthetic { n: 64, d: 4, seed: 1, scale }, ..synthetic(1, 1) };
            assert!(
                matches!(s.check_limits(&limits()), Err(TaskError::BadValue { what: "synthetic scale", .. })),
                "{scale}"
            );
        }
        for lambda in [-1.0, 1e13, f64::NAN] {
            let s = TaskSpec { reg_lambda: lambda, ..synthetic(64, 4) };
            assert!(matches!(s.check_limits(&limits()), Err(TaskError::BadValue { what: "regulariser lambda", .. })));
        }
        let cr = CopyrightSpec { rows: vec![1, 2], gamma: 1e4, variant: CopyrightVariant::All };
        let s = TaskSpec { copyright: Some(cr), ..synthetic(64, 4) };
        assert!(matches!(s.check_limits(&limits()), Err(TaskError::BadValue { what: "copyright gamma", .. })));
    }

    #[test]
    fn admitted_tasks_have_a_box_that_bounds_every_z() {
        let spec = synthetic(300, 8);
        spec.check_limits(&limits()).unwrap();
        let p = spec.build_softmax().unwrap();
        let b = p.x_bound();
        // The corner of the box in the direction of the heaviest row reaches Z_BOUND.
        let worst = (0..p.n()).map(|i| p.a().row(i).iter().map(|v| v.abs() * b).sum::<f64>()).fold(0.0f64, f64::max);
        assert!(worst <= crate::compute::softmax::Z_BOUND * (1.0 + 1e-12), "{worst}");
        assert!(p.check_iterate(&crate::compute::problem::Params(vec![b; 8])).is_ok());
        let outside = crate::compute::problem::Params(vec![b * (1.0 + 1e-15), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(matches!(p.check_iterate(&outside), Err(ProblemError::OutsideBox { index: 0, .. })));
    }

    #[test]
    fn limits_are_checked_before_any_data_is_built() {
        let big = synthetic(1_000_000, 64);
        assert!(matches!(big.admit(&limits()), Err(TaskError::TooLarge { .. })));
        let costly = synthetic(5000, 256);
        let lim = TaskLimits { max_data_bytes: 1 << 30, ..limits() };
        assert!(matches!(costly.admit(&lim), Err(TaskError::TooCostly { .. })));
        let wide = TaskLimits { max_params: 4, ..limits() };
        assert!(matches!(synthetic(40, 8).admit(&wide), Err(TaskError::TooManyParams { .. })));
        let bad_shape = TaskSpec {
            data: TaskData::Inline { rows: 40, cols: 2, a: vec![1.0; 3], b: vec![0.5; 40] },
            ..synthetic(1, 1)
        };
        assert!(matches!(bad_shape.admit(&limits()), Err(TaskError::Shape(_))));
        for bad in [f64::NAN, 0.0, -1e-9, f64::INFINITY] {
            let spec = TaskSpec { target_score: bad, ..synthetic(40, 2) };
            assert!(matches!(spec.admit(&limits()), Err(TaskError::TargetNotPositive(_))), "{bad}");
        }
        let bad_rows = TaskSpec {
            copyright: Some(CopyrightSpec { rows: vec![50], gamma: 0.1, variant: CopyrightVariant::All }),
            ..synthetic(40, 2)
        };
        assert!(matches!(bad_rows.admit(&limits()), Err(TaskError::Problem(_))));
    }

    #[test]
    fn kind_names_round_trip() {
        for k in [
            TaskKind::Softmax,
            TaskKind::ResnetSoftmax,
            TaskKind::Attention(Kernel::Softmax),
            TaskKind::Attention(Kernel::Linear),
        ] {
            assert_eq!(k.full_name().parse::<TaskKind>().unwrap(), k);
        }
        assert!("sdp".parse::<TaskKind>().is_err());
    }

    fn attention(kernel: Kernel, n: u32, d: u32) -> TaskSpec {
        TaskSpec {
            kind: TaskKind::Attention(kernel),
            data: TaskData::Synthetic { n, d, seed: 4, scale: 1.0 },
            reg_lambda: 0.0,
            copyright: None,
            target_score: 1e-12,
        }
    }

    /// An inline 20x2 attention task; `edit` changes its four matrices.
    fn attention_inline(kernel: Kernel, edit: impl FnOnce(&mut [Vec<f64>; 4])) -> TaskSpec {
        let (n, d) = (20usize, 2usize);
        let mut m: [Vec<f64>; 4] =
            std::array::from_fn(|k| (0..n * d).map(|i| 0.3 + 0.01 * i as f64 + 0.1 * k as f64).collect());
        edit(&mut m);
        let [a1, a2, a3, b] = m;
        TaskSpec {
            data: TaskData::AttentionInline { rows: n as u32, cols: d as u32, a1, a2, a3, b },
            ..attention(kernel, 1, 1)
        }
    }

    #[test]
    fn attention_specs_are_admitted_with_their_cost_and_parameter_count() {
        for kernel in [Kernel::Softmax, Kernel::Linear] {
            let spec = attention(kernel, 64, 4);
            let p = spec.admit(&limits()).unwrap();
            assert_eq!(p.cost(), spec.cost());
            assert_eq!(p.dim(), 32);
            assert_eq!(spec.params(), 32);
            assert_eq!(spec.data_bytes(), 4 * 64 * 4 * 8);
            assert!(attention_inline(kernel, |_| {}).admit(&limits()).is_ok());
        }
    }

    #[test]
    fn attention_shapes_outside_the_domain_are_rejected_before_any_data() {
        for (n, d) in [(15, 2), (16, 1), (40, 9), (15, 8)] {
            let e = attention(Kernel::Softmax, n, d).check_limits(&limits()).unwrap_err();
            assert!(matches!(e, TaskError::AttentionShape { .. }), "{n}x{d}: {e}");
        }
        let costly = attention(Kernel::Softmax, 2000, 8);
        assert!(matches!(costly.check_limits(&limits()), Err(TaskError::TooCostly { .. })));
        let s = TaskSpec {
            data: TaskData::Synthetic { n: 64, d: 4, seed: 1, scale: 8.0 },
            ..attention(Kernel::Softmax, 1, 1)
        };
        assert!(matches!(s.check_limits(&limits()), Err(TaskError::BadValue { what: "synthetic scale", .. })));
        let cr = CopyrightSpec { rows: vec![1], gamma: 0.1, variant: CopyrightVariant::All };
        let s = TaskSpec { copyright: Some(cr), ..attention(Kernel::Softmax, 64, 4) };
        assert!(matches!(s.check_limits(&limits()), Err(TaskError::UnsupportedOption { option: "copyright", .. })));
    }

    #[test]
    fn attention_data_of_the_wrong_kind_shape_or_range_is_rejected() {
        // Softmax data for an attention task, and attention data for a softmax task.
        let s = TaskSpec { kind: TaskKind::Attention(Kernel::Softmax), ..inline(|_, _| {}) };
        assert!(matches!(s.check_limits(&limits()), Err(TaskError::DataKindMismatch { .. })));
        let s = TaskSpec { kind: TaskKind::Softmax, ..attention_inline(Kernel::Softmax, |_| {}) };
        let e = s.check_limits(&limits());
        assert!(matches!(e, Err(TaskError::DataKindMismatch { .. })), "{e:?}");
        let short = attention_inline(Kernel::Softmax, |m| {
            m[2].pop();
        });
        assert!(matches!(short.check_limits(&limits()), Err(TaskError::Shape(_))));
        let zero = attention_inline(Kernel::Softmax, |m| m[1][5] = 0.0);
        assert_eq!(zero.admit(&limits()).unwrap_err(), TaskError::ExactZero { row: 2, col: 1 });
        let dup = attention_inline(Kernel::Softmax, |m| {
            m[0][6] = m[0][0];
            m[0][7] = m[0][1];
        });
        assert_eq!(dup.admit(&limits()).unwrap_err(), TaskError::DuplicateRow { first: 0, second: 3 });
        let huge = attention_inline(Kernel::Softmax, |m| m[2][3] = 1e7);
        assert!(matches!(huge.admit(&limits()), Err(TaskError::OutOfRange { what: "data A3", row: 1, col: 1, .. })));
        let nan_b = attention_inline(Kernel::Softmax, |m| m[3][9] = f64::NAN);
        assert!(matches!(nan_b.admit(&limits()), Err(TaskError::OutOfRange { what: "target b", row: 4, col: 1, .. })));
        // ψ = elu + 1 of a very negative key underflows: refused for the linear kernel only.
        let neg_key = |k| attention_inline(k, |m| m[1][4] = -100.0);
        assert!(matches!(
            neg_key(Kernel::Linear).admit(&limits()),
            Err(TaskError::KeyTooNegative { row: 2, col: 0, .. })
        ));
        assert!(neg_key(Kernel::Softmax).admit(&limits()).is_ok());
    }

    fn ricl(m: u32, d: u32, v: u32) -> TaskSpec {
        TaskSpec {
            kind: TaskKind::Ricl,
            data: TaskData::RiclSynthetic { m, d, v, seed: 1, flip: 0.9 },
            reg_lambda: 1e-4,
            copyright: None,
            target_score: 1e-3,
        }
    }

    #[test]
    fn ricl_specs_are_admitted_with_their_cost_and_bad_ones_refused_with_a_reason() {
        let spec = ricl(64, 4, 256);
        let p = spec.admit(&limits()).unwrap();
        assert_eq!(p.cost(), spec.cost());
        assert_eq!((p.dim(), spec.params()), (64, 64));
        assert_eq!("ricl".parse::<TaskKind>().unwrap(), TaskKind::Ricl);
        for (m, d, v) in [(7, 4, 256), (257, 4, 256), (64, 65, 256), (64, 4, 15)] {
            let e = ricl(m, d, v).check_limits(&limits()).unwrap_err();
            assert!(matches!(e, TaskError::RiclShape { .. }), "{m}x{d}x{v}: {e}");
        }
        // The step's seven m³ factorisations put the largest prompts above the step-cost
        // cap: at the cap 128 examples take 1,317 validation rows, 256 none.
        assert!(ricl(128, 4, 1317).check_limits(&limits()).is_ok());
        for (m, v) in [(128, 1318), (256, 16)] {
            let e = ricl(m, 4, v).check_limits(&limits()).unwrap_err();
            assert!(matches!(e, TaskError::TooCostly { .. }), "{m}x{v}: {e}");
        }
        let s = TaskSpec { reg_lambda: 0.0, ..ricl(64, 4, 256) };
        assert!(matches!(s.check_limits(&limits()), Err(TaskError::BadValue { .. })));
        // Ricl data for a softmax task and softmax data for a ricl task.
        let s = TaskSpec { kind: TaskKind::Softmax, ..ricl(64, 4, 256) };
        assert!(matches!(s.check_limits(&limits()), Err(TaskError::DataKindMismatch { .. })));
        let s = TaskSpec { kind: TaskKind::Ricl, ..synthetic(64, 4) };
        assert!(matches!(s.check_limits(&limits()), Err(TaskError::DataKindMismatch { .. })));
        // Inline data: constant labels, a subnormal value and a score beyond the bound.
        let inline = |edit: &dyn Fn(&mut Vec<f64>, &mut Vec<f64>, &mut Vec<f64>)| {
            let (m, d, v) = (8usize, 2usize, 16usize);
            let mut px: Vec<f64> = (0..m * d).map(|k| 0.1 + 0.05 * k as f64).collect();
            let mut py: Vec<f64> = (0..m).map(|k| k as f64 * 0.1).collect();
            let mut w = vec![1.0, 0.0, 0.0, 1.0];
            edit(&mut px, &mut py, &mut w);
            TaskSpec {
                data: TaskData::RiclInline {
                    m: m as u32,
                    d: d as u32,
                    v: v as u32,
                    prompt_x: px,
                    prompt_y: py,
                    w,
                    val_x: (0..v * d).map(|k| 0.2 - 0.01 * k as f64).collect(),
                    val_y: vec![0.5; v],
                },
                ..ricl(1, 1, 1)
            }
        };
        assert!(inline(&|_, _, _| {}).admit(&limits()).is_ok());
        let e = inline(&|_, y, _| y.iter_mut().for_each(|v| *v = 0.25)).admit(&limits()).unwrap_err();
        assert_eq!(e, TaskError::ConstantLabels(0.25));
        let e = inline(&|x, _, _| x[3] = 1e-300).admit(&limits()).unwrap_err();
        assert!(matches!(e, TaskError::RiclOutOfRange { what: "prompt inputs", index: 3, .. }), "{e}");
        let e = inline(&|_, _, w| w[0] = 1e5).admit(&limits()).unwrap_err();
        assert!(matches!(e, TaskError::RiclScore { .. }), "{e}");
        let e = inline(&|_, y, _| {
            y.pop();
        })
        .check_limits(&limits())
        .unwrap_err();
        assert!(matches!(e, TaskError::Shape(_)), "{e}");
    }
}
