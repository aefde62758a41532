//! Three paths agree on every proven step: (a) the native one-step verifier, (b) the same verifier compiled to
//! wasm32 (the `verifier-harness` guest: `opml-vm` without `std`, as the verifier canister links it) executed in
//! wasmi, and (c) the stepping machine's own state root after the step. On corrupted proofs (a) and (b) reject
//! alike, with the same error kind.
//!
//! Proofs are real, every step proven with `prove_step`: the spec-like programs of `tests/proofs.rs` run to
//! completion, steps at the per-step bounds (bulk operations, a 1000-parameter call, a branch dropping 1000
//! operands), and prefixes and inner-loop windows of the `bench-kernels` guest. Every wasm verification must stay
//! under the one-step budget (`MAX_VERIFIER_FUEL`).

use opml_guests::{BENCH_KERNELS, VERIFIER_HARNESS};
use opml_vm::instr::Op;
use opml_vm::program::ProgramCommitment;
use opml_vm::proof::{MAX_PROOF_BYTES, OneStepProof};
use opml_vm::{Extern, Hash, Limits, Machine, Module, NoHost, ProofError, StateHasher, Status, Value};
use opml_vm::{prove_step, verify_step};

/// Fuel (≈ wasm instructions) one verification may cost: the design's one-step budget (50M instructions).
const MAX_VERIFIER_FUEL: u64 = 50_000_000;

/// The verifier harness instantiated in wasmi, with its input buffers placed once.
struct WasmVerifier {
    store: wasmi::Store<()>,
    memory: wasmi::Memory,
    verify: wasmi::TypedFunc<(i32, i32, i32, i32, i32), i32>,
    pre: usize,
    prog: usize,
    proof: usize,
    out: usize,
    /// Fuel the last call consumed.
    last_fuel: u64,
    /// The costliest valid step seen: fuel, and the instruction.
    max: (u64, String),
}

/// Room for one proof: the largest accepted one plus a byte, so "too large" is exercised too.
const PROOF_BUFFER: usize = MAX_PROOF_BYTES + 1;

impl WasmVerifier {
    fn new() -> Self {
        let mut config = wasmi::Config::default();
        // Fuel counts executed instructions only: translate everything up front.
        config.consume_fuel(true).compilation_mode(wasmi::CompilationMode::Eager);
        let engine = wasmi::Engine::new(&config);
        let module = wasmi::Module::new(&engine, VERIFIER_HARNESS).expect("compile verifier-harness");
        assert_eq!(module.imports().len(), 0, "verifier-harness has no imports");
        let mut store = wasmi::Store::new(&engine, ());
        store.set_fuel(u64::MAX).unwrap();
        let instance = wasmi::Linker::<()>::new(&engine)
            .instantiate_and_start(&mut store, &module)
            .expect("instantiate verifier-harness");
        let memory = instance.get_memory(&store, "memory").expect("memory export");
        let alloc = instance.get_typed_func::<i32, i32>(&store, "alloc").unwrap();
        let verify = instance.get_typed_func::<(i32, i32, i32, i32, i32), i32>(&store, "verify").unwrap();
        let mut place = |len: usize| {
            let p = alloc.call(&mut store, len as i32).unwrap();
            assert!(p > 0, "alloc({len}) failed");
            p as usize
        };
        let (pre, prog, out, proof) = (place(32), place(ProgramCommitment::BYTES), place(32), place(PROOF_BUFFER));
        WasmVerifier { store, memory, verify, pre, prog, proof, out, last_fuel: 0, max: (0, String::new()) }
    }

    fn set_program(&mut self, prog: &ProgramCommitment) {
        self.memory.write(&mut self.store, self.prog, &prog.encode()).unwrap();
    }

