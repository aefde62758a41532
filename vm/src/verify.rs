//! The one-step verifier: checks a proof against a pre-state root and computes the post-state root
//! by running the machine's own transition function ([`crate::exec::exec_op`]) over the partial
//! state the proof reveals. `no_std` + `alloc`, no wasmi, no module parsing: this is what the
//! canister runs.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use crate::exec::{Acc, Access, Fault, exec_op, memory_grow_to, table_grow_to};
use crate::hash::{Hash, ZERO, depth_for, empties, node, page_leaf, root_from_path, slot_leaf};
use crate::instr::{Branch, Op};
use crate::program::{NO_HOST, ProgramCommitment, data_commitment, elem_commitment, instr_leaf};
use crate::proof::{FuncOpening, MemoryOpening, OneStepProof, ProofError, TableOpening};
use crate::root::{
    MEMORY_TREE_DEPTH, PAGE_BYTES, StateHeader, StatusCode, TABLE_TREE_DEPTH, dropped_hash, frame_hash, frame_link,
    list_link, memory_commitment, table_commitment,
};
use crate::trap::TrapCode;
use crate::value::Slot;

/// An idle header with no frame, operand or local and zero store commitments: the base of a frameless post-state
/// here and of `commit::StateHasher::header` (which then sets the status and frame fields as the machine says).
pub(crate) const NO_FRAME: StateHeader = StateHeader {
    status: StatusCode::Idle,
    trap: 0,
    func: 0,
    pc: 0,
    depth: 0,
    height: 0,
    n_ops: 0,
    n_locals: 0,
    seg_steps: 0,
    operands: ZERO,
    locals: ZERO,
    frames: ZERO,
    globals: ZERO,
    memories: ZERO,
    tables: ZERO,
    dropped: ZERO,
    io: ZERO,
};

type E = ProofError;

/// A sparse view of a fixed-depth Merkle tree: the opened leaves with their paths, enough to
/// recompute the root after the opened leaves change.
#[derive(Debug, Default)]
struct PartialTree {
    depth: u32,
    nodes: BTreeMap<(u32, u64), Hash>,
    dirty: BTreeSet<u64>,
}

impl PartialTree {
    fn new(depth: u32) -> Self {
        Self { depth, nodes: BTreeMap::new(), dirty: BTreeSet::new() }
    }

    /// Adds an opening after checking it leads to `root`.
    fn open(&mut self, index: u64, leaf: Hash, path: &[Hash], root: &Hash, what: &'static str) -> Result<(), E> {
        if path.len() != self.depth as usize || (self.depth < 64 && index >> self.depth != 0) {
            return Err(E::BadOpening(what));
        }
        // One pass of hashing: the nodes on the way up are kept, and entered only once they lead to `root`.
        let mut on_path = Vec::with_capacity(path.len());
        let mut h = leaf;
        let mut idx = index;
        for sib in path {
            on_path.push(h);
            h = if idx & 1 == 0 { node(&h, sib) } else { node(sib, &h) };
            idx >>= 1;
        }
        if h != *root {
            return Err(E::BadOpening(what));
        }
        let mut idx = index;
        for (l, (mine, sib)) in on_path.into_iter().zip(path).enumerate() {
            self.insert(l as u32, idx, mine)?;
            self.insert(l as u32, idx ^ 1, *sib)?;
            idx >>= 1;
        }
        self.insert(self.depth, 0, h)
    }

    fn insert(&mut self, level: u32, index: u64, h: Hash) -> Result<(), E> {
        match self.nodes.insert((level, index), h) {
            Some(old) if old != h => Err(E::Inconsistent("conflicting Merkle openings")),
            _ => Ok(()),
        }
    }

    fn set_leaf(&mut self, index: u64, leaf: Hash) {
        self.nodes.insert((0, index), leaf);
        self.dirty.insert(index);
    }

    fn root(&mut self) -> Result<Hash, E> {
        let mut dirty: BTreeSet<u64> = core::mem::take(&mut self.dirty);
        for l in 0..self.depth {
            let mut parents = BTreeSet::new();
            for i in &dirty {
                let p = i >> 1;
                let left = self.nodes.get(&(l, p << 1)).ok_or(E::Missing("Merkle sibling"))?;
                let right = self.nodes.get(&(l, (p << 1) | 1)).ok_or(E::Missing("Merkle sibling"))?;
                let h = node(left, right);
                self.nodes.insert((l + 1, p), h);
                parents.insert(p);
            }
            dirty = parents;
        }
        self.nodes.get(&(self.depth, 0)).copied().ok_or(E::Missing("tree root"))
    }
}

/// The current frame's locals: a sparse tree over the pre-state, or a fully known vector (a
/// frame entered by a call in this step).
enum Locals {
    Tree { tree: PartialTree, values: BTreeMap<u32, Slot>, root: Hash },
    Fixed(Hash),
}

/// The guest I/O component, as far as a proof opened it.
struct IoView {
    input_root: Hash,
    output_len: u64,
    output_tree: Hash,
    segment: u64,
    n_blobs: u32,
    blobs: BTreeMap<u32, u64>,
    chunks: BTreeMap<(u32, u32), Vec<u8>>,
    out_tree: PartialTree,
    out_pages: BTreeMap<u32, Vec<u8>>,
}

impl IoView {
    fn hash(&mut self) -> Result<Hash, E> {
        let tree = if self.out_tree.dirty.is_empty() { self.output_tree } else { self.out_tree.root()? };
        Ok(crate::io::io_hash(&self.input_root, self.output_len, &tree, self.segment))
    }
}

