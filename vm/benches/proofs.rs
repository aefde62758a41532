//! One-step proofs on a compute-heavy guest: proof sizes, the verifier's instruction count, prove_step time, and
//! the cost of the state root after one step.
//!
//! `cargo bench -p opml-vm --bench proofs`
//!
//! Before criterion's own timings, a summary is printed once to stderr (for docs/benchmarks.md):
//!
//! - Every step of `fib(FIB_N)` (to completion) and of the first `MATMUL_STEPS` / `DOT_STEPS` steps of
//!   `matmul_f32` / `dot_i8` (`opml_guests::BENCH_KERNELS`) is proven with `prove_step`; each proof is verified
//!   by the **wasm32 build of the verifier** (`opml_guests::VERIFIER_HARNESS`, the `no_std` verifier as the
//!   canister links it) in wasmi with fuel metering, and its post-root checked against the stepper's root. Proof
//!   sizes (encoded bytes) and verifier fuel are reported as max, p99 and mean, with the instruction kinds that
//!   reach the maxima. wasmi fuel approximates wasm instructions executed (1 per operator except `nop`, `drop`,
//!   `block`, `loop`, `end`, `else`, `return`, `unreachable`, which are free; bulk memory operations 1 per 64
//!   bytes) and so approximates the IC's instruction count, which weighs operators slightly differently.
//!   Targets (issue): max proof < 256 KiB, mean far smaller; max verifier cost < 50M instructions.
//! - `prove_step` time per step (same runs), and `StateHasher::root` right after a single step: on the kernel
//!   runs, and on a machine whose memory of 64 (then 1024) wasm pages is fully populated, stepping a loop that
//!   writes one word per iteration (steps that write memory and steps that do not are reported apart).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use opml_guests::{BENCH_KERNELS, VERIFIER_HARNESS};
use opml_vm::instr::Op;
use opml_vm::program::{ProgramCommitment, ProgramIndex};
use opml_vm::{Extern, Hash, Limits, Machine, Module, NoHost, StateHasher, Status, Value, prove_step, verify_step};

/// `fib(FIB_N)` is proven to completion.
const FIB_N: i32 = 15;
/// Steps proven of each window of `matmul_f32` (~11M steps per call) and `dot_i8` (~1.9M per call).
const WINDOW: usize = 60_000;
/// Where the `matmul_f32` window in its inner loop starts (input generation ends before ~0.3M).
const MATMUL_INNER: u64 = 5_000_000;

/// The verifier harness in wasmi with fuel metering, its input buffers placed once.
struct WasmVerifier {
    store: wasmi::Store<()>,
    memory: wasmi::Memory,
    verify: wasmi::TypedFunc<(i32, i32, i32, i32, i32), i32>,
    pre: usize,
    prog: usize,
    proof: usize,
    out: usize,
}

impl WasmVerifier {
    fn new() -> Self {
        let mut config = wasmi::Config::default();
        // Fuel counts executed instructions only: translate everything up front.
        config.consume_fuel(true).compilation_mode(wasmi::CompilationMode::Eager);
        let engine = wasmi::Engine::new(&config);
        let module = wasmi::Module::new(&engine, VERIFIER_HARNESS).expect("compile verifier-harness");
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
        let max = opml_vm::proof::MAX_PROOF_BYTES;
        let (pre, prog, out, proof) = (place(32), place(ProgramCommitment::BYTES), place(32), place(max));
        WasmVerifier { store, memory, verify, pre, prog, proof, out }
    }

    fn set_program(&mut self, prog: &ProgramCommitment) {
        self.memory.write(&mut self.store, self.prog, &prog.encode()).unwrap();
    }

