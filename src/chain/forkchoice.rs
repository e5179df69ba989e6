//! Fork choice: the block index (every header known, with height and cumulative work), the
//! best tip by most work (first seen wins ties), and the path between two tips.
//!
//! Pure bookkeeping: it does not validate blocks (callers mark them) and does no I/O.

use crate::chain::block::Header;
use crate::chain::params::MTP_WINDOW;
use crate::chain::target::{U256, chainwork, target_from_bits};
use crate::chain::validate::ParentContext;
use crate::hash::Hash256;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How far a block has been validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockStatus {
    /// Header and block passed the checks that need no state; not connected yet.
    Unconnected,
    /// Connected once (fully valid).
    Valid,
    /// Failed validation (or descends from a block that did).
    Invalid,
}

/// One known block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The header.
    pub header: Header,
    /// Height (genesis 0).
    pub height: u64,
    /// Cumulative chainwork, big-endian bytes.
    pub chainwork: [u8; 32],
    /// Validation status.
    pub status: BlockStatus,
    /// Arrival order (ties in work go to the lower).
    pub seq: u64,
    /// The time of this block's ancestor at height 1 (itself at height 1; 0 for genesis):
    /// the ASERT anchor of its descendants (DESIGN.md §6).
    pub block_one_time: u64,
}

impl IndexEntry {
    /// Cumulative chainwork.
    pub fn work(&self) -> U256 {
        U256::from_be_bytes(self.chainwork)
    }
}

/// A change of the best tip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TipChange {
    /// The tip stays.
    Unchanged,
    /// Blocks to disconnect (tip first) and to connect (oldest first).
    Reorg {
        /// Disconnect, from the old tip down to (excluding) the fork point.
        disconnect: Vec<Hash256>,
        /// Connect, from after the fork point up to the new tip.
        connect: Vec<Hash256>,
    },
}

/// Why a header cannot enter the index.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IndexError {
    /// The parent is unknown.
    #[error("parent {0} is not in the index")]
    UnknownParent(Hash256),
    /// The bits do not decode (validate first).
    #[error("bad bits {0:#010x}")]
    BadBits(u32),
}

/// Every known block.
#[derive(Clone, Debug)]
pub struct BlockIndex {
    entries: HashMap<Hash256, IndexEntry>,
    genesis: Hash256,
    next_seq: u64,
}

impl BlockIndex {
    /// An index holding only `genesis` (valid).
    pub fn new(genesis: &Header) -> BlockIndex {
        let hash = genesis.hash();
        let target = target_from_bits(genesis.bits).unwrap_or(U256::MAX);
        let entry = IndexEntry {
            header: *genesis,
            height: 0,
            chainwork: chainwork(target).to_be_bytes(),
            status: BlockStatus::Valid,
            seq: 0,
            block_one_time: 0,
        };
        BlockIndex { entries: HashMap::from([(hash, entry)]), genesis: hash, next_seq: 1 }
    }

    /// Rebuilds an index from stored entries (the store's load path).
    pub fn from_entries(genesis: Hash256, entries: HashMap<Hash256, IndexEntry>) -> BlockIndex {
        let next_seq = entries.values().map(|e| e.seq + 1).max().unwrap_or(1);
        BlockIndex { entries, genesis, next_seq }
    }

    /// The genesis hash.
    pub fn genesis(&self) -> Hash256 {
        self.genesis
    }

    /// An entry.
    pub fn get(&self, h: &Hash256) -> Option<&IndexEntry> {
        self.entries.get(h)
    }

