//! The one-step proof: its types and its byte encoding (layout in docs/state-root.md).
//!
//! Decoding untrusted bytes never panics and never allocates more than the input could justify:
//! every count is checked against a fixed maximum and against the bytes that remain.

use alloc::vec::Vec;

use crate::hash::Hash;
use crate::instr::OP_BYTES;
use crate::program::FuncEntry;
use crate::root::{PAGE_BYTES, StateHeader, StatusCode};
use crate::value::Slot;

/// Encoding version (first byte of every proof).
pub const PROOF_VERSION: u8 = 1;
/// Largest accepted proof.
pub const MAX_PROOF_BYTES: usize = 256 * 1024;
/// Most operands a proof may reveal (a branch may drop up to a function's operand height).
pub const MAX_OPERANDS: usize = 8192;
/// Longest Merkle path (table trees are 32 high).
pub const MAX_PATH: usize = 32;
/// Most openings of one kind in a proof.
pub const MAX_OPENINGS: usize = 64;

/// Why a proof was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The encoding is malformed.
    #[error("malformed proof: {0}")]
    Malformed(&'static str),
    /// The proof is larger than [`MAX_PROOF_BYTES`].
    #[error("proof of {0} bytes exceeds the maximum")]
    TooLarge(usize),
    /// The revealed header does not hash to the claimed pre-state root.
    #[error("the proof's state header does not match the pre-state root")]
    PreRootMismatch,
    /// A Merkle path or hash chain does not lead to the committed value.
    #[error("invalid opening: {0}")]
    BadOpening(&'static str),
    /// The instruction needed data the proof does not contain.
    #[error("proof lacks {0}")]
    Missing(&'static str),
    /// The revealed state is not one any execution can reach.
    #[error("inconsistent state: {0}")]
    Inconsistent(&'static str),
    /// The step cannot be proven by this verifier version.
    #[error("unsupported step: {0}")]
    Unsupported(&'static str),
}

/// A leaf of a slot tree (local, global, table element, element-segment item) with its path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotOpening {
    /// Leaf index.
    pub index: u32,
    /// The slot.
    pub slot: Slot,
    /// Siblings, bottom-up.
    pub path: Vec<Hash>,
}

/// A memory page with its path in the memory's page tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageOpening {
    /// Memory address.
    pub mem: u32,
    /// Page index (byte address / 4096).
    pub index: u32,
    /// The 4096 bytes.
    pub bytes: Vec<u8>,
    /// Siblings, bottom-up.
    pub path: Vec<Hash>,
}

/// One memory's commitment preimage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryOpening {
    /// Size in pages.
    pub pages: u32,
    /// Declared maximum.
    pub max: Option<u32>,
    /// Page-tree root.
    pub tree: Hash,
}

/// One table's commitment preimage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableOpening {
    /// 0 funcref, 1 externref.
    pub elem_type: u8,
    /// Size.
    pub size: u32,
    /// Declared maximum.
    pub max: Option<u32>,
    /// Element-tree root.
    pub tree: Hash,
}

/// The innermost suspended frame, with the chain beneath it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameOpening {
    /// Function address.
    pub func: u32,
    /// Continuation pc.
    pub pc: u32,
    /// Locals of the frame.
    pub n_locals: u32,
    /// Operands of the frame.
    pub n_ops: u32,
    /// Locals root.
    pub locals: Hash,
    /// Operand chain.
    pub operands: Hash,
    /// The frame chain beneath this frame.
    pub rest: Hash,
}

/// A function-table entry with its address and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncOpening {
    /// Function address.
    pub index: u32,
    /// The entry.
    pub entry: FuncEntry,
    /// Siblings, bottom-up.
    pub path: Vec<Hash>,
}

/// A data segment's commitment with some of its chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataOpening {
    /// Segment index.
    pub segment: u32,
    /// Segment length in bytes.
    pub len: u32,
    /// Chunk-tree root.
    pub chunks_root: Hash,
    /// Path of the segment commitment in the program's data tree.
    pub path: Vec<Hash>,
    /// Chunks: (index, 4096 bytes, path in the chunk tree).
    pub chunks: Vec<(u32, Vec<u8>, Vec<Hash>)>,
}

