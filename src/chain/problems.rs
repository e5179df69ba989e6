//! The built problems of registered tasks, shared by every check that needs one.
//!
//! A task's consensus state is its spec (in [`State`](crate::chain::state::State)); the
//! built problem (data generated or copied, scanned for admission) is derived from it and
//! costs far more to make than to keep, so it is built once per task and handed out as an
//! `Arc`. The cache is behind a lock so that checks take `&State` and `&ProblemCache`, and
//! a step replay can hold a problem on another thread while the state moves on.
//!
//! Owns no rule: what a spec admits is `pouw::task`'s, and every entry is a pure function
//! of its spec, so dropping one (the cache is bounded) only costs a rebuild.

use crate::compute::problem::Problem;
use crate::hash::Hash256;
use crate::pouw::task::{TaskError, TaskSpec};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Bytes of task data kept built by default: 128 tasks at the 4 MiB data limit.
pub const DEFAULT_MAX_BYTES: usize = 512 << 20;

/// Built problems by task id, least recently used dropped first once their data exceeds
/// a byte bound (the entry just used is always kept).
pub struct ProblemCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Hash256, Entry>,
    bytes: usize,
    clock: u64,
}

struct Entry {
    problem: Arc<dyn Problem>,
    bytes: usize,
    used: u64,
}

impl Default for ProblemCache {
    fn default() -> Self {
        ProblemCache::new(DEFAULT_MAX_BYTES)
    }
}

impl std::fmt::Debug for ProblemCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("ProblemCache").field("tasks", &inner.entries.len()).field("bytes", &inner.bytes).finish()
    }
}

impl ProblemCache {
    /// An empty cache keeping at most `max_bytes` of task data built.
    pub fn new(max_bytes: usize) -> ProblemCache {
        ProblemCache { max_bytes, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the map consistent (every write is one
        // insert or remove), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The problem of task `id`, built from `spec` (without the admission limits: the spec
    /// was admitted when its task was registered) on first use.
    pub fn get(&self, id: &Hash256, spec: &TaskSpec) -> Result<Arc<dyn Problem>, TaskError> {
        if let Some(p) = self.cached(id) {
            return Ok(p);
        }
        // Built outside the lock: building scans (or generates) the whole data set.
        let problem: Arc<dyn Problem> = Arc::new(spec.build_unchecked()?);
        self.insert(*id, problem.clone(), spec.data_bytes());
        Ok(problem)
    }

    /// The problem of task `id` if it is built.
    pub fn cached(&self, id: &Hash256) -> Option<Arc<dyn Problem>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let e = inner.entries.get_mut(id)?;
        e.used = now;
        Some(e.problem.clone())
    }

    /// Keeps `problem` (whose data is `bytes` long) as task `id`'s, dropping the least
    /// recently used others while the total exceeds the bound.
    pub fn insert(&self, id: Hash256, problem: Arc<dyn Problem>, bytes: usize) {
        let mut inner = self.lock();
        inner.clock += 1;
        let used = inner.clock;
        if let Some(old) = inner.entries.insert(id, Entry { problem, bytes, used }) {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        while inner.bytes > self.max_bytes && inner.entries.len() > 1 {
            let oldest = inner.entries.iter().filter(|(k, _)| **k != id).min_by_key(|(_, e)| e.used).map(|(k, _)| *k);
            let Some(k) = oldest else { break };
            let e = inner.entries.remove(&k).expect("just found");
            inner.bytes -= e.bytes;
        }
    }

    /// How many problems are built.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::params::ChainParams;

    #[test]
    fn a_problem_is_built_once_and_the_least_recently_used_is_dropped_past_the_bound() {
        let p = ChainParams::dev();
        let spec = p.public_task.clone();
        let bytes = spec.data_bytes();
        let cache = ProblemCache::new(2 * bytes);
        let (a, b, c) = (Hash256([1; 32]), Hash256([2; 32]), Hash256([3; 32]));
        let first = cache.get(&a, &spec).unwrap();
        assert!(Arc::ptr_eq(&first, &cache.get(&a, &spec).unwrap()), "the second get is the cached problem");
        cache.get(&b, &spec).unwrap();
        cache.get(&a, &spec).unwrap(); // a is now more recent than b
        cache.get(&c, &spec).unwrap();
        assert_eq!(cache.len(), 2);
        assert!(cache.cached(&a).is_some() && cache.cached(&c).is_some());
        assert!(cache.cached(&b).is_none(), "b was the least recently used");
        // One entry larger than the bound is still kept (it is in use).
        let tiny = ProblemCache::new(1);
        tiny.get(&a, &spec).unwrap();
        tiny.get(&b, &spec).unwrap();
        assert_eq!(tiny.len(), 1);
        assert!(tiny.cached(&b).is_some());
    }
}
