//! Proof-of-work targets: the 256-bit [`U256`], Bitcoin's compact `bits` encoding,
//! per-block [`chainwork`], and the ASERT (aserti3-2d) next-target rule [`next_target`].
//!
//! Owns the arithmetic of difficulty and nothing else. It must not use floating point
//! (denied below: every node must compute the same target bit for bit), read a clock,
//! or know about headers, the block index or the store: callers pass heights, times and
//! the network's [`AsertParams`] in. Checking a header's `bits` against the expected
//! value and against the max target belongs to `chain::validate`.
#![deny(clippy::float_arithmetic)]

use std::fmt;
use std::str::FromStr;

/// The 256-bit backing integer. `ruint` is used by the alloy / reth stack and has
/// const constructors, checked shifts and exact division.
type Inner = ruint::Uint<256, 4>;

/// A 320-bit integer for ASERT's intermediate `target * factor`: a target may use all
/// 256 bits (the dev network's max target is about 2^255) and the factor is below 2^17,
/// so the product needs up to 273 bits.
type Wide = ruint::Uint<320, 5>;

/// Fixed-point radix of the ASERT exponent: 16 fractional bits.
const RADIX_BITS: u32 = 16;

/// |ASERT exponent| cap, in units of 2^-16 halflives: 1024 halflives. Beyond ±256 the
/// result is already decided (a positive shift of any non-zero product overflows 256
/// bits, a negative one shifts it to zero), so clamping here changes no result and keeps
/// every shift amount small.
const EXPONENT_CLAMP: i128 = 1024 << RADIX_BITS;

/// An unsigned 256-bit integer: a proof-of-work target, a block hash read as a number,
/// or an amount of chainwork.
///
/// Shown and parsed as 64 lower-case hex digits, most significant first (as Bitcoin's
/// `uint256::GetHex` shows targets).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct U256(Inner);

impl U256 {
    /// Zero.
    pub const ZERO: U256 = U256(Inner::ZERO);
    /// One.
    pub const ONE: U256 = U256(Inner::ONE);
    /// 2^256 - 1.
    pub const MAX: U256 = U256(Inner::MAX);

    /// The value `v`.
    pub const fn from_u64(v: u64) -> U256 {
        U256(Inner::from_limbs([v, 0, 0, 0]))
    }

    /// Reads 32 bytes, most significant first.
    pub const fn from_be_bytes(bytes: [u8; 32]) -> U256 {
        U256(Inner::from_be_bytes(bytes))
    }

    /// The 32 bytes, most significant first.
    pub const fn to_be_bytes(self) -> [u8; 32] {
        self.0.to_be_bytes()
    }

    /// Reads 32 bytes, least significant first.
    pub const fn from_le_bytes(bytes: [u8; 32]) -> U256 {
        U256(Inner::from_le_bytes(bytes))
    }

    /// The 32 bytes, least significant first.
    pub const fn to_le_bytes(self) -> [u8; 32] {
        self.0.to_le_bytes()
    }

    /// A block hash as the number the proof-of-work check compares with the target.
    ///
    /// # Consensus
    /// The 32 hash bytes, as stored (the output of SHA-256d), are read as a
    /// **little-endian** integer, as Bitcoin's `UintToArith256` does: the last byte of
    /// the hash is the most significant. A block is valid work iff this number is
    /// `<= target * cost` (DESIGN.md §3).
    pub const fn from_hash_le(hash: &[u8; 32]) -> U256 {
        U256(Inner::from_le_bytes(*hash))
    }

    /// Number of significant bits (0 for zero).
    pub const fn bit_len(self) -> usize {
        self.0.bit_len()
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0.const_is_zero()
    }

    /// The least significant 64 bits.
    pub const fn low_u64(self) -> u64 {
        self.0.as_limbs()[0]
    }

    /// `self + rhs`, or `None` if the sum does not fit in 256 bits.
    pub const fn checked_add(self, rhs: U256) -> Option<U256> {
        match self.0.checked_add(rhs.0) {
            Some(v) => Some(U256(v)),
            None => None,
        }
    }

    /// `self + rhs`, or [`U256::MAX`] if the sum does not fit.
    pub const fn saturating_add(self, rhs: U256) -> U256 {
        U256(self.0.saturating_add(rhs.0))
    }

    /// `self - rhs`, or `None` if `rhs > self`.
    pub const fn checked_sub(self, rhs: U256) -> Option<U256> {
        match self.0.checked_sub(rhs.0) {
            Some(v) => Some(U256(v)),
            None => None,
        }
    }

