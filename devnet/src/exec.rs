//! Canister execution under wasmi: module preparation (import check, instrumentation), instances with
//! snapshot/rollback, and the `ic0` System API.
//!
//! **Preparation.** A module may import only functions of `ic0` that the devnet implements, with the exact
//! signature of the wasm32 System API; anything else fails installation with an error naming the import. The
//! module is then rewritten to export its memory, its mutable globals and its function table under reserved names,
//! so the host can snapshot and restore them and call callbacks by table index, and instrumented
//! ([`crate::metering`]) to count its instructions as the IC does.
//!
//! **Rollback.** Before each message the host copies the linear memory and the mutable globals and starts the
//! stable-memory journal; a message that traps (or any query) restores them. If the memory grew during the
//! message, the instance is rebuilt from the snapshot (wasm memory cannot shrink).
//!
//! **Instructions.** A message's instruction count is the IC's: the weighted count of the wasm instructions it
//! executed, kept by the instrumented module in a counter global ([`crate::metering`]) that the host resets to 0
//! before each message, plus a fixed charge per System API call and per byte it copies ([`SYSTEM_API_BASE_COST`],
//! [`SYSTEM_API_BYTE_COST`]), which the host adds to the same counter. That count is what is recorded, what
//! `ic0.performance_counter` returns and what the limits are checked against: the module checks it against the
//! limit global at every function entry and loop head (as the IC's instrumentation does), the host at every System
//! API call and when the message ends; a count over the message's limit traps the message as out of instructions
//! and rolls it back. The counter and limit globals are host state: they are neither snapshotted nor part of the
//! state digest. wasmi's fuel only guards against runaway host-side work: a message runs with
//! [`FUEL_GUARD_FACTOR`] times its limit in fuel, and running out of it is also out of instructions. The fuel a
//! message used is reported next to its count ([`ExecOutcome::fuel`]) for comparison; it includes the counting
//! code.

use std::sync::Arc;

use candid::Principal;
use wasmi::{Caller, Config, Engine, Error, Func, Global, Instance, Linker, Memory, Module, Store, Table, Val};
use wasmparser::{Parser, Payload, TypeRef, ValType};

use crate::cbor::sha256;
use crate::metering::{COUNTER_EXPORT, InstrumentError, LIMIT_EXPORT, instrument};
use crate::stable::StableMemory;

/// Reserved export names added by the preparation step.
const MEMORY_EXPORT: &str = "__opml_devnet_memory";
const TABLE_EXPORT: &str = "__opml_devnet_table";
const GLOBAL_EXPORT_PREFIX: &str = "__opml_devnet_global_";

/// Fixed instruction charge of each System API call, and per byte copied in or out.
pub const SYSTEM_API_BASE_COST: u64 = 50;
pub const SYSTEM_API_BYTE_COST: u64 = 1;

/// A message runs with this many times its instruction limit in wasmi fuel. The limit is enforced on the IC count
/// (the instrumented module checks it at every function entry and loop head), so fuel only has to stop what the
/// count cannot see, and must never stop a message within its limit first: measured on the verifier canister,
/// the instrumented module uses 1 to 5 units of fuel per counted instruction in most messages and up to 25 in
/// registration stages that grow memory (wasmi charges fuel per byte grown, the IC a flat 300 per `memory.grow`).
pub const FUEL_GUARD_FACTOR: u64 = 64;

/// Largest stable memory, in 64 KiB pages (the IC's 500 GiB).
pub const MAX_STABLE_PAGES: u64 = 500 * 1024 * 1024 * 1024 / 65536;
/// Largest wasm32 memory, in pages.
pub const MAX_WASM_PAGES: u64 = 65536;

/// Where an execution enters the canister; `kind` says which System API functions it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Start,
    Init,
    PreUpgrade,
    PostUpgrade,
    Update,
    Query,
    ReplyCallback,
    RejectCallback,
    Cleanup,
    GlobalTimer,
    Heartbeat,
    InspectMessage,
}

impl EntryKind {
    fn name(self) -> &'static str {
        match self {
            EntryKind::Start => "start",
            EntryKind::Init => "init",
            EntryKind::PreUpgrade => "pre_upgrade",
            EntryKind::PostUpgrade => "post_upgrade",
            EntryKind::Update => "update",
            EntryKind::Query => "query",
            EntryKind::ReplyCallback => "reply callback",
            EntryKind::RejectCallback => "reject callback",
            EntryKind::Cleanup => "cleanup",
            EntryKind::GlobalTimer => "global timer",
            EntryKind::Heartbeat => "heartbeat",
            EntryKind::InspectMessage => "inspect message",
        }
    }
}

/// Availability classes of System API functions.
#[derive(Clone, Copy)]
enum Avail {
    /// Everywhere except the start function.
    NotStart,
    /// Where the message has an argument: init, post_upgrade, update, query, reply callback, inspect message.
    Arg,
    /// Where the caller is known: all but start.
    Caller,
    /// Reply and reject callbacks and cleanup.
    Callback,
    /// Where a response can be produced: update, query, callbacks.
    Respond,
    /// Where calls can be made: update, callbacks, global timer, heartbeat.
    Call,
    /// Inspect message only.
    Inspect,
    /// Update, query, reply/reject callbacks, inspect message.
    MethodName,
    /// Non-replicated queries.
    QueryOnly,
    /// Everywhere that changes persist: not query, not inspect message, not start.
    Replicated,
    /// Update and callbacks (cycles in messages).
    Cycles,
}

fn available(a: Avail, k: EntryKind) -> bool {
    use EntryKind::*;
    match a {
        Avail::NotStart | Avail::Caller => k != Start,
        Avail::Arg => matches!(k, Init | PostUpgrade | Update | Query | ReplyCallback | InspectMessage),
        Avail::Callback => matches!(k, ReplyCallback | RejectCallback | Cleanup),
        Avail::Respond => matches!(k, Update | Query | ReplyCallback | RejectCallback),
        Avail::Call => matches!(k, Update | ReplyCallback | RejectCallback | GlobalTimer | Heartbeat),
        Avail::Inspect => k == InspectMessage,
        Avail::MethodName => matches!(k, Update | Query | ReplyCallback | RejectCallback | InspectMessage),
        Avail::QueryOnly => k == Query,
        Avail::Replicated => !matches!(k, Query | InspectMessage | Start),
        Avail::Cycles => matches!(k, Update | ReplyCallback | RejectCallback),
    }
}

/// The System API functions the devnet implements: name and wasm32 signature (`i` i32, `I` i64; params `:`
/// results).
pub const SYSTEM_API: &[(&str, &str)] = &[
    ("msg_arg_data_size", ":i"),
    ("msg_arg_data_copy", "iii:"),
    ("msg_caller_size", ":i"),
    ("msg_caller_copy", "iii:"),
    ("msg_caller_info_data_size", ":i"),
    ("msg_caller_info_data_copy", "iii:"),
    ("msg_caller_info_signer_size", ":i"),
    ("msg_caller_info_signer_copy", "iii:"),
    ("msg_reject_code", ":i"),
    ("msg_reject_msg_size", ":i"),
    ("msg_reject_msg_copy", "iii:"),
    ("msg_deadline", ":I"),
    ("msg_reply_data_append", "ii:"),
    ("msg_reply", ":"),
    ("msg_reject", "ii:"),
    ("msg_cycles_available128", "i:"),
    ("msg_cycles_refunded128", "i:"),
    ("msg_cycles_accept128", "IIi:"),
    ("cycles_burn128", "IIi:"),
    ("canister_self_size", ":i"),
    ("canister_self_copy", "iii:"),
    ("canister_cycle_balance128", "i:"),
    ("canister_liquid_cycle_balance128", "i:"),
    ("canister_status", ":i"),
    ("canister_version", ":I"),
    ("subnet_self_size", ":i"),
    ("subnet_self_copy", "iii:"),
    ("subnet_self_node_count", ":i"),
    ("msg_method_name_size", ":i"),
    ("msg_method_name_copy", "iii:"),
    ("accept_message", ":"),
    ("call_new", "iiiiiiii:"),
    ("call_on_cleanup", "ii:"),
    ("call_data_append", "ii:"),
    ("call_with_best_effort_response", "i:"),
    ("call_cycles_add128", "II:"),
    ("call_perform", ":i"),
    ("stable_size", ":i"),
    ("stable_grow", "i:i"),
    ("stable_write", "iii:"),
    ("stable_read", "iii:"),
    ("stable64_size", ":I"),
    ("stable64_grow", "I:I"),
    ("stable64_write", "III:"),
    ("stable64_read", "III:"),
    ("root_key_size", ":i"),
    ("root_key_copy", "iii:"),
    ("certified_data_set", "ii:"),
    ("data_certificate_present", ":i"),
    ("data_certificate_size", ":i"),
    ("data_certificate_copy", "iii:"),
    ("time", ":I"),
    ("global_timer_set", "I:I"),
    ("performance_counter", "i:I"),
    ("is_controller", "ii:i"),
    ("in_replicated_execution", ":i"),
    ("cost_call", "IIi:"),
    ("cost_create_canister", "i:"),
    ("cost_http_request", "IIi:"),
    ("env_var_count", ":i"),
    ("env_var_name_size", "i:i"),
    ("env_var_name_copy", "iiii:"),
    ("env_var_name_exists", "ii:i"),
    ("env_var_value_size", "ii:i"),
    ("env_var_value_copy", "iiiii:"),
    ("debug_print", "ii:"),
    ("trap", "ii:"),
];

