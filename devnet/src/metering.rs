//! IC-style instruction metering: the replica's static cost table and a rewrite that makes a module count.
//!
//! The IC instruments every canister module so that it counts a weighted sum of the *wasm* instructions it
//! executes; that count, not the time or the work of any particular engine, is what the instruction limits and the
//! cycles charge are about. wasmi's fuel counts wasmi's own register-machine instructions (it fuses `local.get`
//! and friends into operands), so the devnet rewrites each module the way the replica does and reads the count
//! the module keeps itself.
//!
//! **Cost table.** [`ic_cost`] is the replica's per-operator cost (`instruction_to_cost` of the IC's
//! `rs/embedders/src/wasm_utils/instrumentation.rs`, wasm32 memory). Bulk memory and table operations also cost
//! their size operand at run time, as on the IC.
//!
//! **Rewrite.** [`instrument`] appends two mutable `i64` globals: the counter (starting at 0, exported as
//! [`COUNTER_EXPORT`]) and the limit (starting at `i64::MAX`, exported as [`LIMIT_EXPORT`]). Every function body is cut into straight-line runs: a run ends after `loop`, `if`, `else`,
//! `end`, `br`, `br_if`, `br_table`, `return`, `unreachable` (and the tail calls), the points where control may
//! leave the run or enter the next one from elsewhere. At the start of each run with a non-zero cost it inserts
//! `global.get $c; i64.const <cost of the run>; i64.add; global.set $c`, so whenever a run's first instruction
//! executes the whole run is counted (exactly, unless the run traps midway, when the rest of it is counted too,
//! as on the IC). The first run of a function also counts [`FUNCTION_ENTRY_COST`], the replica's charge for entering
//! a function. `block` and calls do not end a run, as in the replica: the start of a block is not a branch target
//! (a branch to a block goes to its `end`), and a call returns to the next instruction, so the run stays
//! straight-line; a callee that traps leaves the rest of its caller's run counted, which only matters for a
//! message that traps anyway. Before every `memory.fill`, `memory.copy`, `memory.init`, `table.fill`, `table.copy`
//! and `table.init` it inserts a call to an appended helper function that adds the size operand (on top of the
//! stack) to the counter and returns it unchanged.
//!
//! **Limit.** As on the IC, the re-entrant runs (the first run of a function and the first run of a loop body)
//! also check the counter after adding to it: `global.get $c; global.get $limit; i64.gt_u; if unreachable end`.
//! Every loop iteration and every call passes such a check, so code that exceeds its limit stops within one run
//! (plus one bulk operation's size), without relying on System API calls or on the engine's fuel; the host sets
//! the limit before each message and reports such a trap, with the counter over the limit, as out of instructions.
//!
//! Original operator bytes are copied verbatim (locals declarations included); only the counting code is inserted,
//! and the body sizes, the code section and the type, function, global and export sections are re-encoded with
//! their new entries appended. Appended globals and functions take the next free indices, so no existing index
//! changes.
//!
//! **Overflow.** The counter is an `i64` that the module adds to with wrapping `i64.add`; the host resets it to 0
//! before every message and sets the limit (at most the 300B install limit). Between two checks a message runs
//! straight-line code of one function body plus at most one System API call (which checks too): at most its runs'
//! static costs (300 per operator, a body has fewer than 2^27 operators) and the sizes of its bulk operations
//! (under 2^32 each, one per operator), so the counter stays below 300B + 2^27 * (300 + 2^32), about 2^59, far
//! from 2^63. The host still reads a negative counter as the largest count, never as a small one.

use std::ops::Range;

use wasmparser::{FunctionBody, Operator, Parser, Payload, TypeRef};

/// The export name of the counter global (under the devnet's reserved `__opml_devnet_` prefix).
pub const COUNTER_EXPORT: &str = "__opml_devnet_instructions";

/// The export name of the limit global: re-entrant runs trap once the counter exceeds it.
pub const LIMIT_EXPORT: &str = "__opml_devnet_instruction_limit";

