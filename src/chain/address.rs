//! Addresses: who an output pays.
//!
//! Owns [`Address`] (the first 20 bytes of SHA-256 of an ed25519 public key) and its
//! text form, bech32m with the network's human-readable part (`gc`, `tgc`, `dgc`). It
//! must not verify signatures or hold keys (that is `chain::tx` and `wallet`); it only
//! maps keys to addresses and addresses to and from text.

use std::fmt;

use bech32::primitives::decode::{ChecksumError, UncheckedHrpstring, UncheckedHrpstringError};
use bech32::{Bech32, Bech32m, Hrp};
use serde::{Deserialize, Serialize};

use super::Network;
use crate::hash::sha256;

/// Length of the key hash an address carries.
pub const ADDRESS_LEN: usize = 20;

/// BIP-173's limit on the length of a bech32 string; ours are 41 or 42 characters.
const MAX_TEXT_LEN: usize = 90;

/// Data characters of an address: 20 bytes are exactly 32 five-bit characters.
const DATA_CHARS: usize = 32;

/// Characters of the bech32m checksum.
const CHECKSUM_CHARS: usize = 6;

/// The hash of an ed25519 public key that outputs pay to.
///
/// # Consensus
/// `address = SHA-256(pubkey)[0..20]` (DESIGN.md §2): single SHA-256 of the 32-byte
/// compressed Edwards point, truncated. Encoded (serde, hence bincode) as its 20 bytes.
/// The text form depends on the network: see [`Address::to_string_for`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Address(pub [u8; ADDRESS_LEN]);

impl Address {
    /// The address of an ed25519 public key (its 32 encoded bytes).
    pub fn from_pubkey(pubkey: &[u8; 32]) -> Address {
        let digest = sha256(pubkey);
        let mut out = [0u8; ADDRESS_LEN];
        out.copy_from_slice(&digest.0[..ADDRESS_LEN]);
        Address(out)
    }

    /// The 20 bytes.
    pub fn as_bytes(&self) -> &[u8; ADDRESS_LEN] {
        &self.0
    }

    /// The text form on `network`: bech32m, lower case, e.g. `gc1...` (41 characters on
    /// main, 42 on test and dev).
    pub fn to_string_for(&self, network: Network) -> String {
        let hrp = network_hrp(network);
        // 20 bytes with a 2- or 3-letter prefix are far below bech32m's length limit, the
        // only way encoding can fail.
        bech32::encode::<Bech32m>(hrp, &self.0).expect("a 20-byte payload always fits in a bech32m string")
    }

    /// Parses the text form of an address of `expected` network.
    ///
    /// Accepts exactly what [`Address::to_string_for`] produces, or the same in all upper
    /// case (BIP-173 lets QR codes use upper case). Rejects, each with its own
    /// [`AddressError`]: more than 90 characters, mixed case, characters outside the
    /// bech32 alphabet or no `1` separator, a bech32 (not bech32m) checksum, any other
    /// wrong checksum, a prefix of another network or of none, and a payload that is not
    /// 20 bytes.
    pub fn parse(s: &str, expected: Network) -> Result<Address, AddressError> {
        if s.len() > MAX_TEXT_LEN {
            return Err(AddressError::TooLong { len: s.len() });
        }
        let unchecked = UncheckedHrpstring::new(s).map_err(|e| match e {
            UncheckedHrpstringError::Char(bech32::primitives::decode::CharError::MixedCase) => AddressError::MixedCase,
            other => AddressError::Syntax(other),
        })?;
        // The checksum first: with a typo the prefix and length checks below would only
        // report a symptom.
        match unchecked.validate_checksum::<Bech32m>() {
            Ok(()) => {}
            Err(ChecksumError::InvalidResidue) => {
                return Err(if unchecked.has_valid_checksum::<Bech32>() {
                    AddressError::Bech32NotBech32m
                } else {
                    AddressError::Checksum
                });
            }
            Err(ChecksumError::InvalidLength) => {
                return Err(AddressError::Length {
                    chars: unchecked.data_part_ascii().len().saturating_sub(CHECKSUM_CHARS),
                });
            }
            // CodeLength cannot happen below 90 characters; report it as too long anyway.
            Err(_) => return Err(AddressError::TooLong { len: s.len() }),
        }
        let hrp = unchecked.hrp().to_lowercase();
        match Network::from_hrp(&hrp) {
            Some(found) if found == expected => {}
            Some(found) => return Err(AddressError::WrongNetwork { found, expected }),
            None => {
                return Err(AddressError::UnknownPrefix { prefix: hrp, expected });
            }
        }
        let data_chars = unchecked.data_part_ascii().len().saturating_sub(CHECKSUM_CHARS);
        if data_chars != DATA_CHARS {
            return Err(AddressError::Length { chars: data_chars });
        }
        let checked = unchecked.remove_checksum::<Bech32m>();
        // 32 characters are exactly 160 bits: 20 bytes and no padding to check.
        let mut out = [0u8; ADDRESS_LEN];
        let mut n = 0;
        for (slot, byte) in out.iter_mut().zip(checked.byte_iter()) {
            *slot = byte;
            n += 1;
        }
        if n != ADDRESS_LEN {
            return Err(AddressError::Length { chars: data_chars });
        }
        Ok(Address(out))
    }
}

