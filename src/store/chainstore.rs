//! [`ChainStore`]: the block index and chain state in memory, kept in step with the sled
//! database; accepts blocks, follows the most-work chain, reorganises.

use crate::chain::block::Block;
use crate::chain::forkchoice::{BlockIndex, BlockStatus, IndexEntry, TipChange};
use crate::chain::params::ChainParams;
use crate::chain::state::State;
use crate::chain::validate::{check_block, check_header_context, BlockError};
use crate::hash::Hash256;
use crate::store::db::{Store, StoreError};
use std::path::Path;

/// Why a block was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The block is invalid (or cannot be judged yet: see [`BlockError::is_transient`]).
    #[error("{0}")]
    Block(#[from] BlockError),
    /// The database failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl ProcessError {
    /// Whether the peer that sent the block is to blame.
    pub fn fault(&self) -> bool {
        match self {
            ProcessError::Block(e) => e.fault(),
            ProcessError::Store(_) => false,
        }
    }
}

/// What accepting a block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Already known; nothing changed.
    Duplicate,
    /// Stored on a side chain (less work than the tip).
    SideChain,
    /// The tip moved: blocks disconnected (old tip first) and connected (oldest first).
    NewTip {
        /// Disconnected hashes.
        disconnected: Vec<Hash256>,
        /// Connected hashes.
        connected: Vec<Hash256>,
    },
}

/// The chain: parameters, database, index, state at the tip.
pub struct ChainStore {
    params: ChainParams,
    store: Store,
    index: BlockIndex,
    state: State,
    tip: Hash256,
}

impl ChainStore {
    /// Opens the chain in `dir` (creating it with the genesis block), loads the index and
    /// state, checks them against each other, and moves to the best known chain if a block
    /// was stored but not connected before a crash.
    pub fn open(dir: &Path, params: ChainParams) -> Result<ChainStore, ProcessError> {
        let store = Store::open(dir)?;
        let genesis_hash = params.genesis_hash();
        match store.genesis()? {
            None => {
                let state = State::genesis(&params).map_err(BlockError::from)?;
                let index = BlockIndex::new(&params.genesis.header);
                let entry = index.get(&genesis_hash).expect("genesis is indexed").clone();
                let delta = crate::chain::state::Delta {
                    spent: vec![],
                    created: vec![],
                    tasks: state.tasks().iter().map(|(k, v)| (*k, v.clone())).collect(),
                    specs: state.specs().iter().map(|(k, v)| (*k, v.clone())).collect(),
                };
                store.init_genesis(&params.genesis, &entry, &delta)?;
            }
            Some(found) if found != genesis_hash => {
                return Err(StoreError::WrongNetwork { found, expected: genesis_hash }.into());
            }
            Some(_) => {}
        }
        let entries = store.load_index()?;
        let index = BlockIndex::from_entries(genesis_hash, entries);
        let (utxos, tasks, specs) = store.load_state()?;
        let state = State::from_parts(utxos, tasks, specs);
        let tip = store.tip()?.ok_or_else(|| StoreError::Inconsistent("no tip recorded".into()))?;
        let tip_entry = index.get(&tip).ok_or_else(|| StoreError::Inconsistent(format!("tip {tip} is not in the index")))?;
        if tip_entry.status != BlockStatus::Valid {
            return Err(StoreError::Inconsistent(format!("tip {tip} is not marked valid")).into());
        }
        if store.main_hash(tip_entry.height)? != Some(tip) {
            return Err(StoreError::Inconsistent(format!("main chain at height {} is not the tip {tip}", tip_entry.height)).into());
        }
        if store.main_hash(tip_entry.height + 1)?.is_some() {
            return Err(StoreError::Inconsistent(format!("main chain extends past the tip at height {}", tip_entry.height)).into());
        }
        let mut cs = ChainStore { params, store, index, state, tip };
        // A block stored but not connected before a crash: try to connect it now. A failure
        // marks it invalid and keeps the stored tip, so opening still succeeds.
        if let Err(e) = cs.activate_best() {
            tracing::warn!("connecting stored blocks at open: {e}");
        }
        Ok(cs)
    }

    /// The parameters.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The tip hash.
    pub fn tip(&self) -> Hash256 {
        self.tip
    }

    /// The tip's index entry.
    pub fn tip_entry(&self) -> &IndexEntry {
        self.index.get(&self.tip).expect("the tip is indexed")
    }

    /// The tip height.
    pub fn height(&self) -> u64 {
        self.tip_entry().height
    }

    /// The block index.
    pub fn index(&self) -> &BlockIndex {
        &self.index
    }