    /// `self * rhs`, or `None` if the product does not fit in 256 bits.
    pub fn checked_mul_u64(self, rhs: u64) -> Option<U256> {
        self.0.checked_mul(Inner::from_limbs([rhs, 0, 0, 0])).map(U256)
    }

    /// `self * rhs`, or [`U256::MAX`] if the product does not fit. The proof-of-work
    /// bound `target * cost` saturates: a product beyond 2^256 - 1 accepts every hash,
    /// which is what the exact product would do too.
    pub fn saturating_mul_u64(self, rhs: u64) -> U256 {
        U256(self.0.saturating_mul(Inner::from_limbs([rhs, 0, 0, 0])))
    }
}

impl fmt::Display for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.to_be_bytes()))
    }
}

impl fmt::LowerHex for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Debug for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "U256(0x{self})")
    }
}

impl FromStr for U256 {
    type Err = TargetError;

    /// Parses exactly 64 hex digits (either case), most significant first.
    fn from_str(s: &str) -> Result<U256, TargetError> {
        if s.len() != 64 {
            return Err(TargetError::HexLength { len: s.len() });
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes)?;
        Ok(U256::from_be_bytes(bytes))
    }
}

/// Why a compact `bits` value or a hex string is not a target.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TargetError {
    /// The sign bit (0x00800000) is set on a non-zero mantissa.
    #[error("compact bits {bits:#010x} encode a negative number")]
    Negative {
        /// The offending encoding.
        bits: u32,
    },
    /// The encoded number does not fit in 256 bits.
    #[error("compact bits {bits:#010x} encode a number of 2^256 or more")]
    Overflow {
        /// The offending encoding.
        bits: u32,
    },
    /// The encoded number is zero, which no hash can meet.
    #[error("compact bits {bits:#010x} encode zero")]
    Zero {
        /// The offending encoding.
        bits: u32,
    },
    /// A hex 256-bit number of the wrong length.
    #[error("a 256-bit number is 64 hex digits, got {len} characters")]
    HexLength {
        /// Length of the input in bytes.
        len: usize,
    },
    /// A character outside `[0-9a-fA-F]`.
    #[error("invalid hex in a 256-bit number: {0}")]
    Hex(#[from] hex::FromHexError),
}

/// Decodes compact `bits` into a target.
///
/// # Consensus
/// Exactly Bitcoin Core's `arith_uint256::SetCompact`: `size = bits >> 24`,
/// `mantissa = bits & 0x007fffff`, `N = mantissa * 256^(size - 3)` (for `size < 3` the
/// mantissa is shifted right, dropping low bytes). The encoding is invalid if the sign bit
/// `0x00800000` is set with a non-zero (shifted) mantissa, if `N >= 2^256`, or if `N = 0`.
/// Non-canonical encodings of a valid number decode (as in Core); a header's `bits` must
/// equal the canonical value `chain::validate` computes, so they never reach consensus.
pub fn target_from_bits(bits: u32) -> Result<U256, TargetError> {
    let size = bits >> 24;
    let mut word = bits & 0x007f_ffff;
    if size <= 3 {
        // Core shifts the word itself here, so the sign and zero checks below see the
        // shifted value (0x01803456 is zero, not negative).
        word >>= 8 * (3 - size);
    }
    if word != 0 && bits & 0x0080_0000 != 0 {
        return Err(TargetError::Negative { bits });
    }
    // Core's overflow rule, spelled out: a word of 24/16/8 significant bits fits with a
    // size of at most 32/33/34 bytes.
    if word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32)) {
        return Err(TargetError::Overflow { bits });
    }
    let word = Inner::from_limbs([u64::from(word), 0, 0, 0]);
    let target = if size <= 3 {
        word
    } else {
        // Cannot lose bits after the overflow check above; map a loss to Overflow anyway
        // rather than trusting that proof with a panic. (Measured with `bit_len`, not
        // ruint's `checked_shl`: see `shl_within_256`.)
        let shift = 8 * usize::try_from(size - 3).map_err(|_| TargetError::Overflow { bits })?;
        shl_within_256(word, shift).ok_or(TargetError::Overflow { bits })?
    };
    if target.is_zero() {
        return Err(TargetError::Zero { bits });
    }
    Ok(U256(target))
}

