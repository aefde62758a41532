//! The prover: builds the one-step proof of a machine's next instruction. It runs the machine's own
//! transition function ([`crate::exec::exec_op`]) over a recording wrapper of a copy of the
//! machine, noting every piece of state the instruction touches, then opens exactly those pieces
//! of the pre-state. Prover, stepper and verifier share the instruction semantics.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::convert::Infallible;

use crate::commit::StateHasher;
use crate::exec::{Acc, Access, exec_op};
use crate::hash::{Hash, ZERO, depth_for, merkle_path, slot_leaf};
use crate::host::Host;
use crate::instr::Branch;
use crate::live::Live;
use crate::machine::{Machine, Status};
use crate::program::ProgramIndex;
use crate::proof::{
    BlobOpening, DataOpening, ElemOpening, FrameOpening, FuncOpening, IoOpening, MAX_OPERANDS, MemoryOpening,
    OneStepProof, PageOpening, SlotOpening, TableOpening,
};
use crate::root::{
    PAGE_BYTES, StatusCode, TABLE_TREE_DEPTH, locals_root, operands_hash, slot_empties, table_tree_root,
};
use crate::value::{Slot, ValType};

/// Why a proof could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProveError {
    /// The step needs more operands revealed than a proof may carry.
    #[error("the step reads {0} operands, more than a proof can carry")]
    TooManyOperands(usize),
    /// Host function calls are proven by the guest ABI, not by this generic prover.
    #[error("host function calls cannot be proven by the generic prover")]
    HostCall,
}

/// What one instruction touched.
#[derive(Default, Debug)]
struct Log {
    /// Lowest operand depth reached relative to the pre-state top.
    need: usize,
    rel: isize,
    locals: BTreeSet<u32>,
    globals: BTreeSet<u32>,
    memories: bool,
    pages: BTreeSet<(u32, u32)>,
    tables: bool,
    elems: BTreeSet<(u32, u32)>,
    frame: bool,
    callee: Option<u32>,
    dropped: bool,
    datas: BTreeSet<u32>,
    data_chunks: BTreeSet<(u32, u32)>,
    elem_segs: BTreeSet<u32>,
    elem_items: BTreeSet<(u32, u32)>,
    host_call: bool,
    entered: bool,
    io: bool,
    blobs: BTreeSet<u32>,
    chunks: BTreeSet<(u32, u32)>,
    out_pages: BTreeSet<u32>,
}

impl Log {
    fn reach(&mut self, n: usize) {
        let need = n as isize - self.rel;
        if need > self.need as isize {
            self.need = need as usize;
        }
    }

    fn pages(&mut self, m: u32, addr: u64, len: usize) {
        self.memories = true;
        if len == 0 {
            return;
        }
        let first = addr / PAGE_BYTES as u64;
        let last = (addr + len as u64 - 1) / PAGE_BYTES as u64;
        for p in first..=last {
            self.pages.insert((m, p as u32));
        }
    }
}

struct Recorder<'a> {
    live: Live<'a>,
    log: Log,
}