    /// Verifies in wasm: the post-root (or the harness's error code) and the fuel the call consumed.
    fn verify(&mut self, pre: &Hash, proof: &[u8]) -> (Result<Hash, i32>, u64) {
        self.memory.write(&mut self.store, self.pre, pre).unwrap();
        self.memory.write(&mut self.store, self.proof, proof).unwrap();
        let before = self.store.get_fuel().unwrap();
        let args = (self.pre as i32, self.proof as i32, proof.len() as i32, self.prog as i32, self.out as i32);
        let code = self.verify.call(&mut self.store, args).expect("verify trapped");
        let fuel = before - self.store.get_fuel().unwrap();
        if code != 0 {
            return (Err(code), fuel);
        }
        let mut post = [0u8; 32];
        self.memory.read(&self.store, self.out, &mut post).unwrap();
        (Ok(post), fuel)
    }
}

/// An instruction kind for the report: the op's variant, with the numeric/simd operator or the access width.
fn op_label(encoded: &[u8; opml_vm::instr::OP_BYTES]) -> String {
    let Some(op) = Op::decode(encoded) else { return "(undecodable)".into() };
    let debug = format!("{op:?}");
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    let name = ident(&debug);
    if let Some(rest) = debug.strip_prefix(&format!("{name}(")).filter(|_| name == "Num" || name == "Simd") {
        return format!("{name}({})", ident(rest));
    }
    match debug.find("kind: ") {
        Some(at) => format!("{name}.{}", ident(&debug[at + 6..])),
        None => name,
    }
}

/// Per-kind maxima.
#[derive(Default)]
struct Kind {
    count: u64,
    max_size: usize,
    max_fuel: u64,
    sum_fuel: u64,
    prove: Duration,
}

/// Figures of one or more runs.
#[derive(Default)]
struct Stats {
    sizes: Vec<usize>,
    fuel: Vec<u64>,
    prove: Vec<Duration>,
    root: Vec<Duration>,
    verify: Duration,
    kinds: BTreeMap<String, Kind>,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        self.sizes.extend(&other.sizes);
        self.fuel.extend(&other.fuel);
        self.prove.extend(&other.prove);
        self.root.extend(&other.root);
        self.verify += other.verify;
        for (k, v) in &other.kinds {
            let e = self.kinds.entry(k.clone()).or_default();
            e.count += v.count;
            e.max_size = e.max_size.max(v.max_size);
            e.max_fuel = e.max_fuel.max(v.max_fuel);
            e.sum_fuel += v.sum_fuel;
            e.prove += v.prove;
        }
    }
}

/// (max, p99, mean) of `v`.
fn dist(v: &[u64]) -> (u64, u64, f64) {
    let mut s = v.to_vec();
    s.sort();
    let p99 = s[(s.len() * 99).div_ceil(100).saturating_sub(1)];
    let mean = s.iter().map(|&x| x as f64).sum::<f64>() / s.len() as f64;
    (s[s.len() - 1], p99, mean)
}

/// (max, p99, mean) of `v`, in µs.
fn dist_us(v: &[Duration]) -> (f64, f64, f64) {
    let (max, p99, mean) = dist(&v.iter().map(|d| d.as_nanos() as u64).collect::<Vec<_>>());
    (max as f64 / 1e3, p99 as f64 / 1e3, mean / 1e3)
}

/// A machine running `func` of the bench-kernels guest, with its program index.
fn kernel(func: &str, args: &[Value]) -> (Machine, ProgramIndex) {
    let module = Module::new(BENCH_KERNELS).expect("compile bench-kernels");
    let mut m = Machine::new(Limits::default());
    let inst = m.instantiate(&module, &[], &mut NoHost).expect("instantiate bench-kernels");
    let Some(Extern::Func(f)) = m.export(inst, func) else { panic!("no export {func}") };
    m.invoke(f, args).expect("invoke");
    let index = m.program_index();
    (m, index)
}