/// An element segment's commitment with some of its items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElemOpening {
    /// Segment index.
    pub segment: u32,
    /// Number of items.
    pub len: u32,
    /// Item-tree root.
    pub items_root: Hash,
    /// Path of the segment commitment in the program's element tree.
    pub path: Vec<Hash>,
    /// Items with their paths in the item tree.
    pub items: Vec<SlotOpening>,
}

/// An input blob's commitment with its path in the input tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobOpening {
    /// Blob index.
    pub index: u32,
    /// Blob length in bytes.
    pub len: u64,
    /// Root over the blob's chunks.
    pub chunks_root: Hash,
    /// Path in the tree over blob commitments.
    pub path: Vec<Hash>,
}

/// The guest I/O component, opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoOpening {
    /// Input root.
    pub input_root: Hash,
    /// Output length.
    pub output_len: u64,
    /// Output page-tree root.
    pub output_tree: Hash,
    /// Segments completed.
    pub segment: u64,
    /// Number of input blobs (preimage of the input root).
    pub n_blobs: u32,
    /// Root over blob commitments (preimage of the input root).
    pub blobs_tree: Hash,
    /// Opened blobs.
    pub blobs: Vec<BlobOpening>,
    /// Opened input chunks: (blob, chunk index, 4096 bytes, path in the blob's chunk tree).
    pub chunks: Vec<(u32, u32, Vec<u8>, Vec<Hash>)>,
    /// Opened output pages: (page index, 4096 bytes, path in the output tree).
    pub output_pages: Vec<(u32, Vec<u8>, Vec<Hash>)>,
}

/// Everything the instruction at a state reads, with proofs against that state's root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneStepProof {
    /// The pre-state header; hashes to the pre-state root.
    pub header: StateHeader,
    /// The encoded instruction at (func, pc) and its code-tree path (empty if not running).
    pub op: [u8; OP_BYTES],
    /// Code-tree path of the instruction.
    pub op_path: Vec<Hash>,
    /// The current function's entry (absent if not running).
    pub func: Option<FuncOpening>,
    /// Top operands of the current frame, bottom first.
    pub operands: Vec<Slot>,
    /// Chain of the operands beneath the revealed ones.
    pub operands_rest: Hash,
    /// Opened locals of the current frame.
    pub locals: Vec<SlotOpening>,
    /// Opened globals.
    pub globals: Vec<SlotOpening>,
    /// All memories (if the step touches memory).
    pub memories: Vec<MemoryOpening>,
    /// Opened memory pages.
    pub pages: Vec<PageOpening>,
    /// All tables (if the step touches a table).
    pub tables: Vec<TableOpening>,
    /// Opened table elements: (table, opening).
    pub table_elems: Vec<(u32, SlotOpening)>,
    /// The innermost suspended frame (for a return).
    pub frame: Option<FrameOpening>,
    /// The called function's entry (for calls).
    pub callee: Option<FuncOpening>,
    /// Dropped flags of data and element segments (for bulk segment ops).
    pub dropped: Option<(Vec<bool>, Vec<bool>)>,
    /// Opened data segments.
    pub datas: Vec<DataOpening>,
    /// Opened element segments.
    pub elems: Vec<ElemOpening>,
    /// The guest I/O component (for ABI calls and segment boundaries).
    pub io: Option<IoOpening>,
}

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn slot(&mut self, v: Slot) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn hash(&mut self, h: &Hash) {
        self.0.extend_from_slice(h);
    }
    fn count(&mut self, n: usize) {
        self.u32(n as u32);
    }
    fn path(&mut self, p: &[Hash]) {
        self.u8(p.len() as u8);
        for h in p {
            self.hash(h);
        }
    }
    fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            Some(x) => {
                self.u8(1);
                self.u32(x);
            }
            None => self.u8(0),
        }
    }
    fn slot_opening(&mut self, o: &SlotOpening) {
        self.u32(o.index);
        self.slot(o.slot);
        self.path(&o.path);
    }
    fn func(&mut self, f: &FuncOpening) {
        self.u32(f.index);
        self.0.extend_from_slice(&f.entry.encode());
        self.path(&f.path);
    }
    fn flags(&mut self, f: &[bool]) {
        self.count(f.len());
        for b in f {
            self.u8(*b as u8);
        }
    }
}

struct R<'a> {
    buf: &'a [u8],
    pos: usize,
}

