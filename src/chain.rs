//! Consensus: the rules every node must apply identically.
//!
//! `chain` is the pure consensus layer: no I/O, no async, no clock, no randomness.
//! Everything it needs (heights, times, parameters, ancestors) is passed in, so every
//! rule can be tested without a store, a network or a running node. `store`, `net`,
//! `mempool`, `miner`, `wallet` and `node` call into it; it never calls back.
//!
//! Submodules:
//! - [`amount`]: [`amount::Amount`] (u64 base units, checked arithmetic) and the subsidy
//!   schedule;
//! - [`address`]: [`address::Address`] (20-byte hash of an ed25519 key) and its bech32m
//!   text form;
//! - [`target`]: 256-bit targets, compact `bits`, chainwork and the ASERT next-target rule.
//! - [`pipeline`]: the block pipeline (check -> index -> connect/reorg -> persist) and the
//!   cost table, over a `BlockStore` trait (sled in `store`, [`pipeline::MemStore`] for
//!   consensus tests).
//!
//! This file also defines [`Network`], which selects the per-network constants.

pub mod address;
pub mod amount;
pub mod block;
pub mod encode;
pub mod fault;
pub mod forkchoice;
pub mod params;
pub mod pipeline;
pub mod problems;
pub mod state;
pub mod target;
pub mod tx;
pub mod validate;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which chain a node, an address or a parameter set belongs to.
///
/// Written `main`, `test`, `dev` in text, configs and JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// The public network: 10 minute blocks.
    Main,
    /// Local multi-node test networks: a few seconds between blocks.
    Test,
    /// One node at minimum difficulty, blocks on demand (like bitcoind's regtest).
    Dev,
}

impl Network {
    /// Every network, in a fixed order.
    pub const ALL: [Network; 3] = [Network::Main, Network::Test, Network::Dev];

    /// The network's name as written in text: `main`, `test` or `dev`.
    pub const fn name(self) -> &'static str {
        match self {
            Network::Main => "main",
            Network::Test => "test",
            Network::Dev => "dev",
        }
    }

    /// The bech32m human-readable part of the network's addresses.
    ///
    /// # Consensus
    /// `gc` (main), `tgc` (test), `dgc` (dev) (DESIGN.md §2): an address of one network
    /// is rejected by the others, so coins cannot be sent across networks by mistake.
    pub const fn hrp(self) -> &'static str {
        match self {
            Network::Main => "gc",
            Network::Test => "tgc",
            Network::Dev => "dgc",
        }
    }

    /// The network whose address prefix is `hrp` (lower case), if any.
    pub fn from_hrp(hrp: &str) -> Option<Network> {
        Network::ALL.into_iter().find(|n| n.hrp() == hrp)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A string that names no [`Network`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network `{input}`, expected one of: main, test, dev")]
pub struct ParseNetworkError {
    /// The rejected input (cut to 32 characters).
    pub input: String,
}

impl FromStr for Network {
    type Err = ParseNetworkError;

    /// Parses `main`, `test` or `dev` (exactly, lower case).
    fn from_str(s: &str) -> Result<Network, ParseNetworkError> {
        Network::ALL
            .into_iter()
            .find(|n| n.name() == s)
            .ok_or_else(|| ParseNetworkError { input: s.chars().take(32).collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_names_and_prefixes() {
        for n in Network::ALL {
            assert_eq!(n.to_string().parse::<Network>(), Ok(n));
            assert_eq!(Network::from_hrp(n.hrp()), Some(n));
            let json = serde_json::to_string(&n).expect("serialises");
            assert_eq!(json, format!("\"{n}\""));
        }
        assert_eq!(Network::Main.hrp(), "gc");
        assert_eq!(Network::Test.hrp(), "tgc");
        assert_eq!(Network::Dev.hrp(), "dgc");
        assert_eq!(Network::from_hrp("bc"), None);
        let e = "mainnet".parse::<Network>().expect_err("not a name");
        assert_eq!(e.to_string(), "unknown network `mainnet`, expected one of: main, test, dev");
        assert!("Main".parse::<Network>().is_err());
    }
}