/// After `skip` unproven steps, proves every step of `func` (at most `max_steps`, then the final state if it
/// ended) and verifies each proof in wasm against the stepper's root. Returns the figures and the number of
/// instruction steps proven.
fn measure(wasm: &mut WasmVerifier, func: &str, args: &[Value], skip: u64, max_steps: usize) -> (Stats, usize) {
    let (mut m, index) = kernel(func, args);
    if skip > 0 {
        assert_eq!(m.run(&mut NoHost, skip).expect("run"), Status::Running, "{func} ends before step {skip}");
    }
    wasm.set_program(&index.commitment);
    let mut hasher = StateHasher::new();
    let mut stats = Stats::default();
    let mut steps = 0;
    let mut pre = hasher.root(&m);
    loop {
        let running = m.status() == Status::Running;
        if running && steps == max_steps {
            break;
        }
        let t = Instant::now();
        let proof = prove_step(&m, &index, &mut hasher).expect("prove_step");
        let prove = t.elapsed();
        stats.prove.push(prove);
        let bytes = proof.encode();
        let post = if running {
            m.step(&mut NoHost).expect("step");
            let t = Instant::now();
            let root = hasher.root(&m);
            stats.root.push(t.elapsed());
            root
        } else {
            pre
        };
        let t = Instant::now();
        let (verified, fuel) = wasm.verify(&pre, &bytes);
        stats.verify += t.elapsed();
        assert_eq!(verified, Ok(post), "{func} step {steps}: wasm verifier vs stepper");
        let label = if running { op_label(&proof.op) } else { "(final state)".into() };
        let kind = stats.kinds.entry(label).or_default();
        kind.count += 1;
        kind.max_size = kind.max_size.max(bytes.len());
        kind.max_fuel = kind.max_fuel.max(fuel);
        kind.sum_fuel += fuel;
        kind.prove += prove;
        stats.sizes.push(bytes.len());
        stats.fuel.push(fuel);
        if !running {
            break;
        }
        pre = post;
        steps += 1;
    }
    (stats, steps)
}

fn kib(b: f64) -> String {
    if b >= 1024.0 { format!("{:.1} KiB", b / 1024.0) } else { format!("{b:.0} B") }
}

fn row(name: &str, steps: usize, s: &Stats) {
    let (smax, sp99, smean) = dist(&s.sizes.iter().map(|&x| x as u64).collect::<Vec<_>>());
    let (fmax, fp99, fmean) = dist(&s.fuel);
    let (_, pp99, pmean) = dist_us(&s.prove);
    let (_, _, rmean) = dist_us(&s.root);
    let vmean = s.verify.as_secs_f64() * 1e6 / s.sizes.len() as f64;
    eprintln!(
        "| {name} | {steps} | {} | {} | {} | {:.2} M | {:.0} k | {:.0} k | {pmean:.0} µs | {pp99:.0} µs | \
         {rmean:.0} µs | {vmean:.0} µs |",
        kib(smax as f64),
        kib(sp99 as f64),
        kib(smean),
        fmax as f64 / 1e6,
        fp99 as f64 / 1e3,
        fmean / 1e3,
    );
}

/// A module with `pages` wasm pages: `touch` writes a byte in every 4 KiB chunk (so the whole memory is
/// populated and tracked), `spin` loops forever adding 1 to a word, moving 4100 bytes on each iteration.
fn spin_module(pages: u32) -> String {
    format!(
        r#"(module (memory {pages} {pages})
          (func (export "touch") (local $a i32)
            (block $done (loop $next
              (br_if $done (i32.ge_u (local.get $a) (i32.const {bytes})))
              (i32.store8 (local.get $a) (i32.const 1))
              (local.set $a (i32.add (local.get $a) (i32.const 4096)))
              (br $next))))
          (func (export "spin") (local $a i32)
            (loop $next
              (i32.store (local.get $a) (i32.add (i32.load (local.get $a)) (i32.const 1)))
              (local.set $a (i32.rem_u (i32.add (local.get $a) (i32.const 4100)) (i32.const {bytes})))
              (br $next))))"#,
        bytes = pages * 65536 - 4
    )
}

