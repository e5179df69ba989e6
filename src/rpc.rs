//! JSON-RPC 2.0 over HTTP: the API (one trait, from which jsonrpsee generates the server
//! side and the typed client the CLI uses), the JSON views of chain objects, the stable
//! error codes, cookie authentication, and the server over a node [`Handle`].
//!
//! Owns the wire format of the RPC interface only. It decides nothing: every request is
//! answered by the node (or the network task for `net_*`), and every refusal is the
//! node's error mapped to a code.
//!
//! Conventions: hashes and txids are 64 hex digits; addresses are bech32m for the node's
//! network; amounts in responses are integers in base units (1 GRAD = 10^8 units), and
//! amounts in requests are GRAD decimals as strings (`"1.5"`), as the CLI takes them.
//!
//! Error codes (stable; modelled on bitcoind's):
//!
//! | code   | meaning                                                         |
//! |--------|-----------------------------------------------------------------|
//! | -32602 | invalid params: malformed hash, address, amount, data            |
//! | -32601 | unknown method                                                  |
//! | -32603 | internal error (database)                                       |
//! | -5     | not found: block, transaction, task                             |
//! | -4     | wallet error (no keys, not the creator, ...)                    |
//! | -6     | insufficient funds                                              |
//! | -26    | rejected by the chain or the mempool (invalid, conflict, fee)   |
//! | -10    | not available here (dev-only method, networking off)            |
//! | -28    | the node is shutting down                                       |

use crate::chain::Network;
use crate::chain::address::Address;
use crate::chain::amount::Amount;
use crate::chain::block::Block;
use crate::chain::state::{TaskState, TaskStatus, UtxoEntry};
use crate::chain::tx::{OutPoint, Transaction};
use crate::hash::Hash256;
use crate::node::{BlockInfo, MerkleProof, MiningInfo, NodeError, PoolTx, ScorePoint, TipInfo, TxInfo};
use crate::pouw::task::TaskSpec;
use crate::wallet::{Balance, KeyInfo, WalletError};
use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;
use serde::{Deserialize, Serialize};

mod auth;
mod client;
mod server;

pub use auth::{COOKIE_FILE, Credentials, cookie_path, read_cookie};
pub use client::{ClientError, RpcClient, connect};
pub use server::{RpcContext, RpcServer, ServeError, serve};

/// Stable error codes (see the module docs).
pub mod code {
    /// Malformed parameters.
    pub const INVALID_PARAMS: i32 = -32602;
    /// Internal error.
    pub const INTERNAL: i32 = -32603;
    /// Object not found.
    pub const NOT_FOUND: i32 = -5;
    /// Wallet error.
    pub const WALLET: i32 = -4;
    /// Insufficient funds.
    pub const INSUFFICIENT_FUNDS: i32 = -6;
    /// Rejected by the chain or the mempool.
    pub const REJECTED: i32 = -26;
    /// Not available on this node or network.
    pub const NOT_AVAILABLE: i32 = -10;
    /// The node is shutting down.
    pub const SHUTTING_DOWN: i32 = -28;
}

/// A JSON-RPC error with `code` and `message`.
pub fn error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

/// An invalid-params error.
pub fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    error(code::INVALID_PARAMS, message)
}

/// The error a node refusal maps to. A refused block or transaction is `REJECTED` unless
/// the refusal is the node's own ([`Fault::Local`]: its store failed, its policy), which
/// is `INTERNAL` for a store failure and `REJECTED` with the policy's message otherwise.
pub fn node_error(e: NodeError) -> ErrorObjectOwned {
    use crate::chain::fault::{Classify, Fault};
    let code = match &e {
        NodeError::Process(p) if p.fault() == Fault::Local => code::INTERNAL,
        NodeError::NotFound(_) => code::NOT_FOUND,
        NodeError::Invalid(_) => code::INVALID_PARAMS,
        NodeError::Wallet(WalletError::InsufficientFunds { .. }) => code::INSUFFICIENT_FUNDS,
        NodeError::Wallet(WalletError::UnknownTask(_)) => code::NOT_FOUND,
        NodeError::Wallet(WalletError::ZeroAmount | WalletError::Amount(_)) => code::INVALID_PARAMS,
        NodeError::Wallet(WalletError::Rejected(_) | WalletError::InvalidTx(_)) => code::REJECTED,
        NodeError::Wallet(_) => code::WALLET,
        NodeError::Mempool(_) | NodeError::Process(_) => code::REJECTED,
        NodeError::DevOnly(_) => code::NOT_AVAILABLE,
        NodeError::Stopped => code::SHUTTING_DOWN,
        NodeError::Store(_) | NodeError::Mine(_) => code::INTERNAL,
    };
    error(code, e.to_string())
}

