//! `gradientcoin bench chain`: consensus benchmarks that print ratios against references
//! measured in the same run (the machines are noisy; absolute times mean little).
//!
//! 1. Validation throughput of a block full of transfers, against the raw `verify_strict`
//!    rate of the same machine.
//! 2. The time to replay one step of each kind, next to its cost in work units.
//! 3. Expected mining work per block against the work of verifying it, at test params.

use crate::chain::address::Address;
use crate::chain::amount::Amount;
use crate::chain::params::ChainParams;
use crate::chain::target::U256;
use crate::chain::tx::{OutPoint, Sig64, Transaction, TxIn, TxOut};
use crate::compute::copyright::CopyrightVariant;
use crate::compute::problem::Problem;
use crate::miner;
use crate::pouw::task::{CopyrightSpec, TaskData, TaskKind, TaskSpec};
use crate::store::ChainStore;
use std::io::Write;
use anyhow::{bail, Context};
use ed25519_dalek::{Signer, SigningKey};
use std::time::Instant;

fn key(i: u32) -> SigningKey {
    let mut b = [7u8; 32];
    b[..4].copy_from_slice(&i.to_le_bytes());
    SigningKey::from_bytes(&b)
}

fn addr(k: &SigningKey) -> Address {
    Address::from_pubkey(&k.verifying_key().to_bytes())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the chain benchmarks with `txs` transfers in the validation block.
pub fn run(txs: usize) -> anyhow::Result<()> {
    if txs == 0 || txs > 9_000 {
        bail!("--txs must be between 1 and 9000 (one fan-out transaction funds them)");
    }
    validation(txs)?;
    replay_per_kind()?;
    mining_vs_verification()?;
    Ok(())
}

fn validation(n: usize) -> anyhow::Result<()> {
    outln!("== validation throughput: one block of {n} transfers (one core)");
    let dir = tempfile::tempdir().context("temp dir")?;
    let params = ChainParams::dev();
    let chain_id = params.chain_id;
    let mut cs = ChainStore::open(dir.path(), params.clone())?;
    let now = params.genesis.header.time + 100_000_000;
    let k0 = key(0);
    let mine = |cs: &mut ChainStore, txs: Vec<Transaction>| -> anyhow::Result<(crate::chain::block::Block, f64)> {
        let time = cs.tip_entry().header.time + 1;
        let t = miner::template(cs, addr(&k0), time, txs, None, Amount::ZERO)?;
        let b = t.mine(0, 10_000_000).context("dev block")?;
        let started = Instant::now();
        cs.process_block(&b, now)?;
        Ok((b, started.elapsed().as_secs_f64()))
    };
    let (first, _) = mine(&mut cs, vec![])?;
    for _ in 0..params.coinbase_maturity {
        mine(&mut cs, vec![])?;
    }
    // Fan out the first coinbase into n outputs owned by n keys.
    let coin = OutPoint { txid: first.txs[0].txid(), vout: 0 };
    let total = first.txs[0].outputs()[0].value.units();
    let each = total / (n as u64 + 1);
    let keys: Vec<SigningKey> = (1..=n as u32).map(key).collect();
    let mut fan = Transaction::Transfer {
        inputs: vec![TxIn { prevout: coin, pubkey: [0; 32], signature: Sig64::EMPTY }],
        outputs: keys.iter().map(|k| TxOut { value: Amount::from_units(each), address: addr(k) }).collect(),
    };
    fan.sign(&chain_id, &[&k0]);
    let fan_id = fan.txid();
    mine(&mut cs, vec![fan])?;
    let spends: Vec<Transaction> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut t = Transaction::Transfer {
                inputs: vec![TxIn { prevout: OutPoint { txid: fan_id, vout: i as u32 }, pubkey: [0; 32], signature: Sig64::EMPTY }],
                outputs: vec![TxOut { value: Amount::from_units(each - 100), address: addr(&k0) }],
            };
            t.sign(&chain_id, &[k]);
            t
        })
        .collect();
    let (block, secs) = mine(&mut cs, spends)?;
    let tx_per_s = n as f64 / secs;
    // Reference: raw verify_strict over the same messages and keys.
    let msgs: Vec<(ed25519_dalek::VerifyingKey, [u8; 32], ed25519_dalek::Signature)> = block.txs[1..]
        .iter()
        .zip(&keys)
        .map(|(t, k)| {
            let m = t.signing_message(&chain_id).0;
            (k.verifying_key(), m, k.sign(&m))
        })
        .collect();
    let started = Instant::now();
    for (vk, m, s) in &msgs {
        vk.verify_strict(m, s).context("reference signature")?;
    }
    let verify_per_s = n as f64 / started.elapsed().as_secs_f64();
    outln!("  block of {} bytes validated and connected in {:.1} ms: {tx_per_s:.0} tx/s", block.size(), secs * 1e3);
    outln!("  reference verify_strict: {verify_per_s:.0} signatures/s");
    outln!("  ratio validation / signature-only: {:.2}", tx_per_s / verify_per_s);
    Ok(())
}

