//! Computing the state root of a full [`Machine`], incrementally: memory page leaves are rehashed
//! only for pages written since the previous root (found through the copy-on-write chunks), and
//! only their paths to the root are recomputed.

use alloc::vec::Vec;

use crate::hash::{Hash, ZERO, node, page_leaf};
use crate::machine::{Machine, Status};
use crate::memory::Memory;
use crate::root::{
    MEMORY_TREE_DEPTH, StateHeader, StatusCode, dropped_hash, frame_hash, frame_link, globals_root, list_link,
    locals_root, memory_commitment, memory_empties, operands_hash, table_commitment, table_tree_root,
};
use crate::value::ValType;

/// The levels of a memory page tree over the populated prefix of pages, updated along the paths of
/// changed pages only. Shared by the stepper's hasher and the fast engine.
#[derive(Clone, Debug, Default)]
pub(crate) struct PageLevels {
    /// `levels[0]` are page leaves; `levels[l]` the nodes of height `l`.
    levels: Vec<Vec<Hash>>,
}

impl PageLevels {
    /// Number of leaves currently materialised.
    pub(crate) fn len(&self) -> usize {
        self.levels.first().map_or(0, |l| l.len())
    }

    /// Resizes to `n` pages, sets the leaves of `dirty` (ascending) from `leaf`, rehashes their
    /// paths, and returns the root.
    pub(crate) fn update(
        &mut self,
        n: usize,
        mut dirty: Vec<usize>,
        leaf: impl Fn(usize) -> Hash,
        empty: &[Hash],
    ) -> Hash {
        if self.levels.is_empty() {
            self.levels = (0..=MEMORY_TREE_DEPTH).map(|_| Vec::new()).collect();
        }
        self.levels[0].resize(n, empty[0]);
        for &i in &dirty {
            self.levels[0][i] = leaf(i);
        }
        let mut width = n;
        for l in 1..=MEMORY_TREE_DEPTH as usize {
            width = width.div_ceil(2);
            self.levels[l].resize(width, empty[l]);
            let mut parents: Vec<usize> = dirty.iter().map(|i| i / 2).collect();
            parents.dedup();
            for &p in &parents {
                let left = self.levels[l - 1].get(2 * p).copied().unwrap_or(empty[l - 1]);
                let right = self.levels[l - 1].get(2 * p + 1).copied().unwrap_or(empty[l - 1]);
                self.levels[l][p] = node(&left, &right);
            }
            dirty = parents;
        }
        self.root(empty)
    }

    /// The root.
    pub(crate) fn root(&self, empty: &[Hash]) -> Hash {
        let top = MEMORY_TREE_DEPTH as usize;
        self.levels.get(top).and_then(|l| l.first()).copied().unwrap_or(empty[top])
    }

    /// Siblings of page `page`, bottom-up.
    pub(crate) fn path(&self, page: u64, empty: &[Hash]) -> Vec<Hash> {
        let mut path = Vec::with_capacity(MEMORY_TREE_DEPTH as usize);
        let mut idx = page as usize;
        for (l, e) in empty.iter().enumerate().take(MEMORY_TREE_DEPTH as usize) {
            path.push(self.levels.get(l).and_then(|lv| lv.get(idx ^ 1)).copied().unwrap_or(*e));
            idx >>= 1;
        }
        path
    }
}

/// Page tree of one memory, kept between root computations.
#[derive(Clone, Debug, Default)]
struct PageTree {
    /// The memory as of the last update (a copy-on-write clone, used to find changed pages).
    last: Option<Memory>,
    levels: PageLevels,
}

impl PageTree {
    fn update(&mut self, mem: &Memory, empty: &[Hash]) -> Hash {
        let n = mem.chunk_count();
        let known = self.levels.len();
        let dirty: Vec<usize> = (0..n)
            .filter(|&i| !(i < known && self.last.as_ref().is_some_and(|l| mem.chunk_shared_with(l, i))))
            .collect();
        let root = self.levels.update(n, dirty, |i| page_leaf(mem.chunk(i).expect("index below chunk count")), empty);
        self.last = Some(mem.clone());
        root
    }
}