    /// `verify_step` in wasm: the post-root, or the harness's error code.
    fn verify(&mut self, pre: &Hash, proof: &[u8]) -> Result<Hash, i32> {
        assert!(proof.len() <= PROOF_BUFFER);
        self.memory.write(&mut self.store, self.pre, pre).unwrap();
        self.memory.write(&mut self.store, self.proof, proof).unwrap();
        self.memory.write(&mut self.store, self.out, &[0xAA; 32]).unwrap();
        let before = self.store.get_fuel().unwrap();
        let args = (self.pre as i32, self.proof as i32, proof.len() as i32, self.prog as i32, self.out as i32);
        let code = self.verify.call(&mut self.store, args).expect("verify trapped");
        let fuel = before - self.store.get_fuel().unwrap();
        self.last_fuel = fuel;
        assert!(fuel < MAX_VERIFIER_FUEL, "one verification took {fuel} fuel");
        if code != 0 {
            return Err(code);
        }
        let mut post = [0u8; 32];
        self.memory.read(&self.store, self.out, &mut post).unwrap();
        Ok(post)
    }
}

/// The harness's code for each native rejection (guests/programs/verifier-harness, `error_code`).
fn error_code(e: &ProofError) -> i32 {
    match e {
        ProofError::Malformed(_) => 1,
        ProofError::TooLarge(_) => 2,
        ProofError::PreRootMismatch => 3,
        ProofError::BadOpening(_) => 4,
        ProofError::Missing(_) => 5,
        ProofError::Inconsistent(_) => 6,
        ProofError::Unsupported(_) => 7,
    }
}

fn native(pre: &Hash, proof: &[u8], prog: &ProgramCommitment) -> Result<Hash, i32> {
    verify_step(pre, proof, prog).map_err(|e| error_code(&e))
}

/// One proven step: pre-root, proof bytes, the stepper's root after the step.
type Step = (Hash, Vec<u8>, Hash);

/// Runs `func` of `module`: `skip` steps unproven, then at most `max_steps` steps (to completion if it ends
/// first) proving every step, then proves the final state (which steps to itself) if the run ended.
fn prove_run(
    module: &Module,
    func: &str,
    args: &[Value],
    skip: u64,
    max_steps: usize,
) -> (ProgramCommitment, Vec<Step>) {
    let mut m = Machine::new(Limits::default());
    let inst = m.instantiate(module, &[], &mut NoHost).unwrap();
    let Some(Extern::Func(f)) = m.export(inst, func) else { panic!("no export {func}") };
    m.invoke(f, args).unwrap();
    if skip > 0 {
        assert_eq!(m.run(&mut NoHost, skip).unwrap(), Status::Running, "{func} ends before step {skip}");
    }
    let index = m.program_index();
    let mut hasher = StateHasher::new();
    let mut steps = Vec::new();
    while m.status() == Status::Running && steps.len() < max_steps {
        let pre = hasher.root(&m);
        let proof = prove_step(&m, &index, &mut hasher).unwrap().encode();
        m.step(&mut NoHost).unwrap();
        steps.push((pre, proof, hasher.root(&m)));
    }
    if m.status() != Status::Running {
        let root = hasher.root(&m);
        steps.push((root, prove_step(&m, &index, &mut hasher).unwrap().encode(), root));
    }
    (index.commitment, steps)
}