fn specs() -> Vec<(&'static str, TaskSpec)> {
    let base = |kind, n, d| TaskSpec {
        kind,
        data: TaskData::Synthetic { n, d, seed: 1, scale: 0.5 },
        reg_lambda: 1e-8,
        copyright: None,
        target_score: 0.0,
    };
    let cr = |variant| CopyrightSpec { rows: (0..100).collect(), gamma: 1e-9, variant };
    vec![
        ("softmax n=256 d=8 (dev public task)", base(TaskKind::Softmax, 256, 8)),
        ("softmax n=1000 d=16 (test public task)", base(TaskKind::Softmax, 1000, 16)),
        ("softmax n=2000 d=32 (main public task)", base(TaskKind::Softmax, 2000, 32)),
        ("resnet_softmax n=2000 d=32", base(TaskKind::ResnetSoftmax, 2000, 32)),
        ("softmax n=5000 d=64", base(TaskKind::Softmax, 5000, 64)),
        ("softmax n=2000 d=128", base(TaskKind::Softmax, 2000, 128)),
        ("softmax+copyright(all) n=2000 d=32", TaskSpec { copyright: Some(cr(CopyrightVariant::All)), ..base(TaskKind::Softmax, 2000, 32) }),
        ("softmax+copyright(per-block) n=2000 d=32", TaskSpec { copyright: Some(cr(CopyrightVariant::PerBlock)), ..base(TaskKind::Softmax, 2000, 32) }),
    ]
}

/// Median seconds of one step of `p` from its initial point.
fn step_seconds(p: &dyn Problem, reps: usize) -> anyhow::Result<f64> {
    let x = p.init();
    let mut times = Vec::with_capacity(reps);
    for r in 0..reps {
        let seed = [r as u8; 32];
        let started = Instant::now();
        p.step(&x, &seed)?;
        times.push(started.elapsed().as_secs_f64());
    }
    Ok(median(times))
}

fn replay_per_kind() -> anyhow::Result<()> {
    outln!("== replay of one step per kind, against its cost (median of 15)");
    outln!("  {:<44} {:>6} {:>10} {:>10} {:>8}", "task", "WU", "replay ms", "us / WU", "vs first");
    let mut first = None;
    for (name, spec) in specs() {
        let p = spec.build_unchecked()?;
        let secs = step_seconds(&p, 15)?;
        let per_wu = secs * 1e6 / p.cost() as f64;
        let base = *first.get_or_insert(per_wu);
        outln!("  {name:<44} {:>6} {:>10.3} {:>10.1} {:>8.2}", p.cost(), secs * 1e3, per_wu, per_wu / base);
    }
    outln!("  (a flat 'vs first' column means cost() prices every kind alike)");
    Ok(())
}

fn mining_vs_verification() -> anyhow::Result<()> {
    outln!("== expected mining work per block vs verification work, at test params");
    let params = ChainParams::test();
    let p = params.public_task.build_unchecked()?;
    let step = step_seconds(&p, 15)?;
    let x = p.init();
    let started = Instant::now();
    let reps = 15;
    for _ in 0..reps {
        p.certify(&x)?;
    }
    let certify = started.elapsed().as_secs_f64() / reps as f64;
    // Expected steps per block at the max target: 2^256 / (target * cost).
    let eff = params.max_target().saturating_mul_u64(p.cost());
    let steps = 2f64.powi(256) / u256_to_f64(eff);
    let mining = steps * step;
    let verify = step + certify;
    outln!("  public task: {} WU per step, step {:.3} ms, certify {:.3} ms", p.cost(), step * 1e3, certify * 1e3);
    outln!("  expected steps per block at the max target: {steps:.0} ({mining:.2} s of one core)");
    outln!("  verification: one replay + one certificate = {:.3} ms", verify * 1e3);
    outln!("  ratio mining / verification: {:.0}", mining / verify);
    Ok(())
}

fn u256_to_f64(v: U256) -> f64 {
    v.to_be_bytes().iter().fold(0.0, |acc, b| acc * 256.0 + f64::from(*b))
}
