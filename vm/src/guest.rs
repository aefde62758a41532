//! Guest programs (ABI v1): loading, the guest profile, binding the `opml` imports, and the
//! initial state. See docs/guest-abi.md.
//!
//! A guest is a module with one defined memory exported as `memory` and an export
//! `opml_step: [] -> [i32]`. Its function imports from `opml` are bound to the VM's built-in
//! functions; any other function import is bound to a stub that traps with `UnsupportedImport`
//! when called. Guests may not import memories, tables or globals, have a start function, or
//! mutate tables or segments (`table.set/grow/fill/copy/init`, `elem.drop`, `memory.init`,
//! `data.drop`): the fast engine cannot observe tables or drop flags, so they must stay constant.
//! At load the module gets stack metering ([`crate::meter`]: running out of stack is the trap
//! `Unreachable` raised by the guest's own code, at the same instruction in both engines), and every
//! non-exported global gets an export `__opml_global_<index>`, so the fast engine can read all globals
//! at segment boundaries; the rewritten module is the program (what is committed and proven).

use std::sync::Arc;

use crate::error::ModuleError;
use crate::instr::Op;
use crate::io::{ABI_INPUT_LEN, ABI_INPUT_READ, ABI_OUTPUT_WRITE, ABI_STUB, Inputs, Io};
use crate::limits::Limits;
use crate::machine::{Extern, Machine};
use crate::module::{ExternKind, ExternType, Module};
use crate::program::ProgramCommitment;
use crate::root::StateHeader;
use crate::staged_commitment::StagedCommitment;
use crate::value::ValType;
use crate::wasm_encode::{leb_len, leb_u32, push_section};

/// Why a module is not an acceptable guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestError {
    /// The module itself is invalid or unsupported.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// The module violates the guest profile.
    #[error("not a valid guest: {0}")]
    Profile(String),
}

/// Most tables a guest may define: a one-step proof opens the table list up to the table an instruction uses,
/// and may hold at most [`crate::proof::MAX_OPENINGS`] openings.
pub const MAX_GUEST_TABLES: usize = 16;

/// Largest operand-stack height a guest function may reach. A branch drops up to this many operands, each
/// revealed in its one-step proof: at 4096 such a proof is ~65 KiB and ~44M instructions to verify in wasm
/// (docs/benchmarks.md: 8000 dropped operands cost 126 KiB and 85.8M), under the 50M per-proof budget.
/// Compilers stay far below it (rustc's guests: under 100).
pub const MAX_GUEST_OPERAND_HEIGHT: u32 = 4096;

/// Export-name prefix of the globals exported by the loader.
pub const GLOBAL_EXPORT_PREFIX: &str = "__opml_global_";

/// A guest module validated and rewritten by [`GuestProgram::rewrite`], waiting to be compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewrittenGuest {
    /// The rewritten module: the program's bytes.
    wasm: Vec<u8>,
    /// Its globals (the user's and the meter).
    n_globals: u32,
}

impl RewrittenGuest {
    /// The rewritten module's size in bytes.
    pub fn len(&self) -> usize {
        self.wasm.len()
    }

    /// Whether the module is empty (never, for a guest).
    pub fn is_empty(&self) -> bool {
        self.wasm.is_empty()
    }
}

/// A validated guest program.
#[derive(Clone, Debug)]
pub struct GuestProgram {
    wasm: Arc<[u8]>,
    /// What the fast engine runs: `wasm` with the rewrites of [`crate::wasmi_compat`] (same semantics).
    #[cfg(feature = "fast")]
    wasmi_wasm: Arc<[u8]>,
    module: Module,
    imports: Vec<u32>,
    n_globals: u32,
    /// Export name of each global.
    global_exports: Vec<String>,
    /// For reference-typed globals (immutable in guests), their constant value.
    constant_globals: Vec<Option<crate::value::Slot>>,
}

fn profile(msg: impl Into<String>) -> GuestError {
    GuestError::Profile(msg.into())
}

impl GuestProgram {
    /// Validates `wasm` as a guest and prepares it (global exports added).
    pub fn new(wasm: &[u8]) -> Result<Self, GuestError> {
        Ok(Self::load(wasm)?.0)
    }

    /// [`GuestProgram::new`] with the program's commitment under `limits` left to compute in bounded stages
    /// (see [`StagedCommitment`]; the canister runs the two halves of loading, [`GuestProgram::rewrite`] and
    /// [`GuestProgram::new_staged_from`], in separate messages).
    pub fn new_staged(wasm: &[u8], limits: Limits) -> Result<(Self, StagedCommitment), GuestError> {
        Self::new_staged_from(Self::rewrite(wasm)?, limits)
    }

