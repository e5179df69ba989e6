//! Seeded planted instances of the attention kind (SOLVERS.md §5.4, §5.6).
//!
//! Consensus-relevant: a task may name a synthetic dataset by its seed, and every node
//! generates the same bits from stream `(tag 8, t = 2)` of `synthetic_seed(seed)`. Owns no
//! solver logic.

use super::{AttentionProblem, Kernel, Level};
use crate::compute::det::rng::tags;
use crate::compute::det::{self, DetRng, Mat, math};
use crate::compute::problem::ProblemError;
use crate::compute::softmax::synthetic_seed;

/// The stream `t` of attention datasets (softmax-family data uses `t = 0` and `1`).
pub const ATTENTION_STREAM: u32 = 2;

/// A planted instance: rows of `A1, A2, A3` iid `N(0, scale²·I/d)`, `X*` and `Y*` with iid
/// `N(0, 1)` entries (`X*` shrunk into half the iterate ball if it lies outside), `B = S(X*) A3 Y*` for the kernel, so the data loss is zero at `(X*,
/// Y*)`. Drawn in the order `A1, A2, A3, X*, Y*`, each row-major (SOLVERS.md §5.6).
///
/// With `scale = 1` the scores `a_jᵀ X* a_i` have unit variance: attention neither
/// uniform nor one-hot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionSynthetic {
    /// Token rows.
    pub n: usize,
    /// Width.
    pub d: usize,
    /// User seed.
    pub seed: u64,
    /// Row scale of the token matrices.
    pub scale: f64,
}

/// A generated planted instance.
#[derive(Clone, Debug)]
pub struct Planted {
    /// Queries.
    pub a1: Mat,
    /// Keys.
    pub a2: Mat,
    /// Values.
    pub a3: Mat,
    /// Targets `S(X*) A3 Y*`.
    pub b: Mat,
    /// `[vec(X*); vec(Y*)]`.
    pub x_star: Vec<f64>,
}

impl AttentionSynthetic {
    /// Generates the instance for `kernel`.
    pub fn generate(&self, kernel: Kernel) -> Result<Planted, ProblemError> {
        if self.n == 0 || self.d == 0 {
            return Err(ProblemError::InvalidSpec {
                what: "synthetic",
                reason: format!("n = {}, d = {} must be positive", self.n, self.d),
            });
        }
        if !(self.scale > 0.0) || !self.scale.is_finite() {
            return Err(ProblemError::InvalidSpec {
                what: "synthetic scale",
                reason: format!("{} is not positive", self.scale),
            });
        }
        let (n, d) = (self.n, self.d);
        let mut rng = DetRng::stream(&synthetic_seed(self.seed), tags::SYNTHETIC, ATTENTION_STREAM);
        let s = self.scale / math::sqrt(d as f64);
        let mut draw = |rows: usize, sc: f64| Mat::from_fn(rows, d, |_, _| rng.normal() * sc);
        let a1 = draw(n, s);
        let a2 = draw(n, s);
        let a3 = draw(n, s);
        let xs = draw(d, 1.0);
        let ys = draw(d, 1.0);
        let mut x_star = xs.into_vec();
        let zero = Mat::zeros(n, d);
        let p = AttentionProblem::new(kernel, a1.clone(), a2.clone(), a3.clone(), zero, 0.0)?;
        // X* is shrunk into half of the iterate ball when it lies outside it, so the planted
        // model is an admissible iterate (the ball's radius does not depend on B).
        let (rx, _) = p.bounds();
        let norm = det::nrm2(&x_star);
        if norm > 0.5 * rx {
            det::scal(0.5 * rx / norm, &mut x_star);
        }
        x_star.extend_from_slice(ys.data());
        let b = p.eval(&x_star, Level::Value)?.o;
        Ok(Planted { a1, a2, a3, b, x_star })
    }

    /// The planted task itself, with ridge `rho`.
    pub fn problem(&self, kernel: Kernel, rho: f64) -> Result<(AttentionProblem, Vec<f64>), ProblemError> {
        let p = self.generate(kernel)?;
        Ok((AttentionProblem::new(kernel, p.a1, p.a2, p.a3, p.b, rho)?, p.x_star))
    }
}
