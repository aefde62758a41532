//! Quick end-to-end checks of the stepper on small hand-written modules.

use opml_vm::{Extern, Limits, Machine, Module, NoHost, Status, Value};

fn run(wat: &str, func: &str, args: &[Value]) -> (Status, Option<Vec<Value>>, u64) {
    let wasm = wat::parse_str(wat).unwrap();
    let module = Module::new(&wasm).unwrap();
    let mut m = Machine::new(Limits::default());
    let inst = m.instantiate(&module, &[], &mut NoHost).unwrap();
    let Some(Extern::Func(f)) = m.export(inst, func) else { panic!("no export {func}") };
    m.invoke(f, args).unwrap();
    let status = m.run(&mut NoHost, 100_000_000).unwrap();
    (status, m.results(), m.steps())
}

#[test]
fn recursive_fib() {
    let wat = r#"(module (func $fib (export "fib") (param i32) (result i64)
        (if (result i64) (i32.lt_s (local.get 0) (i32.const 2))
          (then (i64.extend_i32_s (local.get 0)))
          (else (i64.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                         (call $fib (i32.sub (local.get 0) (i32.const 2))))))))"#;
    let (status, results, _) = run(wat, "fib", &[Value::I32(20)]);
    assert_eq!(status, Status::Returned);
    assert_eq!(results, Some(vec![Value::I64(6765)]));
}

#[test]
fn loop_with_memory_and_br_table() {
    let wat = r#"(module (memory 1)
      (func (export "sum") (param $n i32) (result i32) (local $i i32) (local $acc i32)
        (block $done (loop $top
          (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
          (i32.store (i32.mul (local.get $i) (i32.const 4)) (local.get $i))
          (local.set $acc (i32.add (local.get $acc) (i32.load (i32.mul (local.get $i) (i32.const 4)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $top)))
        (block $b2 (block $b1 (block $b0 (br_table $b0 $b1 $b2 (i32.const 1)))
          (return (i32.const -1)))
          (return (local.get $acc)))
        (i32.const -2)))"#;
    let (status, results, _) = run(wat, "sum", &[Value::I32(100)]);
    assert_eq!(status, Status::Returned);
    assert_eq!(results, Some(vec![Value::I32(4950)]));
}

#[test]
fn trap_is_final() {
    let wat = r#"(module (func (export "f") (result i32) (i32.div_s (i32.const 1) (i32.const 0))))"#;
    let (status, results, steps) = run(wat, "f", &[]);
    assert_eq!(status, Status::Trapped(opml_vm::TrapCode::IntegerDivideByZero));
    assert_eq!(results, None);
    assert_eq!(steps, 3);
}