/// A deterministic byte position generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Checks the three paths on every step, and (a) = (b) on corruptions of every `corrupt_every`-th proof.
fn three_way(wasm: &mut WasmVerifier, name: &str, prog: &ProgramCommitment, steps: &[Step], corrupt_every: usize) {
    wasm.set_program(prog);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ steps.len() as u64);
    for (i, (pre, proof, post)) in steps.iter().enumerate() {
        let a = native(pre, proof, prog);
        assert_eq!(a, Ok(*post), "{name} step {i}: native verifier vs stepper root");
        let b = wasm.verify(pre, proof);
        assert_eq!(b, a, "{name} step {i}: wasm verifier vs native verifier");
        if wasm.last_fuel > wasm.max.0 {
            let op = OneStepProof::decode(proof).unwrap().op;
            wasm.max = (wasm.last_fuel, format!("{name} step {i}: {:?}", Op::decode(&op)));
        }
        if i % corrupt_every != 0 {
            continue;
        }
        let mut agree = |what: &str, pre: &Hash, bytes: &[u8]| {
            let a = native(pre, bytes, prog);
            // Soundness is tests/proof_soundness.rs' subject; here: never a wrong root (a final state's proof
            // has bytes the verifier ignores), and the same answer from both builds.
            assert!(a.is_err() || a == Ok(*post), "{name} step {i}: {what} verified to a wrong root");
            assert_eq!(wasm.verify(pre, bytes), a, "{name} step {i}: {what}: wasm and native disagree");
        };
        // Bit flips: in the header and instruction (the first bytes), then anywhere.
        for k in 0..12 {
            let mut bad = proof.clone();
            let at = if k < 4 { rng.next() as usize % proof.len().min(340) } else { rng.next() as usize % proof.len() };
            bad[at] ^= 1 << (rng.next() % 8);
            agree(&format!("bit flip at byte {at}"), pre, &bad);
        }
        agree("truncated", pre, &proof[..proof.len() - 1]);
        agree("trailing byte", pre, &[proof.as_slice(), &[0]].concat());
        let mut other = *pre;
        other[rng.next() as usize % 32] ^= 0x10;
        agree("another pre-root", &other, proof);
    }
    // Whatever the program, a proof over the size limit is rejected the same way by both.
    let huge = vec![1u8; PROOF_BUFFER];
    assert_eq!(native(&steps[0].0, &huge, prog), Err(2));
    assert_eq!(wasm.verify(&steps[0].0, &huge), Err(2));
    // Another program: every running step checks its instruction against the code root.
    let mut other = *prog;
    other.code_root[7] ^= 1;
    wasm.set_program(&other);
    for (i, (pre, proof, post)) in steps.iter().enumerate().step_by(corrupt_every) {
        let a = native(pre, proof, &other);
        if pre != post {
            assert_ne!(a, Ok(*post), "{name} step {i}: accepted under another program");
        }
        assert_eq!(wasm.verify(pre, proof), a, "{name} step {i}: under another program");
    }
}

fn run_wat(wasm: &mut WasmVerifier, wat: &str, func: &str, args: &[Value]) -> usize {
    let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
    let (prog, steps) = prove_run(&module, func, args, 0, usize::MAX);
    three_way(wasm, func, &prog, &steps, 1);
    steps.len()
}

#[test]
fn steps_at_their_bounds() {
    // The costliest steps the semantics allow short of the operand limit (benches/proofs.rs measures them):
    // bulk operations at their per-step maximum, straddling pages / far apart in a big table, a call with the
    // most parameters wasm allows, a branch dropping many operands. All within the verifier budget.
    let mut wasm = WasmVerifier::new();
    let consts = |n: usize| "(i32.const 1) ".repeat(n);
    let cases = [
        (
            r#"(module (memory 4) (data $d "0123456789012345678901234567890123456789")
              (func (export "run")
                (memory.fill (i32.const 4000) (i32.const 7) (i32.const 3000))
                (memory.copy (i32.const 12000) (i32.const 4090) (i32.const 3000))
                (memory.copy (i32.const 4090) (i32.const 12000) (i32.const 3000))
                (memory.init $d (i32.const 8190) (i32.const 0) (i32.const 30))))"#
                .to_string(),
            0,
        ),
        (
            format!(
                r#"(module (table $t 4096 funcref) (elem $e func {g}) (func $g)
                  (func (export "run")
                    (table.fill $t (i32.const 0) (ref.func $g) (i32.const 40))
                    (table.copy (i32.const 1000) (i32.const 3) (i32.const 40))
                    (table.copy (i32.const 3000) (i32.const 1000) (i32.const 40))
                    (table.init $t $e (i32.const 2047) (i32.const 0) (i32.const 20))))"#,
                g = "$g ".repeat(20)
            ),
            0,
        ),
        (
            format!(
                r#"(module (func $f (param {p}) (result i32) (local.get 999))
                  (func (export "run") (result i32) (call $f {args})))"#,
                p = "i32 ".repeat(1000),
                args = consts(1000)
            ),
            1000,
        ),
        (
            format!(
                r#"(module (func (export "run") (result i32) (block (result i32) {} (br 0 (i32.const 7)))))"#,
                consts(1000)
            ),
            1001,
        ),
    ];
    for (i, (wat, skip)) in cases.iter().enumerate() {
        let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
        let (prog, steps) = prove_run(&module, "run", &[], *skip, usize::MAX);
        three_way(&mut wasm, &format!("bounds case {i}"), &prog, &steps, 5);
    }
    eprintln!("steps at their bounds: costliest verification {} fuel ({})", wasm.max.0, wasm.max.1);
}

