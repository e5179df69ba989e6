//! The node: one thread owns the chain (store and state), the mempool and the wallet, and
//! serves everything else through a [`Handle`] — bounded channel in, oneshot reply out.
//!
//! The only module that knows all the others. It decides no consensus rule (that is
//! `chain`'s): it sequences events — requests, blocks, transactions — and keeps the
//! mempool and the wallet in step with the tip. Heavy work runs on threads of its own,
//! never on the async runtime nor on this thread: a block's step replay on the replay
//! thread (`node/blocks.rs`), mining on the miner threads; so requests are answered while
//! blocks are verified. (Only dev `generate` replays its own blocks here.)

use crate::chain::address::Address;
use crate::chain::amount::Amount;
use crate::chain::block::{Block, Header};
use crate::chain::fault::{Classify, Fault};
use crate::chain::params::ChainParams;
use crate::chain::pipeline::Accepted;
use crate::chain::state::{TaskState, UtxoEntry};
use crate::chain::target::U256;
use crate::chain::tx::{OutPoint, Transaction};
use crate::chain::validate::BlockError;
use crate::compute::det::Mat;
use crate::compute::problem::Params;
use crate::hash::Hash256;
use crate::hash::merkle_branch;
use crate::mempool::{Mempool, MempoolConfig, MempoolError};
use crate::miner::{self, MineError, TemplateRequest};
use crate::pouw::task::TaskSpec;
use crate::store::{ChainStore, ProcessError, StoreError};
use crate::wallet::KeyInfo;
use crate::wallet::{Balance, Wallet, WalletError};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

mod blocks;
mod mining;
pub mod p2p;

pub use mining::{IterateInfo, MiningInfo, schedule_tasks};

/// Requests queued for the node thread. Bounded: an RPC burst waits instead of growing
/// memory without limit; 256 is far above what one RPC server issues at once.
const QUEUE: usize = 256;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The chain or database refused.
    #[error("{0}")]
    Process(#[from] ProcessError),
    /// The database failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The mempool refused a transaction.
    #[error("{0}")]
    Mempool(#[from] MempoolError),
    /// The wallet refused.
    #[error("{0}")]
    Wallet(#[from] WalletError),
    /// No block template could be built.
    #[error("{0}")]
    Mine(#[from] MineError),
    /// Mining on demand is for the dev network only.
    #[error("{0} is only available on the dev network")]
    DevOnly(&'static str),
    /// A request's argument is unusable (the message says why).
    #[error("{0}")]
    Invalid(String),
    /// A requested object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The node thread has stopped.
    #[error("the node has shut down")]
    Stopped,
}

/// The latest mock time `dev_setMockTime` accepts: 9999-12-31T23:59:59Z. A block's time
/// must exceed its parent's median time past and stay within the clock plus the future
/// drift; a clock near `u64::MAX` saturates both sums, and a chain mined there could never
/// be extended (each block must be later than the last). Bitcoin Core bounds its mock
/// time the same way.
pub const MAX_MOCK_TIME: u64 = 253_402_300_799;

/// Refusals of what a peer or an RPC caller offered carry the chain's and the mempool's
/// classes; a request the node refuses on its own terms (a bad argument, a missing
/// object, the wrong network, an unusable wallet request) is the asker's; the store, the
/// miner and a shutdown are ours.
impl Classify for NodeError {
    fn fault(&self) -> Fault {
        match self {
            NodeError::Process(p) => p.fault(),
            NodeError::Mempool(m) => m.fault(),
            NodeError::Wallet(w) => match w {
                WalletError::Io { .. }
                | WalletError::Malformed { .. }
                | WalletError::UnsupportedVersion { .. }
                | WalletError::WrongNetwork { .. }
                | WalletError::Permissions { .. }
                | WalletError::BadSecret { .. }
                | WalletError::Random(_) => Fault::Local,
                _ => Fault::Peer,
            },
            NodeError::Invalid(_) | NodeError::NotFound(_) | NodeError::DevOnly(_) => Fault::Peer,
            NodeError::Store(_) | NodeError::Mine(_) | NodeError::Stopped => Fault::Local,
        }
    }
}

/// How to start a node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Chain parameters.
    pub params: ChainParams,
    /// Data directory (chain database in `chain/`, `wallet.json`).
    pub datadir: PathBuf,
    /// Mempool policy.
    pub mempool: MempoolConfig,
}

/// A block by hash or by main-chain height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockId {
    /// By hash.
    Hash(Hash256),
    /// By height on the main chain.
    Height(u64),
}

/// The tip, as `chain_getTip` reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TipInfo {
    /// Tip hash.
    pub hash: Hash256,
    /// Tip height.
    pub height: u64,
    /// Tip time.
    pub time: u64,
    /// Tip bits.
    pub bits: u32,
    /// Cumulative chainwork, hex.
    pub chainwork: String,
    /// Transactions in the mempool.
    pub mempool_txs: usize,
}

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

enum Request {
    Tip(Reply<TipInfo>),
    Block(BlockId, Reply<Block>),
    BlockInfo(BlockId, Reply<BlockInfo>),
    SubmitBlock(Block, Reply<Accepted>),
    SendTx(crate::chain::tx::Transaction, Reply<Hash256>),
    AddTx(crate::chain::tx::Transaction, Reply<Hash256>),
    NewAddress(String, Reply<Address>),
    Balance(Reply<Balance>),
    Send { to: Address, amount: Amount, fee_rate: u64, reply: Reply<Hash256> },
    Generate { n: u64, payout: Option<Address>, reply: Reply<Vec<Hash256>> },
    SetMockTime(Option<u64>, Reply<()>),
    Task(Hash256, Reply<TaskState>),
    Tasks(Reply<Vec<(Hash256, TaskState)>>),
    Locator(Reply<Vec<Hash256>>),
    HeadersAfter { locator: Vec<Hash256>, stop: Hash256, max: usize, reply: Reply<Vec<Header>> },
    CheckHeaders(Vec<Header>, Reply<Result<U256, BlockError>>),
    Blocks(Vec<Hash256>, Reply<Vec<Block>>),
    PutBan { peer: String, until: u64, reply: Reply<()> },
    RemoveBan(String, Reply<()>),
    Bans(Reply<Vec<(String, u64)>>),
    MiningStart { threads: usize, payout: Option<Address>, reply: Reply<MiningInfo> },
    MiningStop(Reply<MiningInfo>),
    MiningInfo(Reply<MiningInfo>),
    Mined { generation: u64, block: Block, output: Params },
    TargetMet { task: Hash256, params: Params },
    Replayed { block: Hash256, result: blocks::ReplayOutcome },
    MiningWake,
    Tx(Hash256, Reply<TxInfo>),
    MerkleProof(Hash256, Reply<MerkleProof>),
    SubmitTask { spec: Box<TaskSpec>, bounty: Amount, expires_in: u64, fee_rate: u64, reply: Reply<(Hash256, Hash256)> },
    Reclaim(Hash256, Reply<Hash256>),
    TaskSpec(Hash256, Reply<TaskSpec>),
    TaskHistory(Hash256, Reply<Vec<ScorePoint>>),
    Predict { task: Hash256, rows: Vec<Vec<f64>>, reply: Reply<Vec<f64>> },
    WalletList(Reply<Vec<(KeyInfo, Balance)>>),
    Utxos(Option<Vec<Address>>, Reply<Vec<(OutPoint, UtxoEntry)>>),
    Mempool(Reply<Vec<PoolTx>>),
    Shutdown(Reply<()>),
}

/// A block with where it stands, from [`Handle::block_info`].
#[derive(Debug, Clone)]
pub struct BlockInfo {
    /// The block.
    pub block: Block,
    /// Its height.
    pub height: u64,
    /// Confirmations on the main chain (0: not on the main chain).
    pub confirmations: u64,
}

/// A transaction found by [`Handle::tx`]: in a main-chain block or in the mempool.
#[derive(Debug, Clone)]
pub struct TxInfo {
    /// The transaction.
    pub tx: Transaction,
    /// The containing block and its height (`None`: in the mempool).
    pub block: Option<(Hash256, u64)>,
    /// Confirmations (0 in the mempool).
    pub confirmations: u64,
}

/// A merkle proof that a transaction is in a main-chain block (SPV).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MerkleProof {
    /// The transaction.
    pub txid: Hash256,
    /// The block.
    pub block: Hash256,
    /// The block's height.
    pub height: u64,
    /// The transaction's position in the block.
    pub index: usize,
    /// Sibling hashes from the leaf up.
    pub branch: crate::hash::MerkleBranch,
    /// The block header's merkle root.
    pub merkle_root: Hash256,
}