fn open_io(o: &crate::proof::IoOpening, committed: &Hash) -> Result<IoView, E> {
    use crate::io::{OUTPUT_TREE_DEPTH, blob_commitment, inputs_root, io_hash};
    if io_hash(&o.input_root, o.output_len, &o.output_tree, o.segment) != *committed
        || inputs_root(o.n_blobs, &o.blobs_tree) != o.input_root
        || o.output_len > crate::io::MAX_OUTPUT
    {
        return Err(E::BadOpening("guest I/O"));
    }
    let bdepth = depth_for(o.n_blobs as u64);
    let mut blobs = BTreeMap::new();
    let mut roots = BTreeMap::new();
    for b in &o.blobs {
        if b.index >= o.n_blobs
            || b.path.len() != bdepth as usize
            || root_from_path(blob_commitment(b.len, &b.chunks_root), b.index as u64, &b.path) != o.blobs_tree
            || blobs.insert(b.index, b.len).is_some()
        {
            return Err(E::BadOpening("input blob"));
        }
        roots.insert(b.index, (b.len, b.chunks_root));
    }
    let mut chunks = BTreeMap::new();
    for (blob, i, bytes, path) in &o.chunks {
        let (len, root) = roots.get(blob).ok_or(E::BadOpening("input chunk"))?;
        let cdepth = depth_for(len.div_ceil(PAGE_BYTES as u64));
        if bytes.len() != PAGE_BYTES
            || path.len() != cdepth as usize
            || root_from_path(page_leaf(bytes), *i as u64, path) != *root
            || chunks.insert((*blob, *i), bytes.clone()).is_some()
        {
            return Err(E::BadOpening("input chunk"));
        }
    }
    let mut out_tree = PartialTree::new(OUTPUT_TREE_DEPTH);
    let mut out_pages = BTreeMap::new();
    for (i, bytes, path) in &o.output_pages {
        if bytes.len() != PAGE_BYTES || out_pages.insert(*i, bytes.clone()).is_some() {
            return Err(E::BadOpening("output page"));
        }
        out_tree.open(*i as u64, page_leaf(bytes), path, &o.output_tree, "output page")?;
    }
    Ok(IoView {
        input_root: o.input_root,
        output_len: o.output_len,
        output_tree: o.output_tree,
        segment: o.segment,
        n_blobs: o.n_blobs,
        blobs,
        chunks,
        out_tree,
        out_pages,
    })
}

struct Partial<'a> {
    prog: &'a ProgramCommitment,
    h: StateHeader,
    pc: u32,
    ops: Vec<Slot>,
    ops_rest: Hash,
    hidden: u32,
    /// Value-stack slots beneath the current frame.
    base: u64,
    locals: Locals,
    globals: Option<(PartialTree, BTreeMap<u32, Slot>)>,
    memories: Vec<MemoryOpening>,
    mem_trees: Vec<PartialTree>,
    pages: BTreeMap<(u32, u32), Vec<u8>>,
    tables: Vec<TableOpening>,
    table_trees: Vec<PartialTree>,
    table_elems: BTreeMap<(u32, u32), Slot>,
    frame: Option<crate::proof::FrameOpening>,
    callee: Option<FuncOpening>,
    dropped: Option<(Vec<bool>, Vec<bool>)>,
    datas: BTreeMap<u32, (u32, BTreeMap<u32, Vec<u8>>)>,
    elems: BTreeMap<u32, (u32, BTreeMap<u32, Slot>)>,
    returned: bool,
    io: Option<IoView>,
    /// For a guest program: `Some(more)` once `opml_step` returned in this step.
    segment_end: Option<bool>,
}

fn fault(e: E) -> Fault<E> {
    Fault::Access(e)
}

impl Partial<'_> {
    fn page(&self, m: u32, addr: u64) -> Acc<&Vec<u8>, E> {
        self.pages.get(&(m, (addr / PAGE_BYTES as u64) as u32)).ok_or(fault(E::Missing("memory page")))
    }

    fn memory(&self, m: u32) -> Acc<&MemoryOpening, E> {
        self.memories.get(m as usize).ok_or(fault(E::Missing("memory")))
    }

    fn table(&self, t: u32) -> Acc<&TableOpening, E> {
        self.tables.get(t as usize).ok_or(fault(E::Missing("table")))
    }

    fn dropped(&mut self) -> Acc<&mut (Vec<bool>, Vec<bool>), E> {
        self.dropped.as_mut().ok_or(fault(E::Missing("segment dropped flags")))
    }

    /// Seals the current frame into a frame hash (for a call).
    fn seal_frame(&mut self) -> Acc<Hash, E> {
        let locals = match &mut self.locals {
            Locals::Tree { tree, values, root } => {
                if values.is_empty() && tree.dirty.is_empty() {
                    *root
                } else {
                    tree.root().map_err(fault)?
                }
            }
            Locals::Fixed(r) => *r,
        };
        let operands = self.ops.iter().fold(self.ops_rest, |acc, s| crate::hash::operand_link(&acc, *s));
        let n_ops = self.hidden + self.ops.len() as u32;
        Ok(frame_hash(self.h.func, self.pc, self.h.n_locals, n_ops, &locals, &operands))
    }
}