/// The network's prefix as a bech32 `Hrp`.
fn network_hrp(network: Network) -> Hrp {
    // The three prefixes are fixed lower-case ASCII words, valid by construction.
    Hrp::parse_unchecked(network.hrp())
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", hex::encode(self.0))
    }
}

/// Why a string is not an address of the expected network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Longer than any bech32 string.
    #[error("address is {len} characters long, at most 90 allowed")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
    },
    /// Upper- and lower-case letters together.
    #[error("address mixes upper- and lower-case letters")]
    MixedCase,
    /// No separator, an empty part, or a character outside the bech32 alphabet.
    #[error("not a bech32m address: {0}")]
    Syntax(UncheckedHrpstringError),
    /// A valid bech32 (BIP-173) checksum: the wrong variant, not a typo.
    #[error("address has a bech32 checksum; gradientcoin addresses use bech32m (BIP-350)")]
    Bech32NotBech32m,
    /// The checksum does not match: a mistyped or missing character.
    #[error("address checksum is invalid (mistyped character?)")]
    Checksum,
    /// A prefix of another network.
    #[error("address is for the {found} network (prefix `{}`), expected a {expected} address (prefix `{}`)", found.hrp(), expected.hrp())]
    WrongNetwork {
        /// The network the prefix belongs to.
        found: Network,
        /// The network the caller asked for.
        expected: Network,
    },
    /// A prefix of no network.
    #[error("address prefix `{prefix}` belongs to no gradientcoin network, expected `{}` ({expected})", expected.hrp())]
    UnknownPrefix {
        /// The prefix found (lower case).
        prefix: String,
        /// The network the caller asked for.
        expected: Network,
    },
    /// A payload that is not 20 bytes.
    #[error("address holds {chars} data characters, expected 32 (a 20-byte key hash)")]
    Length {
        /// Data characters found, without the checksum.
        chars: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Address {
        Address::from_pubkey(&[7u8; 32])
    }

    #[test]
    fn from_pubkey_is_truncated_sha256() {
        let key = [7u8; 32];
        let digest = sha256(&key);
        assert_eq!(&sample().0[..], &digest.0[..20]);
        assert_ne!(Address::from_pubkey(&[8u8; 32]), sample());
    }

    #[test]
    fn text_form_per_network() {
        let a = sample();
        for n in Network::ALL {
            let s = a.to_string_for(n);
            assert!(s.starts_with(&format!("{}1", n.hrp())), "{s}");
            assert_eq!(s.len(), n.hrp().len() + 1 + DATA_CHARS + CHECKSUM_CHARS);
            assert_eq!(Address::parse(&s, n), Ok(a));
            // All upper case is the same address.
            assert_eq!(Address::parse(&s.to_uppercase(), n), Ok(a));
        }
        // A fixed vector: any change to the encoding shows here.
        assert_eq!(
            Address([0u8; 20]).to_string_for(Network::Main),
            bech32::encode::<Bech32m>(Hrp::parse("gc").expect("valid"), &[0u8; 20]).expect("encodes")
        );
    }

    #[test]
    fn wrong_network() {
        let s = sample().to_string_for(Network::Test);
        let e = Address::parse(&s, Network::Main).expect_err("test address on main");
        assert_eq!(e, AddressError::WrongNetwork { found: Network::Test, expected: Network::Main });
        assert_eq!(
            e.to_string(),
            "address is for the test network (prefix `tgc`), expected a main address (prefix `gc`)"
        );
    }

    #[test]
    fn unknown_prefix() {
        let s = bech32::encode::<Bech32m>(Hrp::parse("bc").expect("valid"), &sample().0).expect("encodes");
        let e = Address::parse(&s, Network::Dev).expect_err("bitcoin prefix");
        assert_eq!(e.to_string(), "address prefix `bc` belongs to no gradientcoin network, expected `dgc` (dev)");
    }

    #[test]
    fn bech32_checksum_is_rejected() {
        let s = bech32::encode::<Bech32>(Hrp::parse("gc").expect("valid"), &sample().0).expect("encodes");
        assert_eq!(Address::parse(&s, Network::Main), Err(AddressError::Bech32NotBech32m));
    }

    #[test]
    fn typo_is_a_checksum_error() {
        let mut s = sample().to_string_for(Network::Main).into_bytes();
        s[10] = if s[10] == b'q' { b'p' } else { b'q' };
        let s = String::from_utf8(s).expect("ascii");
        assert_eq!(Address::parse(&s, Network::Main), Err(AddressError::Checksum));
    }

    #[test]
    fn wrong_length() {
        let hrp = Hrp::parse("gc").expect("valid");
        for len in [0usize, 19, 21, 32] {
            let s = bech32::encode::<Bech32m>(hrp, &vec![1u8; len]).expect("encodes");
            let e = Address::parse(&s, Network::Main).expect_err("wrong length");
            assert!(matches!(e, AddressError::Length { .. }), "{len}: {e:?}");
        }
        // Fewer characters than a checksum, or none at all.
        for short in ["gc1qqq", "gc1"] {
            assert_eq!(Address::parse(short, Network::Main), Err(AddressError::Length { chars: 0 }));
        }
    }

    #[test]
    fn mixed_case_and_garbage() {
        let s = sample().to_string_for(Network::Main);
        let mixed = format!("{}{}", &s[..10].to_uppercase(), &s[10..]);
        assert_eq!(Address::parse(&mixed, Network::Main), Err(AddressError::MixedCase));
        for bad in ["", "gc", "hello world", "gc1bbbbbbbbb", "1qqqqqqqq", "gc1é"] {
            let e = Address::parse(bad, Network::Main).expect_err(bad);
            assert!(matches!(e, AddressError::Syntax(_)), "{bad:?}: {e:?}");
            assert!(!e.to_string().contains('\n'));
        }
        let long = format!("gc1{}", "q".repeat(100));
        assert_eq!(Address::parse(&long, Network::Main), Err(AddressError::TooLong { len: 103 }));
    }

    #[test]
    fn serde_is_the_bytes() {
        let a = sample();
        let json = serde_json::to_string(&a).expect("serialises");
        assert_eq!(serde_json::from_str::<Address>(&json).expect("parses"), a);
    }

    proptest! {
        #[test]
        fn round_trip(bytes in any::<[u8; 20]>(), n in 0usize..3) {
            let network = Network::ALL[n];
            let a = Address(bytes);
            prop_assert_eq!(Address::parse(&a.to_string_for(network), network), Ok(a));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,100}") {
            let _ = Address::parse(&s, Network::Main);
        }
    }
}
