//! The fast engine: runs a guest to completion in wasmi (`deterministic` + `simd`), computing the
//! state root at every segment boundary by the stepper's own root definition. wasmi cannot expose
//! pc or stacks, so it is observed only between `opml_step` calls, where a guest's state is its
//! memory, its globals (all exported by [`GuestProgram`]), the I/O component and the status; tables
//! and segment drop flags are constant for guests and taken from the initial state.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmi::{Caller, Config, Engine, Linker, Store, StoreLimits, StoreLimitsBuilder, Val};

use crate::fast_roots::{BoundaryHasher, RootPipeline, Snapshot};
use crate::guest::{GuestError, GuestProgram};
use crate::hash::{Hash, ZERO};
use crate::io::{Inputs, MAX_IO, MAX_OUTPUT, io_hash, output_commitment, output_tree};
use crate::limits::{Limits, WASM_PAGE};
use crate::machine::Status;
use crate::root::{StateHeader, StatusCode, globals_root};
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
    /// Wall time the engine spent on roots: boundary snapshots plus waiting for the last roots (their
    /// hashing otherwise overlaps the next segment on a second thread).
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
        // Guests cannot use table.get/set (see `GuestProgram::new`), so an out-of-range table access is a
        // call_indirect, whose out-of-range trap is "undefined element".
        W::TableOutOfBounds => TrapCode::UndefinedElement,
        W::IndirectCallToNull => TrapCode::UninitializedElement,
        W::IntegerDivisionByZero => TrapCode::IntegerDivideByZero,
        W::IntegerOverflow => TrapCode::IntegerOverflow,
        W::BadConversionToInteger => TrapCode::InvalidConversionToInteger,
        // Not a trap of the program: metered guests (crate::meter) trap before the engine's own stack limits,
        // which `engine_config` sets above what metered frames can use. Reaching them means the fast engine
        // cannot reproduce the canonical semantics here, which must be an error, never a claimed result.
        W::StackOverflow => return None,
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
            |mut caller: Caller<'_, HostState>,
             blob: i32,
             offset: i64,
             dst: i32,
             len: i32|
             -> Result<i32, wasmi::Error> {
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
                if n > 0 {
                    let o = offset as usize;
                    data[dst as usize..dst as usize + n].copy_from_slice(&bytes[o..o + n]);
                }
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
    let module =
        wasmi::Module::new(engine, program.wasmi_module_bytes()).map_err(|e| FastError::Engine(e.to_string()))?;
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
    // Above anything a metered guest reaches (crate::meter): at most METER_LIMIT / MIN_FRAME_COST metered
    // frames (plus the entry wrapper), holding at most METER_LIMIT stepper slots; wasmi needs up to two of its
    // slots per stepper slot (a v128 takes two) plus a few per frame.
    let frames = (crate::meter::METER_LIMIT / crate::meter::MIN_FRAME_COST) as usize;
    c.set_max_recursion_depth(2 * frames).set_max_stack_height(4 * crate::meter::METER_LIMIT as usize + 64 * frames);
    c
}

/// The guest state at a segment boundary, as the fast engine sees it.
#[derive(Clone, Debug)]
pub struct BoundaryState {
    /// Segments completed.
    pub segment: u64,
    /// Status at the boundary (`Idle`, `Halted` or `Trapped`).
    pub status: Status,
    /// The guest memory.
    pub memory: Vec<u8>,
    /// All globals, as slots.
    pub globals: Vec<Slot>,
    /// Output written so far.
    pub output: Vec<u8>,
}

/// A guest instance in wasmi, advanced one segment at a time.
pub struct FastSession<'p> {
    program: &'p GuestProgram,
    template: StateHeader,
    input_root: Hash,
    store: Store<HostState>,
    memory: wasmi::Memory,
    step: wasmi::TypedFunc<(), i32>,
    globals: Vec<wasmi::Global>,
    /// Page tree and previous memory for [`FastSession::root`] (runs with roots use a [`RootPipeline`]).
    hasher: BoundaryHasher,
    /// A recycled memory buffer for the next [`FastSession::root`] snapshot.
    spare: Vec<u8>,
    segment: u64,
    status: Status,
    peak: u64,
}

