//! A dev-network chain on a real sled store in a temp dir, with helpers to mine blocks,
//! make keys and build signed transactions.

#![allow(dead_code)]

use ed25519_dalek::SigningKey;
use gradientcoin::chain::address::Address;
use gradientcoin::chain::amount::Amount;
use gradientcoin::chain::block::{Block, Header};
use gradientcoin::chain::params::ChainParams;
use gradientcoin::chain::pipeline::Accepted;
use gradientcoin::chain::target::target_from_bits;
use gradientcoin::chain::tx::{OutPoint, Sig64, Transaction, TxIn, TxOut};
use gradientcoin::chain::validate::effective_target;
use gradientcoin::compute::problem::Params;
use gradientcoin::hash::{Hash256, merkle_root};
use gradientcoin::miner;
use gradientcoin::store::{ChainStore, ProcessError};

/// The deterministic key `i`.
pub fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

/// The address of key `i`.
pub fn addr(i: u8) -> Address {
    Address::from_pubkey(&key(i).verifying_key().to_bytes())
}

/// A chain on dev params in its own temp dir.
pub struct TestChain {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The chain.
    pub cs: ChainStore,
}

impl TestChain {
    /// A fresh dev chain.
    pub fn new() -> TestChain {
        TestChain::with_params(ChainParams::dev())
    }

    /// A fresh chain with these parameters.
    pub fn with_params(params: ChainParams) -> TestChain {
        let dir = tempfile::tempdir().expect("temp dir");
        let cs = ChainStore::open(dir.path(), params).expect("open chain");
        TestChain { dir, cs }
    }

    /// The params.
    pub fn params(&self) -> &ChainParams {
        self.cs.params()
    }

    /// The chain id.
    pub fn chain_id(&self) -> Hash256 {
        self.cs.params().chain_id
    }

    /// A clock far enough ahead that no test block is early.
    pub fn now(&self) -> u64 {
        self.cs.params().genesis.header.time + 10_000_000
    }

    /// The on-schedule time of the next block.
    pub fn next_time(&self) -> u64 {
        self.cs.tip_entry().header.time + self.cs.params().asert.spacing
    }

    /// A valid block on the tip paying `payee`, with `txs`, not yet processed.
    pub fn build(&mut self, payee: Address, txs: Vec<Transaction>) -> Block {
        let time = self.next_time();
        let t = miner::template(&mut self.cs, payee, time, txs, None, Amount::ZERO).expect("template");
        t.mine(0, 1_000_000).expect("dev blocks take a few steps")
    }

    /// Builds and processes a valid block; returns it.
    pub fn mine(&mut self, payee: Address, txs: Vec<Transaction>) -> Block {
        let b = self.build(payee, txs);
        let now = self.now();
        match self.cs.process_block(&b, now) {
            Ok(Accepted::NewTip { .. }) => b,
            other => panic!("mined block not accepted as the new tip: {other:?}"),
        }
    }

    /// Mines `n` empty blocks to `payee`.
    pub fn mine_n(&mut self, n: usize, payee: Address) -> Vec<Block> {
        (0..n).map(|_| self.mine(payee, vec![])).collect()
    }

    /// Processes a block at the test clock.
    pub fn process(&mut self, b: &Block) -> Result<Accepted, ProcessError> {
        let now = self.now();
        self.cs.process_block(b, now)
    }

    /// A spendable coinbase output of key `i` (mines maturity + 1 blocks to it first).
    pub fn funded(&mut self, i: u8) -> (OutPoint, Amount) {
        let first = self.mine(addr(i), vec![]);
        let m = self.params().coinbase_maturity as usize;
        self.mine_n(m, addr(200));
        let txid = first.txs[0].txid();
        let value = first.txs[0].outputs()[0].value;
        (OutPoint { txid, vout: 0 }, value)
    }
}

/// A signed transfer spending `inputs` (all owned by key `from`) to `outputs`.
pub fn transfer(chain_id: &Hash256, from: u8, inputs: &[OutPoint], outputs: &[(Address, u64)]) -> Transaction {
    let mut tx = Transaction::Transfer {
        inputs: inputs.iter().map(|o| TxIn { prevout: *o, pubkey: [0; 32], signature: Sig64::EMPTY }).collect(),
        outputs: outputs.iter().map(|(a, v)| TxOut { value: Amount::from_units(*v), address: *a }).collect(),
    };
    let k = key(from);
    let keys: Vec<&SigningKey> = inputs.iter().map(|_| &k).collect();
    tx.sign(chain_id, &keys);
    tx
}

/// Recomputes the merkle root and grinds the nonce until the header meets `target * cost`
/// again, without stepping (so `output_hash` stays whatever the test set).
pub fn reseal_without_step(b: &mut Block) {
    b.header.merkle_root = merkle_root(&b.txids());
    grind(&mut b.header);
}

/// Grinds the nonce of a header (keeping every other field) until its hash meets
/// `target(bits) * cost`.
pub fn grind(h: &mut Header) {
    let target = effective_target(target_from_bits(h.bits).expect("valid bits"), h.work.cost.max(1));
    for nonce in 0.. {
        h.nonce = nonce;
        if h.pow_value() <= target {
            return;
        }
    }
}

/// Re-mines a modified block properly: recomputes the merkle root, then for each nonce
/// replays the step from the witness with `problem` and sets the output hash.
pub fn reseal_with_step(b: &mut Block, problem: &dyn gradientcoin::compute::problem::Problem) {
    b.header.merkle_root = merkle_root(&b.txids());
    b.header.work.input_hash = Params(b.witness.input_params.clone()).hash();
    let target = effective_target(target_from_bits(b.header.bits).expect("valid bits"), b.header.work.cost.max(1));
    let input = Params(b.witness.input_params.clone());
    for nonce in 0.. {
        b.header.nonce = nonce;
        let out = problem.step(&input, &b.header.ticket_seed()).expect("step");
        b.header.work.output_hash = out.output_hash();
        if b.header.pow_value() <= target {
            return;
        }
    }
}