/// What the replica charges for entering a function (its first run starts at 1, so even an empty function costs).
pub const FUNCTION_ENTRY_COST: u64 = 1;

/// The replica's static cost of one wasm operator (wasm32 memory).
///
/// The dynamic part of the bulk operations (their size operand) is added at run time by [`instrument`]'s helper.
/// SIMD operators cost 1 here; the IC's table weighs some of them 2 to 14, which the devnet does not reproduce (no
/// canister of this project uses SIMD).
pub fn ic_cost(op: &Operator) -> u64 {
    use Operator::*;
    match op {
        // Structure only.
        Block { .. } | Loop { .. } | Else | End => 0,

        Nop | Unreachable | Return | Drop => 1,
        If { .. } | Br { .. } | BrIf { .. } | BrTable { .. } => 2,
        Call { .. } => 5,
        CallIndirect { .. } => 10,
        ReturnCall { .. } => 3,
        ReturnCallIndirect { .. } => 60,

        LocalGet { .. } | LocalSet { .. } | LocalTee { .. } | Select | TypedSelect { .. } => 1,
        GlobalGet { .. } | GlobalSet { .. } => 2,

        I32Const { .. } | I64Const { .. } | F32Const { .. } | F64Const { .. } => 1,

        // Integer arithmetic, bit operations and comparisons.
        I32Add | I32Sub | I32Mul | I32And | I32Or | I32Xor | I32Shl | I32ShrS | I32ShrU | I32Rotl | I32Rotr
        | I64Add | I64Sub | I64Mul | I64And | I64Or | I64Xor | I64Shl | I64ShrS | I64ShrU | I64Rotl | I64Rotr => 1,
        I32DivS | I32DivU | I32RemS | I32RemU | I64DivS | I64DivU | I64RemS | I64RemU => 10,
        I32Eqz | I32Eq | I32Ne | I32LtS | I32LtU | I32GtS | I32GtU | I32LeS | I32LeU | I32GeS | I32GeU | I64Eqz
        | I64Eq | I64Ne | I64LtS | I64LtU | I64GtS | I64GtU | I64LeS | I64LeU | I64GeS | I64GeU => 1,
        I32Clz | I32Ctz | I32Popcnt | I64Clz | I64Ctz | I64Popcnt => 1,

        // Floats (the replica's benchmarked weights).
        F32Abs | F32Neg | F64Abs | F64Neg => 1,
        F32Add | F32Sub | F32Mul | F32Ceil | F32Floor | F32Trunc | F32Nearest | F64Add | F64Sub | F64Mul | F64Ceil
        | F64Floor | F64Trunc | F64Nearest => 2,
        F32Div => 3,
        F64Div => 5,
        F32Min | F32Max | F64Min | F64Max => 18,
        F32Copysign => 2,
        F64Copysign => 3,
        F32Sqrt => 5,
        F64Sqrt => 8,
        F32Eq | F32Ne | F32Lt | F32Gt | F32Le | F32Ge | F64Eq | F64Ne | F64Lt | F64Gt | F64Le | F64Ge => 3,

        // Conversions.
        I32WrapI64 | I64ExtendI32S | I64ExtendI32U | I32Extend8S | I32Extend16S | I64Extend8S | I64Extend16S
        | I64Extend32S | I32ReinterpretF32 | I64ReinterpretF64 | F32ReinterpretI32 | F64ReinterpretI64 => 1,
        F32ConvertI32S | F32ConvertI64S | F64ConvertI32S | F64ConvertI64S => 3,
        F32ConvertI32U | F32ConvertI64U | F64ConvertI32U | F64ConvertI64U => 16,
        F32DemoteF64 | F64PromoteF32 => 1,
        I32TruncF32S | I32TruncF32U | I32TruncF64S | I32TruncF64U | I64TruncF32S | I64TruncF32U | I64TruncF64S
        | I64TruncF64U => 20,
        I32TruncSatF32S | I32TruncSatF32U | I32TruncSatF64S | I32TruncSatF64U | I64TruncSatF32S | I64TruncSatF32U
        | I64TruncSatF64S | I64TruncSatF64U => 20,

        // Memory.
        I32Load { .. }
        | I64Load { .. }
        | F32Load { .. }
        | F64Load { .. }
        | I32Load8S { .. }
        | I32Load8U { .. }
        | I32Load16S { .. }
        | I32Load16U { .. }
        | I64Load8S { .. }
        | I64Load8U { .. }
        | I64Load16S { .. }
        | I64Load16U { .. }
        | I64Load32S { .. }
        | I64Load32U { .. } => 1,
        I32Store { .. }
        | I64Store { .. }
        | F32Store { .. }
        | F64Store { .. }
        | I32Store8 { .. }
        | I32Store16 { .. }
        | I64Store8 { .. }
        | I64Store16 { .. }
        | I64Store32 { .. } => 1,
        MemorySize { .. } => 20,
        MemoryGrow { .. } => 300,
        MemoryFill { .. } | MemoryCopy { .. } | MemoryInit { .. } => 100,
        DataDrop { .. } => 300,

        // Tables and references.
        TableGet { .. } | TableSet { .. } => 5,
        TableSize { .. } => 100,
        TableGrow { .. } => 300,
        TableFill { .. } | TableCopy { .. } | TableInit { .. } => 100,
        ElemDrop { .. } => 300,
        RefNull { .. } => 1,
        RefIsNull => 5,
        RefFunc { .. } => 130,

        // SIMD and anything else the engine accepts: 1 (see above).
        _ => 1,
    }
}