/// Why installing a module failed.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("invalid wasm module: {0}")]
    Invalid(String),
    #[error(
        "the module imports `{module}.{name}`, which the devnet does not implement (it implements {count} ic0 \
         functions; see opml_devnet::SYSTEM_API)"
    )]
    UnsupportedImport { module: String, name: String, count: usize },
    #[error("the module imports `ic0.{name}` with signature {found}, but the System API's is {expected}")]
    ImportSignature { name: String, found: String, expected: String },
    #[error("the module exports both `canister_update {0}` and `canister_query {0}`")]
    DuplicateMethod(String),
    #[error("unsupported wasm module: {0}")]
    Unsupported(String),
}

/// A module ready to instantiate.
pub struct PreparedModule {
    pub module: Module,
    /// sha256 of the wasm as installed.
    pub module_hash: [u8; 32],
    pub update_methods: Vec<String>,
    pub query_methods: Vec<String>,
    pub exports_global_timer: bool,
    pub exports_heartbeat: bool,
    pub exports_inspect_message: bool,
    pub has_init: bool,
    pub has_pre_upgrade: bool,
    pub has_post_upgrade: bool,
    /// Public metadata from `icp:public <name>` custom sections.
    pub public_metadata: Vec<(String, Vec<u8>)>,
    mutable_globals: usize,
    has_table: bool,
    has_memory: bool,
}

fn sig_of(ty: &wasmparser::FuncType) -> String {
    let t = |v: &ValType| match v {
        ValType::I32 => "i",
        ValType::I64 => "I",
        ValType::F32 => "f",
        ValType::F64 => "F",
        ValType::V128 => "v",
        ValType::Ref(_) => "r",
    };
    let p: String = ty.params().iter().map(t).collect();
    let r: String = ty.results().iter().map(t).collect();
    format!("{p}:{r}")
}

/// The engine every canister runs on: fuel metering on, WebAssembly 2.0 features as the IC enables them.
pub fn engine() -> Engine {
    let mut config = Config::default();
    config.consume_fuel(true);
    // Translate whole modules at installation: lazily translated functions would be charged fuel on first call,
    // which would distort the instruction counts.
    config.compilation_mode(wasmi::CompilationMode::Eager);
    config.wasm_tail_call(false);
    config.wasm_extended_const(false);
    config.wasm_multi_memory(false);
    config.wasm_custom_page_sizes(false);
    config.wasm_wide_arithmetic(false);
    config.wasm_relaxed_simd(false);
    config.set_max_recursion_depth(100_000);
    Engine::new(&config)
}

/// Largest wasm module after decompression (the IC's limit for a gzip-compressed module's content).
pub const MAX_WASM_MODULE_BYTES: u64 = 100 * 1024 * 1024;

/// Decompresses a gzip-compressed module, refusing one that expands past [`MAX_WASM_MODULE_BYTES`].
fn gunzip(gz: &[u8]) -> Result<Vec<u8>, PrepareError> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .take(MAX_WASM_MODULE_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| PrepareError::Invalid(format!("cannot decompress the gzip-compressed module: {e}")))?;
    if out.len() as u64 > MAX_WASM_MODULE_BYTES {
        return Err(PrepareError::Invalid(format!(
            "the gzip-compressed module decompresses to more than {MAX_WASM_MODULE_BYTES} bytes"
        )));
    }
    Ok(out)
}

/// An export: name, kind byte, index.
type ExportEntry = (String, u8, u32);

/// Checks the imports and exports of `wasm`, adds the host's exports and compiles it.
///
/// A gzip-compressed module (what dfx and icp-cli install, and the only way to install a module over the 2 MiB
/// ingress limit in one message) is decompressed first, up to [`MAX_WASM_MODULE_BYTES`]; the module hash is of
/// the bytes as installed, as on the IC.
pub fn prepare(engine: &Engine, installed: &[u8]) -> Result<PreparedModule, PrepareError> {
    let decompressed;
    let wasm = if installed.starts_with(&[0x1f, 0x8b]) {
        decompressed = gunzip(installed)?;
        &decompressed[..]
    } else {
        installed
    };
    let invalid = |e: wasmparser::BinaryReaderError| PrepareError::Invalid(e.to_string());
    let mut types: Vec<wasmparser::FuncType> = Vec::new();
    let mut mutable_globals: Vec<u32> = Vec::new();
    let mut has_table = false;
    let mut has_memory = false;
    let mut export_section: Option<(std::ops::Range<usize>, Vec<ExportEntry>)> = None;
    let mut update_methods = Vec::new();
    let mut query_methods = Vec::new();
    let mut public_metadata = Vec::new();
    let mut func_exports = Vec::new();
    // Where an export section would go if the module has none: after the last of the sections that precede it.
    let mut section_end_before_export = 8usize;

    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(invalid)?;
        match &payload {
            Payload::TypeSection(r) => section_end_before_export = r.range().end,
            Payload::ImportSection(r) => section_end_before_export = r.range().end,
            Payload::FunctionSection(r) => section_end_before_export = r.range().end,
            Payload::TableSection(r) => section_end_before_export = r.range().end,
            Payload::MemorySection(r) => section_end_before_export = r.range().end,
            Payload::TagSection(r) => section_end_before_export = r.range().end,
            Payload::GlobalSection(r) => section_end_before_export = r.range().end,
            _ => {}
        }
        match payload {
            Payload::TypeSection(r) => {
                for ty in r.into_iter_err_on_gc_types() {
                    types.push(ty.map_err(invalid)?);
                }
            }
            Payload::ImportSection(r) => {
                for imp in r {
                    let imp = imp.map_err(invalid)?;
                    let TypeRef::Func(ti) = imp.ty else {
                        return Err(PrepareError::UnsupportedImport {
                            module: imp.module.to_string(),
                            name: imp.name.to_string(),
                            count: SYSTEM_API.len(),
                        });
                    };
                    let Some((_, expected)) = SYSTEM_API.iter().find(|(n, _)| imp.module == "ic0" && *n == imp.name)
                    else {
                        return Err(PrepareError::UnsupportedImport {
                            module: imp.module.to_string(),
                            name: imp.name.to_string(),
                            count: SYSTEM_API.len(),
                        });
                    };
                    let ty = types
                        .get(ti as usize)
                        .ok_or_else(|| PrepareError::Invalid(format!("import type index {ti} out of range")))?;
                    let found = sig_of(ty);
                    if found != *expected {
                        return Err(PrepareError::ImportSignature {
                            name: imp.name.to_string(),
                            found,
                            expected: expected.to_string(),
                        });
                    }
                }
            }
            Payload::TableSection(r) => has_table |= r.count() > 0,
            Payload::MemorySection(r) => has_memory |= r.count() > 0,
            Payload::GlobalSection(r) => {
                for (i, g) in r.into_iter().enumerate() {
                    let g = g.map_err(invalid)?;
                    if g.ty.mutable {
                        // Non-function imports are refused, so defined globals are numbered from 0.
                        mutable_globals.push(i as u32);
                    }
                }
            }
            Payload::ExportSection(r) => {
                let range = r.range();
                let mut exports = Vec::new();
                for e in r {
                    let e = e.map_err(invalid)?;
                    let kind = match e.kind {
                        wasmparser::ExternalKind::Func => 0,
                        wasmparser::ExternalKind::Table => 1,
                        wasmparser::ExternalKind::Memory => 2,
                        wasmparser::ExternalKind::Global => 3,
                        wasmparser::ExternalKind::Tag => 4,
                    };
                    if e.name.starts_with("__opml_devnet_") {
                        return Err(PrepareError::Unsupported(format!("export name `{}` is reserved", e.name)));
                    }
                    if kind == 0 {
                        func_exports.push(e.name.to_string());
                    }
                    exports.push((e.name.to_string(), kind, e.index));
                }
                export_section = Some((range, exports));
            }
            Payload::CustomSection(c) => {
                if let Some(name) = c.name().strip_prefix("icp:public ") {
                    public_metadata.push((name.to_string(), c.data().to_vec()));
                }
            }
            _ => {}
        }
    }

    for name in &func_exports {
        if let Some(m) = name.strip_prefix("canister_update ") {
            update_methods.push(m.to_string());
        } else if let Some(m) = name.strip_prefix("canister_query ") {
            query_methods.push(m.to_string());
        } else if let Some(m) = name.strip_prefix("canister_composite_query ") {
            // Run as plain queries: the devnet has no composite-query call graph.
            query_methods.push(m.to_string());
        }
    }
    for m in &update_methods {
        if query_methods.contains(m) {
            return Err(PrepareError::DuplicateMethod(m.clone()));
        }
    }

    // Rewrite the export section with the host's extra exports.
    let (range, mut exports) = match export_section {
        Some((range, exports)) => (range, exports),
        None => (section_end_before_export..section_end_before_export, Vec::new()),
    };
    if has_memory {
        exports.push((MEMORY_EXPORT.to_string(), 2, 0));
    }
    if has_table {
        exports.push((TABLE_EXPORT.to_string(), 1, 0));
    }
    for (i, g) in mutable_globals.iter().enumerate() {
        exports.push((format!("{GLOBAL_EXPORT_PREFIX}{i}"), 3, *g));
    }
    let mut body = crate::cbor::leb128(exports.len() as u64);
    for (name, kind, index) in &exports {
        body.extend(crate::cbor::leb128(name.len() as u64));
        body.extend_from_slice(name.as_bytes());
        body.push(*kind);
        body.extend(crate::cbor::leb128(*index as u64));
    }
    // `range` covers the section's contents; the id and size precede it.
    let header_start = if range.is_empty() && range.start == section_end_before_export {
        range.start
    } else {
        // Walk back over the LEB128 size and the id byte.
        let mut p = range.start - 1;
        while p > 0 && wasm[p - 1] & 0x80 != 0 {
            p -= 1;
        }
        p - 1
    };
    let mut out = Vec::with_capacity(wasm.len() + body.len());
    out.extend_from_slice(&wasm[..header_start]);
    out.push(7);
    out.extend(crate::cbor::leb128(body.len() as u64));
    out.extend_from_slice(&body);
    out.extend_from_slice(&wasm[range.end..]);

    let instrumented = instrument(&out).map_err(|e| match e {
        InstrumentError::Invalid(m) => PrepareError::Invalid(m),
        InstrumentError::Unsupported(m) => PrepareError::Unsupported(m),
    })?;
    let module = Module::new(engine, &instrumented.wasm[..]).map_err(|e| PrepareError::Invalid(e.to_string()))?;
    let has = |n: &str| func_exports.iter().any(|e| e == n);
    Ok(PreparedModule {
        module,
        module_hash: sha256(installed),
        exports_global_timer: has("canister_global_timer"),
        exports_heartbeat: has("canister_heartbeat"),
        exports_inspect_message: has("canister_inspect_message"),
        has_init: has("canister_init"),
        has_pre_upgrade: has("canister_pre_upgrade"),
        has_post_upgrade: has("canister_post_upgrade"),
        update_methods,
        query_methods,
        public_metadata,
        mutable_globals: mutable_globals.len(),
        has_table,
        has_memory,
    })
}

