//! Per-network chain parameters (main, test, dev): spacing, ASERT, limits, subsidy,
//! ports, and each network's genesis block with its public task.
//!
//! Built once and passed by reference; nothing here is global.

use crate::chain::Network;
use crate::chain::amount::Amount;
use crate::chain::block::{Block, Header, WorkClaim, WorkWitness};
use crate::chain::encode;
use crate::chain::target::{Anchor, AsertParams, U256, target_from_bits};
use crate::chain::tx::{Transaction, TxLimits};
use crate::compute::problem::{Params, Problem};
use crate::hash::{Hash256, merkle_root, sha256d_parts};
use crate::pouw::task::{TaskData, TaskKind, TaskLimits, TaskSpec};

/// Domain separator of the public task's id.
pub const PUBLIC_TASK_DOMAIN: &[u8] = b"gradientcoin/public-task/v1";

/// Everything that differs between networks.
#[derive(Clone, Debug)]
pub struct ChainParams {
    /// Which network.
    pub network: Network,
    /// The genesis block.
    pub genesis: Block,
    /// `chain_id` = the genesis hash; signed by every transaction.
    pub chain_id: Hash256,
    /// The always-open public task registered by genesis.
    pub public_task: TaskSpec,
    /// Its id.
    pub public_task_id: Hash256,
    /// Compact encoding of the easiest target.
    pub max_target_bits: u32,
    /// ASERT constants.
    pub asert: AsertParams,
    /// A header may be at most this far ahead of the local clock (seconds).
    pub max_future_drift_secs: u64,
    /// Blocks before a coinbase (or bounty payout) may be spent.
    pub coinbase_maturity: u64,
    /// Subsidy of block 1.
    pub initial_subsidy: Amount,
    /// Blocks between halvings.
    pub halving_interval: u64,
    /// Encoded block size cap.
    pub max_block_bytes: usize,
    /// Per-transaction limits.
    pub tx_limits: TxLimits,
    /// Task admission limits.
    pub task_limits: TaskLimits,
    /// A model update must improve a task's best score by this relative margin.
    pub min_relative_improvement: f64,
    /// A task whose best has not improved by the margin in this many blocks is stalled
    /// (DESIGN.md §3.4): miners skip it.
    pub stall_blocks: u64,
    /// Default peer-to-peer port.
    pub p2p_port: u16,
    /// Default JSON-RPC port.
    pub rpc_port: u16,
}

/// The stall rule's window on `network` (DESIGN.md §3.4): a day of main-network blocks;
/// 20 blocks (under two minutes) on the test and dev networks.
pub const fn stall_blocks_for(network: Network) -> u64 {
    match network {
        Network::Main => 144,
        _ => 20,
    }
}

/// Cap on a task's step cost in mWU (2·10^8 flops of the cost formula): one replay stays
/// well under 50 ms on one core (DESIGN.md §6).
pub const MAX_STEP_COST_MWU: u64 = 200_000;

/// Median-time-past window (blocks), as Bitcoin.
pub const MTP_WINDOW: usize = 11;

impl ChainParams {
    /// Parameters of `network`.
    pub fn for_network(network: Network) -> ChainParams {
        match network {
            Network::Main => ChainParams::main(),
            Network::Test => ChainParams::test(),
            Network::Dev => ChainParams::dev(),
        }
    }

    /// Main network: 10-minute blocks.
    pub fn main() -> ChainParams {
        build(Setup {
            network: Network::Main,
            genesis_time: 1_795_000_000,
            // Bitcoin's 0x1e00ffff over 1024: costs are in mWU (DESIGN.md §3.1), so the same
            // expected number of steps per block needs a target 2^10 smaller.
            max_target_bits: 0x1c3f_ffc0,
            spacing: 600,
            halflife: 172_800,
            drift: 7200,
            maturity: 100,
            halving: 210_000,
            task: public_task(2000, 32, 0x6772_6164_6965_6e74),
            p2p_port: 9733,
            rpc_port: 9732,
        })
    }

    /// Test network: local multi-node testnets, a few seconds per block.
    pub fn test() -> ChainParams {
        build(Setup {
            network: Network::Test,
            genesis_time: 1_795_000_000,
            // About 7,200 steps of the public task (4,643 mWU) per block at the max target:
            // ~2.5 s for one miner thread of the exact Gauss–Newton step, ~0.8 s for the
            // README's three-node testnet, so ASERT's 2 s spacing is reached within minutes.
            max_target_bits: 0x1d7f_ff80,
            spacing: 2,
            halflife: 60,
            drift: 15,
            maturity: 10,
            halving: 210_000,
            task: public_task(1000, 16, 0x7465_7374),
            p2p_port: 19733,
            rpc_port: 19732,
        })
    }