/// `x << shift` if the result is below 2^256, else `None`.
///
/// ruint 1.17's `checked_shl`/`overflowing_shl` report overflow only from the last limb
/// they keep and miss whole limbs shifted out (fixed upstream in alloy-rs/ruint#603), so
/// the overflow test here is done with `bit_len`; the shifted value itself is correct.
fn shl_within_256<const BITS: usize, const LIMBS: usize>(
    x: ruint::Uint<BITS, LIMBS>,
    shift: usize,
) -> Option<ruint::Uint<BITS, LIMBS>> {
    if x.is_zero() {
        return Some(x);
    }
    if x.bit_len().saturating_add(shift) > 256 || shift >= BITS {
        return None;
    }
    Some(x.wrapping_shl(shift))
}

/// Encodes a target as canonical compact `bits`.
///
/// # Consensus
/// Exactly Bitcoin Core's `arith_uint256::GetCompact` for a non-negative number: the
/// mantissa is the number's three most significant bytes; if its top bit would read as
/// the sign bit, the mantissa is shifted down one byte and the size grows by one. Only
/// the top 16 or 24 significant bits survive, so `target_from_bits(bits_from_target(t))`
/// is `t` with its low bits cleared (never larger than `t`). Zero encodes as `0`, which
/// [`target_from_bits`] rejects.
pub fn bits_from_target(target: U256) -> u32 {
    // size <= 32 because target < 2^256, so every cast below is lossless.
    let mut size = target.bit_len().div_ceil(8);
    let mut compact = if size <= 3 {
        target.low_u64() << (8 * (3 - size))
    } else {
        target.0.wrapping_shr(8 * (size - 3)).as_limbs()[0]
    };
    if compact & 0x0080_0000 != 0 {
        compact >>= 8;
        size += 1;
    }
    let size = u32::try_from(size).unwrap_or(0);
    let compact = u32::try_from(compact).unwrap_or(0);
    compact | (size << 24)
}

/// Expected number of hash attempts, in work units, to meet `target`:
/// `floor(2^256 / (target + 1))`.
///
/// # Consensus
/// Computed as Bitcoin Core's `GetBlockProof`: `(!target / (target + 1)) + 1`, which
/// equals `floor(2^256 / (target + 1))` without needing 257 bits. Summed along a chain it
/// decides fork choice (most cumulative chainwork wins). Two values the formula cannot
/// take are defined at their limits: `target = 2^256 - 1` gives 1, and `target = 0`
/// (never valid: [`target_from_bits`] rejects it) saturates to [`U256::MAX`] instead of
/// 2^256, so the function stays monotone.
pub fn chainwork(target: U256) -> U256 {
    if target == U256::MAX {
        return U256::ONE;
    }
    if target.is_zero() {
        return U256::MAX;
    }
    // target + 1 <= MAX here, and !target / (target + 1) <= MAX - 1, so no step wraps.
    let denominator = target.0 + Inner::ONE;
    U256((!target.0) / denominator + Inner::ONE)
}

/// The per-network constants of ASERT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsertParams {
    /// Target block spacing in seconds (main 600, test 5, dev 1).
    pub spacing: u64,
    /// Seconds of being ahead of (behind) schedule that halve (double) the target
    /// (main 172800, test and dev 60). Zero is the limit "any deviation from schedule
    /// moves the target to the max or to 1"; `chain::params` never uses it.
    pub halflife: u64,
    /// The easiest target the network allows; ASERT never returns more.
    pub max_target: U256,
}

/// The reference block ASERT measures the schedule from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// Height of the anchor block (1 on every network).
    pub height: u64,
    /// The anchor block's target: the network's max target.
    pub target: U256,
    /// The schedule's time of the anchor block's parent: block 1's own time minus one
    /// spacing (not the genesis time: a chain started days after its genesis timestamp
    /// would be "behind schedule" and stay at the max target for months).
    pub parent_time: u64,
}

impl Anchor {
    /// The anchor every network uses (DESIGN.md §6): block 1, at the max target, with
    /// parent time `block_one_time − spacing`.
    pub const fn block_one(params: &AsertParams, block_one_time: u64) -> Anchor {
        Anchor { height: 1, target: params.max_target, parent_time: block_one_time.saturating_sub(params.spacing) }
    }
}

/// `x` in 320 bits.
const fn widen(x: U256) -> Wide {
    let l = x.0.as_limbs();
    Wide::from_limbs([l[0], l[1], l[2], l[3], 0])
}

