//! The program commitment: what the one-step verifier checks an instruction (and any other static
//! data a step reads) against. The canister stores only this small struct per program.

use alloc::vec::Vec;

use crate::hash::{Hash, MerkleTree, Tag, depth_for, empties, hash_parts, merkle_path, page_leaf};
#[cfg(feature = "std")]
use crate::hash::{merkle_root, slot_leaf};
use crate::instr::OP_BYTES;
use crate::limits::Limits;
use crate::root::{PAGE_BYTES, slot_empties};
#[cfg(feature = "std")]
use crate::value::Slot;

/// Marks a function without a host id (a wasm function).
pub const NO_HOST: u32 = u32::MAX;

/// One function of the store as the verifier sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuncEntry {
    /// Canonical type id (for `call_indirect`).
    pub type_id: u32,
    /// Index of the function's first op in the code tree.
    pub code_base: u32,
    /// Number of ops.
    pub code_len: u32,
    /// Parameters.
    pub params: u32,
    /// Non-parameter locals.
    pub num_locals: u32,
    /// Results.
    pub results: u32,
    /// Highest operand-stack height of the body.
    pub max_height: u32,
    /// Host id for host functions, else [`NO_HOST`].
    pub host: u32,
}

impl FuncEntry {
    /// Encoded size.
    pub const BYTES: usize = 32;

