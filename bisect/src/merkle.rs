//! The segment commitment: a binary SHA3-256 Merkle tree over the boundary roots `R_0..=R_N`.
//!
//! Leaves are padded to the next power of two with [`padding_leaf`]; leaf, inner node and padding hashes carry
//! distinct domain tags, so a leaf can never be confused with a node or a padding slot. Proofs list the sibling
//! hashes bottom-up and must have exactly [`depth`]`(leaf_count)` entries.

use alloc::vec;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::hash::Hash;

/// Domain tag of a leaf: `leaf = SHA3-256(LEAF_TAG || R_i)`.
pub const LEAF_TAG: &[u8] = b"opml-bisect/segments/leaf";
/// Domain tag of an inner node: `node = SHA3-256(NODE_TAG || left || right)`.
pub const NODE_TAG: &[u8] = b"opml-bisect/segments/node";
/// Domain tag of the padding leaf: `pad = SHA3-256(PAD_TAG)` fills slots `N+1 .. 2^depth`.
pub const PAD_TAG: &[u8] = b"opml-bisect/segments/pad";

/// The leaf-level hash of a boundary root.
pub fn leaf_hash(value: &Hash) -> Hash {
    Hash::tagged(LEAF_TAG, &[&value.0])
}

/// The hash of an inner node from its two children.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Hash::tagged(NODE_TAG, &[&left.0, &right.0])
}

/// The leaf-level hash of an empty (padding) slot.
pub fn padding_leaf() -> Hash {
    Hash::tagged(PAD_TAG, &[])
}

/// Tree depth for `leaf_count` leaves: `ceil(log2(leaf_count))` (0 for a single leaf).
pub fn depth(leaf_count: u64) -> u32 {
    if leaf_count <= 1 { 0 } else { 64 - (leaf_count - 1).leading_zeros() }
}

/// An inclusion proof: the sibling hashes from the leaf level up to just below the root.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub struct MerkleProof {
    /// Sibling hashes, bottom-up.
    pub siblings: Vec<Hash>,
}

/// Checks that `value` is leaf `index` of a tree of `leaf_count` leaves with root `root`.
pub fn verify(root: &Hash, leaf_count: u64, index: u64, value: &Hash, proof: &MerkleProof) -> bool {
    if index >= leaf_count || proof.siblings.len() != depth(leaf_count) as usize {
        return false;
    }
    let mut acc = leaf_hash(value);
    let mut pos = index;
    for sib in &proof.siblings {
        acc = if pos & 1 == 0 { node_hash(&acc, sib) } else { node_hash(sib, &acc) };
        pos >>= 1;
    }
    acc == *root
}

/// A fully materialised tree, for the party that commits (agents, tests): `O(leaves)` memory.
#[derive(Clone, Debug)]
pub struct MerkleTree {
    /// `levels[0]` are the padded leaf hashes, the last level is the root alone.
    levels: Vec<Vec<Hash>>,
    /// Number of real (unpadded) leaves.
    len: u64,
}

impl MerkleTree {
    /// Builds the tree over `values`, padded to a power of two (an empty tree is one padding leaf).
    pub fn new(values: &[Hash]) -> MerkleTree {
        let len = values.len() as u64;
        let width = 1usize << depth(len);
        let mut level: Vec<Hash> = values.iter().map(leaf_hash).collect();
        level.resize(width, padding_leaf());
        let mut levels = vec![level];
        while levels.last().map_or(0, Vec::len) > 1 {
            let prev = levels.last().expect("non-empty");
            let next = prev.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
            levels.push(next);
        }
        MerkleTree { levels, len }
    }

    /// The root hash.
    pub fn root(&self) -> Hash {
        self.levels.last().expect("at least one level")[0]
    }

    /// Number of real leaves.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the tree has no real leaves.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The inclusion proof of leaf `index`, or `None` if out of range.
    pub fn proof(&self, index: u64) -> Option<MerkleProof> {
        if index >= self.len {
            return None;
        }
        let mut pos = index as usize;
        let mut siblings = Vec::with_capacity(self.levels.len() - 1);
        for level in &self.levels[..self.levels.len() - 1] {
            siblings.push(level[pos ^ 1]);
            pos >>= 1;
        }
        Some(MerkleProof { siblings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| Hash::tagged(b"t", &[&i.to_le_bytes()])).collect()
    }

    #[test]
    fn depth_is_ceil_log2() {
        assert_eq!([1, 2, 3, 4, 5, 8, 9].map(depth), [0, 1, 2, 2, 3, 3, 4]);
        assert_eq!(depth(u64::MAX), 64);
    }

    #[test]
    fn proofs_verify_and_reject() {
        for n in 1..=17u64 {
            let vals = leaves(n);
            let tree = MerkleTree::new(&vals);
            for i in 0..n {
                let p = tree.proof(i).unwrap();
                assert!(verify(&tree.root(), n, i, &vals[i as usize], &p));
                // Wrong value, wrong index, wrong count, truncated proof: all rejected.
                assert!(!verify(&tree.root(), n, i, &Hash::ZERO, &p));
                if n > 1 {
                    assert!(!verify(&tree.root(), n, (i + 1) % n, &vals[i as usize], &p));
                }
                assert!(!verify(&tree.root(), n, n + i, &vals[i as usize], &p));
                let mut short = p.clone();
                if short.siblings.pop().is_some() {
                    assert!(!verify(&tree.root(), n, i, &vals[i as usize], &short));
                }
            }
            assert!(tree.proof(n).is_none());
        }
    }

    #[test]
    fn padding_is_documented_constant() {
        // Three leaves pad to four: root = node(node(l0, l1), node(l2, pad)).
        let vals = leaves(3);
        let expect = node_hash(
            &node_hash(&leaf_hash(&vals[0]), &leaf_hash(&vals[1])),
            &node_hash(&leaf_hash(&vals[2]), &padding_leaf()),
        );
        assert_eq!(MerkleTree::new(&vals).root(), expect);
        assert_ne!(padding_leaf(), leaf_hash(&Hash::ZERO));
    }
}
