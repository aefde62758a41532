// The benchmark kernels, as plain safe Rust over slices.
//
// Compiled twice: into the `bench-kernels` guest (wasm32, through `mod kernels`) and natively into
// `opml-guests`' tests (through `include!`), which check that the guest's exported results equal the native ones.
// So this file must stay `no_std`-clean, free of `use` items that differ between the two, and deterministic:
// no float reassociation (the matmul accumulates every output element over `k` in order, and the checksum is a
// plain sequential sum), so native x86_64 and wasm32 (with or without simd128) give bit-identical results.

/// Side of the square matrices multiplied by `matmul_f32`.
pub const MATMUL_N: usize = 128;
/// Length of each of the two `i8` vectors of `dot_i8` (two times 128 KiB = 256 KiB of data).
pub const DOT_LEN: usize = 128 * 1024;

/// A stateless 32-bit mix of `(seed, i)`: the deterministic source of all kernel inputs. It has no serial
/// dependency between elements, so filling a buffer vectorizes (i32x4 multiplies under simd128).
#[inline(always)]
pub fn mix32(seed: u32, i: u32) -> u32 {
    let mut x = i.wrapping_mul(0x9E37_79B1) ^ seed;
    x ^= x >> 15;
    x = x.wrapping_mul(0x85EB_CA77);
    x ^= x >> 13;
    x
}

/// Fills `out` with f32 values in [-1, 1): exactly k / 2^23 - 1 for the top 24 bits k of `mix32`, so every step
/// is exact in f32 and needs no rounding-mode assumptions.
pub fn fill_f32(seed: u32, out: &mut [f32]) {
    for (i, v) in out.iter_mut().enumerate() {
        let k = mix32(seed, i as u32) >> 8;
        *v = (k as f32) * (1.0 / 8_388_608.0) - 1.0;
    }
}

/// Fills `out` with i8 values (the top byte of `mix32`).
pub fn fill_i8(seed: u32, out: &mut [i8]) {
    for (i, v) in out.iter_mut().enumerate() {
        *v = (mix32(seed, i as u32) >> 24) as u8 as i8;
    }
}

/// `c = a * b` for row-major n x n matrices, in i-k-j order: the inner loop runs over contiguous rows of `b` and
/// `c` (vectorizable without reordering any sum); each `c[i][j]` accumulates its products in increasing `k`.
pub fn matmul(n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    let (a, b, c) = (&a[..n * n], &b[..n * n], &mut c[..n * n]);
    for v in c.iter_mut() {
        *v = 0.0;
    }
    for i in 0..n {
        let c_row = &mut c[i * n..(i + 1) * n];
        for k in 0..n {
            let aik = a[i * n + k];
            let b_row = &b[k * n..(k + 1) * n];
            for (cv, bv) in c_row.iter_mut().zip(b_row) {
                *cv += aik * *bv;
            }
        }
    }
}

/// Sequential sum (in index order) of all elements.
pub fn checksum_f32(v: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for x in v {
        s += *x;
    }
    s
}

/// The whole `matmul_f32` kernel over caller-provided buffers (each at least `MATMUL_N^2` long): deterministic
/// inputs, the product, and the checksum of the product.
pub fn matmul_f32_kernel(a: &mut [f32], b: &mut [f32], c: &mut [f32]) -> f32 {
    let nn = MATMUL_N * MATMUL_N;
    fill_f32(1, &mut a[..nn]);
    fill_f32(2, &mut b[..nn]);
    matmul(MATMUL_N, a, b, c);
    checksum_f32(&c[..nn])
}

/// Dot product of two i8 vectors, accumulated in i32 (wrapping, so it is defined for any input).
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = 0i32;
    for (x, y) in a.iter().zip(b) {
        acc = acc.wrapping_add(i32::from(*x) * i32::from(*y));
    }
    acc
}

/// The whole `dot_i8` kernel over caller-provided buffers (each at least `DOT_LEN` long).
pub fn dot_i8_kernel(a: &mut [i8], b: &mut [i8]) -> i32 {
    fill_i8(3, &mut a[..DOT_LEN]);
    fill_i8(4, &mut b[..DOT_LEN]);
    dot_i8(&a[..DOT_LEN], &b[..DOT_LEN])
}

/// Naive doubly recursive Fibonacci (fib(0) = 0, fib(1) = 1): about 1.6^n calls, for call-heavy tests.
pub fn fib(n: i32) -> i64 {
    if n < 2 { n as i64 } else { fib(n - 1) + fib(n - 2) }
}
