//! `TaskSpec`: what a task is (kind, data, hyper-parameters, target score), the admission
//! rules a spec must pass before it is escrowed on chain, and building the
//! `compute::Problem` from it.
//!
//! # Consensus
//! Admission is a consensus rule (a block with an inadmissible `SubmitTask` is invalid).
//! Checks run cheapest first: shapes and sizes, then the step cost (from the shape alone),
//! and only then is data generated or copied and scanned for zeros and duplicate rows.

use crate::compute::copyright::{Copyright, CopyrightVariant};
use crate::compute::det::Mat;
use crate::compute::nmr::Phi;
use crate::compute::problem::{Problem, ProblemError, FLOPS_PER_WU};
use crate::compute::softmax::{step_flops, uniform_reg, SoftmaxOptions, SoftmaxProblem, StepShape, Synthetic};
use crate::hash::{sha256d, Hash256};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A task kind that can be mined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskKind {
    /// Softmax regression.
    Softmax,
    /// ResNet + softmax regression.
    ResnetSoftmax,
}

impl TaskKind {
    /// The map φ of the kind.
    pub fn phi(self) -> Phi {
        match self {
            TaskKind::Softmax => Phi::Softmax,
            TaskKind::ResnetSoftmax => Phi::ResnetSoftmax,
        }
    }

    /// Stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Softmax => "softmax",
            TaskKind::ResnetSoftmax => "resnet_softmax",
        }
    }
}

impl std::str::FromStr for TaskKind {
    type Err = TaskError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "softmax" => Ok(TaskKind::Softmax),
            "resnet_softmax" => Ok(TaskKind::ResnetSoftmax),
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
    /// A seeded synthetic planted instance (`compute::softmax::Synthetic`).
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
}

impl TaskData {
    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            TaskData::Inline { rows, cols, .. } => (*rows as usize, *cols as usize),
            TaskData::Synthetic { n, d, .. } => (*n as usize, *d as usize),
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

/// Limits a spec must respect (per network, from `ChainParams`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLimits {
    /// Bytes of task data (A and b, inline or generated).
    pub max_data_bytes: usize,
    /// Step cost cap in work units.
    pub max_step_cost_wu: u64,
    /// Parameter count cap.
    pub max_params: usize,
}

/// Why a spec is not admissible.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskError {
    /// An unknown kind name.
    #[error("unknown task kind {0:?} (expected softmax or resnet_softmax)")]
    UnknownKind(String),
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
    #[error("one step costs {cost} WU, above the cap of {cap} WU")]
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

    /// The step shape, from the spec alone.
    pub fn shape(&self) -> StepShape {
        let (n, d) = self.data.shape();
        StepShape {
            n,
            d,
            phi: self.kind.phi(),
            has_reg: self.reg_lambda > 0.0,
            copyright: self.copyright.as_ref().map(|c| (c.variant, c.rows.len())),
        }
    }

    /// Step cost in work units, from the shape alone (equals the built problem's `cost()`).
    pub fn cost_wu(&self) -> u64 {
        step_flops(&self.shape()).div_ceil(FLOPS_PER_WU).max(1)
    }

    /// Cheap checks: shapes, sizes, hyper-parameters, cost. No data is generated.
    pub fn check_limits(&self, limits: &TaskLimits) -> Result<(), TaskError> {
        let (n, d) = self.data.shape();
        if n == 0 || d == 0 {
            return Err(TaskError::Shape(format!("{n}x{d}: need at least one row and column")));
        }
        if d > limits.max_params {
            return Err(TaskError::TooManyParams { params: d, limit: limits.max_params });
        }
        let bytes = n.saturating_mul(d).saturating_add(n).saturating_mul(8);
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
            TaskData::Synthetic { scale, .. } => {
                if !(*scale > 0.0) || !scale.is_finite() {
                    return Err(TaskError::BadValue { what: "synthetic scale", value: *scale });
                }
            }
        }
        if !(self.reg_lambda >= 0.0) || !self.reg_lambda.is_finite() {
            return Err(TaskError::BadValue { what: "regulariser lambda", value: self.reg_lambda });
        }
        if !self.target_score.is_finite() {
            return Err(TaskError::BadValue { what: "target score", value: self.target_score });
        }
        if let Some(c) = &self.copyright {
            self.copyright_option(c).validate(n)?;
        }
        let cost = self.cost_wu();
        if cost > limits.max_step_cost_wu {
            return Err(TaskError::TooCostly { cost, cap: limits.max_step_cost_wu });
        }
        Ok(())
    }

    fn copyright_option(&self, c: &CopyrightSpec) -> Copyright {
        Copyright { rows: c.rows.iter().map(|&r| r as usize).collect(), gamma: c.gamma, variant: c.variant }
    }

    /// Admission (DESIGN.md §3): [`TaskSpec::check_limits`], then the data is built and
    /// scanned for exact zeros and duplicate rows, then the problem is constructed.
    pub fn admit(&self, limits: &TaskLimits) -> Result<SoftmaxProblem, TaskError> {
        self.check_limits(limits)?;
        self.build_unchecked()
    }

    /// Builds the problem, scanning the data, without the size and cost limits (for specs
    /// already admitted, such as a genesis task).
    pub fn build_unchecked(&self) -> Result<SoftmaxProblem, TaskError> {
        let (n, d) = self.data.shape();
        let (a, b) = match &self.data {
            TaskData::Inline { a, b, .. } => {
                let m = Mat::from_vec(n, d, a.clone()).map_err(|e| TaskError::Shape(e.to_string()))?;
                (m, b.clone())
            }
            TaskData::Synthetic { seed, scale, .. } => {
                let (a, b, _) = Synthetic { n, d, seed: *seed, scale: *scale }.generate(self.kind.phi())?;
                (a, b)
            }
        };
        check_dense(&a)?;
        let w2 = (self.reg_lambda > 0.0).then(|| uniform_reg(self.reg_lambda, n));
        let copyright = self.copyright.as_ref().map(|c| self.copyright_option(c));
        let p = SoftmaxProblem::new(self.kind.phi(), a, b, SoftmaxOptions { w2, mask: None, copyright })?;
        debug_assert_eq!(p.cost(), self.cost_wu());
        Ok(p)
    }
}

