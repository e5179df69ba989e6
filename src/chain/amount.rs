//! Amounts of GRAD and the block subsidy schedule.
//!
//! Owns [`Amount`] (a count of base units, 1 GRAD = [`COIN`] units), its checked
//! arithmetic and its decimal text form, and the halving schedule ([`subsidy`],
//! [`max_supply`]). It must not do unchecked arithmetic on amounts (every sum that could
//! wrap returns an [`AmountError`]) or use floating point for money.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Base units in one GRAD.
pub const COIN: u64 = 100_000_000;

/// Decimal places of a GRAD amount (`COIN = 10^DECIMALS`).
const DECIMALS: usize = 8;

/// How much of an offending input an error message repeats.
const ECHO_CHARS: usize = 40;

/// An amount of money in base units (1 GRAD = [`COIN`] units).
///
/// Arithmetic is only through the checked methods. Shown as a GRAD decimal with all
/// eight places, `12.34500000 GRAD`; encoded (serde, hence bincode and JSON) as the bare
/// u64 of base units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Amount(u64);

impl Amount {
    /// Nothing.
    pub const ZERO: Amount = Amount(0);
    /// One GRAD.
    pub const ONE_GRAD: Amount = Amount(COIN);
    /// The largest representable amount (about 184.5 billion GRAD).
    pub const MAX: Amount = Amount(u64::MAX);

    /// `units` base units.
    pub const fn from_units(units: u64) -> Amount {
        Amount(units)
    }

    /// The count of base units.
    pub const fn units(self) -> u64 {
        self.0
    }

    /// `whole` GRAD, or an error if that many base units do not fit in a u64.
    pub fn from_grad(whole: u64) -> Result<Amount, AmountError> {
        whole.checked_mul(COIN).map(Amount).ok_or(AmountError::GradOverflow { whole })
    }

    /// `self + rhs`.
    pub fn checked_add(self, rhs: Amount) -> Result<Amount, AmountError> {
        self.0.checked_add(rhs.0).map(Amount).ok_or(AmountError::AddOverflow { a: self, b: rhs })
    }

    /// `self - rhs`; an error if `rhs > self`.
    pub fn checked_sub(self, rhs: Amount) -> Result<Amount, AmountError> {
        self.0.checked_sub(rhs.0).map(Amount).ok_or(AmountError::SubUnderflow { a: self, b: rhs })
    }

    /// The sum of `amounts`; an error as soon as a partial sum overflows.
    pub fn checked_sum<I: IntoIterator<Item = Amount>>(amounts: I) -> Result<Amount, AmountError> {
        let mut total: u64 = 0;
        for (i, a) in amounts.into_iter().enumerate() {
            total = total.checked_add(a.0).ok_or(AmountError::SumOverflow { terms: i + 1 })?;
        }
        Ok(Amount(total))
    }
}

impl fmt::Display for Amount {
    /// `{whole}.{eight decimals} GRAD`; width and alignment flags pad the whole text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format!("{}.{:08} GRAD", self.0 / COIN, self.0 % COIN);
        f.pad(&text)
    }
}

/// Why an amount could not be computed or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// `a + b` does not fit in a u64.
    #[error("amount overflow: {a} + {b} exceeds the largest amount")]
    AddOverflow {
        /// Left operand.
        a: Amount,
        /// Right operand.
        b: Amount,
    },
    /// `a - b` would be negative.
    #[error("amount underflow: {a} - {b} is negative")]
    SubUnderflow {
        /// Left operand.
        a: Amount,
        /// Right operand.
        b: Amount,
    },
    /// A sum overflowed.
    #[error("sum of amounts exceeds the largest amount after {terms} terms")]
    SumOverflow {
        /// How many terms had been added when it overflowed.
        terms: usize,
    },
    /// A whole number of GRAD too large to represent.
    #[error("{whole} GRAD exceeds the largest amount")]
    GradOverflow {
        /// The requested number of GRAD.
        whole: u64,
    },
    /// The total of a subsidy schedule does not fit in a u64.
    #[error("subsidy schedule of {initial} per block halving every {interval} blocks exceeds the largest amount")]
    SupplyOverflow {
        /// Initial subsidy.
        initial: Amount,
        /// Halving interval in blocks.
        interval: u64,
    },
    /// Empty text.
    #[error("empty amount")]
    Empty,
    /// A leading minus sign.
    #[error("negative amount `{input}`")]
    Negative {
        /// The rejected text (cut to 40 characters).
        input: String,
    },
    /// More than eight decimal places.
    #[error("amount `{input}` has {places} decimal places, at most 8 allowed")]
    TooManyDecimals {
        /// The rejected text (cut to 40 characters).
        input: String,
        /// Decimal places given.
        places: usize,
    },
    /// A value above [`Amount::MAX`].
    #[error("amount `{input}` exceeds the largest amount, 184467440737.09551615 GRAD")]
    TooLarge {
        /// The rejected text (cut to 40 characters).
        input: String,
    },
    /// Anything else that is not `DIGITS[.DIGITS][ GRAD]`.
    #[error("`{input}` is not a GRAD amount: expected digits with at most 8 decimals, e.g. 12.345")]
    Malformed {
        /// The rejected text (cut to 40 characters).
        input: String,
    },
}

