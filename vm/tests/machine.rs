//! Machine properties the spec suite does not reach: limits as program semantics, final states,
//! snapshots, host-call stepping and bulk-memory micro-steps.

use opml_vm::memory::Memory;
use opml_vm::{
    Extern, FuncType, Host, InstanceId, InstantiateError, Limits, Machine, Module, NoHost, Status, StepError, TrapCode,
    ValType, Value,
};

fn module(wat: &str) -> Module {
    Module::new(&wat::parse_str(wat).expect("wat parses")).expect("module is valid")
}

fn instance(limits: Limits, wat: &str) -> (Machine, InstanceId) {
    let mut m = Machine::new(limits);
    let inst = m.instantiate(&module(wat), &[], &mut NoHost).expect("instantiates");
    (m, inst)
}

fn func(m: &Machine, inst: InstanceId, name: &str) -> u32 {
    match m.export(inst, name) {
        Some(Extern::Func(f)) => f,
        other => panic!("export {name}: {other:?}"),
    }
}

fn memory(m: &Machine, inst: InstanceId) -> &Memory {
    match m.export(inst, "mem") {
        Some(Extern::Memory(a)) => m.memory(a).expect("memory exists"),
        other => panic!("export mem: {other:?}"),
    }
}

fn bytes(mem: &Memory, addr: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    mem.read_into(addr, &mut out).expect("in bounds");
    out
}

/// Invokes `name` and runs it to its final state; returns the status and the steps it took.
fn call(m: &mut Machine, inst: InstanceId, name: &str, args: &[Value]) -> (Status, u64) {
    let f = func(m, inst, name);
    let before = m.steps();
    m.invoke(f, args).expect("invoke");
    let status = m.run(&mut NoHost, 100_000_000).expect("running");
    (status, m.steps() - before)
}

const RECURSE: &str = r#"(module
  (func $down (export "down") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (i32.add (i32.const 1) (call $down (i32.sub (local.get 0) (i32.const 1)))))))
  (func $forever (export "forever") (call $forever)))"#;

#[test]
fn call_depth_limit_traps_as_a_final_state() {
    let limits = Limits { max_call_depth: 50, ..Limits::default() };
    let (mut m, inst) = instance(limits, RECURSE);
    // `down n` has n + 1 active frames: 50 frames are allowed, 51 are not.
    assert_eq!(call(&mut m, inst, "down", &[Value::I32(49)]).0, Status::Returned);
    assert_eq!(m.results(), Some(vec![Value::I32(49)]));
    assert_eq!(call(&mut m, inst, "down", &[Value::I32(50)]).0, Status::Trapped(TrapCode::CallStackExhausted));
    assert_eq!(m.results(), None);

    assert_eq!(call(&mut m, inst, "forever", &[]).0, Status::Trapped(TrapCode::CallStackExhausted));
    assert!(TrapCode::CallStackExhausted.is_exhaustion());
    // Final: no further step, and the trap stays the status.
    let steps = m.steps();
    assert_eq!(m.step(&mut NoHost), Err(StepError::NotRunning(Status::Trapped(TrapCode::CallStackExhausted))));
    assert_eq!(m.run(&mut NoHost, 10), Err(StepError::NotRunning(Status::Trapped(TrapCode::CallStackExhausted))));
    assert_eq!(m.steps(), steps);
    // The store is reusable for the next invocation.
    assert_eq!(call(&mut m, inst, "down", &[Value::I32(3)]).0, Status::Returned);
    assert_eq!(m.results(), Some(vec![Value::I32(3)]));
}

#[test]
fn default_call_depth_limit_is_reached_by_infinite_recursion() {
    let (mut m, inst) = instance(Limits::default(), RECURSE);
    let (status, steps) = call(&mut m, inst, "forever", &[]);
    assert_eq!(status, Status::Trapped(TrapCode::CallStackExhausted));
    // One `call` step per frame: the trap comes at the documented depth, not earlier or later.
    assert_eq!(steps, Limits::DEFAULT.max_call_depth as u64);
}

