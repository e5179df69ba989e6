//! The one-command local testnet, as a user runs it: `gradientcoin testnet --nodes 3
//! --demo` starts three node processes of the built binary on 127.0.0.1, they mine on the
//! test network, the demo task is submitted and trained, and every child stops cleanly.
//! Afterwards the test opens each node's database itself: one tip everywhere, and the demo
//! task's best score went down.

use gradientcoin::chain::params::ChainParams;
use gradientcoin::hash::Hash256;
use gradientcoin::store::ChainStore;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// Runs in the release pass of `scripts/test.sh`: debug builds mine about four times slower
// (this test takes ~80 s there instead of ~25 s) and prove nothing more.
#[test]
#[cfg_attr(debug_assertions, ignore = "slow in debug builds; runs in the release pass")]
fn a_three_node_testnet_converges_and_trains_the_demo_task() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gradientcoin"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("GRADIENTCOIN_")) {
        cmd.env_remove(k);
    }
    let mut child = cmd
        .args(["testnet", "--nodes", "3", "--demo", "--blocks", "24", "--json", "--dir"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A bound on the whole run (debug builds mine ~4x slower than release).
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the testnet did not finish in 300 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "testnet failed: {stderr}");
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(summary["converged"], true, "{summary}");
    let demo = &summary["demo"];
    let task: Hash256 = demo["task"].as_str().expect("the demo task was submitted").parse().unwrap();
    let (initial, best) = (demo["initial_score"].as_f64().unwrap(), demo["best_score"].as_f64().unwrap());
    assert!(best < initial, "the demo task's score went down: {initial} -> {best}");

    // Independently: every node's database (the processes have exited) holds the same tip
    // at least 24 high, and the same demo task state.
    let params = ChainParams::test();
    let mut tips = Vec::new();
    for i in 0..3 {
        let store = ChainStore::open(&dir.path().join(format!("node{i}/chain")), params.clone()).unwrap();
        let t = store.state().task(&task).expect("every node knows the demo task").clone();
        assert_eq!(t.best_score, best, "node{i}");
        assert!(store.height() >= 24, "node{i} at {}", store.height());
        tips.push(store.tip());
        assert!(!dir.path().join(format!("node{i}/.cookie")).exists(), "node{i} stopped cleanly");
    }
    assert!(tips.windows(2).all(|w| w[0] == w[1]), "{tips:?}");
}
