//! Wallet tests on real dev chains: every builder's output passes `check`,
//! `verify_signatures` and `check_tx`; selection, change, maturity; the keystore file.

use super::*;
use crate::chain::tx::{OutPoint, Transaction};
use crate::compute::problem::SolveOpts;
use crate::mempool::testkit::{TestChain, addr, spec};
use crate::mempool::{Mempool, MempoolConfig};

fn dev_wallet(dir: &Path) -> Wallet {
    Wallet::open_or_create(dir, Network::Dev).expect("wallet opens")
}

/// A chain, and a wallet with one key that owns `n` mature coinbase outputs.
fn funded(n: usize) -> (TestChain, tempfile::TempDir, Wallet, Address) {
    let mut tc = TestChain::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut w = dev_wallet(dir.path());
    let a = w.new_key("main").expect("new key");
    tc.funded(a, n);
    (tc, dir, w, a)
}

/// The three checks of the brief; returns the fee `check_tx` computes.
#[track_caller]
fn assert_valid(tc: &mut TestChain, tx: &Transaction) -> Amount {
    let p = tc.params();
    tx.check(&p.tx_limits).expect("context-free checks");
    tx.verify_signatures(&p.chain_id).expect("signatures");
    let h = tc.next_height();
    tc.cs.view().check_tx(tx, h, &p).expect("valid against the state")
}

fn input_total(tc: &TestChain, tx: &Transaction) -> Amount {
    Amount::checked_sum(tx.inputs().iter().map(|i| tc.cs.state().utxo(&i.prevout).expect("input exists").output.value))
        .expect("sum")
}

fn output_total(tx: &Transaction) -> Amount {
    Amount::checked_sum(tx.outputs().iter().map(|o| o.value)).expect("sum")
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn keystore_is_owner_only_and_reopens_with_the_same_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wdir = dir.path().join("w");
    let mut w = dev_wallet(&wdir);
    assert!(w.addresses().is_empty());
    assert!(matches!(w.change_address(), Err(WalletError::NoKeys)));
    let a = w.new_key("alice").expect("key");
    let b = w.new_key("bob").expect("key");
    assert_ne!(a, b);
    #[cfg(unix)]
    assert_eq!(mode(w.path()), 0o600);
    let text = std::fs::read_to_string(w.path()).expect("read");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(json["version"], 1);
    assert_eq!(json["network"], "dev");
    assert_eq!(json["keys"][1]["label"], "bob");
    assert_eq!(json["keys"][0]["secret"].as_str().map(str::len), Some(64));
    assert!(!format!("{w:?}").contains(json["keys"][0]["secret"].as_str().unwrap_or("-")), "Debug leaks no secret");

    let again = dev_wallet(&wdir);
    assert_eq!(again.addresses(), vec![a, b]);
    assert_eq!(again.list(), w.list());
    assert_eq!(again.list()[0].label, "alice");
    assert_eq!(again.key_for(&b).map(|k| k.to_bytes()), w.key_for(&b).map(|k| k.to_bytes()));
    assert!(again.key_for(&addr(1)).is_none());
    assert!(!wdir.join(".wallet.json.tmp").exists(), "no temp file left behind");
}

#[test]
fn keystores_of_another_network_bad_mode_or_bad_shape_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut w = dev_wallet(dir.path());
    w.new_key("k").expect("key");
    let path = w.path().to_path_buf();
    let e = Wallet::open_or_create(dir.path(), Network::Test).expect_err("dev wallet on test");
    assert!(matches!(e, WalletError::WrongNetwork { found: Network::Dev, expected: Network::Test, .. }), "{e}");
    assert!(e.to_string().contains("dev network"), "{e}");

    #[cfg(unix)]
    {
        chmod(&path, 0o644);
        let e = Wallet::open_or_create(dir.path(), Network::Dev).expect_err("world readable");
        assert!(matches!(e, WalletError::Permissions { mode: 0o644, .. }), "{e}");
        assert!(e.to_string().contains("644"), "{e}");
        chmod(&path, 0o600);
    }

    std::fs::write(&path, "{ \"version\": 1, \"network\": \"dev\", \"keys\": [ }").expect("write");
    let e = Wallet::open_or_create(dir.path(), Network::Dev).expect_err("malformed");
    let msg = e.to_string();
    assert!(
        matches!(e, WalletError::Malformed { .. }) && msg.contains(&path.display().to_string()) && !msg.contains('\n'),
        "{msg}"
    );

    std::fs::write(&path, "{ \"version\": 1, \"network\": \"dev\", \"keys\": [ { \"label\": \"x\", \"secret\": \"zz\", \"created\": 0 } ] }")
        .expect("write");
    assert!(matches!(Wallet::open_or_create(dir.path(), Network::Dev), Err(WalletError::BadSecret { index: 0, .. })));
    std::fs::write(&path, "{ \"version\": 2, \"network\": \"dev\", \"keys\": [] }").expect("write");
    assert!(matches!(
        Wallet::open_or_create(dir.path(), Network::Dev),
        Err(WalletError::UnsupportedVersion { version: 2, .. })
    ));
}