/// Whether `op` ends a straight-line run (control may leave after it, or enter right after it from elsewhere).
fn ends_run(op: &Operator) -> bool {
    use Operator::*;
    matches!(
        op,
        Loop { .. }
            | If { .. }
            | Else
            | End
            | Br { .. }
            | BrIf { .. }
            | BrTable { .. }
            | Return
            | Unreachable
            | ReturnCall { .. }
            | ReturnCallIndirect { .. }
    )
}

/// Whether `op` also costs its size operand (the i32 on top of the stack) at run time.
fn has_dynamic_cost(op: &Operator) -> bool {
    use Operator::*;
    matches!(
        op,
        MemoryFill { .. }
            | MemoryCopy { .. }
            | MemoryInit { .. }
            | TableFill { .. }
            | TableCopy { .. }
            | TableInit { .. }
    )
}

/// Why a module cannot be instrumented.
#[derive(Debug, thiserror::Error)]
pub enum InstrumentError {
    /// The module is not well-formed wasm.
    #[error("invalid wasm module: {0}")]
    Invalid(String),
    /// The module uses something the devnet's metering does not handle.
    #[error("unsupported wasm module: {0}")]
    Unsupported(String),
}

fn invalid(e: wasmparser::BinaryReaderError) -> InstrumentError {
    InstrumentError::Invalid(e.to_string())
}

/// An instrumented module.
#[derive(Clone, Debug)]
pub struct Instrumented {
    /// The rewritten module.
    pub wasm: Vec<u8>,
    /// Index of the counter global (exported as [`COUNTER_EXPORT`]).
    pub counter_global: u32,
    /// Index of the limit global (exported as [`LIMIT_EXPORT`]), right after the counter.
    pub limit_global: u32,
    /// Index of the appended helper that counts bulk operations' sizes, if the module has any.
    pub bulk_helper: Option<u32>,
}

/// A top-level section: its id, where its header starts and its contents.
struct Section {
    id: u8,
    start: usize,
    content: Range<usize>,
}

/// Reads an unsigned LEB128 `u32` at `pos`: the value and its length in bytes.
fn read_u32(bytes: &[u8], pos: usize) -> Result<(u32, usize), InstrumentError> {
    let mut value: u64 = 0;
    for i in 0..5 {
        let b = *bytes.get(pos + i).ok_or_else(|| InstrumentError::Invalid("truncated LEB128 number".into()))?;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return u32::try_from(value)
                .map(|v| (v, i + 1))
                .map_err(|_| InstrumentError::Invalid("LEB128 number out of range".into()));
        }
    }
    Err(InstrumentError::Invalid("LEB128 number too long".into()))
}

