//! GradientCoin: a peer-to-peer node for a Bitcoin-style chain whose proof of work is
//! useful numerical work.
//!
//! The module map (arrows read "is used by"):
//!
//! ```text
//! hash <- compute <- pouw <- chain <- { store, mempool, miner, net, wallet } <- node <- { rpc, cli }
//! ```
//!
//! `compute`, `pouw` and `chain` are pure: no tokio, sled, libp2p, wall clock or OS
//! randomness. Nothing imports upward.

pub mod chain;
pub mod cli;
pub mod compute;
pub mod config;
pub mod hash;
pub mod mempool;
pub mod miner;
pub mod net;
pub mod node;
pub mod pouw;
pub mod rpc;
pub mod store;
pub mod wallet;