impl Access for Partial<'_> {
    type Error = E;

    fn pc(&self) -> u32 {
        self.pc
    }

    fn jump(&mut self, pc: u32) {
        self.pc = pc;
    }

    fn pop(&mut self) -> Acc<Slot, E> {
        match self.ops.pop() {
            Some(v) => Ok(v),
            None if self.hidden > 0 => Err(fault(E::Missing("operand"))),
            None => Err(fault(E::Inconsistent("pop from an empty operand stack"))),
        }
    }

    fn push(&mut self, v: Slot) -> Acc<(), E> {
        self.ops.push(v);
        Ok(())
    }

    fn operands(&mut self, n: usize) -> Acc<&mut Vec<Slot>, E> {
        if self.ops.len() < n && self.hidden > 0 {
            return Err(fault(E::Missing("operand")));
        }
        Ok(&mut self.ops)
    }

    fn branch(&mut self, b: Branch) -> Acc<(), E> {
        let need = b.keep as usize + b.drop as usize;
        if self.ops.len() < need {
            return Err(fault(if self.hidden > 0 { E::Missing("operand") } else { E::Inconsistent("branch") }));
        }
        let len = self.ops.len();
        let keep = b.keep as usize;
        self.ops.copy_within(len - keep..len, len - need);
        self.ops.truncate(len - b.drop as usize);
        self.pc = b.target;
        Ok(())
    }

    fn local(&mut self, i: u32) -> Acc<Slot, E> {
        match &self.locals {
            Locals::Tree { values, .. } => values.get(&i).copied().ok_or(fault(E::Missing("local"))),
            Locals::Fixed(_) => Err(fault(E::Inconsistent("local access after a call"))),
        }
    }

    fn set_local(&mut self, i: u32, v: Slot) -> Acc<(), E> {
        match &mut self.locals {
            Locals::Tree { tree, values, .. } => {
                let slot = values.get_mut(&i).ok_or(fault(E::Missing("local")))?;
                *slot = v;
                tree.set_leaf(i as u64, slot_leaf(v));
                Ok(())
            }
            Locals::Fixed(_) => Err(fault(E::Inconsistent("local access after a call"))),
        }
    }

    fn global(&mut self, g: u32) -> Acc<Slot, E> {
        let (_, values) = self.globals.as_ref().ok_or(fault(E::Missing("global")))?;
        values.get(&g).copied().ok_or(fault(E::Missing("global")))
    }

    fn set_global(&mut self, g: u32, v: Slot) -> Acc<(), E> {
        let (tree, values) = self.globals.as_mut().ok_or(fault(E::Missing("global")))?;
        let slot = values.get_mut(&g).ok_or(fault(E::Missing("global")))?;
        *slot = v;
        tree.set_leaf(g as u64, slot_leaf(v));
        Ok(())
    }

    fn mem_pages(&mut self, m: u32) -> Acc<u32, E> {
        Ok(self.memory(m)?.pages)
    }

    fn mem_read(&mut self, m: u32, addr: u64, out: &mut [u8]) -> Acc<(), E> {
        let mut done = 0;
        while done < out.len() {
            let a = addr + done as u64;
            let off = (a % PAGE_BYTES as u64) as usize;
            let n = (PAGE_BYTES - off).min(out.len() - done);
            let page = self.page(m, a)?;
            out[done..done + n].copy_from_slice(&page[off..off + n]);
            done += n;
        }
        Ok(())
    }

    fn mem_write(&mut self, m: u32, addr: u64, data: &[u8]) -> Acc<(), E> {
        let mut done = 0;
        while done < data.len() {
            let a = addr + done as u64;
            let idx = (a / PAGE_BYTES as u64) as u32;
            let off = (a % PAGE_BYTES as u64) as usize;
            let n = (PAGE_BYTES - off).min(data.len() - done);
            let page = self.pages.get_mut(&(m, idx)).ok_or(fault(E::Missing("memory page")))?;
            page[off..off + n].copy_from_slice(&data[done..done + n]);
            let leaf = page_leaf(page);
            self.mem_trees[m as usize].set_leaf(idx as u64, leaf);
            done += n;
        }
        Ok(())
    }

    fn mem_grow(&mut self, m: u32, delta: u32) -> Acc<Option<u32>, E> {
        let limit = self.prog.limits.max_memory_pages;
        let mem = self.memories.get_mut(m as usize).ok_or(fault(E::Missing("memory")))?;
        let old = mem.pages;
        // New pages are zero, which is what the fixed-height page tree already holds there.
        Ok(memory_grow_to(old, delta, mem.max, limit).map(|new| {
            mem.pages = new;
            old
        }))
    }

    fn table_size(&mut self, t: u32) -> Acc<u32, E> {
        Ok(self.table(t)?.size)
    }

    fn table_get(&mut self, t: u32, i: u32) -> Acc<Slot, E> {
        self.table_elems.get(&(t, i)).copied().ok_or(fault(E::Missing("table element")))
    }

    fn table_set(&mut self, t: u32, i: u32, v: Slot) -> Acc<(), E> {
        let slot = self.table_elems.get_mut(&(t, i)).ok_or(fault(E::Missing("table element")))?;
        *slot = v;
        self.table_trees[t as usize].set_leaf(i as u64, slot_leaf(v));
        Ok(())
    }

    fn table_grow(&mut self, t: u32, n: u32, init: Slot) -> Acc<Option<u32>, E> {
        let limit = self.prog.limits.max_table_elements;
        let table = self.tables.get_mut(t as usize).ok_or(fault(E::Missing("table")))?;
        let old = table.size;
        match table_grow_to(old, n, table.max, limit) {
            None => Ok(None),
            // Null elements are the empty leaves the fixed-height tree already holds.
            Some(new) if init == crate::value::NULL_REF || n == 0 => {
                table.size = new;
                Ok(Some(old))
            }
            Some(_) => Err(fault(E::Unsupported("table.grow with a non-null initial value"))),
        }
    }

    fn data_len(&mut self, d: u32) -> Acc<u32, E> {
        if *self.dropped()?.0.get(d as usize).ok_or(fault(E::Inconsistent("data segment index")))? {
            return Ok(0);
        }
        Ok(self.datas.get(&d).ok_or(fault(E::Missing("data segment")))?.0)
    }

    fn data_read(&mut self, d: u32, offset: u32, out: &mut [u8]) -> Acc<(), E> {
        let (_, chunks) = self.datas.get(&d).ok_or(fault(E::Missing("data segment")))?;
        for (k, byte) in out.iter_mut().enumerate() {
            let pos = offset as usize + k;
            let chunk = chunks.get(&((pos / PAGE_BYTES) as u32)).ok_or(fault(E::Missing("data chunk")))?;
            *byte = chunk[pos % PAGE_BYTES];
        }
        Ok(())
    }

    fn data_drop(&mut self, d: u32) -> Acc<(), E> {
        let flag = self.dropped()?.0.get_mut(d as usize).ok_or(fault(E::Inconsistent("data segment index")))?;
        *flag = true;
        Ok(())
    }

    fn elem_len(&mut self, e: u32) -> Acc<u32, E> {
        if *self.dropped()?.1.get(e as usize).ok_or(fault(E::Inconsistent("element segment index")))? {
            return Ok(0);
        }
        Ok(self.elems.get(&e).ok_or(fault(E::Missing("element segment")))?.0)
    }

    fn elem_get(&mut self, e: u32, i: u32) -> Acc<Slot, E> {
        let (_, items) = self.elems.get(&e).ok_or(fault(E::Missing("element segment")))?;
        items.get(&i).copied().ok_or(fault(E::Missing("element item")))
    }

    fn elem_drop(&mut self, e: u32) -> Acc<(), E> {
        let flag = self.dropped()?.1.get_mut(e as usize).ok_or(fault(E::Inconsistent("element segment index")))?;
        *flag = true;
        Ok(())
    }

    fn abi_id(&mut self, f: u32) -> Acc<Option<u32>, E> {
        match &self.callee {
            Some(c) if c.index == f => Ok(Some(c.entry.host).filter(|h| *h >= crate::io::ABI_BASE && *h != NO_HOST)),
            _ => Err(fault(E::Missing("callee entry"))),
        }
    }

    fn input_len(&mut self, blob: u32) -> Acc<Option<u64>, E> {
        let io = self.io.as_ref().ok_or(fault(E::Missing("guest I/O")))?;
        if blob >= io.n_blobs {
            return Ok(None);
        }
        io.blobs.get(&blob).map(|l| Some(*l)).ok_or(fault(E::Missing("input blob")))
    }

    fn input_read(&mut self, blob: u32, offset: u64, out: &mut [u8]) -> Acc<(), E> {
        let io = self.io.as_ref().ok_or(fault(E::Missing("guest I/O")))?;
        for (k, byte) in out.iter_mut().enumerate() {
            let pos = offset + k as u64;
            let chunk =
                io.chunks.get(&(blob, (pos / PAGE_BYTES as u64) as u32)).ok_or(fault(E::Missing("input chunk")))?;
            *byte = chunk[(pos % PAGE_BYTES as u64) as usize];
        }
        Ok(())
    }

    fn output_len(&mut self) -> Acc<u64, E> {
        Ok(self.io.as_ref().ok_or(fault(E::Missing("guest I/O")))?.output_len)
    }

    fn output_append(&mut self, bytes: &[u8]) -> Acc<(), E> {
        let io = self.io.as_mut().ok_or(fault(E::Missing("guest I/O")))?;
        let mut at = io.output_len;
        for b in bytes {
            let p = (at / PAGE_BYTES as u64) as u32;
            let page = io.out_pages.get_mut(&p).ok_or(fault(E::Missing("output page")))?;
            page[(at % PAGE_BYTES as u64) as usize] = *b;
            at += 1;
        }
        let first = (io.output_len / PAGE_BYTES as u64) as u32;
        let last = ((at.max(1) - 1) / PAGE_BYTES as u64) as u32;
        for p in first..=last {
            let leaf = page_leaf(&io.out_pages[&p]);
            io.out_tree.set_leaf(p as u64, leaf);
        }
        io.output_len = at;
        Ok(())
    }

    fn func_type_id(&mut self, f: u32) -> Acc<u32, E> {
        match &self.callee {
            Some(c) if c.index == f => Ok(c.entry.type_id),
            _ => Err(fault(E::Missing("callee entry"))),
        }
    }

    fn call(&mut self, f: u32) -> Acc<(), E> {
        let entry = match &self.callee {
            Some(c) if c.index == f => c.entry,
            _ => return Err(fault(E::Missing("callee entry"))),
        };
        if entry.host != NO_HOST {
            return Err(fault(E::Unsupported("host function call")));
        }
        let limits = self.prog.limits;
        if self.h.depth as u64 + 1 >= limits.max_call_depth as u64 {
            return Err(Fault::Trap(TrapCode::CallStackExhausted));
        }
        let height = self.base + self.h.n_locals as u64 + self.hidden as u64 + self.ops.len() as u64;
        let needed = height + entry.num_locals as u64 + entry.max_height as u64;
        if needed > limits.max_stack_slots as u64 {
            return Err(Fault::Trap(TrapCode::ValueStackExhausted));
        }
        let params = entry.params as usize;
        if self.ops.len() < params {
            return Err(fault(if self.hidden > 0 { E::Missing("operand") } else { E::Inconsistent("call") }));
        }
        let args = self.ops.split_off(self.ops.len() - params);
        let sealed = self.seal_frame()?;
        self.h.frames = frame_link(&self.h.frames, &sealed);
        self.h.depth += 1;
        self.base += self.h.n_locals as u64 + self.hidden as u64 + self.ops.len() as u64;
        // Zero locals are the tree's empty leaves, so only the arguments need hashing.
        let n_locals = entry.frame_locals();
        let depth = depth_for(n_locals);
        let leaves: Vec<Hash> = args.iter().map(|s| slot_leaf(*s)).collect();
        let root = crate::hash::merkle_root(&leaves, depth, &empties(slot_leaf(0), depth));
        self.locals = Locals::Fixed(root);
        self.h.func = f;
        self.h.n_locals = n_locals as u32;
        self.pc = 0;
        self.ops = Vec::new();
        self.ops_rest = ZERO;
        self.hidden = 0;
        Ok(())
    }

    fn ret(&mut self, results: u32) -> Acc<(), E> {
        let r = results as usize;
        if self.ops.len() < r {
            return Err(fault(if self.hidden > 0 { E::Missing("operand") } else { E::Inconsistent("return") }));
        }
        let values = self.ops.split_off(self.ops.len() - r);
        if self.h.depth == 0 && self.prog.entry != NO_HOST {
            // A guest's `opml_step` returned: the segment ends.
            let io = self.io.as_mut().ok_or(fault(E::Missing("guest I/O")))?;
            io.segment += 1;
            self.segment_end = Some(values.first().is_some_and(|v| *v as u32 != 0));
            return Ok(());
        }
        if self.h.depth == 0 {
            self.returned = true;
            self.ops = values;
            self.ops_rest = ZERO;
            self.hidden = 0;
            self.base = 0;
            return Ok(());
        }
        let f = self.frame.ok_or(fault(E::Missing("caller frame")))?;
        self.base = self
            .base
            .checked_sub(f.n_locals as u64 + f.n_ops as u64)
            .ok_or(fault(E::Inconsistent("frame sizes exceed the stack height")))?;
        self.h.frames = f.rest;
        self.h.depth -= 1;
        self.h.func = f.func;
        self.h.n_locals = f.n_locals;
        self.pc = f.pc;
        self.locals = Locals::Fixed(f.locals);
        self.ops = values;
        self.ops_rest = f.operands;
        self.hidden = f.n_ops;
        Ok(())
    }
}

