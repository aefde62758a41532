//! IC-style instruction metering: exact counts of hand-written modules (computed by hand from the IC's cost
//! table), unchanged behaviour of instrumented modules, odd module shapes, and the limit decided by the IC count.

use candid::Principal;
use opml_devnet::metering::{COUNTER_EXPORT, FUNCTION_ENTRY_COST, instrument};
use opml_devnet::{Devnet, DevnetConfig, Limits, TimeMode};
use wasmi::{Engine, Instance, Linker, Module, Store, Val};

/// Costs from the IC's table used in the hand counts below.
const CONST: u64 = 1; // i32.const / i64.const
const LOCAL: u64 = 1; // local.get / local.set / local.tee
const ARITH: u64 = 1; // i32.add / i32.sub / i32.mul
const DROP: u64 = 1;
const BRANCH: u64 = 2; // if / br_if
const CALL: u64 = 5;
const BULK: u64 = 100; // memory.fill's static part
const ENTRY: u64 = FUNCTION_ENTRY_COST;

const PROGRAMS: &str = r#"
(module
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  ;; entry + const + const + mul + const + drop (end costs 0)
  (func (export "straight") (result i32)
    i32.const 7
    i32.const 5
    i32.mul
    i64.const 3
    drop)
  ;; entry + loop(0) = 1 before the loop; per iteration get, const, add, set, get, const, sub, tee, br_if;
  ;; after it: local.get
  (func (export "loop") (param $n i32) (result i32) (local $acc i32)
    (loop $l
      local.get $acc
      i32.const 1
      i32.add
      local.set $acc
      local.get $n
      i32.const 1
      i32.sub
      local.tee $n
      br_if $l)
    local.get $acc)
  ;; entry + get + if; then: const, const, add; else: const
  (func (export "branch") (param $c i32) (result i32)
    (if (result i32) (local.get $c)
      (then i32.const 10 i32.const 20 i32.add)
      (else i32.const 1)))
  ;; entry + const + get + br_if; not taken: drop, const, const, mul
  (func (export "brif") (param $c i32) (result i32)
    (block $b (result i32)
      i32.const 5
      local.get $c
      br_if $b
      drop
      i32.const 6
      i32.const 7
      i32.mul))
  ;; callee: entry + get + get + mul
  (func $square (param i32) (result i32)
    local.get 0
    local.get 0
    i32.mul)
  ;; entry + const + call + const + add, plus the callee
  (func (export "call") (result i32)
    i32.const 3
    call $square
    i32.const 1
    i32.add)
  ;; entry + const + const + get + memory.fill (100 + the size operand)
  (func (export "fill") (param $n i32)
    i32.const 0
    i32.const 7
    local.get $n
    memory.fill)
  (func (export "div") (param $a i32) (param $b i32) (result i32)
    local.get $a
    local.get $b
    i32.div_u)
  (func (export "set_global") (param $v i32)
    local.get $v
    global.set $g)
  (func (export "get_global") (result i32)
    global.get $g)
  (func (export "trap_after") (param $n i32) (result i32)
    (if (i32.eqz (local.get $n)) (then unreachable))
    local.get $n))
"#;

struct Run {
    store: Store<()>,
    instance: Instance,
}

impl Run {
    fn new(wasm: &[u8]) -> Run {
        let engine = Engine::default();
        let module = Module::new(&engine, wasm).expect("valid module");
        let mut store = Store::new(&engine, ());
        let instance = Linker::new(&engine).instantiate_and_start(&mut store, &module).expect("instantiates");
        Run { store, instance }
    }

    /// Calls export `name`; its results or the trap's message.
    fn call(&mut self, name: &str, args: &[Val]) -> Result<Vec<String>, String> {
        let f = self.instance.get_func(&self.store, name).expect("export");
        let mut results = vec![Val::I32(0); f.ty(&self.store).results().len()];
        f.call(&mut self.store, args, &mut results).map_err(|e| e.to_string())?;
        Ok(results.iter().map(|v| format!("{v:?}")).collect())
    }

    fn counter(&self) -> u64 {
        match self.instance.get_global(&self.store, COUNTER_EXPORT).expect("counter export").get(&self.store) {
            Val::I64(v) => u64::try_from(v).expect("non-negative"),
            other => panic!("counter is {other:?}"),
        }
    }

    fn reset(&mut self) {
        let g = self.instance.get_global(&self.store, COUNTER_EXPORT).expect("counter export");
        g.set(&mut self.store, Val::I64(0)).unwrap();
    }