type Res<T> = Result<T, ProofError>;

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(ProofError::Malformed("length overflow"))?;
        let s = self.buf.get(self.pos..end).ok_or(ProofError::Malformed("truncated"))?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Res<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Res<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Res<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn slot(&mut self) -> Res<Slot> {
        let mut b = [0u8; 16];
        b.copy_from_slice(self.take(16)?);
        Ok(Slot::from_le_bytes(b))
    }
    fn hash(&mut self) -> Res<Hash> {
        let mut b = [0u8; 32];
        b.copy_from_slice(self.take(32)?);
        Ok(b)
    }
    /// A count of items of at least `min_item` bytes each, at most `max`.
    fn count(&mut self, max: usize, min_item: usize) -> Res<usize> {
        let n = self.u32()? as usize;
        if n > max || n.saturating_mul(min_item) > self.buf.len() - self.pos {
            return Err(ProofError::Malformed("count out of range"));
        }
        Ok(n)
    }
    fn path(&mut self) -> Res<Vec<Hash>> {
        let n = self.u8()? as usize;
        if n > MAX_PATH {
            return Err(ProofError::Malformed("path too long"));
        }
        (0..n).map(|_| self.hash()).collect()
    }
    fn opt_u32(&mut self) -> Res<Option<u32>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.u32()?)),
            _ => Err(ProofError::Malformed("bad option tag")),
        }
    }
    fn flag(&mut self) -> Res<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ProofError::Malformed("bad flag")),
        }
    }
    fn slot_opening(&mut self) -> Res<SlotOpening> {
        Ok(SlotOpening { index: self.u32()?, slot: self.slot()?, path: self.path()? })
    }
    fn func(&mut self) -> Res<FuncOpening> {
        let index = self.u32()?;
        let mut e = [0u8; FuncEntry::BYTES];
        e.copy_from_slice(self.take(FuncEntry::BYTES)?);
        Ok(FuncOpening { index, entry: FuncEntry::decode(&e), path: self.path()? })
    }
    fn flags(&mut self) -> Res<Vec<bool>> {
        let n = self.count(1 << 16, 1)?;
        (0..n).map(|_| self.flag()).collect()
    }
    fn page(&mut self) -> Res<Vec<u8>> {
        Ok(self.take(PAGE_BYTES)?.to_vec())
    }
}

/// Decodes a state header's fixed encoding ([`StateHeader::encode`]).
pub fn decode_state_header(b: &[u8]) -> Res<StateHeader> {
    if b.len() != StateHeader::BYTES {
        return Err(ProofError::Malformed("header length"));
    }
    let status = match b[0] {
        0 => StatusCode::Idle,
        1 => StatusCode::Running,
        2 => StatusCode::Returned,
        3 => StatusCode::Trapped,
        4 => StatusCode::Halted,
        _ => return Err(ProofError::Malformed("bad status")),
    };
    let w = |i: usize| u32::from_le_bytes([b[2 + 4 * i], b[3 + 4 * i], b[4 + 4 * i], b[5 + 4 * i]]);
    let h = |i: usize| -> Hash {
        let mut out = [0u8; 32];
        out.copy_from_slice(&b[34 + 32 * i..66 + 32 * i]);
        out
    };
    let mut steps = [0u8; 8];
    steps.copy_from_slice(&b[26..34]);
    Ok(StateHeader {
        status,
        trap: b[1],
        func: w(0),
        pc: w(1),
        depth: w(2),
        height: w(3),
        n_ops: w(4),
        n_locals: w(5),
        seg_steps: u64::from_le_bytes(steps),
        operands: h(0),
        locals: h(1),
        frames: h(2),
        globals: h(3),
        memories: h(4),
        tables: h(5),
        dropped: h(6),
        io: h(7),
    })
}