/// A call being built by `call_new` .. `call_perform`.
#[derive(Clone, Debug)]
pub struct OutgoingCall {
    pub callee: Principal,
    pub method: String,
    pub payload: Vec<u8>,
    pub reply: (u32, u32),
    pub reject: (u32, u32),
    pub cleanup: Option<(u32, u32)>,
    pub cycles: u128,
    pub timeout_seconds: Option<u32>,
}

/// What a message produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Reply(Vec<u8>),
    Reject(String),
}

/// The execution context of one message.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub kind: EntryKind,
    pub method: String,
    pub arg: Vec<u8>,
    pub caller: Principal,
    /// For reject callbacks: the reject code and message (reply callbacks see code 0).
    pub reject_code: u32,
    pub reject_message: String,
    /// Whether the message may still respond (its call context is open and unanswered).
    pub can_respond: bool,
    pub response: Option<Response>,
    pub reply_buf: Vec<u8>,
    pub building: Option<OutgoingCall>,
    pub calls: Vec<OutgoingCall>,
    pub cycles_available: u128,
    pub cycles_accepted: u128,
    pub cycles_refunded: u128,
    pub deadline: u64,
    pub accepted: bool,
    pub data_certificate: Option<Vec<u8>>,
    /// Instructions of earlier executions in the same call context (performance counter 1).
    pub call_context_instructions: u64,
    pub debug_log: Vec<String>,
    pub limit: u64,
    pub max_reply_bytes: usize,
}

impl Ctx {
    pub fn new(kind: EntryKind, method: &str, arg: Vec<u8>, caller: Principal, limit: u64) -> Ctx {
        Ctx {
            kind,
            method: method.to_string(),
            arg,
            caller,
            reject_code: 0,
            reject_message: String::new(),
            can_respond: matches!(kind, EntryKind::Update | EntryKind::Query),
            response: None,
            reply_buf: Vec::new(),
            building: None,
            calls: Vec::new(),
            cycles_available: 0,
            cycles_accepted: 0,
            cycles_refunded: 0,
            deadline: 0,
            accepted: false,
            data_certificate: None,
            call_context_instructions: 0,
            debug_log: Vec::new(),
            limit,
            max_reply_bytes: 2 * 1024 * 1024,
        }
    }
}

/// The canister's environment as seen by one execution (read-only).
#[derive(Clone, Debug)]
pub struct Env {
    pub canister_id: Principal,
    pub subnet_id: Principal,
    pub root_key: Vec<u8>,
    pub controllers: Vec<Principal>,
    pub time: u64,
    pub version: u64,
    pub status: u32,
}

/// State of the System API that persists across messages (rolled back with the memories).
#[derive(Clone, Debug, Default)]
pub struct SysState {
    pub global_timer: u64,
    pub certified_data: Vec<u8>,
    pub cycles: u128,
}

/// The store data: everything host functions see.
pub struct Host {
    memory: Option<Memory>,
    /// The instrumented module's instruction counter (absent while the start function runs, which cannot call
    /// the System API).
    counter: Option<Global>,
    pub ctx: Ctx,
    pub env: Env,
    pub sys: SysState,
    pub stable: StableMemory,
}

/// Why a message did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trap {
    /// `ic0.trap` (IC0503).
    Called(String),
    /// A wasm trap or a System API misuse (IC0502 / IC0504).
    Trapped(String),
    /// Contract violation (IC0504).
    Violation(String),
    /// Instruction limit (IC0522).
    OutOfInstructions(u64),
    /// The export or callback to run is missing.
    Missing(String),
}

#[derive(Debug)]
enum HostTrap {
    Called(String),
    Violation(String),
    OutOfInstructions,
}

impl std::fmt::Display for HostTrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostTrap::Called(m) => write!(f, "canister called ic0.trap: {m}"),
            HostTrap::Violation(m) => write!(f, "{m}"),
            HostTrap::OutOfInstructions => write!(f, "instruction limit exceeded"),
        }
    }
}

impl wasmi::errors::HostError for HostTrap {}

fn violation(msg: impl Into<String>) -> Error {
    Error::host(HostTrap::Violation(msg.into()))
}

/// The outcome of one execution.
pub struct ExecOutcome {
    pub result: Result<(), Trap>,
    pub ctx: Ctx,
    /// The IC instruction count (the message's limit if it ran out of instructions).
    pub instructions: u64,
    /// The wasmi fuel the message used (for comparison with the IC count).
    pub fuel: u64,
}

/// Where an execution starts.
#[derive(Clone, Debug)]
pub enum Entry {
    Export(String),
    /// A callback: function table index and its environment argument.
    Callback(u32, u32),
}

/// A live instance of a canister's module.
pub struct CanisterInstance {
    pub prepared: Arc<PreparedModule>,
    store: Store<Host>,
    instance: Instance,
    memory: Option<Memory>,
    globals: Vec<Global>,
    table: Option<Table>,
    /// The instruction counter and limit globals (not among `globals`: they are not canister state).
    counter: Global,
    limit: Global,
}

struct Snapshot {
    memory: Vec<u8>,
    globals: Vec<Val>,
    sys: SysState,
}

