//! The `Problem` trait every task kind implements, and the values it trades in: `Params`,
//! `Certificate`, solve options and reports.
//!
//! Owns the contract between the numerics and the chain: a mining ticket is one
//! [`Problem::step`], a model update is checked with [`Problem::certify`], and
//! [`Problem::cost`] prices a step in work units. It must not know about blocks or
//! transactions.

use crate::compute::det::rng::tags;
use crate::compute::det::{CholError, DetRng, Mat, count_flops};
use crate::hash::{Hash256, sha256d_parts};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One milli-work-unit (mWU) is 1000 flops of a kind's calibrated cost formula; step
/// costs, the cost table and the proof-of-work check are all in mWU (DESIGN.md §3.1).
pub const FLOPS_PER_MWU: u64 = 1_000;

/// Domain separator of a step's output hash (DESIGN.md §3.2).
pub const STEP_DOMAIN: &[u8] = b"gradientcoin/step/v2";

/// Domain separator that opens every step transcript.
pub const TRANSCRIPT_DOMAIN: &[u8] = b"gradientcoin/transcript/v2";

/// What one mining ticket computes (DESIGN.md §3.2): the new iterate, its objective, and
/// the digest of every stage's result.
#[derive(Clone, Debug, PartialEq)]
pub struct StepOutput {
    /// The step's output iterate.
    pub params: Params,
    /// The objective at `params` (computed by the step itself).
    pub objective: f64,
    /// SHA-256 over the bit patterns of every stage's result, in the kind's fixed order.
    pub digest: [u8; 32],
}

impl StepOutput {
    /// `H("gradientcoin/step/v2" || params_hash(params) || digest)`.
    ///
    /// # Consensus
    /// A header's `work.output_hash`. It binds the output to the whole transcript, so it
    /// cannot be known without running every stage, even when the step leaves the
    /// iterate where it was.
    pub fn output_hash(&self) -> Hash256 {
        sha256d_parts(&[STEP_DOMAIN, &self.params.hash().0, &self.digest])
    }
}

/// One stage result absorbed by a [`Transcript`] (kept only by a recording transcript).
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    /// One value.
    Scalar(f64),
    /// A vector.
    Vector(Vec<f64>),
    /// A choice.
    Index(u64),
}

/// The running digest of a step's stages (DESIGN.md §3.2): SHA-256 over the IEEE-754 bit
/// patterns (little-endian) of every value a stage produced, vectors prefixed by their
/// length, in the order the kind documents.
pub struct Transcript {
    hasher: Sha256,
    /// The stages in order, when recording (tests and audits; never in mining).
    log: Option<Vec<Stage>>,
}

impl Transcript {
    /// A transcript for a step of `kind`.
    pub fn new(kind: &str) -> Transcript {
        let mut h = Sha256::new();
        h.update(TRANSCRIPT_DOMAIN);
        h.update((kind.len() as u64).to_le_bytes());
        h.update(kind.as_bytes());
        Transcript { hasher: h, log: None }
    }

    /// A transcript that also keeps every stage, so a test can check what was absorbed.
    pub fn recording(kind: &str) -> Transcript {
        Transcript { log: Some(Vec::new()), ..Transcript::new(kind) }
    }

    /// The digest of `stages` absorbed in order by a transcript of `kind`.
    pub fn digest_of(kind: &str, stages: &[Stage]) -> [u8; 32] {
        let mut t = Transcript::new(kind);
        for s in stages {
            match s {
                Stage::Scalar(v) => t.scalar(*v),
                Stage::Vector(v) => t.vector(v),
                Stage::Index(i) => t.index(*i),
            }
        }
        t.finish()
    }

    /// Absorbs one value.
    pub fn scalar(&mut self, v: f64) {
        self.hasher.update(v.to_bits().to_le_bytes());
        if let Some(log) = &mut self.log {
            log.push(Stage::Scalar(v));
        }
    }

