//! Persistence on sled: blocks, the block index, the main chain, the UTXO set, the task
//! registry, the cost table, undo records, metadata and bans (DESIGN.md §8), as the
//! `BlockStore` of `chain::pipeline` ([`ChainStore`] is the pipeline over it).
//!
//! Decides nothing about validity: every rule is `chain`'s. Connecting or disconnecting a
//! block is one sled transaction over every tree it touches, followed by a flush; a block
//! is reported connected only after the flush returns.

pub mod chainstore;
pub mod db;

pub use chainstore::{ChainStore, ProcessError};
pub use db::{SCHEMA_VERSION, Store, StoreError};
