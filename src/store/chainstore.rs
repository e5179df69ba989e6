//! [`ChainStore`]: the consensus pipeline (`chain::pipeline::Chain`) over the sled
//! [`Store`], which implements its `BlockStore` trait. The rules are all `chain`'s; this
//! file only adapts the trait to the database and adds the queries that need the
//! store's own indexes (the transaction index).

use crate::chain::block::Block;
use crate::chain::forkchoice::IndexEntry;
use crate::chain::params::ChainParams;
use crate::chain::pipeline::{self, BlockStore, Chain};
use crate::chain::state::{Delta, TaskSpecs, TaskStates, Undo, Utxos};
use crate::hash::Hash256;
use crate::store::db::{Store, StoreError};
use std::collections::HashMap;
use std::path::Path;

/// The chain on sled.
pub type ChainStore = Chain<Store>;

/// Why a block was not accepted by a [`ChainStore`].
pub type ProcessError = pipeline::ProcessError<StoreError>;

impl BlockStore for Store {
    type Error = StoreError;

    fn genesis(&self) -> Result<Option<Hash256>, StoreError> {
        Store::genesis(self)
    }

    fn init_genesis(
        &self,
        genesis: &Block,
        entry: &IndexEntry,
        delta: &Delta,
        costs: &[(Hash256, u64)],
    ) -> Result<(), StoreError> {
        Store::init_genesis(self, genesis, entry, delta, costs)
    }

    fn load_index(&self) -> Result<HashMap<Hash256, IndexEntry>, StoreError> {
        Store::load_index(self)
    }

    fn load_state(&self) -> Result<(Utxos, TaskStates, TaskSpecs), StoreError> {
        Store::load_state(self)
    }

    fn load_costs(&self) -> Result<HashMap<Hash256, u64>, StoreError> {
        Store::load_costs(self)
    }

    fn tip(&self) -> Result<Option<Hash256>, StoreError> {
        Store::tip(self)
    }

    fn main_hash(&self, height: u64) -> Result<Option<Hash256>, StoreError> {
        Store::main_hash(self, height)
    }

    fn put_block(&self, block: &Block, entry: &IndexEntry, costs: &[(Hash256, u64)]) -> Result<(), StoreError> {
        Store::put_block(self, block, entry, costs)
    }

    fn put_index_entries(&self, entries: &[(Hash256, IndexEntry)]) -> Result<(), StoreError> {
        Store::put_index_entries(self, entries)
    }

    fn block(&self, h: &Hash256) -> Result<Option<Block>, StoreError> {
        Store::block(self, h)
    }

    fn undo(&self, h: &Hash256) -> Result<Option<Undo>, StoreError> {
        Store::undo(self, h)
    }

    fn connect(
        &self,
        h: &Hash256,
        height: u64,
        entry: &IndexEntry,
        undo: &Undo,
        delta: &Delta,
        txids: &[Hash256],
    ) -> Result<(), StoreError> {
        Store::connect(self, h, height, entry, undo, delta, txids)
    }

    fn disconnect(&self, height: u64, parent: &Hash256, undo: &Undo) -> Result<(), StoreError> {
        Store::disconnect(self, height, parent, undo)
    }
}

impl Chain<Store> {
    /// Opens the chain in `dir` (creating it with the genesis block) and loads it
    /// ([`Chain::load`]). A store of another network is refused with its genesis named.
    pub fn open(dir: &Path, params: ChainParams) -> Result<ChainStore, ProcessError> {
        let store = Store::open(dir).map_err(pipeline::ProcessError::Store)?;
        let genesis = params.genesis_hash();
        if let Some(found) = store.genesis().map_err(pipeline::ProcessError::Store)?
            && found != genesis
        {
            return Err(pipeline::ProcessError::Store(StoreError::WrongNetwork { found, expected: genesis }));
        }
        Chain::load(store, params)
    }

    /// A main-chain transaction: its block, the block's height and the transaction's
    /// position in it (from the transaction index).
    pub fn find_tx(&self, txid: &Hash256) -> Result<Option<(Block, u64, usize)>, StoreError> {
        let Some(h) = self.store().tx_block(txid)? else { return Ok(None) };
        let Some(e) = self.index().get(&h) else { return Ok(None) };
        if self.store().main_hash(e.height)? != Some(h) {
            return Ok(None); // a disconnected block's entry
        }
        let height = e.height;
        let Some(block) = self.store().block(&h)? else { return Ok(None) };
        Ok(block.txs.iter().position(|t| t.txid() == *txid).map(|i| (block, height, i)))
    }
}
