//! Golden consensus vectors of the chain: each network's genesis hash (= chain id) and
//! public task, and the first dev blocks mined deterministically. A change to any of them
//! is a consensus change (bless deliberately with `GC_BLESS_VECTORS=1`).

mod common;

use common::chain::{TestChain, addr};
use gradientcoin::chain::Network;
use gradientcoin::chain::encode::encode;
use gradientcoin::chain::params::ChainParams;
use gradientcoin::hash::sha256;
use std::collections::BTreeMap;

#[test]
fn genesis_blocks_and_first_dev_blocks_are_fixed() {
    let mut v = BTreeMap::new();
    for n in Network::ALL {
        let p = ChainParams::for_network(n);
        v.insert(format!("{n}/genesis_hash"), p.genesis_hash().to_string());
        v.insert(format!("{n}/genesis_bytes_sha256"), sha256(&encode(&p.genesis)).to_string());
        v.insert(format!("{n}/public_task_id"), p.public_task_id.to_string());
        v.insert(format!("{n}/public_task_cost_mwu"), p.genesis.header.work.cost.to_string());
        v.insert(format!("{n}/max_target_bits"), format!("{:08x}", p.max_target_bits));
    }
    let mut tc = TestChain::new();
    for i in 1..=3 {
        let b = tc.mine(addr(1), vec![]);
        v.insert(format!("dev/block{i}_hash"), b.hash().to_string());
        v.insert(format!("dev/block{i}_output_hash"), b.header.work.output_hash.to_string());
    }
    common::vectors::check("chain", &v);
}