/// `chain_getTip`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TipView {
    /// The network (`main`, `test`, `dev`).
    pub network: String,
    /// Tip hash.
    pub hash: String,
    /// Tip height.
    pub height: u64,
    /// Tip time (unix seconds).
    pub time: u64,
    /// Compact target of the tip.
    pub bits: String,
    /// Cumulative work, decimal.
    pub chainwork: String,
    /// Transactions in the mempool.
    pub mempool_txs: usize,
}

impl TipView {
    /// The view of `t` on `network`.
    pub fn new(t: &TipInfo, network: Network) -> TipView {
        TipView {
            network: network.name().to_string(),
            hash: t.hash.to_string(),
            height: t.height,
            time: t.time,
            bits: format!("{:08x}", t.bits),
            chainwork: t.chainwork.clone(),
            mempool_txs: t.mempool_txs,
        }
    }
}

/// An output paying an address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputView {
    /// The address.
    pub address: String,
    /// Base units.
    pub value: u64,
}

/// A transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxView {
    /// Its id.
    pub txid: String,
    /// `coinbase`, `transfer`, `submit_task`, `model_update`, `reclaim_task`.
    pub kind: String,
    /// Encoded size in bytes.
    pub size: usize,
    /// Outputs spent, `txid:vout`.
    pub inputs: Vec<String>,
    /// Outputs created.
    pub outputs: Vec<OutputView>,
    /// The task it submits, updates or reclaims.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub task: Option<String>,
    /// A submission's bounty (base units).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bounty: Option<u64>,
    /// A model update's certified score.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub score: Option<f64>,
    /// A model update's bounty recipient.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reward_to: Option<String>,
    /// The containing block (absent in the mempool).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub block: Option<String>,
    /// The containing block's height.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub height: Option<u64>,
    /// Confirmations (0: in the mempool).
    pub confirmations: u64,
    /// The encoded transaction, hex (what `tx_send` takes).
    pub hex: String,
}

impl TxView {
    /// The view of `tx`.
    pub fn new(tx: &Transaction, network: Network) -> TxView {
        let (mut task, mut bounty, mut score, mut reward_to) = (None, None, None, None);
        match tx {
            Transaction::SubmitTask { bounty: b, .. } => {
                task = Some(tx.txid().to_string());
                bounty = Some(b.units());
            }
            Transaction::ModelUpdate { task_id, claimed, reward_to: r, .. } => {
                task = Some(task_id.to_string());
                score = Some(claimed.score);
                reward_to = Some(r.to_string_for(network));
            }
            Transaction::ReclaimTask { task_id, .. } => task = Some(task_id.to_string()),
            Transaction::Coinbase { .. } | Transaction::Transfer { .. } => {}
        }
        TxView {
            txid: tx.txid().to_string(),
            kind: tx.kind_name().to_string(),
            size: tx.size(),
            inputs: tx.inputs().iter().map(|i| format!("{}:{}", i.prevout.txid, i.prevout.vout)).collect(),
            outputs: tx
                .outputs()
                .iter()
                .map(|o| OutputView { address: o.address.to_string_for(network), value: o.value.units() })
                .collect(),
            task,
            bounty,
            score,
            reward_to,
            block: None,
            height: None,
            confirmations: 0,
            hex: hex::encode(crate::chain::encode::encode(tx)),
        }
    }

    /// The view of a found transaction.
    pub fn found(info: &TxInfo, network: Network) -> TxView {
        let mut v = TxView::new(&info.tx, network);
        if let Some((b, h)) = info.block {
            v.block = Some(b.to_string());
            v.height = Some(h);
        }
        v.confirmations = info.confirmations;
        v
    }
}