/// The first [`ECHO_CHARS`] characters of `s`, for an error message.
fn echo(s: &str) -> String {
    s.chars().take(ECHO_CHARS).collect()
}

impl FromStr for Amount {
    type Err = AmountError;

    /// Parses a decimal GRAD amount: `12`, `12.345`, `0.00000001`, or the
    /// [`Display`](fmt::Display) form `12.34500000 GRAD`.
    ///
    /// Strict: ASCII digits, at least one before the point and, if there is a point, at
    /// least one and at most eight after it; an optional ` GRAD` suffix (one space, upper
    /// case). No sign, exponent, separators or surrounding whitespace.
    fn from_str(s: &str) -> Result<Amount, AmountError> {
        let number = s.strip_suffix(" GRAD").unwrap_or(s);
        if number.is_empty() {
            return Err(if s.is_empty() { AmountError::Empty } else { AmountError::Malformed { input: echo(s) } });
        }
        if number.starts_with('-') {
            return Err(AmountError::Negative { input: echo(s) });
        }
        let (whole, frac) = match number.split_once('.') {
            Some((whole, frac)) => (whole, frac),
            None => (number, ""),
        };
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (number.contains('.') && !digits(frac)) {
            return Err(AmountError::Malformed { input: echo(s) });
        }
        if frac.len() > DECIMALS {
            return Err(AmountError::TooManyDecimals { input: echo(s), places: frac.len() });
        }
        let too_large = || AmountError::TooLarge { input: echo(s) };
        // Only digits are left, so a parse failure here can only be an overflow.
        let whole: u64 = whole.parse().map_err(|_| too_large())?;
        // Right-pad the fraction to eight places: "345" means 34_500_000 units.
        let mut frac_units: u64 = 0;
        for i in 0..DECIMALS {
            let d = frac.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
            frac_units = frac_units * 10 + d;
        }
        whole.checked_mul(COIN).and_then(|w| w.checked_add(frac_units)).map(Amount).ok_or_else(too_large)
    }
}

/// The subsidy of the block at `height`.
///
/// # Consensus
/// Bitcoin's schedule: `initial >> (height / halving_interval)`, and zero once the shift
/// reaches 64 (a u64 shifted by 64 or more is zero, where Rust's `>>` would panic or
/// wrap). A `halving_interval` of 0 is taken as "halve infinitely often": every subsidy is
/// zero (`chain::params` never uses it).
pub fn subsidy(height: u64, initial: Amount, halving_interval: u64) -> Amount {
    if halving_interval == 0 {
        return Amount::ZERO;
    }
    let halvings = height / halving_interval;
    match u32::try_from(halvings) {
        Ok(h) if h < 64 => Amount(initial.0 >> h),
        _ => Amount::ZERO,
    }
}