/// Rejects exact zeros (NaN/inf are the problem's own check) and duplicate rows.
fn check_dense(a: &Mat) -> Result<(), TaskError> {
    for i in 0..a.rows() {
        if let Some(j) = a.row(i).iter().position(|v| *v == 0.0) {
            return Err(TaskError::ExactZero { row: i, col: j });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> TaskLimits {
        TaskLimits { max_data_bytes: 4 << 20, max_step_cost_wu: 200, max_params: 1 << 20 }
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

    #[test]
    fn synthetic_spec_is_admitted_and_cost_matches_the_problem() {
        let spec = synthetic(500, 8);
        let p = spec.admit(&limits()).unwrap();
        assert_eq!(p.cost(), spec.cost_wu());
        assert_eq!(p.dim(), 8);
    }

    #[test]
    fn inline_zeros_and_duplicate_rows_are_rejected() {
        let mut spec = TaskSpec {
            data: TaskData::Inline { rows: 3, cols: 2, a: vec![1.0, 2.0, 3.0, 0.0, 5.0, 6.0], b: vec![0.2, 0.3, 0.5] },
            ..synthetic(1, 1)
        };
        assert_eq!(spec.admit(&limits()).unwrap_err(), TaskError::ExactZero { row: 1, col: 1 });
        spec.data = TaskData::Inline { rows: 3, cols: 2, a: vec![1.0, 2.0, 3.0, 4.0, 1.0, 2.0], b: vec![0.2, 0.3, 0.5] };
        assert_eq!(spec.admit(&limits()).unwrap_err(), TaskError::DuplicateRow { first: 0, second: 2 });
        spec.data = TaskData::Inline { rows: 3, cols: 2, a: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], b: vec![0.2, 0.3, 0.5] };
        assert!(spec.admit(&limits()).is_ok());
    }

    #[test]
    fn limits_are_checked_before_any_data_is_built() {
        let big = synthetic(1_000_000, 64);
        assert!(matches!(big.admit(&limits()), Err(TaskError::TooLarge { .. })));
        let costly = synthetic(5000, 256);
        let lim = TaskLimits { max_data_bytes: 1 << 30, ..limits() };
        assert!(matches!(costly.admit(&lim), Err(TaskError::TooCostly { .. })));
        let wide = TaskLimits { max_params: 4, ..limits() };
        assert!(matches!(synthetic(10, 8).admit(&wide), Err(TaskError::TooManyParams { .. })));
        let bad_shape = TaskSpec { data: TaskData::Inline { rows: 2, cols: 2, a: vec![1.0; 3], b: vec![0.5; 2] }, ..synthetic(1, 1) };
        assert!(matches!(bad_shape.admit(&limits()), Err(TaskError::Shape(_))));
        let nan_target = TaskSpec { target_score: f64::NAN, ..synthetic(10, 2) };
        assert!(matches!(nan_target.admit(&limits()), Err(TaskError::BadValue { .. })));
        let bad_rows = TaskSpec { copyright: Some(CopyrightSpec { rows: vec![20], gamma: 0.1, variant: CopyrightVariant::All }), ..synthetic(10, 2) };
        assert!(matches!(bad_rows.admit(&limits()), Err(TaskError::Problem(_))));
    }

    #[test]
    fn kind_names_round_trip() {
        for k in [TaskKind::Softmax, TaskKind::ResnetSoftmax] {
            assert_eq!(k.name().parse::<TaskKind>().unwrap(), k);
        }
        assert!("sdp".parse::<TaskKind>().is_err());
    }
}
