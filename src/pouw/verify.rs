//! Verification of useful work: replay one step of a block's ticket, score an input
//! iterate, and recompute a model update's certificate.
//!
//! # Consensus
//! A block's work is valid only if its input lies in the task's iterate box, scores no
//! worse than the task's best at the parent, and replaying `step(input, seed)` gives
//! exactly the claimed `output_hash` (DESIGN.md §3.2: a hash over the output and the
//! step's whole transcript). A model update is valid only if its params lie in the box,
//! the recomputed certificate equals the claimed one bit for bit, and it improves the
//! task's best score by at least the network's relative margin.

use crate::compute::problem::{Certificate, Params, Problem, ProblemError, StepOutput};
use crate::hash::Hash256;

/// Why useful work does not verify.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerifyError {
    /// The numerics rejected the iterate.
    #[error("{0}")]
    Problem(#[from] ProblemError),
    /// The replayed step's output hash differs from the claim (fake work).
    #[error("replayed step gives output {computed}, block claims {claimed}")]
    OutputMismatch {
        /// Recomputed.
        computed: Hash256,
        /// Claimed.
        claimed: Hash256,
    },
    /// The ticket starts from an iterate worse than the task's best.
    #[error("input iterate scores {score:e}, worse than the task's best {best:e}")]
    InputWorse {
        /// Score of the input.
        score: f64,
        /// The best at the parent.
        best: f64,
    },
    /// The recomputed certificate differs from the claimed one.
    #[error("certificate mismatch: claimed score {claimed:e}, recomputed {computed:e}")]
    CertificateMismatch {
        /// Claimed score.
        claimed: f64,
        /// Recomputed score.
        computed: f64,
    },
    /// The update does not improve the best score enough.
    #[error("score {score:e} does not improve the best {best:e} by the relative margin {margin:e}")]
    NotImproving {
        /// The update's score.
        score: f64,
        /// The current best.
        best: f64,
        /// The required relative improvement.
        margin: f64,
    },
}

/// The score of an iterate (its certificate's primary figure).
pub fn score(problem: &dyn Problem, x: &Params) -> Result<f64, VerifyError> {
    Ok(problem.certify(x)?.score)
}

/// Checks a ticket's input: finite, right length, in the box, and scoring no worse than
/// `best`. Returns its score.
pub fn check_input(problem: &dyn Problem, input: &Params, best: f64) -> Result<f64, VerifyError> {
    problem.check_iterate(input)?;
    let s = score(problem, input)?;
    if s > best {
        return Err(VerifyError::InputWorse { score: s, best });
    }
    Ok(s)
}

/// Replays one step and returns its output, checking the output hash against `claimed`.
pub fn replay(
    problem: &dyn Problem,
    input: &Params,
    seed: &[u8; 32],
    claimed: &Hash256,
) -> Result<StepOutput, VerifyError> {
    let out = problem.step(input, seed)?;
    let computed = out.output_hash();
    if computed != *claimed {
        return Err(VerifyError::OutputMismatch { computed, claimed: *claimed });
    }
    Ok(out)
}

/// True when `a` and `b` are the same certificate bit for bit (`-0.0 != 0.0`, names equal).
pub fn certificates_identical(a: &Certificate, b: &Certificate) -> bool {
    a.score.to_bits() == b.score.to_bits()
        && a.loss.to_bits() == b.loss.to_bits()
        && a.grad_norm.to_bits() == b.grad_norm.to_bits()
        && a.figures.len() == b.figures.len()
        && a.figures.iter().zip(&b.figures).all(|(x, y)| x.name == y.name && x.value.to_bits() == y.value.to_bits())
}

/// Whether `score` improves `best` by the relative margin: `score < best - margin·|best|`.
pub fn improves(score: f64, best: f64, margin: f64) -> bool {
    score < best - margin * best.abs()
}

/// Checks a model update: recomputes the certificate of `params`, requires it to equal
/// `claimed` bit for bit and to improve `best` by `margin`. Returns the certificate.
pub fn check_model_update(
    problem: &dyn Problem,
    params: &Params,
    claimed: &Certificate,
    best: f64,
    margin: f64,
) -> Result<Certificate, VerifyError> {
    problem.check_iterate(params)?;
    let cert = problem.certify(params)?;
    if !certificates_identical(&cert, claimed) {
        return Err(VerifyError::CertificateMismatch { claimed: claimed.score, computed: cert.score });
    }
    if !improves(cert.score, best, margin) {
        return Err(VerifyError::NotImproving { score: cert.score, best, margin });
    }
    Ok(cert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::nmr::Phi;
    use crate::compute::softmax::{SoftmaxOptions, SoftmaxProblem, Synthetic};

    fn problem() -> SoftmaxProblem {
        let (a, b, _) = Synthetic { n: 200, d: 6, seed: 3, scale: 0.5 }.generate(Phi::Softmax).unwrap();
        SoftmaxProblem::new(Phi::Softmax, a, b, SoftmaxOptions::default()).unwrap()
    }

    #[test]
    fn replay_accepts_the_true_output_and_rejects_fake_work() {
        let p = problem();
        let x = p.init();
        let out = p.step(&x, &[4u8; 32]).unwrap();
        assert_eq!(replay(&p, &x, &[4u8; 32], &out.output_hash()).unwrap(), out);
        let fake = Hash256([9u8; 32]);
        assert!(matches!(replay(&p, &x, &[4u8; 32], &fake), Err(VerifyError::OutputMismatch { .. })));
        assert!(matches!(replay(&p, &x, &[5u8; 32], &out.output_hash()), Err(VerifyError::OutputMismatch { .. })));
        // The params hash alone (v1's output hash) is not the v2 output hash.
        assert!(matches!(replay(&p, &x, &[4u8; 32], &out.params.hash()), Err(VerifyError::OutputMismatch { .. })));
    }

    #[test]
    fn worse_inputs_and_bad_certificates_are_rejected() {
        let p = problem();
        let x0 = p.init();
        let (x1, _) = p.solve(&Default::default(), &mut |_| {}).unwrap();
        let best = score(&p, &x1).unwrap();
        assert!(matches!(check_input(&p, &x0, best), Err(VerifyError::InputWorse { .. })));
        assert!(check_input(&p, &x1, best).is_ok());
        let s0 = score(&p, &x0).unwrap();
        let cert = p.certify(&x1).unwrap();
        assert!(check_model_update(&p, &x1, &cert, s0, 1e-6).is_ok());
        assert!(matches!(check_model_update(&p, &x1, &cert, best, 1e-6), Err(VerifyError::NotImproving { .. })));
        let mut forged = cert.clone();
        forged.score = f64::from_bits(forged.score.to_bits() + 1);
        assert!(matches!(check_model_update(&p, &x1, &forged, s0, 1e-6), Err(VerifyError::CertificateMismatch { .. })));
        let nan = Params(vec![f64::NAN; 6]);
        assert!(matches!(check_model_update(&p, &nan, &cert, s0, 1e-6), Err(VerifyError::Problem(_))));
        let mut outside = x1.clone();
        outside.0[2] = 2.0 * p.x_bound();
        assert!(matches!(
            check_model_update(&p, &outside, &cert, s0, 1e-6),
            Err(VerifyError::Problem(ProblemError::OutsideBox { index: 2, .. }))
        ));
        assert!(matches!(
            check_input(&p, &outside, f64::INFINITY),
            Err(VerifyError::Problem(ProblemError::OutsideBox { .. }))
        ));
    }
}