/// The top-level sections of `wasm`, after checking the header.
fn sections(wasm: &[u8]) -> Result<Vec<Section>, InstrumentError> {
    if wasm.len() < 8 || wasm[..4] != *b"\0asm" || wasm[4..8] != [1, 0, 0, 0] {
        return Err(InstrumentError::Invalid("not a WebAssembly 1.0 core module".into()));
    }
    let mut out = Vec::new();
    let mut p = 8;
    while p < wasm.len() {
        let id = wasm[p];
        let (size, n) = read_u32(wasm, p + 1)?;
        let begin = p + 1 + n;
        let end = begin
            .checked_add(size as usize)
            .filter(|e| *e <= wasm.len())
            .ok_or_else(|| InstrumentError::Invalid(format!("section {id} runs past the end of the module")))?;
        out.push(Section { id, start: p, content: begin..end });
        p = end;
    }
    Ok(out)
}

/// Position of a known section id in the binary's mandatory section order (0 for custom sections).
fn rank(id: u8) -> u8 {
    match id {
        1..=5 => id,
        13 => 6, // tags come between memories and globals
        6 => 7,
        7 => 8,
        8 => 9,
        9 => 10,
        12 => 11, // data count precedes code
        10 => 12,
        11 => 13,
        _ => 0,
    }
}

fn push_u32(out: &mut Vec<u8>, v: u32) {
    out.extend(crate::cbor::leb128(u64::from(v)));
}

/// Signed LEB128, as `i64.const` takes its immediate.
fn push_i64(out: &mut Vec<u8>, v: i64) {
    out.extend(crate::cbor::sleb128(i128::from(v)));
}

fn push_section(out: &mut Vec<u8>, id: u8, content: &[u8]) {
    out.push(id);
    push_u32(out, content.len() as u32);
    out.extend_from_slice(content);
}

/// A vector section's contents with `extra` more items appended (`items`, already encoded).
fn append_items(wasm: &[u8], content: &Range<usize>, extra: u32, items: &[u8]) -> Result<Vec<u8>, InstrumentError> {
    let (count, n) = read_u32(wasm, content.start)?;
    let count =
        count.checked_add(extra).ok_or_else(|| InstrumentError::Unsupported("too many section entries".into()))?;
    let mut out = Vec::with_capacity(content.len() + items.len() + 5);
    push_u32(&mut out, count);
    out.extend_from_slice(&wasm[content.start + n..content.end]);
    out.extend_from_slice(items);
    Ok(out)
}

/// Opcodes the inserted code uses.
const GLOBAL_GET: u8 = 0x23;
const GLOBAL_SET: u8 = 0x24;
const LOCAL_GET: u8 = 0x20;
const CALL: u8 = 0x10;
const I64_CONST: u8 = 0x42;
const I64_ADD: u8 = 0x7c;
const I64_EXTEND_I32_U: u8 = 0xad;
const I64_GT_U: u8 = 0x56;
const IF: u8 = 0x04;
const EMPTY_BLOCK: u8 = 0x40;
const UNREACHABLE: u8 = 0x00;
const END: u8 = 0x0b;

/// `global.get $c; i64.const cost; i64.add; global.set $c`.
fn push_increment(out: &mut Vec<u8>, counter: u32, cost: u64) {
    out.push(GLOBAL_GET);
    push_u32(out, counter);
    out.push(I64_CONST);
    // A run's cost is at most 300 per operator of a body the engine accepted, far below i64::MAX.
    push_i64(out, cost as i64);
    out.push(I64_ADD);
    out.push(GLOBAL_SET);
    push_u32(out, counter);
}

/// `global.get $c; global.get $limit; i64.gt_u; if unreachable end`.
fn push_check(out: &mut Vec<u8>, counter: u32) {
    out.push(GLOBAL_GET);
    push_u32(out, counter);
    out.push(GLOBAL_GET);
    push_u32(out, counter + 1);
    out.extend_from_slice(&[I64_GT_U, IF, EMPTY_BLOCK, UNREACHABLE, END]);
}

