//! The `Problem` trait every task kind implements, and the values it trades in: `Params`,
//! `Certificate`, solve options and reports.
//!
//! Owns the contract between the numerics and the chain: a mining ticket is one
//! [`Problem::step`], a model update is checked with [`Problem::certify`], and
//! [`Problem::cost`] prices a step in work units. It must not know about blocks or
//! transactions.

use crate::compute::det::{CholError, Mat};
use crate::hash::{sha256d_parts, Hash256};
use serde::{Deserialize, Serialize};

/// One work unit is about 10^6 floating-point operations by the kind's flop formula.
pub const FLOPS_PER_WU: u64 = 1_000_000;

/// A parameter vector (the iterate of a solver).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Params(pub Vec<f64>);

impl Params {
    /// `H(len as u64 LE || each f64 LE)`: the params hash of DESIGN.md §2.
    ///
    /// # Consensus
    /// Header `input_hash` and `output_hash` are this hash of the step's input and output.
    pub fn hash(&self) -> Hash256 {
        let mut bytes = Vec::with_capacity(self.0.len() * 8);
        for v in &self.0 {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        sha256d_parts(&[&(self.0.len() as u64).to_le_bytes(), &bytes])
    }

    /// Number of coordinates.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no coordinates.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The coordinates.
    pub fn as_slice(&self) -> &[f64] {
        &self.0
    }

    /// Checks the length and that every value is finite.
    pub fn check(&self, dim: usize) -> Result<(), ProblemError> {
        if self.0.len() != dim {
            return Err(ProblemError::Dimension { what: "params", expected: dim, got: self.0.len() });
        }
        if let Some(i) = self.0.iter().position(|v| !v.is_finite()) {
            return Err(ProblemError::NonFinite { what: "params", index: i });
        }
        Ok(())
    }
}

/// A named figure of a certificate (e.g. `loss_protected`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// Stable lower-case name.
    pub name: String,
    /// The value (always finite).
    pub value: f64,
}

/// What a verifier recomputes to check a model update; bit-deterministic, all finite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    /// The kind's primary figure, lower is better (the objective for regressions).
    pub score: f64,
    /// The objective value.
    pub loss: f64,
    /// `||∇ objective||`.
    pub grad_norm: f64,
    /// The kind's own further figures.
    pub figures: Vec<Figure>,
}

impl Certificate {
    /// The figure named `name`, if the kind reports it.
    pub fn figure(&self, name: &str) -> Option<f64> {
        self.figures.iter().find(|f| f.name == name).map(|f| f.value)
    }

    /// Checks every number is finite (a certificate with NaN or inf is invalid).
    pub fn check_finite(&self) -> Result<(), ProblemError> {
        let all = [self.score, self.loss, self.grad_norm].into_iter().chain(self.figures.iter().map(|f| f.value));
        for (i, v) in all.enumerate() {
            if !v.is_finite() {
                return Err(ProblemError::NonFinite { what: "certificate", index: i });
            }
        }
        Ok(())
    }
}

/// Options of an off-chain solve.
#[derive(Clone, Debug)]
pub struct SolveOpts {
    /// Iteration cap.
    pub max_iter: usize,
    /// Stop when `||∇L|| <= tol_grad · max(1, ||∇L(x0)||)`.
    pub tol_grad: f64,
    /// Start here instead of [`Problem::init`].
    pub x0: Option<Params>,
}

impl Default for SolveOpts {
    fn default() -> Self {
        SolveOpts { max_iter: 100, tol_grad: 1e-10, x0: None }
    }
}

/// Progress of one solver iteration, for progress bars and logs.
#[derive(Clone, Debug, Serialize)]
pub struct IterReport {
    /// 1-based iteration number.
    pub iter: usize,
    /// Objective after the iteration.
    pub loss: f64,
    /// Gradient norm after the iteration.
    pub grad_norm: f64,
    /// Step length taken by the line search.
    pub step_len: f64,
    /// Levenberg–Marquardt shift used (0 when the Hessian factored as is).
    pub mu: f64,
}

/// Why a solve stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The gradient tolerance was met.
    GradientTolerance,
    /// The Newton decrement fell below rounding level.
    NewtonDecrement,
    /// The line search found no decrease (the iterate is at rounding level).
    Stalled,
    /// The iteration cap was reached.
    MaxIterations,
}