/// A task's best score after a main-chain block that changed the task.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScorePoint {
    /// The block height.
    pub height: u64,
    /// The best score after it.
    pub score: f64,
}

/// A mempool transaction, summarised.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolTx {
    /// Its txid.
    pub txid: Hash256,
    /// Its kind (`transfer`, `submit_task`, ...).
    pub kind: String,
    /// Encoded size.
    pub size: usize,
    /// Fee paid.
    pub fee: Amount,
}

/// What the node announces to the network: blocks that became its tip by local mining or
/// RPC submission, and transactions entered through RPC. Peers' objects are relayed by
/// gossip validation instead.
#[derive(Debug, Clone)]
pub enum Announce {
    /// A new tip block.
    Block(Block),
    /// A new pool transaction.
    Tx(crate::chain::tx::Transaction),
}

/// Announcements buffered for slow subscribers; a lagging subscriber skips old ones
/// (peers catch up by sync).
const ANNOUNCE_BUFFER: usize = 64;

/// A cloneable handle to a running node.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Request>,
    announce: tokio::sync::broadcast::Sender<Announce>,
}

macro_rules! ask {
    ($self:ident, $variant:expr) => {{
        let (reply, rx) = oneshot::channel();
        $self.tx.send($variant(reply)).await.map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)?
    }};
}

impl Handle {
    /// The tip.
    pub async fn tip(&self) -> Result<TipInfo, NodeError> {
        ask!(self, Request::Tip)
    }

    /// A stored block.
    pub async fn block(&self, id: BlockId) -> Result<Block, NodeError> {
        ask!(self, |r| Request::Block(id, r))
    }

    /// A stored block with its height and confirmations.
    pub async fn block_info(&self, id: BlockId) -> Result<BlockInfo, NodeError> {
        ask!(self, |r| Request::BlockInfo(id, r))
    }

    /// Offers a block (from a peer or a miner).
    pub async fn submit_block(&self, block: Block) -> Result<Accepted, NodeError> {
        ask!(self, |r| Request::SubmitBlock(block, r))
    }

    /// Adds a transaction to the mempool.
    pub async fn send_tx(&self, tx: crate::chain::tx::Transaction) -> Result<Hash256, NodeError> {
        ask!(self, |r| Request::SendTx(tx, r))
    }