fn verify_func(f: &FuncOpening, prog: &ProgramCommitment, what: &'static str) -> Result<(), E> {
    if f.index >= prog.n_funcs {
        return Err(E::BadOpening(what));
    }
    let depth = depth_for(prog.n_funcs as u64);
    if f.path.len() != depth as usize || root_from_path(f.entry.leaf(), f.index as u64, &f.path) != prog.funcs_root {
        return Err(E::BadOpening(what));
    }
    Ok(())
}

/// Decodes `proof` and verifies it: the post-state root of one machine step from `pre_root` (an
/// idle guest state steps into its next segment).
pub fn verify_step(pre_root: &Hash, proof: &[u8], prog: &ProgramCommitment) -> Result<Hash, ProofError> {
    verify_proof(pre_root, &OneStepProof::decode(proof)?, prog, None)
}

/// The dispute game's transition function `f_s` for segment `segment` of a guest program: an idle
/// state whose segment counter is `segment` enters `opml_step`, a running state executes one
/// instruction, and every other state (idle at another segment, halted, trapped) steps to itself,
/// so the root after `n` steps from boundary `s` equals boundary `s + 1` for every `n` at least the
/// segment's length (docs/protocol.md).
pub fn verify_segment_step(
    prog: &ProgramCommitment,
    segment: u64,
    pre_root: &Hash,
    proof: &[u8],
) -> Result<Hash, ProofError> {
    verify_proof(pre_root, &OneStepProof::decode(proof)?, prog, Some(segment))
}

