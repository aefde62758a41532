//! Runs one bench kernel in the stepper, for profiling (e.g. under callgrind):
//! `cargo run --release -p opml-vm --example profile_kernel -- matmul_f32 [--histogram]`
use std::collections::BTreeMap;

use opml_vm::{Extern, Limits, Machine, Module, NoHost, Status};

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "matmul_f32".into());
    let histogram = std::env::args().any(|a| a == "--histogram");
    let module = Module::new(opml_guests::BENCH_KERNELS).expect("compile");
    let mut m = Machine::new(Limits::default());
    let inst = m.instantiate(&module, &[], &mut NoHost).expect("instantiate");
    let Some(Extern::Func(f)) = m.export(inst, &name) else { panic!("no export {name}") };
    let args = if name == "fib" { vec![opml_vm::Value::I32(22)] } else { vec![] };
    m.invoke(f, &args).expect("invoke");
    if histogram {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut pairs: BTreeMap<String, u64> = BTreeMap::new();
        let mut prev = String::new();
        while let Some(op) = m.next_op() {
            let short = format!("{op:?}");
            let short = short.split(['(', ' ', '{']).next().unwrap_or("?").to_string()
                + &(if matches!(op, opml_vm::instr::Op::Num(_)) { format!("{op:?}") } else { String::new() });
            *pairs.entry(format!("{prev} -> {short}")).or_default() += 1;
            prev = short;
            let name = format!("{op:?}");
            let key = name.split(['(', ' ', '{']).next().unwrap_or("?").to_string();
            let key = if key == "Num" || key == "Simd" { name } else { key };
            *counts.entry(key).or_default() += 1;
            m.step(&mut NoHost).expect("step");
        }
        let mut v: Vec<_> = counts.into_iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        for (k, c) in v.iter().take(25) {
            println!("{c:>10}  {k}");
        }
        let mut v: Vec<_> = pairs.into_iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        println!("pairs:");
        for (k, c) in v.iter().take(20) {
            println!("{c:>10}  {k}");
        }
    } else {
        let status = m.run(&mut NoHost, u64::MAX).expect("run");
        assert_eq!(status, Status::Returned);
    }
    println!("{name}: {:?} in {} steps", m.results(), m.steps());
}