    /// Absorbs a vector (its length, then every value in order).
    pub fn vector(&mut self, v: &[f64]) {
        self.hasher.update((v.len() as u64).to_le_bytes());
        for x in v {
            self.hasher.update(x.to_bits().to_le_bytes());
        }
        if let Some(log) = &mut self.log {
            log.push(Stage::Vector(v.to_vec()));
        }
    }

    /// Absorbs an index (a choice the step made).
    pub fn index(&mut self, i: u64) {
        self.hasher.update(i.to_le_bytes());
        if let Some(log) = &mut self.log {
            log.push(Stage::Index(i));
        }
    }

    /// The digest, and the recorded stages when recording.
    pub fn finish_with_log(self) -> ([u8; 32], Vec<Stage>) {
        (self.hasher.finalize().into(), self.log.unwrap_or_default())
    }

    /// The digest.
    pub fn finish(self) -> [u8; 32] {
        self.finish_with_log().0
    }
}

/// The mining ticket's first operation (DESIGN.md §3.2 (a)): `x_i = fma(2^-40·max(|x_i|,
/// floor), r_i, x_i)` with `r_i = 2·u01() - 1` from stream `(tag 10, t = 0)`, in coordinate
/// order, so nothing computed for one seed serves another.
///
/// `floor` is the kind's: large enough that the perturbation of a zero coordinate still
/// changes the bits of every stage after it (softmax: `2^-10` of the iterate box, so `z =
/// Ax` moves by about `2^-43` at `x = 0`, far above the rounding of `e^z`). DESIGN.md's
/// fixed `2^-20` moved `z` by about `2^-60` at the start of every task, below rounding:
/// with a deterministic step every seed then gave the same bits from `x = 0`.
///
/// # Consensus
/// Part of every step of every kind.
pub fn perturb(x: &[f64], seed: &[u8; 32], floor: f64) -> Vec<f64> {
    const SCALE: f64 = 1.0 / (1u64 << 40) as f64;
    let mut rng = DetRng::stream(seed, tags::TICKET_PERTURBATION, 0);
    count_flops(3 * x.len() as u64);
    x.iter()
        .map(|&xi| {
            let r = 2.0 * rng.u01() - 1.0;
            (xi.abs().max(floor) * SCALE).mul_add(r, xi)
        })
        .collect()
}

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