impl Access for Recorder<'_> {
    type Error = Infallible;

    fn pc(&self) -> u32 {
        self.live.pc()
    }
    fn jump(&mut self, pc: u32) {
        self.live.jump(pc)
    }
    fn pop(&mut self) -> Acc<Slot, Infallible> {
        if !self.log.entered {
            self.log.reach(1);
            self.log.rel -= 1;
        }
        self.live.pop()
    }
    fn push(&mut self, v: Slot) -> Acc<(), Infallible> {
        self.log.rel += 1;
        self.live.push(v)
    }
    fn operands(&mut self, n: usize) -> Acc<&mut Vec<Slot>, Infallible> {
        self.log.reach(n);
        self.live.operands(n)
    }
    fn branch(&mut self, b: Branch) -> Acc<(), Infallible> {
        self.log.reach(b.keep as usize + b.drop as usize);
        self.live.branch(b)
    }
    fn local(&mut self, i: u32) -> Acc<Slot, Infallible> {
        self.log.locals.insert(i);
        self.live.local(i)
    }
    fn set_local(&mut self, i: u32, v: Slot) -> Acc<(), Infallible> {
        self.log.locals.insert(i);
        self.live.set_local(i, v)
    }
    fn global(&mut self, g: u32) -> Acc<Slot, Infallible> {
        self.log.globals.insert(g);
        self.live.global(g)
    }
    fn set_global(&mut self, g: u32, v: Slot) -> Acc<(), Infallible> {
        self.log.globals.insert(g);
        self.live.set_global(g, v)
    }
    fn mem_pages(&mut self, m: u32) -> Acc<u32, Infallible> {
        self.log.memories = true;
        self.live.mem_pages(m)
    }
    fn mem_read(&mut self, m: u32, addr: u64, out: &mut [u8]) -> Acc<(), Infallible> {
        self.log.pages(m, addr, out.len());
        self.live.mem_read(m, addr, out)
    }
    fn mem_write(&mut self, m: u32, addr: u64, data: &[u8]) -> Acc<(), Infallible> {
        self.log.pages(m, addr, data.len());
        self.live.mem_write(m, addr, data)
    }
    fn mem_grow(&mut self, m: u32, delta: u32) -> Acc<Option<u32>, Infallible> {
        self.log.memories = true;
        self.live.mem_grow(m, delta)
    }
    fn table_size(&mut self, t: u32) -> Acc<u32, Infallible> {
        self.log.tables = true;
        self.live.table_size(t)
    }
    fn table_get(&mut self, t: u32, i: u32) -> Acc<Slot, Infallible> {
        self.log.tables = true;
        self.log.elems.insert((t, i));
        self.live.table_get(t, i)
    }
    fn table_set(&mut self, t: u32, i: u32, v: Slot) -> Acc<(), Infallible> {
        self.log.tables = true;
        self.log.elems.insert((t, i));
        self.live.table_set(t, i, v)
    }
    fn table_grow(&mut self, t: u32, n: u32, init: Slot) -> Acc<Option<u32>, Infallible> {
        self.log.tables = true;
        self.live.table_grow(t, n, init)
    }
    fn data_len(&mut self, d: u32) -> Acc<u32, Infallible> {
        self.log.dropped = true;
        self.log.datas.insert(d);
        self.live.data_len(d)
    }
    fn data_read(&mut self, d: u32, offset: u32, out: &mut [u8]) -> Acc<(), Infallible> {
        self.log.datas.insert(d);
        if !out.is_empty() {
            let first = offset as usize / PAGE_BYTES;
            let last = (offset as usize + out.len() - 1) / PAGE_BYTES;
            for c in first..=last {
                self.log.data_chunks.insert((d, c as u32));
            }
        }
        self.live.data_read(d, offset, out)
    }
    fn data_drop(&mut self, d: u32) -> Acc<(), Infallible> {
        self.log.dropped = true;
        self.live.data_drop(d)
    }
    fn elem_len(&mut self, e: u32) -> Acc<u32, Infallible> {
        self.log.dropped = true;
        self.log.elem_segs.insert(e);
        self.live.elem_len(e)
    }
    fn elem_get(&mut self, e: u32, i: u32) -> Acc<Slot, Infallible> {
        self.log.elem_segs.insert(e);
        self.log.elem_items.insert((e, i));
        self.live.elem_get(e, i)
    }
    fn elem_drop(&mut self, e: u32) -> Acc<(), Infallible> {
        self.log.dropped = true;
        self.live.elem_drop(e)
    }
    fn func_type_id(&mut self, f: u32) -> Acc<u32, Infallible> {
        self.log.callee = Some(f);
        self.live.func_type_id(f)
    }
    fn abi_id(&mut self, f: u32) -> Acc<Option<u32>, Infallible> {
        self.log.callee = Some(f);
        self.live.abi_id(f)
    }
    fn input_len(&mut self, blob: u32) -> Acc<Option<u64>, Infallible> {
        self.log.io = true;
        let r = self.live.input_len(blob)?;
        if r.is_some() {
            self.log.blobs.insert(blob);
        }
        Ok(r)
    }
    fn input_read(&mut self, blob: u32, offset: u64, out: &mut [u8]) -> Acc<(), Infallible> {
        self.log.io = true;
        self.log.blobs.insert(blob);
        if !out.is_empty() {
            let first = offset / PAGE_BYTES as u64;
            let last = (offset + out.len() as u64 - 1) / PAGE_BYTES as u64;
            for c in first..=last {
                self.log.chunks.insert((blob, c as u32));
            }
        }
        self.live.input_read(blob, offset, out)
    }
    fn output_len(&mut self) -> Acc<u64, Infallible> {
        self.log.io = true;
        self.live.output_len()
    }
    fn output_append(&mut self, bytes: &[u8]) -> Acc<(), Infallible> {
        self.log.io = true;
        let len = self.live.output_len()?;
        if !bytes.is_empty() {
            let first = len / PAGE_BYTES as u64;
            let last = (len + bytes.len() as u64 - 1) / PAGE_BYTES as u64;
            for p in first..=last {
                self.log.out_pages.insert(p as u32);
            }
        }
        self.live.output_append(bytes)
    }
    fn call(&mut self, f: u32) -> Acc<(), Infallible> {
        self.log.callee = Some(f);
        let params = self.live.m.program.funcs[f as usize].code.params as usize;
        if self.live.m.program.funcs[f as usize].host.is_some() {
            self.log.host_call = true;
        }
        self.log.reach(params);
        self.log.entered = true;
        self.live.call(f)
    }
    fn ret(&mut self, results: u32) -> Acc<(), Infallible> {
        self.log.reach(results as usize);
        if !self.live.m.frames.is_empty() {
            self.log.frame = true;
        } else if self.live.m.io.is_some() {
            // The end of a guest segment updates the segment counter.
            self.log.io = true;
        }
        self.log.entered = true;
        self.live.ret(results)
    }
}