    /// The IC count of one call of `name` with `args`.
    fn cost(&mut self, name: &str, args: &[Val]) -> u64 {
        self.reset();
        self.call(name, args).unwrap_or_else(|e| panic!("{name}: {e}"));
        self.counter()
    }
}

fn programs() -> Vec<u8> {
    wat::parse_str(PROGRAMS).unwrap()
}

#[test]
fn hand_counted_programs_cost_exactly_their_ic_count() {
    let mut run = Run::new(&instrument(&programs()).unwrap().wasm);
    assert_eq!(run.cost("straight", &[]), ENTRY + CONST + CONST + ARITH + CONST + DROP);
    let per_iteration = 4 * LOCAL + 2 * CONST + 2 * ARITH + BRANCH;
    for n in [1u64, 2, 10, 1000] {
        assert_eq!(run.cost("loop", &[Val::I32(n as i32)]), ENTRY + n * per_iteration + LOCAL, "{n} iterations");
    }
    let before_if = ENTRY + LOCAL + BRANCH;
    assert_eq!(run.cost("branch", &[Val::I32(1)]), before_if + 2 * CONST + ARITH);
    assert_eq!(run.cost("branch", &[Val::I32(0)]), before_if + CONST);
    let before_br_if = ENTRY + CONST + LOCAL + BRANCH;
    assert_eq!(run.cost("brif", &[Val::I32(1)]), before_br_if, "taken");
    assert_eq!(run.cost("brif", &[Val::I32(0)]), before_br_if + DROP + 2 * CONST + ARITH, "not taken");
    let square = ENTRY + 2 * LOCAL + ARITH;
    assert_eq!(run.cost("call", &[]), ENTRY + CONST + CALL + CONST + ARITH + square);
    for n in [0u64, 1, 4096] {
        assert_eq!(run.cost("fill", &[Val::I32(n as i32)]), ENTRY + 2 * CONST + LOCAL + BULK + n, "fill {n}");
    }
    // Integer division costs 10; global.get/set 2.
    assert_eq!(run.cost("div", &[Val::I32(7), Val::I32(2)]), ENTRY + 2 * LOCAL + 10);
    assert_eq!(run.cost("set_global", &[Val::I32(3)]), ENTRY + LOCAL + 2);
}

#[test]
fn instrumented_modules_behave_identically() {
    let wasm = programs();
    let mut plain = Run::new(&wasm);
    let mut metered = Run::new(&instrument(&wasm).unwrap().wasm);
    let i = |v: i32| Val::I32(v);
    let calls: Vec<(&str, Vec<Val>)> = vec![
        ("straight", vec![]),
        ("loop", vec![i(5)]),
        ("branch", vec![i(1)]),
        ("branch", vec![i(0)]),
        ("brif", vec![i(1)]),
        ("brif", vec![i(0)]),
        ("call", vec![]),
        ("fill", vec![i(100)]),
        ("fill", vec![i(70_000)]), // out of bounds: traps
        ("div", vec![i(9), i(2)]),
        ("div", vec![i(9), i(0)]), // division by zero: traps
        ("set_global", vec![i(42)]),
        ("get_global", vec![]),
        ("trap_after", vec![i(3)]),
        ("trap_after", vec![i(0)]), // unreachable
    ];
    for (name, args) in &calls {
        assert_eq!(plain.call(name, args), metered.call(name, args), "{name}({args:?})");
    }
    let memory = |r: &Run| r.instance.get_memory(&r.store, "memory").expect("exported").data(&r.store).to_vec();
    assert!(memory(&plain)[..100].iter().all(|b| *b == 7), "the fill ran");
    assert_eq!(memory(&plain), memory(&metered));
    // The traps are the same kind.
    let trap = plain.call("div", &[i(1), i(0)]).unwrap_err();
    assert!(trap.contains("divide by zero"), "{trap}");
}

