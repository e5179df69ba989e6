//! Crash safety of the store (DESIGN.md §8): a child process connects blocks in a loop and
//! is killed with SIGKILL at random moments, 20 times. Every reopen must find a consistent
//! tip — index, UTXO set and task registry equal to a replay from genesis — and no block
//! the child reported connected may be missing.

mod common;

use common::chain::{addr, key, transfer};
use gradientcoin::chain::amount::Amount;
use gradientcoin::chain::forkchoice::BlockStatus;
use gradientcoin::chain::params::ChainParams;
use gradientcoin::chain::state::State;
use gradientcoin::chain::tx::OutPoint;
use gradientcoin::compute::det::DetRng;
use gradientcoin::hash::Hash256;
use gradientcoin::miner;
use gradientcoin::store::ChainStore;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD_DIR: &str = "GC_CRASH_CHILD_DIR";

/// The child: extends the chain forever, spending matured coinbases along the way, and
/// prints `connected <height> <hash>` after each block is connected (and flushed).
#[test]
#[ignore = "run as a child process by kill_9_at_random_moments_never_corrupts_the_chain"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else { return };
    let params = ChainParams::dev();
    let mut cs = ChainStore::open(std::path::Path::new(&dir), params.clone()).expect("child opens the chain");
    let now = params.genesis.header.time + 100_000_000;
    loop {
        let height = cs.height() + 1;
        let mut txs = Vec::new();
        // Spend the coinbase that just matured (paid to key (h % 5) + 1) back and forth.
        let spend_h = height.saturating_sub(params.coinbase_maturity);
        if spend_h >= 1 {
            let cb_hash = cs.hash_at(spend_h).unwrap().unwrap();
            let cb = cs.block(&cb_hash).unwrap().unwrap();
            let coin = OutPoint { txid: cb.txs[0].txid(), vout: 0 };
            if cs.state().utxo(&coin).is_some() {
                let owner = (spend_h % 5) as u8 + 1;
                let value = cb.txs[0].outputs()[0].value.units();
                txs.push(transfer(
                    &params.chain_id,
                    owner,
                    &[coin],
                    &[(addr(owner + 1), value / 2), (addr(owner), value / 2 - 100)],
                ));
            }
        }
        let time = cs.tip_entry().header.time + params.asert.spacing;
        let payee = addr((height % 5) as u8 + 1);
        let t = miner::template(&mut cs, payee, time, txs, None, Amount::ZERO).expect("template");
        let b = t.mine(0, 10_000_000).expect("dev block");
        cs.process_block(&b, now).expect("child's own block connects");
        println!("connected {height} {}", b.hash());
    }
}

fn replay_main(cs: &ChainStore) -> State {
    let params = cs.params();
    let problems = gradientcoin::chain::problems::ProblemCache::default();
    let mut st = State::genesis(params, &problems).unwrap();
    for h in 1..=cs.height() {
        let hash = cs.hash_at(h).unwrap().expect("main chain is contiguous");
        let b = cs.block(&hash).unwrap().expect("main-chain blocks are stored");
        st.connect_replaying(&b, h, params, &problems).expect("main chain replays");
    }
    st
}

#[test]
fn kill_9_at_random_moments_never_corrupts_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = DetRng::stream(&[42u8; 32], 0, 0);
    let mut reported: Vec<(u64, Hash256)> = Vec::new();
    let _ = key(1);
    for round in 0..20 {
        let mut child = Command::new(&exe)
            .args(["--ignored", "--exact", "crash_child", "--nocapture", "--test-threads", "1"])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child");
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("connected ") {
                    let mut parts = rest.split(' ');
                    let h: u64 = parts.next().unwrap().parse().unwrap();
                    let hash: Hash256 = parts.next().unwrap().parse().unwrap();
                    got.push((h, hash));
                }
            }
            got
        });
        // A random moment: anywhere from start-up to a few dozen blocks in.
        std::thread::sleep(Duration::from_millis(100 + rng.below(500)));
        child.kill().expect("SIGKILL the child");
        child.wait().unwrap();
        let got = reader.join().unwrap();
        reported.extend(got);

        let cs = ChainStore::open(dir.path(), ChainParams::dev())
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        let max_reported = reported.iter().map(|(h, _)| *h).max().unwrap_or(0);
        assert!(cs.height() >= max_reported, "round {round}: tip {} below reported {max_reported}", cs.height());
        for (h, hash) in &reported {
            assert_eq!(cs.hash_at(*h).unwrap(), Some(*hash), "round {round}: reported block at height {h} missing");
        }
        for h in 0..=cs.height() {
            let hash = cs.hash_at(h).unwrap().unwrap();
            let e = cs.index().get(&hash).unwrap_or_else(|| panic!("round {round}: main block {h} not indexed"));
            assert_eq!((e.height, e.status), (h, BlockStatus::Valid), "round {round}: index entry of height {h}");
        }
        assert_eq!(cs.index().best(), cs.tip(), "round {round}: tip is not the best valid block");
        assert!(cs.state().same_content(&replay_main(&cs)), "round {round}: state differs from a replay from genesis");
    }
    eprintln!("{} blocks reported connected over 20 kills", reported.len());
    assert!(reported.len() >= 20, "the child made too little progress ({} blocks) to test anything", reported.len());
}