/// Builds the proof of `m`'s next instruction. `hasher` must be the hasher used for `m`'s roots
/// (it caches the memory trees the page paths come from); `index` is `m.program_index()`.
pub fn prove_step(m: &Machine, index: &ProgramIndex, hasher: &mut StateHasher) -> Result<OneStepProof, ProveError> {
    let header = hasher.header(m);
    let mut proof = OneStepProof {
        header,
        op: [0; crate::instr::OP_BYTES],
        op_path: Vec::new(),
        func: None,
        operands: Vec::new(),
        operands_rest: header.operands,
        locals: Vec::new(),
        globals: Vec::new(),
        memories: Vec::new(),
        pages: Vec::new(),
        tables: Vec::new(),
        table_elems: Vec::new(),
        frame: None,
        callee: None,
        dropped: None,
        datas: Vec::new(),
        elems: Vec::new(),
        io: None,
    };
    if header.status != StatusCode::Running {
        proof.operands_rest = ZERO;
        // The step from an idle guest state enters `opml_step`: it reads the segment counter and
        // the entry function.
        if let (Some(io), StatusCode::Idle) = (m.io.as_ref(), header.status) {
            proof.io = Some(io_opening(io, &Log::default()));
            proof.callee = Some(FuncOpening {
                index: io.entry,
                entry: index.funcs[io.entry as usize],
                path: index.func_path(io.entry),
            });
        }
        return Ok(proof);
    }
    // Record what the instruction touches, on a copy.
    let mut copy = m.clone();
    let op = copy.program.clone().funcs[copy.func as usize].code.ops[copy.pc as usize];
    let mut host = crate::host::NoHost;
    let mut rec =
        Recorder { live: Live { m: &mut copy, host: &mut host as &mut dyn Host, changed: false }, log: Log::default() };
    let _ = exec_op(&mut rec, &op);
    let log = rec.log;
    if log.host_call {
        return Err(ProveError::HostCall);
    }

    let entry = index.funcs[m.func as usize];
    proof.op = op.encode();
    proof.op_path = index.code_path(entry.code_base + m.pc);
    proof.func = Some(FuncOpening { index: m.func, entry, path: index.func_path(m.func) });

    // Operands of the current frame.
    let fp = m.fp as usize;
    let nl = entry.frame_locals() as usize;
    let ops = &m.stack[fp + nl..];
    let reveal = log.need.min(ops.len());
    if reveal > MAX_OPERANDS {
        return Err(ProveError::TooManyOperands(reveal));
    }
    proof.operands = ops[ops.len() - reveal..].to_vec();
    proof.operands_rest = operands_hash(&ops[..ops.len() - reveal]);

    // Locals.
    let locals = &m.stack[fp..fp + nl];
    let depth = depth_for(nl as u64);
    let leaves: Vec<Hash> = locals.iter().map(|s| slot_leaf(*s)).collect();
    let empty = slot_empties(depth);
    for &i in &log.locals {
        let path = merkle_path(&leaves, depth, &empty, i as u64);
        proof.locals.push(SlotOpening { index: i, slot: locals[i as usize], path });
    }
    debug_assert_eq!(locals_root(locals), header.locals);

    // Globals.
    if !log.globals.is_empty() {
        let depth = depth_for(m.globals.len() as u64);
        let leaves: Vec<Hash> = m.globals.iter().map(|s| slot_leaf(*s)).collect();
        let empty = slot_empties(depth);
        for &g in &log.globals {
            let path = merkle_path(&leaves, depth, &empty, g as u64);
            proof.globals.push(SlotOpening { index: g, slot: m.globals[g as usize], path });
        }
    }

    // Memories and pages.
    if log.memories || !log.pages.is_empty() {
        for (i, mem) in m.memories.iter().enumerate() {
            let tree = hasher.memory_tree(i, mem);
            proof.memories.push(MemoryOpening { pages: mem.pages(), max: mem.max_pages(), tree });
        }
        for &(mi, p) in &log.pages {
            let mem = &m.memories[mi as usize];
            let bytes = mem.chunk(p as usize).map_or_else(|| alloc::vec![0u8; PAGE_BYTES], |c| c.to_vec());
            let path = hasher.page_path(mi as usize, p as u64);
            proof.pages.push(PageOpening { mem: mi, index: p, bytes, path });
        }
    }

    // Tables and elements.
    if log.tables || !log.elems.is_empty() {
        for t in &m.tables {
            let ty = if t.ty == ValType::FuncRef { 0 } else { 1 };
            proof.tables.push(TableOpening {
                elem_type: ty,
                size: t.size(),
                max: t.max,
                tree: table_tree_root(&t.elems),
            });
        }
        let empty = slot_empties(TABLE_TREE_DEPTH);
        for &(ti, i) in &log.elems {
            let t = &m.tables[ti as usize];
            let leaves: Vec<Hash> = t.elems.iter().map(|s| slot_leaf(*s)).collect();
            let path = merkle_path(&leaves, TABLE_TREE_DEPTH, &empty, i as u64);
            let slot = t.elems.get(i as usize).copied().unwrap_or(0);
            proof.table_elems.push((ti, SlotOpening { index: i, slot, path }));
        }
    }

    // The caller frame (for a return).
    if log.frame {
        let k = m.frames.len() - 1;
        let fr = m.frames[k];
        let n = {
            let c = &m.program.funcs[fr.func as usize].code;
            (c.params + c.num_locals) as usize
        };
        let f_fp = fr.fp as usize;
        let end = m.fp as usize;
        let locals = locals_root(&m.stack[f_fp..f_fp + n]);
        let operands = operands_hash(&m.stack[f_fp + n..end]);
        let mut rest = ZERO;
        for (i, below) in m.frames[..k].iter().enumerate() {
            let next_fp = m.frames[i + 1].fp as usize;
            let bn = {
                let c = &m.program.funcs[below.func as usize].code;
                (c.params + c.num_locals) as usize
            };
            let b_fp = below.fp as usize;
            let fh = crate::root::frame_hash(
                below.func,
                below.pc,
                bn as u32,
                (next_fp - b_fp - bn) as u32,
                &locals_root(&m.stack[b_fp..b_fp + bn]),
                &operands_hash(&m.stack[b_fp + bn..next_fp]),
            );
            rest = crate::root::frame_link(&rest, &fh);
        }
        proof.frame = Some(FrameOpening {
            func: fr.func,
            pc: fr.pc,
            n_locals: n as u32,
            n_ops: (end - f_fp - n) as u32,
            locals,
            operands,
            rest,
        });
    }
    if let Some(f) = log.callee {
        proof.callee = Some(FuncOpening { index: f, entry: index.funcs[f as usize], path: index.func_path(f) });
    }
    if log.dropped {
        proof.dropped = Some((m.data_dropped.clone(), m.elem_dropped.clone()));
    }
    for &d in &log.datas {
        let bytes = &m.program.datas[d as usize];
        let leaves = &index.datas[d as usize].0;
        let cdepth = depth_for(leaves.len() as u64);
        let chunks_root = crate::hash::merkle_root(leaves, cdepth, &crate::program::chunk_empties(cdepth));
        let chunks = log
            .data_chunks
            .iter()
            .filter(|(seg, _)| *seg == d)
            .map(|&(_, c)| {
                let mut page = alloc::vec![0u8; PAGE_BYTES];
                let start = c as usize * PAGE_BYTES;
                let end = (start + PAGE_BYTES).min(bytes.len());
                page[..end - start].copy_from_slice(&bytes[start..end]);
                (c, page, index.data_chunk_path(d, c))
            })
            .collect();
        proof.datas.push(DataOpening {
            segment: d,
            len: bytes.len() as u32,
            chunks_root,
            path: index.data_path(d),
            chunks,
        });
    }
    for &e in &log.elem_segs {
        let items = &m.program.elems[e as usize];
        let leaves = &index.elems[e as usize].0;
        let idepth = depth_for(leaves.len() as u64);
        let items_root = crate::hash::merkle_root(leaves, idepth, &slot_empties(idepth));
        let opened = log
            .elem_items
            .iter()
            .filter(|(seg, _)| *seg == e)
            .map(|&(_, i)| SlotOpening { index: i, slot: items[i as usize], path: index.elem_item_path(e, i) })
            .collect();
        proof.elems.push(ElemOpening {
            segment: e,
            len: items.len() as u32,
            items_root,
            path: index.elem_path(e),
            items: opened,
        });
    }
    if log.io
        && let Some(io) = m.io.as_ref()
    {
        proof.io = Some(io_opening(io, &log));
    }
    let _ = Status::Running;
    Ok(proof)
}

