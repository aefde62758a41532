//! The few pieces of the WebAssembly binary encoding the loader's module rewrites need (global exports, stack
//! metering, the wasmi compatibility rewrite): LEB128 numbers and sections.

use alloc::vec::Vec;

/// Appends `v` as unsigned LEB128.
pub(crate) fn leb_u32(mut v: u32, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends `v` as signed LEB128.
pub(crate) fn sleb_i32(mut v: i32, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7F) as u8;
        v >>= 7;
        let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

/// Length of the unsigned LEB128 number at the start of `bytes` (a section's item count, a body's size).
pub(crate) fn leb_len(bytes: &[u8]) -> usize {
    bytes.iter().position(|b| b & 0x80 == 0).map_or(bytes.len(), |p| p + 1)
}

/// Appends section `id` with contents `body`.
pub(crate) fn push_section(out: &mut Vec<u8>, id: u8, body: &[u8]) {
    out.push(id);
    leb_u32(body.len() as u32, out);
    out.extend_from_slice(body);
}