/// Computes state roots of one machine over time, reusing the memory page trees between calls.
#[derive(Clone, Debug, Default)]
pub struct StateHasher {
    pages: Vec<PageTree>,
    empty: Vec<Hash>,
}

impl StateHasher {
    /// A hasher with no cached trees.
    pub fn new() -> Self {
        Self { pages: Vec::new(), empty: memory_empties() }
    }

    /// Root of memory `i`'s page tree (updating the cache).
    pub fn memory_tree(&mut self, i: usize, mem: &Memory) -> Hash {
        if self.empty.is_empty() {
            self.empty = memory_empties();
        }
        if self.pages.len() <= i {
            self.pages.resize(i + 1, PageTree::default());
        }
        self.pages[i].update(mem, &self.empty)
    }

    /// Sibling path of page `page` of memory `i` (as of the last [`StateHasher::memory_tree`]).
    pub fn page_path(&self, i: usize, page: u64) -> Vec<Hash> {
        self.pages[i].levels.path(page, &self.empty)
    }

    /// The header (root preimage) of the machine's current state.
    pub fn header(&mut self, m: &Machine) -> StateHeader {
        let mut memories = ZERO;
        for (i, mem) in m.memories.iter().enumerate() {
            let tree = self.memory_tree(i, mem);
            memories = list_link(&memories, &memory_commitment(mem.pages(), mem.max_pages(), &tree));
        }
        let mut tables = ZERO;
        for t in &m.tables {
            let ty = if t.ty == ValType::FuncRef { 0 } else { 1 };
            tables = list_link(&tables, &table_commitment(ty, t.size(), t.max, &table_tree_root(&t.elems)));
        }
        let mut h = StateHeader {
            globals: globals_root(&m.globals),
            memories,
            tables,
            dropped: dropped_hash(&m.data_dropped, &m.elem_dropped),
            io: m.io.as_ref().map_or(ZERO, |io| io.hash()),
            ..crate::verify::NO_FRAME
        };
        match m.status {
            Status::Idle => {}
            Status::Halted => h.status = StatusCode::Halted,
            Status::Trapped(t) => {
                h.status = StatusCode::Trapped;
                h.trap = t as u8;
            }
            Status::Returned => {
                h.status = StatusCode::Returned;
                h.height = m.stack.len() as u32;
                h.n_ops = m.stack.len() as u32;
                h.operands = operands_hash(&m.stack);
            }
            Status::Running => {
                let nl = |f: u32| {
                    let c = &m.program.funcs[f as usize].code;
                    (c.params + c.num_locals) as usize
                };
                let mut frames = ZERO;
                for (i, fr) in m.frames.iter().enumerate() {
                    let end = m.frames.get(i + 1).map_or(m.fp, |next| next.fp) as usize;
                    let (fp, n) = (fr.fp as usize, nl(fr.func));
                    let locals = locals_root(&m.stack[fp..fp + n]);
                    let ops = operands_hash(&m.stack[fp + n..end]);
                    let f = frame_hash(fr.func, fr.pc, n as u32, (end - fp - n) as u32, &locals, &ops);
                    frames = frame_link(&frames, &f);
                }
                let (fp, n) = (m.fp as usize, nl(m.func));
                h.status = StatusCode::Running;
                h.func = m.func;
                h.pc = m.pc;
                h.depth = m.frames.len() as u32;
                h.height = m.stack.len() as u32;
                h.n_locals = n as u32;
                h.n_ops = (m.stack.len() - fp - n) as u32;
                h.locals = locals_root(&m.stack[fp..fp + n]);
                h.operands = operands_hash(&m.stack[fp + n..]);
                h.frames = frames;
                h.seg_steps = m.io.as_ref().map_or(0, |io| m.steps - io.seg_start);
            }
        }
        h
    }