    /// Fixed little-endian encoding.
    pub fn encode(&self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        let w = [
            self.type_id,
            self.code_base,
            self.code_len,
            self.params,
            self.num_locals,
            self.results,
            self.max_height,
            self.host,
        ];
        for (i, v) in w.iter().enumerate() {
            out[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Decodes [`FuncEntry::encode`].
    pub fn decode(b: &[u8; Self::BYTES]) -> Self {
        let w = |i: usize| u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        FuncEntry {
            type_id: w(0),
            code_base: w(1),
            code_len: w(2),
            params: w(3),
            num_locals: w(4),
            results: w(5),
            max_height: w(6),
            host: w(7),
        }
    }

    /// The function-table leaf.
    pub fn leaf(&self) -> Hash {
        hash_parts(Tag::Func, &[&self.encode()])
    }

    /// Locals of a frame of this function, parameters included.
    pub fn frame_locals(&self) -> u64 {
        self.params as u64 + self.num_locals as u64
    }
}

/// The code-tree leaf of an encoded op.
pub fn instr_leaf(encoded: &[u8; OP_BYTES]) -> Hash {
    hash_parts(Tag::Instr, &[encoded])
}

/// A data segment's commitment: its length and the root over its 4 KiB chunks (zero-padded).
pub fn data_commitment(len: u32, chunks_root: &Hash) -> Hash {
    hash_parts(Tag::Data, &[&len.to_le_bytes(), chunks_root])
}

/// An element segment's commitment: its length and the root over its item slots.
pub fn elem_commitment(len: u32, items_root: &Hash) -> Hash {
    hash_parts(Tag::Elem, &[&len.to_le_bytes(), items_root])
}

/// Empty-subtree hashes of data chunk trees.
pub fn chunk_empties(depth: u32) -> Vec<Hash> {
    empties(page_leaf(&[0u8; PAGE_BYTES]), depth)
}

/// Leaf hashes of a data segment's chunks (the last one zero-padded).
pub fn data_chunk_leaves(bytes: &[u8]) -> Vec<Hash> {
    bytes
        .chunks(PAGE_BYTES)
        .map(|c| {
            let mut page = [0u8; PAGE_BYTES];
            page[..c.len()].copy_from_slice(c);
            page_leaf(&page)
        })
        .collect()
}

/// The commitment to a program: roots of its code, function table and segments, and its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramCommitment {
    /// Root over every op of every function (height `depth_for(n_code)`).
    pub code_root: Hash,
    /// Number of ops.
    pub n_code: u32,
    /// Root over the function table.
    pub funcs_root: Hash,
    /// Number of functions.
    pub n_funcs: u32,
    /// Root over the data segment commitments.
    pub datas_root: Hash,
    /// Number of data segments.
    pub n_datas: u32,
    /// Root over the element segment commitments.
    pub elems_root: Hash,
    /// Number of element segments.
    pub n_elems: u32,
    /// Number of globals.
    pub n_globals: u32,
    /// Number of memories.
    pub n_memories: u32,
    /// Number of tables.
    pub n_tables: u32,
    /// The machine limits the program runs under.
    pub limits: Limits,
    /// For a guest program, the function address of `opml_step` (segments start there and end
    /// when it returns); [`NO_HOST`] for a plain store.
    pub entry: u32,
}

impl ProgramCommitment {
    /// Encoded size.
    pub const BYTES: usize = 4 * 32 + 12 * 4;

    /// Fixed little-endian encoding.
    pub fn encode(&self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        for (i, h) in [self.code_root, self.funcs_root, self.datas_root, self.elems_root].iter().enumerate() {
            out[32 * i..32 * i + 32].copy_from_slice(h);
        }
        let w = [
            self.n_code,
            self.n_funcs,
            self.n_datas,
            self.n_elems,
            self.n_globals,
            self.n_memories,
            self.n_tables,
            self.limits.max_memory_pages,
            self.limits.max_table_elements,
            self.limits.max_call_depth,
            self.limits.max_stack_slots,
            self.entry,
        ];
        for (i, v) in w.iter().enumerate() {
            out[128 + 4 * i..132 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Decodes [`ProgramCommitment::encode`].
    pub fn decode(b: &[u8; Self::BYTES]) -> Self {
        let h = |i: usize| -> Hash {
            let mut out = [0u8; 32];
            out.copy_from_slice(&b[32 * i..32 * i + 32]);
            out
        };
        let w = |i: usize| {
            let o = 128 + 4 * i;
            u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
        };
        ProgramCommitment {
            code_root: h(0),
            funcs_root: h(1),
            datas_root: h(2),
            elems_root: h(3),
            n_code: w(0),
            n_funcs: w(1),
            n_datas: w(2),
            n_elems: w(3),
            n_globals: w(4),
            n_memories: w(5),
            n_tables: w(6),
            limits: Limits {
                max_memory_pages: w(7),
                max_table_elements: w(8),
                max_call_depth: w(9),
                max_stack_slots: w(10),
            },
            entry: w(11),
        }
    }

    /// The program hash: SHA3-256(0x0E ‖ encoding).
    pub fn hash(&self) -> Hash {
        hash_parts(Tag::Program, &[&self.encode()])
    }
}

/// The program hash claims name: the commitment's hash bound to the initial state header (I/O left empty), the two
/// things a task's `R_0` is computed from. The commitment alone does not cover global initial values or where data
/// segments land, so two modules differing only there share a commitment hash; they never share this one.
pub fn program_id(commitment: &ProgramCommitment, initial_header: &crate::root::StateHeader) -> Hash {
    hash_parts(Tag::ProgramId, &[&commitment.hash(), &initial_header.encode()])
}

/// Prover-side index of a program: every leaf, to produce paths.
#[derive(Clone, Debug)]
pub struct ProgramIndex {
    /// The commitment.
    pub commitment: ProgramCommitment,
    /// The code tree.
    pub code: MerkleTree,
    /// Function entries by address.
    pub funcs: Vec<FuncEntry>,
    /// The function table.
    pub func_tree: MerkleTree,
    /// Data segments: (chunk leaves, commitment).
    pub datas: Vec<(Vec<Hash>, Hash)>,
    /// Element segments: (item leaves, commitment).
    pub elems: Vec<(Vec<Hash>, Hash)>,
}

impl ProgramIndex {
    /// Path of op `index` in the code tree.
    pub fn code_path(&self, index: u32) -> Vec<Hash> {
        self.code.path(index as u64)
    }

    /// Path of function `f` in the function table.
    pub fn func_path(&self, f: u32) -> Vec<Hash> {
        self.func_tree.path(f as u64)
    }

    /// Path of data segment `i` in the data tree.
    pub fn data_path(&self, i: u32) -> Vec<Hash> {
        let leaves: Vec<Hash> = self.datas.iter().map(|d| d.1).collect();
        let d = depth_for(leaves.len() as u64);
        merkle_path(&leaves, d, &empties(crate::hash::ZERO, d), i as u64)
    }

    /// Path of chunk `c` inside data segment `i`.
    pub fn data_chunk_path(&self, i: u32, c: u32) -> Vec<Hash> {
        let leaves = &self.datas[i as usize].0;
        let d = depth_for(leaves.len() as u64);
        merkle_path(leaves, d, &chunk_empties(d), c as u64)
    }

    /// Path of element segment `i` in the element tree.
    pub fn elem_path(&self, i: u32) -> Vec<Hash> {
        let leaves: Vec<Hash> = self.elems.iter().map(|e| e.1).collect();
        let d = depth_for(leaves.len() as u64);
        merkle_path(&leaves, d, &empties(crate::hash::ZERO, d), i as u64)
    }

    /// Path of item `k` inside element segment `i`.
    pub fn elem_item_path(&self, i: u32, k: u32) -> Vec<Hash> {
        let leaves = &self.elems[i as usize].0;
        let d = depth_for(leaves.len() as u64);
        merkle_path(leaves, d, &slot_empties(d), k as u64)
    }
}

/// The counts and settings of a store that enter its commitment besides code and segments.
#[cfg(feature = "std")]
pub(crate) struct StoreShape {
    pub n_globals: u32,
    pub n_memories: u32,
    pub n_tables: u32,
    pub limits: Limits,
    pub entry: u32,
}

/// The code tree's empty leaf: the leaf of an all-zero encoded op.
pub fn code_empty_leaf() -> Hash {
    instr_leaf(&[0; OP_BYTES])
}

/// Builds the index (and commitment) from a store's static parts.
#[cfg(feature = "std")]
pub(crate) fn build_index(
    funcs: &[(FuncEntry, &[crate::instr::Op])],
    datas: &[&[u8]],
    elems: &[&[Slot]],
    shape: StoreShape,
) -> ProgramIndex {
    let code_leaves: Vec<Hash> =
        funcs.iter().flat_map(|(_, ops)| ops.iter().map(|op| instr_leaf(&op.encode()))).collect();
    let code = MerkleTree::new(code_leaves, code_empty_leaf());
    let lens: Vec<(FuncEntry, u32)> = funcs.iter().map(|(e, ops)| (*e, ops.len() as u32)).collect();
    let (commitment, funcs, func_tree, datas, elems) = index_around_code(&lens, datas, elems, shape, code.root());
    ProgramIndex { commitment, code, funcs, func_tree, datas, elems }
}

/// Everything of a [`ProgramIndex`] but the code tree, whose root is given: the function entries (from each
/// function's entry and op count), function table, segment trees and the commitment.
#[cfg(feature = "std")]
#[allow(clippy::type_complexity)]
pub(crate) fn index_around_code(
    funcs: &[(FuncEntry, u32)],
    datas: &[&[u8]],
    elems: &[&[Slot]],
    shape: StoreShape,
    code_root: Hash,
) -> (ProgramCommitment, Vec<FuncEntry>, MerkleTree, Vec<(Vec<Hash>, Hash)>, Vec<(Vec<Hash>, Hash)>) {
    let StoreShape { n_globals, n_memories, n_tables, limits, entry } = shape;
    let mut n_code = 0u32;
    let mut entries = Vec::with_capacity(funcs.len());
    for (entry, len) in funcs {
        let mut e = *entry;
        e.code_base = n_code;
        e.code_len = *len;
        n_code += len;
        entries.push(e);
    }
    let func_leaves: Vec<Hash> = entries.iter().map(|e| e.leaf()).collect();
    let datas: Vec<(Vec<Hash>, Hash)> = datas
        .iter()
        .map(|bytes| {
            let leaves = data_chunk_leaves(bytes);
            let d = depth_for(leaves.len() as u64);
            let root = merkle_root(&leaves, d, &chunk_empties(d));
            let c = data_commitment(bytes.len() as u32, &root);
            (leaves, c)
        })
        .collect();
    let elems: Vec<(Vec<Hash>, Hash)> = elems
        .iter()
        .map(|items| {
            let leaves: Vec<Hash> = items.iter().map(|s| slot_leaf(*s)).collect();
            let d = depth_for(leaves.len() as u64);
            let root = merkle_root(&leaves, d, &slot_empties(d));
            let c = elem_commitment(items.len() as u32, &root);
            (leaves, c)
        })
        .collect();
    let root_of = |leaves: &[Hash], empty_leaf: Hash| {
        let d = depth_for(leaves.len() as u64);
        merkle_root(leaves, d, &empties(empty_leaf, d))
    };
    let data_commits: Vec<Hash> = datas.iter().map(|d| d.1).collect();
    let elem_commits: Vec<Hash> = elems.iter().map(|e| e.1).collect();
    let func_tree = MerkleTree::new(func_leaves, crate::hash::ZERO);
    let commitment = ProgramCommitment {
        code_root,
        n_code,
        funcs_root: func_tree.root(),
        n_funcs: entries.len() as u32,
        datas_root: root_of(&data_commits, crate::hash::ZERO),
        n_datas: datas.len() as u32,
        elems_root: root_of(&elem_commits, crate::hash::ZERO),
        n_elems: elems.len() as u32,
        n_globals,
        n_memories,
        n_tables,
        limits,
        entry,
    };
    (commitment, entries, func_tree, datas, elems)
}
