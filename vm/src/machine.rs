//! The stepping machine: a store of instances whose whole execution state is explicit data.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{InstantiateError, InvokeError, StepError};
use crate::host::Host;
use crate::instr::Op;
use crate::limits::Limits;
use crate::memory::Memory;
use crate::module::{Code, ConstExpr, ExternKind, ExternType, GlobalType, Module, SegmentMode};
use crate::table::Table;
use crate::trap::TrapCode;
use crate::value::{FuncType, NULL_REF, Slot, ValType, Value, ref_to_slot};

/// A store address of a function, table, memory or global.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Extern {
    /// Function address.
    Func(u32),
    /// Table address.
    Table(u32),
    /// Memory address.
    Memory(u32),
    /// Global address.
    Global(u32),
}

/// Index of an instance in the machine's store.
pub type InstanceId = u32;

/// Execution status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// No invocation set up (fresh, or aborted).
    Idle,
    /// An invocation is in progress: `step()` executes its next instruction.
    Running,
    /// The invocation returned; its results are on the stack.
    Returned,
    /// The invocation trapped.
    Trapped(TrapCode),
    /// A guest finished its last segment (`opml_step` returned 0).
    Halted,
}

/// A function in the store.
#[derive(Clone, Debug)]
pub(crate) struct Func {
    /// Canonical type id.
    pub type_id: u32,
    /// For host functions: the embedder's id.
    pub host: Option<u32>,
    /// The linked body (for host functions, a trampoline that calls the host).
    pub code: Arc<Code>,
}

/// A suspended caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The caller's function address.
    pub func: u32,
    /// Where the caller continues.
    pub pc: u32,
    /// The caller's frame pointer (index of its first local in the value stack).
    pub fp: u32,
}

/// Immutable-after-instantiation parts of the store, shared between snapshots.
#[derive(Clone, Debug, Default)]
pub(crate) struct Program {
    pub types: Vec<FuncType>,
    pub type_ids: BTreeMap<FuncType, u32>,
    pub funcs: Vec<Func>,
    pub global_types: Vec<GlobalType>,
    pub datas: Vec<Arc<[u8]>>,
    pub elems: Vec<Arc<[Slot]>>,
    pub instances: Vec<Vec<(String, Extern)>>,
}

impl Program {
    fn intern(&mut self, ty: &FuncType) -> u32 {
        if let Some(id) = self.type_ids.get(ty) {
            return *id;
        }
        let id = self.types.len() as u32;
        self.types.push(ty.clone());
        self.type_ids.insert(ty.clone(), id);
        id
    }
}

/// The stepping machine. `Clone` is the snapshot: memory is copy-on-write, code is shared.
#[derive(Clone, Debug)]
pub struct Machine {
    pub(crate) program: Arc<Program>,
    pub(crate) limits: Limits,
    pub(crate) status: Status,
    /// Current function address.
    pub(crate) func: u32,
    /// Index of the next op in the current function.
    pub(crate) pc: u32,
    /// Index of the current frame's first local in `stack`.
    pub(crate) fp: u32,
    pub(crate) frames: Vec<Frame>,
    pub(crate) stack: Vec<Slot>,
    pub(crate) globals: Vec<Slot>,
    pub(crate) memories: Vec<Memory>,
    pub(crate) tables: Vec<Table>,
    pub(crate) data_dropped: Vec<bool>,
    pub(crate) elem_dropped: Vec<bool>,
    pub(crate) steps: u64,
    pub(crate) result_types: Vec<ValType>,
    /// Guest I/O, for machines running a guest program (see [`crate::guest`]).
    pub(crate) io: Option<crate::io::Io>,
}