    /// Adds a transaction relayed by a peer to the mempool (not announced again: gossip
    /// relays it once the verdict is Accept).
    pub async fn send_tx_quiet(&self, tx: crate::chain::tx::Transaction) -> Result<Hash256, NodeError> {
        ask!(self, |r| Request::AddTx(tx, r))
    }

    /// A new wallet address.
    pub async fn new_address(&self, label: &str) -> Result<Address, NodeError> {
        let label = label.to_string();
        ask!(self, |r| Request::NewAddress(label, r))
    }

    /// The wallet's balance at the tip.
    pub async fn balance(&self) -> Result<Balance, NodeError> {
        ask!(self, Request::Balance)
    }

    /// Pays `amount` to `to` from the wallet; returns the txid (now in the mempool).
    pub async fn send(&self, to: Address, amount: Amount, fee_rate: u64) -> Result<Hash256, NodeError> {
        ask!(self, |reply| Request::Send { to, amount, fee_rate, reply })
    }

    /// Dev network: mines `n` blocks now on this thread, paying `payout` (a wallet address
    /// when `None`), with the mempool's transactions.
    pub async fn generate(&self, n: u64, payout: Option<Address>) -> Result<Vec<Hash256>, NodeError> {
        ask!(self, |reply| Request::Generate { n, payout, reply })
    }

    /// Dev network: sets (or clears) the mock clock.
    pub async fn set_mock_time(&self, t: Option<u64>) -> Result<(), NodeError> {
        ask!(self, |r| Request::SetMockTime(t, r))
    }

    /// A task's state.
    pub async fn task(&self, id: Hash256) -> Result<TaskState, NodeError> {
        ask!(self, |r| Request::Task(id, r))
    }

    /// Every task.
    pub async fn tasks(&self) -> Result<Vec<(Hash256, TaskState)>, NodeError> {
        ask!(self, Request::Tasks)
    }

    /// The block locator of the tip (for headers-first sync).
    pub async fn locator(&self) -> Result<Vec<Hash256>, NodeError> {
        ask!(self, Request::Locator)
    }

    /// Main-chain headers after the first `locator` hash on the main chain, up to `stop`
    /// (inclusive) or `max` headers.
    pub async fn headers_after(
        &self,
        locator: Vec<Hash256>,
        stop: Hash256,
        max: usize,
    ) -> Result<Vec<Header>, NodeError> {
        ask!(self, |reply| Request::HeadersAfter { locator, stop, max, reply })
    }

    /// Checks headers offered in sync against our index and cost table
    /// (`Chain::check_headers`): the work they add, or why they are invalid.
    pub async fn check_headers(&self, headers: Vec<Header>) -> Result<Result<U256, BlockError>, NodeError> {
        ask!(self, |r| Request::CheckHeaders(headers, r))
    }

    /// The stored blocks among `hashes` (unknown ones skipped).
    pub async fn blocks(&self, hashes: Vec<Hash256>) -> Result<Vec<Block>, NodeError> {
        ask!(self, |r| Request::Blocks(hashes, r))
    }

    /// Persists a ban of `peer` (its text form) until unix time `until`.
    pub async fn put_ban(&self, peer: String, until: u64) -> Result<(), NodeError> {
        ask!(self, |reply| Request::PutBan { peer, until, reply })
    }

    /// Lifts a persisted ban.
    pub async fn remove_ban(&self, peer: String) -> Result<(), NodeError> {
        ask!(self, |r| Request::RemoveBan(peer, r))
    }

    /// Every persisted ban, `(peer, until)`.
    pub async fn bans(&self) -> Result<Vec<(String, u64)>, NodeError> {
        ask!(self, Request::Bans)
    }

    /// Starts (or restarts) the miner with `threads` threads paying `payout` (a wallet
    /// address when `None`).
    pub async fn mining_start(&self, threads: usize, payout: Option<Address>) -> Result<MiningInfo, NodeError> {
        ask!(self, |reply| Request::MiningStart { threads, payout, reply })
    }

    /// Stops the miner.
    pub async fn mining_stop(&self) -> Result<MiningInfo, NodeError> {
        ask!(self, Request::MiningStop)
    }

    /// The miner's figures.
    pub async fn mining_info(&self) -> Result<MiningInfo, NodeError> {
        ask!(self, Request::MiningInfo)
    }

    /// A transaction from the main chain (transaction index) or the mempool.
    pub async fn tx(&self, txid: Hash256) -> Result<TxInfo, NodeError> {
        ask!(self, |r| Request::Tx(txid, r))
    }

    /// The merkle proof of a main-chain transaction.
    pub async fn merkle_proof(&self, txid: Hash256) -> Result<MerkleProof, NodeError> {
        ask!(self, |r| Request::MerkleProof(txid, r))
    }

    /// Submits a task with `bounty` from the wallet, open for `expires_in` blocks; returns
    /// `(txid, task_id)`.
    pub async fn submit_task(
        &self,
        spec: TaskSpec,
        bounty: Amount,
        expires_in: u64,
        fee_rate: u64,
    ) -> Result<(Hash256, Hash256), NodeError> {
        let spec = Box::new(spec);
        ask!(self, |reply| Request::SubmitTask { spec, bounty, expires_in, fee_rate, reply })
    }

    /// Reclaims the bounty of an expired, unsolved task created by this wallet.
    pub async fn reclaim(&self, task: Hash256) -> Result<Hash256, NodeError> {
        ask!(self, |r| Request::Reclaim(task, r))
    }

    /// A task's spec.
    pub async fn task_spec(&self, task: Hash256) -> Result<TaskSpec, NodeError> {
        ask!(self, |r| Request::TaskSpec(task, r))
    }