    /// [`GuestProgram::new_staged`] from a module [`GuestProgram::rewrite`] prepared: the second half of loading
    /// (compiling and checking the rewritten module, instantiating it), for registration spread over messages.
    pub fn new_staged_from(guest: RewrittenGuest, limits: Limits) -> Result<(Self, StagedCommitment), GuestError> {
        let (program, machine) = Self::compile_rewritten(guest)?;
        let machine = if limits == Limits::default() {
            machine
        } else {
            program.machine(Arc::new(Inputs::new(Vec::new())), limits)?
        };
        Ok((program, StagedCommitment::new(machine)))
    }

    /// Loads the guest; also returns the machine instantiated (over no input, default limits) to check it.
    fn load(wasm: &[u8]) -> Result<(Self, Machine), GuestError> {
        Self::compile_rewritten(Self::rewrite(wasm)?)
    }

    /// The first half of loading: validates the user's module and checks its imports and entry point, adds stack
    /// metering and the global exports. The result is the program's module, not yet compiled.
    pub fn rewrite(wasm: &[u8]) -> Result<RewrittenGuest, GuestError> {
        // The user's module is validated, not compiled: only its shape and frame sizes feed the metering rewrite,
        // and the rewritten module (a superset of its code) is compiled below.
        let user = Module::new_uncompiled(wasm)?;
        for imp in user.imports() {
            if !matches!(imp.ty, ExternType::Func(_)) {
                return Err(profile(format!("import {}.{} is not a function", imp.module, imp.name)));
            }
        }
        let entry = match user.exports().find(|(n, _)| *n == "opml_step") {
            Some((_, ExternKind::Func(f))) => {
                let t = user.func_type(f).ok_or_else(|| profile("bad opml_step"))?;
                if !t.params.is_empty() || t.results != [ValType::I32] {
                    return Err(profile("`opml_step` must have type [] -> [i32]"));
                }
                f
            }
            _ => return Err(profile("missing export `opml_step`")),
        };
        // Stack metering (see `crate::meter`): the metered module is the program. It has one more global (the
        // meter, last, not exported) than the user's module and the same exports, so the global exports can be
        // added without compiling it first (registration on the IC pays for every compilation).
        let metered = crate::meter::instrument(wasm, &user, entry)?;
        let n_globals = user.globals.len() as u32 + 1;
        let exported: Vec<u32> =
            user.exports().filter_map(|(_, k)| if let ExternKind::Global(g) = k { Some(g) } else { None }).collect();
        let extra: Vec<u32> = (0..n_globals).filter(|g| !exported.contains(g)).collect();
        let wasm = add_global_exports(&metered, &extra)?;
        Ok(RewrittenGuest { wasm, n_globals })
    }

