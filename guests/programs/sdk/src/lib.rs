//! The guest SDK of opml-ic: write a model as ordinary Rust, run it as a `wasm32-unknown-unknown` guest of the
//! opml VM.
//!
//! # The guest ABI v1, as this crate uses it
//!
//! A guest imports three functions from the module `opml` (wrapped here; a model never calls them directly):
//!
//! - `input_len(blob: i32) -> i64` ([`input_len`]): byte length of input blob `blob`, or -1 when there is no
//!   such blob.
//! - `input_read(blob: i32, offset: i64, dst: i32, len: i32) -> i32` ([`read_at`]): copies
//!   `min(len, blob_len - offset)` bytes (0 past the end) of the blob to `dst` and returns the count; traps if
//!   `len > 4096`, the blob does not exist, `offset < 0` or the destination is out of memory.
//! - `output_write(src: i32, len: i32)` ([`write_output`]): appends `len <= 4096` bytes to the task output;
//!   traps past 1 MiB of output in all.
//!
//! and exports `memory` and `opml_step() -> i32`. The host calls `opml_step` until it returns 0; each call is one
//! *segment*, a coarse unit of model work that must stay under ~10^9 instructions. State that lives from one
//! segment to the next is kept in guest memory: [`entry!`] keeps the program value in a static.
//!
//! Input blobs are committed by Merkle roots over 4 KiB chunks ([`CHUNK`]), so [`read_at`] splits every read at
//! chunk boundaries: each `input_read` call then touches exactly one chunk. Read weights lazily, per segment, and
//! drop them when the segment is done: the VM rehashes every changed memory page at each segment boundary, so a
//! small working set is fast.
//!
//! # Writing a guest
//!
//! ```ignore
//! use opml_guest_sdk::{Program, Step};
//!
//! struct Sum;
//!
//! impl Program for Sum {
//!     fn step(&mut self) -> Step {
//!         let bytes = opml_guest_sdk::read_to_vec(0).expect("blob 0");
//!         let sum: u32 = bytes.iter().map(|&b| u32::from(b)).sum();
//!         opml_guest_sdk::write_output(&sum.to_le_bytes());
//!         Step::Done
//!     }
//! }
//!
//! opml_guest_sdk::entry!(|| Sum);
//! ```
//!
//! The crate is a `cdylib` built for `wasm32-unknown-unknown`. A panic traps (guests build with
//! `panic = "abort"`), which fails the task: panic on malformed input rather than producing a wrong output.
//!
//! # Native runs
//!
//! On any target other than wasm32 the imports are served by an in-process host instead ([`native`]), with the
//! same limits, so a model's code can be compiled natively (tests `include!` it) and cross-checked against the
//! same code run in a VM.
//!
//! # Features
//!
//! - `safetensors`: [`safetensors::Index`], tensors read by name from a safetensors blob, only those asked for.
#![no_std]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::UnsafeCell;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(feature = "safetensors")]
pub mod safetensors;

/// The largest `len` of one `input_read` or `output_write` call.
pub const MAX_IO: usize = 4096;
/// Size of the chunks an input blob is committed by (leaves of its Merkle tree).
pub const CHUNK: u64 = 4096;
/// The largest total output of a task, in bytes.
pub const MAX_OUTPUT: usize = 1 << 20;

/// The raw imports of module `opml` (ABI v1).
#[cfg(target_arch = "wasm32")]
mod sys {
    #[link(wasm_import_module = "opml")]
    unsafe extern "C" {
        pub fn input_len(blob: i32) -> i64;
        pub fn input_read(blob: i32, offset: i64, dst: i32, len: i32) -> i32;
        pub fn output_write(src: i32, len: i32);
    }
}

/// Byte length of input blob `blob`, or `None` when the task has no such blob.
pub fn input_len(blob: u32) -> Option<u64> {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: `input_len` only reads its argument.
    let len = unsafe { sys::input_len(blob as i32) };
    #[cfg(not(target_arch = "wasm32"))]
    let len = native::input_len(blob as i32);
    u64::try_from(len).ok()
}

/// Reads bytes of blob `blob` from `offset` into `buf`; returns how many were read, which is `buf.len()` unless
/// the blob ends first (0 if `offset` is at or past its end).
///
/// One `input_read` call per chunk the range touches: the first call reads up to the next [`CHUNK`] boundary,
/// the others read whole chunks. Traps if the blob does not exist.
pub fn read_at(blob: u32, offset: u64, buf: &mut [u8]) -> usize {
    let mut done = 0;
    while done < buf.len() {
        let pos = offset + done as u64;
        let to_boundary = (CHUNK - pos % CHUNK) as usize;
        let want = (buf.len() - done).min(to_boundary).min(MAX_IO);
        let dst = &mut buf[done..done + want];
        let got = raw_read(blob, pos, dst);
        done += got;
        if got < want {
            break; // end of the blob
        }
    }
    done
}

/// One `input_read` call into `dst` (`dst.len() <= MAX_IO`).
fn raw_read(blob: u32, offset: u64, dst: &mut [u8]) -> usize {
    debug_assert!(dst.len() <= MAX_IO);
    let offset = i64::try_from(offset).expect("blob offset fits in i64");
    #[cfg(target_arch = "wasm32")]
    // SAFETY: `dst` is a live, writable range of guest memory of `dst.len()` bytes, and the host writes at most
    // that many bytes into it.
    let got = unsafe { sys::input_read(blob as i32, offset, dst.as_mut_ptr() as i32, dst.len() as i32) };
    #[cfg(not(target_arch = "wasm32"))]
    let got = native::input_read(blob as i32, offset, dst);
    usize::try_from(got).expect("input_read returns a count")
}