    /// A task's best score after each main-chain block that changed the task.
    pub async fn task_history(&self, task: Hash256) -> Result<Vec<ScorePoint>, NodeError> {
        ask!(self, |r| Request::TaskHistory(task, r))
    }

    /// Predictions of a task's best model on `rows` (each of the task's input width).
    pub async fn predict(&self, task: Hash256, rows: Vec<Vec<f64>>) -> Result<Vec<f64>, NodeError> {
        ask!(self, |reply| Request::Predict { task, rows, reply })
    }

    /// The wallet's keys, each with its balance.
    pub async fn wallet_list(&self) -> Result<Vec<(KeyInfo, Balance)>, NodeError> {
        ask!(self, Request::WalletList)
    }

    /// Unspent outputs paying `addresses` (the wallet's when `None`).
    pub async fn utxos(&self, addresses: Option<Vec<Address>>) -> Result<Vec<(OutPoint, UtxoEntry)>, NodeError> {
        ask!(self, |r| Request::Utxos(addresses, r))
    }

    /// The mempool, highest fee rate first.
    pub async fn mempool(&self) -> Result<Vec<PoolTx>, NodeError> {
        ask!(self, Request::Mempool)
    }

    /// Stops the node thread (miner first), flushing the store; other handles then get
    /// [`NodeError::Stopped`]. Returns once the thread has stopped taking requests.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        ask!(self, Request::Shutdown)
    }

    /// Subscribes to the node's announcements.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Announce> {
        self.announce.subscribe()
    }
}

/// The state the node thread owns.
struct Node {
    chain: ChainStore,
    mempool: Mempool,
    wallet: Wallet,
    mock_time: Option<u64>,
    announce: tokio::sync::broadcast::Sender<Announce>,
    mining: Option<mining::Mining>,
    /// Blocks being checked, and the replay thread.
    intake: blocks::Intake,
    /// Our own request queue, weakly (miner threads report finds here; a strong sender
    /// would keep the node alive after every handle is gone).
    weak_self: mpsc::WeakSender<Request>,
}

/// Opens the chain and wallet in `opts.datadir` and starts the node thread. The thread
/// ends when every [`Handle`] is dropped; joining it flushes the store.
pub fn spawn(opts: NodeOptions) -> Result<(Handle, std::thread::JoinHandle<()>), NodeError> {
    std::fs::create_dir_all(&opts.datadir)
        .map_err(|e| StoreError::Inconsistent(format!("cannot create {}: {e}", opts.datadir.display())))?;
    let chain = ChainStore::open(&opts.datadir.join("chain"), opts.params.clone())?;
    let wallet = Wallet::open_or_create(&opts.datadir, opts.params.network)?;
    let (announce, _) = tokio::sync::broadcast::channel(ANNOUNCE_BUFFER);
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let intake = blocks::Intake::start(tx.downgrade())
        .map_err(|e| StoreError::Inconsistent(format!("cannot start the replay thread: {e}")))?;
    let mut node = Node {
        chain,
        mempool: Mempool::new(opts.mempool),
        wallet,
        mock_time: None,
        announce: announce.clone(),
        mining: None,
        intake,
        weak_self: tx.downgrade(),
    };
    let thread = std::thread::Builder::new()
        .name("gc-node".into())
        .spawn(move || {
            while let Some(req) = rx.blocking_recv() {
                if let Request::Shutdown(reply) = req {
                    node.mining = None;
                    if let Err(e) = node.chain.store().flush() {
                        tracing::error!("flushing the store at shutdown: {e}");
                    }
                    let _ = reply.send(Ok(()));
                    return;
                }
                node.handle(req);
            }
            // Stop the miner threads before the final flush.
            node.mining = None;
            if let Err(e) = node.chain.store().flush() {
                tracing::error!("flushing the store at shutdown: {e}");
            }
        })
        .map_err(|e| StoreError::Inconsistent(format!("cannot start the node thread: {e}")))?;
    Ok((Handle { tx, announce }, thread))
}

impl Node {
    fn now(&self) -> u64 {
        self.mock_time.unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }

    fn handle(&mut self, req: Request) {
        // A dropped reply receiver (the asker gave up) is not an error.
        match req {
            Request::Tip(r) => drop(r.send(Ok(self.tip()))),
            Request::Block(id, r) => drop(r.send(self.block(id))),
            Request::BlockInfo(id, r) => drop(r.send(self.block_info(id))),
            Request::SubmitBlock(b, r) => self.offer_block(b, blocks::Waiter::Reply(r)),
            Request::AddTx(tx, r) => drop(r.send(self.add_tx(tx))),
            Request::SendTx(tx, r) => drop(r.send(self.add_and_announce(tx))),
            Request::NewAddress(label, r) => drop(r.send(self.wallet.new_key(&label).map_err(NodeError::from))),
            Request::Balance(r) => {
                let h = self.chain.height() + 1;
                drop(r.send(Ok(self.wallet.balance(self.chain.state(), h))))
            }
            Request::Send { to, amount, fee_rate, reply } => drop(reply.send(self.send(to, amount, fee_rate))),
            Request::Generate { n, payout, reply } => drop(reply.send(self.generate(n, payout))),
            Request::SetMockTime(t, r) => drop(r.send(self.set_mock_time(t))),
            Request::Task(id, r) => drop(
                r.send(self.chain.state().task(&id).cloned().ok_or_else(|| NodeError::NotFound(format!("task {id}")))),
            ),
            Request::Locator(r) => drop(r.send(Ok(self.chain.index().locator(&self.chain.tip())))),
            Request::HeadersAfter { locator, stop, max, reply } => {
                drop(reply.send(self.headers_after(&locator, stop, max)))
            }
            Request::CheckHeaders(headers, reply) => {
                drop(reply.send(Ok(self.chain.check_headers(&headers, self.now()))))
            }
            Request::Blocks(hashes, r) => {
                let found = hashes.iter().filter_map(|h| self.chain.block(h).ok().flatten()).collect();
                drop(r.send(Ok(found)))
            }
            Request::PutBan { peer, until, reply } => {
                drop(reply.send(self.chain.store().put_ban(&peer, until).map_err(NodeError::from)))
            }
            Request::RemoveBan(peer, r) => drop(r.send(self.chain.store().remove_ban(&peer).map_err(NodeError::from))),
            Request::Bans(r) => drop(r.send(self.chain.store().bans().map_err(NodeError::from))),
            Request::MiningStart { threads, payout, reply } => drop(reply.send(self.start_mining(threads, payout))),
            Request::MiningStop(r) => drop(r.send(Ok(self.stop_mining()))),
            Request::MiningInfo(r) => drop(r.send(Ok(self.mining_info()))),
            Request::Mined { generation, block, output } => self.on_mined(generation, block, output),
            Request::TargetMet { task, params } => self.on_target_met(task, params),
            Request::Replayed { block, result } => self.on_replayed(block, result),
            Request::MiningWake => self.on_mining_wake(),
            Request::Tx(txid, r) => drop(r.send(self.find_tx(txid))),
            Request::MerkleProof(txid, r) => drop(r.send(self.merkle_proof(txid))),
            Request::SubmitTask { spec, bounty, expires_in, fee_rate, reply } => {
                drop(reply.send(self.submit_task(*spec, bounty, expires_in, fee_rate)))
            }
            Request::Reclaim(task, r) => drop(r.send(self.reclaim(task))),
            Request::TaskSpec(task, r) => drop(r.send(
                self.chain.state().spec(&task).cloned().ok_or_else(|| NodeError::NotFound(format!("task {task}"))),
            )),
            Request::TaskHistory(task, r) => drop(r.send(self.task_history(task))),
            Request::Predict { task, rows, reply } => drop(reply.send(self.predict(task, rows))),
            Request::WalletList(r) => drop(r.send(Ok(self.wallet_list()))),
            Request::Utxos(addrs, r) => drop(r.send(Ok(self.utxos(addrs)))),
            Request::Mempool(r) => drop(r.send(Ok(self.mempool_list()))),
            Request::Shutdown(r) => drop(r.send(Ok(()))), // handled by the thread's loop
            Request::Tasks(r) => {
                let mut v: Vec<(Hash256, TaskState)> =
                    self.chain.state().tasks().iter().map(|(k, t)| (*k, t.clone())).collect();
                v.sort_by_key(|(_, t)| (t.created_height, t.best_height));
                drop(r.send(Ok(v)))
            }
        }
    }

    fn headers_after(&self, locator: &[Hash256], stop: Hash256, max: usize) -> Result<Vec<Header>, NodeError> {
        // The fork point: the first locator hash on our main chain (genesis at worst).
        let mut start = 0;
        for h in locator {
            if let Some(e) = self.chain.index().get(h)
                && self.chain.hash_at(e.height)? == Some(*h)
            {
                start = e.height;
                break;
            }
        }
        let mut out = Vec::new();
        let mut height = start + 1;
        while out.len() < max {
            let Some(h) = self.chain.hash_at(height)? else { break };
            let e = self.chain.index().get(&h).ok_or_else(|| NodeError::NotFound(format!("index entry {h}")))?;
            out.push(e.header);
            if h == stop {
                break;
            }
            height += 1;
        }
        Ok(out)
    }

    fn tip(&self) -> TipInfo {
        let e = self.chain.tip_entry();
        TipInfo {
            hash: self.chain.tip(),
            height: e.height,
            time: e.header.time,
            bits: e.header.bits,
            chainwork: e.work().to_string(),
            mempool_txs: self.mempool.len(),
        }
    }

    fn block(&self, id: BlockId) -> Result<Block, NodeError> {
        let hash = match id {
            BlockId::Hash(h) => h,
            BlockId::Height(h) => {
                self.chain.hash_at(h)?.ok_or_else(|| NodeError::NotFound(format!("block at height {h}")))?
            }
        };
        self.chain.block(&hash)?.ok_or_else(|| NodeError::NotFound(format!("block {hash}")))
    }

    fn block_info(&self, id: BlockId) -> Result<BlockInfo, NodeError> {
        let block = self.block(id)?;
        let hash = block.hash();
        let height = self.chain.index().get(&hash).map_or(0, |e| e.height);
        let main = self.chain.hash_at(height)? == Some(hash);
        let confirmations = if main { self.chain.height() - height + 1 } else { 0 };
        Ok(BlockInfo { block, height, confirmations })
    }

    /// Accepts a block replaying on this thread (dev `generate` only: blocks from peers
    /// and the miner go through [`Node::offer_block`]) and brings the mempool and wallet up
    /// to the new tip.
    fn accept_block_here(&mut self, block: &Block) -> Result<Accepted, NodeError> {
        let now = self.now();
        let accepted = self.chain.process_block(block, now)?;
        if let Accepted::NewTip { disconnected, connected } = &accepted {
            self.after_tip_change(disconnected, connected)?;
            self.log_tip();
            self.refresh_mining();
        }
        Ok(accepted)
    }