    /// The second half of loading: compiles the rewritten module, checks the guest profile on it, instantiates it.
    fn compile_rewritten(guest: RewrittenGuest) -> Result<(Self, Machine), GuestError> {
        let RewrittenGuest { wasm: rewritten, n_globals } = guest;
        let module = Module::new(&rewritten)?;

        if module.start.is_some() {
            return Err(profile("a start function is not allowed"));
        }
        let mut imports = Vec::new();
        for imp in module.imports() {
            let ExternType::Func(ty) = &imp.ty else {
                return Err(profile(format!("import {}.{} is not a function", imp.module, imp.name)));
            };
            let want = |params: &[ValType], results: &[ValType]| {
                if ty.params != params || ty.results != results {
                    Err(profile(format!("import {}.{} has type {ty:?}", imp.module, imp.name)))
                } else {
                    Ok(())
                }
            };
            use ValType::{I32, I64};
            let id = match (imp.module.as_str(), imp.name.as_str()) {
                ("opml", "input_len") => want(&[I32], &[I64]).map(|_| ABI_INPUT_LEN)?,
                ("opml", "input_read") => want(&[I32, I64, I32, I32], &[I32]).map(|_| ABI_INPUT_READ)?,
                ("opml", "output_write") => want(&[I32, I32], &[]).map(|_| ABI_OUTPUT_WRITE)?,
                ("opml", other) => return Err(profile(format!("unknown opml import {other}"))),
                _ => ABI_STUB,
            };
            imports.push(id);
        }
        if module.tables.len() > MAX_GUEST_TABLES {
            return Err(profile(format!(
                "{} tables; a guest may have at most {MAX_GUEST_TABLES} (a one-step proof opens the table list up \
                 to the one it uses)",
                module.tables.len()
            )));
        }
        if let Some((f, code)) = module.code.iter().enumerate().find(|(_, c)| c.max_height > MAX_GUEST_OPERAND_HEIGHT) {
            return Err(profile(format!(
                "function {} can hold {} operands; a guest may hold at most {MAX_GUEST_OPERAND_HEIGHT} (a branch that \
                 drops them all must still have a proof within the verifier's budget)",
                module.num_imported_funcs as usize + f,
                code.max_height
            )));
        }
        if module.memories.len() != 1 || module.num_imported_memories != 0 {
            return Err(profile("a guest has exactly one memory, defined by itself"));
        }
        match module.exports().find(|(n, _)| *n == "memory") {
            Some((_, ExternKind::Memory(0))) => {}
            _ => return Err(profile("the memory must be exported as `memory`")),
        }
        match module.exports().find(|(n, _)| *n == "opml_step") {
            Some((_, ExternKind::Func(f))) => {
                let t = module.func_type(f).ok_or_else(|| profile("bad opml_step"))?;
                if !t.params.is_empty() || t.results != [ValType::I32] {
                    return Err(profile("`opml_step` must have type [] -> [i32]"));
                }
            }
            _ => return Err(profile("missing export `opml_step`")),
        }
        for code in &module.code {
            for op in &code.ops {
                if matches!(
                    op,
                    Op::TableGet(_)
                        | Op::TableSet(_)
                        | Op::TableGrow(_)
                        | Op::TableFill(_)
                        | Op::TableCopy { .. }
                        | Op::TableInit { .. }
                        | Op::ElemDrop(_)
                        | Op::MemoryInit { .. }
                        | Op::DataDrop(_)
                ) {
                    return Err(profile(format!("instruction {op:?} is not allowed in a guest")));
                }
            }
        }
        let mut global_exports: Vec<String> = (0..n_globals).map(|g| format!("{GLOBAL_EXPORT_PREFIX}{g}")).collect();
        for (name, kind) in module.exports() {
            if let ExternKind::Global(g) = kind
                && !name.starts_with(GLOBAL_EXPORT_PREFIX)
            {
                global_exports[g as usize] = name.to_string();
            }
        }
        for (g, ty) in module.globals.iter().enumerate() {
            if ty.ty.is_ref() && ty.mutable {
                return Err(profile(format!("global {g} is a mutable reference")));
            }
        }
        let mut program = Self {
            #[cfg(feature = "fast")]
            wasmi_wasm: crate::wasmi_compat::for_wasmi(&rewritten)?.into(),
            wasm: rewritten.into(),
            module,
            imports,
            n_globals,
            global_exports,
            constant_globals: Vec::new(),
        };
        let m = program.machine(Arc::new(Inputs::new(Vec::new())), Limits::default())?;
        program.constant_globals =
            program.module.globals.iter().enumerate().map(|(g, ty)| ty.ty.is_ref().then(|| m.globals[g])).collect();
        Ok((program, m))
    }

    /// The export name under which global `g` is visible.
    pub fn global_export(&self, g: u32) -> &str {
        &self.global_exports[g as usize]
    }

    /// For each global, its constant value if it is reference-typed (such globals are immutable
    /// in guests and the fast engine cannot translate reference values).
    pub fn constant_globals(&self) -> &[Option<crate::value::Slot>] {
        &self.constant_globals
    }

    /// The declared maximum of the guest's memory, in pages.
    pub fn memory_max(&self) -> Option<u32> {
        self.module.memories[0].max
    }

    /// The program's module bytes as committed and run (with the added global exports).
    pub fn wasm(&self) -> &[u8] {
        &self.wasm
    }

    /// The module bytes the fast engine (wasmi) runs: [`Self::wasm`] with semantics-preserving rewrites around
    /// known wasmi defects (see [`crate::wasmi_compat`]).
    #[cfg(feature = "fast")]
    pub fn wasmi_module_bytes(&self) -> &[u8] {
        &self.wasmi_wasm
    }

    /// Number of globals (all exported after loading).
    pub fn global_count(&self) -> u32 {
        self.n_globals
    }

    /// A machine with the guest instantiated over `inputs`, idle before segment 0.
    pub fn machine(&self, inputs: Arc<Inputs>, limits: Limits) -> Result<Machine, GuestError> {
        let mut m = Machine::new(limits);
        let mut externs = Vec::with_capacity(self.imports.len());
        for (imp, id) in self.module.imports().iter().zip(&self.imports) {
            let ExternType::Func(ty) = &imp.ty else { unreachable!("checked in new") };
            externs.push(Extern::Func(m.alloc_host_func(ty.clone(), *id)));
        }
        let inst = m
            .instantiate(&self.module, &externs, &mut crate::host::NoHost)
            .map_err(|e| profile(format!("instantiation failed: {e}")))?;
        let Some(Extern::Func(entry)) = m.export(inst, "opml_step") else { unreachable!("checked in new") };
        m.io = Some(Io::new(inputs, entry));
        Ok(m)
    }