/// What an off-chain solve did.
#[derive(Clone, Debug, Serialize)]
pub struct SolveInfo {
    /// Iterations taken.
    pub iterations: usize,
    /// Why it stopped.
    pub reason: StopReason,
    /// True when the tolerance (gradient or Newton decrement) was met.
    pub converged: bool,
    /// `||∇L(x0)||`.
    pub grad_norm0: f64,
    /// The largest Levenberg–Marquardt shift used (> 0 means the Hessian was not PD).
    pub max_mu: f64,
    /// Per-iteration history.
    pub history: Vec<IterReport>,
}

/// A numerical task: the unit of useful work.
///
/// # Consensus
/// [`Problem::step`], [`Problem::certify`] and [`Problem::cost`] must be bit-deterministic
/// (only `compute::det`), and `step` must (DESIGN.md §3): (a) first perturb every coordinate
/// by `2^-40·max(|x_i|, 2^-20)·r_i`, `r_i` uniform in [-1, 1] from stream tag 10; (b)
/// decrease the objective in expectation; (d) cost what `cost` says within 2x; (e) do the
/// same work for every iterate.
pub trait Problem: Send + Sync {
    /// The task kind's name (`softmax`, `resnet_softmax`, ...).
    fn kind(&self) -> &'static str;
    /// Number of parameters.
    fn dim(&self) -> usize;
    /// The starting iterate.
    fn init(&self) -> Params;
    /// One mining ticket: a seeded perturbation then one seeded sketched step.
    fn step(&self, x: &Params, seed: &[u8; 32]) -> Result<Params, ProblemError>;
    /// The certificate of `x`.
    fn certify(&self, x: &Params) -> Result<Certificate, ProblemError>;
    /// Price of one step in work units (1 WU ≈ 10^6 flops by the kind's formula).
    fn cost(&self) -> u64;
    /// The model's output on new inputs (rows of `input`).
    fn predict(&self, x: &Params, input: &Mat) -> Result<Vec<f64>, ProblemError>;
    /// Off-chain solve to a tolerance; calls `observe` after every iteration.
    fn solve(
        &self,
        opts: &SolveOpts,
        observe: &mut dyn FnMut(&IterReport),
    ) -> Result<(Params, SolveInfo), ProblemError>;
}

/// Why a problem could not be built or evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProblemError {
    /// A vector or matrix has the wrong size.
    #[error("{what} has dimension {got}, expected {expected}")]
    Dimension {
        /// What was wrong.
        what: &'static str,
        /// The size wanted.
        expected: usize,
        /// The size given.
        got: usize,
    },
    /// A value is NaN or infinite.
    #[error("{what} has a non-finite value at index {index}")]
    NonFinite {
        /// What was wrong.
        what: &'static str,
        /// Flat index of the first bad value.
        index: usize,
    },
    /// `α = Σ φ(z)` is not positive, so `f = φ(z)/α` is undefined.
    #[error("normaliser alpha = {alpha:e} is not positive: the map is undefined at this point")]
    AlphaNotPositive {
        /// The value of α.
        alpha: f64,
    },
    /// `z_i = (Ax)_i` exceeds the overflow guard for an unshifted exponential.
    #[error("z[{index}] = {z:e} exceeds {limit}: exp overflows (resnet_softmax has no shift invariance)")]
    ExpOverflow {
        /// Row index.
        index: usize,
        /// The value of z there.
        z: f64,
        /// The guard.
        limit: f64,
    },
    /// The protected loss ℓ₁ vanished, so γ/ℓ₁ is undefined.
    #[error("protected loss l1 = {l1:e} is too small: gamma/l1 is undefined")]
    ProtectedLossZero {
        /// The value of ℓ₁.
        l1: f64,
    },
    /// A specification value is out of its domain.
    #[error("invalid {what}: {reason}")]
    InvalidSpec {
        /// Which field.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A factorisation failed where it must not.
    #[error(transparent)]
    Cholesky(#[from] CholError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_hash_commits_to_length_and_bits() {
        let a = Params(vec![1.0, 2.0]);
        assert_eq!(a.hash(), Params(vec![1.0, 2.0]).hash());
        assert_ne!(a.hash(), Params(vec![1.0, 2.0, 0.0]).hash());
        assert_ne!(Params(vec![0.0]).hash(), Params(vec![-0.0]).hash());
    }

    #[test]
    fn params_check_rejects_wrong_length_and_nan() {
        assert!(Params(vec![0.0; 3]).check(3).is_ok());
        assert_eq!(
            Params(vec![0.0; 2]).check(3),
            Err(ProblemError::Dimension { what: "params", expected: 3, got: 2 })
        );
        assert_eq!(
            Params(vec![0.0, f64::NAN]).check(2),
            Err(ProblemError::NonFinite { what: "params", index: 1 })
        );
    }
}