/// A straight-line run: index of its first operator, its cost, whether control re-enters it (function entry, loop).
struct RunInfo {
    start: usize,
    cost: u64,
    reentrant: bool,
}

/// Rewrites one function body (its contents after the size); returns whether it calls the bulk helper. The limit
/// global is `counter + 1`.
fn instrument_body(
    wasm: &[u8],
    body: &FunctionBody,
    counter: u32,
    helper: u32,
    out: &mut Vec<u8>,
) -> Result<bool, InstrumentError> {
    let range = body.range();
    let mut reader = body.get_operators_reader().map_err(invalid)?;
    let ops_start = reader.original_position();
    let mut ops = Vec::new();
    while !reader.eof() {
        ops.push(reader.read_with_offset().map_err(invalid)?);
    }
    let mut runs: Vec<RunInfo> = Vec::new();
    let mut run = RunInfo { start: 0, cost: FUNCTION_ENTRY_COST, reentrant: true };
    for (i, (op, _)) in ops.iter().enumerate() {
        run.cost += ic_cost(op);
        if ends_run(op) {
            let reentrant = matches!(op, Operator::Loop { .. });
            runs.push(std::mem::replace(&mut run, RunInfo { start: i + 1, cost: 0, reentrant }));
        }
    }
    if run.start < ops.len() || run.cost > 0 {
        // A body always ends with `end`, so this only happens for malformed code, which the engine rejects.
        runs.push(run);
    }
    let mut new = Vec::with_capacity(range.len() + range.len() / 2);
    new.extend_from_slice(&wasm[range.start..ops_start]);
    let mut uses_helper = false;
    let mut next_run = runs.iter().peekable();
    for (i, (op, offset)) in ops.iter().enumerate() {
        if let Some(run) = next_run.next_if(|r| r.start == i) {
            if run.cost > 0 {
                push_increment(&mut new, counter, run.cost);
            }
            // Even a loop whose first run costs nothing iterates only through a branch that the counter sees, so
            // the check goes at every loop head regardless of the run's cost.
            if run.reentrant {
                push_check(&mut new, counter);
            }
        }
        if has_dynamic_cost(op) {
            new.push(CALL);
            push_u32(&mut new, helper);
            uses_helper = true;
        }
        let end = ops.get(i + 1).map_or(range.end, |(_, o)| *o);
        new.extend_from_slice(&wasm[*offset..end]);
    }
    if ops.is_empty() {
        new.extend_from_slice(&wasm[ops_start..range.end]);
    }
    push_u32(out, new.len() as u32);
    out.extend_from_slice(&new);
    Ok(uses_helper)
}

