//! Seeded sketches of the sampled Gauss–Newton steps (CountSketch and JL leverage scores,
//! leverage-score row sampling; SOLVERS.md §0.3, §0.5 item 3) and the fixed ridge every
//! ticket step factors with.
//!
//! Owns the random linear algebra that a step draws from its seed. Every random number
//! comes from [`DetRng`] streams of the step seed, in a fixed order, and every sum from
//! `compute::det`, so two nodes draw the same sketch bit for bit. Constant work: loop
//! counts depend on shapes only. It must not know which problem it serves.

use crate::compute::det::rng::tags;
use crate::compute::det::{self, CholError, Cholesky, DetRng, Mat, count_flops, math};

/// Fixed ridge of the sketched Gram factorisations, relative to `tr(G)/d`.
pub const SKETCH_RIDGE_REL: f64 = 1e-6;

/// Columns of the JL sign matrix of [`jl_leverage`].
pub const JL_COLS: usize = 16;

/// Leverage scores of the rows of `m` relative to a CountSketch of it (stream `(tag 2,
/// t = 0)`): `ℓ_i = ||L⁻¹ m_i||²` where `L Lᵀ = (S M)ᵀ(S M) + ridge`. Row `r` consumes one
/// `below(sketch_rows)` then one `sign()`. [R] SOLVERS.md §0.5 item 3 (no JL compression).
///
/// # Errors
/// The sketched Gram does not factor (a non-finite or non-positive pivot).
pub fn countsketch_leverage(m: &Mat, sketch_rows: usize, seed: &[u8; 32]) -> Result<Vec<f64>, CholError> {
    let chol = sketched_factor(m, sketch_rows, seed)?;
    let mut y = m.clone();
    det::trsm_rows(chol.l(), &mut y);
    Ok((0..m.rows()).map(|r| det::dot(y.row(r), y.row(r))).collect())
}

/// Leverage scores approximated with a JL projection (Drineas et al. 2012): `ℓ_i =
/// ||m_i L⁻ᵀ Π||²` with `L` as in [`countsketch_leverage`] and `Π` a `d x JL_COLS` matrix
/// of signs `/ sqrt(JL_COLS)` (stream `(tag 2, t = 1)`, row-major), so the pass over the
/// rows costs `rows·d·JL_COLS` flops instead of `rows·d²`. [R] SOLVERS.md §0.5.
///
/// # Errors
/// The sketched Gram does not factor.
pub fn jl_leverage(m: &Mat, sketch_rows: usize, seed: &[u8; 32]) -> Result<Vec<f64>, CholError> {
    let d = m.cols();
    let chol = sketched_factor(m, sketch_rows, seed)?;
    let mut rng = DetRng::stream(seed, tags::LEVERAGE_SKETCH, 1);
    let scale = 1.0 / math::sqrt(JL_COLS as f64);
    let pi = Mat::from_fn(d, JL_COLS, |_, _| rng.sign() * scale);
    // Ω = L⁻ᵀ Π, one column at a time.
    let mut omega = Mat::zeros(d, JL_COLS);
    for j in 0..JL_COLS {
        let mut col: Vec<f64> = (0..d).map(|i| pi.get(i, j)).collect();
        det::solve_lower_t(chol.l(), &mut col);
        for (i, v) in col.into_iter().enumerate() {
            omega.set(i, j, v);
        }
    }
    let mut y = Mat::zeros(m.rows(), JL_COLS);
    det::gemm(m.view(), omega.view(), &mut y, false);
    Ok((0..m.rows()).map(|r| det::dot(y.row(r), y.row(r))).collect())
}

/// The Cholesky factor of a CountSketch's Gram (stream `(tag 2, t = 0)`) with the fixed
/// ridge.
fn sketched_factor(m: &Mat, sketch_rows: usize, seed: &[u8; 32]) -> Result<Cholesky, CholError> {
    let (rows, d) = (m.rows(), m.cols());
    let mut rng = DetRng::stream(seed, tags::LEVERAGE_SKETCH, 0);
    let mut sm = Mat::zeros(sketch_rows, d);
    count_flops(rows as u64);
    for r in 0..rows {
        let h = rng.below(sketch_rows as u64) as usize;
        let sign = rng.sign();
        det::axpy(sign, m.row(r), sm.row_mut(h));
    }
    let mut g = Mat::zeros(d, d);
    det::syrk(sm.view(), None, &mut g);
    Cholesky::factor_shifted(&g, ridge(&g))
}

/// The fixed ridge `SKETCH_RIDGE_REL·tr(G)/d + MIN_POSITIVE` added before factoring `G`.
pub fn ridge(g: &Mat) -> f64 {
    let d = g.rows();
    count_flops(d as u64);
    let diag: Vec<f64> = (0..d).map(|i| g.get(i, i)).collect();
    SKETCH_RIDGE_REL * det::sum(&diag) / d as f64 + f64::MIN_POSITIVE
}

