//! The state root: one function from a machine state to 32 bytes (layout in docs/state-root.md).
//!
//! [`StateHeader`] is the root's preimage: fixed-size fields plus one commitment per state
//! component, each component hashing itself (Arbitrum style). The header is also the first part
//! of every one-step proof, so the verifier reads it without guesswork (Cannon style).

use alloc::vec::Vec;

use crate::hash::{
    Hash, Tag, ZERO, depth_for, empties, hash_parts, merkle_root, node, operand_link, page_leaf, slot_leaf,
};
use crate::value::Slot;

/// Format version of the header.
pub const VERSION: u8 = 1;
/// Height of every memory's page tree: 2^20 pages of 4 KiB cover the whole 4 GiB wasm32 space.
pub const MEMORY_TREE_DEPTH: u32 = 20;
/// Height of every table's element tree: covers any 32-bit index.
pub const TABLE_TREE_DEPTH: u32 = 32;
/// Bytes of one memory page leaf (and of one input-blob chunk).
pub const PAGE_BYTES: usize = 4096;

/// Status byte of the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StatusCode {
    /// Not running, no results pending.
    Idle = 0,
    /// Executing.
    Running = 1,
    /// Returned; the results are the operands.
    Returned = 2,
    /// Trapped; the trap code is in `trap`.
    Trapped = 3,
    /// A guest finished its last segment (`opml_step` returned 0).
    Halted = 4,
}

/// The preimage of a state root. Fields that do not apply to a status are zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateHeader {
    /// Execution status.
    pub status: StatusCode,
    /// Trap code (`TrapCode as u8`) when trapped, else 0.
    pub trap: u8,
    /// Current function (store address) while running.
    pub func: u32,
    /// Index of the next instruction in the current function while running.
    pub pc: u32,
    /// Number of suspended frames.
    pub depth: u32,
    /// Total value-stack slots in use (locals and operands of all frames).
    pub height: u32,
    /// Operands of the current frame.
    pub n_ops: u32,
    /// Locals (parameters included) of the current frame.
    pub n_locals: u32,
    /// Steps taken in the current segment of a guest (the start step included) while running;
    /// zero otherwise. It makes every running state distinct from its successor.
    pub seg_steps: u64,
    /// Hash chain over the current frame's operands, bottom to top.
    pub operands: Hash,
    /// Merkle root over the current frame's locals.
    pub locals: Hash,
    /// Hash chain over the suspended frames, outermost first.
    pub frames: Hash,
    /// Merkle root over all globals.
    pub globals: Hash,
    /// Hash chain over the memory commitments, in address order.
    pub memories: Hash,
    /// Hash chain over the table commitments, in address order.
    pub tables: Hash,
    /// Commitment to the dropped flags of data and element segments.
    pub dropped: Hash,
    /// Commitment to the guest I/O state (input root, output accumulator, segment counter).
    pub io: Hash,
}

impl StateHeader {
    /// Encoded size in bytes.
    pub const BYTES: usize = 2 + 4 * 6 + 8 + 32 * 8;

    /// The fixed little-endian encoding (docs/state-root.md).
    pub fn encode(&self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        out[0] = self.status as u8;
        out[1] = self.trap;
        let words = [self.func, self.pc, self.depth, self.height, self.n_ops, self.n_locals];
        for (i, w) in words.iter().enumerate() {
            out[2 + 4 * i..6 + 4 * i].copy_from_slice(&w.to_le_bytes());
        }
        out[26..34].copy_from_slice(&self.seg_steps.to_le_bytes());
        let hashes =
            [self.operands, self.locals, self.frames, self.globals, self.memories, self.tables, self.dropped, self.io];
        for (i, h) in hashes.iter().enumerate() {
            out[34 + 32 * i..66 + 32 * i].copy_from_slice(h);
        }
        out
    }

    /// The state root: SHA3-256(0x09 ‖ version ‖ encoding).
    pub fn root(&self) -> Hash {
        hash_parts(Tag::State, &[&[VERSION], &self.encode()])
    }
}

/// Hash chain over operands, bottom first.
pub fn operands_hash(slots: &[Slot]) -> Hash {
    slots.iter().fold(ZERO, |acc, s| operand_link(&acc, *s))
}