impl Default for Machine {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Machine {
    /// An empty store with the given limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            program: Arc::new(Program::default()),
            limits,
            status: Status::Idle,
            func: 0,
            pc: 0,
            fp: 0,
            frames: Vec::new(),
            stack: Vec::new(),
            globals: Vec::new(),
            memories: Vec::new(),
            tables: Vec::new(),
            data_dropped: Vec::new(),
            elem_dropped: Vec::new(),
            steps: 0,
            result_types: Vec::new(),
            io: None,
        }
    }

    /// The machine's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Adds a host function of type `ty`; calls to it reach [`Host::call`] with `id`.
    pub fn alloc_host_func(&mut self, ty: FuncType, id: u32) -> u32 {
        let program = Arc::make_mut(&mut self.program);
        let addr = program.funcs.len() as u32;
        let type_id = program.intern(&ty);
        let n = ty.params.len() as u32;
        let mut ops: Vec<Op> = (0..n).map(Op::LocalGet).collect();
        ops.push(Op::Call(addr));
        ops.push(Op::Return { results: ty.results.len() as u32 });
        let code = Arc::new(Code {
            ops,
            params: n,
            locals: Vec::new(),
            num_locals: 0,
            results: ty.results.len() as u32,
            max_height: n.max(ty.results.len() as u32),
        });
        program.funcs.push(Func { type_id, host: Some(id), code });
        addr
    }

    /// Adds a table of `size` elements set to `init` (a reference value of the table's type).
    pub fn alloc_table(&mut self, ty: ValType, size: u32, max: Option<u32>, init: Value) -> u32 {
        self.tables.push(Table { ty, elems: vec![init.to_slot(); size as usize], max });
        self.tables.len() as u32 - 1
    }

    /// Adds a zeroed memory.
    pub fn alloc_memory(&mut self, pages: u32, max: Option<u32>) -> u32 {
        self.memories.push(Memory::new(pages, max));
        self.memories.len() as u32 - 1
    }

    /// Adds a global.
    pub fn alloc_global(&mut self, ty: GlobalType, value: Value) -> u32 {
        Arc::make_mut(&mut self.program).global_types.push(ty);
        self.globals.push(value.to_slot());
        self.globals.len() as u32 - 1
    }

    /// The type of a function.
    pub fn func_type(&self, func: u32) -> Option<&FuncType> {
        let f = self.program.funcs.get(func as usize)?;
        Some(&self.program.types[f.type_id as usize])
    }

    /// The current value of a global.
    pub fn global(&self, addr: u32) -> Option<Value> {
        let ty = self.program.global_types.get(addr as usize)?;
        Some(Value::from_slot(ty.ty, self.globals[addr as usize]))
    }

    /// The type of a global.
    pub fn global_type(&self, addr: u32) -> Option<GlobalType> {
        self.program.global_types.get(addr as usize).copied()
    }

    /// A memory.
    pub fn memory(&self, addr: u32) -> Option<&Memory> {
        self.memories.get(addr as usize)
    }

    /// A memory, mutably (embedder access between invocations).
    pub fn memory_mut(&mut self, addr: u32) -> Option<&mut Memory> {
        self.memories.get_mut(addr as usize)
    }

    /// A table.
    pub fn table(&self, addr: u32) -> Option<&Table> {
        self.tables.get(addr as usize)
    }

    /// An export of an instance.
    pub fn export(&self, instance: InstanceId, name: &str) -> Option<Extern> {
        let exports = self.program.instances.get(instance as usize)?;
        exports.iter().find(|(n, _)| n == name).map(|(_, e)| *e)
    }

    /// All exports of an instance, in declaration order.
    pub fn exports(&self, instance: InstanceId) -> &[(String, Extern)] {
        self.program.instances.get(instance as usize).map_or(&[], |v| v.as_slice())
    }

    /// Current status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Instructions executed by this machine so far (over all invocations).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// For a machine running a guest: the output written so far.
    pub fn guest_output(&self) -> Option<&[u8]> {
        self.io.as_ref().map(|io| io.output.as_slice())
    }

    /// For a machine running a guest: the number of segments completed.
    pub fn guest_segment(&self) -> Option<u64> {
        self.io.as_ref().map(|io| io.segment)
    }

    /// The instruction the next step executes, while running.
    pub fn next_op(&self) -> Option<Op> {
        if self.status != Status::Running {
            return None;
        }
        self.program.funcs.get(self.func as usize)?.code.ops.get(self.pc as usize).copied()
    }

    /// Current call depth (frames of suspended callers).
    pub fn call_depth(&self) -> usize {
        self.frames.len()
    }

    /// The results of the last invocation, once it has returned.
    pub fn results(&self) -> Option<Vec<Value>> {
        if self.status != Status::Returned {
            return None;
        }
        let n = self.result_types.len();
        let base = self.stack.len().checked_sub(n)?;
        Some(self.result_types.iter().zip(&self.stack[base..]).map(|(t, s)| Value::from_slot(*t, *s)).collect())
    }

    fn extern_type_matches(&self, ext: Extern, want: &ExternType) -> Result<(), String> {
        let limits_ok = |min: u32, max: Option<u32>, want_min: u32, want_max: Option<u32>| {
            min >= want_min
                && match want_max {
                    None => true,
                    Some(wm) => max.is_some_and(|m| m <= wm),
                }
        };
        match (ext, want) {
            (Extern::Func(f), ExternType::Func(ty)) => match self.func_type(f) {
                Some(t) if t == ty => Ok(()),
                Some(t) => Err(format!("incompatible import type: function {t:?}, expected {ty:?}")),
                None => Err("unknown function".into()),
            },
            (Extern::Table(t), ExternType::Table(tt)) => {
                let table = self.tables.get(t as usize).ok_or("unknown table")?;
                if table.ty != tt.elem || !limits_ok(table.size(), table.max, tt.min, tt.max) {
                    return Err("incompatible import type: table".into());
                }
                Ok(())
            }
            (Extern::Memory(m), ExternType::Memory(mt)) => {
                let mem = self.memories.get(m as usize).ok_or("unknown memory")?;
                if !limits_ok(mem.pages(), mem.max_pages(), mt.min, mt.max) {
                    return Err("incompatible import type: memory".into());
                }
                Ok(())
            }
            (Extern::Global(g), ExternType::Global(gt)) => match self.global_type(g) {
                Some(t) if t == *gt => Ok(()),
                _ => Err("incompatible import type: global".into()),
            },
            _ => Err("incompatible import type: wrong kind".into()),
        }
    }

    /// Instantiates `module` with `imports` (one per module import, in order): links, initialises
    /// globals, tables and memories from the segments, and runs the start function (at most
    /// `u32::MAX` steps) with `host`.
    pub fn instantiate(
        &mut self,
        module: &Module,
        imports: &[Extern],
        host: &mut dyn Host,
    ) -> Result<InstanceId, InstantiateError> {
        if self.status == Status::Running {
            return Err(InstantiateError::Unlinkable("machine is running".into()));
        }
        if imports.len() != module.imports.len() {
            return Err(InstantiateError::Unlinkable(format!(
                "expected {} imports, got {}",
                module.imports.len(),
                imports.len()
            )));
        }
        let (mut funcs, mut tables, mut mems, mut globals) = (vec![], vec![], vec![], vec![]);
        for (import, ext) in module.imports.iter().zip(imports) {
            self.extern_type_matches(*ext, &import.ty)
                .map_err(|e| InstantiateError::Unlinkable(format!("{}.{}: {e}", import.module, import.name)))?;
            match *ext {
                Extern::Func(a) => funcs.push(a),
                Extern::Table(a) => tables.push(a),
                Extern::Memory(a) => mems.push(a),
                Extern::Global(a) => globals.push(a),
            }
        }
        // Check declared sizes against the machine limits before allocating anything.
        for mt in &module.memories[module.num_imported_memories as usize..] {
            if mt.min > self.limits.max_memory_pages {
                return Err(InstantiateError::Unlinkable(format!(
                    "memory of {} pages exceeds the limit of {} pages",
                    mt.min, self.limits.max_memory_pages
                )));
            }
        }
        for tt in &module.tables[module.num_imported_tables as usize..] {
            if tt.min > self.limits.max_table_elements {
                return Err(InstantiateError::Unlinkable(format!(
                    "table of {} elements exceeds the limit of {}",
                    tt.min, self.limits.max_table_elements
                )));
            }
        }
        let program = Arc::make_mut(&mut self.program);
        let type_ids: Vec<u32> = module.types.iter().map(|t| program.intern(t)).collect();
        let first_func = program.funcs.len() as u32;
        funcs.extend((0..module.code.len() as u32).map(|i| first_func + i));
        for mt in &module.memories[module.num_imported_memories as usize..] {
            mems.push(self.memories.len() as u32);
            self.memories.push(Memory::new(mt.min, mt.max));
        }
        for tt in &module.tables[module.num_imported_tables as usize..] {
            tables.push(self.tables.len() as u32);
            self.tables.push(Table { ty: tt.elem, elems: vec![NULL_REF; tt.min as usize], max: tt.max });
        }
        let first_data = program.datas.len() as u32;
        let first_elem = program.elems.len() as u32;
        let eval = |e: &ConstExpr, globals_now: &[Slot], gmap: &[u32], fmap: &[u32]| -> Slot {
            match *e {
                ConstExpr::Slot(s) => s,
                ConstExpr::GlobalGet(g) => globals_now[gmap[g as usize] as usize],
                ConstExpr::RefFunc(f) => ref_to_slot(Some(fmap[f as usize])),
            }
        };
        for (gt, init) in module.globals[module.num_imported_globals as usize..].iter().zip(&module.global_inits) {
            let v = eval(init, &self.globals, &globals, &funcs);
            globals.push(self.globals.len() as u32);
            self.globals.push(v);
            program.global_types.push(*gt);
        }
        let link = |op: Op| -> Op {
            match op {
                Op::Call(f) => Op::Call(funcs[f as usize]),
                Op::CallIndirect { type_id, table } => {
                    Op::CallIndirect { type_id: type_ids[type_id as usize], table: tables[table as usize] }
                }
                Op::GlobalGet(g) => Op::GlobalGet(globals[g as usize]),
                Op::GlobalSet(g) => Op::GlobalSet(globals[g as usize]),
                Op::Load { kind, mem, offset } => Op::Load { kind, mem: mems[mem as usize], offset },
                Op::LoadLocal { kind, local, mem, offset } => {
                    Op::LoadLocal { kind, local, mem: mems[mem as usize], offset }
                }
                Op::LoadAddImm { kind, imm, mem, offset } => {
                    Op::LoadAddImm { kind, imm, mem: mems[mem as usize], offset }
                }
                Op::Store { kind, mem, offset } => Op::Store { kind, mem: mems[mem as usize], offset },
                Op::LoadLane { bytes, lane, mem, offset } => {
                    Op::LoadLane { bytes, lane, mem: mems[mem as usize], offset }
                }
                Op::StoreLane { bytes, lane, mem, offset } => {
                    Op::StoreLane { bytes, lane, mem: mems[mem as usize], offset }
                }
                Op::MemorySize(m) => Op::MemorySize(mems[m as usize]),
                Op::MemoryGrow(m) => Op::MemoryGrow(mems[m as usize]),
                Op::MemoryFill(m) => Op::MemoryFill(mems[m as usize]),
                Op::MemoryCopy { dst, src } => Op::MemoryCopy { dst: mems[dst as usize], src: mems[src as usize] },
                Op::MemoryInit { data, mem } => Op::MemoryInit { data: first_data + data, mem: mems[mem as usize] },
                Op::DataDrop(d) => Op::DataDrop(first_data + d),
                Op::RefFunc(f) => Op::RefFunc(funcs[f as usize]),
                Op::TableGet(t) => Op::TableGet(tables[t as usize]),
                Op::TableSet(t) => Op::TableSet(tables[t as usize]),
                Op::TableSize(t) => Op::TableSize(tables[t as usize]),
                Op::TableGrow(t) => Op::TableGrow(tables[t as usize]),
                Op::TableFill(t) => Op::TableFill(tables[t as usize]),
                Op::TableCopy { dst, src } => Op::TableCopy { dst: tables[dst as usize], src: tables[src as usize] },
                Op::TableInit { elem, table } => {
                    Op::TableInit { elem: first_elem + elem, table: tables[table as usize] }
                }
                Op::ElemDrop(e) => Op::ElemDrop(first_elem + e),
                other => other,
            }
        };
        for (i, code) in module.code.iter().enumerate() {
            let ty = module.func_types[module.num_imported_funcs as usize + i];
            let mut linked = (**code).clone();
            for op in &mut linked.ops {
                *op = link(*op);
            }
            program.funcs.push(Func { type_id: type_ids[ty as usize], host: None, code: Arc::new(linked) });
        }
        for seg in &module.elems {
            let items: Vec<Slot> = seg.items.iter().map(|e| eval(e, &self.globals, &globals, &funcs)).collect();
            program.elems.push(items.into());
            self.elem_dropped.push(false);
        }
        for seg in &module.datas {
            program.datas.push(seg.bytes.clone());
            self.data_dropped.push(false);
        }
        let exports = module
            .exports
            .iter()
            .map(|(name, kind)| {
                let ext = match *kind {
                    ExternKind::Func(i) => Extern::Func(funcs[i as usize]),
                    ExternKind::Table(i) => Extern::Table(tables[i as usize]),
                    ExternKind::Memory(i) => Extern::Memory(mems[i as usize]),
                    ExternKind::Global(i) => Extern::Global(globals[i as usize]),
                };
                (name.clone(), ext)
            })
            .collect();
        program.instances.push(exports);
        let instance = program.instances.len() as u32 - 1;

        // Active and declarative segments, in order: `table.init`/`memory.init` then drop.
        for (i, seg) in module.elems.iter().enumerate() {
            let addr = (first_elem + i as u32) as usize;
            match seg.mode {
                SegmentMode::Active { index, offset } => {
                    let dst = eval(&offset, &self.globals, &globals, &funcs) as u32;
                    let items = self.program.elems[addr].clone();
                    let table = &mut self.tables[tables[index as usize] as usize];
                    let end = dst as u64 + items.len() as u64;
                    if end > table.size() as u64 {
                        return Err(InstantiateError::Trap(TrapCode::TableOutOfBounds));
                    }
                    table.elems[dst as usize..end as usize].copy_from_slice(&items);
                    self.elem_dropped[addr] = true;
                }
                SegmentMode::Declared => self.elem_dropped[addr] = true,
                SegmentMode::Passive => {}
            }
        }
        for (i, seg) in module.datas.iter().enumerate() {
            let addr = (first_data + i as u32) as usize;
            if let SegmentMode::Active { index, offset } = seg.mode {
                let dst = eval(&offset, &self.globals, &globals, &funcs) as u32;
                let mem = &mut self.memories[mems[index as usize] as usize];
                mem.write(dst as u64, &seg.bytes).map_err(InstantiateError::Trap)?;
                self.data_dropped[addr] = true;
            }
        }
        if let Some(start) = module.start {
            let f = funcs[start as usize];
            self.invoke(f, &[]).map_err(|e| InstantiateError::Unlinkable(e.to_string()))?;
            let budget = u32::MAX as u64;
            match self.run(host, budget) {
                Ok(Status::Returned) => {}
                Ok(Status::Trapped(t)) => return Err(InstantiateError::Trap(t)),
                Ok(_) => {
                    self.abort();
                    return Err(InstantiateError::StartBudget(budget));
                }
                Err(_) => unreachable!("invoke set the machine running"),
            }
        }
        Ok(instance)
    }

    /// Sets up a call of `func` with `args`; the machine is then `Running` at the callee's first
    /// instruction (no step is taken). Allowed whenever the machine is not running.
    pub fn invoke(&mut self, func: u32, args: &[Value]) -> Result<(), InvokeError> {
        if self.status == Status::Running {
            return Err(InvokeError::Busy);
        }
        let f = self.program.funcs.get(func as usize).ok_or(InvokeError::UnknownFunction(func))?;
        let ty = &self.program.types[f.type_id as usize];
        if ty.params.len() != args.len() || ty.params.iter().zip(args).any(|(t, a)| *t != a.ty()) {
            return Err(InvokeError::ArgumentMismatch {
                expected: ty.params.clone(),
                got: args.iter().map(|a| a.ty()).collect(),
            });
        }
        let code = &f.code;
        let needed = code.params as u64 + code.num_locals as u64 + code.max_height as u64;
        if needed > self.limits.max_stack_slots as u64 {
            return Err(InvokeError::StackLimit);
        }
        let num_locals = code.num_locals as usize;
        self.result_types = ty.results.clone();
        self.stack.clear();
        self.frames.clear();
        self.stack.extend(args.iter().map(|a| a.to_slot()));
        self.stack.resize(self.stack.len() + num_locals, 0);
        self.func = func;
        self.pc = 0;
        self.fp = 0;
        self.status = Status::Running;
        Ok(())
    }

    /// Abandons the current invocation (if any): the machine becomes `Idle`. Store state (memories,
    /// tables, globals) keeps whatever the abandoned execution did.
    pub fn abort(&mut self) {
        self.stack.clear();
        self.frames.clear();
        self.status = Status::Idle;
    }

    /// Executes exactly one instruction. On an idle guest machine the step starts the next
    /// segment (enters `opml_step`).
    pub fn step(&mut self, host: &mut dyn Host) -> Result<(), StepError> {
        if self.start_segment_if_idle() {
            return Ok(());
        }
        if self.status != Status::Running {
            return Err(StepError::NotRunning(self.status));
        }
        self.run_inner(host, 1);
        Ok(())
    }

    /// For an idle guest machine: takes the step that enters `opml_step`. Returns whether it did.
    fn start_segment_if_idle(&mut self) -> bool {
        let Some(io) = self.io.as_mut() else { return false };
        if self.status != Status::Idle {
            return false;
        }
        let entry = io.entry;
        io.seg_start = self.steps;
        let code = &self.program.funcs[entry as usize].code;
        let n = (code.params + code.num_locals) as usize;
        self.stack.clear();
        self.frames.clear();
        self.stack.resize(n, 0);
        self.func = entry;
        self.pc = 0;
        self.fp = 0;
        self.status = Status::Running;
        self.steps += 1;
        true
    }

    /// Executes up to `max_steps` instructions, stopping early when the invocation returns or traps.
    pub fn run(&mut self, host: &mut dyn Host, max_steps: u64) -> Result<Status, StepError> {
        let mut budget = max_steps;
        if budget > 0 && self.start_segment_if_idle() {
            budget -= 1;
        } else if self.status != Status::Running {
            return Err(StepError::NotRunning(self.status));
        }
        if budget > 0 && self.status == Status::Running {
            self.run_inner(host, budget);
        }
        Ok(self.status)
    }
}
