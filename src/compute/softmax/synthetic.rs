//! Seeded synthetic planted instances of the softmax family (SOLVERS.md §1.2 Task A,
//! §3.3, §9.5) and the default regulariser weights.
//!
//! Consensus-relevant: a task may name a synthetic dataset by its seed, and every node
//! generates the same bits from stream tag 8. Owns no solver logic.

use crate::compute::det::rng::tags;
use crate::compute::det::{self, DetRng, Mat, math};
use crate::compute::nmr::{self, Phi};
use crate::compute::problem::ProblemError;
use crate::hash::sha256_parts;

/// A seeded synthetic planted instance (SOLVERS.md §1.2 Task A, §3.3): rows of `A` iid
/// `N(0, scale²·I/d)`, `x* ~ N(0, I)`, `b = f(A x*)` for the kind's φ, so the data loss is
/// zero at `x*`. Drawn from stream `(tag 8, t = 0)` of `synthetic_seed(seed)`: `A`
/// row-major, then `x*`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Synthetic {
    /// Rows.
    pub n: usize,
    /// Columns (parameters).
    pub d: usize,
    /// User seed.
    pub seed: u64,
    /// Row scale `s_A` (default 0.5).
    pub scale: f64,
}

/// The 32-byte seed of synthetic dataset `seed`: `SHA-256("gradientcoin/synthetic/v1" ||
/// seed as u64 LE)`.
pub fn synthetic_seed(seed: u64) -> [u8; 32] {
    sha256_parts(&[b"gradientcoin/synthetic/v1", &seed.to_le_bytes()]).0
}

impl Synthetic {
    /// Generates `(A, b, x*)`.
    pub fn generate(&self, phi: Phi) -> Result<(Mat, Vec<f64>, Vec<f64>), ProblemError> {
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
        let seed = synthetic_seed(self.seed);
        let mut rng = DetRng::stream(&seed, tags::SYNTHETIC, 0);
        let s = self.scale / math::sqrt(self.d as f64);
        let a = Mat::from_fn(self.n, self.d, |_, _| rng.normal() * s);
        let xs: Vec<f64> = (0..self.d).map(|_| rng.normal()).collect();
        let mut z = vec![0.0; self.n];
        det::gemv(a.view(), &xs, &mut z, false);
        let phi_vals = nmr::eval_phi(phi, &z)?;
        let alpha = det::sum(&phi_vals.u);
        if !(alpha > 0.0) {
            return Err(ProblemError::AlphaNotPositive { alpha });
        }
        let b = phi_vals.u.iter().map(|u| u / alpha).collect();
        Ok((a, b, xs))
    }

    /// `count` distinct rows chosen by a seeded Fisher–Yates shuffle (stream `(tag 8,
    /// t = 1)`), sorted: the protected set of a synthetic copyright task (SOLVERS.md §9.5).
    pub fn protected_rows(&self, count: usize) -> Vec<usize> {
        let seed = synthetic_seed(self.seed);
        let mut rng = DetRng::stream(&seed, tags::SYNTHETIC, 1);
        let mut idx: Vec<usize> = (0..self.n).collect();
        rng.shuffle(&mut idx);
        let mut rows: Vec<usize> = idx.into_iter().take(count.min(self.n)).collect();
        rows.sort_unstable();
        rows
    }
}

/// Default regulariser weights `w²ᵢ = λ/n²` (SOLVERS.md §1.3: losses are O(1/n²)).
pub fn uniform_reg(lambda: f64, n: usize) -> Vec<f64> {
    vec![lambda / (n as f64 * n as f64); n]
}
