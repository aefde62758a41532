//! One-step proofs: for every step of several programs, the verifier's post-root equals the
//! stepper's root after the step; corrupted proofs are rejected.

use opml_vm::proof::OneStepProof;
use opml_vm::{Extern, Limits, Machine, Module, NoHost, StateHasher, Status, Value, prove_step, verify_step};

/// Runs `func` to completion, proving and verifying every step. Returns the number of steps.
fn round_trip(wat: &str, func: &str, args: &[Value]) -> (u64, Status) {
    let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
    let mut m = Machine::new(Limits::default());
    let inst = m.instantiate(&module, &[], &mut NoHost).unwrap();
    let Some(Extern::Func(f)) = m.export(inst, func) else { panic!("no export {func}") };
    m.invoke(f, args).unwrap();
    let index = m.program_index();
    let mut hasher = StateHasher::new();
    let mut steps = 0;
    let mut max_len = 0;
    while m.status() == Status::Running {
        let pre = hasher.root(&m);
        let proof = prove_step(&m, &index, &mut hasher).unwrap();
        let bytes = proof.encode();
        max_len = max_len.max(bytes.len());
        assert_eq!(OneStepProof::decode(&bytes).unwrap(), proof, "codec round trip at step {steps}");
        m.step(&mut NoHost).unwrap();
        let post = hasher.root(&m);
        let verified = verify_step(&pre, &bytes, &index.commitment)
            .unwrap_or_else(|e| panic!("step {steps}: proof rejected: {e}; op {:?}", proof.op));
        assert_eq!(verified, post, "step {steps}: post-root differs; op {:?}", opml_vm::instr::Op::decode(&proof.op));
        steps += 1;
    }
    // A final state steps to itself.
    let root = hasher.root(&m);
    let proof = prove_step(&m, &index, &mut hasher).unwrap();
    assert_eq!(verify_step(&root, &proof.encode(), &index.commitment).unwrap(), root);
    (steps, m.status())
}

#[test]
fn calls_branches_and_locals() {
    let wat = r#"(module (func $fib (export "fib") (param i32) (result i64)
        (if (result i64) (i32.lt_s (local.get 0) (i32.const 2))
          (then (i64.extend_i32_s (local.get 0)))
          (else (i64.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                         (call $fib (i32.sub (local.get 0) (i32.const 2))))))))"#;
    let (steps, status) = round_trip(wat, "fib", &[Value::I32(8)]);
    assert_eq!(status, Status::Returned);
    assert!(steps > 100);
}

#[test]
fn memory_globals_br_table_and_bulk_ops() {
    let wat = r#"(module (memory 1 3) (global $g (mut i64) (i64.const 5))
      (data $d "hello, passive segment")
      (func (export "run") (param $n i32) (result i32) (local $i i32) (local $acc i32)
        (block $done (loop $top
          (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
          (i32.store offset=4094 (i32.mul (local.get $i) (i32.const 4)) (local.get $i))
          (local.set $acc (i32.add (local.get $acc) (i32.load offset=4094 (i32.mul (local.get $i) (i32.const 4)))))
          (global.set $g (i64.add (global.get $g) (i64.extend_i32_u (local.get $i))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $top)))
        (memory.fill (i32.const 100) (i32.const 7) (i32.const 3000))
        (memory.copy (i32.const 150) (i32.const 90) (i32.const 2500))
        (memory.copy (i32.const 5000) (i32.const 6000) (i32.const 1500))
        (memory.init $d (i32.const 65530) (i32.const 2) (i32.const 6))
        (data.drop $d)
        (drop (memory.grow (i32.const 1)))
        (v128.store (i32.const 70000) (i32x4.add (v128.load (i32.const 100)) (v128.const i32x4 1 2 3 4)))
        (block $b2 (block $b1 (block $b0 (br_table $b0 $b1 $b2 (i32.const 1)))
          (return (i32.const -1)))
          (return (i32.add (local.get $acc) (i32.load8_u (i32.const 65531)))))
        (i32.const -2)))"#;
    let (_, status) = round_trip(wat, "run", &[Value::I32(40)]);
    assert_eq!(status, Status::Returned);
}

#[test]
fn tables_and_indirect_calls() {
    let wat = r#"(module (type $t (func (param i32) (result i32)))
      (table $tab 4 10 funcref)
      (elem $e func $double $inc)
      (func $double (type $t) (i32.mul (local.get 0) (i32.const 2)))
      (func $inc (type $t) (i32.add (local.get 0) (i32.const 1)))
      (func (export "run") (result i32)
        (table.init $tab $e (i32.const 1) (i32.const 0) (i32.const 2))
        (table.copy (i32.const 2) (i32.const 1) (i32.const 2))
        (drop (table.grow $tab (ref.null func) (i32.const 3)))
        (table.fill $tab (i32.const 5) (ref.func $inc) (i32.const 2))
        (table.set $tab (i32.const 0) (table.get $tab (i32.const 6)))
        (elem.drop $e)
        (i32.add (call_indirect (type $t) (i32.const 20) (i32.const 0))
                 (i32.add (call_indirect (type $t) (i32.const 20) (i32.const 1)) (table.size $tab)))))"#;
    let (_, status) = round_trip(wat, "run", &[]);
    assert_eq!(status, Status::Returned);
}

#[test]
fn traps_are_proven() {
    let wat = r#"(module (memory 1)
      (func (export "oob") (result i32) (i32.load (i32.const 65534)))
      (func (export "div") (result i32) (i32.div_u (i32.const 1) (i32.const 0)))
      (func $r (export "rec") (call $r)))"#;
    assert!(matches!(round_trip(wat, "oob", &[]).1, Status::Trapped(_)));
    assert!(matches!(round_trip(wat, "div", &[]).1, Status::Trapped(_)));
}

/// Proves and verifies the first `max_steps` steps (or all) of a bench-kernels export.
fn kernel_round_trip(name: &str, args: &[Value], max_steps: u64) -> u64 {
    let module = Module::new(opml_guests::BENCH_KERNELS).unwrap();
    let mut m = Machine::new(Limits::default());
    let inst = m.instantiate(&module, &[], &mut NoHost).unwrap();
    let Some(Extern::Func(f)) = m.export(inst, name) else { panic!("no export {name}") };
    m.invoke(f, args).unwrap();
    let index = m.program_index();
    let mut hasher = StateHasher::new();
    let mut steps = 0;
    while m.status() == Status::Running && steps < max_steps {
        let pre = hasher.root(&m);
        let bytes = prove_step(&m, &index, &mut hasher).unwrap().encode();
        m.step(&mut NoHost).unwrap();
        let post = hasher.root(&m);
        assert_eq!(verify_step(&pre, &bytes, &index.commitment), Ok(post), "{name} step {steps}");
        steps += 1;
    }
    steps
}

#[test]
fn rust_built_kernels_every_step() {
    // fib runs to completion; the loops are long, so a prefix that covers their inner loops.
    assert!(kernel_round_trip("fib", &[Value::I32(9)], u64::MAX) > 1000);
    assert_eq!(kernel_round_trip("matmul_f32", &[], 30_000), 30_000);
    assert_eq!(kernel_round_trip("dot_i8", &[], 30_000), 30_000);
}
