//! Segment-boundary roots of the fast engine, optionally pipelined onto a second thread.
//!
//! A boundary's root needs the guest memory's page tree, which is the expensive part (SHA3 over every changed
//! 4 KiB page); everything else in the header (globals, I/O, status) is a few hashes. [`BoundaryHasher`]
//! keeps the page tree between boundaries and rehashes only the pages whose bytes differ from the previous
//! boundary's snapshot. [`RootPipeline`] runs a `BoundaryHasher` on its own thread: at a boundary the engine
//! only copies the memory into a recycled buffer and hands it over with the rest of the header, then runs
//! the next segment while the thread hashes. A root is a pure function of the snapshot it is computed from,
//! and roots come back in submission order, so the result does not depend on thread timing.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::commit::PageLevels;
use crate::hash::{Hash, ZERO, page_leaf};
use crate::root::{PAGE_BYTES, StateHeader, list_link, memory_commitment, memory_empties};

/// Everything a boundary root needs: the memory bytes, plus the header with every field but `memories` set.
pub(crate) struct Snapshot {
    /// The guest memory at the boundary (a whole number of 64 KiB wasm pages).
    pub(crate) memory: Vec<u8>,
    /// The boundary's header; `memories` is filled in by the hasher.
    pub(crate) header: StateHeader,
}

/// The all-zero page: its leaf is the tree's empty leaf, so zero pages need no hashing.
static ZERO_PAGE: [u8; PAGE_BYTES] = [0u8; PAGE_BYTES];

/// Page `i` of `m`.
fn page(m: &[u8], i: usize) -> &[u8] {
    &m[i * PAGE_BYTES..(i + 1) * PAGE_BYTES]
}

/// Computes successive boundary roots of one guest, rehashing only changed pages.
pub(crate) struct BoundaryHasher {
    mem_max: Option<u32>,
    pages: PageLevels,
    /// The memory of the previous boundary (to find changed pages).
    prev: Vec<u8>,
    empty: Vec<Hash>,
}

impl BoundaryHasher {
    /// A hasher with no previous boundary, for a memory with maximum `mem_max` pages.
    pub(crate) fn new(mem_max: Option<u32>) -> Self {
        Self { mem_max, pages: PageLevels::default(), prev: Vec::new(), empty: memory_empties() }
    }

    /// The root of `snap`. Returns it with a spare buffer (the previous boundary's memory, which `snap`'s
    /// memory replaces), so callers can reuse allocations instead of faulting in fresh pages every boundary.
    pub(crate) fn root(&mut self, snap: Snapshot) -> (Hash, Vec<u8>) {
        let Snapshot { memory, mut header } = snap;
        let n = memory.len() / PAGE_BYTES;
        let known = self.pages.len().min(self.prev.len() / PAGE_BYTES);
        // A page changed if it is new or its bytes differ: a memcmp per page, far cheaper than its SHA3.
        let dirty: Vec<usize> = (0..n).filter(|&i| i >= known || page(&memory, i) != page(&self.prev, i)).collect();
        let empty0 = self.empty[0];
        let tree = self.pages.update(
            n,
            dirty,
            |i| {
                let p = page(&memory, i);
                // Fresh pages after a memory.grow (and pages a guest cleared) are all zero.
                if p == ZERO_PAGE { empty0 } else { page_leaf(p) }
            },
            &self.empty,
        );
        let wasm_pages = (memory.len() as u64 / crate::limits::WASM_PAGE) as u32;
        header.memories = list_link(&ZERO, &memory_commitment(wasm_pages, self.mem_max, &tree));
        let spare = std::mem::replace(&mut self.prev, memory);
        (header.root(), spare)
    }
}

/// A [`BoundaryHasher`] on its own thread, fed snapshots in boundary order.
pub(crate) struct RootPipeline {
    jobs: Option<SyncSender<Snapshot>>,
    spares: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<Vec<Hash>>>,
}