/// A machine with `pages` wasm pages all populated, spinning, and a hasher that has seen it.
fn spinning(pages: u32) -> (Machine, StateHasher) {
    let module = Module::new(&wat::parse_str(spin_module(pages)).unwrap()).unwrap();
    let mut m = Machine::new(Limits::default());
    let inst = m.instantiate(&module, &[], &mut NoHost).unwrap();
    for (name, run) in [("touch", true), ("spin", false)] {
        let Some(Extern::Func(f)) = m.export(inst, name) else { panic!() };
        m.invoke(f, &[]).unwrap();
        if run {
            assert_eq!(m.run(&mut NoHost, u64::MAX).unwrap(), Status::Returned);
        }
    }
    let mut hasher = StateHasher::new();
    hasher.root(&m);
    (m, hasher)
}

/// Root after one step on a spinning machine: (mean µs after a memory write, mean µs otherwise, from scratch).
fn root_after_step(pages: u32, steps: usize) -> (f64, f64, f64, f64) {
    let (mut m, mut hasher) = spinning(pages);
    let (mut store, mut other, mut step_time) = (Vec::new(), Vec::new(), Duration::ZERO);
    for _ in 0..steps {
        let writes = matches!(m.next_op(), Some(Op::Store { .. }));
        let t = Instant::now();
        m.step(&mut NoHost).unwrap();
        step_time += t.elapsed();
        let t = Instant::now();
        black_box(hasher.root(&m));
        if writes { store.push(t.elapsed()) } else { other.push(t.elapsed()) }
    }
    let t = Instant::now();
    let n = 5;
    for _ in 0..n {
        black_box(StateHasher::new().root(&m));
    }
    let scratch = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let mean = |v: &[Duration]| v.iter().map(|d| d.as_secs_f64()).sum::<f64>() * 1e6 / v.len() as f64;
    (mean(&store), mean(&other), step_time.as_secs_f64() * 1e6 / steps as f64, scratch)
}

/// Steps at the per-step bounds of the semantics, outside the kernels: bulk operations at their per-step
/// maximum (1024 bytes straddling pages, 16 table elements), a call with the most parameters wasm allows (1000),
/// and branches that drop many operands. Each case: (label, wat, export, unproven steps first).
fn edge_cases() -> Vec<(String, String, &'static str, u64)> {
    let consts = |n: usize| "(i32.const 1) ".repeat(n);
    let mut cases = vec![
        (
            "`memory.fill/copy/init`, 1024 bytes per step, straddling pages".to_string(),
            r#"(module (memory 4) (data $d "0123456789012345678901234567890123456789")
              (func (export "run")
                (memory.fill (i32.const 4000) (i32.const 7) (i32.const 3000))
                (memory.copy (i32.const 12000) (i32.const 4090) (i32.const 3000))
                (memory.copy (i32.const 4090) (i32.const 12000) (i32.const 3000))
                (memory.init $d (i32.const 8190) (i32.const 0) (i32.const 30))))"#
                .to_string(),
            "run",
            0,
        ),
        (
            "`table.fill/copy/init`, 16 elements per step, table of 4096".to_string(),
            format!(
                r#"(module (table $t 4096 funcref) (elem $e func {g}) (func $g)
                  (func (export "run")
                    (table.fill $t (i32.const 0) (ref.func $g) (i32.const 40))
                    (table.copy (i32.const 1000) (i32.const 3) (i32.const 40))
                    (table.copy (i32.const 3000) (i32.const 1000) (i32.const 40))
                    (table.init $t $e (i32.const 2047) (i32.const 0) (i32.const 20))))"#,
                g = "$g ".repeat(20)
            ),
            "run",
            0,
        ),
        (
            "`call` with 1000 parameters".to_string(),
            format!(
                r#"(module (func $f (param {p}) (result i32) (local.get 999))
                  (func (export "run") (result i32) (call $f {args})))"#,
                p = "i32 ".repeat(1000),
                args = consts(1000)
            ),
            "run",
            1000,
        ),
    ];
    for n in [1000, 4000, 8000] {
        cases.push((
            format!("`br` dropping {n} operands"),
            format!(
                r#"(module (func (export "run") (result i32) (block (result i32) {} (br 0 (i32.const 7)))))"#,
                consts(n)
            ),
            "run",
            n as u64 + 1,
        ));
    }
    cases
}

