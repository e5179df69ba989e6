//! Persistence on sled: blocks, the block index, the main chain, the UTXO set, the task
//! registry, undo records, metadata and bans (DESIGN.md §8), and [`ChainStore`], which
//! keeps the in-memory index and state in step with the database.
//!
//! Decides nothing about validity: every rule is `chain`'s. Connecting or disconnecting a
//! block is one sled transaction over every tree it touches, followed by a flush; a block
//! is reported connected only after the flush returns.

pub mod chainstore;
pub mod db;

pub use chainstore::{ChainStore, ProcessError};
pub use db::{Store, StoreError, SCHEMA_VERSION};