/// Verifies a decoded proof: the post-state root of one step from `pre_root`. `segment`: `None`
/// for plain machine stepping, `Some(s)` for the game's `f_s` (see [`verify_segment_step`]).
pub fn verify_proof(
    pre_root: &Hash,
    p: &OneStepProof,
    prog: &ProgramCommitment,
    segment: Option<u64>,
) -> Result<Hash, ProofError> {
    Ok(verify_to_header(pre_root, p, prog, segment)?.root())
}

/// Like [`verify_proof`], but returns the whole post-state header (for diagnostics and tools;
/// its root is the post-state root).
pub fn verify_to_header(
    pre_root: &Hash,
    p: &OneStepProof,
    prog: &ProgramCommitment,
    segment: Option<u64>,
) -> Result<StateHeader, ProofError> {
    let h = p.header;
    if h.root() != *pre_root {
        return Err(E::PreRootMismatch);
    }
    let guest = prog.entry != NO_HOST;
    let mut io = match &p.io {
        Some(o) => Some(open_io(o, &h.io)?),
        None => None,
    };
    if h.status == StatusCode::Idle && guest {
        let view = io.as_ref().ok_or(E::Missing("guest I/O"))?;
        if segment.is_some_and(|s| s != view.segment) {
            return Ok(h);
        }
        return start_segment(h, p, prog);
    }
    if h.status != StatusCode::Running {
        return Ok(h);
    }
    // The instruction, checked against the current function and the code tree.
    let func = p.func.as_ref().ok_or(E::Missing("current function"))?;
    if func.index != h.func {
        return Err(E::BadOpening("current function"));
    }
    verify_func(func, prog, "current function")?;
    let entry = func.entry;
    if entry.host != NO_HOST || entry.frame_locals() != h.n_locals as u64 || h.pc >= entry.code_len {
        return Err(E::Inconsistent("current function"));
    }
    let code_index = entry.code_base as u64 + h.pc as u64;
    let code_depth = depth_for(prog.n_code as u64);
    if code_index >= prog.n_code as u64
        || p.op_path.len() != code_depth as usize
        || root_from_path(instr_leaf(&p.op), code_index, &p.op_path) != prog.code_root
    {
        return Err(E::BadOpening("instruction"));
    }
    let op = Op::decode(&p.op).ok_or(E::Malformed("instruction encoding"))?;

    // Operands.
    if p.operands.len() > h.n_ops as usize {
        return Err(E::BadOpening("operands"));
    }
    let chain = p.operands.iter().fold(p.operands_rest, |acc, s| crate::hash::operand_link(&acc, *s));
    if chain != h.operands || (p.operands.len() == h.n_ops as usize && p.operands_rest != ZERO) {
        return Err(E::BadOpening("operands"));
    }

    // Locals of the current frame.
    let mut ltree = PartialTree::new(depth_for(h.n_locals as u64));
    let mut lvals = BTreeMap::new();
    for o in &p.locals {
        if o.index >= h.n_locals || lvals.insert(o.index, o.slot).is_some() {
            return Err(E::BadOpening("local"));
        }
        ltree.open(o.index as u64, slot_leaf(o.slot), &o.path, &h.locals, "local")?;
    }

    // Globals.
    let globals = if p.globals.is_empty() {
        None
    } else {
        let mut tree = PartialTree::new(depth_for(prog.n_globals as u64));
        let mut vals = BTreeMap::new();
        for o in &p.globals {
            if o.index >= prog.n_globals || vals.insert(o.index, o.slot).is_some() {
                return Err(E::BadOpening("global"));
            }
            tree.open(o.index as u64, slot_leaf(o.slot), &o.path, &h.globals, "global")?;
        }
        Some((tree, vals))
    };

    // Memories and pages.
    if !p.memories.is_empty() {
        let chain = p.memories.iter().fold(ZERO, |acc, m| list_link(&acc, &memory_commitment(m.pages, m.max, &m.tree)));
        if p.memories.len() != prog.n_memories as usize || chain != h.memories {
            return Err(E::BadOpening("memories"));
        }
    }
    let mut mem_trees: Vec<PartialTree> = p.memories.iter().map(|_| PartialTree::new(MEMORY_TREE_DEPTH)).collect();
    let mut pages = BTreeMap::new();
    for pg in &p.pages {
        let m = p.memories.get(pg.mem as usize).ok_or(E::BadOpening("page"))?;
        if pg.bytes.len() != PAGE_BYTES || pages.insert((pg.mem, pg.index), pg.bytes.clone()).is_some() {
            return Err(E::BadOpening("page"));
        }
        mem_trees[pg.mem as usize].open(pg.index as u64, page_leaf(&pg.bytes), &pg.path, &m.tree, "page")?;
    }

    // Tables and elements.
    if !p.tables.is_empty() {
        let chain = p
            .tables
            .iter()
            .fold(ZERO, |acc, t| list_link(&acc, &table_commitment(t.elem_type, t.size, t.max, &t.tree)));
        if p.tables.len() != prog.n_tables as usize || chain != h.tables {
            return Err(E::BadOpening("tables"));
        }
    }
    let mut table_trees: Vec<PartialTree> = p.tables.iter().map(|_| PartialTree::new(TABLE_TREE_DEPTH)).collect();
    let mut table_elems = BTreeMap::new();
    for (t, o) in &p.table_elems {
        let table = p.tables.get(*t as usize).ok_or(E::BadOpening("table element"))?;
        if table_elems.insert((*t, o.index), o.slot).is_some() {
            return Err(E::BadOpening("table element"));
        }
        table_trees[*t as usize].open(o.index as u64, slot_leaf(o.slot), &o.path, &table.tree, "table element")?;
    }

    // The innermost suspended frame.
    if let Some(f) = &p.frame {
        let fh = frame_hash(f.func, f.pc, f.n_locals, f.n_ops, &f.locals, &f.operands);
        if h.depth == 0 || frame_link(&f.rest, &fh) != h.frames {
            return Err(E::BadOpening("caller frame"));
        }
    }
    if let Some(c) = &p.callee {
        verify_func(c, prog, "callee")?;
    }
    if let Some((d, e)) = &p.dropped
        && (d.len() != prog.n_datas as usize || e.len() != prog.n_elems as usize || dropped_hash(d, e) != h.dropped)
    {
        return Err(E::BadOpening("dropped flags"));
    }

    // Segments (static program data).
    let mut datas = BTreeMap::new();
    for d in &p.datas {
        let depth = depth_for(prog.n_datas as u64);
        let leaf = data_commitment(d.len, &d.chunks_root);
        if d.segment >= prog.n_datas
            || d.path.len() != depth as usize
            || root_from_path(leaf, d.segment as u64, &d.path) != prog.datas_root
        {
            return Err(E::BadOpening("data segment"));
        }
        let cdepth = depth_for((d.len as u64).div_ceil(PAGE_BYTES as u64));
        let mut chunks = BTreeMap::new();
        for (i, bytes, path) in &d.chunks {
            if bytes.len() != PAGE_BYTES
                || path.len() != cdepth as usize
                || root_from_path(page_leaf(bytes), *i as u64, path) != d.chunks_root
                || chunks.insert(*i, bytes.clone()).is_some()
            {
                return Err(E::BadOpening("data chunk"));
            }
        }
        if datas.insert(d.segment, (d.len, chunks)).is_some() {
            return Err(E::BadOpening("data segment"));
        }
    }
    let mut elems = BTreeMap::new();
    for e in &p.elems {
        let depth = depth_for(prog.n_elems as u64);
        let leaf = elem_commitment(e.len, &e.items_root);
        if e.segment >= prog.n_elems
            || e.path.len() != depth as usize
            || root_from_path(leaf, e.segment as u64, &e.path) != prog.elems_root
        {
            return Err(E::BadOpening("element segment"));
        }
        let idepth = depth_for(e.len as u64);
        let mut items = BTreeMap::new();
        for o in &e.items {
            if o.index >= e.len
                || o.path.len() != idepth as usize
                || root_from_path(slot_leaf(o.slot), o.index as u64, &o.path) != e.items_root
                || items.insert(o.index, o.slot).is_some()
            {
                return Err(E::BadOpening("element item"));
            }
        }
        if elems.insert(e.segment, (e.len, items)).is_some() {
            return Err(E::BadOpening("element segment"));
        }
    }

    let mut st = Partial {
        prog,
        h,
        pc: h.pc,
        ops: p.operands.clone(),
        ops_rest: p.operands_rest,
        hidden: h.n_ops - p.operands.len() as u32,
        base: (h.height as u64)
            .checked_sub(h.n_locals as u64 + h.n_ops as u64)
            .ok_or(E::Inconsistent("frame exceeds the stack height"))?,
        locals: Locals::Tree { tree: ltree, values: lvals, root: h.locals },
        globals,
        memories: p.memories.clone(),
        mem_trees,
        pages,
        tables: p.tables.clone(),
        table_trees,
        table_elems,
        frame: p.frame,
        callee: p.callee.clone(),
        dropped: p.dropped.clone(),
        datas,
        elems,
        returned: false,
        io: io.take(),
        segment_end: None,
    };
    let outcome = exec_op(&mut st, &op);
    let trap = match outcome {
        Ok(()) => None,
        Err(Fault::Trap(t)) => Some(t),
        Err(Fault::Access(e)) => return Err(e),
    };
    post_header(st, trap)
}