/// Rewrites `wasm` so that it counts its IC instruction cost in an exported global (see the module docs).
pub fn instrument(wasm: &[u8]) -> Result<Instrumented, InstrumentError> {
    let secs = sections(wasm)?;
    let (mut types, mut func_imports, mut global_imports, mut funcs, mut globals) = (0u32, 0u32, 0u32, 0u32, 0u32);
    let mut bodies: Vec<FunctionBody> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(invalid)? {
            Payload::TypeSection(r) => {
                for ty in r.into_iter_err_on_gc_types() {
                    ty.map_err(|e| InstrumentError::Unsupported(e.to_string()))?;
                    types += 1;
                }
            }
            Payload::ImportSection(r) => {
                for imp in r {
                    match imp.map_err(invalid)?.ty {
                        TypeRef::Func(_) => func_imports += 1,
                        TypeRef::Global(_) => global_imports += 1,
                        TypeRef::Memory(m) if m.memory64 => {
                            return Err(InstrumentError::Unsupported("64-bit memories are not metered".into()));
                        }
                        TypeRef::Table(t) if t.table64 => {
                            return Err(InstrumentError::Unsupported("64-bit tables are not metered".into()));
                        }
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(r) => funcs = r.count(),
            Payload::GlobalSection(r) => globals = r.count(),
            Payload::MemorySection(r) => {
                for m in r {
                    if m.map_err(invalid)?.memory64 {
                        return Err(InstrumentError::Unsupported("64-bit memories are not metered".into()));
                    }
                }
            }
            Payload::TableSection(r) => {
                for t in r {
                    if t.map_err(invalid)?.ty.table64 {
                        return Err(InstrumentError::Unsupported("64-bit tables are not metered".into()));
                    }
                }
            }
            Payload::CodeSectionEntry(body) => bodies.push(body),
            _ => {}
        }
    }
    if bodies.len() != funcs as usize {
        return Err(InstrumentError::Invalid(format!(
            "{funcs} functions declared but {} bodies present",
            bodies.len()
        )));
    }
    let overflow = || InstrumentError::Unsupported("too many globals or functions".into());
    let counter = global_imports.checked_add(globals).filter(|c| *c < u32::MAX).ok_or_else(overflow)?;
    let helper = func_imports.checked_add(funcs).ok_or_else(overflow)?;

    // Code first: whether any body needs the helper decides the type and function sections.
    let mut code = Vec::new();
    let mut needs_helper = false;
    for body in &bodies {
        needs_helper |= instrument_body(wasm, body, counter, helper, &mut code)?;
    }
    let mut helper_body = vec![0x00, GLOBAL_GET];
    push_u32(&mut helper_body, counter);
    helper_body.extend_from_slice(&[LOCAL_GET, 0, I64_EXTEND_I32_U, I64_ADD, GLOBAL_SET]);
    push_u32(&mut helper_body, counter);
    helper_body.extend_from_slice(&[LOCAL_GET, 0, END]);
    if needs_helper {
        push_u32(&mut code, helper_body.len() as u32);
        code.extend_from_slice(&helper_body);
    }
    let mut code_section = Vec::with_capacity(code.len() + 5);
    push_u32(&mut code_section, funcs + u32::from(needs_helper));
    code_section.extend_from_slice(&code);

    // Two mut i64 globals: the counter (`i64.const 0`) and the limit (`i64.const i64::MAX`, no limit until the
    // host sets one).
    let mut global_entry = vec![0x7e, 0x01, I64_CONST, 0x00, END, 0x7e, 0x01, I64_CONST];
    push_i64(&mut global_entry, i64::MAX);
    global_entry.push(END);
    let mut export_entry = Vec::new();
    for (name, index) in [(COUNTER_EXPORT, counter), (LIMIT_EXPORT, counter + 1)] {
        push_u32(&mut export_entry, name.len() as u32);
        export_entry.extend_from_slice(name.as_bytes());
        export_entry.push(0x03);
        push_u32(&mut export_entry, index);
    }

    let mut out = Vec::with_capacity(wasm.len() + wasm.len() / 4);
    out.extend_from_slice(&wasm[..8]);
    let (mut global_done, mut export_done) = (false, false);
    for s in &secs {
        let r = rank(s.id);
        if r != 0 && !global_done && r > rank(6) {
            let mut content = vec![2];
            content.extend_from_slice(&global_entry);
            push_section(&mut out, 6, &content);
            global_done = true;
        }
        if r != 0 && !export_done && r > rank(7) {
            let mut content = vec![2];
            content.extend_from_slice(&export_entry);
            push_section(&mut out, 7, &content);
            export_done = true;
        }
        match s.id {
            1 if needs_helper => {
                // (func (param i32) (result i32)), the helper's type, at index `types`.
                push_section(&mut out, 1, &append_items(wasm, &s.content, 1, &[0x60, 1, 0x7f, 1, 0x7f])?)
            }
            3 if needs_helper => {
                let mut idx = Vec::new();
                push_u32(&mut idx, types);
                push_section(&mut out, 3, &append_items(wasm, &s.content, 1, &idx)?)
            }
            6 => {
                push_section(&mut out, 6, &append_items(wasm, &s.content, 2, &global_entry)?);
                global_done = true;
            }
            7 => {
                push_section(&mut out, 7, &append_items(wasm, &s.content, 2, &export_entry)?);
                export_done = true;
            }
            10 => push_section(&mut out, 10, &code_section),
            _ => out.extend_from_slice(&wasm[s.start..s.content.end]),
        }
    }
    if !global_done {
        let mut content = vec![2];
        content.extend_from_slice(&global_entry);
        push_section(&mut out, 6, &content);
    }
    if !export_done {
        let mut content = vec![2];
        content.extend_from_slice(&export_entry);
        push_section(&mut out, 7, &content);
    }
    Ok(Instrumented {
        wasm: out,
        counter_global: counter,
        limit_global: counter + 1,
        bulk_helper: needs_helper.then_some(helper),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operators of every function body of `wasm`, as text.
    fn bodies(wasm: &[u8]) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for p in Parser::new(0).parse_all(wasm) {
            if let Payload::CodeSectionEntry(body) = p.unwrap() {
                let mut r = body.get_operators_reader().unwrap();
                let mut ops = Vec::new();
                while !r.eof() {
                    ops.push(format!("{:?}", r.read().unwrap()));
                }
                out.push(ops);
            }
        }
        out
    }

    /// `ops` without the inserted counting code (increments of `counter` and calls of `helper`).
    fn strip(ops: &[String], counter: u32, helper: Option<u32>) -> Vec<String> {
        let get = format!("GlobalGet {{ global_index: {counter} }}");
        let get_limit = format!("GlobalGet {{ global_index: {} }}", counter + 1);
        let set = format!("GlobalSet {{ global_index: {counter} }}");
        let call = helper.map(|h| format!("Call {{ function_index: {h} }}"));
        let mut out = Vec::new();
        let mut i = 0;
        while i < ops.len() {
            if ops[i] == get && ops.get(i + 2).map(String::as_str) == Some("I64Add") && ops.get(i + 3) == Some(&set) {
                assert!(ops[i + 1].starts_with("I64Const"), "{}", ops[i + 1]);
                i += 4;
            } else if ops[i] == get && ops.get(i + 1) == Some(&get_limit) {
                assert_eq!(ops[i + 2..i + 6], ["I64GtU", "If { blockty: Empty }", "Unreachable", "End"]);
                i += 6;
            } else if Some(&ops[i]) == call.as_ref() {
                i += 1;
            } else {
                out.push(ops[i].clone());
                i += 1;
            }
        }
        out
    }

    #[test]
    fn costs_follow_the_ic_table() {
        let src = r#"(module (memory 1) (table 1 funcref)
          (func (param f32 f64 i32 i64) (result i32)
            i32.const 1 i32.const 2 i32.div_s drop
            local.get 0 local.get 0 f32.add drop
            local.get 1 f64.sqrt drop
            local.get 1 local.get 1 f64.min drop
            local.get 0 f32.neg drop
            local.get 0 local.get 0 f32.lt drop
            local.get 2 f64.convert_i32_u drop
            local.get 2 f64.convert_i32_s drop
            local.get 1 i64.trunc_sat_f64_s drop
            i32.const 0 i32.load drop
            memory.size drop
            i32.const 0 memory.grow drop
            table.size drop
            ref.func 0 ref.is_null drop
            i32.const 0 i32.const 0 i32.const 0 memory.copy
            i32.const 0)
          (elem declare func 0))"#;
        let wasm = wat::parse_str(src).unwrap();
        let mut costs = Vec::new();
        for p in Parser::new(0).parse_all(&wasm) {
            if let Payload::CodeSectionEntry(body) = p.unwrap() {
                let mut r = body.get_operators_reader().unwrap();
                while !r.eof() {
                    let op = r.read().unwrap();
                    costs.push((format!("{op:?}"), ic_cost(&op)));
                }
            }
        }
        let cost = |name: &str| costs.iter().find(|(n, _)| n.starts_with(name)).unwrap_or_else(|| panic!("{name}")).1;
        for (name, want) in [
            ("I32Const", 1),
            ("I32DivS", 10),
            ("Drop", 1),
            ("LocalGet", 1),
            ("F32Add", 2),
            ("F64Sqrt", 8),
            ("F64Min", 18),
            ("F32Neg", 1),
            ("F32Lt", 3),
            ("F64ConvertI32U", 16),
            ("F64ConvertI32S", 3),
            ("I64TruncSatF64S", 20),
            ("I32Load", 1),
            ("MemorySize", 20),
            ("MemoryGrow", 300),
            ("TableSize", 100),
            ("RefFunc", 130),
            ("RefIsNull", 5),
            ("MemoryCopy", 100),
            ("End", 0),
        ] {
            assert_eq!(cost(name), want, "{name}");
        }
    }

    #[test]
    fn signed_leb_matches_the_spec_examples() {
        let enc = |v: i64| {
            let mut out = Vec::new();
            push_i64(&mut out, v);
            out
        };
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(63), [0x3f]);
        assert_eq!(enc(64), [0xc0, 0x00]);
        assert_eq!(enc(-1), [0x7f]);
        assert_eq!(enc(624_485), [0xe5, 0x8e, 0x26]);
        assert_eq!(enc(i64::MAX).len(), 10);
        assert_eq!(read_u32(&[0xe5, 0x8e, 0x26], 0).unwrap(), (624_485, 3));
        assert!(read_u32(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], 0).is_err());
        assert!(read_u32(&[0x80], 0).is_err());
    }

    #[test]
    fn only_counting_code_is_inserted() {
        let src = r#"(module
          (import "ic0" "msg_reply" (func))
          (memory 1) (table 2 funcref)
          (global $a (mut i32) (i32.const 0)) (global $b i64 (i64.const 9))
          (func $f (param i32) (result i32) (local i64 f32)
            (block (loop
              (br_if 1 (i32.eqz (local.get 0)))
              (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
              (memory.fill (i32.const 0) (i32.const 1) (local.get 0))
              (br 0)))
            (if (result i32) (local.get 0) (then (i32.const 1)) (else (unreachable))))
          (func (export "g") (call 0) (drop (call $f (i32.const 3))))
          (elem (i32.const 0) $f)
          (data (i32.const 0) "xyz"))"#;
        let wasm = wat::parse_str(src).unwrap();
        let out = instrument(&wasm).unwrap();
        wasmparser::validate(&out.wasm).unwrap();
        assert_eq!(out.counter_global, 2, "after the two defined globals");
        assert_eq!(out.bulk_helper, Some(3), "after the import and the two functions");
        let before = bodies(&wasm);
        let after = bodies(&out.wasm);
        assert_eq!(after.len(), before.len() + 1, "plus the helper");
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(&strip(a, out.counter_global, out.bulk_helper), b);
            assert!(a.len() > b.len(), "something was inserted");
        }
        // Everything outside the code, type, function, global and export sections is byte-identical: the data
        // and element sections still end the module the same way.
        assert!(out.wasm.ends_with(&wasm[wasm.len() - 8..]));
    }

    #[test]
    fn no_helper_without_bulk_operations() {
        let wasm = wat::parse_str("(module (func (export \"f\") (result i32) (i32.const 1)))").unwrap();
        let out = instrument(&wasm).unwrap();
        wasmparser::validate(&out.wasm).unwrap();
        assert_eq!(out.bulk_helper, None);
        assert_eq!(bodies(&out.wasm).len(), 1);
    }

    #[test]
    fn rejects_64_bit_memories_and_bad_input() {
        let wasm = wat::parse_str("(module (memory i64 1))").unwrap();
        assert!(matches!(instrument(&wasm), Err(InstrumentError::Unsupported(_))));
        assert!(matches!(instrument(b"\0asm\x02\0\0\0"), Err(InstrumentError::Invalid(_))));
        // A section whose size runs past the end.
        assert!(matches!(instrument(b"\0asm\x01\0\0\0\x01\x05\x00"), Err(InstrumentError::Invalid(_))));
    }
}
