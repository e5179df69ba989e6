//! The sled database: named trees, typed keys and values, the schema version, and the
//! two atomic writes (connect, disconnect).

use crate::chain::block::Block;
use crate::chain::encode::{self, DecodeError};
use crate::chain::forkchoice::IndexEntry;
use crate::chain::state::{Delta, TaskState, Undo, UtxoEntry};
use crate::chain::tx::OutPoint;
use crate::hash::Hash256;
use crate::pouw::task::TaskSpec;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::collections::HashMap;
use std::path::Path;

/// Bump on any change to a key or value format; checked when the store opens.
pub const SCHEMA_VERSION: u32 = 4;

const META_SCHEMA: &[u8] = b"schema_version";
const META_TIP: &[u8] = b"tip";
const META_GENESIS: &[u8] = b"genesis";
const BAN_PREFIX: &[u8] = b"ban:";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled reported an I/O or internal error.
    #[error("database: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value does not decode.
    #[error("corrupt {tree} entry {key}: {source}")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// The key, hex.
        key: String,
        /// Why.
        source: DecodeError,
    },
    /// The database was written by another schema version.
    #[error("database schema version {found}, this build uses {expected}: use a new data directory")]
    Schema {
        /// Found.
        found: u32,
        /// Expected.
        expected: u32,
    },
    /// The database belongs to another network.
    #[error("database holds the chain with genesis {found}, this network's genesis is {expected}")]
    WrongNetwork {
        /// Stored genesis.
        found: Hash256,
        /// Expected genesis.
        expected: Hash256,
    },
    /// Stored data contradicts itself.
    #[error("inconsistent database: {0}")]
    Inconsistent(String),
}

/// The database and its trees.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    blocks: sled::Tree,
    index: sled::Tree,
    main: sled::Tree,
    utxo: sled::Tree,
    tasks: sled::Tree,
    task_data: sled::Tree,
    undo: sled::Tree,
    meta: sled::Tree,
    txindex: sled::Tree,
    costs: sled::Tree,
}

fn outpoint_key(o: &OutPoint) -> [u8; 36] {
    let mut k = [0u8; 36];
    k[..32].copy_from_slice(&o.txid.0);
    k[32..].copy_from_slice(&o.vout.to_be_bytes());
    k
}

fn outpoint_from_key(k: &[u8]) -> Option<OutPoint> {
    let txid: [u8; 32] = k.get(..32)?.try_into().ok()?;
    let vout: [u8; 4] = k.get(32..36)?.try_into().ok()?;
    Some(OutPoint { txid: Hash256(txid), vout: u32::from_be_bytes(vout) })
}

fn hash_from_key(k: &[u8]) -> Option<Hash256> {
    Some(Hash256(k.try_into().ok()?))
}

/// Big-endian height keys sort in height order.
fn height_key(h: u64) -> [u8; 8] {
    h.to_be_bytes()
}

fn dec<T: DeserializeOwned>(tree: &'static str, key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    encode::decode(bytes, encode::MAX_OBJECT_BYTES, tree).map_err(|source| StoreError::Corrupt {
        tree,
        key: hex::encode(key),
        source,
    })
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    encode::encode(v)
}