#[test]
fn transfer_is_valid_and_change_balances_exactly() {
    let (mut tc, _d, w, me) = funded(3);
    let h = tc.next_height();
    let rate = 10;
    let amount = Amount::from_units(70 * crate::chain::amount::COIN);
    let tx = w.transfer(tc.cs.view(), h, addr(2), amount, rate).expect("builds");
    let fee = assert_valid(&mut tc, &tx);
    assert_eq!(tx.inputs().len(), 2, "largest first: two 50 GRAD coins cover 70");
    let (ins, outs) = (input_total(&tc, &tx), output_total(&tx));
    assert_eq!(ins, outs.checked_add(fee).expect("sum"), "inputs = outputs + fee");
    assert_eq!(tx.outputs()[0].value, amount);
    assert_eq!(tx.outputs()[0].address, addr(2));
    assert_eq!(tx.outputs()[1].address, me, "change back to the wallet");
    assert_eq!(fee, Amount::from_units(rate * tx.size() as u64).max(DEFAULT_MIN_FEE));
    // A pool at that fee rate relays it, and a block can carry it.
    let p = tc.params();
    let mut mp = Mempool::new(MempoolConfig { max_bytes: 1 << 20, min_fee_rate: rate });
    mp.add(tx.clone(), tc.cs.view(), h, &p).expect("relayed");
    // With the pool's spends reserved, a second payment before the block uses the third
    // coin instead of conflicting.
    let mut w = w;
    w.set_reserved(tx.inputs().iter().map(|i| i.prevout).filter(|o| mp.spender(o).is_some()));
    let second = w.transfer(tc.cs.view(), h, addr(3), Amount::from_units(1_000_000), rate).expect("builds");
    assert!(second.inputs().iter().all(|i| mp.spender(&i.prevout).is_none()));
    mp.add(second.clone(), tc.cs.view(), h, &p).expect("no conflict");
    w.set_reserved([]);
    let b = tc.mine(addr(9), mp.select(1 << 20, &tc.params().task_limits));
    assert_eq!(mp.remove_for_block(&b).len(), 2);
    assert!(w.balance(tc.cs.state(), tc.next_height()).spendable < Amount::from_units(80 * crate::chain::amount::COIN));
}

#[test]
fn dust_change_goes_to_the_fee_and_shortfalls_are_reported() {
    let (mut tc, _d, mut w, _me) = funded(2);
    let h = tc.next_height();
    let bal = w.balance(tc.cs.state(), h);
    assert_eq!(bal.spendable, Amount::from_units(100 * crate::chain::amount::COIN));
    // Leave 500 units over a plausible fee: no change output, the 500 go to the fee.
    w.set_min_fee(Amount::from_units(2_000));
    let amount = Amount::from_units(bal.spendable.units() - 2_500);
    let tx = w.transfer(tc.cs.view(), h, addr(2), amount, 1).expect("builds");
    let fee = assert_valid(&mut tc, &tx);
    assert_eq!(tx.outputs().len(), 1, "dust change is not an output");
    assert_eq!(fee, Amount::from_units(2_500));

    let e = w.transfer(tc.cs.view(), h, addr(2), bal.spendable, 1).expect_err("fee not covered");
    assert!(
        matches!(e, WalletError::InsufficientFunds { needed, available, .. } if available == bal.spendable && needed > available),
        "{e}"
    );
    assert!(matches!(w.transfer(tc.cs.view(), h, addr(2), Amount::ZERO, 1), Err(WalletError::ZeroAmount)));
}