#[test]
fn modules_without_functions_globals_or_exports_instrument() {
    for src in [
        "(module)",
        "(module (memory 1))",
        "(module (func (drop (i32.const 1))))",
        "(module (global (mut i64) (i64.const 5)) (func (result i64) (global.get 0)))",
        "(module (type (func)) (start 0) (func (type 0) nop))",
        "(module (import \"ic0\" \"msg_reply\" (func)) (func (export \"f\") (call 0)))",
        "(module (func (export \"f\")) (@custom \"note\" (after export) \"x\") (data \"abc\"))",
    ] {
        let wasm = wat::parse_str(src).unwrap();
        let out = instrument(&wasm).unwrap_or_else(|e| panic!("{src}: {e}"));
        wasmparser::validate(&out.wasm).unwrap_or_else(|e| panic!("{src}: {e}"));
        let defined_globals = usize::from(src.contains("(global"));
        assert_eq!(out.counter_global as usize, defined_globals, "{src}");
        // The export resolves to the counter: a mutable i64 (instantiable without the import only if none).
        if !src.contains("import") {
            let run = Run::new(&out.wasm);
            let start_cost = if src.contains("(start") { ENTRY + 1 } else { 0 };
            assert_eq!(run.counter(), start_cost, "{src}: counted the start function only");
        }
    }
    // Malformed input is an error, not a panic.
    assert!(instrument(b"\0asm\x01\0\0\0\x01\xff").is_err());
    assert!(instrument(b"not wasm").is_err());
}

// ---------------------------------------------------------------------------------------------------------------
// On the devnet

/// An update that sets a global (so a rollback is visible), spins `$n` times, and replies.
const SPIN: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (global $touched (mut i32) (i32.const 0))
  (func (export "canister_update spin") (local $i i32)
    i32.const 1
    global.set $touched
    i32.const 1000
    local.set $i
    (loop $l
      local.get $i
      i32.const 1
      i32.sub
      local.tee $i
      br_if $l)
    call $reply))
"#;

/// SPIN's IC count: wasm instructions by hand, plus the devnet's System API charge for `msg_reply`.
const SPIN_COUNT: u64 = (ENTRY + CONST + 2 + CONST + LOCAL)
    + 1000 * (LOCAL + CONST + ARITH + LOCAL + BRANCH)
    + CALL
    + opml_devnet::exec::SYSTEM_API_BASE_COST;

fn devnet(update_instructions: u64) -> Devnet {
    Devnet::start(DevnetConfig {
        bind: None,
        seed: Some([7; 32]),
        time: TimeMode::Manual { start_nanos: 1_700_000_000_000_000_000 },
        limits: Limits { update_instructions, ..Limits::default() },
        ..DevnetConfig::default()
    })
    .unwrap()
}

#[test]
fn devnet_records_the_ic_count_and_the_fuel() {
    let devnet = devnet(Limits::default().update_instructions);
    let id = devnet.install_canister(&wat::parse_str(SPIN).unwrap(), vec![], vec![]).unwrap();
    devnet.update_call(Principal::anonymous(), id, "spin", vec![]).unwrap();
    let stats = &devnet.instruction_counts(id)["spin"];
    assert_eq!(stats.last_instructions, SPIN_COUNT);
    // Fuel is what wasmi charged for the instrumented module, counting code included.
    assert!(stats.last_fuel > 1000, "at least one unit per loop iteration: {}", stats.last_fuel);
    eprintln!("spin: IC count {SPIN_COUNT}, fuel {}", stats.last_fuel);
}

/// An update that sets a global (so a rollback is visible), fills 1 MB of memory, and replies: the IC counts the
/// fill's size, wasmi charges one unit of fuel per many bytes.
const FILL: &str = r#"
(module
  (import "ic0" "msg_reply" (func $reply))
  (memory 17)
  (global $touched (mut i32) (i32.const 0))
  (func (export "canister_update fill")
    i32.const 1
    global.set $touched
    i32.const 0
    i32.const 7
    i32.const 1000000
    memory.fill
    call $reply))
"#;

/// FILL's IC count by hand: one run, the fill's size, and the System API charge for `msg_reply`.
const FILL_COUNT: u64 =
    ENTRY + CONST + 2 + 3 * CONST + BULK + 1_000_000 + CALL + opml_devnet::exec::SYSTEM_API_BASE_COST;

