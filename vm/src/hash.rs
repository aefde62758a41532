//! Hashing primitives of the state commitment: SHA3-256 with a one-byte domain tag per node kind,
//! and fixed-depth binary Merkle trees whose absent leaves are a kind's "empty" leaf.
//!
//! Everything here is `no_std` + `alloc`: it is shared by the prover and the on-chain verifier.

use alloc::vec::Vec;
use sha3::{Digest, Sha3_256};

/// A 32-byte SHA3-256 digest.
pub type Hash = [u8; 32];

/// The all-zero hash: the commitment to an empty hash chain.
pub const ZERO: Hash = [0u8; 32];

/// Domain-separation tags: the first byte hashed for each kind of node (see docs/state-root.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Tag {
    /// A 4 KiB memory page leaf (also an input-blob chunk leaf).
    Page = 0x01,
    /// An internal node of any binary Merkle tree.
    Node = 0x02,
    /// A link of an operand-stack hash chain.
    Operand = 0x03,
    /// A slot leaf: a local, a global or a table element.
    Slot = 0x04,
    /// A suspended call frame.
    Frame = 0x05,
    /// A link of the frame-stack hash chain.
    FrameLink = 0x06,
    /// One memory: size, maximum and page-tree root.
    Memory = 0x07,
    /// One table: type, size, maximum and element-tree root.
    Table = 0x08,
    /// The machine state header: the state root.
    State = 0x09,
    /// A link of a hash chain over memories or tables (in address order).
    ListLink = 0x0A,
    /// The dropped flags of data and element segments.
    Dropped = 0x0B,
    /// A code-tree leaf: one encoded instruction.
    Instr = 0x0C,
    /// A function-table leaf.
    Func = 0x0D,
    /// The program commitment.
    Program = 0x0E,
    /// One data segment: length and chunk-tree root.
    Data = 0x0F,
    /// One element segment: length and item-tree root.
    Elem = 0x10,
    /// One input blob: length and chunk-tree root.
    Blob = 0x11,
    /// The task output: length and fixed-height page-tree root.
    Output = 0x12,
    /// The input set: blob count and blob-tree root.
    Inputs = 0x13,
    /// The guest I/O component of the state.
    Io = 0x14,
    /// A program's identity: its commitment's hash and its initial state header.
    ProgramId = 0x15,
}

/// SHA3-256 of `tag` followed by `parts`.
#[inline]
pub fn hash_parts(tag: Tag, parts: &[&[u8]]) -> Hash {
    let mut h = Sha3_256::new();
    h.update([tag as u8]);
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// An internal Merkle node.
#[inline]
pub fn node(left: &Hash, right: &Hash) -> Hash {
    hash_parts(Tag::Node, &[left, right])
}

/// The leaf of a 16-byte slot (local, global, table element).
#[inline]
pub fn slot_leaf(slot: u128) -> Hash {
    hash_parts(Tag::Slot, &[&slot.to_le_bytes()])
}

/// The leaf of a 4 KiB page.
#[inline]
pub fn page_leaf(page: &[u8]) -> Hash {
    hash_parts(Tag::Page, &[page])
}

/// Extends an operand-stack chain by pushing `slot` onto a stack whose chain is `prev`.
#[inline]
pub fn operand_link(prev: &Hash, slot: u128) -> Hash {
    hash_parts(Tag::Operand, &[&slot.to_le_bytes(), prev])
}

/// Hashes of empty subtrees: `empties(leaf, d)[l]` is the root of an all-empty tree of height `l`.
pub fn empties(empty_leaf: Hash, depth: u32) -> Vec<Hash> {
    let mut out = Vec::with_capacity(depth as usize + 1);
    out.push(empty_leaf);
    for _ in 0..depth {
        let e = *out.last().expect("starts with the leaf");
        out.push(node(&e, &e));
    }
    out
}

/// Tree height needed for `n` leaves (at least one leaf).
pub fn depth_for(n: u64) -> u32 {
    if n <= 1 { 0 } else { 64 - (n - 1).leading_zeros() }
}

/// Root of a fixed-depth tree over `leaves` (index order), padded with the empty leaf.
pub fn merkle_root(leaves: &[Hash], depth: u32, empty: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = leaves.to_vec();
    for l in 0..depth as usize {
        if level.is_empty() {
            return empty[depth as usize];
        }
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            let right = if pair.len() == 2 { pair[1] } else { empty[l] };
            next.push(node(&pair[0], &right));
        }
        level = next;
    }
    level.first().copied().unwrap_or(empty[depth as usize])
}

