//! The module the fast engine hands to wasmi: the guest with semantics-preserving rewrites around known
//! wasmi 2.0.0 defects, so wasmi computes what the stepping machine (the canonical semantics) computes.
//!
//! **`select` fused with a zero comparison.** wasmi's translator fuses `i32.eqz x` (or `i32.eq x 0`,
//! `i32.ne x 0`) into an immediately following `select`, dropping the comparison; when `x` lives in a stack slot
//! (a local or spilled value) the fused `select` still reads its condition from the register the dropped
//! comparison would have written, and picks the wrong operand (`try_fuse_select` in
//! `engine/translator/func/mod.rs`). Found by the differential test (`vm/tests/differential.rs`). We insert
//! `i32.const 0; i32.or` between the comparison and the `select`: the same value, but the instruction staged
//! before the `select` is then an `or` (wasmi does not fold `x | 0`), so no fusion happens. One extra wasmi
//! instruction per such pair; the committed and proven module is the original.
//!
//! The other engine differences the differential test found are handled elsewhere: `table.get` is not allowed in
//! guests (wasmi reports one trap code for it and `call_indirect`), the `memory64` crate feature of wasmi is on
//! (without it `v128.store{8,16}_lane` with offsets above 65535 misdecode), and `opml.input_read` past the end
//! of a blob reads nothing in both engines.

use alloc::vec::Vec;

use wasmparser::{Operator, Parser, Payload};

use crate::error::ModuleError;
use crate::wasm_encode::{leb_u32, push_section};

/// `i32.const 0; i32.or`: the bytes inserted before a `select` that follows a zero comparison.
const BREAK_FUSION: [u8; 3] = [0x41, 0x00, 0x72];

/// `wasm` (a valid module) with every `select` that directly follows `i32.eqz`, `i32.eq` or `i32.ne` preceded by
/// `i32.const 0; i32.or`. Other sections are copied byte for byte; a module without such a pair is returned as is.
pub fn for_wasmi(wasm: &[u8]) -> Result<Vec<u8>, ModuleError> {
    let mut out = wasm[..8].to_vec();
    let mut changed = false;
    let mut entries: Vec<Vec<u8>> = Vec::new();
    let mut pending = 0u32;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        match &payload {
            Payload::CodeSectionStart { count, .. } => {
                pending = *count;
                if pending == 0 {
                    push_section(&mut out, 10, &[0]);
                }
                continue;
            }
            Payload::CodeSectionEntry(body) => {
                let range = body.range();
                let mut entry = Vec::with_capacity(range.len() + 8);
                let mut at = range.start;
                let mut ops = body.get_operators_reader()?;
                let mut after_cmp = false;
                while !ops.eof() {
                    let (op, offset) = ops.read_with_offset()?;
                    if after_cmp && matches!(op, Operator::Select | Operator::TypedSelect { .. }) {
                        entry.extend_from_slice(&wasm[at..offset]);
                        entry.extend_from_slice(&BREAK_FUSION);
                        at = offset;
                        changed = true;
                    }
                    after_cmp = matches!(op, Operator::I32Eqz | Operator::I32Eq | Operator::I32Ne);
                }
                entry.extend_from_slice(&wasm[at..range.end]);
                entries.push(entry);
                pending -= 1;
                if pending == 0 {
                    let mut code = Vec::new();
                    leb_u32(entries.len() as u32, &mut code);
                    for e in &entries {
                        leb_u32(e.len() as u32, &mut code);
                        code.extend_from_slice(e);
                    }
                    push_section(&mut out, 10, &code);
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
    Ok(if changed { out } else { wasm.to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wat(src: &str) -> Vec<u8> {
        wat::parse_str(src).unwrap()
    }

    /// The rewrite inserts exactly the fusion breaker before the `select` and keeps the module valid.
    #[test]
    fn breaks_compare_select_pairs_only() {
        let wasm = wat(r#"(module
            (func (param i32) (result i32)
              (select (i32.const 1) (local.get 0) (i32.eqz (local.get 0))))
            (func (param i32) (result i32)
              (select (i32.const 1) (local.get 0) (local.get 0))))"#);
        let out = for_wasmi(&wasm).unwrap();
        assert_eq!(out.len(), wasm.len() + BREAK_FUSION.len());
        wasmparser::Validator::new().validate_all(&out).unwrap();
        let plain =
            wat(r#"(module (func (param i32) (result i32) (select (i32.const 1) (local.get 0) (local.get 0))))"#);
        assert_eq!(for_wasmi(&plain).unwrap(), plain);
    }
}