/// Why rows could not be sampled.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("leverage scores sum to {total:e}: rows cannot be sampled")]
pub struct SamplingError {
    /// The sum of the scores (zero, negative or non-finite).
    pub total: f64,
}

/// Draws `k` rows with replacement, row `i` with probability `ℓ_i / Σℓ`, one `u01()` per
/// draw from stream `(tag 1, t = 0)` and an inverse-CDF binary search over the running
/// (left-to-right) prefix sums with a fixed number of halvings (`ceil(log2 rows)`).
/// Returns the scaled rows `m_i / sqrt(k q_i)`, so that `E[SᵀS] = MᵀM`.
///
/// [R] SOLVERS.md §0.5 item 3 samples each row by its own Bernoulli trial; this draws a
/// fixed number of rows instead, so the work of a step does not depend on the iterate
/// (DESIGN.md §3.2).
pub fn sample_rows(m: &Mat, lev: &[f64], k: usize, seed: &[u8; 32]) -> Result<Mat, SamplingError> {
    let (rows, d) = (m.rows(), m.cols());
    let mut prefix = Vec::with_capacity(rows);
    let mut acc = 0.0;
    count_flops(rows as u64);
    for &l in lev {
        acc += l;
        prefix.push(acc);
    }
    if !(acc > 0.0) || !acc.is_finite() {
        return Err(SamplingError { total: acc });
    }
    let halvings = search_halvings(rows);
    let mut rng = DetRng::stream(seed, tags::ROW_SAMPLING, 0);
    let mut s = Mat::zeros(k, d);
    count_flops((k * (2 + halvings) + k * d) as u64);
    for draw in 0..k {
        let target = rng.u01() * acc;
        let (mut lo, mut hi) = (0usize, rows - 1);
        // The first index whose prefix exceeds the target (the last on rounding). Always
        // `halvings` rounds: once lo == hi the rounds change nothing.
        for _ in 0..halvings {
            let mid = (lo + hi) / 2;
            if prefix[mid] > target {
                hi = mid;
            } else {
                lo = (mid + 1).min(hi);
            }
        }
        let scale = math::sqrt(acc / (k as f64 * lev[lo]));
        for (o, v) in s.row_mut(draw).iter_mut().zip(m.row(lo)) {
            *o = v * scale;
        }
    }
    Ok(s)
}

/// `ceil(log2(rows))`: enough halvings to narrow `[0, rows)` to one index.
fn search_halvings(rows: usize) -> usize {
    (usize::BITS - rows.saturating_sub(1).leading_zeros()) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_halvings_find_the_same_row_as_a_plain_binary_search() {
        for rows in [1usize, 2, 3, 7, 8, 9, 100, 1024, 1025] {
            let lev: Vec<f64> = (0..rows).map(|i| 1.0 + (i % 5) as f64).collect();
            let m = Mat::from_fn(rows, 1, |i, _| i as f64 + 1.0);
            let s = sample_rows(&m, &lev, 64, &[9u8; 32]).unwrap();
            // Recover the drawn row from its scaled value and compare with a linear scan.
            let mut rng = DetRng::stream(&[9u8; 32], tags::ROW_SAMPLING, 0);
            let total: f64 = lev.iter().sum();
            for draw in 0..64 {
                let target = rng.u01() * total;
                let mut acc = 0.0;
                let mut want = rows - 1;
                for (i, l) in lev.iter().enumerate() {
                    acc += l;
                    if acc > target {
                        want = i;
                        break;
                    }
                }
                let scale = math::sqrt(total / (64.0 * lev[want]));
                assert_eq!(s.get(draw, 0), (want as f64 + 1.0) * scale, "rows {rows} draw {draw}");
            }
        }
    }

    #[test]
    fn zero_scores_are_an_error_not_a_cheap_sample() {
        let m = Mat::from_fn(4, 2, |i, j| (i + j) as f64);
        assert_eq!(sample_rows(&m, &[0.0; 4], 8, &[1u8; 32]).unwrap_err(), SamplingError { total: 0.0 });
        assert!(sample_rows(&m, &[f64::NAN; 4], 8, &[1u8; 32]).is_err());
    }

    #[test]
    fn leverage_scores_sum_to_about_the_rank() {
        let m = Mat::from_fn(400, 6, |i, j| math::sin((i * 7 + j * 13) as f64) + 0.1 * j as f64);
        let lev = countsketch_leverage(&m, 48, &[2u8; 32]).unwrap();
        let total: f64 = lev.iter().sum();
        // With a sketch of 8d rows the scores are within a small factor of exact (sum = d).
        assert!(total > 6.0 / 3.0 && total < 6.0 * 3.0, "{total}");
        assert_eq!(lev, countsketch_leverage(&m, 48, &[2u8; 32]).unwrap());
        assert_ne!(lev, countsketch_leverage(&m, 48, &[3u8; 32]).unwrap());
    }
}
