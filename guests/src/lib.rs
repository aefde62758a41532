//! The guest programs of opml-ic, as WebAssembly module bytes.
//!
//! `build.rs` compiles the separate cargo workspace `guests/programs` for `wasm32-unknown-unknown` (release,
//! target features pinned to WebAssembly 2.0 + simd128 in `guests/programs/.cargo/config.toml`) and this crate
//! embeds each module. Nothing to do by hand beyond having the target installed
//! (`rustup target add wasm32-unknown-unknown`).

/// `bench-kernels`: benchmark guest with no imports, exporting `matmul_f32() -> f32` (128x128 f32 matmul,
/// returns the checksum of the product), `dot_i8() -> i32` (dot product of two 128 KiB i8 vectors) and
/// `fib(n: i32) -> i64` (recursive). Expected results: [`bench_kernels`].
pub const BENCH_KERNELS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bench_kernels.wasm"));

/// Expected results of the [`BENCH_KERNELS`] exports, for tests and benchmarks that run the module.
///
/// Each constant is checked (`tests/guests.rs`) against the kernel code compiled natively and against the
/// module itself run in wasmi.
pub mod bench_kernels {
    /// Result of `matmul_f32()`, as the bits of the returned f32.
    pub const MATMUL_F32_BITS: u32 = 0x43ba_dd14; // 373.72717
    /// Result of `dot_i8()`.
    pub const DOT_I8: i32 = -309_923_741;
    /// Some `fib(n)` values: `(n, fib(n))`.
    pub const FIB: &[(i32, i64)] = &[(0, 0), (1, 1), (2, 1), (10, 55), (20, 6765), (25, 75025)];
}

/// The guests, by name, for tests that go over all of them.
pub const ALL: &[(&str, &[u8])] = &[("bench-kernels", BENCH_KERNELS)];