    /// The state root of the machine's current state.
    pub fn root(&mut self, m: &Machine) -> Hash {
        self.header(m).root()
    }
}

impl Machine {
    /// The state root, computed from scratch (use a [`StateHasher`] to compute roots repeatedly).
    pub fn state_root(&self) -> Hash {
        StateHasher::new().root(self)
    }
}

/// A store's static parts as its program commitment reads them: each function's entry (code position not yet
/// set) and ops, the data and element segments, and the store's shape.
pub(crate) type StoreParts<'a> = (
    Vec<(crate::program::FuncEntry, &'a [crate::instr::Op])>,
    Vec<&'a [u8]>,
    Vec<&'a [crate::value::Slot]>,
    crate::program::StoreShape,
);

impl Machine {
    /// The program index (and commitment) of this machine's store: code, functions, segments.
    pub fn program_index(&self) -> crate::program::ProgramIndex {
        let (funcs, datas, elems, shape) = self.store_parts();
        crate::program::build_index(&funcs, &datas, &elems, shape)
    }

    /// What [`Machine::program_index`] is built from.
    pub(crate) fn store_parts(&self) -> StoreParts<'_> {
        use crate::program::{FuncEntry, NO_HOST};
        let p = &self.program;
        let funcs: Vec<(FuncEntry, &[crate::instr::Op])> = p
            .funcs
            .iter()
            .map(|f| {
                let c = &f.code;
                let e = FuncEntry {
                    type_id: f.type_id,
                    code_base: 0,
                    code_len: 0,
                    params: c.params,
                    num_locals: c.num_locals,
                    results: c.results,
                    max_height: c.max_height,
                    host: f.host.unwrap_or(NO_HOST),
                };
                (e, c.ops.as_slice())
            })
            .collect();
        let datas: Vec<&[u8]> = p.datas.iter().map(|d| &d[..]).collect();
        let elems: Vec<&[crate::value::Slot]> = p.elems.iter().map(|e| &e[..]).collect();
        let shape = crate::program::StoreShape {
            n_globals: self.globals.len() as u32,
            n_memories: self.memories.len() as u32,
            n_tables: self.tables.len() as u32,
            limits: self.limits,
            entry: self.io.as_ref().map_or(NO_HOST, |io| io.entry),
        };
        (funcs, datas, elems, shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Extern, Limits, Module, NoHost};

    #[test]
    fn incremental_roots_equal_fresh_roots_at_every_step() {
        let wat = r#"(module (memory 1 4) (global $g (mut i32) (i32.const 7))
          (func $inner (param i32) (result i32) (i32.store (local.get 0) (local.get 0)) (local.get 0))
          (func (export "run") (result i32) (local $i i32)
            (loop $l
              (drop (call $inner (i32.mul (local.get $i) (i32.const 4099))))
              (global.set $g (i32.add (global.get $g) (i32.const 1)))
              (drop (memory.grow (i32.const 0)))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $l (i32.lt_u (local.get $i) (i32.const 12))))
            (global.get $g)))"#;
        let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
        let mut m = Machine::new(Limits::default());
        let inst = m.instantiate(&module, &[], &mut NoHost).unwrap();
        let Some(Extern::Func(f)) = m.export(inst, "run") else { panic!() };
        m.invoke(f, &[]).unwrap();
        let mut hasher = StateHasher::new();
        let mut seen = alloc::collections::BTreeSet::new();
        let mut steps = 0;
        while m.status() == Status::Running {
            let incremental = hasher.root(&m);
            assert_eq!(incremental, m.state_root(), "step {steps}");
            seen.insert(incremental);
            m.step(&mut NoHost).unwrap();
            steps += 1;
        }
        assert_eq!(hasher.root(&m), m.state_root());
        // Every state of this run is distinct, so every root must be distinct.
        assert_eq!(seen.len(), steps);
        assert_eq!(m.results(), Some(vec![crate::Value::I32(19)]));
    }
}