/// Empty-subtree hashes for slot trees (locals, globals, tables): the empty leaf is the zero slot.
pub fn slot_empties(depth: u32) -> Vec<Hash> {
    empties(slot_leaf(0), depth)
}

/// Merkle root over locals: height `depth_for(n)`.
pub fn locals_root(locals: &[Slot]) -> Hash {
    let depth = depth_for(locals.len() as u64);
    let leaves: Vec<Hash> = locals.iter().map(|s| slot_leaf(*s)).collect();
    merkle_root(&leaves, depth, &slot_empties(depth))
}

/// Merkle root over globals: height `depth_for(n)`.
pub fn globals_root(globals: &[Slot]) -> Hash {
    locals_root(globals)
}

/// One suspended frame.
pub fn frame_hash(func: u32, pc: u32, n_locals: u32, n_ops: u32, locals: &Hash, operands: &Hash) -> Hash {
    hash_parts(
        Tag::Frame,
        &[&func.to_le_bytes(), &pc.to_le_bytes(), &n_locals.to_le_bytes(), &n_ops.to_le_bytes(), locals, operands],
    )
}

/// Extends the frame chain by pushing a frame.
pub fn frame_link(prev: &Hash, frame: &Hash) -> Hash {
    hash_parts(Tag::FrameLink, &[frame, prev])
}

/// Extends a list chain (memories, tables) by one item.
pub fn list_link(prev: &Hash, item: &Hash) -> Hash {
    hash_parts(Tag::ListLink, &[item, prev])
}

fn encode_max(max: Option<u32>) -> [u8; 5] {
    let mut out = [0u8; 5];
    if let Some(m) = max {
        out[0] = 1;
        out[1..].copy_from_slice(&m.to_le_bytes());
    }
    out
}

/// One memory's commitment.
pub fn memory_commitment(pages: u32, max: Option<u32>, tree: &Hash) -> Hash {
    hash_parts(Tag::Memory, &[&pages.to_le_bytes(), &encode_max(max), tree])
}

/// One table's commitment (`elem_type`: 0 funcref, 1 externref).
pub fn table_commitment(elem_type: u8, size: u32, max: Option<u32>, tree: &Hash) -> Hash {
    hash_parts(Tag::Table, &[&[elem_type], &size.to_le_bytes(), &encode_max(max), tree])
}

/// The dropped flags of data and element segments.
pub fn dropped_hash(data: &[bool], elem: &[bool]) -> Hash {
    fn bits(flags: &[bool]) -> Vec<u8> {
        let mut out = alloc::vec![0u8; flags.len().div_ceil(8)];
        for (i, f) in flags.iter().enumerate() {
            if *f {
                out[i / 8] |= 1 << (i % 8);
            }
        }
        out
    }
    hash_parts(
        Tag::Dropped,
        &[&(data.len() as u32).to_le_bytes(), &bits(data), &(elem.len() as u32).to_le_bytes(), &bits(elem)],
    )
}

/// Empty-subtree hashes of memory page trees (the empty leaf is the zero page).
pub fn memory_empties() -> Vec<Hash> {
    empties(page_leaf(&[0u8; PAGE_BYTES]), MEMORY_TREE_DEPTH)
}

/// Root of a memory's page tree from its page leaves (index order; absent pages are zero).
pub fn memory_tree_root(leaves: &[Hash], empty: &[Hash]) -> Hash {
    merkle_root(leaves, MEMORY_TREE_DEPTH, empty)
}

/// Root of a table's element tree.
pub fn table_tree_root(elems: &[Slot]) -> Hash {
    // Only the populated prefix is materialised; the rest of the 2^32 leaves are empty subtrees.
    let empty = slot_empties(TABLE_TREE_DEPTH);
    let leaves: Vec<Hash> = elems.iter().map(|s| slot_leaf(*s)).collect();
    merkle_root(&leaves, TABLE_TREE_DEPTH, &empty)
}

/// Combines two children at `level` of a tree whose right part may be empty.
pub fn combine(left: &Hash, right: &Hash) -> Hash {
    node(left, right)
}