    /// Whether `h` is known.
    pub fn contains(&self, h: &Hash256) -> bool {
        self.entries.contains_key(h)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Never empty (genesis).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All entries.
    pub fn entries(&self) -> &HashMap<Hash256, IndexEntry> {
        &self.entries
    }

    /// Adds a header whose parent is known (idempotent). Returns the entry.
    pub fn insert(&mut self, header: &Header) -> Result<&IndexEntry, IndexError> {
        let hash = header.hash();
        if self.entries.contains_key(&hash) {
            return Ok(&self.entries[&hash]);
        }
        let parent = self.entries.get(&header.prev).ok_or(IndexError::UnknownParent(header.prev))?;
        let target = target_from_bits(header.bits).map_err(|_| IndexError::BadBits(header.bits))?;
        let work = parent.work().saturating_add(chainwork(target));
        let status =
            if parent.status == BlockStatus::Invalid { BlockStatus::Invalid } else { BlockStatus::Unconnected };
        let entry = IndexEntry {
            header: *header,
            height: parent.height + 1,
            chainwork: work.to_be_bytes(),
            status,
            seq: self.next_seq,
            block_one_time: if parent.height == 0 { header.time } else { parent.block_one_time },
        };
        self.next_seq += 1;
        self.entries.insert(hash, entry);
        Ok(&self.entries[&hash])
    }

    /// Marks a block valid (after it connected).
    pub fn mark_valid(&mut self, h: &Hash256) {
        if let Some(e) = self.entries.get_mut(h) {
            e.status = BlockStatus::Valid;
        }
    }

    /// Marks a block invalid, and every known descendant with it. Returns the hashes
    /// marked.
    pub fn mark_invalid(&mut self, h: &Hash256) -> Vec<Hash256> {
        let mut marked = vec![*h];
        if let Some(e) = self.entries.get_mut(h) {
            e.status = BlockStatus::Invalid;
        }
        // Descendants: any entry whose ancestry passes through h.
        let hashes: Vec<Hash256> = self.entries.keys().copied().collect();
        for x in hashes {
            if x != *h && self.is_ancestor(h, &x) {
                if let Some(e) = self.entries.get_mut(&x) {
                    e.status = BlockStatus::Invalid;
                }
                marked.push(x);
            }
        }
        marked
    }

    /// The ancestor of `h` at `height` (or `h` itself).
    pub fn ancestor(&self, h: &Hash256, height: u64) -> Option<Hash256> {
        let mut cur = *h;
        loop {
            let e = self.entries.get(&cur)?;
            if e.height == height {
                return Some(cur);
            }
            if e.height < height {
                return None;
            }
            cur = e.header.prev;
        }
    }

    /// True when `a` is an ancestor of (or equal to) `b`.
    pub fn is_ancestor(&self, a: &Hash256, b: &Hash256) -> bool {
        match self.entries.get(a) {
            Some(ea) => self.ancestor(b, ea.height) == Some(*a),
            None => false,
        }
    }

    /// The context a child of `h` is checked against: height, time and median time past.
    pub fn parent_context(&self, h: &Hash256) -> Option<ParentContext> {
        let e = self.entries.get(h)?;
        let mut times = Vec::with_capacity(MTP_WINDOW);
        let mut cur = Some(*h);
        while let Some(c) = cur {
            if times.len() == MTP_WINDOW {
                break;
            }
            let ce = self.entries.get(&c)?;
            times.push(ce.header.time);
            cur = (ce.height > 0).then_some(ce.header.prev);
        }
        times.sort_unstable();
        Some(ParentContext {
            height: e.height,
            time: e.header.time,
            median_time_past: times[times.len() / 2],
            block_one_time: (e.height > 0).then_some(e.block_one_time),
        })
    }

    /// The best candidate tip: most chainwork among blocks not marked invalid, the
    /// first seen on ties.
    pub fn best(&self) -> Hash256 {
        let mut best = self.genesis;
        let mut best_key = (self.entries[&self.genesis].work(), std::cmp::Reverse(0u64));
        for (h, e) in &self.entries {
            if e.status == BlockStatus::Invalid {
                continue;
            }
            let key = (e.work(), std::cmp::Reverse(e.seq));
            if key > best_key {
                best_key = key;
                best = *h;
            }
        }
        best
    }

    /// The path from tip `from` to tip `to`.
    pub fn path(&self, from: &Hash256, to: &Hash256) -> Option<TipChange> {
        if from == to {
            return Some(TipChange::Unchanged);
        }
        let (mut a, mut b) = (*from, *to);
        let (mut disconnect, mut connect) = (Vec::new(), Vec::new());
        let mut ha = self.entries.get(&a)?.height;
        let mut hb = self.entries.get(&b)?.height;
        while ha > hb {
            disconnect.push(a);
            a = self.entries.get(&a)?.header.prev;
            ha -= 1;
        }
        while hb > ha {
            connect.push(b);
            b = self.entries.get(&b)?.header.prev;
            hb -= 1;
        }
        while a != b {
            disconnect.push(a);
            connect.push(b);
            a = self.entries.get(&a)?.header.prev;
            b = self.entries.get(&b)?.header.prev;
        }
        connect.reverse();
        Some(TipChange::Reorg { disconnect, connect })
    }

    /// Block locator of `tip` for sync: hashes at exponentially growing distances.
    pub fn locator(&self, tip: &Hash256) -> Vec<Hash256> {
        let mut out = Vec::new();
        let Some(e) = self.entries.get(tip) else { return out };
        let mut height = e.height;
        let mut step = 1u64;
        loop {
            if let Some(h) = self.ancestor(tip, height) {
                out.push(h);
            }
            if height == 0 {
                break;
            }
            if out.len() >= 10 {
                step *= 2;
            }
            height = height.saturating_sub(step);
        }
        out
    }
}
