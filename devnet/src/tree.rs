//! The certified state tree: a labeled tree, its hash-tree digest (IC interface specification, "Certification")
//! and witnesses (pruned hash trees revealing chosen paths, and proving the absence of missing labels).
//!
//! A subtree's children, sorted by label, are arranged as a balanced binary tree of `Fork`s over `Labeled`
//! nodes; any arrangement that keeps the labels in order is valid for a verifier, which only relies on the order.

use std::collections::BTreeMap;

use ciborium::value::Value;
use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// A labeled tree: the state the devnet certifies.
#[derive(Clone, Debug)]
pub enum LabeledTree {
    Leaf(Vec<u8>),
    SubTree(BTreeMap<Vec<u8>, LabeledTree>),
}

impl Default for LabeledTree {
    fn default() -> Self {
        LabeledTree::SubTree(BTreeMap::new())
    }
}

impl LabeledTree {
    /// Inserts a leaf at `path`, creating subtrees as needed (replacing a leaf on the way).
    pub fn insert(&mut self, path: &[&[u8]], value: Vec<u8>) {
        let mut node = self;
        for label in path {
            if let LabeledTree::Leaf(_) = node {
                *node = LabeledTree::default();
            }
            let LabeledTree::SubTree(children) = node else { unreachable!() };
            node = children.entry(label.to_vec()).or_default();
        }
        *node = LabeledTree::Leaf(value);
    }

    /// Inserts an empty subtree at `path` if nothing is there.
    pub fn ensure_subtree(&mut self, path: &[&[u8]]) {
        let mut node = self;
        for label in path {
            let LabeledTree::SubTree(children) = node else { return };
            node = children.entry(label.to_vec()).or_default();
        }
    }

    pub fn digest(&self) -> Hash {
        match self {
            LabeledTree::Leaf(v) => leaf_hash(v),
            LabeledTree::SubTree(children) => {
                let nodes: Vec<(&[u8], Hash)> = children.iter().map(|(l, t)| (l.as_slice(), t.digest())).collect();
                fork_digest(&nodes)
            }
        }
    }

    /// The hash tree revealing every path of `paths` that exists (whole subtrees where a path ends at a
    /// subtree), proving the absence of those that do not, with everything else pruned.
    pub fn witness(&self, paths: &[Vec<Vec<u8>>]) -> HashTree {
        let refs: Vec<&[Vec<u8>]> = paths.iter().map(|p| p.as_slice()).collect();
        self.witness_refs(&refs)
    }

    fn witness_refs(&self, paths: &[&[Vec<u8>]]) -> HashTree {
        if paths.iter().any(|p| p.is_empty()) {
            return self.full();
        }
        match self {
            LabeledTree::Leaf(v) => HashTree::Leaf(v.clone()),
            LabeledTree::SubTree(children) => {
                let entries: Vec<(&Vec<u8>, &LabeledTree)> = children.iter().collect();
                // For each child index: the sub-paths that go through it (None: only its label is revealed).
                let mut wanted: BTreeMap<usize, Vec<&[Vec<u8>]>> = BTreeMap::new();
                for path in paths {
                    let label = &path[0];
                    match entries.binary_search_by(|(l, _)| l.as_slice().cmp(label.as_slice())) {
                        Ok(i) => wanted.entry(i).or_default().push(&path[1..]),
                        Err(i) => {
                            // Absent: reveal the neighbours' labels so a verifier can see the gap.
                            if i > 0 {
                                wanted.entry(i - 1).or_default();
                            }
                            if i < entries.len() {
                                wanted.entry(i).or_default();
                            }
                        }
                    }
                }
                let hashes: Vec<Hash> = entries.iter().map(|(l, t)| labeled_hash(l, &t.digest())).collect();
                witness_range(&entries, &hashes, &wanted, 0, entries.len())
            }
        }
    }