/// Sibling hashes from leaf `index` up to the root of a fixed-depth tree over `leaves`.
pub fn merkle_path(leaves: &[Hash], depth: u32, empty: &[Hash], index: u64) -> Vec<Hash> {
    let mut path = Vec::with_capacity(depth as usize);
    let mut level: Vec<Hash> = leaves.to_vec();
    let mut idx = index as usize;
    for e in &empty[..depth as usize] {
        let sib = idx ^ 1;
        path.push(level.get(sib).copied().unwrap_or(*e));
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            let right = if pair.len() == 2 { pair[1] } else { *e };
            next.push(node(&pair[0], &right));
        }
        level = next;
        idx >>= 1;
    }
    path
}

/// The root implied by `leaf` at `index` with sibling `path` (bottom-up).
pub fn root_from_path(leaf: Hash, index: u64, path: &[Hash]) -> Hash {
    let mut h = leaf;
    let mut idx = index;
    for sib in path {
        h = if idx & 1 == 0 { node(&h, sib) } else { node(sib, &h) };
        idx >>= 1;
    }
    h
}

/// A Merkle root built one leaf at a time in `O(depth)` memory: for work that is split into bounded pieces
/// (registration on the IC hashes a large code tree over several messages). Its [`MerkleFrontier::root`] over
/// the leaves pushed equals [`merkle_root`] over the same leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MerkleFrontier {
    /// `pending[l]`: the root of a complete subtree of `2^l` leaves awaiting its right sibling (present exactly
    /// when bit `l` of the leaf count is set); higher levels lie to the left of lower ones.
    pending: Vec<Option<Hash>>,
    count: u64,
}