impl<'p> FastSession<'p> {
    /// Instantiates `program` over `inputs`; the session starts at boundary 0.
    pub fn new(program: &'p GuestProgram, inputs: Arc<Inputs>, limits: Limits) -> Result<Self, FastError> {
        let template = program.initial_header(limits)?;
        let engine = Engine::new(&engine_config());
        let module =
            wasmi::Module::new(&engine, program.wasmi_module_bytes()).map_err(|e| FastError::Engine(e.to_string()))?;
        let linker = linker(&engine, program)?;
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.max_memory_pages as usize * WASM_PAGE as usize)
            .trap_on_grow_failure(false)
            .build();
        let input_root = inputs.root();
        let mut store =
            Store::new(&engine, HostState { inputs, output: Vec::new(), limits: store_limits, memory: None });
        store.limiter(|s| &mut s.limits);
        let instance =
            linker.instantiate_and_start(&mut store, &module).map_err(|e| FastError::Engine(e.to_string()))?;
        let memory =
            instance.get_memory(&store, "memory").ok_or_else(|| FastError::Engine("no memory export".into()))?;
        store.data_mut().memory = Some(memory);
        let step =
            instance.get_typed_func::<(), i32>(&store, "opml_step").map_err(|e| FastError::Engine(e.to_string()))?;
        let globals = (0..program.global_count())
            .map(|g| {
                instance
                    .get_global(&store, program.global_export(g))
                    .ok_or_else(|| FastError::Engine(format!("global {g} not exported")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            program,
            template,
            input_root,
            store,
            memory,
            step,
            globals,
            hasher: BoundaryHasher::new(program.memory_max()),
            spare: Vec::new(),
            segment: 0,
            status: Status::Idle,
            peak: 0,
        })
    }

    /// Status at the current boundary.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Segments completed.
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// Runs the next segment (one `opml_step` call). Returns the new status.
    pub fn run_segment(&mut self) -> Result<Status, FastError> {
        if self.status != Status::Idle {
            return Ok(self.status);
        }
        self.status = match self.step.call(&mut self.store, ()) {
            Ok(more) => {
                self.segment += 1;
                if more != 0 { Status::Idle } else { Status::Halted }
            }
            Err(e) => Status::Trapped(trap_code(&e).ok_or_else(|| FastError::Engine(e.to_string()))?),
        };
        self.peak = self.peak.max(self.memory.data(&self.store).len() as u64);
        Ok(self.status)
    }

    fn global_slots(&self) -> Vec<Slot> {
        self.globals
            .iter()
            .zip(self.program.constant_globals())
            .map(|(g, constant)| constant.unwrap_or_else(|| slot_of(g.get(&self.store))))
            .collect()
    }

    /// The header of the current boundary, all but `memories` (which the memory's page tree gives).
    fn header(&self) -> StateHeader {
        let mut h: StateHeader = self.template;
        (h.status, h.trap) = match self.status {
            Status::Halted => (StatusCode::Halted, 0),
            Status::Trapped(t) => (StatusCode::Trapped, t as u8),
            _ => (StatusCode::Idle, 0),
        };
        h.globals = globals_root(&self.global_slots());
        let out = &self.store.data().output;
        h.io = io_hash(&self.input_root, out.len() as u64, &output_tree(out), self.segment);
        h
    }

    /// The root of the current boundary (memory pages rehashed only where they changed).
    pub fn root(&mut self) -> Hash {
        let header = self.header();
        let mut memory = std::mem::take(&mut self.spare);
        memory.clear();
        memory.extend_from_slice(self.memory.data(&self.store));
        let (root, spare) = self.hasher.root(Snapshot { memory, header });
        self.spare = spare;
        root
    }

    /// Hands the current boundary to `pipeline`, which computes its root while the session runs on.
    fn submit_root(&self, pipeline: &mut RootPipeline) {
        pipeline.submit(self.memory.data(&self.store), self.header());
    }

    /// The guest state at the current boundary.
    pub fn capture(&self) -> BoundaryState {
        BoundaryState {
            segment: self.segment,
            status: self.status,
            memory: self.memory.data(&self.store).to_vec(),
            globals: self.global_slots(),
            output: self.store.data().output.clone(),
        }
    }

    /// The output written so far.
    pub fn output(&self) -> &[u8] {
        &self.store.data().output
    }
}

/// Runs `program` on `inputs` to completion in wasmi. With `roots` false the boundary roots are not
/// computed (for measuring the commitment overhead); `segment_roots` then holds only zeros. With `roots`,
/// each boundary's memory is hashed on a second thread while wasmi runs the next segment
/// ([`RootPipeline`]); the roots are the same as computing them in line.
pub fn run(program: &GuestProgram, inputs: Arc<Inputs>, limits: Limits, roots: bool) -> Result<RunResult, FastError> {
    run_observed(program, inputs, limits, roots, &mut |_| {})
}

/// [`run`], calling `on_segment(n)` after the `n`-th segment completes (for progress display; it cannot
/// influence the run).
pub fn run_observed(
    program: &GuestProgram,
    inputs: Arc<Inputs>,
    limits: Limits,
    roots: bool,
    on_segment: &mut dyn FnMut(u64),
) -> Result<RunResult, FastError> {
    let start = Instant::now();
    let mut session = FastSession::new(program, inputs, limits)?;
    let mut pipeline = if roots {
        let p = RootPipeline::new(program.memory_max())
            .map_err(|e| FastError::Engine(format!("starting the root hashing thread: {e}")))?;
        Some(p)
    } else {
        None
    };
    // Time the engine thread spends on roots: snapshots, and waiting for the last ones.
    let mut root_time = Duration::ZERO;
    let mut boundary = |s: &FastSession<'_>, root_time: &mut Duration| {
        if let Some(p) = pipeline.as_mut() {
            let t = Instant::now();
            s.submit_root(p);
            *root_time += t.elapsed();
        }
    };
    let mut boundaries = 1;
    boundary(&session, &mut root_time);
    while session.run_segment()? == Status::Idle {
        on_segment(session.segment());
        boundary(&session, &mut root_time);
        boundaries += 1;
    }
    // A trap ends the run without completing its segment.
    if session.status() == Status::Halted {
        on_segment(session.segment());
    }
    boundary(&session, &mut root_time);
    boundaries += 1;
    let segment_roots = match pipeline {
        Some(p) => {
            let t = Instant::now();
            let r = p.finish();
            root_time += t.elapsed();
            r
        }
        None => vec![ZERO; boundaries],
    };
    let output = session.output().to_vec();
    Ok(RunResult {
        output_hash: output_commitment(&output),
        output,
        segment_roots,
        status: session.status(),
        elapsed: start.elapsed(),
        root_time,
        peak_memory: session.peak,
    })
}

/// The state at boundary `segment` (or the final boundary, if the run ends earlier).
pub fn capture(
    program: &GuestProgram,
    inputs: Arc<Inputs>,
    limits: Limits,
    segment: u64,
) -> Result<BoundaryState, FastError> {
    let mut session = FastSession::new(program, inputs, limits)?;
    while session.segment() < segment && session.run_segment()? == Status::Idle {}
    Ok(session.capture())
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
