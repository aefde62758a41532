//! Benchmark guest for the opml VM: compute kernels with no imports, exported as plain `extern "C"` functions.
//!
//! - `matmul_f32() -> f32`: multiplies two deterministic 128x128 f32 matrices, returns the sum of the product.
//! - `dot_i8() -> i32`: dot product of two deterministic 128 KiB i8 vectors, accumulated in i32.
//! - `fib(n: i32) -> i64`: naive recursive Fibonacci (call-heavy).
//!
//! Inputs are generated inside each call, so every call does the same work and returns the same value. The
//! kernel code lives in `kernels.rs`, which `opml-guests`' tests also compile natively to cross-check results.
//! This is a benchmark and test module, not a model: it does not implement the `opml_step` guest ABI.
#![no_std]

mod kernels;

use core::cell::UnsafeCell;

use kernels::{DOT_LEN, MATMUL_N};

/// A static working buffer (the guest has no allocator).
struct Scratch<T>(UnsafeCell<T>);

// SAFETY: a wasm32 guest has one thread, and each buffer is used only by one export, which never re-enters.
unsafe impl<T> Sync for Scratch<T> {}

impl<T> Scratch<T> {
    /// # Safety
    /// No other reference to this buffer may be live (see the `Sync` impl: one user, no re-entrancy).
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&self) -> &mut T {
        // SAFETY: exclusive access is the caller's obligation.
        unsafe { &mut *self.0.get() }
    }
}

const NN: usize = MATMUL_N * MATMUL_N;
static MATRICES: Scratch<[[f32; NN]; 3]> = Scratch(UnsafeCell::new([[0.0; NN]; 3]));
static VECTORS: Scratch<[[i8; DOT_LEN]; 2]> = Scratch(UnsafeCell::new([[0; DOT_LEN]; 2]));

/// Multiplies two deterministic 128x128 f32 matrices; returns the sum of all elements of the product.
#[unsafe(no_mangle)]
pub extern "C" fn matmul_f32() -> f32 {
    // SAFETY: `matmul_f32` is the only user of MATRICES and does not re-enter.
    let [a, b, c] = unsafe { MATRICES.get() };
    kernels::matmul_f32_kernel(a, b, c)
}

/// Dot product of two deterministic i8 vectors of 128 KiB each, accumulated in (wrapping) i32.
#[unsafe(no_mangle)]
pub extern "C" fn dot_i8() -> i32 {
    // SAFETY: `dot_i8` is the only user of VECTORS and does not re-enter.
    let [a, b] = unsafe { VECTORS.get() };
    kernels::dot_i8_kernel(a, b)
}

/// Naive recursive Fibonacci: fib(0) = 0, fib(1) = 1.
#[unsafe(no_mangle)]
pub extern "C" fn fib(n: i32) -> i64 {
    kernels::fib(n)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