    fn full(&self) -> HashTree {
        match self {
            LabeledTree::Leaf(v) => HashTree::Leaf(v.clone()),
            LabeledTree::SubTree(children) => {
                let entries: Vec<(&Vec<u8>, &LabeledTree)> = children.iter().collect();
                let all: BTreeMap<usize, Vec<&[Vec<u8>]>> = (0..entries.len()).map(|i| (i, vec![&[][..]])).collect();
                let hashes: Vec<Hash> = entries.iter().map(|(l, t)| labeled_hash(l, &t.digest())).collect();
                witness_range(&entries, &hashes, &all, 0, entries.len())
            }
        }
    }
}

fn witness_range(
    entries: &[(&Vec<u8>, &LabeledTree)],
    hashes: &[Hash],
    wanted: &BTreeMap<usize, Vec<&[Vec<u8>]>>,
    lo: usize,
    hi: usize,
) -> HashTree {
    if lo == hi {
        return HashTree::Empty;
    }
    if wanted.range(lo..hi).next().is_none() {
        return HashTree::Pruned(range_hash(hashes, lo, hi));
    }
    if hi - lo == 1 {
        let (label, child) = entries[lo];
        let sub = &wanted[&lo];
        let inner = if sub.is_empty() { HashTree::Pruned(child.digest()) } else { child.witness_refs(sub) };
        return HashTree::Labeled(label.clone(), Box::new(inner));
    }
    let mid = lo + (hi - lo).div_ceil(2);
    HashTree::Fork(Box::new((
        witness_range(entries, hashes, wanted, lo, mid),
        witness_range(entries, hashes, wanted, mid, hi),
    )))
}

/// The digest of the balanced fork tree over `hashes[lo..hi]` (each already a labeled-node hash).
fn range_hash(hashes: &[Hash], lo: usize, hi: usize) -> Hash {
    match hi - lo {
        0 => empty_hash(),
        1 => hashes[lo],
        _ => {
            let mid = lo + (hi - lo).div_ceil(2);
            fork_hash(&range_hash(hashes, lo, mid), &range_hash(hashes, mid, hi))
        }
    }
}

fn fork_digest(nodes: &[(&[u8], Hash)]) -> Hash {
    let hashes: Vec<Hash> = nodes.iter().map(|(l, h)| labeled_hash(l, h)).collect();
    range_hash(&hashes, 0, hashes.len())
}

/// A hash tree as sent to clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashTree {
    Empty,
    Fork(Box<(HashTree, HashTree)>),
    Labeled(Vec<u8>, Box<HashTree>),
    Leaf(Vec<u8>),
    Pruned(Hash),
}

impl HashTree {
    pub fn digest(&self) -> Hash {
        match self {
            HashTree::Empty => empty_hash(),
            HashTree::Fork(f) => fork_hash(&f.0.digest(), &f.1.digest()),
            HashTree::Labeled(l, t) => labeled_hash(l, &t.digest()),
            HashTree::Leaf(v) => leaf_hash(v),
            HashTree::Pruned(h) => *h,
        }
    }

    /// The CBOR form of the specification: `[0]`, `[1, l, r]`, `[2, label, t]`, `[3, value]`, `[4, hash]`.
    pub fn to_cbor(&self) -> Value {
        let n = |k: u64| Value::Integer(k.into());
        match self {
            HashTree::Empty => Value::Array(vec![n(0)]),
            HashTree::Fork(f) => Value::Array(vec![n(1), f.0.to_cbor(), f.1.to_cbor()]),
            HashTree::Labeled(l, t) => Value::Array(vec![n(2), Value::Bytes(l.clone()), t.to_cbor()]),
            HashTree::Leaf(v) => Value::Array(vec![n(3), Value::Bytes(v.clone())]),
            HashTree::Pruned(h) => Value::Array(vec![n(4), Value::Bytes(h.to_vec())]),
        }
    }

    /// Looks a path up in a witness: `Some(Some(v))` found leaf, `Some(None)` provably absent, `None` unknown.
    pub fn lookup(&self, path: &[&[u8]]) -> Option<Option<Vec<u8>>> {
        match path.split_first() {
            None => match self {
                HashTree::Leaf(v) => Some(Some(v.clone())),
                HashTree::Empty => Some(None),
                _ => None,
            },
            Some((label, rest)) => match self.find_label(label) {
                Find::Found(t) => t.lookup(rest),
                Find::Absent | Find::Less | Find::Greater => Some(None),
                Find::Unknown => None,
            },
        }
    }