/// A full copy of an instance's state (for undoing a failed upgrade).
pub struct Backup {
    snap: Snapshot,
    stable: StableMemory,
}

impl CanisterInstance {
    /// Instantiates `prepared` with the given persistent state (running the start function, if any).
    pub fn new(
        engine: &Engine,
        linker: &Linker<Host>,
        prepared: Arc<PreparedModule>,
        env: Env,
        sys: SysState,
        stable: StableMemory,
        limit: u64,
    ) -> Result<(CanisterInstance, u64), (Trap, StableMemory)> {
        let host = Host {
            memory: None,
            counter: None,
            ctx: Ctx::new(EntryKind::Start, "", Vec::new(), Principal::management_canister(), limit),
            env,
            sys,
            stable,
        };
        let mut store = Store::new(engine, host);
        store.set_fuel(limit.saturating_mul(FUEL_GUARD_FACTOR)).expect("fuel metering is on");
        let instance = match linker.instantiate_and_start(&mut store, &prepared.module) {
            Ok(i) => i,
            Err(e) => {
                let trap = classify(&e, limit, store.get_fuel().unwrap_or(0) == 0);
                return Err((trap, store.into_data().stable));
            }
        };
        let counter = instance.get_global(&store, COUNTER_EXPORT).expect("the instrumented module exports its counter");
        let limit_global =
            instance.get_global(&store, LIMIT_EXPORT).expect("the instrumented module exports its limit");
        let used = counted(&store, counter);
        if used > limit {
            return Err((Trap::OutOfInstructions(limit), store.into_data().stable));
        }
        store.data_mut().counter = Some(counter);
        let memory = prepared.has_memory.then(|| instance.get_memory(&store, MEMORY_EXPORT)).flatten();
        let table = prepared.has_table.then(|| instance.get_table(&store, TABLE_EXPORT)).flatten();
        let globals = (0..prepared.mutable_globals)
            .map(|i| instance.get_global(&store, &format!("{GLOBAL_EXPORT_PREFIX}{i}")).expect("exported global"))
            .collect();
        store.data_mut().memory = memory;
        Ok((CanisterInstance { prepared, store, instance, memory, globals, table, counter, limit: limit_global }, used))
    }

    pub fn host(&self) -> &Host {
        self.store.data()
    }

    pub fn host_mut(&mut self) -> &mut Host {
        self.store.data_mut()
    }

    /// Takes the stable memory out (for upgrades).
    pub fn take_stable(&mut self) -> StableMemory {
        std::mem::take(&mut self.store.data_mut().stable)
    }

    pub fn put_stable(&mut self, stable: StableMemory) {
        self.store.data_mut().stable = stable;
    }

    pub fn memory_bytes(&self) -> u64 {
        self.memory.map(|m| m.data(&self.store).len() as u64).unwrap_or(0)
    }

    /// Digests of the persistent state: (stable memory, heap: linear memory, mutable globals and the system state
    /// a message can change: global timer, certified data, cycles).
    pub fn state_digest(&self) -> ([u8; 32], [u8; 32]) {
        let mut heap = self.memory.map(|m| m.data(&self.store).to_vec()).unwrap_or_default();
        for g in &self.globals {
            heap.extend_from_slice(format!("{:?}", g.get(&self.store)).as_bytes());
        }
        let sys = &self.store.data().sys;
        heap.extend_from_slice(&sys.global_timer.to_le_bytes());
        heap.extend_from_slice(&sys.certified_data);
        heap.extend_from_slice(&sys.cycles.to_le_bytes());
        (self.store.data().stable.digest(), sha256(&heap))
    }

    pub fn has_export(&self, name: &str) -> bool {
        self.instance.get_func(&self.store, name).is_some()
    }

    pub fn backup(&self) -> Backup {
        let memory = self.memory.map(|m| m.data(&self.store).to_vec()).unwrap_or_default();
        let globals = self.globals.iter().map(|g| g.get(&self.store)).collect();
        let h = self.store.data();
        Backup { snap: Snapshot { memory, globals, sys: h.sys.clone() }, stable: h.stable.clone() }
    }

    pub fn restore_backup(&mut self, engine: &Engine, linker: &Linker<Host>, b: Backup) {
        self.store.data_mut().stable.commit();
        self.restore(engine, linker, b.snap);
        self.store.data_mut().stable = b.stable;
    }

    fn snapshot(&mut self) -> Snapshot {
        let memory = self.memory.map(|m| m.data(&self.store).to_vec()).unwrap_or_default();
        let globals = self.globals.iter().map(|g| g.get(&self.store)).collect();
        self.store.data_mut().stable.begin();
        Snapshot { memory, globals, sys: self.store.data().sys.clone() }
    }

    fn restore(&mut self, engine: &Engine, linker: &Linker<Host>, snap: Snapshot) {
        self.store.data_mut().stable.rollback();
        self.store.data_mut().sys = snap.sys;
        let grown = self.memory.is_some_and(|m| m.data(&self.store).len() != snap.memory.len());
        if grown {
            // Rebuild the instance: same module, the snapshot's memory and globals.
            let host = {
                let h = self.store.data_mut();
                Host {
                    memory: None,
                    counter: None,
                    ctx: h.ctx.clone(),
                    env: h.env.clone(),
                    sys: std::mem::take(&mut h.sys),
                    stable: std::mem::take(&mut h.stable),
                }
            };
            let mut store = Store::new(engine, host);
            store.set_fuel(u64::MAX / 2).expect("fuel metering is on");
            store.data_mut().ctx.kind = EntryKind::Start;
            let instance = linker
                .instantiate_and_start(&mut store, &self.prepared.module)
                .expect("re-instantiating a module that instantiated before");
            let memory = instance.get_memory(&store, MEMORY_EXPORT).expect("memory export");
            let have = memory.data(&store).len() as u64 / 65536;
            let want = snap.memory.len() as u64 / 65536;
            if want > have {
                memory.grow(&mut store, want - have).expect("growing to the snapshot's size");
            }
            memory.data_mut(&mut store).copy_from_slice(&snap.memory);
            let globals: Vec<Global> = (0..self.prepared.mutable_globals)
                .map(|i| instance.get_global(&store, &format!("{GLOBAL_EXPORT_PREFIX}{i}")).expect("global"))
                .collect();
            for (g, v) in globals.iter().zip(snap.globals) {
                g.set(&mut store, v).expect("same global type");
            }
            store.data_mut().memory = Some(memory);
            let counter =
                instance.get_global(&store, COUNTER_EXPORT).expect("the instrumented module exports its counter");
            store.data_mut().counter = Some(counter);
            self.counter = counter;
            self.limit = instance.get_global(&store, LIMIT_EXPORT).expect("the instrumented module exports its limit");
            self.table = instance.get_table(&store, TABLE_EXPORT);
            self.store = store;
            self.instance = instance;
            self.memory = Some(memory);
            self.globals = globals;
        } else {
            if let Some(m) = self.memory {
                m.data_mut(&mut self.store).copy_from_slice(&snap.memory);
            }
            for (g, v) in self.globals.clone().iter().zip(snap.globals) {
                g.set(&mut self.store, v).expect("same global type");
            }
        }
    }

