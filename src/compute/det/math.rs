//! Transcendental functions for consensus code, from the pure-Rust `libm` crate.
//!
//! std's `exp`, `ln`, `powf`, `sin`, `cos` and `tanh` call the platform's libm, whose results differ
//! between systems (rust-lang/rust#118217); these do not. `sqrt` is IEEE correctly rounded
//! in hardware, so std's is used.

/// `e^x`.
#[inline]
pub fn exp(x: f64) -> f64 {
    libm::exp(x)
}

/// Natural logarithm.
#[inline]
pub fn ln(x: f64) -> f64 {
    libm::log(x)
}

/// `x^y`.
#[inline]
pub fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

/// Square root (IEEE correctly rounded).
#[inline]
pub fn sqrt(x: f64) -> f64 {
    x.sqrt()
}

/// Sine.
#[inline]
pub fn sin(x: f64) -> f64 {
    libm::sin(x)
}

/// Cosine.
#[inline]
pub fn cos(x: f64) -> f64 {
    libm::cos(x)
}

/// Hyperbolic tangent.
#[inline]
pub fn tanh(x: f64) -> f64 {
    libm::tanh(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libm_values_are_correct_to_the_last_bit_on_exact_cases() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(pow(2.0, 10.0), 1024.0);
        assert_eq!(sqrt(9.0), 3.0);
        assert!((exp(1.0) - std::f64::consts::E).abs() <= f64::EPSILON * 4.0);
        assert!(ln(-1.0).is_nan());
    }
}