#[test]
fn harness_is_a_webassembly_2_0_module() {
    // Our own loader validates against exactly WebAssembly 2.0, like the canister's program registration.
    Module::new(VERIFIER_HARNESS).expect("verifier-harness loads in opml-vm");
}

#[test]
fn spec_like_programs() {
    let mut wasm = WasmVerifier::new();
    let fib = r#"(module (func $fib (export "fib") (param i32) (result i64)
        (if (result i64) (i32.lt_s (local.get 0) (i32.const 2))
          (then (i64.extend_i32_s (local.get 0)))
          (else (i64.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                         (call $fib (i32.sub (local.get 0) (i32.const 2))))))))"#;
    assert!(run_wat(&mut wasm, fib, "fib", &[Value::I32(7)]) > 100);

    let memory = r#"(module (memory 1 3) (global $g (mut i64) (i64.const 5))
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
    run_wat(&mut wasm, memory, "run", &[Value::I32(12)]);

    let tables = r#"(module (type $t (func (param i32) (result i32)))
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
    run_wat(&mut wasm, tables, "run", &[]);

    let traps = r#"(module (memory 1)
      (func (export "oob") (result i32) (i32.load (i32.const 65534)))
      (func (export "div") (result i32) (i32.div_u (i32.const 1) (i32.const 0)))
      (func (export "unreachable") (unreachable)))"#;
    for func in ["oob", "div", "unreachable"] {
        run_wat(&mut wasm, traps, func, &[]);
    }
    eprintln!("spec-like programs: costliest verification {} fuel ({})", wasm.max.0, wasm.max.1);
}

fn kernel_machine(module: &Module, func: &str) -> Machine {
    let mut m = Machine::new(Limits::default());
    let inst = m.instantiate(module, &[], &mut NoHost).unwrap();
    let Some(Extern::Func(f)) = m.export(inst, func) else { panic!("no export {func}") };
    m.invoke(f, &[]).unwrap();
    m
}

#[test]
fn bench_kernel_prefixes_and_loops() {
    let module = Module::new(BENCH_KERNELS).unwrap();
    let mut wasm = WasmVerifier::new();
    // fib runs to completion (returns, then its final state steps to itself). The other kernels first generate
    // their inputs (integer hashing, v128 stores), then compute: prefixes, and windows of their compute loops
    // (f32x4 / i8x16 loads and arithmetic; dot_i8's ends with its return).
    let mut m = kernel_machine(&module, "dot_i8");
    assert_eq!(m.run(&mut NoHost, u64::MAX).unwrap(), Status::Returned);
    let dot_total = m.steps();
    for (func, args, skip, max_steps) in [
        ("fib", vec![Value::I32(6)], 0, usize::MAX),
        ("matmul_f32", vec![], 0, 2_000),
        ("matmul_f32", vec![], 5_000_000, 1_500),
        ("dot_i8", vec![], 0, 2_000),
        ("dot_i8", vec![], dot_total - 1_500, 1_500),
    ] {
        let (prog, steps) = prove_run(&module, func, &args, skip, max_steps);
        assert!(steps.len() > 100, "{func}: {} steps", steps.len());
        three_way(&mut wasm, &format!("{func}@{skip}"), &prog, &steps, 97);
    }
    eprintln!("bench-kernels: costliest verification {} fuel ({})", wasm.max.0, wasm.max.1);
}
