//! Checks on the embedded guest modules: they validate as WebAssembly 2.0 exactly, and they compute what the
//! same Rust code computes natively.

use opml_guests::{ALL, BENCH_KERNELS, bench_kernels};
use wasmparser::{Validator, WasmFeatures};

/// The kernel code of the `bench-kernels` guest, compiled natively.
#[allow(dead_code)]
mod native {
    include!("../programs/bench-kernels/src/kernels.rs");
}

#[test]
fn guests_validate_as_webassembly_2_0() {
    for (name, bytes) in ALL {
        let mut validator = Validator::new_with_features(WasmFeatures::WASM2);
        if let Err(e) = validator.validate_all(bytes) {
            panic!("guest {name} is not a valid WebAssembly 2.0 module: {e}");
        }
    }
}

#[test]
fn bench_kernels_expected_values_match_native() {
    let nn = native::MATMUL_N * native::MATMUL_N;
    let (mut a, mut b, mut c) = (vec![0f32; nn], vec![0f32; nn], vec![0f32; nn]);
    let matmul = native::matmul_f32_kernel(&mut a, &mut b, &mut c);
    let (mut x, mut y) = (vec![0i8; native::DOT_LEN], vec![0i8; native::DOT_LEN]);
    let dot = native::dot_i8_kernel(&mut x, &mut y);
    assert_eq!(
        (matmul.to_bits(), dot),
        (bench_kernels::MATMUL_F32_BITS, bench_kernels::DOT_I8),
        "native results (matmul_f32 = {matmul} = {:#010x}, dot_i8 = {dot})",
        matmul.to_bits()
    );
    for &(n, f) in bench_kernels::FIB {
        assert_eq!(native::fib(n), f, "fib({n})");
    }
}

#[test]
fn bench_kernels_in_wasmi_match_expected() {
    use wasmi::{Engine, Linker, Module, Store};
    let engine = Engine::default();
    let module = Module::new(&engine, BENCH_KERNELS).expect("compile bench-kernels");
    assert_eq!(module.imports().len(), 0, "bench-kernels has no imports");
    let mut store = Store::new(&engine, ());
    let instance =
        Linker::<()>::new(&engine).instantiate_and_start(&mut store, &module).expect("instantiate bench-kernels");
    let matmul = instance.get_typed_func::<(), f32>(&store, "matmul_f32").unwrap();
    let dot = instance.get_typed_func::<(), i32>(&store, "dot_i8").unwrap();
    let fib = instance.get_typed_func::<i32, i64>(&store, "fib").unwrap();
    // Twice each: a call re-initialises its inputs, so every call does the same work.
    for _ in 0..2 {
        assert_eq!(matmul.call(&mut store, ()).unwrap().to_bits(), bench_kernels::MATMUL_F32_BITS);
        assert_eq!(dot.call(&mut store, ()).unwrap(), bench_kernels::DOT_I8);
    }
    for &(n, f) in bench_kernels::FIB {
        assert_eq!(fib.call(&mut store, n).unwrap(), f, "fib({n})");
    }
}

#[test]
fn bench_kernels_uses_simd() {
    // The benchmark is meant to exercise v128 code (our models' matmuls do): without simd128 it must not validate.
    let no_simd = WasmFeatures::WASM2.difference(WasmFeatures::SIMD);
    let err = Validator::new_with_features(no_simd)
        .validate_all(BENCH_KERNELS)
        .err()
        .expect("bench-kernels has no simd128 instructions");
    assert!(err.message().contains("SIMD"), "unexpected error: {err}");
}