/// The step from an idle guest state: enter `opml_step` with zeroed locals.
fn start_segment(h: StateHeader, p: &OneStepProof, prog: &ProgramCommitment) -> Result<StateHeader, E> {
    let c = p.callee.as_ref().ok_or(E::Missing("entry function"))?;
    verify_func(c, prog, "entry function")?;
    let e = c.entry;
    if c.index != prog.entry || e.host != NO_HOST || e.params != 0 || e.results != 1 {
        return Err(E::Inconsistent("entry function"));
    }
    let n = e.frame_locals();
    let depth = depth_for(n);
    let mut post = h;
    post.status = StatusCode::Running;
    post.func = prog.entry;
    post.pc = 0;
    post.depth = 0;
    post.n_locals = n as u32;
    post.n_ops = 0;
    post.height = n as u32;
    post.seg_steps = 1;
    post.operands = ZERO;
    post.locals = empties(slot_leaf(0), depth)[depth as usize];
    post.frames = ZERO;
    Ok(post)
}

/// `h` with `status` and `trap` and no frame left (a segment's end or a trap): its store and I/O commitments
/// kept, every frame field zero.
fn frameless(h: &StateHeader, status: StatusCode, trap: u8) -> StateHeader {
    StateHeader {
        status,
        trap,
        globals: h.globals,
        memories: h.memories,
        tables: h.tables,
        dropped: h.dropped,
        io: h.io,
        ..NO_FRAME
    }
}

