//! The seeded numerical dataset of the RICL experiment (SOLVERS.md §2.5, [R]).
//!
//! Consensus-relevant: a task may name a synthetic dataset by its seed, and every node
//! generates the same bits from stream `(tag 8, t = 3)` of `synthetic_seed(seed)`. Owns no
//! solver logic.

use super::RiclProblem;
use crate::compute::det::rng::tags;
use crate::compute::det::{self, DetRng, Mat, math};
use crate::compute::problem::ProblemError;
use crate::compute::softmax::synthetic_seed;

/// The stream `t` of RICL datasets (softmax-family data uses `t = 0, 1`, attention `2`).
pub const RICL_STREAM: u32 = 3;
/// Standard deviation of the prompt's label noise (SOLVERS.md §2.5).
pub const PROMPT_NOISE: f64 = 0.1;
/// The flip probability of the biased prompt of SOLVERS.md §2.5.
pub const BIASED_FLIP: f64 = 0.9;

/// `y = tanh(2βᵀx)` with `β ~ N(0, I/d)`; a prompt of `m` examples `x ~ N(0, I)` of which
/// each one with `βᵀx < 0` is flipped to `−x` with probability `flip` (an imbalanced
/// prompt: `flip = 0` is balanced, `0.9` the biased prompt of §2.5), labels with noise
/// `N(0, PROMPT_NOISE²)`; `v` unbiased noiseless validation examples and `test` unbiased
/// noiseless test examples; `W = I`.
///
/// Drawn in the order of SOLVERS.md §2.7: `β`, the prompt's `x`s (row-major), one flip
/// coin per prompt example (drawn whatever its side, so every `flip` shares the other
/// draws), the prompt noise, the validation `x`s, the test `x`s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RiclSynthetic {
    /// Prompt examples.
    pub m: usize,
    /// Input width.
    pub d: usize,
    /// Validation examples.
    pub v: usize,
    /// Test examples (not part of a task: they come last in the stream).
    pub test: usize,
    /// User seed.
    pub seed: u64,
    /// Probability that a prompt example on the negative side of `β` is flipped.
    pub flip: f64,
}

/// A generated dataset.
#[derive(Clone, Debug)]
pub struct RiclData {
    /// The ground-truth direction `β`.
    pub beta: Vec<f64>,
    /// Prompt inputs (m x d).
    pub xp: Mat,
    /// Prompt labels (noisy).
    pub yp: Vec<f64>,
    /// Validation queries (v x d).
    pub q: Mat,
    /// Validation labels.
    pub yv: Vec<f64>,
    /// Test queries (test x d).
    pub xt: Mat,
    /// Test labels.
    pub yt: Vec<f64>,
}

impl RiclSynthetic {
    /// The dataset of SOLVERS.md §2.5 with this seed: m = 64, d = 4, V = 256, 2000 test
    /// examples, the biased prompt.
    pub fn paper(seed: u64) -> RiclSynthetic {
        RiclSynthetic { m: 64, d: 4, v: 256, test: 2000, seed, flip: BIASED_FLIP }
    }

    /// Generates the dataset.
    pub fn generate(&self) -> Result<RiclData, ProblemError> {
        if self.m == 0 || self.d == 0 || self.v == 0 {
            return Err(ProblemError::InvalidSpec {
                what: "synthetic",
                reason: format!("m = {}, d = {}, v = {} must be positive", self.m, self.d, self.v),
            });
        }
        if !(0.0..=1.0).contains(&self.flip) {
            return Err(ProblemError::InvalidSpec {
                what: "synthetic flip",
                reason: format!("{} is not a probability in [0, 1]", self.flip),
            });
        }
        let d = self.d;
        let mut rng = DetRng::stream(&synthetic_seed(self.seed), tags::SYNTHETIC, RICL_STREAM);
        let sb = 1.0 / math::sqrt(d as f64);
        let beta: Vec<f64> = (0..d).map(|_| rng.normal() * sb).collect();
        let mut xp = Mat::from_fn(self.m, d, |_, _| rng.normal());
        let coins: Vec<bool> = (0..self.m).map(|_| rng.bernoulli(self.flip)).collect();
        for (i, &coin) in coins.iter().enumerate() {
            if coin && det::dot(&beta, xp.row(i)) < 0.0 {
                for x in xp.row_mut(i) {
                    *x = -*x;
                }
            }
        }
        let label = |x: &[f64]| math::tanh(2.0 * det::dot(&beta, x));
        let yp: Vec<f64> = (0..self.m).map(|i| rng.normal().mul_add(PROMPT_NOISE, label(xp.row(i)))).collect();
        let q = Mat::from_fn(self.v, d, |_, _| rng.normal());
        let yv = (0..self.v).map(|k| label(q.row(k))).collect();
        let xt = Mat::from_fn(self.test, d, |_, _| rng.normal());
        let yt = (0..self.test).map(|k| label(xt.row(k))).collect();
        Ok(RiclData { beta, xp, yp, q, yv, xt, yt })
    }

    /// The task itself (`W = I`) with ridge `lambda`, and its data.
    pub fn problem(&self, lambda: f64) -> Result<(RiclProblem, RiclData), ProblemError> {
        let data = self.generate()?;
        let p = RiclProblem::new(
            data.xp.clone(),
            data.yp.clone(),
            Mat::identity(self.d),
            data.q.clone(),
            data.yv.clone(),
            lambda,
        )?;
        Ok((p, data))
    }
}