#[test]
fn value_stack_limit_traps() {
    let limits = Limits { max_stack_slots: 1000, ..Limits::default() };
    let (mut m, inst) = instance(limits, RECURSE);
    let (status, _) = call(&mut m, inst, "down", &[Value::I32(10_000)]);
    assert_eq!(status, Status::Trapped(TrapCode::ValueStackExhausted));
    assert!(TrapCode::ValueStackExhausted.is_exhaustion());
}

#[test]
fn memory_grow_beyond_the_machine_limit_returns_minus_one() {
    let limits = Limits { max_memory_pages: 4, ..Limits::default() };
    let wat = r#"(module (memory (export "mem") 1)
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
      (func (export "size") (result i32) (memory.size)))"#;
    let (mut m, inst) = instance(limits, wat);
    let grow = |m: &mut Machine, n: i32| {
        assert_eq!(call(m, inst, "grow", &[Value::I32(n)]).0, Status::Returned);
        m.results().unwrap()[0]
    };
    assert_eq!(grow(&mut m, 4), Value::I32(-1));
    assert_eq!(grow(&mut m, 3), Value::I32(1));
    assert_eq!(grow(&mut m, 1), Value::I32(-1));
    assert_eq!(grow(&mut m, 0), Value::I32(4));
    call(&mut m, inst, "size", &[]);
    assert_eq!(m.results(), Some(vec![Value::I32(4)]));
    assert_eq!(memory(&m, inst).pages(), 4);

    // A module whose initial memory already exceeds the limit cannot be instantiated.
    let big = module("(module (memory 5))");
    let err = m.instantiate(&big, &[], &mut NoHost).unwrap_err();
    assert!(matches!(err, InstantiateError::Unlinkable(_)), "{err:?}");
}

#[test]
fn final_states_refuse_steps_without_panicking() {
    let wat = r#"(module
      (func (export "ok") (result i32) (i32.const 7))
      (func (export "bad") (unreachable)))"#;
    let (mut m, inst) = instance(Limits::default(), wat);
    assert_eq!(m.step(&mut NoHost), Err(StepError::NotRunning(Status::Idle)));
    assert_eq!(m.run(&mut NoHost, 1), Err(StepError::NotRunning(Status::Idle)));

    assert_eq!(call(&mut m, inst, "ok", &[]).0, Status::Returned);
    assert_eq!(m.step(&mut NoHost), Err(StepError::NotRunning(Status::Returned)));
    assert_eq!(m.results(), Some(vec![Value::I32(7)]), "results survive a refused step");

    assert_eq!(call(&mut m, inst, "bad", &[]), (Status::Trapped(TrapCode::Unreachable), 1));
    for _ in 0..3 {
        assert_eq!(m.step(&mut NoHost), Err(StepError::NotRunning(Status::Trapped(TrapCode::Unreachable))));
    }
    assert_eq!(m.status(), Status::Trapped(TrapCode::Unreachable));
    assert_eq!(m.results(), None);
}

/// Fills memory with a running hash, so every step of the loop matters for the end state.
const CHURN: &str = r#"(module (memory (export "mem") 1)
  (func (export "churn") (param $n i32) (result i32) (local $i i32) (local $h i32)
    (local.set $h (i32.const 17))
    (block $done (loop $top
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $h (i32.add (i32.mul (local.get $h) (i32.const 31)) (local.get $i)))
      (i32.store (i32.mul (i32.and (local.get $i) (i32.const 1023)) (i32.const 4)) (local.get $h))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $top)))
    (local.get $h)))"#;