/// ASERT's fixed-point approximation of `65536 * 2^(frac / 65536)`, in `[65536, 131071]`.
///
/// The cubic's largest intermediate (at `frac = 65535`) is 18_446_563_080_438_344_768,
/// just below 2^64 - 1, so u64 arithmetic never wraps; it would overflow i64, which is why
/// it is unsigned (BCHN computes it in `uint64_t` too). A test checks every `frac`.
fn asert_factor(frac: u16) -> u64 {
    let f = u64::from(frac);
    let poly = 195_766_423_245_049 * f + 971_821_376 * f * f + 5127 * f * f * f + (1 << 47);
    65536 + (poly >> 48)
}

/// ASERT's exponent in units of 2^-16 halflives, clamped to ±[`EXPONENT_CLAMP`].
fn asert_exponent(anchor: &Anchor, parent_height: u64, parent_time: u64, p: &AsertParams) -> i128 {
    // Both differences are exact in i128 (each side fits in 64 bits).
    let dt = i128::from(parent_time) - i128::from(anchor.parent_time);
    let dh = i128::from(parent_height) - i128::from(anchor.height);
    // Saturation keeps the sign and leaves a magnitude above 2^126, which still clamps
    // after dividing by any u64 halflife: the result is the same as with exact integers.
    let behind = dt.saturating_sub(i128::from(p.spacing).saturating_mul(dh + 1));
    let scaled = behind.saturating_mul(1 << RADIX_BITS);
    let exponent = if p.halflife == 0 {
        scaled.signum() * EXPONENT_CLAMP
    } else {
        // Rust's integer division truncates toward zero: the spec's trunc_div.
        scaled / i128::from(p.halflife)
    };
    exponent.clamp(-EXPONENT_CLAMP, EXPONENT_CLAMP)
}