/// Proves and verifies (in wasm) the steps of an edge case; returns the costliest step: kind, proof bytes, fuel.
fn edge(wasm: &mut WasmVerifier, wat: &str, func: &str, skip: u64) -> (String, usize, u64, usize) {
    let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
    let mut m = Machine::new(Limits::default());
    let inst = m.instantiate(&module, &[], &mut NoHost).unwrap();
    let Some(Extern::Func(f)) = m.export(inst, func) else { panic!() };
    m.invoke(f, &[]).unwrap();
    m.run(&mut NoHost, skip).unwrap();
    let index = m.program_index();
    wasm.set_program(&index.commitment);
    let mut hasher = StateHasher::new();
    let (mut worst, mut steps) = ((String::new(), 0, 0), 0);
    while m.status() == Status::Running {
        let pre = hasher.root(&m);
        let proof = prove_step(&m, &index, &mut hasher).unwrap();
        let bytes = proof.encode();
        m.step(&mut NoHost).unwrap();
        let (post, fuel) = wasm.verify(&pre, &bytes);
        assert_eq!(post, Ok(hasher.root(&m)), "{func}: wasm verifier vs stepper");
        if fuel > worst.2 {
            worst = (op_label(&proof.op), bytes.len(), fuel);
        }
        steps += 1;
    }
    (worst.0, worst.1, worst.2, steps)
}