#[test]
fn snapshot_runs_to_the_same_end_and_is_isolated() {
    let (mut m, inst) = instance(Limits::default(), CHURN);
    let f = func(&m, inst, "churn");
    m.invoke(f, &[Value::I32(3000)]).unwrap();
    // Into the loop: some of memory is written, more will be.
    for _ in 0..5_000 {
        m.step(&mut NoHost).unwrap();
    }
    assert_eq!(m.status(), Status::Running);
    let snapshot = m.clone();
    let mid_memory = bytes(memory(&snapshot, inst), 0, 4096);

    assert_eq!(m.run(&mut NoHost, u64::MAX).unwrap(), Status::Returned);
    // The original's later writes do not reach the snapshot.
    assert_ne!(bytes(memory(&m, inst), 0, 4096), mid_memory);
    assert_eq!(bytes(memory(&snapshot, inst), 0, 4096), mid_memory);
    assert_eq!(snapshot.status(), Status::Running);

    let mut restored = snapshot.clone();
    assert_eq!(restored.run(&mut NoHost, u64::MAX).unwrap(), Status::Returned);
    assert_eq!(restored.results(), m.results());
    assert_eq!(restored.steps(), m.steps());
    assert_eq!(bytes(memory(&restored, inst), 0, 65_536), bytes(memory(&m, inst), 0, 65_536));
    // The snapshot itself is still where it was taken.
    assert_eq!(snapshot.status(), Status::Running);
    assert_eq!(snapshot.steps(), 5_000);
    assert_eq!(bytes(memory(&snapshot, inst), 0, 4096), mid_memory);
}

/// Records host calls; answers function 0 (`add`) with the sum, function 1 (`bad`) with a
/// wrongly typed result, function 2 (`two`) with two results for a one-result signature.
#[derive(Default)]
struct TestHost {
    calls: Vec<(u32, Vec<Value>)>,
}

impl Host for TestHost {
    fn call(&mut self, id: u32, args: &[Value], memories: &mut [Memory]) -> Result<Vec<Value>, TrapCode> {
        self.calls.push((id, args.to_vec()));
        match (id, args) {
            (0, [Value::I32(a), Value::I32(b)]) => {
                memories[0].write(0, &[0xEE]).map_err(|_| TrapCode::HostError)?;
                Ok(vec![Value::I32(a.wrapping_add(*b))])
            }
            (1, _) => Ok(vec![Value::I64(1)]),
            (2, _) => Ok(vec![Value::I32(1), Value::I32(2)]),
            _ => Err(TrapCode::HostError),
        }
    }
}

#[test]
fn a_host_call_is_one_step() {
    let wat = r#"(module
      (import "env" "add" (func $add (param i32 i32) (result i32)))
      (import "env" "bad" (func $bad (result i32)))
      (import "env" "two" (func $two (result i32)))
      (memory (export "mem") 1)
      (func (export "f") (result i32) (call $add (i32.const 2) (i32.const 40)))
      (func (export "bad") (result i32) (call $bad))
      (func (export "two") (result i32) (call $two)))"#;
    let mut m = Machine::new(Limits::default());
    let sig = |params: Vec<ValType>| FuncType { params, results: vec![ValType::I32] };
    let add = m.alloc_host_func(sig(vec![ValType::I32, ValType::I32]), 0);
    let bad = m.alloc_host_func(sig(vec![]), 1);
    let two = m.alloc_host_func(sig(vec![]), 2);
    let mut host = TestHost::default();
    let imports = [Extern::Func(add), Extern::Func(bad), Extern::Func(two)];
    let inst = m.instantiate(&module(wat), &imports, &mut host).unwrap();

    m.invoke(func(&m, inst, "f"), &[]).unwrap();
    m.step(&mut host).unwrap(); // i32.const 2
    m.step(&mut host).unwrap(); // i32.const 40
    assert!(host.calls.is_empty());
    m.step(&mut host).unwrap(); // call $add: the whole host call
    assert_eq!(host.calls, vec![(0, vec![Value::I32(2), Value::I32(40)])]);
    assert_eq!(m.call_depth(), 0, "a host call pushes no frame");
    assert_eq!(m.status(), Status::Running);
    assert_eq!(bytes(memory(&m, inst), 0, 1), [0xEE], "the host wrote memory during the step");
    m.step(&mut host).unwrap(); // return
    assert_eq!(m.status(), Status::Returned);
    assert_eq!(m.results(), Some(vec![Value::I32(42)]));
    assert_eq!(m.steps(), 4);

    for name in ["bad", "two"] {
        m.invoke(func(&m, inst, name), &[]).unwrap();
        assert_eq!(m.run(&mut host, 100).unwrap(), Status::Trapped(TrapCode::HostError), "{name}");
    }

    // Invoking a host function directly also works.
    m.invoke(add, &[Value::I32(1), Value::I32(2)]).unwrap();
    assert_eq!(m.run(&mut host, 100).unwrap(), Status::Returned);
    assert_eq!(m.results(), Some(vec![Value::I32(3)]));
}