/// The sum of [`subsidy`] over every height: the most coins the schedule ever creates.
///
/// # Consensus
/// `sum over i in 0..64 of (initial >> i) * halving_interval`, checked: this bounds the
/// money supply (DESIGN.md §2). Bitcoin's 50 BTC halving every 210000 blocks gives
/// 20999999.97690000. An error if the total does not fit in a u64.
pub fn max_supply(initial: Amount, halving_interval: u64) -> Result<Amount, AmountError> {
    let overflow = AmountError::SupplyOverflow { initial, interval: halving_interval };
    let mut total: u64 = 0;
    for i in 0..64 {
        let era = (initial.0 >> i).checked_mul(halving_interval).ok_or_else(|| overflow.clone())?;
        total = total.checked_add(era).ok_or_else(|| overflow.clone())?;
    }
    Ok(Amount(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn grad(s: &str) -> Amount {
        s.parse().expect("test literal is an amount")
    }

    #[test]
    fn display() {
        assert_eq!(Amount::from_units(1_234_500_000).to_string(), "12.34500000 GRAD");
        assert_eq!(Amount::ZERO.to_string(), "0.00000000 GRAD");
        assert_eq!(Amount::from_units(1).to_string(), "0.00000001 GRAD");
        assert_eq!(Amount::MAX.to_string(), "184467440737.09551615 GRAD");
        assert_eq!(format!("{:>18}", Amount::ONE_GRAD), "   1.00000000 GRAD");
    }

    #[test]
    fn parse_accepts() {
        assert_eq!(grad("12.345"), Amount::from_units(1_234_500_000));
        assert_eq!(grad("12"), Amount::from_units(1_200_000_000));
        assert_eq!(grad("12.34500000 GRAD"), Amount::from_units(1_234_500_000));
        assert_eq!(grad("0.00000001"), Amount::from_units(1));
        assert_eq!(grad("007.5"), Amount::from_units(750_000_000));
        assert_eq!(grad("184467440737.09551615"), Amount::MAX);
        assert_eq!(grad("0"), Amount::ZERO);
    }

    #[test]
    fn parse_rejects() {
        use AmountError::*;
        let err = |s: &str| s.parse::<Amount>().expect_err(s);
        assert_eq!(err(""), Empty);
        assert!(matches!(err("-1"), Negative { .. }));
        assert!(matches!(err("-0.5 GRAD"), Negative { .. }));
        assert_eq!(err("1.123456789"), TooManyDecimals { input: "1.123456789".into(), places: 9 });
        assert!(matches!(err("184467440737.09551616"), TooLarge { .. }));
        assert!(matches!(err("99999999999999999999999"), TooLarge { .. }));
        for bad in [
            " GRAD", "GRAD", "+1", ".5", "5.", "1.2.3", "1e8", "1_000", " 1", "1 ", "1,5", "1 grad", "1GRAD",
            "1  GRAD", "0x10", "١", "1.-5", "1..",
        ] {
            assert!(matches!(err(bad), Malformed { .. }), "{bad:?} -> {:?}", err(bad));
        }
        // Messages are one line, lower case, and repeat (a bounded part of) the input.
        assert_eq!(err("1.123456789").to_string(), "amount `1.123456789` has 9 decimal places, at most 8 allowed");
        let long = "9".repeat(1000);
        assert!(err(&long).to_string().len() < 120);
    }

    #[test]
    fn checked_arithmetic() {
        let one = Amount::ONE_GRAD;
        assert_eq!(one.checked_add(one), Ok(Amount::from_units(2 * COIN)));
        assert_eq!(
            Amount::MAX.checked_add(Amount::from_units(1)),
            Err(AmountError::AddOverflow { a: Amount::MAX, b: Amount::from_units(1) })
        );
        assert_eq!(one.checked_sub(one), Ok(Amount::ZERO));
        let e = Amount::ZERO.checked_sub(one).expect_err("negative");
        assert_eq!(e.to_string(), "amount underflow: 0.00000000 GRAD - 1.00000000 GRAD is negative");
        assert_eq!(Amount::checked_sum([one, one, one]), Ok(Amount::from_units(3 * COIN)));
        assert_eq!(Amount::checked_sum([]), Ok(Amount::ZERO));
        assert_eq!(Amount::checked_sum([one, Amount::MAX, one]), Err(AmountError::SumOverflow { terms: 2 }));
        assert_eq!(Amount::from_grad(21), Ok(Amount::from_units(2_100_000_000)));
        assert!(Amount::from_grad(u64::MAX / COIN + 1).is_err());
    }

    #[test]
    fn subsidy_schedule() {
        let fifty = Amount::from_units(50 * COIN);
        assert_eq!(subsidy(0, fifty, 210_000), fifty);
        assert_eq!(subsidy(209_999, fifty, 210_000), fifty);
        assert_eq!(subsidy(210_000, fifty, 210_000), Amount::from_units(25 * COIN));
        assert_eq!(subsidy(840_000, fifty, 210_000), Amount::from_units(312_500_000));
        // 50 BTC reaches 0 after 33 halvings; the shift saturates at 64 and beyond.
        assert_eq!(subsidy(33 * 210_000, fifty, 210_000), Amount::ZERO);
        assert_eq!(subsidy(63, Amount::MAX, 1), Amount::from_units(1));
        assert_eq!(subsidy(64, Amount::MAX, 1), Amount::ZERO);
        assert_eq!(subsidy(u64::MAX, Amount::MAX, 1), Amount::ZERO);
        assert_eq!(subsidy(5, fifty, 0), Amount::ZERO);
    }

    #[test]
    fn supply() {
        let fifty = Amount::from_units(50 * COIN);
        assert_eq!(max_supply(fifty, 210_000), Ok(Amount::from_units(2_099_999_997_690_000)));
        assert_eq!(max_supply(fifty, 0), Ok(Amount::ZERO));
        assert!(matches!(max_supply(Amount::MAX, 2), Err(AmountError::SupplyOverflow { .. })));
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(units in any::<u64>()) {
            let a = Amount::from_units(units);
            prop_assert_eq!(a.to_string().parse::<Amount>(), Ok(a));
            // Without the suffix too.
            let bare = a.to_string().replace(" GRAD", "");
            prop_assert_eq!(bare.parse::<Amount>(), Ok(a));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<Amount>();
        }

        #[test]
        fn supply_bounds_every_subsidy(initial in 0u64..=1_000 * COIN, interval in 1u64..1_000_000, h in any::<u64>()) {
            let initial = Amount::from_units(initial);
            let total = max_supply(initial, interval).expect("fits for these ranges");
            prop_assert!(subsidy(h, initial, interval) <= total);
            prop_assert!(subsidy(h, initial, interval) <= initial);
        }
    }
}
