// The guest's matrix kernel: `x W^T + b` for the model's linear layers, written for an interpreter.
//
// Why not candle's matmul (gemm) in the guest: in wasmi every instruction is dispatched, and a `f32x4` multiply,
// add or load costs about three scalar integer ops (a multiply or add canonicalizes the NaNs of every lane), so
// what counts is SIMD instructions per multiply-add. For a short input gemm packs the weight matrix on every call
// (PyTorch's `[out, in]` layout is the wrong way round for its microkernels) and its microkernels spend a splat
// per weight column per step. Here each output is a dot product along the contiguous inner dimension of both
// operands, so nothing is packed or transposed: a tile of R weight rows by up to C tokens loads R + C vectors per
// 4 steps of the inner dimension and does R * C multiply-adds with them, its accumulators in locals (R = 8
// spills them in rustc's wasm and runs slower). Measured on a 7-token sentence: 201M -> 147M steps, 1.29x less
// wasmi time; on a 41-token text ~1.2x (1.0-1.35x across runs on a noisy machine: gemm's larger tiles do
// better on longer inputs).
// Natively the model uses candle's matmul (the native baseline is candle's own); this file also compiles
// natively, with plain arrays instead of `v128`, for its tests.
//
// Summation order (fixed, so both VM engines agree bit for bit): each lane accumulates the products of inner
// indices congruent to it mod 4, in order; the four lanes are summed as (l0 + l1) + (l2 + l3); the bias is added
// last.

/// Weight rows per tile.
const R: usize = 4;
/// Most tokens per tile.
const C: usize = 8;

#[cfg(target_arch = "wasm32")]
mod lanes {
    use core::arch::wasm32::{f32x4_add, f32x4_extract_lane, f32x4_mul, f32x4_splat, v128, v128_load};

    /// Four f32 lanes.
    pub type F32x4 = v128;

    /// All lanes zero.
    #[inline(always)]
    pub fn zero() -> F32x4 {
        f32x4_splat(0.0)
    }

    /// Loads four f32 from `p` (any alignment).
    ///
    /// # Safety
    /// `p..p + 4` must be readable.
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> F32x4 {
        // SAFETY: the caller's contract; wasm loads need no alignment.
        unsafe { v128_load(p.cast()) }
    }

    /// `acc + a * b`, lane by lane (a multiply, then an add: two roundings).
    #[inline(always)]
    pub fn mul_add(acc: F32x4, a: F32x4, b: F32x4) -> F32x4 {
        f32x4_add(acc, f32x4_mul(a, b))
    }

    /// `(l0 + l1) + (l2 + l3)`.
    #[inline(always)]
    pub fn sum(v: F32x4) -> f32 {
        (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v))
            + (f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v))
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod lanes {
    /// Four f32 lanes.
    pub type F32x4 = [f32; 4];

    /// All lanes zero.
    #[inline(always)]
    pub fn zero() -> F32x4 {
        [0.0; 4]
    }

    /// Loads four f32 from `p`.
    ///
    /// # Safety
    /// `p..p + 4` must be readable.
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> F32x4 {
        // SAFETY: the caller's contract.
        unsafe { core::ptr::read_unaligned(p.cast()) }
    }

    /// `acc + a * b`, lane by lane (a multiply, then an add: two roundings).
    #[inline(always)]
    pub fn mul_add(acc: F32x4, a: F32x4, b: F32x4) -> F32x4 {
        core::array::from_fn(|i| acc[i] + a[i] * b[i])
    }

    /// `(l0 + l1) + (l2 + l3)`.
    #[inline(always)]
    pub fn sum(v: F32x4) -> f32 {
        (v[0] + v[1]) + (v[2] + v[3])
    }
}

use lanes::F32x4;

/// Fills a buffer with the given rows of the weight matrix.
pub type ReadRows<'a> = dyn FnMut(core::ops::Range<usize>, &mut [f32]) + 'a;

/// Weight rows read per block (into one buffer reused for the whole matrix).
const BLOCK_ROWS: usize = 16;