    /// Developer network (like bitcoind regtest): minimum difficulty, blocks on demand.
    pub fn dev() -> ChainParams {
        build(Setup {
            network: Network::Dev,
            genesis_time: 1_795_000_000,
            max_target_bits: 0x207f_ffff,
            spacing: 1,
            halflife: 60,
            drift: 15,
            maturity: 10,
            halving: 150,
            task: public_task(256, 8, 0x6465_76),
            p2p_port: 29733,
            rpc_port: 29732,
        })
    }

    /// The easiest target.
    pub fn max_target(&self) -> U256 {
        self.asert.max_target
    }

    /// The ASERT anchor of a chain whose block 1 is dated `block_one_time` (DESIGN.md §6).
    pub fn anchor(&self, block_one_time: u64) -> Anchor {
        Anchor::block_one(&self.asert, block_one_time)
    }

    /// The genesis hash.
    pub fn genesis_hash(&self) -> Hash256 {
        self.chain_id
    }
}

struct Setup {
    network: Network,
    genesis_time: u64,
    max_target_bits: u32,
    spacing: u64,
    halflife: u64,
    drift: u64,
    maturity: u64,
    halving: u64,
    task: TaskSpec,
    p2p_port: u16,
    rpc_port: u16,
}

/// The public task: a seeded synthetic planted softmax regression that never expires and
/// is never solved (it has no bounty, and its target, the smallest positive number that
/// admission allows, is below any regularised loss).
fn public_task(n: u32, d: u32, seed: u64) -> TaskSpec {
    TaskSpec {
        kind: TaskKind::Softmax,
        data: TaskData::Synthetic { n, d, seed, scale: 0.5 },
        reg_lambda: 1e-8,
        copyright: None,
        target_score: f64::MIN_POSITIVE,
    }
}

/// The public task's id: `H("gradientcoin/public-task/v1" || encode(spec))`.
pub fn public_task_id(spec: &TaskSpec) -> Hash256 {
    sha256d_parts(&[PUBLIC_TASK_DOMAIN, &encode::encode(spec)])
}

fn build(s: Setup) -> ChainParams {
    let max_target = target_from_bits(s.max_target_bits).expect("network max-target bits are valid");
    let problem = s.task.build_unchecked().expect("the public task is admissible");
    let init = problem.init();
    let task_id = public_task_id(&s.task);
    let coinbase = Transaction::Coinbase { height: 0, outputs: Vec::new() };
    let init_hash = Params::hash(&init);
    let header = Header {
        version: 1,
        prev: Hash256::ZERO,
        merkle_root: merkle_root(&[coinbase.txid()]),
        time: s.genesis_time,
        bits: s.max_target_bits,
        work: WorkClaim { task_id, input_hash: init_hash, cost: problem.cost(), output_hash: init_hash },
        nonce: 0,
    };
    let genesis = Block { header, witness: WorkWitness { input_params: init.0 }, txs: vec![coinbase] };
    let chain_id = genesis.hash();
    let max_params = 1 << 20;
    ChainParams {
        network: s.network,
        chain_id,
        genesis,
        public_task: s.task,
        public_task_id: task_id,
        max_target_bits: s.max_target_bits,
        asert: AsertParams { spacing: s.spacing, halflife: s.halflife, max_target },
        max_future_drift_secs: s.drift,
        coinbase_maturity: s.maturity,
        initial_subsidy: Amount::from_units(50 * crate::chain::amount::COIN),
        halving_interval: s.halving,
        max_block_bytes: 8 << 20,
        tx_limits: TxLimits { max_tx_bytes: 4 << 20, max_outputs: 10_000, max_params },
        task_limits: TaskLimits {
            max_data_bytes: 4 << 20,
            max_step_cost: MAX_STEP_COST_MWU,
            max_params,
            max_tasks_per_block: 8,
            max_task_bytes_per_block: 8 << 20,
        },
        min_relative_improvement: 1e-6,
        stall_blocks: stall_blocks_for(s.network),
        p2p_port: s.p2p_port,
        rpc_port: s.rpc_port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_have_distinct_genesis_and_chain_ids() {
        let ids: Vec<Hash256> = Network::ALL.iter().map(|n| ChainParams::for_network(*n).chain_id).collect();
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
        assert_ne!(ids[0], ids[2]);
        for n in Network::ALL {
            let p = ChainParams::for_network(n);
            assert_eq!(p.genesis.hash(), p.chain_id);
            assert_eq!(p.genesis.header.work.task_id, p.public_task_id);
            assert!(p.public_task.check_limits(&p.task_limits).is_ok(), "{n:?}");
        }
    }
}