/// A block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockView {
    /// Its hash.
    pub hash: String,
    /// Its height.
    pub height: u64,
    /// Confirmations (0: not on the main chain).
    pub confirmations: u64,
    /// The parent's hash.
    pub prev: String,
    /// Merkle root of the txids.
    pub merkle_root: String,
    /// Header time.
    pub time: u64,
    /// Compact target.
    pub bits: String,
    /// The nonce.
    pub nonce: u64,
    /// The task its step advanced.
    pub task: String,
    /// The step's cost in work units.
    pub cost: u64,
    /// Hash of the step's input parameters.
    pub input_hash: String,
    /// Hash of the step's output parameters.
    pub output_hash: String,
    /// Encoded size in bytes.
    pub size: usize,
    /// Its transactions.
    pub txs: Vec<TxView>,
}

impl BlockView {
    /// The view of `info`.
    pub fn new(info: &BlockInfo, network: Network) -> BlockView {
        let b: &Block = &info.block;
        let h = &b.header;
        BlockView {
            hash: b.hash().to_string(),
            height: info.height,
            confirmations: info.confirmations,
            prev: h.prev.to_string(),
            merkle_root: h.merkle_root.to_string(),
            time: h.time,
            bits: format!("{:08x}", h.bits),
            nonce: h.nonce,
            task: h.work.task_id.to_string(),
            cost: h.work.cost,
            input_hash: h.work.input_hash.to_string(),
            output_hash: h.work.output_hash.to_string(),
            size: crate::chain::encode::encoded_len(b),
            txs: b
                .txs
                .iter()
                .map(|t| {
                    let mut v = TxView::new(t, network);
                    v.block = Some(b.hash().to_string());
                    v.height = Some(info.height);
                    v.confirmations = info.confirmations;
                    v
                })
                .collect(),
        }
    }
}

/// A task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    /// Its id (the txid of its submission; the public task's is fixed by the network).
    pub id: String,
    /// `open`, `solved`, `expired`, `reclaimed`.
    pub status: String,
    /// Solver kind, when the spec is known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kind: Option<String>,
    /// Data rows.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rows: Option<usize>,
    /// Parameters.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cols: Option<usize>,
    /// Escrowed bounty, base units.
    pub bounty: u64,
    /// Solved once the best score is at most this.
    pub target_score: f64,
    /// The best score so far.
    pub best_score: f64,
    /// Height at which the best was set.
    pub best_height: u64,
    /// Height at which the best last improved by the network's relative margin.
    #[serde(default)]
    pub improved_height: u64,
    /// Open, but its best has not improved by the margin for the network's stall window:
    /// miners skip it (DESIGN.md §3.4).
    #[serde(default)]
    pub stalled: bool,
    /// Height of the submitting block.
    pub created_height: u64,
    /// Last height at which it accepts work.
    pub expires_at_height: u64,
    /// Who may reclaim it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub creator: Option<String>,
    /// Who solved it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub solved_by: Option<String>,
    /// Height at which it was solved or reclaimed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub closed_height: Option<u64>,
}

impl TaskView {
    /// The view of task `id` with state `t` (and its spec if known) at tip height `tip`.
    pub fn new(id: Hash256, t: &TaskState, spec: Option<&TaskSpec>, tip: u64, network: Network) -> TaskView {
        let (status, solved_by, closed_height) = match t.status {
            TaskStatus::Open if tip + 1 > t.expires_at_height => ("expired", None, None),
            TaskStatus::Open => ("open", None, None),
            TaskStatus::Solved { height, by } => ("solved", Some(by.to_string_for(network)), Some(height)),
            TaskStatus::Reclaimed { height } => ("reclaimed", None, Some(height)),
        };
        TaskView {
            id: id.to_string(),
            status: status.to_string(),
            kind: spec.map(|s| s.kind.name().to_string()),
            rows: spec.map(|s| s.data.shape().0),
            cols: spec.map(|s| s.data.shape().1),
            bounty: t.bounty.units(),
            target_score: t.target_score,
            best_score: t.best_score,
            best_height: t.best_height,
            improved_height: t.improved_height,
            stalled: t.is_stalled_at(tip + 1, crate::chain::params::stall_blocks_for(network)),
            created_height: t.created_height,
            expires_at_height: t.expires_at_height,
            creator: t.creator.map(|a| a.to_string_for(network)),
            solved_by,
            closed_height,
        }
    }
}