/// `Err(NonFinite { what, index })` at the first NaN or infinity of `v`.
pub fn require_finite(what: &'static str, v: &[f64]) -> Result<(), ProblemError> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(ProblemError::NonFinite { what, index }),
        None => Ok(()),
    }
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
    /// Stop when `||∇L|| <= tol_grad · ||∇L(x0)||` (relative; SOLVERS.md §0.5 item 4).
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
    /// A closed-form solution (one linear solve, no iterations to converge).
    ClosedForm,
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
/// [`Problem::step`], [`Problem::certify`], [`Problem::check_iterate`] and
/// [`Problem::cost`] must be bit-deterministic (only `compute::det`), and `step` must
/// (DESIGN.md §3.2): (a) first [`perturb`] every coordinate; (b) absorb every stage's
/// result into a [`Transcript`]; (c) do the same work for every admitted task of its
/// shape and every iterate in the box — no early exit, no data-dependent loop count;
/// (d) return an error, never a cheap fallback output, when a value is non-finite or a
/// factorisation fails; (e) cost what `cost` says (the calibration benchmark measures it).
pub trait Problem: Send + Sync {
    /// The task kind's name (`softmax`, `resnet_softmax`, ...).
    fn kind(&self) -> &'static str;
    /// Number of parameters.
    fn dim(&self) -> usize;
    /// The starting iterate (inside the box).
    fn init(&self) -> Params;
    /// Checks that `x` is an admissible iterate: the task's dimension, every value finite
    /// and inside the task's iterate box (DESIGN.md §3.2). A block whose witness fails
    /// this is invalid.
    fn check_iterate(&self, x: &Params) -> Result<(), ProblemError>;
    /// The floor of the ticket's [`perturb`]ation: large enough that perturbing a zero
    /// coordinate changes the bits of every later stage of the step.
    fn perturbation_floor(&self) -> f64;
    /// One mining ticket: the seeded perturbation, then the kind's constant-work step.
    fn step(&self, x: &Params, seed: &[u8; 32]) -> Result<StepOutput, ProblemError>;
    /// The certificate of `x`.
    fn certify(&self, x: &Params) -> Result<Certificate, ProblemError>;
    /// Price of one step in mWU ([`FLOPS_PER_MWU`] flops of the kind's calibrated
    /// formula, with its fixed per-step overhead), from the task's shape alone.
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
    /// A stage of a step produced a degenerate value (DESIGN.md §3.2: an error, not a
    /// cheap output).
    #[error("{what} is degenerate ({value:e})")]
    Degenerate {
        /// Which quantity.
        what: &'static str,
        /// Its value.
        value: f64,
    },
    /// A block of an iterate lies outside the task's norm ball.
    #[error("||{what}||_F = {norm:e} is outside the iterate ball of radius {radius:e}")]
    OutsideBall {
        /// Which block.
        what: &'static str,
        /// Its Frobenius norm.
        norm: f64,
        /// The radius.
        radius: f64,
    },
    /// An iterate coordinate lies outside the task's box.
    #[error("{what}[{index}] = {value:e} is outside the iterate box [-{bound:e}, {bound:e}]")]
    OutsideBox {
        /// Which vector.
        what: &'static str,
        /// Coordinate.
        index: usize,
        /// Its value.
        value: f64,
        /// The box half-width.
        bound: f64,
    },
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
    fn output_hash_commits_to_params_and_digest() {
        let out = StepOutput { params: Params(vec![1.0]), objective: 0.5, digest: [3u8; 32] };
        let mut other = out.clone();
        other.digest[31] ^= 1;
        assert_ne!(out.output_hash(), other.output_hash());
        let mut moved = out.clone();
        moved.params = Params(vec![1.0 + f64::EPSILON]);
        assert_ne!(out.output_hash(), moved.output_hash());
        // The objective is reported, not hashed: it is a function of the params.
        let mut obj = out.clone();
        obj.objective = 0.25;
        assert_eq!(out.output_hash(), obj.output_hash());
    }

    #[test]
    fn transcript_separates_values_lengths_and_kinds() {
        let digest = |f: &dyn Fn(&mut Transcript)| {
            let mut t = Transcript::new("softmax");
            f(&mut t);
            t.finish()
        };
        let base = digest(&|t| t.vector(&[1.0, 2.0]));
        assert_eq!(base, digest(&|t| t.vector(&[1.0, 2.0])));
        assert_ne!(base, digest(&|t| t.vector(&[1.0, -2.0])));
        assert_ne!(
            base,
            digest(&|t| {
                t.vector(&[1.0]);
                t.scalar(2.0)
            })
        );
        assert_ne!(digest(&|t| t.scalar(0.0)), digest(&|t| t.scalar(-0.0)));
        let mut other_kind = Transcript::new("resnet_softmax");
        other_kind.vector(&[1.0, 2.0]);
        assert_ne!(base, other_kind.finish());
    }

    #[test]
    fn perturbation_moves_every_coordinate_including_zeros() {
        let x = vec![0.0, 1.0, -3.0, 1e-30];
        let floor = 1e-3;
        let y = perturb(&x, &[5u8; 32], floor);
        for (a, b) in x.iter().zip(&y) {
            assert_ne!(a, b);
            assert!((a - b).abs() <= a.abs().max(floor) / (1u64 << 40) as f64);
        }
        assert_eq!(y, perturb(&x, &[5u8; 32], floor));
        assert_ne!(y, perturb(&x, &[6u8; 32], floor));
    }

    #[test]
    fn params_check_rejects_wrong_length_and_nan() {
        assert!(Params(vec![0.0; 3]).check(3).is_ok());
        assert_eq!(Params(vec![0.0; 2]).check(3), Err(ProblemError::Dimension { what: "params", expected: 3, got: 2 }));
        assert_eq!(Params(vec![0.0, f64::NAN]).check(2), Err(ProblemError::NonFinite { what: "params", index: 1 }));
    }
}
