//! The fast engine: runs a guest to completion in wasmi (`deterministic` + `simd`), computing the
//! state root at every segment boundary by the stepper's own root definition. wasmi cannot expose
//! pc or stacks, so it is observed only between `opml_step` calls, where a guest's state is its
//! memory, its globals (all exported by [`GuestProgram`]), the I/O component and the status; tables
//! and segment drop flags are constant for guests and taken from the initial state.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmi::{Caller, Config, Engine, Linker, Store, StoreLimits, StoreLimitsBuilder, Val};

use crate::commit::PageLevels;
use crate::guest::{GuestError, GuestProgram};
use crate::hash::{Hash, ZERO, page_leaf};
use crate::io::{Inputs, MAX_IO, MAX_OUTPUT, io_hash, output_commitment, output_tree};
use crate::limits::{Limits, WASM_PAGE};
use crate::machine::Status;
use crate::root::{
    PAGE_BYTES, StateHeader, StatusCode, globals_root, list_link, memory_commitment, memory_empties,
};
use crate::trap::TrapCode;
use crate::value::Slot;

/// Why a fast run could not be carried out (a guest trap is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum FastError {
    /// The program is not a valid guest.
    #[error(transparent)]
    Guest(#[from] GuestError),
    /// wasmi rejected or failed to run the module for a reason outside the guest's semantics.
    #[error("wasmi: {0}")]
    Engine(String),
}

/// The outcome of running a guest on its inputs.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The output bytes.
    pub output: Vec<u8>,
    /// The output commitment (what a claim states).
    pub output_hash: Hash,
    /// Root of every segment boundary: `segment_roots[0]` is the initial state, the last one the
    /// final state.
    pub segment_roots: Vec<Hash>,
    /// Final status: `Halted` or `Trapped`.
    pub status: Status,
    /// Wall time of the run (instantiation, execution and roots).
    pub elapsed: Duration,
    /// Wall time spent computing roots.
    pub root_time: Duration,
    /// Largest guest memory size reached, in bytes.
    pub peak_memory: u64,
}

impl RunResult {
    /// The final root.
    pub fn final_root(&self) -> Hash {
        *self.segment_roots.last().expect("at least the initial root")
    }

    /// Number of segments run.
    pub fn segments(&self) -> u64 {
        self.segment_roots.len() as u64 - 1
    }
}

/// A guest trap raised by a host function, carried through wasmi.
#[derive(Debug)]
struct AbiTrap(TrapCode);

impl fmt::Display for AbiTrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl wasmi::errors::HostError for AbiTrap {}

struct HostState {
    inputs: Arc<Inputs>,
    output: Vec<u8>,
    limits: StoreLimits,
    memory: Option<wasmi::Memory>,
}

fn trap(code: TrapCode) -> wasmi::Error {
    wasmi::Error::host(AbiTrap(code))
}

fn check(mem_len: usize, addr: u32, len: u32) -> Result<(), wasmi::Error> {
    if addr as u64 + len as u64 > mem_len as u64 { Err(trap(TrapCode::MemoryOutOfBounds)) } else { Ok(()) }
}

/// Maps a wasmi error out of `opml_step` to the guest trap it stands for.
fn trap_code(e: &wasmi::Error) -> Option<TrapCode> {
    if let Some(AbiTrap(code)) = e.downcast_ref::<AbiTrap>() {
        return Some(*code);
    }
    use wasmi::TrapCode as W;
    Some(match e.as_trap_code()? {
        W::UnreachableCodeReached => TrapCode::Unreachable,
        W::MemoryOutOfBounds => TrapCode::MemoryOutOfBounds,
        // Guests cannot use table.get/set, so an out-of-range table access is a call_indirect.
        W::TableOutOfBounds => TrapCode::UndefinedElement,
        W::IndirectCallToNull => TrapCode::UninitializedElement,
        W::IntegerDivisionByZero => TrapCode::IntegerDivideByZero,
        W::IntegerOverflow => TrapCode::IntegerOverflow,
        W::BadConversionToInteger => TrapCode::InvalidConversionToInteger,
        W::StackOverflow => TrapCode::CallStackExhausted,
        W::BadSignature => TrapCode::IndirectCallTypeMismatch,
        _ => return None,
    })
}

