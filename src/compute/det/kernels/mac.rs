//! The multiply-add a kernel body is instantiated with: the hardware/`mul_add` FMA or a
//! pure software one.
//!
//! # Consensus
//! Both compute `round(a * b + c)` with one rounding (round to nearest, ties to even), so
//! they give the same bits; only NaN payloads may differ. The software version exists so
//! the tests can show that a CPU without an FMA instruction computes the same chains.
//! It is written here, not taken from `libm::fma`, because the `libm` crate (with its default
//! `arch` feature, as this crate uses it) switches to the hardware instruction at run time.

/// A correctly rounded fused multiply-add.
pub(super) trait Mac {
    /// `round(a * b + c)`, one rounding.
    fn mac(a: f64, b: f64, c: f64) -> f64;
}

/// `f64::mul_add`: an inline `vfmadd` inside an FMA-enabled function, a call otherwise.
pub(super) struct Fused;

impl Mac for Fused {
    #[inline(always)]
    fn mac(a: f64, b: f64, c: f64) -> f64 {
        a.mul_add(b, c)
    }
}

/// [`soft_fma`]: integer arithmetic only.
pub(super) struct Soft;

impl Mac for Soft {
    #[inline(always)]
    fn mac(a: f64, b: f64, c: f64) -> f64 {
        soft_fma(a, b, c)
    }
}

/// Sign, integer significand and exponent of a finite non-zero `x`: `x = ±m · 2^e`.
fn decompose(x: f64) -> (bool, u64, i32) {
    let bits = x.to_bits();
    let sign = bits >> 63 == 1;
    let field = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    if field == 0 { (sign, frac, -1074) } else { (sign, frac | (1u64 << 52), field - 1075) }
}

/// Shifts `m` left so its leading bit is bit 125 (two bits of headroom for the sum).
fn normalize(m: u128, e: i32) -> (u128, i32) {
    let sh = m.leading_zeros() as i32 - 2;
    (m << sh, e - sh)
}

/// `m >> d`, with bit 0 set when any shifted-out bit was set (the sticky bit).
fn shift_right_sticky(m: u128, d: u32) -> u128 {
    if d == 0 {
        m
    } else if d >= 128 {
        u128::from(m != 0)
    } else {
        (m >> d) | u128::from(m & ((1u128 << d) - 1) != 0)
    }
}

/// Rounds `±m · 2^e` (`m != 0`) to the nearest f64, ties to even, with gradual underflow
/// and overflow to infinity.
fn round_to_f64(neg: bool, m: u128, e: i32) -> f64 {
    let sign = u64::from(neg) << 63;
    let lead = 127 - m.leading_zeros() as i32;
    // The value lies in [2^top, 2^(top+1)).
    let top = lead + e;
    if top > 1023 {
        return f64::from_bits(sign | 0x7ff0_0000_0000_0000);
    }
    // Bits to drop so the last kept bit has weight 2^(top-52) (normal) or 2^-1074.
    let shift = if top >= -1022 { lead - 52 } else { -1074 - e };
    let q: u64 = if shift <= 0 {
        // Exact: at most 53 significant bits and nothing below the last kept bit.
        (m << (-shift) as u32) as u64
    } else if shift >= 128 {
        // Less than half of the smallest subnormal (m < 2^127 <= half).
        0
    } else {
        let q = m >> shift as u32;
        let rem = m & ((1u128 << shift as u32) - 1);
        let half = 1u128 << (shift - 1) as u32;
        let up = rem > half || (rem == half && q & 1 == 1);
        (q + u128::from(up)) as u64
    };
    // A normal q is in [2^52, 2^53]; adding it to the biased exponent minus one sets the
    // hidden bit's place and carries into the exponent when rounding overflowed. A
    // subnormal q <= 2^52 is its own encoding (2^52 encodes the smallest normal).
    let bits = if top >= -1022 { (((top + 1022) as u64) << 52) + q } else { q };
    if bits >= 0x7ff0_0000_0000_0000 {
        return f64::from_bits(sign | 0x7ff0_0000_0000_0000);
    }
    f64::from_bits(sign | bits)
}

/// `round(a * b + c)` with one rounding, computed with integers only.
///
/// The exact product (at most 106 bits) and `c` are aligned in 128-bit integers with a
/// sticky bit for anything shifted out; both have at least 20 zero low bits, so the sticky
/// bit can only matter when the rounding point lies far above it, and then it decides
/// exactly like the infinitely precise value.
pub(super) fn soft_fma(a: f64, b: f64, c: f64) -> f64 {
    if !a.is_finite() || !b.is_finite() {
        // The product is ±inf or NaN, which rounding leaves alone.
        return a * b + c;
    }
    if !c.is_finite() {
        // A finite exact product does not change ±inf or NaN.
        return c;
    }
    if a == 0.0 || b == 0.0 {
        // The product is an exact signed zero: the one rounding is that of the addition.
        return a * b + c;
    }
    if c == 0.0 {
        // The exact sum is the non-zero product itself, so its rounding is the product's
        // (including the sign of an underflow to zero, which `a*b + c` could lose).
        return a * b;
    }
    let (sa, ma, ea) = decompose(a);
    let (sb, mb, eb) = decompose(b);
    let (sc, mc, ec) = decompose(c);
    let (mp, ep) = normalize(u128::from(ma) * u128::from(mb), ea + eb);
    let (mc, ec) = normalize(u128::from(mc), ec);
    let sp = sa != sb;
    // Both significands now lead at bit 125, so (exponent, significand) orders magnitudes.
    let ((s_big, m_big, e_big), (s_small, m_small, e_small)) =
        if (ep, mp) >= (ec, mc) { ((sp, mp, ep), (sc, mc, ec)) } else { ((sc, mc, ec), (sp, mp, ep)) };
    let m_small = shift_right_sticky(m_small, (e_big - e_small) as u32);
    let m = if s_big == s_small { m_big + m_small } else { m_big - m_small };
    if m == 0 {
        // Exact cancellation is +0 under round to nearest.
        return 0.0;
    }
    round_to_f64(s_big, m, e_big)
}
