//! Model-based fork choice: random block trees fed to a real chain on sled. After every
//! block the tip must equal a 30-line reference model (most work, first seen on ties), and
//! the chain's state — reached through every connect and disconnect of every reorg — must
//! equal a fresh replay of the tip's chain from genesis.

mod common;

use common::chain::{TestChain, addr};
use gradientcoin::chain::amount::Amount;
use gradientcoin::chain::block::Block;
use gradientcoin::chain::forkchoice::BlockIndex;
use gradientcoin::chain::params::ChainParams;
use gradientcoin::chain::pipeline::Accepted;
use gradientcoin::chain::problems::ProblemCache;
use gradientcoin::chain::state::{State, StateView};
use gradientcoin::hash::Hash256;
use gradientcoin::miner::{TemplateRequest, template_on};
use proptest::prelude::*;
use std::collections::HashMap;

/// The reference: every block has the same work on dev params (on-schedule times keep the
/// target at its maximum), so the best tip is the highest block, the first seen on ties.
#[derive(Default)]
struct Model {
    blocks: Vec<(Hash256, u64)>, // (hash, height) in arrival order
}

impl Model {
    fn add(&mut self, hash: Hash256, height: u64) {
        self.blocks.push((hash, height));
    }

    fn best(&self, genesis: Hash256) -> Hash256 {
        let mut best = (genesis, 0u64);
        for &(h, height) in &self.blocks {
            if height > best.1 {
                best = (h, height);
            }
        }
        best.0
    }
}

/// Replays the chain ending at `tip` from genesis with a fresh state.
fn replay(
    params: &ChainParams,
    problems: &ProblemCache,
    blocks: &HashMap<Hash256, (Block, u64)>,
    tip: Hash256,
) -> State {
    let mut path = Vec::new();
    let mut cur = tip;
    while cur != params.genesis_hash() {
        let (b, _) = &blocks[&cur];
        path.push(cur);
        cur = b.header.prev;
    }
    let mut state = State::genesis(params, problems).unwrap();
    for h in path.iter().rev() {
        let (b, height) = &blocks[h];
        state.connect_replaying(b, *height, params, problems).expect("replay of an accepted chain connects");
    }
    state
}

/// Feeds the tree; returns how many blocks caused a reorg (a disconnect).
fn run_tree(choices: &[u16]) -> usize {
    let mut reorgs = 0;
    let mut tc = TestChain::new();
    let params = tc.params().clone();
    let genesis = params.genesis_hash();
    let mut index = BlockIndex::new(&params.genesis.header);
    let mut blocks: HashMap<Hash256, (Block, u64)> = HashMap::new();
    let mut order = vec![genesis];
    let problems = ProblemCache::default();
    let mut model = Model::default();
    for (i, c) in choices.iter().enumerate() {
        // Bias to recent blocks so that branches grow and overtake each other.
        let k = order.len();
        let back = (*c as usize) % k.min(6);
        let parent = order[k - 1 - back];
        let state = replay(&params, &problems, &blocks, parent);
        let ctx = index.parent_context(&parent).unwrap();
        let req = TemplateRequest {
            payee: addr((i % 7) as u8 + 1),
            time: ctx.time + params.asert.spacing,
            txs: vec![],
            task: None,
            bounty_claim: Amount::ZERO,
        };
        let t = template_on(&params, parent, &ctx, StateView { state: &state, problems: &problems }, req).unwrap();
        let b = t.mine(0, 1_000_000).unwrap();
        let h = b.hash();
        index.insert(&b.header).unwrap();
        blocks.insert(h, (b.clone(), ctx.height + 1));
        order.push(h);
        model.add(h, ctx.height + 1);

        match tc.process(&b) {
            Ok(Accepted::NewTip { disconnected, .. }) if !disconnected.is_empty() => reorgs += 1,
            Ok(_) => {}
            Err(e) => panic!("block {i} rejected: {e}"),
        }
        assert_eq!(tc.cs.tip(), model.best(genesis), "after block {i}: tip differs from the model");
        let fresh = replay(&params, &problems, &blocks, tc.cs.tip());
        assert!(tc.cs.state().same_content(&fresh), "after block {i}: state differs from a replay from genesis");
    }
    // Reopening the store gives the same tip and state.
    let dir = tc.dir.path().to_path_buf();
    let tip = tc.cs.tip();
    drop(tc.cs);
    let reopened = gradientcoin::store::ChainStore::open(&dir, params.clone()).unwrap();
    assert_eq!(reopened.tip(), tip);
    assert!(reopened.state().same_content(&replay(&params, &problems, &blocks, tip)));
    reorgs
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn random_block_trees_follow_the_model_and_reorgs_match_replay(choices in proptest::collection::vec(any::<u16>(), 10..30)) {
        run_tree(&choices);
    }
}

#[test]
fn a_longer_branch_reorgs_and_the_old_branch_can_win_back() {
    // Fixed tree: main 1-2-3, fork from 1 growing to 4 blocks, then main grows to 5.
    let choices = [0u16, 0, 0, 2, 0, 0, 0, 4, 0, 0];
    assert!(run_tree(&choices) >= 2, "the fixed tree reorganises at least twice");
}
