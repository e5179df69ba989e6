//! The wallet: a keystore of ed25519 keys, coin selection over the chain state, and
//! builders that return signed transactions of every kind.
//!
//! Owns the user's secrets (`wallet.json`, see [`keystore`]) and the choice of inputs,
//! change and fee ([`coins`]). It must not decide validity: every builder's output is
//! checked with `chain`'s own rules ([`Transaction::check`],
//! [`Transaction::verify_signatures`], [`State::check_tx`]) before it is returned, so the
//! wallet never hands out a transaction the chain would refuse. It must not talk to the
//! network or the store either: the caller passes the tip's state and submits the result.
//!
//! Main entry points: [`Wallet::open_or_create`], [`Wallet::new_key`], and the builders
//! [`Wallet::transfer`], [`Wallet::submit_task`], [`Wallet::model_update`],
//! [`Wallet::reclaim`].
//!
//! # Fees
//! A builder's `fee_rate` is in base units per encoded byte. The fee is
//! `max(min_fee, fee_rate × size)`, with the size measured on the transaction itself
//! (built with placeholder signatures, which have the same fixed size as real ones), and
//! the selection redone if the fee changed what it must cover. A `fee_rate` of zero means
//! no fee at all (a model update then has no inputs); such transactions are valid but a
//! pool with a minimum fee rate will not relay them. Change below [`coins::DUST`] is added
//! to the fee.

pub mod build;
pub mod coins;
pub mod keystore;

#[cfg(test)]
mod tests;

use crate::chain::Network;
use crate::chain::address::Address;
use crate::chain::amount::{Amount, AmountError};
use crate::chain::params::ChainParams;
use crate::chain::state::{State, StateError};
use crate::chain::tx::{OutPoint, TxError};
use crate::hash::Hash256;
use ed25519_dalek::SigningKey;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Default lower bound on a non-zero fee, in base units (the dust threshold: a fee below
/// it is not worth a relay slot).
pub const DEFAULT_MIN_FEE: Amount = Amount::from_units(1_000);

/// Why a wallet operation failed. Messages are one line and name the file, address or
/// amounts involved.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// Reading or writing a wallet file failed.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The keystore is not valid JSON of the expected shape.
    #[error("wallet file {} is not a valid keystore: {error}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The parser's one-line message.
        error: String,
    },
    /// A keystore format this build does not know.
    #[error("wallet file {} has format version {version}, this build reads version 1", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// A keystore of another network.
    #[error("wallet file {} belongs to the {found} network, not {expected}", path.display())]
    WrongNetwork {
        /// The file.
        path: PathBuf,
        /// Its network.
        found: Network,
        /// The network asked for.
        expected: Network,
    },
    /// A keystore group or others can access.
    #[error("wallet file {} has mode {mode:03o}, accessible by group or others; its keys may be exposed (chmod 600 to use it anyway)", path.display())]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A stored secret that is not 64 hex digits.
    #[error("wallet file {}: key {index} is not 64 hex digits", path.display())]
    BadSecret {
        /// The file.
        path: PathBuf,
        /// Position of the key in the file.
        index: usize,
    },
    /// The OS random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
    /// The wallet has no key to receive change or sign with.
    #[error("the wallet has no keys; create one first")]
    NoKeys,
    /// An address the wallet holds no key for.
    #[error("address {address} does not belong to this wallet")]
    UnknownAddress {
        /// The address in its text form.
        address: String,
    },
    /// Not enough mature coins.
    #[error("insufficient funds: need {needed}, spendable {available} ({immature} more is still maturing)")]
    InsufficientFunds {
        /// Amount plus fee (plus bounty).
        needed: Amount,
        /// Spendable now.
        available: Amount,
        /// Coinbase and bounty outputs not yet mature.
        immature: Amount,
    },
    /// A payment of nothing.
    #[error("amount must be positive")]
    ZeroAmount,
    /// A task the chain does not know.
    #[error("task {0} is unknown")]
    UnknownTask(Hash256),
    /// A reclaim of a task whose creator key the wallet does not hold.
    #[error("task {0} was not created by a key of this wallet")]
    NotCreator(Hash256),
    /// Value arithmetic overflowed.
    #[error("{0}")]
    Amount(#[from] AmountError),
    /// The built transaction fails the context-free checks (e.g. too many parameters).
    #[error("the transaction would be invalid: {0}")]
    InvalidTx(#[from] TxError),
    /// The chain would reject the built transaction (e.g. a model update that does not
    /// improve the task's best, or a task that has expired).
    #[error("the chain would reject the transaction: {0}")]
    Rejected(#[from] StateError),
}

/// A key as listed to the user (no secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The user's label.
    pub label: String,
    /// Its address.
    pub address: Address,
    /// Unix time of creation, seconds.
    pub created: u64,
}

/// What the wallet holds at a tip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Balance {
    /// Spendable in the next block.
    pub spendable: Amount,
    /// Coinbase and bounty outputs still maturing.
    pub immature: Amount,
}

