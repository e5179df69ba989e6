//! The seeded random stream of SOLVERS.md §0.3: ChaCha20 keyed by a 32-byte seed, one
//! stream per `(tag, t)`.
//!
//! # Consensus
//! The conversion of raw words to numbers below is part of consensus: `u01` takes the top
//! 53 bits of one `next_u64`, `normal` is Box–Muller on `(u01_open, u01)` with the sine
//! cached, `sign` uses the low bit of one `next_u32`, `below` rejects
//! `v >= u64::MAX - u64::MAX % k`. Changing any of these changes every step's bits.

use super::math;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// Stream tags (SOLVERS.md §0.3 table).
pub mod tags {
    /// Row sampling (leverage scores) for approximate Newton.
    pub const ROW_SAMPLING: u32 = 1;
    /// Sketch used to approximate leverage scores.
    pub const LEVERAGE_SKETCH: u32 = 2;
    /// Hessian sketch (streaming SDP).
    pub const HESSIAN_SKETCH: u32 = 3;
    /// JL matrices of the ADE structure.
    pub const ADE_JL: u32 = 4;
    /// Per-query sketch-index sampling (ADE).
    pub const ADE_QUERY: u32 = 5;
    /// Subspace embedding / CountSketch (attention kernel regression).
    pub const SUBSPACE_EMBEDDING: u32 = 6;
    /// Nyström / random-feature test matrix.
    pub const NYSTROM: u32 = 7;
    /// Synthetic data generation; `t` = dataset id.
    pub const SYNTHETIC: u32 = 8;
    /// Minibatch / initialisation.
    pub const MINIBATCH: u32 = 9;
    /// The mining ticket's perturbation of the iterate (DESIGN.md §3).
    pub const TICKET_PERTURBATION: u32 = 10;
    /// The mining ticket's Levenberg–Marquardt damping level (DESIGN.md §3.4).
    pub const TICKET_DAMPING: u32 = 11;
}

/// One deterministic random stream `(seed, tag, t)`.
#[derive(Clone, Debug)]
pub struct DetRng {
    rng: ChaCha20Rng,
    spare_normal: Option<f64>,
}

impl DetRng {
    /// `ChaCha20Rng::from_seed(seed)` with stream `(tag << 32) | t`, at word position 0.
    pub fn stream(seed: &[u8; 32], tag: u32, t: u32) -> DetRng {
        let mut rng = ChaCha20Rng::from_seed(*seed);
        rng.set_stream((u64::from(tag) << 32) | u64::from(t));
        DetRng { rng, spare_normal: None }
    }

    /// The next raw 64-bit word.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// The next raw 32-bit word.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        self.rng.next_u32()
    }

    /// Uniform in `[0, 1)`: the top 53 bits of one `next_u64`.
    #[inline]
    pub fn u01(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `(0, 1]`.
    #[inline]
    pub fn u01_open(&mut self) -> f64 {
        1.0 - self.u01()
    }

    /// Standard normal by Box–Muller on `(u1 = u01_open, u2 = u01)`; the second value of
    /// each pair is cached and returned by the next call.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let u1 = self.u01_open();
        let u2 = self.u01();
        let r = math::sqrt(-2.0 * math::ln(u1));
        let theta = std::f64::consts::TAU * u2;
        self.spare_normal = Some(r * math::sin(theta));
        r * math::cos(theta)
    }

    /// `+1.0` or `-1.0` from the low bit of one `next_u32`.
    #[inline]
    pub fn sign(&mut self) -> f64 {
        if self.next_u32() & 1 == 1 { 1.0 } else { -1.0 }
    }

    /// Uniform integer in `[0, k)` by rejection sampling.
    ///
    /// # Panics
    /// If `k == 0` (no such integer; callers never ask for it).
    pub fn below(&mut self, k: u64) -> u64 {
        assert!(k > 0, "below(0)");
        let limit = u64::MAX - u64::MAX % k;
        loop {
            let v = self.next_u64();
            if v < limit {
                return v % k;
            }
        }
    }

    /// True with probability `p`.
    #[inline]
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.u01() < p
    }

    /// Shuffles `v` in place by Fisher–Yates from the back, one `below(i + 1)` per position.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_by_tag_and_counter_and_repeat_exactly() {
        let seed = [7u8; 32];
        let a: Vec<u64> = {
            let mut r = DetRng::stream(&seed, 1, 0);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let mut again = DetRng::stream(&seed, 1, 0);
        assert_eq!(a, (0..4).map(|_| again.next_u64()).collect::<Vec<_>>());
        let mut other_tag = DetRng::stream(&seed, 2, 0);
        assert_ne!(a[0], other_tag.next_u64());
        let mut other_t = DetRng::stream(&seed, 1, 1);
        assert_ne!(a[0], other_t.next_u64());
    }

    #[test]
    fn stream_zero_is_plain_chacha20_from_seed() {
        // stream(0, 0) must be ChaCha20Rng::from_seed itself: the protocol only sets the
        // nonce, it never consumes or skips words.
        let seed = [3u8; 32];
        let mut plain = ChaCha20Rng::from_seed(seed);
        let mut ours = DetRng::stream(&seed, 0, 0);
        for _ in 0..10 {
            assert_eq!(plain.next_u64(), ours.next_u64());
        }
    }

    #[test]
    fn u01_uses_the_top_53_bits() {
        let seed = [9u8; 32];
        let mut raw = DetRng::stream(&seed, 4, 2);
        let mut r = DetRng::stream(&seed, 4, 2);
        for _ in 0..100 {
            let w = raw.next_u64();
            let u = r.u01();
            assert_eq!(u, (w >> 11) as f64 / 9007199254740992.0);
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn below_is_in_range_and_normal_has_unit_moments() {
        let mut r = DetRng::stream(&[1u8; 32], 8, 0);
        for k in [1u64, 2, 3, 7, 1000, u64::MAX] {
            for _ in 0..50 {
                assert!(r.below(k) < k);
            }
        }
        let n = 20000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let z = r.normal();
            s += z;
            s2 += z * z;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }

    #[test]
    fn normal_returns_the_cached_sine_second() {
        let seed = [5u8; 32];
        let mut r = DetRng::stream(&seed, 9, 0);
        let mut u = DetRng::stream(&seed, 9, 0);
        let (u1, u2) = (u.u01_open(), u.u01());
        let rad = (-2.0 * math::ln(u1)).sqrt();
        let th = std::f64::consts::TAU * u2;
        assert_eq!(r.normal(), rad * math::cos(th));
        assert_eq!(r.normal(), rad * math::sin(th));
    }

    #[test]
    fn sign_and_shuffle_are_deterministic_permutations() {
        let mut r = DetRng::stream(&[2u8; 32], 8, 1);
        let mut v: Vec<usize> = (0..50).collect();
        r.shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_ne!(v, sorted);
        let s = r.sign();
        assert!(s == 1.0 || s == -1.0);
    }
}