fn linker(engine: &Engine, program: &GuestProgram) -> Result<Linker<HostState>, FastError> {
    let mut linker = Linker::<HostState>::new(engine);
    let err = |e: wasmi::errors::LinkerError| FastError::Engine(e.to_string());
    linker
        .func_wrap("opml", "input_len", |caller: Caller<'_, HostState>, blob: i32| -> i64 {
            caller.data().inputs.blobs.get(blob as u32 as usize).map_or(-1, |b| b.bytes.len() as i64)
        })
        .map_err(err)?;
    linker
        .func_wrap(
            "opml",
            "input_read",
            |mut caller: Caller<'_, HostState>, blob: i32, offset: i64, dst: i32, len: i32| -> Result<i32, wasmi::Error> {
                let (blob, dst, len) = (blob as u32, dst as u32, len as u32);
                if len > MAX_IO || offset < 0 {
                    return Err(trap(TrapCode::AbiViolation));
                }
                let inputs = caller.data().inputs.clone();
                let bytes = &inputs.blobs.get(blob as usize).ok_or_else(|| trap(TrapCode::AbiViolation))?.bytes;
                let memory = caller.data().memory.expect("memory bound after instantiation");
                let data = memory.data_mut(&mut caller);
                check(data.len(), dst, len)?;
                let offset = offset as u64;
                let n = if offset >= bytes.len() as u64 {
                    0
                } else {
                    (bytes.len() as u64 - offset).min(len as u64) as usize
                };
                let o = offset as usize;
                data[dst as usize..dst as usize + n].copy_from_slice(&bytes[o..o + n]);
                Ok(n as i32)
            },
        )
        .map_err(err)?;
    linker
        .func_wrap(
            "opml",
            "output_write",
            |mut caller: Caller<'_, HostState>, src: i32, len: i32| -> Result<(), wasmi::Error> {
                let (src, len) = (src as u32, len as u32);
                if len > MAX_IO {
                    return Err(trap(TrapCode::AbiViolation));
                }
                let memory = caller.data().memory.expect("memory bound after instantiation");
                let data = memory.data(&caller);
                check(data.len(), src, len)?;
                let chunk = data[src as usize..(src + len) as usize].to_vec();
                let state = caller.data_mut();
                if state.output.len() as u64 + len as u64 > MAX_OUTPUT {
                    return Err(trap(TrapCode::AbiViolation));
                }
                state.output.extend_from_slice(&chunk);
                Ok(())
            },
        )
        .map_err(err)?;
    // Every other function import: a stub that traps when called.
    let module = wasmi::Module::new(engine, program.wasm()).map_err(|e| FastError::Engine(e.to_string()))?;
    for import in module.imports() {
        if import.module() == "opml" {
            continue;
        }
        if let wasmi::ExternType::Func(ty) = import.ty() {
            linker
                .func_new(import.module(), import.name(), ty.clone(), |_, _, _| Err(trap(TrapCode::UnsupportedImport)))
                .map_err(err)?;
        }
    }
    Ok(linker)
}

/// The wasmi configuration of the fast engine: exactly the design's feature set.
pub fn engine_config() -> Config {
    let mut c = Config::default();
    c.wasm_mutable_global(true)
        .wasm_sign_extension(true)
        .wasm_saturating_float_to_int(true)
        .wasm_multi_value(true)
        .wasm_bulk_memory(true)
        .wasm_reference_types(true)
        .wasm_simd(true)
        .wasm_relaxed_simd(false)
        .wasm_multi_memory(false)
        .wasm_tail_call(false)
        .wasm_extended_const(false)
        .wasm_custom_page_sizes(false)
        .wasm_wide_arithmetic(false);
    c
}