    fn log_tip(&mut self) {
        let e = self.chain.tip_entry();
        let (height, task) = (e.height, e.header.work.task_id);
        let score = self.chain.state().task(&task).map_or(f64::NAN, |t| t.best_score);
        let steps_per_sec = self.steps_per_sec();
        tracing::info!(height, hash = %self.chain.tip(), task = %task, score, steps_per_sec, "connected block");
    }

    fn after_tip_change(&mut self, disconnected: &[Hash256], connected: &[Hash256]) -> Result<(), NodeError> {
        let params = self.chain.params().clone();
        let height = self.chain.height() + 1;
        for h in connected {
            if let Some(b) = self.chain.block(h)? {
                self.mempool.remove_for_block(&b);
            }
        }
        self.mempool.revalidate(self.chain.view(), height, &params);
        let mut back = Vec::new();
        for h in disconnected {
            if let Some(b) = self.chain.block(h)? {
                back.extend(b.txs);
            }
        }
        if !back.is_empty() {
            self.mempool.readd(back, self.chain.view(), height, &params);
        }
        self.reserve_pool_inputs();
        Ok(())
    }

    /// Tells the wallet which outputs the pool already spends, so it does not pick them.
    fn reserve_pool_inputs(&mut self) {
        let spent: Vec<_> = self.mempool.iter().flat_map(|e| e.tx.inputs().iter().map(|i| i.prevout)).collect();
        self.wallet.set_reserved(spent);
    }

    fn add_tx(&mut self, tx: crate::chain::tx::Transaction) -> Result<Hash256, NodeError> {
        let params = self.chain.params().clone();
        let height = self.chain.height() + 1;
        let txid = self.mempool.add(tx, self.chain.view(), height, &params)?;
        self.reserve_pool_inputs();
        self.refresh_mining();
        Ok(txid)
    }

    /// Adds a local transaction (RPC or wallet) to the pool and announces it to peers.
    fn add_and_announce(&mut self, tx: Transaction) -> Result<Hash256, NodeError> {
        let txid = self.add_tx(tx.clone())?;
        // No subscriber (no network) is fine.
        let _ = self.announce.send(Announce::Tx(tx));
        Ok(txid)
    }

    fn send(&mut self, to: Address, amount: Amount, fee_rate: u64) -> Result<Hash256, NodeError> {
        let height = self.chain.height() + 1;
        let tx = self.wallet.transfer(self.chain.view(), height, to, amount, fee_rate)?;
        self.add_and_announce(tx)
    }

    fn payout(&mut self, payout: Option<Address>) -> Result<Address, NodeError> {
        match payout {
            Some(a) => Ok(a),
            None => match self.wallet.addresses().first() {
                Some(a) => Ok(*a),
                None => Ok(self.wallet.new_key("mining")?),
            },
        }
    }

    fn generate(&mut self, n: u64, payout: Option<Address>) -> Result<Vec<Hash256>, NodeError> {
        if self.chain.params().network != crate::chain::Network::Dev {
            return Err(NodeError::DevOnly("dev_generate"));
        }
        let payee = self.payout(payout)?;
        let mut out = Vec::new();
        for _ in 0..n {
            let max_bytes = self.chain.params().max_block_bytes / 2;
            let txs = self.mempool.select(max_bytes, &self.chain.params().task_limits);
            // As bitcoind's regtest: the clock, raised to the median time past + 1 by the
            // template — blocks mined in one second stay within the future-drift limit.
            let time = self.now();
            let req = TemplateRequest { payee, time, txs, task: None, bounty_claim: Amount::ZERO };
            let params = self.chain.params().clone();
            let tip = self.chain.tip();
            let ctx = self.chain.index().parent_context(&tip).expect("the tip is indexed");
            let t = miner::template_on(&params, tip, &ctx, self.chain.view(), req)?;
            // Dev difficulty: a handful of steps per block on average.
            let block = t.mine(0, u64::MAX).ok_or_else(|| NodeError::NotFound("a nonce".into()))?;
            let hash = block.hash();
            // The mock clock may lag the block time: accept at the later of the two.
            let saved = self.mock_time;
            self.mock_time = Some(self.now().max(block.header.time));
            let r = self.accept_block_here(&block);
            self.mock_time = saved;
            r?;
            let _ = self.announce.send(Announce::Block(block));
            out.push(hash);
        }
        Ok(out)
    }

    fn find_tx(&self, txid: Hash256) -> Result<TxInfo, NodeError> {
        if let Some(e) = self.mempool.get(&txid) {
            return Ok(TxInfo { tx: e.tx.clone(), block: None, confirmations: 0 });
        }
        let (block, height, i) =
            self.chain.find_tx(&txid)?.ok_or_else(|| NodeError::NotFound(format!("transaction {txid}")))?;
        let confirmations = self.chain.height() - height + 1;
        Ok(TxInfo { tx: block.txs[i].clone(), block: Some((block.hash(), height)), confirmations })
    }

    fn merkle_proof(&self, txid: Hash256) -> Result<MerkleProof, NodeError> {
        let (block, height, index) = self
            .chain
            .find_tx(&txid)?
            .ok_or_else(|| NodeError::NotFound(format!("transaction {txid} in the main chain")))?;
        let txids: Vec<Hash256> = block.txs.iter().map(Transaction::txid).collect();
        Ok(MerkleProof {
            txid,
            block: block.hash(),
            height,
            index,
            branch: merkle_branch(&txids, index)
                .ok_or_else(|| NodeError::NotFound(format!("transaction {txid} in its block")))?,
            merkle_root: block.header.merkle_root,
        })
    }

