//! ASERT anchored at block 1 (DESIGN.md §6), on a mock clock: a test network whose block 1
//! comes 30 days after its genesis timestamp, mined by a constant hash rate that finds a
//! block every 0.5 s at the max target (what the test network's miners do). Headers go
//! through the real block index and `required_bits`; each block's time is drawn from the
//! exponential waiting time its target gives at that hash rate (a seeded stream).

use gradientcoin::chain::block::Header;
use gradientcoin::chain::forkchoice::BlockIndex;
use gradientcoin::chain::params::ChainParams;
use gradientcoin::chain::target::{AsertParams, U256, chainwork, next_target, target_from_bits};
use gradientcoin::chain::validate::required_bits;
use gradientcoin::compute::det::DetRng;
use gradientcoin::hash::Hash256;

const DAY: u64 = 86_400;
/// Seconds per block at the max target for the simulated miners.
const SECONDS_AT_MAX: f64 = 0.5;

fn to_f64(u: U256) -> f64 {
    u.to_be_bytes().iter().fold(0.0, |a, b| a * 256.0 + f64::from(*b))
}

/// Mines `blocks` blocks after block 1 on a mock clock; `bits_of(index, parent)` gives the
/// bits of each child. Returns the mean interval of those blocks.
fn mean_interval(params: &ChainParams, blocks: u64, bits_of: impl Fn(&BlockIndex, &Hash256) -> u32) -> f64 {
    let mut index = BlockIndex::new(&params.genesis.header);
    let mut rng = DetRng::stream(&[42u8; 32], 8, 0);
    let max_work = to_f64(chainwork(params.max_target()));
    let mut parent = params.genesis_hash();
    let mut clock = (params.genesis.header.time + 30 * DAY) as f64;
    let mut block_one_time = 0;
    for height in 1..=blocks + 1 {
        let ctx = index.parent_context(&parent).unwrap();
        let bits = if height == 1 { required_bits(&ctx, params) } else { bits_of(&index, &parent) };
        let target = target_from_bits(bits).unwrap();
        let mean = SECONDS_AT_MAX * to_f64(chainwork(target)) / max_work;
        if height > 1 {
            clock += -mean * rng.u01_open().ln();
        }
        let time = (clock as u64).max(ctx.median_time_past + 1);
        if height == 1 {
            block_one_time = time;
        }
        let header = Header { prev: parent, time, bits, nonce: height, ..params.genesis.header };
        parent = index.insert(&header).unwrap().header.hash();
    }
    let tip = index.get(&parent).unwrap();
    (tip.header.time - block_one_time) as f64 / blocks as f64
}

#[test]
fn a_chain_started_30_days_after_genesis_keeps_its_block_spacing() {
    let params = ChainParams::test();
    let spacing = params.asert.spacing as f64;
    let mean =
        mean_interval(&params, 300, |index, parent| required_bits(&index.parent_context(parent).unwrap(), &params));
    println!("anchored at block 1: mean interval {mean:.2} s over 300 blocks (spacing {spacing} s)");
    assert!((mean - spacing).abs() <= 0.2 * spacing, "mean interval {mean:.2} s, spacing {spacing} s");

    // The same chain anchored at the genesis time (the rule this replaced) is 30 days
    // behind schedule and stays at the max target: blocks every 0.5 s.
    let p: AsertParams = params.asert;
    let genesis_time = params.genesis.header.time;
    let by_genesis = mean_interval(&params, 300, |index, parent| {
        let ctx = index.parent_context(parent).unwrap();
        let anchor = gradientcoin::chain::target::Anchor { height: 1, target: p.max_target, parent_time: genesis_time };
        gradientcoin::chain::target::bits_from_target(next_target(&anchor, ctx.height, ctx.time, &p))
    });
    println!("anchored at the genesis time: mean interval {by_genesis:.2} s");
    assert!(by_genesis < 0.3 * spacing, "{by_genesis}");
}

#[test]
fn block_one_is_at_the_max_target_and_its_child_on_schedule_stays_there() {
    let params = ChainParams::test();
    let mut index = BlockIndex::new(&params.genesis.header);
    let g = params.genesis_hash();
    let ctx = index.parent_context(&g).unwrap();
    assert_eq!(ctx.block_one_time, None);
    let max_bits = required_bits(&ctx, &params);
    assert_eq!(target_from_bits(max_bits).unwrap(), params.max_target());
    let t1 = params.genesis.header.time + 365 * DAY;
    let h1 = Header { prev: g, time: t1, bits: max_bits, nonce: 1, ..params.genesis.header };
    let b1 = index.insert(&h1).unwrap().header.hash();
    let ctx1 = index.parent_context(&b1).unwrap();
    assert_eq!(ctx1.block_one_time, Some(t1));
    // Block 2 after block 1 is on schedule by definition: the max target again.
    assert_eq!(required_bits(&ctx1, &params), max_bits);
    // A block 2 one spacing later on schedule keeps it; one halflife early halves it.
    let h2 = Header { prev: b1, time: t1 + params.asert.spacing, bits: max_bits, nonce: 2, ..params.genesis.header };
    let b2 = index.insert(&h2).unwrap().header.hash();
    assert_eq!(required_bits(&index.parent_context(&b2).unwrap(), &params), max_bits);
    let early = Header { prev: b1, time: t1 + params.asert.spacing - params.asert.halflife, nonce: 3, ..h2 };
    let e = index.insert(&early).unwrap().header.hash();
    let halved = target_from_bits(required_bits(&index.parent_context(&e).unwrap(), &params)).unwrap();
    let ratio = to_f64(params.max_target()) / to_f64(halved);
    assert!((ratio - 2.0).abs() < 0.01, "one halflife early: target / {ratio}");
}