    /// Runs one message. With `commit`, a successful execution's changes are kept; a trap (or `commit ==
    /// false`, as for queries) restores the state from before the message.
    pub fn execute(
        &mut self,
        engine: &Engine,
        linker: &Linker<Host>,
        entry: &Entry,
        env: Env,
        ctx: Ctx,
        commit: bool,
    ) -> ExecOutcome {
        let limit = ctx.limit;
        let snap = self.snapshot();
        {
            let h = self.store.data_mut();
            h.ctx = ctx;
            h.env = env;
        }
        let guard = limit.saturating_mul(FUEL_GUARD_FACTOR);
        self.store.set_fuel(guard).expect("fuel metering is on");
        self.counter.set(&mut self.store, Val::I64(0)).expect("the counter is a mutable i64");
        let limit_val = i64::try_from(limit).unwrap_or(i64::MAX);
        self.limit.set(&mut self.store, Val::I64(limit_val)).expect("the limit is a mutable i64");
        let func: Result<Func, Trap> = match entry {
            Entry::Export(name) => self.instance.get_func(&self.store, name).ok_or_else(|| Trap::Missing(name.clone())),
            Entry::Callback(idx, _) => self
                .table
                .and_then(|t| t.get(&self.store, *idx as u64))
                .and_then(|r| match r {
                    wasmi::Ref::Func(f) => Option::<Func>::from(f),
                    _ => None,
                })
                .ok_or_else(|| Trap::Trapped(format!("callback: function table index {idx} is not a function"))),
        };
        let result = func.and_then(|f| {
            let r = match entry {
                Entry::Export(_) => f.typed::<(), ()>(&self.store).map(|t| t.call(&mut self.store, ())),
                Entry::Callback(_, env) => {
                    f.typed::<i32, ()>(&self.store).map(|t| t.call(&mut self.store, *env as i32))
                }
            };
            match r {
                Err(_) => Err(Trap::Trapped("the entry point has the wrong type".into())),
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(classify(&e, limit, self.store.get_fuel().unwrap_or(0) == 0)),
            }
        });
        let fuel = guard - self.store.get_fuel().unwrap_or(0);
        let counted = counted(&self.store, self.counter);
        // Over the limit (the module's own check traps with `unreachable`, the host's at a System API call with
        // out of instructions, or the message ended over it): out of instructions, whatever else happened after.
        let result = if counted > limit { Err(Trap::OutOfInstructions(limit)) } else { result };
        let instructions = if matches!(result, Err(Trap::OutOfInstructions(_))) { limit } else { counted };
        if print_counts() {
            eprintln!(
                "opml-devnet: {} {:?}: {instructions} instructions (IC count), {fuel} fuel",
                self.store.data().ctx.kind.name(),
                self.store.data().ctx.method
            );
        }
        // A reply built with msg_reply_data_append but never sent is dropped, as on the IC.
        let ctx = std::mem::replace(
            &mut self.store.data_mut().ctx,
            Ctx::new(EntryKind::Start, "", Vec::new(), Principal::management_canister(), 0),
        );
        if commit && result.is_ok() {
            self.store.data_mut().stable.commit();
        } else {
            self.restore(engine, linker, snap);
        }
        ExecOutcome { result, ctx, instructions, fuel }
    }
}

/// Whether to print each message's IC count and fuel to stderr (environment variable `OPML_DEVNET_PRINT_COUNTS`
/// set to anything but `0`): a diagnostic for comparing the two on any test or run without changing its code.
fn print_counts() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("OPML_DEVNET_PRINT_COUNTS").is_some_and(|v| v != "0"))
}

/// The IC count of the running (or last) message (System API charges included). A negative counter (impossible
/// within a message, see [`crate::metering`]) reads as the largest count, never as a small one.
fn counted(ctx: impl wasmi::AsContext<Data = Host>, counter: Global) -> u64 {
    match counter.get(&ctx) {
        Val::I64(v) => u64::try_from(v).unwrap_or(u64::MAX),
        other => unreachable!("the counter is an i64 global, found {other:?}"),
    }
}

/// Maps a wasmi error to a trap; `out_of_fuel`: the runaway guard is exhausted.
fn classify(e: &Error, limit: u64, out_of_fuel: bool) -> Trap {
    if let Some(h) = e.downcast_ref::<HostTrap>() {
        return match h {
            HostTrap::Called(m) => Trap::Called(m.clone()),
            HostTrap::Violation(m) => Trap::Violation(m.clone()),
            HostTrap::OutOfInstructions => Trap::OutOfInstructions(limit),
        };
    }
    if let Some(code) = e.as_trap_code() {
        if code == wasmi::TrapCode::OutOfFuel {
            return Trap::OutOfInstructions(limit);
        }
        let msg = match code {
            wasmi::TrapCode::UnreachableCodeReached => "unreachable".to_string(),
            wasmi::TrapCode::MemoryOutOfBounds => "heap out of bounds".to_string(),
            wasmi::TrapCode::TableOutOfBounds => "table out of bounds".to_string(),
            wasmi::TrapCode::IntegerDivisionByZero => "integer division by 0".to_string(),
            wasmi::TrapCode::IntegerOverflow => "integer overflow".to_string(),
            wasmi::TrapCode::StackOverflow => "stack overflow".to_string(),
            other => other.to_string(),
        };
        return Trap::Trapped(msg);
    }
    if out_of_fuel {
        return Trap::OutOfInstructions(limit);
    }
    Trap::Trapped(e.to_string())
}

// ---------------------------------------------------------------------------------------------------------
// The System API.

fn check(caller: &Caller<'_, Host>, name: &str, a: Avail) -> Result<(), Error> {
    let k = caller.data().ctx.kind;
    if available(a, k) {
        Ok(())
    } else {
        Err(violation(format!("\"ic0_{name}\" cannot be executed in {} mode", k.name())))
    }
}

/// Charges `n` instructions for System API work (to the IC count and to the fuel guard) and checks the IC count
/// against the message's limit.
fn charge_mut(caller: &mut Caller<'_, Host>, n: u64) -> Result<(), Error> {
    let fuel = caller.get_fuel().expect("fuel metering is on");
    if fuel < n {
        caller.set_fuel(0).expect("fuel metering is on");
        return Err(Error::host(HostTrap::OutOfInstructions));
    }
    caller.set_fuel(fuel - n).expect("fuel metering is on");
    let Some(counter) = caller.data().counter else {
        // The start function: the System API is unavailable there, so nothing is charged.
        return Ok(());
    };
    let total = counted(&*caller, counter).saturating_add(n);
    // Saturating at i64::MAX keeps it "over any limit" (limits are far below).
    counter.set(&mut *caller, Val::I64(i64::try_from(total).unwrap_or(i64::MAX))).expect("a mutable i64");
    if total > caller.data().ctx.limit {
        return Err(Error::host(HostTrap::OutOfInstructions));
    }
    Ok(())
}

/// The running message's IC count (0 while the start function runs: it has no counter yet).
fn instructions_so_far(caller: &Caller<'_, Host>) -> u64 {
    caller.data().counter.map_or(0, |counter| counted(caller, counter))
}

fn enter(caller: &mut Caller<'_, Host>, name: &str, a: Avail, bytes: u64) -> Result<(), Error> {
    check(caller, name, a)?;
    charge_mut(caller, SYSTEM_API_BASE_COST + bytes * SYSTEM_API_BYTE_COST)
}

fn memory(caller: &Caller<'_, Host>) -> Result<Memory, Error> {
    caller.data().memory.ok_or_else(|| violation("the canister has no memory"))
}

fn read_mem(caller: &Caller<'_, Host>, ptr: u32, len: u32) -> Result<Vec<u8>, Error> {
    let m = memory(caller)?;
    let data = m.data(caller);
    let (s, e) = (ptr as usize, ptr as usize + len as usize);
    if e > data.len() {
        return Err(violation(format!("heap out of bounds: reading {len} bytes at {ptr}")));
    }
    Ok(data[s..e].to_vec())
}

/// The heap range `[ptr, ptr + len)`, checked against the memory's size.
fn heap_range(len_mem: usize, ptr: u64, len: u64, what: &str) -> Result<std::ops::Range<usize>, Error> {
    match ptr.checked_add(len) {
        Some(end) if end <= len_mem as u64 => Ok(ptr as usize..end as usize),
        _ => Err(violation(format!("{what}: heap out of bounds ({len} bytes at {ptr}, heap size {len_mem})"))),
    }
}

/// Copies heap `[src, src + size)` to stable memory at `off` (no intermediate buffer).
fn stable_write(c: &mut Caller<'_, Host>, off: u64, src: u64, size: u64) -> Result<(), Error> {
    let m = memory(c)?;
    let (data, host) = m.data_and_store_mut(c);
    let r = heap_range(data.len(), src, size, "stable write")?;
    host.stable.write(off, &data[r]).map_err(violation)
}

/// Copies stable memory `[off, off + size)` to the heap at `dst` (no intermediate buffer).
fn stable_read(c: &mut Caller<'_, Host>, dst: u64, off: u64, size: u64) -> Result<(), Error> {
    let m = memory(c)?;
    let (data, host) = m.data_and_store_mut(c);
    let r = heap_range(data.len(), dst, size, "stable read")?;
    host.stable.read(off, &mut data[r]).map_err(violation)
}

fn write_mem(caller: &mut Caller<'_, Host>, ptr: u64, bytes: &[u8]) -> Result<(), Error> {
    let m = memory(caller)?;
    let data = m.data_mut(caller);
    let e = ptr.checked_add(bytes.len() as u64).filter(|e| *e <= data.len() as u64);
    let Some(e) = e else {
        return Err(violation(format!("heap out of bounds: writing {} bytes at {ptr}", bytes.len())));
    };
    data[ptr as usize..e as usize].copy_from_slice(bytes);
    Ok(())
}