impl RootPipeline {
    /// Starts the hashing thread for a memory with maximum `mem_max` pages (fails only if the OS cannot
    /// start a thread).
    pub(crate) fn new(mem_max: Option<u32>) -> std::io::Result<Self> {
        // One queued snapshot at most: if hashing falls behind, the engine waits rather than piling up copies
        // of the memory (at most four buffers exist: the hasher's previous and current one, one queued, one
        // being filled).
        let (jobs, rx) = sync_channel::<Snapshot>(1);
        let (spare_tx, spares) = sync_channel::<Vec<u8>>(4);
        let thread = std::thread::Builder::new().name("opml-roots".into()).spawn(move || {
            let mut hasher = BoundaryHasher::new(mem_max);
            let mut roots = Vec::new();
            for snap in rx {
                let len = snap.memory.len();
                let (root, mut spare) = hasher.root(snap);
                roots.push(root);
                // Fault the spare's pages in here rather than in the engine's copy: a buffer that must grow
                // (the memory grew, or it is the first) costs page faults on first touch, which this thread
                // can take while the engine runs.
                if spare.capacity() < len {
                    spare.clear();
                    spare.resize(len, 0);
                }
                // The engine may have stopped taking spares (or be gone); a spare is only an allocation.
                let _ = spare_tx.try_send(spare);
            }
            roots
        })?;
        Ok(Self { jobs: Some(jobs), spares, thread: Some(thread) })
    }

    /// Queues the boundary with memory `memory` and header `header` (all fields but `memories`). Copies
    /// the memory once, into a recycled buffer when one is available.
    pub(crate) fn submit(&mut self, memory: &[u8], header: StateHeader) {
        // No spare back yet (the thread is behind) or none left: a fresh buffer.
        let mut buf = self.spares.try_recv().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(memory);
        let jobs = self.jobs.as_ref().expect("pipeline not finished");
        if jobs.send(Snapshot { memory: buf, header }).is_err() {
            // The thread is gone, which only a panic in it can cause: surface that panic here.
            self.join();
            unreachable!("the root thread exited without panicking while jobs were open");
        }
    }

    /// Waits for every queued boundary and returns the roots, in submission order.
    pub(crate) fn finish(mut self) -> Vec<Hash> {
        self.join()
    }

    fn join(&mut self) -> Vec<Hash> {
        self.jobs = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(roots)) => roots,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Vec::new(),
        }
    }
}

impl Drop for RootPipeline {
    fn drop(&mut self) {
        // A run that ends early (an engine error) must not leave the thread running past it.
        if !std::thread::panicking() {
            self.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::WASM_PAGE;
    use crate::root::memory_tree_root;

    fn header(seed: u8) -> StateHeader {
        StateHeader {
            globals: [seed; 32],
            memories: [0xEE; 32],
            io: [seed.wrapping_mul(3); 32],
            ..crate::verify::NO_FRAME
        }
    }

    /// The root by definition: every page hashed, the whole tree built.
    fn from_scratch(memory: &[u8], mem_max: Option<u32>, mut h: StateHeader) -> Hash {
        let empty = memory_empties();
        let leaves: Vec<Hash> = memory.chunks(PAGE_BYTES).map(page_leaf).collect();
        let tree = memory_tree_root(&leaves, &empty);
        h.memories = list_link(&ZERO, &memory_commitment((memory.len() as u64 / WASM_PAGE) as u32, mem_max, &tree));
        h.root()
    }

    /// Boundaries of a memory that grows, has pages rewritten (some to the same bytes), cleared back to zero
    /// and left untouched: the incremental, pipelined and from-scratch roots agree, and differ per boundary.
    #[test]
    fn incremental_and_pipelined_roots_equal_roots_from_scratch() {
        let mut memory = vec![0u8; WASM_PAGE as usize];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut boundaries = Vec::new();
        for b in 0..12u8 {
            if b % 4 == 1 {
                memory.resize(memory.len() + WASM_PAGE as usize, 0);
            }
            for _ in 0..(b as usize * 7) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x % memory.len() as u64) as usize;
                memory[at] = (x >> 56) as u8;
            }
            if b == 6 {
                // A rewritten page that ends up as it was, and one cleared to zero.
                let p = PAGE_BYTES;
                let old = memory[p..2 * p].to_vec();
                memory[p..2 * p].fill(0xAB);
                memory[p..2 * p].copy_from_slice(&old);
                memory[3 * p..4 * p].fill(0);
            }
            boundaries.push((memory.clone(), header(b)));
        }
        let mem_max = Some(7);
        let expected: Vec<Hash> = boundaries.iter().map(|(m, h)| from_scratch(m, mem_max, *h)).collect();
        let mut hasher = BoundaryHasher::new(mem_max);
        let incremental: Vec<Hash> =
            boundaries.iter().map(|(m, h)| hasher.root(Snapshot { memory: m.clone(), header: *h }).0).collect();
        let mut pipeline = RootPipeline::new(mem_max).unwrap();
        for (m, h) in &boundaries {
            pipeline.submit(m, *h);
        }
        assert_eq!(incremental, expected);
        assert_eq!(pipeline.finish(), expected);
        let distinct: std::collections::BTreeSet<Hash> = expected.iter().copied().collect();
        assert_eq!(distinct.len(), boundaries.len());
    }
}
