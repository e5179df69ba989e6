//! The copyright-safe objective of arXiv 2308.12247 (SOLVERS.md §9) as an option on the
//! softmax-family kinds: `L_c = L_exp + γ_c/ℓ₁ + L_reg`, where `ℓ₁` is the loss on the
//! protected (copyrighted) rows.
//!
//! [R] The objective is a reconstruction (SOLVERS.md §9.1, open question 9): the two
//! variants it could not rule out are options here. Owns the option's validation and its
//! masks; the maths lives in `softmax.rs`, which composes two `nmr` terms.

use crate::compute::problem::ProblemError;
use serde::{Deserialize, Serialize};

/// Which data term the copyright objective fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CopyrightVariant {
    /// `L_exp = ℓ₁ + ℓ₂` with one softmax over all rows (the default, [R]).
    #[default]
    All,
    /// `L_exp = ℓ₂`: fit only the unprotected rows ([R] variant).
    UnprotectedOnly,
    /// `ℓ₁` uses a softmax normalised over the protected rows only ([R] variant).
    PerBlock,
}

impl CopyrightVariant {
    /// Parses `all`, `unprotected` or `per-block`.
    pub fn parse(s: &str) -> Result<CopyrightVariant, ProblemError> {
        match s {
            "all" => Ok(CopyrightVariant::All),
            "unprotected" | "unprotected_only" => Ok(CopyrightVariant::UnprotectedOnly),
            "per-block" | "per_block" => Ok(CopyrightVariant::PerBlock),
            other => Err(ProblemError::InvalidSpec {
                what: "copyright variant",
                reason: format!("{other:?} is not one of all, unprotected, per-block"),
            }),
        }
    }
}

/// The copyright option: which rows are protected and how hard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Copyright {
    /// Protected row indices, strictly increasing.
    pub rows: Vec<usize>,
    /// `γ_c >= 0` (the paper takes it > 0; 0 turns the option off): the protection strength (ℓ₁ settles near `0.63·sqrt(γ_c)`, SOLVERS.md §9.7).
    pub gamma: f64,
    /// Which variant of the objective.
    pub variant: CopyrightVariant,
}

impl Copyright {
    /// Checks the option against `n` data rows and sorts/dedups nothing: rows must already
    /// be strictly increasing and in range, gamma finite and positive.
    pub fn validate(&self, n: usize) -> Result<(), ProblemError> {
        if !(self.gamma >= 0.0) || !self.gamma.is_finite() {
            return Err(ProblemError::InvalidSpec {
                what: "copyright gamma",
                reason: format!("{} is not a finite non-negative number", self.gamma),
            });
        }
        if self.rows.is_empty() {
            return Err(ProblemError::InvalidSpec { what: "copyright rows", reason: "no protected rows".into() });
        }
        for w in self.rows.windows(2) {
            if w[0] >= w[1] {
                return Err(ProblemError::InvalidSpec {
                    what: "copyright rows",
                    reason: format!("rows must be strictly increasing, got {} then {}", w[0], w[1]),
                });
            }
        }
        if let Some(&last) = self.rows.last()
            && last >= n
        {
            return Err(ProblemError::InvalidSpec {
                what: "copyright rows",
                reason: format!("row {last} is out of range for {n} data rows"),
            });
        }
        if self.variant == CopyrightVariant::UnprotectedOnly && self.rows.len() == n {
            return Err(ProblemError::InvalidSpec {
                what: "copyright rows",
                reason: "every row is protected, nothing is left to fit".into(),
            });
        }
        Ok(())
    }

    /// The 0/1 mask `m₁` of protected rows.
    pub fn protected_mask(&self, n: usize) -> Vec<f64> {
        let mut m = vec![0.0; n];
        for &r in &self.rows {
            m[r] = 1.0;
        }
        m
    }

    /// The 0/1 mask `m₂ = 1 - m₁`.
    pub fn unprotected_mask(&self, n: usize) -> Vec<f64> {
        self.protected_mask(n).into_iter().map(|m| 1.0 - m).collect()
    }
}

/// Parses a row selection: `A..B` (half-open range) or `i,j,k` joined by `+`/`;`
/// (e.g. `0..50`, `3;7;9`). Returns strictly increasing indices.
pub fn parse_rows(spec: &str) -> Result<Vec<usize>, ProblemError> {
    let bad = |reason: String| ProblemError::InvalidSpec { what: "copyright rows", reason };
    let mut rows = Vec::new();
    for part in spec.split(['+', ';']).map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once("..") {
            let a: usize = a.trim().parse().map_err(|_| bad(format!("{a:?} is not a row index")))?;
            let b: usize = b.trim().parse().map_err(|_| bad(format!("{b:?} is not a row index")))?;
            if a >= b {
                return Err(bad(format!("empty range {a}..{b}")));
            }
            rows.extend(a..b);
        } else {
            rows.push(part.parse().map_err(|_| bad(format!("{part:?} is not a row index")))?);
        }
    }
    rows.sort_unstable();
    rows.dedup();
    if rows.is_empty() {
        return Err(bad(format!("{spec:?} selects no rows")));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_ranges_and_lists() {
        assert_eq!(parse_rows("0..3").unwrap(), vec![0, 1, 2]);
        assert_eq!(parse_rows("5;1+3;1").unwrap(), vec![1, 3, 5]);
        assert!(parse_rows("3..3").is_err());
        assert!(parse_rows("x").is_err());
        assert!(parse_rows("").is_err());
    }

    #[test]
    fn validate_rejects_bad_gamma_and_rows() {
        let ok = Copyright { rows: vec![0, 2], gamma: 0.01, variant: CopyrightVariant::All };
        assert!(ok.validate(3).is_ok());
        assert!(Copyright { gamma: -1.0, ..ok.clone() }.validate(3).is_err());
        assert!(Copyright { gamma: f64::NAN, ..ok.clone() }.validate(3).is_err());
        assert!(Copyright { rows: vec![3], ..ok.clone() }.validate(3).is_err());
        assert!(Copyright { rows: vec![2, 1], ..ok.clone() }.validate(3).is_err());
        let all = Copyright { rows: vec![0, 1, 2], variant: CopyrightVariant::UnprotectedOnly, ..ok };
        assert!(all.validate(3).is_err());
        assert_eq!(CopyrightVariant::parse("per-block").unwrap(), CopyrightVariant::PerBlock);
        assert!(CopyrightVariant::parse("nope").is_err());
    }
}