#[test]
fn immature_coins_are_not_spent() {
    let mut tc = TestChain::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut w = dev_wallet(dir.path());
    let me = w.new_key("main").expect("key");
    tc.mine(me, vec![]);
    tc.mine_n(3, addr(9));
    let h = tc.next_height();
    let bal = w.balance(tc.cs.state(), h);
    assert_eq!((bal.spendable, bal.immature), (Amount::ZERO, Amount::from_units(50 * crate::chain::amount::COIN)));
    let e = w.transfer(tc.cs.view(), h, addr(2), Amount::from_units(1_000_000), 1).expect_err("immature only");
    assert!(
        matches!(e, WalletError::InsufficientFunds { available: Amount::ZERO, immature, .. } if immature == bal.immature),
        "{e}"
    );

    // Mature one coin, then receive a fresh (immature) one: only the mature one is spent.
    tc.mine_n(6, addr(9));
    let fresh = tc.mine(me, vec![]);
    let h = tc.next_height();
    let tx = w.transfer(tc.cs.view(), h, addr(2), Amount::from_units(1_000_000), 1).expect("one mature coin");
    assert_valid(&mut tc, &tx);
    assert_eq!(tx.inputs().len(), 1);
    assert_ne!(tx.inputs()[0].prevout, OutPoint { txid: fresh.txs[0].txid(), vout: 0 });
    let e = w
        .transfer(tc.cs.view(), h, addr(2), Amount::from_units(60 * crate::chain::amount::COIN), 1)
        .expect_err("the fresh coin is immature");
    assert!(matches!(e, WalletError::InsufficientFunds { .. }), "{e}");
}

#[test]
fn task_builders_submit_update_and_reclaim_are_valid() {
    let (mut tc, _d, w, me) = funded(1);
    let h = tc.next_height();
    let bounty = Amount::from_units(5 * crate::chain::amount::COIN);
    let submit = w.submit_task(tc.cs.view(), h, spec(1e-30), bounty, h + 4, 5).expect("builds");
    let fee = assert_valid(&mut tc, &submit);
    let ins = input_total(&tc, &submit);
    assert_eq!(
        ins,
        output_total(&submit).checked_add(bounty).and_then(|v| v.checked_add(fee)).expect("sum"),
        "inputs = change + bounty + fee"
    );
    assert_eq!(submit.outputs()[0].address, me);
    let task = submit.txid();
    tc.mine(addr(9), vec![submit]);
    assert_eq!(tc.cs.state().task(&task).and_then(|t| t.creator), Some(me), "the first input's key is the creator");

    // Model updates: fee-less (no inputs) and paying a fee from the wallet.
    let p = tc.cs.view().problem(&task).expect("task");
    let (x, _) = p.solve(&SolveOpts { max_iter: 2, ..Default::default() }, &mut |_| {}).expect("solve");
    let cert = p.certify(&x).expect("certify");
    let h = tc.next_height();
    let free = w.model_update(tc.cs.view(), h, task, x.clone(), cert.clone(), addr(3), 0).expect("builds");
    assert!(free.inputs().is_empty() && free.outputs().is_empty());
    assert_eq!(assert_valid(&mut tc, &free), Amount::ZERO);
    let paid = w.model_update(tc.cs.view(), h, task, x.clone(), cert.clone(), addr(3), 2).expect("builds");
    let fee = assert_valid(&mut tc, &paid);
    assert_eq!(input_total(&tc, &paid), output_total(&paid).checked_add(fee).expect("sum"));
    assert!(fee >= Amount::from_units(2 * paid.size() as u64));
    // An update that does not improve the best is refused by the wallet itself.
    let init = p.init();
    let e = w
        .model_update(tc.cs.view(), h, task, init.clone(), p.certify(&init).expect("certify"), addr(3), 0)
        .expect_err("not improving");
    assert!(matches!(e, WalletError::Rejected(_)), "{e}");

    // Reclaim: refused before expiry, valid after, only with the creator's key.
    assert!(matches!(w.reclaim(tc.cs.view(), h, task), Err(WalletError::Rejected(_))));
    tc.mine_n(4, addr(9));
    let h = tc.next_height();
    let reclaim = w.reclaim(tc.cs.view(), h, task).expect("builds");
    assert_eq!(assert_valid(&mut tc, &reclaim), Amount::ZERO);
    let other_dir = tempfile::tempdir().expect("temp dir");
    let mut other = dev_wallet(other_dir.path());
    other.new_key("x").expect("key");
    assert!(matches!(other.reclaim(tc.cs.view(), h, task), Err(WalletError::NotCreator(t)) if t == task));
    let public = tc.params().public_task_id;
    assert!(
        matches!(w.reclaim(tc.cs.view(), h, public), Err(WalletError::NotCreator(_))),
        "the public task has no creator"
    );
    assert!(matches!(w.reclaim(tc.cs.view(), h, Hash256([3; 32])), Err(WalletError::UnknownTask(_))));
    let b = tc.mine(addr(9), vec![reclaim]);
    let back = tc.cs.state().utxo(&OutPoint { txid: b.txs[1].txid(), vout: 0 }).expect("bounty back");
    assert_eq!((back.output.address, back.output.value), (me, bounty));
}