/// Opens the I/O component with the blobs, chunks and output pages the step touches.
fn io_opening(io: &crate::io::Io, log: &Log) -> IoOpening {
    use crate::io::{OUTPUT_TREE_DEPTH, chunk_leaf, output_empties};
    let inputs = &io.inputs;
    let blobs = log
        .blobs
        .iter()
        .filter(|b| (**b as usize) < inputs.blobs.len())
        .map(|&b| {
            let blob = &inputs.blobs[b as usize];
            BlobOpening {
                index: b,
                len: blob.bytes.len() as u64,
                chunks_root: blob.tree.root(),
                path: inputs.tree.path(b as u64),
            }
        })
        .collect();
    let chunks = log
        .chunks
        .iter()
        .map(|&(b, c)| {
            let blob = &inputs.blobs[b as usize];
            (b, c, blob.chunk(c), blob.tree.path(c as u64))
        })
        .collect();
    let out_leaves: Vec<Hash> = io.output.chunks(PAGE_BYTES).map(chunk_leaf).collect();
    let empty = output_empties();
    let output_pages = log
        .out_pages
        .iter()
        .map(|&p| {
            let mut page = alloc::vec![0u8; PAGE_BYTES];
            let start = (p as usize * PAGE_BYTES).min(io.output.len());
            let end = (start + PAGE_BYTES).min(io.output.len());
            page[..end - start].copy_from_slice(&io.output[start..end]);
            (p, page, merkle_path(&out_leaves, OUTPUT_TREE_DEPTH, &empty, p as u64))
        })
        .collect();
    IoOpening {
        input_root: io.input_root,
        output_len: io.output.len() as u64,
        output_tree: crate::io::output_tree(&io.output),
        segment: io.segment,
        n_blobs: inputs.blobs.len() as u32,
        blobs_tree: inputs.tree.root(),
        blobs,
        chunks,
        output_pages,
    }
}