/// The target of a block whose parent has height `parent_height` and header time
/// `parent_time`: Bitcoin Cash's aserti3-2d in integer fixed-point arithmetic.
///
/// # Consensus
/// DESIGN.md §6. With `dt = parent_time - anchor.parent_time` and
/// `dh = parent_height - anchor.height`, both signed:
///
/// 1. `exponent = trunc_div((dt - spacing * (dh + 1)) * 65536, halflife)`;
/// 2. `shifts = exponent >> 16` (arithmetic, i.e. floor), `frac = exponent - shifts * 65536`;
/// 3. `factor = 65536 + ((195766423245049*frac + 971821376*frac^2 + 5127*frac^3 + 2^47) >> 48)`;
/// 4. `t = (anchor.target * factor * 2^shifts) >> 16`, computed exactly; if it is 2^256 or
///    more the result is `max_target`;
/// 5. `t == 0` gives 1; `t > max_target` gives `max_target`.
///
/// So the target doubles for every `halflife` seconds the chain is behind schedule and
/// halves for every `halflife` ahead. For the parent of the anchor (`dh = -1`,
/// `dt = 0`) it returns the anchor's own target, so block 1 is at the max target.
///
/// Differences from BCHN's `CalculateASERT` (pow.cpp), all of which agree with it on
/// every input BCHN accepts: BCHN asserts `max_target < 2^224` (our dev network's max
/// is about 2^255, so the product `target * factor` is kept in 320 bits here), asserts
/// `dh >= 0` (here `dh = -1` is the parent of the anchor, see above) and asserts that
/// `dt - spacing * dh` fits in 47 bits (here larger values saturate, which gives the same
/// clamped result as exact arithmetic). BCHN folds the `>> 16` into the shift
/// (`shifts - 16`) and detects overflow of that single shift; with exact arithmetic
/// that is the same number as DESIGN.md's "shift, then `>> 16`", and DESIGN.md's
/// "overflow clamps to max" is read as BCHN does it: the *result* is `max_target`.
pub fn next_target(anchor: &Anchor, parent_height: u64, parent_time: u64, p: &AsertParams) -> U256 {
    let exponent = asert_exponent(anchor, parent_height, parent_time, p);
    let shifts = exponent >> RADIX_BITS;
    // exponent - shifts * 65536 is exactly the low 16 bits in two's complement.
    let frac = u16::try_from(exponent & 0xffff).unwrap_or(0);
    let factor = asert_factor(frac);

    let anchor_wide = widen(anchor.target);
    // < 2^256 * 2^17: never overflows 320 bits. A `None` would mean "too large", so it
    // maps to the overflow branch, whose answer (max_target) is right for a huge value.
    let product = anchor_wide.checked_mul(Wide::from_limbs([factor, 0, 0, 0, 0]));

    // Net shift: left by `shifts`, right by 16. |shifts| <= 1024 after the clamp; an
    // impossible conversion failure falls back to a shift that gives the limit value.
    let net = shifts - i128::from(RADIX_BITS);
    let exact: Option<Wide> = product.and_then(|product| {
        if net <= 0 {
            let right = usize::try_from(-net).unwrap_or(usize::MAX);
            Some(product.wrapping_shr(right))
        } else {
            let left = usize::try_from(net).unwrap_or(usize::MAX);
            shl_within_256(product, left)
        }
    });
    // Back to 256 bits; `None` = the exact result is 2^256 or more.
    let t = exact.and_then(|w| {
        let l = w.as_limbs();
        (l[4] == 0).then(|| Inner::from_limbs([l[0], l[1], l[2], l[3]]))
    });
    let t = match t {
        Some(t) => U256(t),
        None => p.max_target,
    };
    let t = if t.is_zero() { U256::ONE } else { t };
    t.min(p.max_target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn u(v: u64) -> U256 {
        U256::from_u64(v)
    }

    fn hex(s: &str) -> U256 {
        format!("{s:0>64}").parse().expect("test literal is hex")
    }

    const MAIN_SPACING: u64 = 600;
    const MAIN_HALFLIFE: u64 = 172_800;
    const T0: u64 = 1_700_000_000;

    /// Params with a max target far above the anchor, so both directions can move.
    fn loose(spacing: u64, halflife: u64) -> AsertParams {
        AsertParams { spacing, halflife, max_target: U256::MAX }
    }

    fn anchor(target: U256) -> Anchor {
        Anchor { height: 1, target, parent_time: T0 }
    }

    #[test]
    fn core_compact_vectors() {
        // Bitcoin Core src/test/arith_uint256_tests.cpp (bignum_SetCompact): value, and the
        // canonical re-encoding where it differs.
        for bits in [
            0x0000_0000,
            0x0012_3456,
            0x0100_3456,
            0x0200_0056,
            0x0300_0000,
            0x0400_0000,
            0x0092_3456,
            0x0180_3456,
            0x0280_0056,
            0x0380_0000,
            0x0480_0000,
        ] {
            assert_eq!(target_from_bits(bits), Err(TargetError::Zero { bits }), "{bits:#x}");
        }
        let ok = [
            (0x0112_3456, "12", 0x0112_0000),
            (0x0212_3456, "1234", 0x0212_3400),
            (0x0312_3456, "123456", 0x0312_3456),
            (0x0412_3456, "12345600", 0x0412_3456),
            (0x0500_9234, "92340000", 0x0500_9234),
            (0x2012_3456, "1234560000000000000000000000000000000000000000000000000000000000", 0x2012_3456),
            (0x1d00_ffff, "00000000ffff0000000000000000000000000000000000000000000000000000", 0x1d00_ffff),
        ];
        for (bits, value, canonical) in ok {
            let t = target_from_bits(bits).expect("valid vector");
            assert_eq!(t, hex(value), "{bits:#x}");
            assert_eq!(bits_from_target(t), canonical, "{bits:#x}");
        }
        for bits in [0x01fe_dcba, 0x0492_3456, 0x0380_0001] {
            assert_eq!(target_from_bits(bits), Err(TargetError::Negative { bits }));
        }
        for bits in [0xff12_3456, 0x2301_0000, 0x2201_0000, 0x2101_0000_u32] {
            assert_eq!(target_from_bits(bits), Err(TargetError::Overflow { bits }), "{bits:#x}");
        }
        // The largest sizes that still fit: 34 bytes with one byte of mantissa, 33 with two.
        assert_eq!(target_from_bits(0x2200_00ff).map(|t| t.bit_len()), Ok(256));
        assert_eq!(target_from_bits(0x2100_ffff).map(|t| t.bit_len()), Ok(256));
        assert_eq!(bits_from_target(U256::MAX), 0x2100_ffff);
        assert_eq!(bits_from_target(U256::ZERO), 0);
        assert_eq!(bits_from_target(u(0x80)), 0x0200_8000);
        assert_eq!(bits_from_target(u(1)), 0x0101_0000);
    }

    #[test]
    fn error_messages_carry_the_data() {
        let e = target_from_bits(0x0492_3456).expect_err("negative");
        assert_eq!(e.to_string(), "compact bits 0x04923456 encode a negative number");
        let e = "12".parse::<U256>().expect_err("short");
        assert_eq!(e.to_string(), "a 256-bit number is 64 hex digits, got 2 characters");
    }

    #[test]
    fn hash_is_read_little_endian() {
        let mut hash = [0u8; 32];
        hash[0] = 1;
        assert_eq!(U256::from_hash_le(&hash), U256::ONE);
        hash[0] = 0;
        hash[31] = 0x80;
        assert_eq!(U256::from_hash_le(&hash).bit_len(), 256);
        let x = hex("0123456789abcdef00000000000000000000000000000000fedcba9876543210");
        assert_eq!(U256::from_be_bytes(x.to_be_bytes()), x);
        assert_eq!(U256::from_le_bytes(x.to_le_bytes()), x);
        let mut le = x.to_be_bytes();
        le.reverse();
        assert_eq!(x.to_le_bytes(), le);
        assert_eq!(x.to_string().parse::<U256>(), Ok(x));
    }

    #[test]
    fn arithmetic_helpers() {
        let half = U256(Inner::MAX >> 1usize);
        assert_eq!(U256::ONE.checked_mul_u64(5), Some(u(5)));
        assert!(half.checked_mul_u64(2).is_some());
        assert_eq!(half.checked_add(U256::ONE).and_then(|x| x.checked_mul_u64(2)), None);
        assert_eq!(U256::MAX.saturating_mul_u64(2), U256::MAX);
        assert_eq!(U256::MAX.saturating_add(U256::ONE), U256::MAX);
        assert_eq!(U256::MAX.checked_add(U256::ONE), None);
        assert_eq!(U256::ZERO.checked_sub(U256::ONE), None);
        assert_eq!(u(7).low_u64(), 7);
        assert_eq!(format!("{:?}", u(255)), format!("U256(0x{:0>64})", "ff"));
    }

    #[test]
    fn chainwork_known_values() {
        // Bitcoin's genesis target 0x1d00ffff is worth 0x100010001 hashes.
        let genesis = target_from_bits(0x1d00_ffff).expect("valid");
        assert_eq!(chainwork(genesis), u(0x1_0001_0001));
        assert_eq!(chainwork(U256::MAX), U256::ONE);
        assert_eq!(chainwork(U256::MAX.checked_sub(U256::ONE).expect("no underflow")), U256::ONE);
        // floor(2^256 / 2) = 2^255.
        let mut two255 = [0u8; 32];
        two255[0] = 0x80;
        assert_eq!(chainwork(U256::ONE), U256::from_be_bytes(two255));
        assert_eq!(chainwork(U256::ZERO), U256::MAX);
    }

    #[test]
    fn asert_factor_fits_u64_for_every_frac() {
        // In debug builds an overflow would panic here; also compare with u128 maths.
        let mut last = 0;
        for frac in 0..=u16::MAX {
            let f = u128::from(frac);
            let wide = 195_766_423_245_049 * f + 971_821_376 * f * f + 5127 * f * f * f + (1 << 47);
            assert!(wide <= u128::from(u64::MAX));
            let factor = asert_factor(frac);
            assert_eq!(u128::from(factor), 65536 + (wide >> 48));
            assert!(factor >= last, "monotone");
            last = factor;
        }
        assert_eq!(asert_factor(0), 65536);
        assert_eq!(asert_factor(u16::MAX), 131_071);
        // 2^0.5 * 65536 = 92681.9; the cubic is within 0.013% of it.
        assert_eq!(asert_factor(32768), 92_674);
    }

    #[test]
    fn asert_on_schedule_is_unchanged() {
        let p = loose(MAIN_SPACING, MAIN_HALFLIFE);
        let target = hex("00000000ffff0000000000000000000000000000000000000000000000000000");
        let a = anchor(target);
        for parent_height in [0, 1, 2, 100, 1_000_000] {
            let on_time = T0 + MAIN_SPACING * (parent_height + 1 - a.height);
            // exponent 0: factor 65536, t = target * 65536 >> 16 = target exactly.
            assert_eq!(next_target(&a, parent_height, on_time, &p), target, "{parent_height}");
        }
    }

    #[test]
    fn asert_one_halflife_late_doubles_early_halves() {
        let p = loose(MAIN_SPACING, MAIN_HALFLIFE);
        let target = hex("00000000ffff0000000000000000000000000000000000000000000000000001");
        let a = anchor(target);
        let h = 1000;
        let on_time = T0 + MAIN_SPACING * (h + 1 - a.height);
        // exponent +65536: shifts 1, frac 0, so exactly 2 * target.
        let late = next_target(&a, h, on_time + MAIN_HALFLIFE, &p);
        assert_eq!(late, target.checked_add(target).expect("small"));
        // exponent -65536: shifts -1, frac 0, so exactly floor(target / 2).
        let early = next_target(&a, h, on_time - MAIN_HALFLIFE, &p);
        assert_eq!(early, hex("000000007fff8000000000000000000000000000000000000000000000000000"));
        // Half a halflife late: target * 92674 >> 16 (the cubic's 2^0.5).
        let half = next_target(&a, h, on_time + MAIN_HALFLIFE / 2, &p);
        let expected = U256((target.0 * Inner::from(92_674u64)) >> 16);
        assert_eq!(half, expected);
    }

    #[test]
    fn asert_clamps_and_floors() {
        let max = target_from_bits(0x1d00_ffff).expect("valid");
        let p = AsertParams { spacing: MAIN_SPACING, halflife: MAIN_HALFLIFE, max_target: max };
        let a = Anchor::block_one(&p, T0);
        // Block 1 (parent = genesis at the anchor's parent time) is at the max target.
        assert_eq!(next_target(&a, 0, T0, &p), max);
        // Late never exceeds the max; extremely late or with u64::MAX times neither.
        assert_eq!(next_target(&a, 5, T0 + 10 * MAIN_HALFLIFE, &p), max);
        assert_eq!(next_target(&a, 5, u64::MAX, &p), max);
        // At height 2^64 - 1 even time 2^64 - 1 is far ahead of a 600 s schedule.
        assert_eq!(next_target(&a, u64::MAX, u64::MAX, &p), U256::ONE);
        // Hopelessly early floors at 1.
        assert_eq!(next_target(&a, u64::MAX, 0, &p), U256::ONE);
        assert_eq!(next_target(&a, 1_000_000, T0, &p), U256::ONE);
        // Extreme parameters do not panic and give the limits.
        let extreme = AsertParams { spacing: u64::MAX, halflife: u64::MAX, max_target: U256::MAX };
        let a = Anchor { height: 0, target: U256::MAX, parent_time: u64::MAX };
        assert_eq!(next_target(&a, u64::MAX, 0, &extreme), U256::ONE);
        let a = Anchor { height: u64::MAX, target: U256::MAX, parent_time: 0 };
        assert_eq!(next_target(&a, 0, u64::MAX, &extreme), U256::MAX);
    }

    #[test]
    fn asert_overflow_by_whole_limbs_clamps() {
        // Found by the Python vectors: 255 halflives late shifts the 248-bit product left
        // by 239 bits, past several whole limbs (ruint's checked_shl misses that).
        let max = target_from_bits(0x1e00_ffff).expect("valid");
        let p = AsertParams { spacing: MAIN_SPACING, halflife: MAIN_HALFLIFE, max_target: max };
        let a = Anchor::block_one(&p, T0);
        assert_eq!(next_target(&a, 0, T0 + 255 * MAIN_HALFLIFE, &p), max);
        for late in 1..300 {
            assert_eq!(next_target(&a, 0, T0 + late * MAIN_HALFLIFE, &p), max, "{late}");
        }
        assert_eq!(shl_within_256(Wide::ONE, 255), Some(Wide::ONE << 255usize));
        assert_eq!(shl_within_256(Wide::ONE, 256), None);
        assert_eq!(shl_within_256(Wide::from(3u64) << 200usize, 64), None);
        assert_eq!(shl_within_256(Wide::ZERO, 10_000), Some(Wide::ZERO));
    }

    #[test]
    fn asert_zero_halflife_is_the_limit() {
        let p = AsertParams {
            spacing: 5,
            halflife: 0,
            max_target: hex("ffff00000000000000000000000000000000000000000000000000000000"),
        };
        let a = anchor(hex("ffff"));
        assert_eq!(next_target(&a, 1, T0 + 5, &p), hex("ffff"));
        assert_eq!(next_target(&a, 1, T0 + 6, &p), p.max_target);
        assert_eq!(next_target(&a, 1, T0 + 4, &p), U256::ONE);
    }

    #[test]
    fn asert_large_max_target_keeps_all_bits() {
        // The dev network's max (0x207fffff) is about 2^255: target * factor needs more
        // than 256 bits, and a result just below 2^256 is still exact before clamping.
        let max = target_from_bits(0x207f_ffff).expect("valid");
        let p = AsertParams { spacing: 1, halflife: 60, max_target: U256::MAX };
        let a = anchor(max);
        let on_time = T0 + 1;
        assert_eq!(next_target(&a, 1, on_time, &p), max);
        // Half a halflife late: exact max * 92674 >> 16, which exceeds 2^255.
        let expected = (widen(max) * Wide::from(92_674u64)) >> 16usize;
        let l = expected.as_limbs();
        assert_eq!(l[4], 0);
        let expected = U256(Inner::from_limbs([l[0], l[1], l[2], l[3]]));
        assert_eq!(next_target(&a, 1, on_time + 30, &p), expected);
        // One halflife late: exactly 2 * max = 0xfffffe * 2^232, still below 2^256.
        let doubled = max.checked_add(max).expect("below 2^256");
        assert_eq!(next_target(&a, 1, on_time + 60, &p), doubled);
        // Two halflives late: 4 * max >= 2^256, so the max.
        assert_eq!(next_target(&a, 1, on_time + 120, &p), U256::MAX);
    }

    fn any_u256() -> impl Strategy<Value = U256> {
        (any::<[u8; 32]>(), 0usize..=256).prop_map(|(bytes, bits)| {
            // Spread over magnitudes: keep only `bits` low bits.
            U256(Inner::from_be_bytes(bytes).wrapping_shr(256 - bits))
        })
    }

    proptest! {
        #[test]
        fn bits_round_trip_is_canonical(bits in any::<u32>()) {
            if let Ok(t) = target_from_bits(bits) {
                let canonical = bits_from_target(t);
                prop_assert_eq!(target_from_bits(canonical), Ok(t));
                prop_assert_eq!(bits_from_target(target_from_bits(canonical).expect("ok")), canonical);
            }
        }

        #[test]
        fn target_round_trip_loses_only_low_bits(t in any_u256()) {
            prop_assume!(!t.is_zero());
            let bits = bits_from_target(t);
            let back = target_from_bits(bits).expect("a non-zero target encodes validly");
            prop_assert!(back <= t);
            // The cleared part is exactly the bytes below the mantissa.
            let size = usize::try_from(bits >> 24).expect("small");
            let dropped = 8 * size.saturating_sub(3);
            prop_assert_eq!(back.0, t.0.wrapping_shr(dropped).wrapping_shl(dropped));
            // At least 16 significant bits survive.
            let lost = t.checked_sub(back).expect("back <= t");
            prop_assert!(lost.bit_len() + 15 <= t.bit_len() || lost.is_zero());
            prop_assert_eq!(bits_from_target(back), bits);
        }

        #[test]
        fn chainwork_is_monotone(a in any_u256(), b in any_u256()) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(chainwork(lo) >= chainwork(hi));
            prop_assert!(!chainwork(hi).is_zero());
        }

        #[test]
        fn chainwork_is_floor_of_quotient(t in any_u256()) {
            prop_assume!(!t.is_zero() && t != U256::MAX);
            // w = floor(2^256 / (t + 1))  <=>  w * (t + 1) <= 2^256 < (w + 1) * (t + 1).
            let w = widen(chainwork(t));
            let d = widen(t) + Wide::ONE;
            let two256 = Wide::ONE << 256usize;
            prop_assert!(w * d <= two256);
            prop_assert!((w + Wide::ONE) * d > two256);
        }

        #[test]
        fn asert_is_monotone_in_time(dt1 in 0u64..10_000_000, dt2 in 0u64..10_000_000, h in 0u64..1_000_000) {
            let max = target_from_bits(0x1d00_ffff).expect("valid");
            let p = AsertParams { spacing: MAIN_SPACING, halflife: MAIN_HALFLIFE, max_target: max };
            let a = anchor(U256(max.0 >> 40usize));
            let base = T0 + MAIN_SPACING * h;
            let (t1, t2) = if dt1 <= dt2 { (dt1, dt2) } else { (dt2, dt1) };
            let x = next_target(&a, h, base.saturating_sub(5_000_000) + t1, &p);
            let y = next_target(&a, h, base.saturating_sub(5_000_000) + t2, &p);
            prop_assert!(x <= y);
            prop_assert!(!x.is_zero() && y <= max);
        }
    }
}