fn post_header(mut st: Partial<'_>, trap: Option<TrapCode>) -> Result<StateHeader, E> {
    let mut h = st.h;
    if let Some(io) = st.io.as_mut() {
        h.io = io.hash()?;
    }
    if st.prog.entry != NO_HOST {
        h.seg_steps += 1;
    }
    if let Some((tree, _)) = st.globals.as_mut()
        && !tree.dirty.is_empty()
    {
        h.globals = tree.root()?;
    }
    if !st.memories.is_empty() {
        let mut chain = ZERO;
        for (i, m) in st.memories.iter().enumerate() {
            let tree = if st.mem_trees[i].dirty.is_empty() { m.tree } else { st.mem_trees[i].root()? };
            chain = list_link(&chain, &memory_commitment(m.pages, m.max, &tree));
        }
        h.memories = chain;
    }
    if !st.tables.is_empty() {
        let mut chain = ZERO;
        for (i, t) in st.tables.iter().enumerate() {
            let tree = if st.table_trees[i].dirty.is_empty() { t.tree } else { st.table_trees[i].root()? };
            chain = list_link(&chain, &table_commitment(t.elem_type, t.size, t.max, &tree));
        }
        h.tables = chain;
    }
    if let Some((d, e)) = &st.dropped {
        h.dropped = dropped_hash(d, e);
    }
    if let Some(more) = st.segment_end {
        let status = if more { StatusCode::Idle } else { StatusCode::Halted };
        return Ok(frameless(&h, status, h.trap));
    }
    if let Some(t) = trap {
        return Ok(frameless(&h, StatusCode::Trapped, t as u8));
    }
    h.operands = st.ops.iter().fold(st.ops_rest, |acc, s| crate::hash::operand_link(&acc, *s));
    h.n_ops = st.hidden + st.ops.len() as u32;
    h.height = (st.base + h.n_locals as u64 + h.n_ops as u64) as u32;
    if st.returned {
        h.height = h.n_ops;
        h.status = StatusCode::Returned;
        h.func = 0;
        h.pc = 0;
        h.n_locals = 0;
        h.locals = ZERO;
        h.frames = ZERO;
        return Ok(h);
    }
    h.pc = st.pc;
    h.locals = match &mut st.locals {
        Locals::Tree { tree, root, .. } => {
            if tree.dirty.is_empty() {
                *root
            } else {
                tree.root()?
            }
        }
        Locals::Fixed(r) => *r,
    };
    Ok(h)
}

/// Bytes of a final-state opening: the header, then the I/O preimage (input root, output length,
/// output tree root, segment).
pub const FINAL_OPENING_BYTES: usize = StateHeader::BYTES + 32 + 8 + 32 + 8;

/// How a guest run ended, as its final state shows it. A trap is an ordinary final state: a claim can
/// be about either outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalOutcome {
    /// The guest finished its last segment (`opml_step` returned 0).
    Halted,
    /// The guest trapped (a limit the metering enforces traps too); its output is what it wrote before.
    Trapped(TrapCode),
}

/// What a checked final state says: the inputs it was computed on and how it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FinalState {
    /// The input root the state carries (the game links it to the claim's through the chain of roots).
    pub input_root: Hash,
    /// Halted, or trapped with its trap code.
    pub outcome: FinalOutcome,
}

/// The opening of a final (halted or trapped) state that lets anyone check how it ended and its output.
#[cfg(feature = "std")]
pub fn final_opening(header: &StateHeader, io: &crate::io::Io) -> alloc::vec::Vec<u8> {
    let mut out = alloc::vec::Vec::with_capacity(FINAL_OPENING_BYTES);
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(&io.input_root);
    out.extend_from_slice(&(io.output.len() as u64).to_le_bytes());
    out.extend_from_slice(&crate::io::output_tree(&io.output));
    out.extend_from_slice(&io.segment.to_le_bytes());
    out
}

/// Checks that `final_root` is a final guest state (halted, or trapped) whose output commitment is
/// `output_hash`, from the claim's `opening` (see [`final_opening`]); returns the input root the state
/// carries (the game links it to the claim's inputs through the chain of roots from the initial state)
/// and the outcome. An idle, running or returned state is not final and is refused.
///
/// A trapped run's output is what the guest wrote before the trap: the I/O hash covers it as it
/// covers a halted run's.
pub fn check_final(final_root: &Hash, output_hash: &Hash, opening: &[u8]) -> Result<FinalState, ProofError> {
    if opening.len() != FINAL_OPENING_BYTES {
        return Err(E::Malformed("final opening length"));
    }
    let header = crate::proof::decode_state_header(&opening[..StateHeader::BYTES])?;
    let rest = &opening[StateHeader::BYTES..];
    let mut ir = [0u8; 32];
    ir.copy_from_slice(&rest[..32]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&rest[32..40]);
    let len = u64::from_le_bytes(len);
    let mut tree = [0u8; 32];
    tree.copy_from_slice(&rest[40..72]);
    let mut seg = [0u8; 8];
    seg.copy_from_slice(&rest[72..80]);
    if header.root() != *final_root {
        return Err(E::PreRootMismatch);
    }
    // The trap byte is checked even though the root binds it: an outcome is only ever reported with a
    // code the machine can produce (a header with another one is no reachable state).
    let outcome = match header.status {
        StatusCode::Halted if header.trap == 0 => FinalOutcome::Halted,
        StatusCode::Halted => return Err(E::Inconsistent("a halted state with a trap code")),
        StatusCode::Trapped => {
            FinalOutcome::Trapped(TrapCode::from_code(header.trap).ok_or(E::Malformed("unknown trap code"))?)
        }
        StatusCode::Idle | StatusCode::Running | StatusCode::Returned => {
            return Err(E::Inconsistent("the final state is neither halted nor trapped"));
        }
    };
    if crate::io::io_hash(&ir, len, &tree, u64::from_le_bytes(seg)) != header.io {
        return Err(E::BadOpening("final I/O"));
    }
    if crate::io::output_hash(len, &tree) != *output_hash {
        return Err(E::BadOpening("output hash"));
    }
    Ok(FinalState { input_root: ir, outcome })
}

