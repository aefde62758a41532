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

/// `verifier-harness`: the one-step verifier of `opml-vm` (its `no_std` + `alloc` half, what the verifier canister
/// links) compiled to wasm32 behind a plain C ABI, for checking that it returns the same post-roots as the native
/// verifier and for counting its instructions. No imports; exports `memory`, `alloc(len: i32) -> i32` (room for
/// the host's inputs), `reset()` (frees them) and `verify(pre, proof, proof_len, prog, out) -> i32`: 0 with the
/// 32-byte post-state root written at `out`, else the rejection's code (1 malformed, 2 too large, 3 pre-root
/// mismatch, 4 bad opening, 5 missing data, 6 inconsistent state, 7 unsupported). `pre` is the 32-byte pre-state
/// root and `prog` the 172-byte `ProgramCommitment::encode`. Not a model (no `opml_step`). Because it embeds
/// `vm/src`, `build.rs` rebuilds the guests whenever `vm/src` changes.
pub const VERIFIER_HARNESS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/verifier_harness.wasm"));

/// `digits`: a 64-32-10 MLP on scikit-learn's 8x8 digits, one segment. Blobs `[weights, image]`: the weights
/// ([`digits::WEIGHTS`], safetensors) and a 64-byte image (pixels 0..=16); output 44 bytes, the class as u32 LE
/// then 10 f32 LE logits. Imports only the ABI v1 functions. See [`digits`] and `docs/models.md`.
pub const DIGITS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/digits.wasm"));

/// `minilm`: the all-MiniLM-L6-v2 sentence embedding (candle-core, tokenizer inside), 8 segments (embeddings,
/// 6 layers, pooling; above 128 tokens each layer takes two, 14 in all). Blobs `[model.safetensors, vocab.txt, text]` ([`minilm::locate`] finds the first two);
/// output 384 f32 LE, L2-normalized. Besides the ABI v1 functions it imports four `__wbindgen_*` functions
/// (left by getrandom's `wasm_js` backend, never called). See [`minilm`] and `docs/models.md`.
pub const MINILM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/minilm.wasm"));

pub mod digits;
pub mod minilm;

/// Small hand-written guests (WebAssembly text) shared by the tests of several crates.
pub mod fixtures {
    /// Three segments exercising the whole ABI: (0) reads blob 0 into memory in 4 KiB reads, (1) checksums it
    /// with SIMD and float arithmetic and grows memory, (2) writes a summary and 5000 bytes of memory as output.
    /// Blob 1's first byte selects misbehaviour: 1 calls a non-ABI import, 2 reads more than 4096 bytes, 3
    /// divides by zero (0: none).
    pub const THREE_SEGMENTS_ABI: &str = include_str!("../fixtures/three_segments_abi.wat");

    /// Three segments: read 16 input bytes; hash them into a global; write the 8-byte result.
    pub const THREE_SEGMENTS_HASH: &str = include_str!("../fixtures/three_segments_hash.wat");
}

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

/// The guests, by name, for tests that go over all of them (models and the test/benchmark modules alike).
pub const ALL: &[(&str, &[u8])] =
    &[("bench-kernels", BENCH_KERNELS), ("verifier-harness", VERIFIER_HARNESS), ("digits", DIGITS), ("minilm", MINILM)];
