//! Stack metering compiled into every guest, so that running out of stack is program semantics, identical in the
//! stepping machine and in wasmi.
//!
//! The two engines' own stack limits cannot be made equal: wasmi counts recursion depth and its own register
//! slots (a Rust guest recursing about 1000 deep traps in its default configuration), the stepper counts frames and
//! 16-byte operand slots. So neither may decide. As Arbitrum's Stylus does with its depth metering, the loader
//! rewrites the guest (the rewritten module is the program that is committed and proven):
//!
//! - a new mutable `i32` global, the **meter**, holds the stack cost of the live frames;
//! - every defined function gets a new local and a prologue that adds its **frame cost** to the meter, keeps the new
//!   value in that local, and executes `unreachable` when the meter exceeds [`METER_LIMIT`];
//! - after every `call` and `call_indirect` the caller stores its local back into the meter (so returns, branches
//!   out of the body and multi-value results need no epilogue);
//! - the export `opml_step` is moved to a new wrapper function that sets the meter to 0, calls the guest's entry and
//!   sets it to 0 again, so every segment starts and ends (at a boundary) with an empty meter.
//!
//! A frame costs `max(MIN_FRAME_COST, 4 + params + locals + max operand height)` stepper slots (the 4: the frame,
//! the meter's local and the prologue's two operands). With
//! [`METER_LIMIT`] = 2^19 the stepper never holds more than 512 Ki operand slots in metered frames nor more than
//! 8192 of them, below its own limits (1 Mi slots, 16384 frames); the fast engine's limits are configured above
//! what those frames need (see `fast::engine_config`). Running out of stack is therefore the trap `Unreachable`
//! at the metering prologue, in both engines, at the same instruction.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use wasmparser::{ExternalKind, Operator, Parser, Payload};

use crate::error::ModuleError;
use crate::module::Module;
use crate::wasm_encode::{leb_len, leb_u32, push_section, sleb_i32};

/// Largest meter value a running guest may reach (stepper slots).
pub const METER_LIMIT: u32 = 1 << 19;

/// Smallest cost of a frame, so that the metered frame count stays below the stepper's frame limit.
pub const MIN_FRAME_COST: u32 = 64;

/// The stack cost the meter charges for one frame of a function.
pub fn frame_cost(params: u32, locals: u32, max_height: u32) -> u32 {
    (4u64 + params as u64 + locals as u64 + max_height as u64).clamp(MIN_FRAME_COST as u64, u32::MAX as u64 / 2) as u32
}

/// `wasm` (valid, parsed as `module`: only its shape and frame sizes are read, not its ops) with stack metering
/// added (see the module docs). `entry` is the index of the function exported as `opml_step`, of type `[] -> [i32]`.
pub fn instrument(wasm: &[u8], module: &Module, entry: u32) -> Result<Vec<u8>, ModuleError> {
    let invalid = |message: &str| ModuleError::Unsupported { message: String::from(message), offset: 0 };
    let num_funcs = module.func_types.len() as u32;
    let meter = module.globals.len() as u32;
    let wrapper = num_funcs;
    let wrapper_type = module.types.len() as u32;

    let mut out = wasm[..8].to_vec();
    let mut seen_global_section = false;
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    let mut pending = 0u32;
    let mut next_defined = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        // A guest without globals has no global section: add one before the first section that follows it.
        if !seen_global_section {
            let later = matches!(
                &payload,
                Payload::ExportSection(_)
                    | Payload::StartSection { .. }
                    | Payload::ElementSection(_)
                    | Payload::DataCountSection { .. }
                    | Payload::CodeSectionStart { .. }
                    | Payload::DataSection(_)
            );
            if later {
                let mut body = Vec::new();
                leb_u32(1, &mut body);
                push_meter_global(&mut body);
                push_section(&mut out, 6, &body);
                seen_global_section = true;
            }
        }
        match &payload {
            Payload::TypeSection(r) => {
                let range = r.range();
                let contents = &wasm[range];
                let mut body = Vec::new();
                leb_u32(r.count() + 1, &mut body);
                body.extend_from_slice(&contents[leb_len(contents)..]);
                body.extend_from_slice(&[0x60, 0x00, 0x01, 0x7F]); // [] -> [i32]
                push_section(&mut out, 1, &body);
                continue;
            }
            Payload::FunctionSection(r) => {
                let contents = &wasm[r.range()];
                let mut body = Vec::new();
                leb_u32(r.count() + 1, &mut body);
                body.extend_from_slice(&contents[leb_len(contents)..]);
                leb_u32(wrapper_type, &mut body);
                push_section(&mut out, 3, &body);
                continue;
            }
            Payload::GlobalSection(r) => {
                let contents = &wasm[r.range()];
                let mut body = Vec::new();
                leb_u32(r.count() + 1, &mut body);
                body.extend_from_slice(&contents[leb_len(contents)..]);
                push_meter_global(&mut body);
                push_section(&mut out, 6, &body);
                seen_global_section = true;
                continue;
            }
            Payload::ExportSection(r) => {
                let mut body = Vec::new();
                leb_u32(r.count(), &mut body);
                for export in r.clone() {
                    let export = export?;
                    leb_u32(export.name.len() as u32, &mut body);
                    body.extend_from_slice(export.name.as_bytes());
                    let (kind, index) = match export.kind {
                        ExternalKind::Func if export.name == "opml_step" => (0x00, wrapper),
                        ExternalKind::Func => (0x00, export.index),
                        ExternalKind::Table => (0x01, export.index),
                        ExternalKind::Memory => (0x02, export.index),
                        ExternalKind::Global => (0x03, export.index),
                        ExternalKind::Tag => return Err(invalid("tag exports are outside WebAssembly 2.0")),
                    };
                    body.push(kind);
                    leb_u32(index, &mut body);
                }
                push_section(&mut out, 7, &body);
                continue;
            }
            Payload::CodeSectionStart { count, .. } => {
                pending = *count;
                if pending == 0 {
                    return Err(invalid("a guest defines its entry function"));
                }
                continue;
            }
            Payload::CodeSectionEntry(body) => {
                let code = module.code.get(next_defined).ok_or_else(|| invalid("code/function count mismatch"))?;
                next_defined += 1;
                let cost = frame_cost(code.params, code.num_locals, code.max_height);
                let local = code.params + code.num_locals;
                bodies.push(metered_body(wasm, body, cost, local, meter)?);
                pending -= 1;
                if pending == 0 {
                    bodies.push(wrapper_body(entry, meter));
                    let mut section = Vec::new();
                    leb_u32(bodies.len() as u32, &mut section);
                    for b in &bodies {
                        leb_u32(b.len() as u32, &mut section);
                        section.extend_from_slice(b);
                    }
                    push_section(&mut out, 10, &section);
                }
                continue;
            }
            _ => {}
        }
        let (id, range) = match &payload {
            // For custom sections the range covers name and contents, as the section body does.
            Payload::CustomSection(r) => (0u8, r.range()),
            other => match other.as_section() {
                Some(s) => s,
                None => continue,
            },
        };
        push_section(&mut out, id, &wasm[range]);
    }
    if next_defined != module.code.len() {
        return Err(invalid("code/function count mismatch"));
    }
    Ok(out)
}