/// Like [`read_at`] but panics (traps) unless all of `buf` was read.
pub fn read_exact_at(blob: u32, offset: u64, buf: &mut [u8]) {
    let got = read_at(blob, offset, buf);
    assert!(got == buf.len(), "blob {blob}: read of {} bytes at {offset} hit the end after {got}", buf.len());
}

/// Reads `len` bytes of blob `blob` from `offset`; panics (traps) if the blob is shorter.
pub fn read_range(blob: u32, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    read_exact_at(blob, offset, &mut buf);
    buf
}

/// Reads the whole blob `blob`, or `None` if the task has no such blob.
pub fn read_to_vec(blob: u32) -> Option<Vec<u8>> {
    let len = usize::try_from(input_len(blob)?).expect("blob fits in memory");
    Some(read_range(blob, 0, len))
}

/// Reads `out.len()` little-endian f32 values of blob `blob` starting at byte `offset`; panics (traps) if the
/// blob is shorter.
pub fn read_f32_le(blob: u32, offset: u64, out: &mut [f32]) {
    // SAFETY: every bit pattern is a valid f32, the byte view covers exactly `out`, and `out` is not used
    // otherwise while the view lives.
    let bytes = unsafe { core::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), size_of_val(out)) };
    read_exact_at(blob, offset, bytes);
    if cfg!(target_endian = "big") {
        for v in out.iter_mut() {
            *v = f32::from_bits(u32::from_le(v.to_bits()));
        }
    }
}

/// Appends `bytes` to the task output, in calls of at most [`MAX_IO`] bytes. The whole output of a task is at
/// most [`MAX_OUTPUT`] bytes; the host traps past that.
pub fn write_output(bytes: &[u8]) {
    for piece in bytes.chunks(MAX_IO) {
        #[cfg(target_arch = "wasm32")]
        // SAFETY: `piece` is a live range of guest memory of `piece.len()` bytes, which the host only reads.
        unsafe {
            sys::output_write(piece.as_ptr() as i32, piece.len() as i32)
        };
        #[cfg(not(target_arch = "wasm32"))]
        native::output_write(piece);
    }
}

/// Appends f32 values to the task output, little-endian, 4 bytes each.
pub fn write_f32_le(values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_output(&bytes);
}

/// What a segment tells the host: whether more segments follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// More segments remain: the host calls `opml_step` again.
    More,
    /// The task is done (its output is complete).
    Done,
}

/// A guest program: a state machine the host advances one segment per `opml_step` call.
///
/// The value lives in guest memory from the first segment to the last; keep in it only what later segments
/// need (hidden states, token ids), and read weights inside `step`, dropping them before it returns.
pub trait Program {
    /// Runs one segment. Must stay under ~10^9 instructions.
    fn step(&mut self) -> Step;
}

#[doc(hidden)]
pub use alloc::boxed::Box as __Box;

/// Where [`entry!`] keeps the program between segments. Not for direct use.
#[doc(hidden)]
pub struct Slot(UnsafeCell<SlotState>);

enum SlotState {
    Fresh,
    Running(Box<dyn Program>),
    Done,
}

// SAFETY: a wasm32 guest has one thread, and the host never re-enters `opml_step`. Natively the slot is only
// used through `opml_step`, which tests do not call concurrently (the native host runs programs directly).
unsafe impl Sync for Slot {}

impl Slot {
    #[doc(hidden)]
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Slot(UnsafeCell::new(SlotState::Fresh))
    }
}

/// One `opml_step` call: creates the program at the first call (and runs its first segment in the same call),
/// runs one segment, drops the program after its last. Returns 1 while more segments remain, else 0 (also for
/// any call after the last segment). Not for direct use: see [`entry!`].
#[doc(hidden)]
pub fn __step(slot: &Slot, init: impl FnOnce() -> Box<dyn Program>) -> i32 {
    // SAFETY: see `impl Sync for Slot`: no other reference to the slot's state is live during a call.
    let state = unsafe { &mut *slot.0.get() };
    if let SlotState::Fresh = state {
        *state = SlotState::Running(init());
    }
    let SlotState::Running(program) = state else { return 0 };
    match program.step() {
        Step::More => 1,
        Step::Done => {
            *state = SlotState::Done;
            0
        }
    }
}

/// Declares the guest's program: `entry!(constructor)` where `constructor()` returns a value implementing
/// [`Program`] (a path such as `MyModel::new`, or a closure). Generates the exported `opml_step`.
///
/// The constructor runs at the start of the first segment; keep it cheap (read inputs in `step`).
#[macro_export]
macro_rules! entry {
    ($init:expr) => {
        /// The guest ABI v1 entry point: runs one segment; non-zero while more segments remain.
        #[unsafe(no_mangle)]
        pub extern "C" fn opml_step() -> i32 {
            static SLOT: $crate::Slot = $crate::Slot::new();
            $crate::__step(&SLOT, || $crate::__Box::new(($init)()))
        }
    };
}