/// How long [`Store::open`] waits for a just-closed database's file lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Opens sled at `path`, retrying while its file lock is held for at most [`LOCK_WAIT`]:
/// sled 0.34 releases the lock only when its flusher thread exits, which `Db`'s drop
/// signals but does not wait for (spacejam/sled#1234), so reopening a database this
/// process just closed can find it still locked. A lock held longer (another process on
/// the same data directory) is the error it was.
fn open_waiting_for_lock(path: &Path) -> Result<sled::Db, sled::Error> {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match sled::Config::new().path(path).open() {
            Err(e) if is_lock_contention(&e) && start.elapsed() < LOCK_WAIT => {
                // A bounded back-off on an OS lock held by a thread that is exiting: there
                // is nothing to wait on but time.
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Sled reports a held file lock as an `Io` error of kind `Other` whose message wraps
/// the OS's `WouldBlock`.
fn is_lock_contention(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock"))
}

impl Store {
    /// Opens (or creates) the database in `path` and checks the schema version.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = open_waiting_for_lock(path)?;
        let s = Store {
            blocks: db.open_tree("blocks")?,
            index: db.open_tree("index")?,
            main: db.open_tree("main")?,
            utxo: db.open_tree("utxo")?,
            tasks: db.open_tree("tasks")?,
            task_data: db.open_tree("task_data")?,
            undo: db.open_tree("undo")?,
            meta: db.open_tree("meta")?,
            txindex: db.open_tree("txindex")?,
            costs: db.open_tree("costs")?,
            db,
        };
        match s.meta.get(META_SCHEMA)? {
            None => {
                s.meta.insert(META_SCHEMA, &SCHEMA_VERSION.to_le_bytes())?;
            }
            Some(v) => {
                let found = v.as_ref().try_into().map(u32::from_le_bytes).unwrap_or(u32::MAX);
                if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema { found, expected: SCHEMA_VERSION });
                }
            }
        }
        Ok(s)
    }

    /// Waits until everything written so far is on disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// The stored genesis hash (None for a fresh database).
    pub fn genesis(&self) -> Result<Option<Hash256>, StoreError> {
        Ok(self.meta.get(META_GENESIS)?.and_then(|v| hash_from_key(&v)))
    }

    /// The stored tip.
    pub fn tip(&self) -> Result<Option<Hash256>, StoreError> {
        Ok(self.meta.get(META_TIP)?.and_then(|v| hash_from_key(&v)))
    }

    /// Writes a block, its index entry (not connected) and the cost-table entries of the
    /// tasks it submits, in one transaction. Idempotent.
    pub fn put_block(&self, block: &Block, entry: &IndexEntry, costs: &[(Hash256, u64)]) -> Result<(), StoreError> {
        let h = block.hash();
        (&self.blocks, &self.index, &self.costs)
            .transaction(|(blocks, index, cost_t)| {
                blocks.insert(&h.0, enc(block))?;
                index.insert(&h.0, enc(entry))?;
                for (id, c) in costs {
                    cost_t.insert(&id.0, &c.to_le_bytes())?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(tx_err)?;
        Ok(())
    }

    /// The cost table (task id -> step cost in mWU).
    pub fn load_costs(&self) -> Result<HashMap<Hash256, u64>, StoreError> {
        let mut out = HashMap::new();
        for kv in self.costs.iter() {
            let (k, v) = kv?;
            let h = hash_from_key(&k)
                .ok_or_else(|| StoreError::Inconsistent(format!("costs key {} is not a hash", hex::encode(&k))))?;
            let c: [u8; 8] = v
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Inconsistent(format!("cost of task {h} is not 8 bytes")))?;
            out.insert(h, u64::from_le_bytes(c));
        }
        Ok(out)
    }

    /// Updates index entries (status changes).
    pub fn put_index_entries(&self, entries: &[(Hash256, IndexEntry)]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (h, e) in entries {
            batch.insert(&h.0, enc(e));
        }
        self.index.apply_batch(batch)?;
        Ok(())
    }

    /// A stored block.
    pub fn block(&self, h: &Hash256) -> Result<Option<Block>, StoreError> {
        match self.blocks.get(h.0)? {
            Some(v) => Ok(Some(dec("blocks", &h.0, &v)?)),
            None => Ok(None),
        }
    }

    /// The main-chain hash at `height`.
    pub fn main_hash(&self, height: u64) -> Result<Option<Hash256>, StoreError> {
        Ok(self.main.get(height_key(height))?.and_then(|v| hash_from_key(&v)))
    }

    /// A stored undo record.
    pub fn undo(&self, h: &Hash256) -> Result<Option<Undo>, StoreError> {
        match self.undo.get(h.0)? {
            Some(v) => Ok(Some(dec("undo", &h.0, &v)?)),
            None => Ok(None),
        }
    }

    /// Every index entry.
    pub fn load_index(&self) -> Result<HashMap<Hash256, IndexEntry>, StoreError> {
        let mut out = HashMap::new();
        for kv in self.index.iter() {
            let (k, v) = kv?;
            let h = hash_from_key(&k)
                .ok_or_else(|| StoreError::Inconsistent(format!("index key {} is not a hash", hex::encode(&k))))?;
            out.insert(h, dec("index", &k, &v)?);
        }
        Ok(out)
    }

    /// The UTXO set, task registry and specs.
    #[allow(clippy::type_complexity)]
    pub fn load_state(
        &self,
    ) -> Result<(HashMap<OutPoint, UtxoEntry>, HashMap<Hash256, TaskState>, HashMap<Hash256, TaskSpec>), StoreError>
    {
        let mut utxos = HashMap::new();
        for kv in self.utxo.iter() {
            let (k, v) = kv?;
            let o = outpoint_from_key(&k)
                .ok_or_else(|| StoreError::Inconsistent(format!("utxo key {} is not an outpoint", hex::encode(&k))))?;
            utxos.insert(o, dec("utxo", &k, &v)?);
        }
        let mut tasks = HashMap::new();
        for kv in self.tasks.iter() {
            let (k, v) = kv?;
            let h = hash_from_key(&k).ok_or_else(|| StoreError::Inconsistent("task key is not a hash".into()))?;
            tasks.insert(h, dec("tasks", &k, &v)?);
        }
        let mut specs = HashMap::new();
        for kv in self.task_data.iter() {
            let (k, v) = kv?;
            let h = hash_from_key(&k).ok_or_else(|| StoreError::Inconsistent("task_data key is not a hash".into()))?;
            specs.insert(h, dec("task_data", &k, &v)?);
        }
        Ok((utxos, tasks, specs))
    }

    /// Writes a fresh chain's genesis: block, index entry, main[0], the genesis tasks and
    /// specs, their costs, the tip, in one transaction.
    pub fn init_genesis(
        &self,
        genesis: &Block,
        entry: &IndexEntry,
        delta: &Delta,
        costs: &[(Hash256, u64)],
    ) -> Result<(), StoreError> {
        let h = genesis.hash();
        (&self.blocks, &self.index, &self.main, &self.tasks, &self.task_data, &self.meta, &self.costs)
            .transaction(|(blocks, index, main, tasks, task_data, meta, cost_t)| {
                for (id, c) in costs {
                    cost_t.insert(&id.0, &c.to_le_bytes())?;
                }
                blocks.insert(&h.0, enc(genesis))?;
                index.insert(&h.0, enc(entry))?;
                main.insert(&height_key(0), &h.0)?;
                for (id, t) in &delta.tasks {
                    tasks.insert(&id.0, enc(t))?;
                }
                for (id, s) in &delta.specs {
                    task_data.insert(&id.0, enc(s))?;
                }
                meta.insert(META_GENESIS, &h.0)?;
                meta.insert(META_TIP, &h.0)?;
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(tx_err)?;
        self.flush()
    }

    /// Connects block `h` at `height`: applies the delta to the UTXO set and tasks, stores
    /// the undo record and the index entry, sets main[height] and the tip — one
    /// transaction, then a flush.
    ///
    /// Also points `txindex[txid]` at `h` for each of `txids` (the block's transactions).
    /// Entries of disconnected blocks are not removed: readers check that the block is on
    /// the main chain, and a later connect of the same txid overwrites the entry.
    pub fn connect(
        &self,
        h: &Hash256,
        height: u64,
        entry: &IndexEntry,
        undo: &Undo,
        delta: &Delta,
        txids: &[Hash256],
    ) -> Result<(), StoreError> {
        let undo_bytes = enc(undo);
        let entry_bytes = enc(entry);
        (&self.utxo, &self.tasks, &self.task_data, &self.undo, &self.index, &self.main, &self.meta, &self.txindex)
            .transaction(|(utxo, tasks, task_data, undo_t, index, main, meta, txindex)| {
                for t in txids {
                    txindex.insert(&t.0, &h.0)?;
                }
                for o in &delta.spent {
                    utxo.remove(&outpoint_key(o)[..])?;
                }
                for (o, e) in &delta.created {
                    utxo.insert(&outpoint_key(o)[..], enc(e))?;
                }
                for (id, t) in &delta.tasks {
                    tasks.insert(&id.0, enc(t))?;
                }
                for (id, s) in &delta.specs {
                    task_data.insert(&id.0, enc(s))?;
                }
                undo_t.insert(&h.0, undo_bytes.clone())?;
                index.insert(&h.0, entry_bytes.clone())?;
                main.insert(&height_key(height), &h.0)?;
                meta.insert(META_TIP, &h.0)?;
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(tx_err)?;
        self.flush()
    }

    /// Disconnects the tip at `height` back to `parent`, restoring what `undo` recorded —
    /// one transaction, then a flush. (The block and its undo record stay stored: a later
    /// reorg may connect it again.)
    pub fn disconnect(&self, height: u64, parent: &Hash256, undo: &Undo) -> Result<(), StoreError> {
        (&self.utxo, &self.tasks, &self.task_data, &self.main, &self.meta)
            .transaction(|(utxo, tasks, task_data, main, meta)| {
                for o in &undo.created {
                    utxo.remove(&outpoint_key(o)[..])?;
                }
                for (o, e) in &undo.spent {
                    utxo.insert(&outpoint_key(o)[..], enc(e))?;
                }
                for (id, before) in &undo.tasks {
                    match before {
                        Some(t) => {
                            tasks.insert(&id.0, enc(t))?;
                        }
                        None => {
                            tasks.remove(&id.0)?;
                            task_data.remove(&id.0)?;
                        }
                    }
                }
                main.remove(&height_key(height))?;
                meta.insert(META_TIP, &parent.0)?;
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(tx_err)?;
        self.flush()
    }

    /// The block that last connected transaction `txid` (check it is on the main chain).
    pub fn tx_block(&self, txid: &Hash256) -> Result<Option<Hash256>, StoreError> {
        Ok(self.txindex.get(txid.0)?.and_then(|v| hash_from_key(&v)))
    }

    /// Bans `peer` until unix time `until` (persisted).
    pub fn put_ban(&self, peer: &str, until: u64) -> Result<(), StoreError> {
        let mut k = BAN_PREFIX.to_vec();
        k.extend_from_slice(peer.as_bytes());
        self.meta.insert(k, &until.to_le_bytes())?;
        self.flush()
    }

    /// Lifts a ban.
    pub fn remove_ban(&self, peer: &str) -> Result<(), StoreError> {
        let mut k = BAN_PREFIX.to_vec();
        k.extend_from_slice(peer.as_bytes());
        self.meta.remove(k)?;
        self.flush()
    }

    /// Every ban: `(peer, until)`.
    pub fn bans(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.meta.scan_prefix(BAN_PREFIX) {
            let (k, v) = kv?;
            let peer = String::from_utf8_lossy(&k[BAN_PREFIX.len()..]).into_owned();
            let until = v.as_ref().try_into().map(u64::from_le_bytes).unwrap_or(0);
            out.push((peer, until));
        }
        Ok(out)
    }
}

fn tx_err(e: TransactionError<()>) -> StoreError {
    match e {
        TransactionError::Storage(e) => StoreError::Sled(e),
        TransactionError::Abort(()) => StoreError::Inconsistent("transaction aborted".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_store_is_refused_and_one_just_closed_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path()).err().expect("a store held open cannot be opened again");
        assert!(err.to_string().contains("lock"), "{err}");
        drop(s);
        // Reopening at once waits out sled's flusher thread (spacejam/sled#1234).
        for _ in 0..10 {
            drop(Store::open(dir.path()).unwrap());
        }
    }
}
