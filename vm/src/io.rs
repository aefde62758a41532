//! Guest I/O (ABI v1): committed input blobs, the output byte string, the segment counter, and the
//! host-function ids the VM binds the `opml` imports to. `no_std` + `alloc`.
//!
//! Inputs are random-access blobs, each committed as `H(0x11, len u64 ‖ root over 4 KiB chunks)`;
//! the input root is `H(0x13, n_blobs u32 ‖ root over blob commitments)`. The output is a byte string
//! of at most [`MAX_OUTPUT`] bytes committed as `H(0x12, len u64 ‖ root of a height-8 tree over its
//! 4 KiB pages)` — also the claim's output hash, computable by anyone from the bytes alone.

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::hash::{Hash, MerkleTree, Tag, ZERO, empties, hash_parts, merkle_root, page_leaf};
use crate::root::PAGE_BYTES;

/// Largest `input_read` / `output_write` in one call (one step).
pub const MAX_IO: u32 = 4096;
/// Largest task output.
pub const MAX_OUTPUT: u64 = 1 << 20;
/// Height of the output page tree (2^8 pages of 4 KiB = 1 MiB).
pub const OUTPUT_TREE_DEPTH: u32 = 8;

/// First host id reserved for the VM's built-in functions; embedder host ids must be below it
/// (`u32::MAX` itself marks a wasm function in the function table, see `program::NO_HOST`).
pub const ABI_BASE: u32 = 0xFFFF_FF00;
/// `opml.input_len(blob: i32) -> i64`.
pub const ABI_INPUT_LEN: u32 = ABI_BASE;
/// `opml.input_read(blob: i32, offset: i64, dst: i32, len: i32) -> i32`.
pub const ABI_INPUT_READ: u32 = ABI_BASE + 1;
/// `opml.output_write(src: i32, len: i32)`.
pub const ABI_OUTPUT_WRITE: u32 = ABI_BASE + 2;
/// Any other function import of a guest: calling it traps with `UnsupportedImport`.
pub const ABI_STUB: u32 = ABI_BASE + 3;

/// The leaf of a 4 KiB chunk, zero-padded.
pub fn chunk_leaf(bytes: &[u8]) -> Hash {
    let mut page = [0u8; PAGE_BYTES];
    page[..bytes.len()].copy_from_slice(bytes);
    page_leaf(&page)
}

/// Commitment to one input blob.
pub fn blob_commitment(len: u64, chunks_root: &Hash) -> Hash {
    hash_parts(Tag::Blob, &[&len.to_le_bytes(), chunks_root])
}

/// The input root from the blob count and the root over blob commitments.
pub fn inputs_root(n_blobs: u32, blobs_tree: &Hash) -> Hash {
    hash_parts(Tag::Inputs, &[&n_blobs.to_le_bytes(), blobs_tree])
}

/// Commitment to an output of `len` bytes whose height-8 page tree has root `tree`.
pub fn output_hash(len: u64, tree: &Hash) -> Hash {
    hash_parts(Tag::Output, &[&len.to_le_bytes(), tree])
}

/// The I/O component of the state.
pub fn io_hash(input_root: &Hash, output_len: u64, output_tree: &Hash, segment: u64) -> Hash {
    hash_parts(Tag::Io, &[input_root, &output_len.to_le_bytes(), output_tree, &segment.to_le_bytes()])
}

/// Empty-subtree hashes of output page trees.
pub fn output_empties() -> Vec<Hash> {
    empties(page_leaf(&[0u8; PAGE_BYTES]), OUTPUT_TREE_DEPTH)
}

/// Root of the output page tree of `bytes`.
pub fn output_tree(bytes: &[u8]) -> Hash {
    let leaves: Vec<Hash> = bytes.chunks(PAGE_BYTES).map(chunk_leaf).collect();
    merkle_root(&leaves, OUTPUT_TREE_DEPTH, &output_empties())
}

