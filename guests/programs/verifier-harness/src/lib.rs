//! The one-step verifier of `opml-vm` (its `no_std` + `alloc` half, as the verifier canister links it) compiled
//! to wasm32, behind a plain C ABI. The host (`opml-vm`'s `tests/three_way.rs` and `benches/proofs.rs`, in
//! wasmi) uses it to check that the verifier compiled to wasm returns the same post-roots as the native build on
//! the same proofs, and to count the wasm instructions a verification costs.
//!
//! Exports (all pointers are offsets into the exported `memory`):
//! - `alloc(len: i32) -> i32`: reserves `len` bytes (8-aligned) for the host to place inputs; 0 if memory cannot
//!   grow.
//! - `reset()`: releases everything `alloc` handed out.
//! - `verify(pre: i32, proof: i32, proof_len: i32, prog: i32, out: i32) -> i32`: verifies the one-step proof of
//!   `proof_len` bytes at `proof` against the 32-byte pre-state root at `pre` and the 172-byte program commitment
//!   (`ProgramCommitment::encode`) at `prog`. Returns 0 and writes the 32-byte post-state root at `out`, or an
//!   error code ([`error_code`]) and leaves `out` alone. Everything it allocates is released before it returns.
//!
//! This is a test and benchmark module, not a model: it does not implement the `opml_step` guest ABI.
#![no_std]

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::Cell;

use opml_vm::program::ProgramCommitment;
use opml_vm::{ProofError, verify_step};

const WASM_PAGE: usize = 65536;

/// A bump allocator over the memory above the module's initial size (static data and the shadow stack live
/// below it), grown with `memory.grow` on demand. `dealloc` does nothing; space is reclaimed wholesale by
/// resetting to a mark (after each `verify`, and by `reset`).
struct Bump {
    /// First heap byte (0 until the first allocation).
    base: Cell<usize>,
    /// Next free byte.
    next: Cell<usize>,
}

// SAFETY: a wasm32 guest has one thread.
unsafe impl Sync for Bump {}

impl Bump {
    /// Moves the end of the heap to `end`, growing memory if needed. False if memory cannot grow.
    fn extend_to(&self, end: usize) -> bool {
        let have = wasm32::memory_size(0) * WASM_PAGE;
        if end > have && wasm32::memory_grow(0, (end - have).div_ceil(WASM_PAGE)) == usize::MAX {
            return false;
        }
        self.next.set(end);
        true
    }

    fn mark(&self) -> usize {
        if self.base.get() == 0 {
            let base = wasm32::memory_size(0) * WASM_PAGE;
            self.base.set(base);
            self.next.set(base);
        }
        self.next.get()
    }
}

// SAFETY: live blocks never overlap: each starts at or above the end of the previous one, and the bump pointer
// moves back only on a reset (`verify`'s exit, `reset`), after which the blocks above the mark are dead.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let start = self.mark().checked_next_multiple_of(layout.align());
        match start.and_then(|s| Some((s, s.checked_add(layout.size())?))) {
            Some((start, end)) if self.extend_to(end) => start as *mut u8,
            _ => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // The most recent block grows (or shrinks) in place.
        if ptr as usize + layout.size() == self.next.get() {
            return if self.extend_to(ptr as usize + new_size) { ptr } else { core::ptr::null_mut() };
        }
        // SAFETY: the caller's contract for `realloc` (valid `ptr` and `layout`, non-zero `new_size`).
        unsafe {
            let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            }
            new
        }
    }
}

#[global_allocator]
static HEAP: Bump = Bump { base: Cell::new(0), next: Cell::new(0) };

/// Reserves `len` bytes (8-aligned) for the host's inputs; 0 if memory cannot grow.
#[unsafe(no_mangle)]
pub extern "C" fn alloc(len: usize) -> usize {
    match Layout::from_size_align(len.max(1), 8) {
        // SAFETY: the layout has a non-zero size.
        Ok(layout) => unsafe { HEAP.alloc(layout) as usize },
        Err(_) => 0,
    }
}

/// Releases everything handed out by [`alloc`].
#[unsafe(no_mangle)]
pub extern "C" fn reset() {
    HEAP.mark();
    HEAP.next.set(HEAP.base.get());
}

/// The code `verify` returns for each rejection.
pub fn error_code(e: &ProofError) -> i32 {
    match e {
        ProofError::Malformed(_) => 1,
        ProofError::TooLarge(_) => 2,
        ProofError::PreRootMismatch => 3,
        ProofError::BadOpening(_) => 4,
        ProofError::Missing(_) => 5,
        ProofError::Inconsistent(_) => 6,
        ProofError::Unsupported(_) => 7,
    }
}

/// Verifies one proof: 0 and the post-state root written at `out`, or an error code.
///
/// # Safety
/// `pre` and `out` must point to 32 bytes, `prog` to 172, `proof` to `proof_len`, all within memory (wasm
/// bounds checks turn anything else into a trap, never into undefined behaviour of the host).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn verify(
    pre: *const u8,
    proof: *const u8,
    proof_len: usize,
    prog: *const u8,
    out: *mut u8,
) -> i32 {
    let mark = HEAP.mark();
    // SAFETY: sizes and validity are the caller's contract (above).
    let (pre, proof, prog) = unsafe {
        (
            &*(pre as *const [u8; 32]),
            core::slice::from_raw_parts(proof, proof_len),
            &*(prog as *const [u8; ProgramCommitment::BYTES]),
        )
    };
    let prog = ProgramCommitment::decode(prog);
    let code = match verify_step(pre, proof, &prog) {
        Ok(post) => {
            // SAFETY: `out` points to 32 writable bytes (the caller's contract).
            unsafe { core::ptr::copy_nonoverlapping(post.as_ptr(), out, 32) };
            0
        }
        Err(e) => error_code(&e),
    };
    // Everything `verify_step` allocated has been dropped.
    HEAP.next.set(mark);
    code
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    wasm32::unreachable()
}