    fn find_label(&self, label: &[u8]) -> Find<'_> {
        match self {
            HashTree::Labeled(l, t) => match label.cmp(l.as_slice()) {
                std::cmp::Ordering::Equal => Find::Found(t),
                std::cmp::Ordering::Less => Find::Less,
                std::cmp::Ordering::Greater => Find::Greater,
            },
            HashTree::Fork(f) => match f.0.find_label(label) {
                Find::Greater => match f.1.find_label(label) {
                    Find::Less => Find::Absent,
                    r => r,
                },
                Find::Unknown => match f.1.find_label(label) {
                    Find::Less => Find::Unknown,
                    r => r,
                },
                r => r,
            },
            HashTree::Pruned(_) => Find::Unknown,
            _ => Find::Absent,
        }
    }
}

enum Find<'a> {
    Found(&'a HashTree),
    Absent,
    Unknown,
    Less,
    Greater,
}

fn domain(h: &mut Sha256, sep: &str) {
    h.update([sep.len() as u8]);
    h.update(sep.as_bytes());
}

pub fn empty_hash() -> Hash {
    let mut h = Sha256::new();
    domain(&mut h, "ic-hashtree-empty");
    h.finalize().into()
}

pub fn fork_hash(l: &Hash, r: &Hash) -> Hash {
    let mut h = Sha256::new();
    domain(&mut h, "ic-hashtree-fork");
    h.update(l);
    h.update(r);
    h.finalize().into()
}

pub fn labeled_hash(label: &[u8], sub: &Hash) -> Hash {
    let mut h = Sha256::new();
    domain(&mut h, "ic-hashtree-labeled");
    h.update(label);
    h.update(sub);
    h.finalize().into()
}

pub fn leaf_hash(v: &[u8]) -> Hash {
    let mut h = Sha256::new();
    domain(&mut h, "ic-hashtree-leaf");
    h.update(v);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LabeledTree {
        let mut t = LabeledTree::default();
        for (i, label) in ["a", "c", "e", "g", "i"].iter().enumerate() {
            t.insert(&[b"x", label.as_bytes()], vec![i as u8]);
        }
        t.insert(&[b"time"], vec![1, 2, 3]);
        t.insert(&[b"x", b"c", b"deep"], b"d".to_vec());
        t
    }

    #[test]
    fn witness_digest_matches_and_reveals() {
        let t = sample();
        let root = t.digest();
        for paths in [
            vec![],
            vec![vec![b"time".to_vec()]],
            vec![vec![b"x".to_vec(), b"e".to_vec()]],
            vec![vec![b"x".to_vec(), b"b".to_vec()], vec![b"x".to_vec(), b"z".to_vec()]],
            vec![vec![b"x".to_vec()]],
            vec![vec![b"nothing".to_vec()]],
        ] {
            let w = t.witness(&paths);
            assert_eq!(w.digest(), root, "paths {paths:?}");
        }
        let w = t.witness(&[vec![b"x".to_vec(), b"e".to_vec()], vec![b"x".to_vec(), b"b".to_vec()]]);
        assert_eq!(w.lookup(&[b"x", b"e"]), Some(Some(vec![2])));
        assert_eq!(w.lookup(&[b"x", b"b"]), Some(None));
        assert_eq!(w.lookup(&[b"x", b"g"]), None);
        assert_eq!(w.lookup(&[b"time"]), None);
        let w = t.witness(&[vec![b"x".to_vec(), b"z".to_vec()], vec![b"a".to_vec()]]);
        assert_eq!(w.lookup(&[b"x", b"z"]), Some(None));
        assert_eq!(w.lookup(&[b"a"]), Some(None));
        let w = t.witness(&[vec![b"x".to_vec()]]);
        assert_eq!(w.lookup(&[b"x", b"c", b"deep"]), Some(Some(b"d".to_vec())));
        assert_eq!(w.lookup(&[b"x", b"i"]), Some(Some(vec![4])));
    }
}