/// An open wallet: its keys, in memory and in `wallet.json`.
pub struct Wallet {
    path: PathBuf,
    network: Network,
    params: ChainParams,
    keys: Vec<keystore::LoadedKey>,
    min_fee: Amount,
    /// Coins not to select (spent by transactions still in the pool).
    reserved: HashSet<OutPoint>,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.debug_struct("Wallet")
            .field("path", &self.path)
            .field("network", &self.network)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Wallet {
    /// Opens `dir/wallet.json`, or creates the directory and an empty keystore for
    /// `network`. Refuses a keystore of another network, one readable by group or others,
    /// and malformed files.
    pub fn open_or_create(dir: &Path, network: Network) -> Result<Wallet, WalletError> {
        let path = keystore::path_in(dir);
        let keys = if path.exists() {
            keystore::load(&path, network)?
        } else {
            keystore::create_dir(dir)?;
            keystore::save(&path, network, &[])?;
            Vec::new()
        };
        Ok(Wallet {
            path,
            network,
            params: ChainParams::for_network(network),
            keys,
            min_fee: DEFAULT_MIN_FEE,
            reserved: HashSet::new(),
        })
    }

    /// The keystore's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The wallet's network.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The network's parameters (chain id signed by every transaction, limits, maturity).
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The smallest non-zero fee a builder pays.
    pub fn min_fee(&self) -> Amount {
        self.min_fee
    }

    /// Sets the smallest non-zero fee a builder pays.
    pub fn set_min_fee(&mut self, min_fee: Amount) {
        self.min_fee = min_fee;
    }

    /// Replaces the set of coins the builders must not select: the inputs of unconfirmed
    /// transactions (the pool's, see `Mempool::spender`), which a second spend would
    /// conflict with until their block arrives.
    pub fn set_reserved(&mut self, outpoints: impl IntoIterator<Item = OutPoint>) {
        self.reserved = outpoints.into_iter().collect();
    }

    /// Generates a key from the OS random number generator, stores it under `label`, and
    /// returns its address. The keystore is rewritten atomically before this returns.
    pub fn new_key(&mut self, label: &str) -> Result<Address, WalletError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(WalletError::Random)?;
        let key = SigningKey::from_bytes(&seed);
        let address = address_of(&key);
        let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.keys.push(keystore::LoadedKey { label: label.to_string(), key, created });
        if let Err(e) = keystore::save(&self.path, self.network, &self.keys) {
            // Keep memory equal to the disk: a key that was not saved must not be used.
            self.keys.pop();
            return Err(e);
        }
        Ok(address)
    }

    /// Every address, in creation order.
    pub fn addresses(&self) -> Vec<Address> {
        self.keys.iter().map(|k| address_of(&k.key)).collect()
    }

    /// The key of `address`, if the wallet holds it.
    pub fn key_for(&self, address: &Address) -> Option<&SigningKey> {
        self.keys.iter().find(|k| address_of(&k.key) == *address).map(|k| &k.key)
    }

    /// Every key's label, address and creation time, in creation order.
    pub fn list(&self) -> Vec<KeyInfo> {
        self.keys
            .iter()
            .map(|k| KeyInfo { label: k.label.clone(), address: address_of(&k.key), created: k.created })
            .collect()
    }

    /// Where change goes: the first key.
    pub fn change_address(&self) -> Result<Address, WalletError> {
        self.keys.first().map(|k| address_of(&k.key)).ok_or(WalletError::NoKeys)
    }

    /// The wallet's funds at the state of a tip whose next block is at `height`.
    pub fn balance(&self, state: &State, height: u64) -> Balance {
        let (coins, immature) = self.coins(state, height);
        let spendable =
            coins.iter().fold(Amount::ZERO, |acc, c| acc.checked_add(c.entry.output.value).unwrap_or(Amount::MAX));
        Balance { spendable, immature }
    }

    /// Each key with its own balance (reserved coins included: they are still ours until
    /// mined).
    pub fn balances(&self, state: &State, height: u64) -> Vec<(KeyInfo, Balance)> {
        self.list()
            .into_iter()
            .map(|k| {
                let one: HashSet<Address> = std::iter::once(k.address).collect();
                let (coins, immature) = coins::wallet_coins(state, &one, height, self.params.coinbase_maturity);
                let spendable = coins
                    .iter()
                    .fold(Amount::ZERO, |acc, c| acc.checked_add(c.entry.output.value).unwrap_or(Amount::MAX));
                (k, Balance { spendable, immature })
            })
            .collect()
    }

    /// The wallet's unreserved spendable coins (largest first) and its maturing amount.
    fn coins(&self, state: &State, height: u64) -> (Vec<coins::Coin>, Amount) {
        let (mut spendable, immature) =
            coins::wallet_coins(state, &self.owned(), height, self.params.coinbase_maturity);
        spendable.retain(|c| !self.reserved.contains(&c.outpoint));
        (spendable, immature)
    }

    /// The set of the wallet's addresses.
    fn owned(&self) -> HashSet<Address> {
        self.addresses().into_iter().collect()
    }
}

/// The address of a signing key.
fn address_of(key: &SigningKey) -> Address {
    Address::from_pubkey(&key.verifying_key().to_bytes())
}