/// A task's best model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelView {
    /// The task.
    pub task: String,
    /// The best parameters.
    pub params: Vec<f64>,
    /// Their score.
    pub score: f64,
    /// Height at which they were set.
    pub height: u64,
}

/// `task_submit` parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSubmit {
    /// The task.
    pub spec: TaskSpec,
    /// Bounty, GRAD decimal.
    pub bounty: String,
    /// Blocks the task stays open.
    pub expires_in: u64,
    /// Fee rate, units per byte (the node's minimum when absent).
    #[serde(default)]
    pub fee_rate: Option<u64>,
}

/// `task_submit`'s result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Submitted {
    /// The submission's txid.
    pub txid: String,
    /// The new task's id.
    pub task: String,
}

/// A wallet key with its balance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyView {
    /// Label.
    pub label: String,
    /// Address.
    pub address: String,
    /// Spendable, base units.
    pub spendable: u64,
    /// Maturing, base units.
    pub immature: u64,
    /// Creation time (unix seconds).
    pub created: u64,
}

impl KeyView {
    /// The view of a key and its balance.
    pub fn new(k: &KeyInfo, b: &Balance, network: Network) -> KeyView {
        KeyView {
            label: k.label.clone(),
            address: k.address.to_string_for(network),
            spendable: b.spendable.units(),
            immature: b.immature.units(),
            created: k.created,
        }
    }
}

/// A wallet balance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BalanceView {
    /// Spendable in the next block, base units.
    pub spendable: u64,
    /// Still maturing, base units.
    pub immature: u64,
}

/// An unspent output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UtxoView {
    /// Creating transaction.
    pub txid: String,
    /// Output index.
    pub vout: u32,
    /// Address paid.
    pub address: String,
    /// Base units.
    pub value: u64,
    /// Height of the creating block.
    pub height: u64,
    /// Coinbase or bounty output (subject to maturity).
    pub maturing: bool,
}

impl UtxoView {
    /// The view of one output.
    pub fn new(o: &OutPoint, e: &UtxoEntry, network: Network) -> UtxoView {
        UtxoView {
            txid: o.txid.to_string(),
            vout: o.vout,
            address: e.output.address.to_string_for(network),
            value: e.output.value.units(),
            height: e.height,
            maturing: e.maturing,
        }
    }
}

/// A merkle proof, and whether it checks against the block header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProofView {
    /// The transaction.
    pub txid: String,
    /// The block.
    pub block: String,
    /// Its height.
    pub height: u64,
    /// Position of the transaction.
    pub index: u32,
    /// Siblings from the leaf up.
    pub branch: Vec<String>,
    /// The header's merkle root.
    pub merkle_root: String,
    /// The branch hashes the txid up to the root.
    pub valid: bool,
}

impl ProofView {
    /// The view of a proof (checked here, as a client would).
    pub fn new(p: &MerkleProof) -> ProofView {
        ProofView {
            txid: p.txid.to_string(),
            block: p.block.to_string(),
            height: p.height,
            index: p.branch.index,
            branch: p.branch.siblings.iter().map(Hash256::to_string).collect(),
            merkle_root: p.merkle_root.to_string(),
            valid: p.branch.root_for(p.txid) == p.merkle_root,
        }
    }
}

/// A mempool entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolTxView {
    /// Txid.
    pub txid: String,
    /// Kind.
    pub kind: String,
    /// Size in bytes.
    pub size: usize,
    /// Fee, base units.
    pub fee: u64,
}

impl From<&PoolTx> for PoolTxView {
    fn from(p: &PoolTx) -> Self {
        PoolTxView { txid: p.txid.to_string(), kind: p.kind.clone(), size: p.size, fee: p.fee.units() }
    }
}

/// A connected peer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerView {
    /// Its libp2p peer id.
    pub peer_id: String,
    /// Remote addresses.
    pub addresses: Vec<String>,
    /// Its identify agent string.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub agent: Option<String>,
    /// Connected since (unix seconds).
    pub connected_since: u64,
}

/// `net_info`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetInfoView {
    /// Our peer id.
    pub peer_id: String,
    /// Addresses we listen on (with `/p2p/<peer id>`, ready to pass as `--peer`).
    pub listen: Vec<String>,
    /// Connected peers.
    pub peers: usize,
}