/// `*_copy(dst, offset, size)` from a host buffer.
fn copy_out(caller: &mut Caller<'_, Host>, what: &str, src: &[u8], dst: u32, off: u32, size: u32) -> Result<(), Error> {
    let end = off as u64 + size as u64;
    if end > src.len() as u64 {
        return Err(violation(format!(
            "{what}: src buffer out of bounds (offset {off} + size {size} > length {})",
            src.len()
        )));
    }
    charge_mut(caller, size as u64 * SYSTEM_API_BYTE_COST)?;
    write_mem(caller, dst as u64, &src[off as usize..end as usize])
}

fn write_u128(caller: &mut Caller<'_, Host>, dst: u32, v: u128) -> Result<(), Error> {
    write_mem(caller, dst as u64, &v.to_le_bytes())
}

/// The Linker with every System API function of [`SYSTEM_API`].
pub fn linker(engine: &Engine) -> Linker<Host> {
    let mut l = Linker::<Host>::new(engine);
    macro_rules! wrap {
        ($name:literal, $f:expr) => {
            l.func_wrap("ic0", $name, $f).expect("distinct names")
        };
    }

    // Message arguments and caller.
    wrap!("msg_arg_data_size", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "msg_arg_data_size", Avail::Arg, 0)?;
        Ok(c.data().ctx.arg.len() as i32)
    });
    wrap!("msg_arg_data_copy", |mut c: Caller<'_, Host>, dst: i32, off: i32, size: i32| -> Result<(), Error> {
        enter(&mut c, "msg_arg_data_copy", Avail::Arg, 0)?;
        let src = std::mem::take(&mut c.data_mut().ctx.arg);
        let r = copy_out(&mut c, "msg_arg_data_copy", &src, dst as u32, off as u32, size as u32);
        c.data_mut().ctx.arg = src;
        r
    });
    wrap!("msg_caller_size", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "msg_caller_size", Avail::Caller, 0)?;
        Ok(c.data().ctx.caller.as_slice().len() as i32)
    });
    wrap!("msg_caller_copy", |mut c: Caller<'_, Host>, dst: i32, off: i32, size: i32| -> Result<(), Error> {
        enter(&mut c, "msg_caller_copy", Avail::Caller, 0)?;
        let src = c.data().ctx.caller.as_slice().to_vec();
        copy_out(&mut c, "msg_caller_copy", &src, dst as u32, off as u32, size as u32)
    });
    wrap!("msg_caller_info_data_size", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "msg_caller_info_data_size", Avail::Caller, 0)?;
        Ok(0)
    });
    wrap!("msg_caller_info_data_copy", |mut c: Caller<'_, Host>, dst: i32, off: i32, size: i32| -> Result<(), Error> {
        enter(&mut c, "msg_caller_info_data_copy", Avail::Caller, 0)?;
        copy_out(&mut c, "msg_caller_info_data_copy", &[], dst as u32, off as u32, size as u32)
    });
    wrap!("msg_caller_info_signer_size", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "msg_caller_info_signer_size", Avail::Caller, 0)?;
        Ok(0)
    });
    wrap!("msg_caller_info_signer_copy", |mut c: Caller<'_, Host>,
                                          dst: i32,
                                          off: i32,
                                          size: i32|
     -> Result<(), Error> {
        enter(&mut c, "msg_caller_info_signer_copy", Avail::Caller, 0)?;
        copy_out(&mut c, "msg_caller_info_signer_copy", &[], dst as u32, off as u32, size as u32)
    });
    wrap!("msg_reject_code", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "msg_reject_code", Avail::Callback, 0)?;
        Ok(c.data().ctx.reject_code as i32)
    });
    wrap!("msg_reject_msg_size", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "msg_reject_msg_size", Avail::Callback, 0)?;
        if c.data().ctx.kind != EntryKind::RejectCallback {
            return Err(violation("\"ic0_msg_reject_msg_size\" cannot be executed outside a reject callback"));
        }
        Ok(c.data().ctx.reject_message.len() as i32)
    });
    wrap!("msg_reject_msg_copy", |mut c: Caller<'_, Host>, dst: i32, off: i32, size: i32| -> Result<(), Error> {
        enter(&mut c, "msg_reject_msg_copy", Avail::Callback, 0)?;
        if c.data().ctx.kind != EntryKind::RejectCallback {
            return Err(violation("\"ic0_msg_reject_msg_copy\" cannot be executed outside a reject callback"));
        }
        let src = c.data().ctx.reject_message.clone().into_bytes();
        copy_out(&mut c, "msg_reject_msg_copy", &src, dst as u32, off as u32, size as u32)
    });
    wrap!("msg_deadline", |mut c: Caller<'_, Host>| -> Result<i64, Error> {
        enter(&mut c, "msg_deadline", Avail::Respond, 0)?;
        Ok(c.data().ctx.deadline as i64)
    });

    // Responding.
    wrap!("msg_reply_data_append", |mut c: Caller<'_, Host>, src: i32, size: i32| -> Result<(), Error> {
        enter(&mut c, "msg_reply_data_append", Avail::Respond, size as u32 as u64)?;
        let ctx = &c.data().ctx;
        if !ctx.can_respond || ctx.response.is_some() {
            return Err(violation("ic0.msg_reply_data_append: the call is already replied to"));
        }
        let data = read_mem(&c, src as u32, size as u32)?;
        let ctx = &mut c.data_mut().ctx;
        if ctx.reply_buf.len() + data.len() > ctx.max_reply_bytes {
            return Err(violation(format!(
                "ic0.msg_reply_data_append: application payload size ({}) cannot be larger than {}",
                ctx.reply_buf.len() + data.len(),
                ctx.max_reply_bytes
            )));
        }
        ctx.reply_buf.extend_from_slice(&data);
        Ok(())
    });
    wrap!("msg_reply", |mut c: Caller<'_, Host>| -> Result<(), Error> {
        enter(&mut c, "msg_reply", Avail::Respond, 0)?;
        let ctx = &mut c.data_mut().ctx;
        if !ctx.can_respond || ctx.response.is_some() {
            return Err(violation("ic0.msg_reply: the call is already replied to"));
        }
        ctx.response = Some(Response::Reply(std::mem::take(&mut ctx.reply_buf)));
        Ok(())
    });
    wrap!("msg_reject", |mut c: Caller<'_, Host>, src: i32, size: i32| -> Result<(), Error> {
        enter(&mut c, "msg_reject", Avail::Respond, size as u32 as u64)?;
        if !c.data().ctx.can_respond || c.data().ctx.response.is_some() {
            return Err(violation("ic0.msg_reject: the call is already replied to"));
        }
        let data = read_mem(&c, src as u32, size as u32)?;
        let msg = String::from_utf8(data).map_err(|_| violation("ic0.msg_reject: the message is not UTF-8"))?;
        c.data_mut().ctx.response = Some(Response::Reject(msg));
        Ok(())
    });

    // Cycles (the devnet keeps balances but charges nothing).
    wrap!("msg_cycles_available128", |mut c: Caller<'_, Host>, dst: i32| -> Result<(), Error> {
        enter(&mut c, "msg_cycles_available128", Avail::Cycles, 0)?;
        let v = c.data().ctx.cycles_available - c.data().ctx.cycles_accepted;
        write_u128(&mut c, dst as u32, v)
    });
    wrap!("msg_cycles_refunded128", |mut c: Caller<'_, Host>, dst: i32| -> Result<(), Error> {
        enter(&mut c, "msg_cycles_refunded128", Avail::Callback, 0)?;
        let v = c.data().ctx.cycles_refunded;
        write_u128(&mut c, dst as u32, v)
    });
    wrap!("msg_cycles_accept128", |mut c: Caller<'_, Host>, hi: i64, lo: i64, dst: i32| -> Result<(), Error> {
        enter(&mut c, "msg_cycles_accept128", Avail::Cycles, 0)?;
        let max = ((hi as u64 as u128) << 64) | lo as u64 as u128;
        let h = c.data_mut();
        let n = max.min(h.ctx.cycles_available - h.ctx.cycles_accepted);
        h.ctx.cycles_accepted += n;
        h.sys.cycles = h.sys.cycles.saturating_add(n);
        write_u128(&mut c, dst as u32, n)
    });
    wrap!("cycles_burn128", |mut c: Caller<'_, Host>, hi: i64, lo: i64, dst: i32| -> Result<(), Error> {
        enter(&mut c, "cycles_burn128", Avail::NotStart, 0)?;
        let amount = ((hi as u64 as u128) << 64) | lo as u64 as u128;
        let h = c.data_mut();
        let n = amount.min(h.sys.cycles);
        h.sys.cycles -= n;
        write_u128(&mut c, dst as u32, n)
    });

    // The canister itself.
    wrap!("canister_self_size", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "canister_self_size", Avail::NotStart, 0)?;
        Ok(c.data().env.canister_id.as_slice().len() as i32)
    });
    wrap!("canister_self_copy", |mut c: Caller<'_, Host>, dst: i32, off: i32, size: i32| -> Result<(), Error> {
        enter(&mut c, "canister_self_copy", Avail::NotStart, 0)?;
        let src = c.data().env.canister_id.as_slice().to_vec();
        copy_out(&mut c, "canister_self_copy", &src, dst as u32, off as u32, size as u32)
    });
    wrap!("canister_cycle_balance128", |mut c: Caller<'_, Host>, dst: i32| -> Result<(), Error> {
        enter(&mut c, "canister_cycle_balance128", Avail::NotStart, 0)?;
        let v = c.data().sys.cycles;
        write_u128(&mut c, dst as u32, v)
    });
    wrap!("canister_liquid_cycle_balance128", |mut c: Caller<'_, Host>, dst: i32| -> Result<(), Error> {
        enter(&mut c, "canister_liquid_cycle_balance128", Avail::NotStart, 0)?;
        let v = c.data().sys.cycles;
        write_u128(&mut c, dst as u32, v)
    });
    wrap!("canister_status", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "canister_status", Avail::NotStart, 0)?;
        Ok(c.data().env.status as i32)
    });
    wrap!("canister_version", |mut c: Caller<'_, Host>| -> Result<i64, Error> {
        enter(&mut c, "canister_version", Avail::NotStart, 0)?;
        Ok(c.data().env.version as i64)
    });
    wrap!("subnet_self_size", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "subnet_self_size", Avail::NotStart, 0)?;
        Ok(c.data().env.subnet_id.as_slice().len() as i32)
    });
    wrap!("subnet_self_copy", |mut c: Caller<'_, Host>, dst: i32, off: i32, size: i32| -> Result<(), Error> {
        enter(&mut c, "subnet_self_copy", Avail::NotStart, 0)?;
        let src = c.data().env.subnet_id.as_slice().to_vec();
        copy_out(&mut c, "subnet_self_copy", &src, dst as u32, off as u32, size as u32)
    });
    wrap!("subnet_self_node_count", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "subnet_self_node_count", Avail::NotStart, 0)?;
        Ok(1)
    });
    wrap!("msg_method_name_size", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "msg_method_name_size", Avail::MethodName, 0)?;
        Ok(c.data().ctx.method.len() as i32)
    });
    wrap!("msg_method_name_copy", |mut c: Caller<'_, Host>, dst: i32, off: i32, size: i32| -> Result<(), Error> {
        enter(&mut c, "msg_method_name_copy", Avail::MethodName, 0)?;
        let src = c.data().ctx.method.clone().into_bytes();
        copy_out(&mut c, "msg_method_name_copy", &src, dst as u32, off as u32, size as u32)
    });
    wrap!("accept_message", |mut c: Caller<'_, Host>| -> Result<(), Error> {
        enter(&mut c, "accept_message", Avail::Inspect, 0)?;
        if c.data().ctx.accepted {
            return Err(violation("ic0.accept_message: the message was already accepted"));
        }
        c.data_mut().ctx.accepted = true;
        Ok(())
    });

    // Inter-canister calls.
    wrap!("call_new", |mut c: Caller<'_, Host>,
                       callee_src: i32,
                       callee_size: i32,
                       name_src: i32,
                       name_size: i32,
                       reply_fun: i32,
                       reply_env: i32,
                       reject_fun: i32,
                       reject_env: i32|
     -> Result<(), Error> {
        enter(&mut c, "call_new", Avail::Call, 0)?;
        let callee = read_mem(&c, callee_src as u32, callee_size as u32)?;
        let callee = Principal::try_from_slice(&callee)
            .map_err(|e| violation(format!("ic0.call_new: invalid callee id: {e}")))?;
        let name = read_mem(&c, name_src as u32, name_size as u32)?;
        let method = String::from_utf8(name).map_err(|_| violation("ic0.call_new: method name is not UTF-8"))?;
        c.data_mut().ctx.building = Some(OutgoingCall {
            callee,
            method,
            payload: Vec::new(),
            reply: (reply_fun as u32, reply_env as u32),
            reject: (reject_fun as u32, reject_env as u32),
            cleanup: None,
            cycles: 0,
            timeout_seconds: None,
        });
        Ok(())
    });
    wrap!("call_on_cleanup", |mut c: Caller<'_, Host>, fun: i32, env: i32| -> Result<(), Error> {
        enter(&mut c, "call_on_cleanup", Avail::Call, 0)?;
        let Some(call) = c.data_mut().ctx.building.as_mut() else {
            return Err(violation("ic0.call_on_cleanup: no call is under construction"));
        };
        if call.cleanup.is_some() {
            return Err(violation("ic0.call_on_cleanup: the cleanup callback is already set"));
        }
        call.cleanup = Some((fun as u32, env as u32));
        Ok(())
    });
    wrap!("call_data_append", |mut c: Caller<'_, Host>, src: i32, size: i32| -> Result<(), Error> {
        enter(&mut c, "call_data_append", Avail::Call, size as u32 as u64)?;
        if c.data().ctx.building.is_none() {
            return Err(violation("ic0.call_data_append: no call is under construction"));
        }
        let data = read_mem(&c, src as u32, size as u32)?;
        let max = c.data().ctx.max_reply_bytes;
        let call = c.data_mut().ctx.building.as_mut().expect("checked");
        if call.payload.len() + data.len() > max {
            return Err(violation(format!(
                "ic0.call_data_append: the call payload ({} bytes) exceeds the {max}-byte limit",
                call.payload.len() + data.len()
            )));
        }
        call.payload.extend_from_slice(&data);
        Ok(())
    });
    wrap!("call_with_best_effort_response", |mut c: Caller<'_, Host>, secs: i32| -> Result<(), Error> {
        enter(&mut c, "call_with_best_effort_response", Avail::Call, 0)?;
        let Some(call) = c.data_mut().ctx.building.as_mut() else {
            return Err(violation("ic0.call_with_best_effort_response: no call is under construction"));
        };
        if call.timeout_seconds.is_some() {
            return Err(violation("ic0.call_with_best_effort_response: the timeout is already set"));
        }
        call.timeout_seconds = Some((secs as u32).clamp(1, 300));
        Ok(())
    });
    wrap!("call_cycles_add128", |mut c: Caller<'_, Host>, hi: i64, lo: i64| -> Result<(), Error> {
        enter(&mut c, "call_cycles_add128", Avail::Call, 0)?;
        let amount = ((hi as u64 as u128) << 64) | lo as u64 as u128;
        let h = c.data_mut();
        if h.ctx.building.is_none() {
            return Err(violation("ic0.call_cycles_add128: no call is under construction"));
        }
        if amount > h.sys.cycles {
            return Err(violation(format!(
                "ic0.call_cycles_add128: canister out of cycles (balance {}, requested {amount})",
                h.sys.cycles
            )));
        }
        h.sys.cycles -= amount;
        h.ctx.building.as_mut().expect("checked").cycles += amount;
        Ok(())
    });
    wrap!("call_perform", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "call_perform", Avail::Call, 0)?;
        let h = c.data_mut();
        let Some(call) = h.ctx.building.take() else {
            return Err(violation("ic0.call_perform: no call is under construction"));
        };
        h.ctx.calls.push(call);
        Ok(0)
    });

    // Stable memory.
    wrap!("stable64_size", |mut c: Caller<'_, Host>| -> Result<i64, Error> {
        enter(&mut c, "stable64_size", Avail::NotStart, 0)?;
        Ok(c.data().stable.size() as i64)
    });
    wrap!("stable64_grow", |mut c: Caller<'_, Host>, n: i64| -> Result<i64, Error> {
        enter(&mut c, "stable64_grow", Avail::NotStart, 0)?;
        Ok(c.data_mut().stable.grow(n as u64, MAX_STABLE_PAGES).map(|o| o as i64).unwrap_or(-1))
    });
    wrap!("stable64_write", |mut c: Caller<'_, Host>, off: i64, src: i64, size: i64| -> Result<(), Error> {
        enter(&mut c, "stable64_write", Avail::NotStart, size as u64)?;
        stable_write(&mut c, off as u64, src as u64, size as u64)
    });
    wrap!("stable64_read", |mut c: Caller<'_, Host>, dst: i64, off: i64, size: i64| -> Result<(), Error> {
        enter(&mut c, "stable64_read", Avail::NotStart, size as u64)?;
        stable_read(&mut c, dst as u64, off as u64, size as u64)
    });
    wrap!("stable_size", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "stable_size", Avail::NotStart, 0)?;
        let s = c.data().stable.size();
        if s > 65536 {
            return Err(violation("ic0.stable_size: stable memory is too large for the 32-bit API"));
        }
        Ok(s as i32)
    });
    wrap!("stable_grow", |mut c: Caller<'_, Host>, n: i32| -> Result<i32, Error> {
        enter(&mut c, "stable_grow", Avail::NotStart, 0)?;
        Ok(c.data_mut().stable.grow(n as u32 as u64, 65536).map(|o| o as i32).unwrap_or(-1))
    });
    wrap!("stable_write", |mut c: Caller<'_, Host>, off: i32, src: i32, size: i32| -> Result<(), Error> {
        enter(&mut c, "stable_write", Avail::NotStart, size as u32 as u64)?;
        stable_write(&mut c, off as u32 as u64, src as u32 as u64, size as u32 as u64)
    });
    wrap!("stable_read", |mut c: Caller<'_, Host>, dst: i32, off: i32, size: i32| -> Result<(), Error> {
        enter(&mut c, "stable_read", Avail::NotStart, size as u32 as u64)?;
        stable_read(&mut c, dst as u32 as u64, off as u32 as u64, size as u32 as u64)
    });

    // Certification and the root key.
    wrap!("root_key_size", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "root_key_size", Avail::NotStart, 0)?;
        Ok(c.data().env.root_key.len() as i32)
    });
    wrap!("root_key_copy", |mut c: Caller<'_, Host>, dst: i32, off: i32, size: i32| -> Result<(), Error> {
        enter(&mut c, "root_key_copy", Avail::NotStart, 0)?;
        let src = c.data().env.root_key.clone();
        copy_out(&mut c, "root_key_copy", &src, dst as u32, off as u32, size as u32)
    });
    wrap!("certified_data_set", |mut c: Caller<'_, Host>, src: i32, size: i32| -> Result<(), Error> {
        enter(&mut c, "certified_data_set", Avail::Replicated, size as u32 as u64)?;
        if size as u32 > 32 {
            return Err(violation("ic0.certified_data_set: certified data is at most 32 bytes"));
        }
        let data = read_mem(&c, src as u32, size as u32)?;
        c.data_mut().sys.certified_data = data;
        Ok(())
    });
    wrap!("data_certificate_present", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "data_certificate_present", Avail::NotStart, 0)?;
        Ok(c.data().ctx.data_certificate.is_some() as i32)
    });
    wrap!("data_certificate_size", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "data_certificate_size", Avail::QueryOnly, 0)?;
        match &c.data().ctx.data_certificate {
            Some(cert) => Ok(cert.len() as i32),
            None => Err(violation("ic0.data_certificate_size: no data certificate is present")),
        }
    });
    wrap!("data_certificate_copy", |mut c: Caller<'_, Host>, dst: i32, off: i32, size: i32| -> Result<(), Error> {
        enter(&mut c, "data_certificate_copy", Avail::QueryOnly, 0)?;
        let Some(src) = c.data().ctx.data_certificate.clone() else {
            return Err(violation("ic0.data_certificate_copy: no data certificate is present"));
        };
        copy_out(&mut c, "data_certificate_copy", &src, dst as u32, off as u32, size as u32)
    });

    // Time, timers, counters.
    wrap!("time", |mut c: Caller<'_, Host>| -> Result<i64, Error> {
        enter(&mut c, "time", Avail::NotStart, 0)?;
        Ok(c.data().env.time as i64)
    });
    wrap!("global_timer_set", |mut c: Caller<'_, Host>, t: i64| -> Result<i64, Error> {
        enter(&mut c, "global_timer_set", Avail::NotStart, 0)?;
        let h = c.data_mut();
        let old = h.sys.global_timer;
        h.sys.global_timer = t as u64;
        Ok(old as i64)
    });
    wrap!("performance_counter", |mut c: Caller<'_, Host>, kind: i32| -> Result<i64, Error> {
        enter(&mut c, "performance_counter", Avail::NotStart, 0)?;
        let used = instructions_so_far(&c);
        match kind {
            0 => Ok(used as i64),
            1 => Ok((c.data().ctx.call_context_instructions + used) as i64),
            _ => Err(violation(format!("ic0.performance_counter: unknown counter type {kind}"))),
        }
    });
    wrap!("is_controller", |mut c: Caller<'_, Host>, src: i32, size: i32| -> Result<i32, Error> {
        enter(&mut c, "is_controller", Avail::NotStart, 0)?;
        let bytes = read_mem(&c, src as u32, size as u32)?;
        let p = Principal::try_from_slice(&bytes)
            .map_err(|e| violation(format!("ic0.is_controller: invalid principal: {e}")))?;
        Ok(c.data().env.controllers.contains(&p) as i32)
    });
    wrap!("in_replicated_execution", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "in_replicated_execution", Avail::NotStart, 0)?;
        Ok(!matches!(c.data().ctx.kind, EntryKind::Query | EntryKind::InspectMessage) as i32)
    });
    wrap!("cost_call", |mut c: Caller<'_, Host>, _m: i64, _p: i64, dst: i32| -> Result<(), Error> {
        enter(&mut c, "cost_call", Avail::NotStart, 0)?;
        write_u128(&mut c, dst as u32, 0)
    });
    wrap!("cost_create_canister", |mut c: Caller<'_, Host>, dst: i32| -> Result<(), Error> {
        enter(&mut c, "cost_create_canister", Avail::NotStart, 0)?;
        write_u128(&mut c, dst as u32, 0)
    });
    wrap!("cost_http_request", |mut c: Caller<'_, Host>, _r: i64, _m: i64, dst: i32| -> Result<(), Error> {
        enter(&mut c, "cost_http_request", Avail::NotStart, 0)?;
        write_u128(&mut c, dst as u32, 0)
    });

    // Environment variables: the devnet sets none.
    wrap!("env_var_count", |mut c: Caller<'_, Host>| -> Result<i32, Error> {
        enter(&mut c, "env_var_count", Avail::NotStart, 0)?;
        Ok(0)
    });
    wrap!("env_var_name_size", |mut c: Caller<'_, Host>, _i: i32| -> Result<i32, Error> {
        enter(&mut c, "env_var_name_size", Avail::NotStart, 0)?;
        Err(violation("ic0.env_var_name_size: index out of bounds (no environment variables)"))
    });
    wrap!("env_var_name_copy", |mut c: Caller<'_, Host>, _i: i32, _d: i32, _o: i32, _s: i32| -> Result<(), Error> {
        enter(&mut c, "env_var_name_copy", Avail::NotStart, 0)?;
        Err(violation("ic0.env_var_name_copy: index out of bounds (no environment variables)"))
    });
    wrap!("env_var_name_exists", |mut c: Caller<'_, Host>, _s: i32, _z: i32| -> Result<i32, Error> {
        enter(&mut c, "env_var_name_exists", Avail::NotStart, 0)?;
        Ok(0)
    });
    wrap!("env_var_value_size", |mut c: Caller<'_, Host>, _s: i32, _z: i32| -> Result<i32, Error> {
        enter(&mut c, "env_var_value_size", Avail::NotStart, 0)?;
        Err(violation("ic0.env_var_value_size: no such environment variable"))
    });
    wrap!("env_var_value_copy", |mut c: Caller<'_, Host>,
                                 _s: i32,
                                 _z: i32,
                                 _d: i32,
                                 _o: i32,
                                 _n: i32|
     -> Result<(), Error> {
        enter(&mut c, "env_var_value_copy", Avail::NotStart, 0)?;
        Err(violation("ic0.env_var_value_copy: no such environment variable"))
    });

    // Debugging and traps.
    wrap!("debug_print", |mut c: Caller<'_, Host>, src: i32, size: i32| -> Result<(), Error> {
        enter(&mut c, "debug_print", Avail::NotStart, 0)?;
        let data = read_mem(&c, src as u32, (size as u32).min(64 * 1024))?;
        let msg = String::from_utf8_lossy(&data).into_owned();
        let id = c.data().env.canister_id;
        tracing::debug!(target: "opml_devnet::canister", canister = %id, "{msg}");
        c.data_mut().ctx.debug_log.push(msg);
        Ok(())
    });
    wrap!("trap", |c: Caller<'_, Host>, src: i32, size: i32| -> Result<(), Error> {
        let data = read_mem(&c, src as u32, (size as u32).min(16 * 1024)).unwrap_or_default();
        Err(Error::host(HostTrap::Called(String::from_utf8_lossy(&data).into_owned())))
    });
    l
}