    /// A machine at a segment boundary captured by the fast engine (see
    /// [`crate::fast::capture`]): the program instantiated over `inputs`, then memory, globals,
    /// output, segment counter and status set from `state`. Its root is the boundary's root, by
    /// the definition of the root — [`crate::trace`] checks that at run time.
    #[cfg(feature = "fast")]
    pub fn machine_at(
        &self,
        inputs: Arc<Inputs>,
        limits: Limits,
        state: &crate::fast::BoundaryState,
    ) -> Result<Machine, GuestError> {
        use crate::limits::WASM_PAGE;
        let mut m = self.machine(inputs, limits)?;
        let pages = (state.memory.len() as u64 / WASM_PAGE) as u32;
        let mem = &mut m.memories[0];
        let grow = pages.checked_sub(mem.pages()).ok_or_else(|| profile("captured memory is smaller than initial"))?;
        mem.grow(grow, limits.max_memory_pages).ok_or_else(|| profile("captured memory exceeds the limit"))?;
        // Write every chunk (all-zero ones too: the initial data segments may have set them).
        for (i, chunk) in state.memory.chunks(crate::memory::CHUNK).enumerate() {
            mem.write((i * crate::memory::CHUNK) as u64, chunk).expect("within the grown memory");
        }
        if state.globals.len() != m.globals.len() {
            return Err(profile("captured globals do not match the program"));
        }
        m.globals.clone_from(&state.globals);
        let io = m.io.as_mut().expect("guest machine");
        io.output.clone_from(&state.output);
        io.segment = state.segment;
        m.status = state.status;
        Ok(m)
    }

    /// The program commitment (independent of the inputs).
    pub fn commitment(&self, limits: Limits) -> Result<ProgramCommitment, GuestError> {
        Ok(self.machine(Arc::new(Inputs::new(Vec::new())), limits)?.program_index().commitment)
    }

    /// The header of the initial state with the I/O component left for [`initial_root`] to fill.
    pub fn initial_header(&self, limits: Limits) -> Result<StateHeader, GuestError> {
        Ok(Self::header_of(&self.machine(Arc::new(Inputs::new(Vec::new())), limits)?))
    }

    /// The header of a freshly instantiated machine, I/O left empty.
    pub(crate) fn header_of(m: &Machine) -> StateHeader {
        let mut h = crate::commit::StateHasher::new().header(m);
        h.io = crate::hash::ZERO;
        h
    }
}

pub use crate::verify::initial_root;

/// Re-encodes `wasm` with an export `__opml_global_<g>` for each global in `globals`, appended to
/// the export section; every other section is copied byte for byte. A module without an export
/// section is returned unchanged (it cannot be a guest: it exports neither memory nor entry).
fn add_global_exports(wasm: &[u8], globals: &[u32]) -> Result<Vec<u8>, ModuleError> {
    use wasmparser::{Parser, Payload};
    if globals.is_empty() {
        return Ok(wasm.to_vec());
    }
    let mut extra = Vec::new();
    for g in globals {
        let name = format!("{GLOBAL_EXPORT_PREFIX}{g}");
        leb_u32(name.len() as u32, &mut extra);
        extra.extend_from_slice(name.as_bytes());
        extra.push(0x03);
        leb_u32(*g, &mut extra);
    }
    let mut out = wasm[..8].to_vec();
    let mut found = false;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        let (id, range) = match &payload {
            Payload::CustomSection(r) => (0u8, r.range()),
            other => match other.as_section() {
                Some(s) => s,
                None => continue,
            },
        };
        if let Payload::ExportSection(reader) = &payload {
            let mut body = Vec::new();
            leb_u32(reader.count() + globals.len() as u32, &mut body);
            // Keep the original entries verbatim after their count.
            let contents = &wasm[range];
            body.extend_from_slice(&contents[leb_len(contents)..]);
            body.extend_from_slice(&extra);
            push_section(&mut out, id, &body);
            found = true;
        } else {
            // For custom sections the range covers name and contents, as the section body does.
            push_section(&mut out, id, &wasm[range]);
        }
    }
    if !found {
        return Ok(wasm.to_vec());
    }
    Ok(out)
}