/// Runs `program` on `inputs` to completion in wasmi. With `roots` false the boundary roots are not
/// computed (for measuring the commitment overhead); `segment_roots` then holds only zeros.
pub fn run(program: &GuestProgram, inputs: Arc<Inputs>, limits: Limits, roots: bool) -> Result<RunResult, FastError> {
    let start = Instant::now();
    let template = program.initial_header(limits)?;
    let mem_max = program.memory_max();
    let engine = Engine::new(&engine_config());
    let module = wasmi::Module::new(&engine, program.wasm()).map_err(|e| FastError::Engine(e.to_string()))?;
    let linker = linker(&engine, program)?;
    let store_limits = StoreLimitsBuilder::new()
        .memory_size(limits.max_memory_pages as usize * WASM_PAGE as usize)
        .trap_on_grow_failure(false)
        .build();
    let mut store = Store::new(
        &engine,
        HostState { inputs: inputs.clone(), output: Vec::new(), limits: store_limits, memory: None },
    );
    store.limiter(|s| &mut s.limits);
    let instance = linker.instantiate_and_start(&mut store, &module).map_err(|e| FastError::Engine(e.to_string()))?;
    let memory = instance.get_memory(&store, "memory").ok_or_else(|| FastError::Engine("no memory export".into()))?;
    store.data_mut().memory = Some(memory);
    let step = instance
        .get_typed_func::<(), i32>(&store, "opml_step")
        .map_err(|e| FastError::Engine(e.to_string()))?;
    let globals: Vec<wasmi::Global> = (0..program.global_count())
        .map(|g| {
            let name = program.global_export(g);
            instance.get_global(&store, name).ok_or_else(|| FastError::Engine(format!("global {g} not exported")))
        })
        .collect::<Result<_, _>>()?;

    let input_root = inputs.root();
    let mut pages = PageLevels::default();
    let mut prev: Vec<u8> = Vec::new();
    let empty = memory_empties();
    let mut root_time = Duration::ZERO;
    let mut peak = 0u64;
    let mut segment = 0u64;
    let mut boundary = |store: &Store<HostState>, status: StatusCode, trap: u8, segment: u64| -> Hash {
        let t = Instant::now();
        let data = memory.data(store);
        peak = peak.max(data.len() as u64);
        if !roots {
            return ZERO;
        }
        let n = data.len() / PAGE_BYTES;
        let known = pages.len().min(prev.len() / PAGE_BYTES);
        let dirty: Vec<usize> = (0..n)
            .filter(|&i| i >= known || data[i * PAGE_BYTES..(i + 1) * PAGE_BYTES] != prev[i * PAGE_BYTES..(i + 1) * PAGE_BYTES])
            .collect();
        let tree = pages.update(n, dirty, |i| page_leaf(&data[i * PAGE_BYTES..(i + 1) * PAGE_BYTES]), &empty);
        prev.clear();
        prev.extend_from_slice(data);
        let slots: Vec<Slot> = globals
            .iter()
            .zip(program.constant_globals())
            .map(|(g, constant)| constant.unwrap_or_else(|| slot_of(g.get(store))))
            .collect();
        let mut h: StateHeader = template;
        h.status = status;
        h.trap = trap;
        h.globals = globals_root(&slots);
        h.memories = list_link(&ZERO, &memory_commitment((data.len() as u64 / WASM_PAGE) as u32, mem_max, &tree));
        let out = &store.data().output;
        h.io = io_hash(&input_root, out.len() as u64, &output_tree(out), segment);
        root_time += t.elapsed();
        h.root()
    };
    let mut segment_roots = vec![boundary(&store, StatusCode::Idle, 0, 0)];
    let status = loop {
        match step.call(&mut store, ()) {
            Ok(more) => {
                segment += 1;
                let (code, status) =
                    if more != 0 { (StatusCode::Idle, None) } else { (StatusCode::Halted, Some(Status::Halted)) };
                segment_roots.push(boundary(&store, code, 0, segment));
                if let Some(s) = status {
                    break s;
                }
            }
            Err(e) => {
                let code = trap_code(&e).ok_or_else(|| FastError::Engine(e.to_string()))?;
                segment_roots.push(boundary(&store, StatusCode::Trapped, code as u8, segment));
                break Status::Trapped(code);
            }
        }
    };
    let output = store.data().output.clone();
    Ok(RunResult {
        output_hash: output_commitment(&output),
        output,
        segment_roots,
        status,
        elapsed: start.elapsed(),
        root_time,
        peak_memory: peak,
    })
}

/// A wasmi global value as a slot (guests' mutable globals are numeric or v128; see `GuestProgram`).
fn slot_of(v: Val) -> Slot {
    match v {
        Val::I32(x) => x as u32 as Slot,
        Val::I64(x) => x as u64 as Slot,
        Val::F32(x) => x.to_bits() as Slot,
        Val::F64(x) => x.to_bits() as Slot,
        Val::V128(x) => x.as_u128(),
        // Reference-typed globals of guests are immutable; see GuestProgram::new.
        _ => 0,
    }
}