    /// The state at the tip.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The state at the tip, mutable (for building problems on demand).
    pub fn state_mut(&mut self) -> &mut State {
        &mut self.state
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A stored block.
    pub fn block(&self, h: &Hash256) -> Result<Option<Block>, StoreError> {
        self.store.block(h)
    }

    /// The main-chain block hash at `height`.
    pub fn hash_at(&self, height: u64) -> Result<Option<Hash256>, StoreError> {
        self.store.main_hash(height)
    }

    /// A main-chain transaction: its block, the block's height and the transaction's
    /// position in it (from the transaction index).
    pub fn find_tx(&self, txid: &Hash256) -> Result<Option<(Block, u64, usize)>, StoreError> {
        let Some(h) = self.store.tx_block(txid)? else { return Ok(None) };
        let Some(e) = self.index.get(&h) else { return Ok(None) };
        if self.hash_at(e.height)? != Some(h) {
            return Ok(None); // a disconnected block's entry
        }
        let height = e.height;
        let Some(block) = self.store.block(&h)? else { return Ok(None) };
        Ok(block.txs.iter().position(|t| t.txid() == *txid).map(|i| (block, height, i)))
    }

    /// Accepts a block: context-free checks, header checks against its parent at local
    /// time `now`, storage, then fork choice (connecting, or reorganising to, the chain
    /// with the most work). A block that fails to connect is marked invalid with its
    /// descendants and the previous tip is restored.
    pub fn process_block(&mut self, block: &Block, now: u64) -> Result<Accepted, ProcessError> {
        let hash = block.hash();
        if let Some(e) = self.index.get(&hash) {
            if e.status == BlockStatus::Invalid {
                return Err(BlockError::KnownInvalid(hash).into());
            }
            return Ok(Accepted::Duplicate);
        }
        check_block(block, &self.params)?;
        let parent = self.index.get(&block.header.prev).ok_or(BlockError::UnknownParent(block.header.prev))?;
        if parent.status == BlockStatus::Invalid {
            return Err(BlockError::InvalidParent(block.header.prev).into());
        }
        let ctx = self.index.parent_context(&block.header.prev).expect("parent is indexed");
        check_header_context(&block.header, &ctx, now, &self.params)?;
        let entry = self.index.insert(&block.header).map_err(|_| BlockError::UnknownParent(block.header.prev))?.clone();
        self.store.put_block(block, &entry)?;
        self.activate_best()
    }

    /// Moves the tip to the best valid candidate, connecting and disconnecting blocks.
    fn activate_best(&mut self) -> Result<Accepted, ProcessError> {
        let old_tip = self.tip;
        loop {
            let best = self.index.best();
            let change = self.index.path(&self.tip, &best).expect("both tips are indexed");
            let TipChange::Reorg { disconnect, connect } = change else {
                break;
            };
            if self.index.get(&best).map(IndexEntry::work) <= self.index.get(&self.tip).map(IndexEntry::work) {
                break;
            }
            for h in &disconnect {
                self.disconnect_tip(h)?;
            }
            let mut failed = None;
            for h in &connect {
                if let Err(e) = self.connect_block(h) {
                    failed = Some((*h, e));
                    break;
                }
            }
            if let Some((bad, e)) = failed {
                let marked = self.index.mark_invalid(&bad);
                let updates: Vec<(Hash256, IndexEntry)> =
                    marked.iter().filter_map(|h| self.index.get(h).map(|e| (*h, e.clone()))).collect();
                self.store.put_index_entries(&updates)?;
                // Back to the old chain if it still has the most work; the loop re-decides.
                let ProcessError::Block(be) = e else { return Err(e) };
                self.activate_best_after_failure()?;
                return Err(be.into());
            }
        }
        if self.tip == old_tip {
            return Ok(Accepted::SideChain);
        }
        let TipChange::Reorg { disconnect, connect } = self.index.path(&old_tip, &self.tip).expect("indexed") else {
            return Ok(Accepted::SideChain);
        };
        Ok(Accepted::NewTip { disconnected: disconnect, connected: connect })
    }

    /// After a failed connect: return to the best remaining valid chain.
    fn activate_best_after_failure(&mut self) -> Result<(), ProcessError> {
        match self.activate_best() {
            Ok(_) => Ok(()),
            Err(ProcessError::Store(e)) => Err(e.into()),
            // Another invalid block further along: it has been marked; the tip is valid.
            Err(ProcessError::Block(_)) => Ok(()),
        }
    }

    fn connect_block(&mut self, h: &Hash256) -> Result<(), ProcessError> {
        let block = self.store.block(h)?.ok_or_else(|| StoreError::Inconsistent(format!("block {h} is indexed but not stored")))?;
        let entry = self.index.get(h).expect("connect path is indexed").clone();
        let (undo, delta) = self.state.connect(&block, entry.height, &self.params).map_err(BlockError::from)?;
        let mut valid = entry;
        valid.status = BlockStatus::Valid;
        let txids: Vec<Hash256> = block.txs.iter().map(|t| t.txid()).collect();
        if let Err(e) = self.store.connect(h, valid.height, &valid, &undo, &delta, &txids) {
            self.state.disconnect(&undo);
            return Err(e.into());
        }
        self.index.mark_valid(h);
        self.tip = *h;
        Ok(())
    }

    fn disconnect_tip(&mut self, h: &Hash256) -> Result<(), ProcessError> {
        debug_assert_eq!(*h, self.tip);
        let entry = self.index.get(h).expect("tip is indexed").clone();
        let undo = self.store.undo(h)?.ok_or_else(|| StoreError::Inconsistent(format!("no undo record for {h}")))?;
        self.store.disconnect(entry.height, &entry.header.prev, &undo)?;
        self.state.disconnect(&undo);
        self.tip = entry.header.prev;
        Ok(())
    }
}