impl OneStepProof {
    /// The byte encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = W(Vec::with_capacity(1024));
        w.u8(PROOF_VERSION);
        w.0.extend_from_slice(&self.header.encode());
        w.0.extend_from_slice(&self.op);
        w.path(&self.op_path);
        match &self.func {
            Some(f) => {
                w.u8(1);
                w.func(f);
            }
            None => w.u8(0),
        }
        w.count(self.operands.len());
        for s in &self.operands {
            w.slot(*s);
        }
        w.hash(&self.operands_rest);
        for list in [&self.locals, &self.globals] {
            w.count(list.len());
            for o in list {
                w.slot_opening(o);
            }
        }
        w.count(self.memories.len());
        for m in &self.memories {
            w.u32(m.pages);
            w.opt_u32(m.max);
            w.hash(&m.tree);
        }
        w.count(self.pages.len());
        for p in &self.pages {
            w.u32(p.mem);
            w.u32(p.index);
            w.0.extend_from_slice(&p.bytes);
            w.path(&p.path);
        }
        w.count(self.tables.len());
        for t in &self.tables {
            w.u8(t.elem_type);
            w.u32(t.size);
            w.opt_u32(t.max);
            w.hash(&t.tree);
        }
        w.count(self.table_elems.len());
        for (t, o) in &self.table_elems {
            w.u32(*t);
            w.slot_opening(o);
        }
        match &self.frame {
            Some(f) => {
                w.u8(1);
                for v in [f.func, f.pc, f.n_locals, f.n_ops] {
                    w.u32(v);
                }
                w.hash(&f.locals);
                w.hash(&f.operands);
                w.hash(&f.rest);
            }
            None => w.u8(0),
        }
        match &self.callee {
            Some(f) => {
                w.u8(1);
                w.func(f);
            }
            None => w.u8(0),
        }
        match &self.dropped {
            Some((d, e)) => {
                w.u8(1);
                w.flags(d);
                w.flags(e);
            }
            None => w.u8(0),
        }
        w.count(self.datas.len());
        for d in &self.datas {
            w.u32(d.segment);
            w.u32(d.len);
            w.hash(&d.chunks_root);
            w.path(&d.path);
            w.count(d.chunks.len());
            for (i, bytes, path) in &d.chunks {
                w.u32(*i);
                w.0.extend_from_slice(bytes);
                w.path(path);
            }
        }
        w.count(self.elems.len());
        for e in &self.elems {
            w.u32(e.segment);
            w.u32(e.len);
            w.hash(&e.items_root);
            w.path(&e.path);
            w.count(e.items.len());
            for o in &e.items {
                w.slot_opening(o);
            }
        }
        match &self.io {
            Some(io) => {
                w.u8(1);
                w.hash(&io.input_root);
                w.u64(io.output_len);
                w.hash(&io.output_tree);
                w.u64(io.segment);
                w.u32(io.n_blobs);
                w.hash(&io.blobs_tree);
                w.count(io.blobs.len());
                for b in &io.blobs {
                    w.u32(b.index);
                    w.u64(b.len);
                    w.hash(&b.chunks_root);
                    w.path(&b.path);
                }
                w.count(io.chunks.len());
                for (blob, i, bytes, path) in &io.chunks {
                    w.u32(*blob);
                    w.u32(*i);
                    w.0.extend_from_slice(bytes);
                    w.path(path);
                }
                w.count(io.output_pages.len());
                for (i, bytes, path) in &io.output_pages {
                    w.u32(*i);
                    w.0.extend_from_slice(bytes);
                    w.path(path);
                }
            }
            None => w.u8(0),
        }
        w.0
    }

    /// Decodes untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<OneStepProof, ProofError> {
        if bytes.len() > MAX_PROOF_BYTES {
            return Err(ProofError::TooLarge(bytes.len()));
        }
        let mut r = R { buf: bytes, pos: 0 };
        if r.u8()? != PROOF_VERSION {
            return Err(ProofError::Malformed("unknown version"));
        }
        let header = decode_state_header(r.take(StateHeader::BYTES)?)?;
        let mut op = [0u8; OP_BYTES];
        op.copy_from_slice(r.take(OP_BYTES)?);
        let op_path = r.path()?;
        let func = if r.flag()? { Some(r.func()?) } else { None };
        let n = r.count(MAX_OPERANDS, 16)?;
        let operands = (0..n).map(|_| r.slot()).collect::<Res<Vec<_>>>()?;
        let operands_rest = r.hash()?;
        let n = r.count(MAX_OPENINGS, 21)?;
        let locals = (0..n).map(|_| r.slot_opening()).collect::<Res<Vec<_>>>()?;
        let n = r.count(MAX_OPENINGS, 21)?;
        let globals = (0..n).map(|_| r.slot_opening()).collect::<Res<Vec<_>>>()?;
        let n = r.count(MAX_OPENINGS, 37)?;
        let memories = (0..n)
            .map(|_| Ok(MemoryOpening { pages: r.u32()?, max: r.opt_u32()?, tree: r.hash()? }))
            .collect::<Res<Vec<_>>>()?;
        let n = r.count(MAX_OPENINGS, 8 + PAGE_BYTES)?;
        let pages = (0..n)
            .map(|_| Ok(PageOpening { mem: r.u32()?, index: r.u32()?, bytes: r.page()?, path: r.path()? }))
            .collect::<Res<Vec<_>>>()?;
        let n = r.count(MAX_OPENINGS, 38)?;
        let tables = (0..n)
            .map(|_| Ok(TableOpening { elem_type: r.u8()?, size: r.u32()?, max: r.opt_u32()?, tree: r.hash()? }))
            .collect::<Res<Vec<_>>>()?;
        let n = r.count(MAX_OPENINGS, 25)?;
        let table_elems = (0..n).map(|_| Ok((r.u32()?, r.slot_opening()?))).collect::<Res<Vec<_>>>()?;
        let frame = if r.flag()? {
            Some(FrameOpening {
                func: r.u32()?,
                pc: r.u32()?,
                n_locals: r.u32()?,
                n_ops: r.u32()?,
                locals: r.hash()?,
                operands: r.hash()?,
                rest: r.hash()?,
            })
        } else {
            None
        };
        let callee = if r.flag()? { Some(r.func()?) } else { None };
        let dropped = if r.flag()? { Some((r.flags()?, r.flags()?)) } else { None };
        let n = r.count(MAX_OPENINGS, 45)?;
        let datas = (0..n)
            .map(|_| {
                let (segment, len, chunks_root, path) = (r.u32()?, r.u32()?, r.hash()?, r.path()?);
                let k = r.count(MAX_OPENINGS, 5 + PAGE_BYTES)?;
                let chunks = (0..k).map(|_| Ok((r.u32()?, r.page()?, r.path()?))).collect::<Res<Vec<_>>>()?;
                Ok(DataOpening { segment, len, chunks_root, path, chunks })
            })
            .collect::<Res<Vec<_>>>()?;
        let n = r.count(MAX_OPENINGS, 45)?;
        let elems = (0..n)
            .map(|_| {
                let (segment, len, items_root, path) = (r.u32()?, r.u32()?, r.hash()?, r.path()?);
                let k = r.count(MAX_OPENINGS, 21)?;
                let items = (0..k).map(|_| r.slot_opening()).collect::<Res<Vec<_>>>()?;
                Ok(ElemOpening { segment, len, items_root, path, items })
            })
            .collect::<Res<Vec<_>>>()?;
        let io = if r.flag()? {
            let (input_root, output_len, output_tree, segment) = (r.hash()?, r.u64()?, r.hash()?, r.u64()?);
            let (n_blobs, blobs_tree) = (r.u32()?, r.hash()?);
            let n = r.count(MAX_OPENINGS, 45)?;
            let blobs = (0..n)
                .map(|_| Ok(BlobOpening { index: r.u32()?, len: r.u64()?, chunks_root: r.hash()?, path: r.path()? }))
                .collect::<Res<Vec<_>>>()?;
            let n = r.count(MAX_OPENINGS, 9 + PAGE_BYTES)?;
            let chunks = (0..n).map(|_| Ok((r.u32()?, r.u32()?, r.page()?, r.path()?))).collect::<Res<Vec<_>>>()?;
            let n = r.count(MAX_OPENINGS, 5 + PAGE_BYTES)?;
            let output_pages = (0..n).map(|_| Ok((r.u32()?, r.page()?, r.path()?))).collect::<Res<Vec<_>>>()?;
            Some(IoOpening {
                input_root,
                output_len,
                output_tree,
                segment,
                n_blobs,
                blobs_tree,
                blobs,
                chunks,
                output_pages,
            })
        } else {
            None
        };
        if r.pos != bytes.len() {
            return Err(ProofError::Malformed("trailing bytes"));
        }
        Ok(OneStepProof {
            header,
            op,
            op_path,
            func,
            operands,
            operands_rest,
            locals,
            globals,
            memories,
            pages,
            tables,
            table_elems,
            frame,
            callee,
            dropped,
            datas,
            elems,
            io,
        })
    }
}