/// `(global (mut i32) (i32.const 0))`.
fn push_meter_global(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x7F, 0x01, 0x41, 0x00, 0x0B]);
}

/// One function body with an extra `i32` local, the metering prologue, and the meter restored after each call.
fn metered_body(
    wasm: &[u8],
    body: &wasmparser::FunctionBody<'_>,
    cost: u32,
    local: u32,
    meter: u32,
) -> Result<Vec<u8>, ModuleError> {
    let range = body.range();
    let mut out = Vec::with_capacity(range.len() + 32);
    // Local declarations: one more run, `(1, i32)`, after the existing ones.
    let mut locals = body.get_locals_reader()?;
    let runs = locals.get_count();
    leb_u32(runs + 1, &mut out);
    for _ in 0..runs {
        locals.read()?;
    }
    let ops_start = locals.original_position();
    let runs_start = range.start + leb_len(&wasm[range.start..]);
    out.extend_from_slice(&wasm[runs_start..ops_start]);
    out.extend_from_slice(&[0x01, 0x7F]);
    // Prologue: local = meter + cost; meter = local; if local > LIMIT { unreachable }.
    out.push(0x23);
    leb_u32(meter, &mut out);
    out.push(0x41);
    sleb_i32(cost as i32, &mut out);
    out.push(0x6A);
    out.push(0x22);
    leb_u32(local, &mut out);
    out.push(0x24);
    leb_u32(meter, &mut out);
    out.push(0x20);
    leb_u32(local, &mut out);
    out.push(0x41);
    sleb_i32(METER_LIMIT as i32, &mut out);
    out.extend_from_slice(&[0x4B, 0x04, 0x40, 0x00, 0x0B]);
    // The code, with `local.get local; global.set meter` after each call.
    let mut ops = body.get_operators_reader()?;
    let mut at = ops_start;
    while !ops.eof() {
        let op = ops.read()?;
        if matches!(op, Operator::Call { .. } | Operator::CallIndirect { .. }) {
            let end = ops.original_position();
            out.extend_from_slice(&wasm[at..end]);
            at = end;
            out.push(0x20);
            leb_u32(local, &mut out);
            out.push(0x24);
            leb_u32(meter, &mut out);
        }
    }
    out.extend_from_slice(&wasm[at..range.end]);
    Ok(out)
}

/// `opml_step` of the metered guest: meter = 0; call the entry; meter = 0; return its result.
fn wrapper_body(entry: u32, meter: u32) -> Vec<u8> {
    let mut out = vec![0x00, 0x41, 0x00, 0x24];
    leb_u32(meter, &mut out);
    out.push(0x10);
    leb_u32(entry, &mut out);
    out.extend_from_slice(&[0x41, 0x00, 0x24]);
    leb_u32(meter, &mut out);
    out.push(0x0B);
    out
}
