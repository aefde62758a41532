//! Stepper vs wasmi on the `bench-kernels` guest (`opml_guests::BENCH_KERNELS`).
//!
//! `cargo bench -p opml-vm --bench stepper`
//!
//! criterion times each kernel call in wasmi (the fast engine) and in our stepping machine. Before that, a
//! summary is printed once to stderr (for docs/benchmarks.md): for each kernel, the steps (instructions) the
//! stepper executes per call, the stepper's steps per second, and the time ratio stepper / wasmi measured in one
//! run by alternating the two engines call by call (medians), which holds up better on a noisy shared machine
//! than comparing two separately measured figures. Target: stepper at least 1/5 of wasmi's speed (ratio <= 5).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use opml_guests::{BENCH_KERNELS, bench_kernels};
use opml_vm::{Extern, Limits, Machine, NoHost, Status, Value};

/// The kernels measured: export name, parameters, expected result.
fn kernels() -> Vec<(&'static str, Vec<Value>, Value)> {
    let fib = bench_kernels::FIB.iter().find(|(n, _)| *n == 25).expect("fib(25) expected value");
    vec![
        ("matmul_f32", vec![], Value::F32(bench_kernels::MATMUL_F32_BITS)),
        ("dot_i8", vec![], Value::I32(bench_kernels::DOT_I8)),
        // Call-heavy rather than loop-heavy: about 250k calls.
        ("fib", vec![Value::I32(fib.0)], Value::I64(fib.1)),
    ]
}

/// One instance of the guest in our stepping machine.
struct Stepper {
    machine: Machine,
    instance: u32,
}

impl Stepper {
    fn new() -> Self {
        let module = opml_vm::Module::new(BENCH_KERNELS).expect("stepper: compile bench-kernels");
        let mut machine = Machine::new(Limits::default());
        let instance = machine.instantiate(&module, &[], &mut NoHost).expect("stepper: instantiate bench-kernels");
        Stepper { machine, instance }
    }

    /// Calls `name` to completion; returns its result and the number of steps it took.
    fn call(&mut self, name: &str, args: &[Value]) -> (Value, u64) {
        let Some(Extern::Func(f)) = self.machine.export(self.instance, name) else {
            panic!("stepper: no exported function {name}")
        };
        let before = self.machine.steps();
        self.machine.invoke(f, args).expect("stepper: invoke");
        let status = self.machine.run(&mut NoHost, u64::MAX).expect("stepper: run");
        assert_eq!(status, Status::Returned, "stepper: {name}");
        let results = self.machine.results().expect("stepper: results");
        assert_eq!(results.len(), 1, "stepper: {name} returns one value");
        (results[0], self.machine.steps() - before)
    }
}

/// One instance of the guest in wasmi.
struct Wasmi {
    store: wasmi::Store<()>,
    instance: wasmi::Instance,
}

impl Wasmi {
    fn new() -> Self {
        let engine = wasmi::Engine::default();
        let module = wasmi::Module::new(&engine, BENCH_KERNELS).expect("wasmi: compile bench-kernels");
        let mut store = wasmi::Store::new(&engine, ());
        let instance = wasmi::Linker::<()>::new(&engine)
            .instantiate_and_start(&mut store, &module)
            .expect("wasmi: instantiate bench-kernels");
        Wasmi { store, instance }
    }

    fn func(&self, name: &str) -> wasmi::Func {
        self.instance.get_func(&self.store, name).unwrap_or_else(|| panic!("wasmi: no exported function {name}"))
    }

    fn call(&mut self, func: wasmi::Func, args: &[wasmi::Val], out: &mut [wasmi::Val]) {
        func.call(&mut self.store, args, out).expect("wasmi: call");
    }
}

fn to_wasmi(v: &Value) -> wasmi::Val {
    match *v {
        Value::I32(x) => wasmi::Val::I32(x),
        Value::I64(x) => wasmi::Val::I64(x),
        Value::F32(bits) => wasmi::Val::F32(wasmi::F32::from_bits(bits)),
        Value::F64(bits) => wasmi::Val::F64(wasmi::F64::from_bits(bits)),
        ref other => panic!("no wasmi conversion for {other:?}"),
    }
}

fn from_wasmi(v: &wasmi::Val) -> Value {
    match *v {
        wasmi::Val::I32(x) => Value::I32(x),
        wasmi::Val::I64(x) => Value::I64(x),
        wasmi::Val::F32(x) => Value::F32(x.to_bits()),
        wasmi::Val::F64(x) => Value::F64(x.to_bits()),
        ref other => panic!("no conversion for wasmi value {other:?}"),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Checks both engines' results and prints, once, steps, steps/s and the stepper / wasmi time ratio.
fn summary() {
    let mut stepper = Stepper::new();
    let mut wasmi = Wasmi::new();
    eprintln!();
    eprintln!("stepper vs wasmi on bench-kernels (median of alternating calls, one run):");
    eprintln!(
        "| kernel | steps per call | stepper time | stepper steps/s | wasmi time | stepper / wasmi | wasmi / stepper |"
    );
    eprintln!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, args, expected) in kernels() {
        let wargs: Vec<_> = args.iter().map(to_wasmi).collect();
        let func = wasmi.func(name);
        let mut out = [to_wasmi(&expected)];

        // Correctness first, and the step count (the same on every call: inputs are re-generated per call).
        let (result, steps) = stepper.call(name, &args);
        assert_eq!(result, expected, "stepper result of {name}");
        wasmi.call(func, &wargs, &mut out);
        assert_eq!(from_wasmi(&out[0]), expected, "wasmi result of {name}");

        // Alternate the engines so both see the same machine conditions; at least 5 rounds and about 3 s.
        let (mut ts, mut tw) = (Vec::new(), Vec::new());
        let start = Instant::now();
        while ts.len() < 5 || start.elapsed() < Duration::from_secs(3) {
            let t = Instant::now();
            let (_, s) = black_box(stepper.call(name, black_box(&args)));
            ts.push(t.elapsed());
            assert_eq!(s, steps, "steps of {name} differ between calls");
            let t = Instant::now();
            wasmi.call(func, black_box(&wargs), &mut out);
            tw.push(t.elapsed());
        }
        let (ts, tw) = (median(ts), median(tw));
        let ratio = ts.as_secs_f64() / tw.as_secs_f64();
        eprintln!(
            "| `{name}` | {steps} | {:.2} ms | {:.1} M | {:.2} ms | {ratio:.2} | {:.2} |",
            ts.as_secs_f64() * 1e3,
            steps as f64 / ts.as_secs_f64() / 1e6,
            tw.as_secs_f64() * 1e3,
            1.0 / ratio,
        );
    }
    eprintln!();
}

fn bench(c: &mut Criterion) {
    summary();
    let mut stepper = Stepper::new();
    let mut wasmi = Wasmi::new();
    let mut group = c.benchmark_group("bench-kernels");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    for (name, args, expected) in kernels() {
        let wargs: Vec<_> = args.iter().map(to_wasmi).collect();
        let func = wasmi.func(name);
        let mut out = [to_wasmi(&expected)];
        group.bench_function(format!("wasmi/{name}"), |b| b.iter(|| wasmi.call(func, black_box(&wargs), &mut out)));
        group.bench_function(format!("stepper/{name}"), |b| b.iter(|| stepper.call(name, black_box(&args))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