#[test]
fn over_the_limit_by_ic_count_but_not_by_fuel_traps_and_changes_nothing() {
    // Fuel of the same call, measured with room to spare.
    let fuel = {
        let devnet = devnet(Limits::default().update_instructions);
        let id = devnet.install_canister(&wat::parse_str(FILL).unwrap(), vec![], vec![]).unwrap();
        devnet.update_call(Principal::anonymous(), id, "fill", vec![]).unwrap();
        assert_eq!(devnet.instruction_counts(id)["fill"].last_instructions, FILL_COUNT);
        devnet.instruction_counts(id)["fill"].last_fuel
    };
    let limit = FILL_COUNT - 1;
    assert!(fuel < limit, "the test needs fuel ({fuel}) under the limit ({limit})");

    let devnet = devnet(limit);
    let id = devnet.install_canister(&wat::parse_str(FILL).unwrap(), vec![], vec![]).unwrap();
    let before = devnet.state_digest(id).unwrap();
    let e = devnet.update_call(Principal::anonymous(), id, "fill", vec![]).unwrap_err();
    assert_eq!(e.error_code, "IC0522", "{e}");
    assert!(e.message.contains(&format!("{limit} instructions")), "{e}");
    assert_eq!(devnet.state_digest(id).unwrap(), before, "the trapped update changed nothing");

    // At exactly its count the same update runs, and its change (the global) shows in the digest.
    devnet.set_limits(Limits { update_instructions: FILL_COUNT, ..Limits::default() });
    devnet.update_call(Principal::anonymous(), id, "fill", vec![]).unwrap();
    assert_ne!(devnet.state_digest(id).unwrap(), before);
    assert_eq!(devnet.instruction_counts(id)["fill"].last_instructions, FILL_COUNT);
}

#[test]
fn performance_counter_reads_the_ic_count() {
    // Reads performance_counter(0) after a fixed prefix and replies with it as 8 bytes.
    let src = r#"
    (module
      (import "ic0" "performance_counter" (func $pc (param i32) (result i64)))
      (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
      (import "ic0" "msg_reply" (func $reply))
      (memory 1)
      (func (export "canister_update pc")
        i32.const 0
        i32.const 0
        call $pc
        i64.store
        i32.const 0
        i32.const 8
        call $append
        call $reply))
    "#;
    let devnet = devnet(Limits::default().update_instructions);
    let id = devnet.install_canister(&wat::parse_str(src).unwrap(), vec![], vec![]).unwrap();
    let out = devnet.update_call(Principal::anonymous(), id, "pc", vec![]).unwrap();
    let seen = u64::from_le_bytes(out[..8].try_into().unwrap());
    // The whole body is one run (no branches), counted on entry: all of it, plus performance_counter's own charge.
    let body = ENTRY + 2 * CONST + CALL + 1 + 2 * CONST + CALL + CALL;
    let base = opml_devnet::exec::SYSTEM_API_BASE_COST;
    assert_eq!(seen, body + base);
    let total = devnet.instruction_counts(id)["pc"].last_instructions;
    assert_eq!(total, body + base + (base + 8) + base, "performance_counter, append (8 bytes), reply");
}

#[test]
fn the_module_stops_itself_at_its_limit() {
    let mut run = Run::new(&instrument(&programs()).unwrap().wasm);
    let limit = run.instance.get_global(&run.store, opml_devnet::metering::LIMIT_EXPORT).expect("limit export");
    limit.set(&mut run.store, Val::I64(100)).unwrap();
    // 9 iterations fit (2 + 10 * 9 = 92), 1000 do not: the check at the loop head traps once the count passes 100.
    assert_eq!(run.cost("loop", &[Val::I32(9)]), 92);
    run.reset();
    let e = run.call("loop", &[Val::I32(1000)]).unwrap_err();
    assert!(e.contains("unreachable"), "{e}");
    let count = run.counter();
    assert!(count > 100 && count <= 100 + 10, "stopped within one iteration of the limit: {count}");
}

#[test]
fn a_loop_without_system_api_calls_stops_at_the_limit_not_at_the_fuel_guard() {
    let src = r#"(module (func (export "canister_update forever") (loop $l (br $l))))"#;
    let limit = 1_000_000;
    let devnet = devnet(limit);
    let id = devnet.install_canister(&wat::parse_str(src).unwrap(), vec![], vec![]).unwrap();
    let before = devnet.state_digest(id).unwrap();
    let e = devnet.update_call(Principal::anonymous(), id, "forever", vec![]).unwrap_err();
    assert_eq!(e.error_code, "IC0522", "{e}");
    let stats = &devnet.instruction_counts(id)["forever"];
    assert_eq!(stats.last_instructions, limit);
    assert!(
        stats.last_fuel < limit * opml_devnet::exec::FUEL_GUARD_FACTOR / 4,
        "the module's check stopped it ({} fuel), not the guard",
        stats.last_fuel
    );
    assert_eq!(devnet.state_digest(id).unwrap(), before);
}