/// `mining_info`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MiningView {
    /// Whether the miner runs.
    pub running: bool,
    /// Threads.
    pub threads: usize,
    /// Payout address.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub payout: Option<String>,
    /// The task being stepped.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub task: Option<String>,
    /// Steps tried since mining started.
    pub steps: u64,
    /// Steps whose output the miner adopted (the useful ones).
    #[serde(default)]
    pub steps_adopted: u64,
    /// Every task being stepped, with its share of the steps.
    #[serde(default)]
    pub tasks: Vec<(String, f64)>,
    /// The miner's iterate of each task it has stepped: objective, steps, adopted outputs.
    #[serde(default)]
    pub iterates: Vec<IterateView>,
    /// Recent steps per second.
    pub steps_per_sec: f64,
    /// Blocks mined into the chain.
    pub blocks_found: u64,
    /// Solving model updates waiting for our next block.
    pub held_updates: usize,
    /// Our own finds the node refused.
    #[serde(default)]
    pub blocks_refused: u64,
    /// While mining waits for the clock (blocks came too fast): unix time it resumes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub paused_until: Option<u64>,
}

/// The miner's iterate of one task (`mining_info`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IterateView {
    /// The task.
    pub task: String,
    /// The iterate's objective.
    pub objective: f64,
    /// Steps computed from it since mining started.
    pub steps: u64,
    /// Outputs it adopted.
    pub adopted: u64,
    /// Adopted outputs that improved it by the network's relative margin (useful steps).
    #[serde(default)]
    pub useful: u64,
    /// Whether the task is still open.
    pub open: bool,
}

impl MiningView {
    /// The view of `m`.
    pub fn new(m: &MiningInfo, network: Network) -> MiningView {
        MiningView {
            running: m.running,
            threads: m.threads,
            payout: m.payout.map(|a| a.to_string_for(network)),
            task: m.task.map(|t| t.to_string()),
            steps: m.steps,
            steps_adopted: m.steps_adopted,
            tasks: {
                let total: f64 = m.tasks.iter().map(|t| t.1).sum();
                m.tasks.iter().map(|(id, w)| (id.to_string(), w / total)).collect()
            },
            iterates: m
                .iterates
                .iter()
                .map(|i| IterateView {
                    task: i.task.to_string(),
                    objective: i.objective,
                    steps: i.steps,
                    adopted: i.adopted,
                    useful: i.useful,
                    open: i.open,
                })
                .collect(),
            steps_per_sec: m.steps_per_sec,
            blocks_found: m.blocks_found,
            held_updates: m.held_updates,
            blocks_refused: m.blocks_refused,
            paused_until: m.paused_until,
        }
    }
}

/// The GradientCoin JSON-RPC API. jsonrpsee generates `ApiServer` (implemented in
/// `server`) and `ApiClient` (implemented for every jsonrpsee client).
#[rpc(server, client)]
pub trait Api {
    /// The tip.
    #[method(name = "chain_getTip")]
    async fn chain_get_tip(&self) -> RpcResult<TipView>;

    /// A block by hash (hex string) or main-chain height (number or decimal string).
    #[method(name = "chain_getBlock")]
    async fn chain_get_block(&self, id: serde_json::Value) -> RpcResult<BlockView>;

    /// A transaction from the main chain or the mempool.
    #[method(name = "chain_getTx")]
    async fn chain_get_tx(&self, txid: String) -> RpcResult<TxView>;

    /// The merkle proof of a main-chain transaction.
    #[method(name = "chain_getMerkleProof")]
    async fn chain_get_merkle_proof(&self, txid: String) -> RpcResult<ProofView>;

    /// Unspent outputs of `addresses` (the wallet's when absent).
    #[method(name = "chain_getUtxos")]
    async fn chain_get_utxos(&self, addresses: Option<Vec<String>>) -> RpcResult<Vec<UtxoView>>;

    /// Broadcasts an encoded transaction (hex); returns its txid.
    #[method(name = "tx_send")]
    async fn tx_send(&self, hex: String) -> RpcResult<String>;

    /// The mempool, highest fee rate first.
    #[method(name = "tx_mempool")]
    async fn tx_mempool(&self) -> RpcResult<Vec<PoolTxView>>;

    /// Submits a task with a bounty, paid by the wallet.
    #[method(name = "task_submit")]
    async fn task_submit(&self, submit: TaskSubmit) -> RpcResult<Submitted>;