    fn submit_task(
        &mut self,
        spec: TaskSpec,
        bounty: Amount,
        expires_in: u64,
        fee_rate: u64,
    ) -> Result<(Hash256, Hash256), NodeError> {
        // The task's own admission first: a task the chain would refuse (its shape, its
        // cost, its data) is a clearer error than the funding that would have paid for it.
        spec.admit(&self.chain.params().task_limits).map_err(|e| NodeError::Invalid(format!("task rejected: {e}")))?;
        let height = self.chain.height() + 1;
        let expires = height.saturating_add(expires_in);
        let tx = self.wallet.submit_task(self.chain.view(), height, spec, bounty, expires, fee_rate)?;
        let txid = self.add_and_announce(tx)?;
        // A task's id is the txid of its submission.
        Ok((txid, txid))
    }

    fn reclaim(&mut self, task: Hash256) -> Result<Hash256, NodeError> {
        let height = self.chain.height() + 1;
        let tx = self.wallet.reclaim(self.chain.view(), height, task)?;
        self.add_and_announce(tx)
    }

    fn task_history(&self, task: Hash256) -> Result<Vec<ScorePoint>, NodeError> {
        let t = self.chain.state().task(&task).ok_or_else(|| NodeError::NotFound(format!("task {task}")))?;
        // The undo record of each block holds the task's state before the block: the
        // score after a touching block is the score before the next one (or the current).
        let mut touches: Vec<(u64, f64)> = Vec::new();
        for height in t.created_height..=self.chain.height() {
            let Some(h) = self.chain.hash_at(height)? else { break };
            let Some(undo) = self.chain.store().undo(&h)? else { continue };
            if let Some((_, before)) = undo.tasks.iter().find(|(id, _)| *id == task) {
                touches.push((height, before.as_ref().map_or(f64::NAN, |b| b.best_score)));
            }
        }
        let mut out = Vec::with_capacity(touches.len());
        for (i, &(height, _)) in touches.iter().enumerate() {
            let score = touches.get(i + 1).map_or(t.best_score, |next| next.1);
            out.push(ScorePoint { height, score });
        }
        Ok(out)
    }