/// The root of a guest's initial state (idle before segment 0) over inputs with root
/// `input_root`, from the program's initial header (`GuestProgram::initial_header`).
pub fn initial_root(initial_header: &StateHeader, input_root: &Hash) -> Hash {
    let mut h = *initial_header;
    h.io = crate::io::io_hash(input_root, 0, &crate::io::output_tree(&[]), 0);
    h.root()
}

#[cfg(test)]
mod final_tests {
    use super::*;
    use crate::io::{io_hash, output_commitment, output_tree};

    const INPUT: Hash = [7; 32];

    /// A final-looking header with `status`/`trap` whose I/O commits to `output` after `segment` segments,
    /// and its opening in [`final_opening`]'s layout.
    fn state(status: StatusCode, trap: u8, output: &[u8], segment: u64) -> (Hash, Vec<u8>) {
        let tree = output_tree(output);
        let header = StateHeader {
            status,
            trap,
            globals: [1; 32],
            memories: [2; 32],
            dropped: [3; 32],
            io: io_hash(&INPUT, output.len() as u64, &tree, segment),
            ..NO_FRAME
        };
        let mut opening = header.encode().to_vec();
        opening.extend_from_slice(&INPUT);
        opening.extend_from_slice(&(output.len() as u64).to_le_bytes());
        opening.extend_from_slice(&tree);
        opening.extend_from_slice(&segment.to_le_bytes());
        (header.root(), opening)
    }

    #[test]
    fn a_halted_state_opens_to_halted() {
        let out = b"result";
        let (root, opening) = state(StatusCode::Halted, 0, out, 3);
        let got = check_final(&root, &output_commitment(out), &opening).unwrap();
        assert_eq!(got, FinalState { input_root: INPUT, outcome: FinalOutcome::Halted });
    }

    #[test]
    fn a_trapped_state_opens_to_its_trap_and_the_output_written_before_it() {
        for trap in TrapCode::ALL {
            let out = [trap as u8; 5];
            let (root, opening) = state(StatusCode::Trapped, trap as u8, &out, 1);
            let got = check_final(&root, &output_commitment(&out), &opening).unwrap();
            assert_eq!(got, FinalState { input_root: INPUT, outcome: FinalOutcome::Trapped(trap) });
            // The output is bound as for a halted state: another output (even empty) is refused.
            assert_eq!(check_final(&root, &output_commitment(&[]), &opening), Err(E::BadOpening("output hash")));
        }
        // A trap before any output: the empty output.
        let (root, opening) = state(StatusCode::Trapped, TrapCode::Unreachable as u8, &[], 0);
        let got = check_final(&root, &output_commitment(&[]), &opening).unwrap();
        assert_eq!(got.outcome, FinalOutcome::Trapped(TrapCode::Unreachable));
    }

    #[test]
    fn states_that_are_not_final_are_refused() {
        for status in [StatusCode::Idle, StatusCode::Running, StatusCode::Returned] {
            let (root, opening) = state(status, 0, b"x", 1);
            assert_eq!(
                check_final(&root, &output_commitment(b"x"), &opening),
                Err(E::Inconsistent("the final state is neither halted nor trapped")),
                "{status:?}"
            );
        }
    }

    #[test]
    fn trap_codes_must_fit_the_status() {
        for code in [0u8, 15, 255] {
            let (root, opening) = state(StatusCode::Trapped, code, b"", 1);
            assert_eq!(
                check_final(&root, &output_commitment(b""), &opening),
                Err(E::Malformed("unknown trap code")),
                "{code}"
            );
        }
        let (root, opening) = state(StatusCode::Halted, TrapCode::HostError as u8, b"", 1);
        assert_eq!(
            check_final(&root, &output_commitment(b""), &opening),
            Err(E::Inconsistent("a halted state with a trap code"))
        );
        assert_eq!(TrapCode::from_code(TrapCode::AbiViolation as u8), Some(TrapCode::AbiViolation));
        assert!(TrapCode::ALL.iter().enumerate().all(|(i, t)| *t as usize == i + 1), "ALL is in order");
    }

    #[test]
    fn openings_that_do_not_match_are_refused() {
        let out = b"abc";
        let (root, opening) = state(StatusCode::Trapped, TrapCode::IntegerOverflow as u8, out, 2);
        let h = output_commitment(out);
        assert_eq!(check_final(&root, &h, &opening[1..]), Err(E::Malformed("final opening length")));
        assert_eq!(check_final(&[0; 32], &h, &opening), Err(E::PreRootMismatch));
        // The trap code is part of the root: another code is another state.
        let mut other = opening.clone();
        other[1] = TrapCode::Unreachable as u8;
        assert_eq!(check_final(&root, &h, &other), Err(E::PreRootMismatch));
        // The I/O preimage must be the header's.
        let mut io = opening.clone();
        *io.last_mut().unwrap() ^= 1;
        assert_eq!(check_final(&root, &h, &io), Err(E::BadOpening("final I/O")));
    }
}