    /// Every task.
    #[method(name = "task_list")]
    async fn task_list(&self) -> RpcResult<Vec<TaskView>>;

    /// One task.
    #[method(name = "task_get")]
    async fn task_get(&self, task: String) -> RpcResult<TaskView>;

    /// A task's best model.
    #[method(name = "task_getModel")]
    async fn task_get_model(&self, task: String) -> RpcResult<ModelView>;

    /// Predictions of a task's best model on `rows`.
    #[method(name = "task_predict")]
    async fn task_predict(&self, task: String, rows: Vec<Vec<f64>>) -> RpcResult<Vec<f64>>;

    /// A task's best score after each block that changed it.
    #[method(name = "task_history")]
    async fn task_history(&self, task: String) -> RpcResult<Vec<ScorePoint>>;

    /// Reclaims an expired, unsolved task's bounty (the wallet must hold the creator key).
    #[method(name = "task_reclaim")]
    async fn task_reclaim(&self, task: String) -> RpcResult<String>;

    /// A new wallet address.
    #[method(name = "wallet_newAddress")]
    async fn wallet_new_address(&self, label: Option<String>) -> RpcResult<String>;

    /// The wallet's keys with their balances.
    #[method(name = "wallet_list")]
    async fn wallet_list(&self) -> RpcResult<Vec<KeyView>>;

    /// The wallet's balance.
    #[method(name = "wallet_balance")]
    async fn wallet_balance(&self) -> RpcResult<BalanceView>;

    /// Pays `amount` (GRAD decimal) to `to`; returns the txid.
    #[method(name = "wallet_send")]
    async fn wallet_send(&self, to: String, amount: String, fee_rate: Option<u64>) -> RpcResult<String>;

    /// Connected peers.
    #[method(name = "net_peers")]
    async fn net_peers(&self) -> RpcResult<Vec<PeerView>>;

    /// Our peer id and listen addresses.
    #[method(name = "net_info")]
    async fn net_info(&self) -> RpcResult<NetInfoView>;

    /// Bans a peer for `seconds` (the configured ban time when absent), persisted.
    #[method(name = "net_ban")]
    async fn net_ban(&self, peer: String, seconds: Option<u64>) -> RpcResult<()>;

    /// Lifts a ban.
    #[method(name = "net_unban")]
    async fn net_unban(&self, peer: String) -> RpcResult<()>;

    /// Dials a peer multiaddr.
    #[method(name = "net_connect")]
    async fn net_connect(&self, addr: String) -> RpcResult<()>;

    /// Starts (or restarts) the miner.
    #[method(name = "mining_start")]
    async fn mining_start(&self, threads: Option<usize>, payout: Option<String>) -> RpcResult<MiningView>;

    /// Stops the miner.
    #[method(name = "mining_stop")]
    async fn mining_stop(&self) -> RpcResult<MiningView>;

    /// The miner's figures.
    #[method(name = "mining_info")]
    async fn mining_info(&self) -> RpcResult<MiningView>;

    /// Dev network: mines `n` blocks now; returns their hashes.
    #[method(name = "dev_generate")]
    async fn dev_generate(&self, n: u64, payout: Option<String>) -> RpcResult<Vec<String>>;

    /// Dev network: sets (or with null clears) the node's mock clock.
    #[method(name = "dev_setMockTime")]
    async fn dev_set_mock_time(&self, time: Option<u64>) -> RpcResult<()>;

    /// Stops the node cleanly (as bitcoind's `stop`).
    #[method(name = "node_stop")]
    async fn node_stop(&self) -> RpcResult<()>;
}

/// Parses a hash parameter.
pub fn parse_hash(what: &str, s: &str) -> Result<Hash256, ErrorObjectOwned> {
    s.trim().parse().map_err(|e| invalid(format!("invalid {what} {s:?}: {e}")))
}

/// Parses an address parameter for `network`.
pub fn parse_address(s: &str, network: Network) -> Result<Address, ErrorObjectOwned> {
    Address::parse(s.trim(), network).map_err(|e| invalid(format!("invalid address {s:?}: {e}")))
}

/// Parses a GRAD amount parameter.
pub fn parse_amount(s: &str) -> Result<Amount, ErrorObjectOwned> {
    s.trim().parse().map_err(|e| invalid(format!("invalid amount {s:?}: {e}")))
}