    fn predict(&mut self, task: Hash256, rows: Vec<Vec<f64>>) -> Result<Vec<f64>, NodeError> {
        let best = self
            .chain
            .state()
            .task(&task)
            .ok_or_else(|| NodeError::NotFound(format!("task {task}")))?
            .best_params
            .clone();
        let problem = self.chain.view().problem(&task).map_err(|e| NodeError::Invalid(e.to_string()))?;
        let cols = rows.first().map_or(0, Vec::len);
        if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != cols) {
            return Err(NodeError::Invalid(format!("row {i} has {} values, row 0 has {cols}", r.len())));
        }
        let data: Vec<f64> = rows.concat();
        let x = Mat::from_vec(rows.len(), cols, data).map_err(|e| NodeError::Invalid(e.to_string()))?;
        problem.predict(&Params(best), &x).map_err(|e| NodeError::Invalid(e.to_string()))
    }

    fn wallet_list(&self) -> Vec<(KeyInfo, Balance)> {
        self.wallet.balances(self.chain.state(), self.chain.height() + 1)
    }

    fn utxos(&self, addresses: Option<Vec<Address>>) -> Vec<(OutPoint, UtxoEntry)> {
        let want: std::collections::HashSet<Address> =
            addresses.unwrap_or_else(|| self.wallet.addresses()).into_iter().collect();
        let mut v: Vec<(OutPoint, UtxoEntry)> = self
            .chain
            .state()
            .utxos()
            .iter()
            .filter(|(_, e)| want.contains(&e.output.address))
            .map(|(o, e)| (*o, *e))
            .collect();
        v.sort_by_key(|(o, e)| (e.height, o.txid, o.vout));
        v
    }

    fn mempool_list(&self) -> Vec<PoolTx> {
        let mut v: Vec<&crate::mempool::MempoolEntry> = self.mempool.iter().collect();
        v.sort_by_key(|e| (std::cmp::Reverse(e.fee_rate), e.seq));
        v.into_iter()
            .map(|e| PoolTx { txid: e.txid, kind: e.tx.kind_name().to_string(), size: e.size, fee: e.fee })
            .collect()
    }

    fn set_mock_time(&mut self, t: Option<u64>) -> Result<(), NodeError> {
        if self.chain.params().network != crate::chain::Network::Dev {
            return Err(NodeError::DevOnly("dev_setMockTime"));
        }
        if let Some(t) = t.filter(|&t| t > MAX_MOCK_TIME) {
            return Err(NodeError::Invalid(format!(
                "mock time {t} is past {MAX_MOCK_TIME} (9999-12-31T23:59:59Z), the latest the block time rules accept"
            )));
        }
        self.mock_time = t;
        self.refresh_mining();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> (tempfile::TempDir, Handle, std::thread::JoinHandle<()>) {
        let dir = tempfile::tempdir().unwrap();
        let opts = NodeOptions {
            params: ChainParams::dev(),
            datadir: dir.path().to_path_buf(),
            mempool: MempoolConfig { max_bytes: 1 << 20, min_fee_rate: 1 },
        };
        let (h, t) = spawn(opts).unwrap();
        (dir, h, t)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn generate_mines_blocks_and_the_wallet_sees_matured_coinbases() {
        let (_dir, node, thread) = start();
        let me = node.new_address("me").await.unwrap();
        let hashes = node.generate(12, Some(me)).await.unwrap();
        assert_eq!(hashes.len(), 12);
        let tip = node.tip().await.unwrap();
        assert_eq!((tip.height, tip.hash), (12, hashes[11]));
        assert_eq!(node.block(BlockId::Height(12)).await.unwrap().hash(), hashes[11]);
        let bal = node.balance().await.unwrap();
        // Maturity 10 on dev: a coinbase of height h is spendable from height h + 10, so
        // in the next block (13) those of blocks 1 to 3.
        assert_eq!(bal.spendable, Amount::from_units(3 * 50 * crate::chain::amount::COIN));
        assert!(bal.immature > Amount::ZERO);
        assert!(matches!(node.block(BlockId::Height(99)).await, Err(NodeError::NotFound(_))));
        drop(node);
        thread.join().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wallet_payment_goes_through_the_mempool_into_a_block() {
        let (_dir, node, thread) = start();
        let me = node.new_address("me").await.unwrap();
        let friend = node.new_address("friend").await.unwrap();
        node.generate(11, Some(me)).await.unwrap();
        let txid = node.send(friend, Amount::from_units(123_456), 2).await.unwrap();
        assert_eq!(node.tip().await.unwrap().mempool_txs, 1);
        let mined = node.generate(1, Some(me)).await.unwrap();
        let b = node.block(BlockId::Hash(mined[0])).await.unwrap();
        assert!(b.txids().contains(&txid), "the payment was mined");
        assert_eq!(node.tip().await.unwrap().mempool_txs, 0);
        // Overspending is a clear wallet error.
        let err = node.send(friend, Amount::from_units(u64::MAX / 2), 2).await.unwrap_err();
        assert!(err.to_string().contains("insufficient"), "{err}");
        drop(node);
        thread.join().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_chain_survives_a_restart_and_tasks_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let opts = NodeOptions {
            params: ChainParams::dev(),
            datadir: dir.path().to_path_buf(),
            mempool: MempoolConfig { max_bytes: 1 << 20, min_fee_rate: 1 },
        };
        let (node, thread) = spawn(opts.clone()).unwrap();
        node.generate(3, None).await.unwrap();
        let tip = node.tip().await.unwrap();
        drop(node);
        thread.join().unwrap();
        let (node, thread) = spawn(opts).unwrap();
        assert_eq!(node.tip().await.unwrap(), tip);
        let tasks = node.tasks().await.unwrap();
        assert_eq!(tasks.len(), 1, "the public task");
        let public = ChainParams::dev().public_task_id;
        assert_eq!(tasks[0].0, public);
        assert!(node.task(public).await.unwrap().best_height > 0, "blocks improved the public task");
        drop(node);
        thread.join().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_miner_waits_for_the_clock_instead_of_mining_blocks_its_node_refuses() {
        let (_dir, node, thread) = start();
        node.mining_start(1, None).await.unwrap();
        // Dev blocks come many a second, each dated after the median time past: soon every
        // template would be more than the drift ahead of the clock (v1 then mined blocks
        // its own node refused, tens of thousands in seconds).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
        let info = loop {
            let info = node.mining_info().await.unwrap();
            if info.paused_until.is_some() {
                break info;
            }
            assert!(std::time::Instant::now() < deadline, "the miner never waited for the clock: {info:?}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        let tip = node.tip().await.unwrap();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!(tip.time <= now + ChainParams::dev().max_future_drift_secs, "tip at {}, clock {now}", tip.time);
        assert!(info.blocks_found > 10, "{info:?}");
        assert_eq!(info.blocks_refused, 0, "no find was refused as too early: {info:?}");
        node.mining_stop().await.unwrap();
        drop(node);
        thread.join().unwrap();
    }

    /// Regression: `dev_setMockTime [18446744073709551615]` left the chain unable to
    /// extend itself (issue 12). The time is bounded; at the bound blocks are still mined.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mock_time_past_the_year_9999_is_refused_and_the_bound_still_mines() {
        let (_dir, node, thread) = start();
        for t in [u64::MAX, MAX_MOCK_TIME + 1] {
            let err = node.set_mock_time(Some(t)).await.unwrap_err();
            assert!(matches!(err, NodeError::Invalid(_)), "{err}");
            assert_eq!(
                err.to_string(),
                format!(
                    "mock time {t} is past 253402300799 (9999-12-31T23:59:59Z), the latest the block time rules accept"
                )
            );
        }
        node.set_mock_time(Some(MAX_MOCK_TIME)).await.unwrap();
        let mined = node.generate(3, None).await.unwrap();
        assert_eq!(mined.len(), 3);
        let last = node.block(BlockId::Hash(mined[2])).await.unwrap();
        assert!(last.header.time >= MAX_MOCK_TIME, "{}", last.header.time);
        let more = node.generate(2, None).await.unwrap();
        assert_eq!(node.tip().await.unwrap().hash, more[1], "the chain keeps extending at the bound");
        drop(node);
        thread.join().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dev_only_requests_are_refused_on_other_networks() {
        let dir = tempfile::tempdir().unwrap();
        let opts = NodeOptions {
            params: ChainParams::test(),
            datadir: dir.path().to_path_buf(),
            mempool: MempoolConfig { max_bytes: 1 << 20, min_fee_rate: 1 },
        };
        let (node, thread) = spawn(opts).unwrap();
        assert!(matches!(node.generate(1, None).await, Err(NodeError::DevOnly(_))));
        assert!(matches!(node.set_mock_time(Some(5)).await, Err(NodeError::DevOnly(_))));
        drop(node);
        thread.join().unwrap();
    }
}