impl MerkleFrontier {
    /// An empty frontier.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves pushed so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no leaf was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends the next leaf.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut l = 0;
        while let Some(left) = self.pending.get_mut(l).and_then(Option::take) {
            h = node(&left, &h);
            l += 1;
        }
        if l == self.pending.len() {
            self.pending.push(Some(h));
        } else {
            self.pending[l] = Some(h);
        }
        self.count += 1;
    }

    /// The root of the tree of height `depth` (with empty-subtree hashes `empty`, at least `depth + 1` of them)
    /// over the leaves pushed, padded with the empty leaf; `None` if more than `2^depth` leaves were pushed.
    pub fn root(&self, depth: u32, empty: &[Hash]) -> Option<Hash> {
        if depth >= 64 || self.count > 1u64 << depth {
            return None;
        }
        if self.count == 1u64 << depth {
            return self.pending.get(depth as usize).copied().flatten();
        }
        // Fold from the bottom: `right` is the subtree of height `l` holding the last leaves (None: all padding).
        let mut right: Option<Hash> = None;
        for (l, e) in empty.iter().enumerate().take(depth as usize) {
            right = match (self.pending.get(l).copied().flatten(), right) {
                (Some(left), r) => Some(node(&left, &r.unwrap_or(*e))),
                (None, Some(r)) => Some(node(&r, e)),
                (None, None) => None,
            };
        }
        Some(right.unwrap_or(empty[depth as usize]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_roots_equal_merkle_roots() {
        for n in 0usize..40 {
            let leaves: Vec<Hash> = (0..n as u128).map(|i| slot_leaf(i * 7 + 1)).collect();
            let mut f = MerkleFrontier::new();
            leaves.iter().for_each(|l| f.push(*l));
            assert_eq!(f.len(), n as u64);
            for d in depth_for(n as u64)..depth_for(n as u64) + 3 {
                let empty = empties(slot_leaf(0), d);
                assert_eq!(f.root(d, &empty), Some(merkle_root(&leaves, d, &empty)), "{n} leaves, height {d}");
            }
            if n > 1 {
                let d = depth_for(n as u64) - 1;
                assert_eq!(f.root(d, &empties(slot_leaf(0), d)), None, "{n} leaves do not fit height {d}");
            }
        }
    }

    #[test]
    fn materialised_tree_matches_functions() {
        for n in [0usize, 1, 2, 3, 5, 8, 13] {
            let leaves: Vec<Hash> = (0..n as u128).map(slot_leaf).collect();
            let d = depth_for(n as u64);
            let empty = empties(slot_leaf(0), d);
            let t = MerkleTree::new(leaves.clone(), slot_leaf(0));
            assert_eq!(t.root(), merkle_root(&leaves, d, &empty));
            for i in 0..(1u64 << d) {
                assert_eq!(t.path(i), merkle_path(&leaves, d, &empty, i));
            }
        }
    }

    #[test]
    fn paths_verify_and_padding_is_empty_leaf() {
        let empty = empties(slot_leaf(0), 3);
        let leaves: Vec<Hash> = (1..=5u128).map(slot_leaf).collect();
        let root = merkle_root(&leaves, 3, &empty);
        for i in 0..8u64 {
            let leaf = leaves.get(i as usize).copied().unwrap_or(empty[0]);
            let path = merkle_path(&leaves, 3, &empty, i);
            assert_eq!(root_from_path(leaf, i, &path), root, "leaf {i}");
        }
        // A tree over no leaves is the empty tree; explicit empty leaves give the same root.
        assert_eq!(merkle_root(&[], 3, &empty), empty[3]);
        let mut padded = leaves.clone();
        padded.extend([empty[0]; 3]);
        assert_eq!(merkle_root(&padded, 3, &empty), root);
        assert_eq!(depth_for(0), 0);
        assert_eq!(depth_for(1), 0);
        assert_eq!(depth_for(2), 1);
        assert_eq!(depth_for(5), 3);
    }
}

/// A fully materialised fixed-depth Merkle tree, for producing many paths of one static tree.
#[derive(Clone, Debug)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
    empty: Vec<Hash>,
}

impl MerkleTree {
    /// Builds the tree of height `depth_for(leaves.len())` over `leaves`, padded with `empty_leaf`.
    pub fn new(leaves: Vec<Hash>, empty_leaf: Hash) -> Self {
        let depth = depth_for(leaves.len() as u64);
        let empty = empties(empty_leaf, depth);
        let mut levels = Vec::with_capacity(depth as usize + 1);
        levels.push(leaves);
        for l in 0..depth as usize {
            let prev = &levels[l];
            let next: Vec<Hash> = prev.chunks(2).map(|pair| node(&pair[0], pair.get(1).unwrap_or(&empty[l]))).collect();
            levels.push(next);
        }
        Self { levels, empty }
    }

    /// The tree's height.
    pub fn depth(&self) -> u32 {
        (self.levels.len() - 1) as u32
    }

    /// The root.
    pub fn root(&self) -> Hash {
        let d = self.levels.len() - 1;
        self.levels[d].first().copied().unwrap_or(self.empty[d])
    }

    /// Siblings of leaf `index`, bottom-up.
    pub fn path(&self, index: u64) -> Vec<Hash> {
        let mut idx = index as usize;
        let mut out = Vec::with_capacity(self.levels.len() - 1);
        for l in 0..self.levels.len() - 1 {
            out.push(self.levels[l].get(idx ^ 1).copied().unwrap_or(self.empty[l]));
            idx >>= 1;
        }
        out
    }
}