/// `x W^T + b` for `x` `[n, k]`, `W` `[m, k]` (PyTorch's `Linear` layout) and `b` `[m]`, all row-major: the
/// `[n, m]` result, row-major. `read_w(rows, buf)` fills `buf` with rows `rows` of `W`: the weights stream
/// through one small buffer, so a layer's memory changes by a few pages rather than by its weight matrices (each
/// segment boundary's root rehashes only changed pages). Supports the model's inner dimensions, `k` = 384 or
/// 1536, and `m` a multiple of 16; panics (traps the guest) on anything else.
pub fn linear(x: &[f32], k: usize, b: &[f32], read_w: &mut ReadRows<'_>) -> Vec<f32> {
    match k {
        384 => linear_k::<384>(x, b, read_w),
        1536 => linear_k::<1536>(x, b, read_w),
        _ => panic!("minilm kernel: inner dimension {k} is not 384 or 1536"),
    }
}

/// A tile function for `T` tokens (see [`tile`]).
type Tile = fn(&[f32], &[f32], &[f32], &mut [f32], usize);

fn linear_k<const K: usize>(x: &[f32], b: &[f32], read_w: &mut ReadRows<'_>) -> Vec<f32> {
    let (n, m) = (x.len() / K, b.len());
    assert!(
        x.len() == n * K && m.is_multiple_of(BLOCK_ROWS),
        "minilm kernel: x has {} values, b {m}, inner dimension {K}",
        x.len()
    );
    // Token blocks of at most C; the tile's token count is a compile-time constant too, so its accumulators are
    // plain locals.
    let blocks: Vec<(usize, usize, Tile)> = (0..n)
        .step_by(C)
        .map(|t0| {
            let tokens = C.min(n - t0);
            let tile: Tile = match tokens {
                1 => tile::<K, 1>,
                2 => tile::<K, 2>,
                3 => tile::<K, 3>,
                4 => tile::<K, 4>,
                5 => tile::<K, 5>,
                6 => tile::<K, 6>,
                7 => tile::<K, 7>,
                _ => tile::<K, C>,
            };
            (t0, tokens, tile)
        })
        .collect();
    let mut out = vec![0f32; n * m];
    let mut w = vec![0f32; BLOCK_ROWS * K];
    for j_block in (0..m).step_by(BLOCK_ROWS) {
        read_w(j_block..j_block + BLOCK_ROWS, &mut w);
        for (w_rows, j0) in w.chunks_exact(R * K).zip((j_block..).step_by(R)) {
            for &(t0, tokens, tile) in &blocks {
                tile(&x[t0 * K..(t0 + tokens) * K], w_rows, &b[j0..j0 + R], &mut out[t0 * m..(t0 + tokens) * m], j0);
            }
        }
    }
    out
}

/// One tile: outputs `j0..j0 + R` of the `T` tokens in `x` (`[T, K]`), from the `R` weight rows `w`
/// (`[R, K]`) and biases `b`, into `out` (`[T, m]`, row-major).
#[inline(never)]
fn tile<const K: usize, const T: usize>(x: &[f32], w: &[f32], b: &[f32], out: &mut [f32], j0: usize) {
    assert!(x.len() == T * K && w.len() == R * K && b.len() == R && K.is_multiple_of(4));
    let m = out.len() / T;
    assert!(out.len() == T * m && j0 + R <= m);
    let mut acc = [[lanes::zero(); T]; R];
    let (xp, wp) = (x.as_ptr(), w.as_ptr());
    let mut i = 0;
    while i < K {
        // SAFETY: i + 4 <= K (K is a multiple of 4), so every load reads inside row t of `x` (T rows of K) and row
        // r of `w` (R rows of K), as asserted above. (rustc still emits an `i32.add` per load for the row offset
        // rather than the load's immediate offset, however the address is written: measured, 2026-11-22.)
        let (xi, wi) = unsafe { (xp.add(i), wp.add(i)) };
        let xv: [F32x4; T] = core::array::from_fn(|t| unsafe { lanes::load(xi.add(t * K)) });
        let wv: [F32x4; R] = core::array::from_fn(|r| unsafe { lanes::load(wi.add(r * K)) });
        for (acc_r, w_r) in acc.iter_mut().zip(&wv) {
            for (a, x_t) in acc_r.iter_mut().zip(&xv) {
                *a = lanes::mul_add(*a, *w_r, *x_t);
            }
        }
        i += 4;
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (t, a) in acc_r.iter().enumerate() {
            out[t * m + j0 + r] = lanes::sum(*a) + b[r];
        }
    }
}