/// The output hash of a task output (what a claim states).
pub fn output_commitment(bytes: &[u8]) -> Hash {
    output_hash(bytes.len() as u64, &output_tree(bytes))
}

/// One committed input blob.
#[derive(Clone, Debug)]
pub struct Blob {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The tree over its 4 KiB chunks.
    pub tree: MerkleTree,
}

impl Blob {
    /// Commits to `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        let leaves: Vec<Hash> = bytes.chunks(PAGE_BYTES).map(chunk_leaf).collect();
        let tree = MerkleTree::new(leaves, page_leaf(&[0u8; PAGE_BYTES]));
        Self { bytes, tree }
    }

    /// The blob's commitment.
    pub fn commitment(&self) -> Hash {
        blob_commitment(self.bytes.len() as u64, &self.tree.root())
    }

    /// The 4 KiB chunk `i`, zero-padded.
    pub fn chunk(&self, i: u32) -> Vec<u8> {
        let mut page = alloc::vec![0u8; PAGE_BYTES];
        let start = (i as usize * PAGE_BYTES).min(self.bytes.len());
        let end = (start + PAGE_BYTES).min(self.bytes.len());
        page[..end - start].copy_from_slice(&self.bytes[start..end]);
        page
    }
}

/// The committed inputs of a task.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// The blobs, by index.
    pub blobs: Vec<Blob>,
    /// The tree over blob commitments.
    pub tree: MerkleTree,
}

impl Inputs {
    /// Commits to the blobs.
    pub fn new(blobs: Vec<Vec<u8>>) -> Self {
        let blobs: Vec<Blob> = blobs.into_iter().map(Blob::new).collect();
        let tree = MerkleTree::new(blobs.iter().map(|b| b.commitment()).collect(), ZERO);
        Self { blobs, tree }
    }

    /// The input root.
    pub fn root(&self) -> Hash {
        inputs_root(self.blobs.len() as u32, &self.tree.root())
    }
}

/// The guest I/O state of a machine.
#[derive(Clone, Debug)]
pub struct Io {
    /// The committed inputs (shared between snapshots).
    pub inputs: Arc<Inputs>,
    /// The input root (cached).
    pub input_root: Hash,
    /// Output written so far.
    pub output: Vec<u8>,
    /// Segments completed.
    pub segment: u64,
    /// Machine step count when the current segment started.
    pub seg_start: u64,
    /// Function address of `opml_step`.
    pub entry: u32,
}

impl Io {
    /// I/O state before the first segment.
    pub fn new(inputs: Arc<Inputs>, entry: u32) -> Self {
        let input_root = inputs.root();
        Self { inputs, input_root, output: Vec::new(), segment: 0, seg_start: 0, entry }
    }

    /// The I/O component of the state root.
    pub fn hash(&self) -> Hash {
        io_hash(&self.input_root, self.output.len() as u64, &output_tree(&self.output), self.segment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_commitment_is_independent_of_write_boundaries() {
        let bytes: Vec<u8> = (0..9000u32).map(|i| (i % 251) as u8).collect();
        let tree = output_tree(&bytes);
        assert_eq!(output_commitment(&bytes), output_hash(9000, &tree));
        assert_ne!(output_commitment(&bytes[..8999]), output_commitment(&bytes));
        // An empty output is the empty tree.
        assert_eq!(output_tree(&[]), output_empties()[OUTPUT_TREE_DEPTH as usize]);
    }

    #[test]
    fn inputs_root_commits_to_every_blob() {
        let a = Inputs::new(alloc::vec![alloc::vec![1, 2, 3], alloc::vec![0; 5000]]);
        let b = Inputs::new(alloc::vec![alloc::vec![1, 2, 3], alloc::vec![0; 5001]]);
        let c = Inputs::new(alloc::vec![alloc::vec![1, 2, 3]]);
        assert_ne!(a.root(), b.root());
        assert_ne!(a.root(), c.root());
        assert_eq!(a.blobs[1].chunk(1).len(), PAGE_BYTES);
    }
}