const BULK: &str = r#"(module (memory (export "mem") 1)
  (func (export "fill") (param $d i32) (param $v i32) (param $n i32)
    (memory.fill (local.get $d) (local.get $v) (local.get $n)))
  (func (export "copy") (param $d i32) (param $s i32) (param $n i32)
    (memory.copy (local.get $d) (local.get $s) (local.get $n))))"#;

#[test]
fn memory_fill_takes_one_step_per_chunk() {
    let (mut m, inst) = instance(Limits::default(), BULK);
    let args = |n: i32| [Value::I32(100), Value::I32(0xAB), Value::I32(n)];
    // The operand steps, one fill step, the return: `base` steps for a fill of at most one chunk.
    let (status, base) = call(&mut m, inst, "fill", &args(0));
    assert_eq!(status, Status::Returned);
    assert_eq!(call(&mut m, inst, "fill", &args(1024)), (Status::Returned, base));
    assert_eq!(call(&mut m, inst, "fill", &args(1025)), (Status::Returned, base + 1));
    assert_eq!(call(&mut m, inst, "fill", &args(10_000)), (Status::Returned, base - 1 + 10_000u64.div_ceil(1024)));
    let mem = bytes(memory(&m, inst), 0, 20_000);
    assert!(mem[..100].iter().all(|&b| b == 0));
    assert!(mem[100..10_100].iter().all(|&b| b == 0xAB));
    assert!(mem[10_100..].iter().all(|&b| b == 0));

    // Out of bounds anywhere: trap before writing anything.
    let (status, _) = call(&mut m, inst, "fill", &[Value::I32(60_000), Value::I32(1), Value::I32(6000)]);
    assert_eq!(status, Status::Trapped(TrapCode::MemoryOutOfBounds));
    assert!(bytes(memory(&m, inst), 60_000, 5536).iter().all(|&b| b == 0));
}

#[test]
fn memory_copy_overlapping_in_both_directions() {
    let pattern: Vec<u8> = (0..8000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    for (dst, src, n) in [(500u32, 0u32, 3000u32), (0, 500, 3000), (1, 0, 5000), (0, 1, 5000), (4096, 4000, 2100)] {
        let (mut m, inst) = instance(Limits::default(), BULK);
        let Some(Extern::Memory(a)) = m.export(inst, "mem") else { panic!("no memory") };
        m.memory_mut(a).unwrap().write(0, &pattern).unwrap();
        let args = [Value::I32(dst as i32), Value::I32(src as i32), Value::I32(n as i32)];
        let (_, base) = call(&mut m, inst, "copy", &[Value::I32(0), Value::I32(0), Value::I32(0)]);
        m.memory_mut(a).unwrap().write(0, &pattern).unwrap();
        let (status, steps) = call(&mut m, inst, "copy", &args);
        assert_eq!(status, Status::Returned);
        assert_eq!(steps, base - 1 + (n as u64).div_ceil(1024), "dst {dst} src {src} n {n}");
        let mut expected = pattern.clone();
        expected.copy_within(src as usize..(src + n) as usize, dst as usize);
        assert_eq!(bytes(memory(&m, inst), 0, 8000), expected, "dst {dst} src {src} n {n}");
    }
}