fn summary() {
    let start = Instant::now();
    let mut wasm = WasmVerifier::new();
    let mut all = Stats::default();
    eprintln!();
    eprintln!("one-step proofs on bench-kernels, every step proven and verified by the wasm32 verifier in wasmi:");
    eprintln!(
        "| run | steps | proof max | proof p99 | proof mean | verifier max | verifier p99 | verifier mean | \
         prove_step mean | prove_step p99 | root after step, mean | wasmi verify time, mean |"
    );
    eprintln!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    // dot_i8 spends most of its steps generating its inputs; its dot-product loop is the last stretch.
    let (mut m, _) = kernel("dot_i8", &[]);
    assert_eq!(m.run(&mut NoHost, u64::MAX).unwrap(), Status::Returned);
    let dot_total = m.steps();
    let w = WINDOW as u64;
    let runs = [
        (format!("`fib({FIB_N})`, complete"), "fib", vec![Value::I32(FIB_N)], 0, usize::MAX),
        (format!("`matmul_f32` steps 0..{w} (inputs)"), "matmul_f32", vec![], 0, WINDOW),
        (format!("`matmul_f32` steps {MATMUL_INNER}..+{w} (f32x4 loop)"), "matmul_f32", vec![], MATMUL_INNER, WINDOW),
        (format!("`dot_i8` steps 0..{w} (inputs)"), "dot_i8", vec![], 0, WINDOW),
        (format!("`dot_i8` last {w} steps of {dot_total} (dot loop, return)"), "dot_i8", vec![], dot_total - w, WINDOW),
    ];
    let mut total = 0;
    for (label, func, args, skip, max_steps) in runs {
        let (stats, steps) = measure(&mut wasm, func, &args, skip, max_steps);
        row(&label, steps, &stats);
        all.add(&stats);
        total += steps;
    }
    row("all", total, &all);
    eprintln!("(verifier: wasmi fuel ≈ wasm instructions; one proof per step plus the final state of fib)");
    eprintln!();

    let mut kinds: Vec<_> = all.kinds.iter().collect();
    eprintln!("instruction kinds with the largest verifier cost (max fuel), with their largest proof:");
    eprintln!("| kind | steps | verifier max | verifier mean | proof max | prove_step mean |");
    eprintln!("|---|---:|---:|---:|---:|---:|");
    kinds.sort_by_key(|(_, k)| std::cmp::Reverse(k.max_fuel));
    for (name, k) in kinds.iter().take(10) {
        eprintln!(
            "| `{name}` | {} | {:.0} k | {:.0} k | {} | {:.0} µs |",
            k.count,
            k.max_fuel as f64 / 1e3,
            k.sum_fuel as f64 / k.count as f64 / 1e3,
            kib(k.max_size as f64),
            k.prove.as_secs_f64() * 1e6 / k.count as f64,
        );
    }
    let cheapest = kinds.iter().min_by_key(|(_, k)| k.max_fuel).unwrap();
    eprintln!(
        "(cheapest kind: `{}`, {:.0} k max; {} kinds seen)",
        cheapest.0,
        cheapest.1.max_fuel as f64 / 1e3,
        kinds.len()
    );
    eprintln!();

    eprintln!("steps at the per-step bounds (costliest step of each case):");
    eprintln!("| case | steps proven | costliest step | its proof | its verifier cost |");
    eprintln!("|---|---:|---|---:|---:|");
    for (label, wat, func, skip) in edge_cases() {
        let (kind, size, fuel, steps) = edge(&mut wasm, &wat, func, skip);
        eprintln!("| {label} | {steps} | `{kind}` | {} | {:.2} M |", kib(size as f64), fuel as f64 / 1e6);
    }
    eprintln!();

    eprintln!("StateHasher::root after one step, memory fully populated (a loop writing one word per iteration):");
    eprintln!("| memory | root after a store step | root after another step | the step itself | root from scratch |");
    eprintln!("|---|---:|---:|---:|---:|");
    for pages in [64, 1024] {
        let (store, other, step, scratch) = root_after_step(pages, 20_000);
        eprintln!(
            "| {pages} pages ({} MiB, {} leaves) | {store:.1} µs | {other:.1} µs | {step:.2} µs | {:.1} ms |",
            pages / 16,
            pages * 16,
            scratch / 1e3
        );
    }
    eprintln!("(summary took {:.0} s)", start.elapsed().as_secs_f64());
    eprintln!();
}

fn bench(c: &mut Criterion) {
    summary();
    let mut group = c.benchmark_group("proofs");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));

    // One representative state: dot_i8 in its inner loop, at a step that reads memory.
    let (mut m, index) = kernel("dot_i8", &[]);
    m.run(&mut NoHost, 20_000).unwrap();
    while !matches!(m.next_op(), Some(Op::Load { .. })) {
        m.step(&mut NoHost).unwrap();
    }
    let mut hasher = StateHasher::new();
    let pre = hasher.root(&m);
    let proof = prove_step(&m, &index, &mut hasher).unwrap().encode();
    let mut wasm = WasmVerifier::new();
    wasm.set_program(&index.commitment);
    group.bench_function("prove_step/dot_i8-load", |b| b.iter(|| prove_step(&m, &index, &mut hasher).unwrap()));
    group.bench_function("verify_native/dot_i8-load", |b| {
        b.iter(|| verify_step(&pre, black_box(&proof), &index.commitment).unwrap())
    });
    group.bench_function("verify_wasm/dot_i8-load", |b| b.iter(|| wasm.verify(&pre, black_box(&proof)).0.unwrap()));
    for pages in [64, 1024] {
        let (mut m, mut hasher) = spinning(pages);
        group.bench_function(format!("step_and_root/{pages}-pages"), |b| {
            b.iter(|| {
                m.step(&mut NoHost).unwrap();
                hasher.root(&m)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
