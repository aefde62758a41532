//! A reference host of the guest ABI v1 on wasmi, for tests: instantiates a guest with its input blobs, calls
//! `opml_step` until it returns 0, and returns the output.
//!
//! Imports of module `opml`: `input_len(blob: i32) -> i64`, `input_read(blob: i32, offset: i64, dst: i32,
//! len: i32) -> i32`, `output_write(src: i32, len: i32)`, with the limits and traps of the ABI. Any other
//! import is bound to a function of its type that traps when called.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use wasmi::{Caller, Config, Engine, Error, Extern, ExternType, Linker, Module, Store};

/// Largest `len` of one `input_read` / `output_write`.
pub const MAX_IO: i32 = 4096;
/// Largest total output.
pub const MAX_OUTPUT: usize = 1 << 20;

/// The host side of a task: the input blobs, the output so far, and counters.
pub struct Host {
    pub inputs: Vec<Vec<u8>>,
    pub output: Vec<u8>,
    pub reads: u64,
    pub bytes_read: u64,
    /// Reads whose range crossed a 4 KiB chunk boundary of the blob.
    pub unaligned_reads: u64,
}

/// What a run returns.
#[derive(Debug)]
pub struct GuestRun {
    pub output: Vec<u8>,
    pub segments: u32,
    /// Fuel used by each segment (when metered), about one unit per executed instruction.
    pub fuel: Vec<u64>,
    pub reads: u64,
    pub bytes_read: u64,
    pub unaligned_reads: u64,
    /// Largest size of the guest memory, in bytes, at a segment boundary.
    pub max_memory: u64,
    /// Time spent in `opml_step` calls (instantiation excluded).
    pub time: Duration,
    pub inputs: Vec<Vec<u8>>,
}

fn trap(msg: impl Into<String>) -> Error {
    Error::new(msg.into())
}

fn memory(caller: &Caller<'_, Host>) -> Result<wasmi::Memory, Error> {
    caller.get_export("memory").and_then(Extern::into_memory).ok_or_else(|| trap("guest exports no memory"))
}

/// The imports of a guest module that are not ABI v1 functions (`module::name`).
pub fn foreign_imports(wasm: &[u8]) -> Vec<String> {
    let module = Module::new(&Engine::default(), wasm).expect("compile guest");
    module.imports().filter(|i| i.module() != "opml").map(|i| format!("{}::{}", i.module(), i.name())).collect()
}

/// The imports of a guest module (`module::name`).
pub fn imports(wasm: &[u8]) -> Vec<String> {
    let module = Module::new(&Engine::default(), wasm).expect("compile guest");
    module.imports().map(|i| format!("{}::{}", i.module(), i.name())).collect()
}

fn linker(engine: &Engine, module: &Module) -> Linker<Host> {
    let mut linker = Linker::<Host>::new(engine);
    linker
        .func_wrap("opml", "input_len", |caller: Caller<'_, Host>, blob: i32| -> i64 {
            match usize::try_from(blob).ok().and_then(|b| caller.data().inputs.get(b)) {
                Some(data) => data.len() as i64,
                None => -1,
            }
        })
        .unwrap();
    linker
        .func_wrap(
            "opml",
            "input_read",
            |mut caller: Caller<'_, Host>, blob: i32, offset: i64, dst: i32, len: i32| -> Result<i32, Error> {
                if !(0..=MAX_IO).contains(&len) {
                    return Err(trap(format!("input_read: len {len} not in 0..={MAX_IO}")));
                }
                if offset < 0 {
                    return Err(trap(format!("input_read: negative offset {offset}")));
                }
                let mem = memory(&caller)?;
                let (mem, host) = mem.data_and_store_mut(&mut caller);
                let data = usize::try_from(blob)
                    .ok()
                    .and_then(|b| host.inputs.get(b))
                    .ok_or_else(|| trap(format!("input_read: no blob {blob}")))?;
                let dst = dst as u32 as usize;
                let len = len as usize;
                if dst + len > mem.len() {
                    return Err(trap(format!("input_read: [{dst}, {dst}+{len}) outside memory of {}", mem.len())));
                }
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
                let n = len.min(data.len() - start);
                mem[dst..dst + n].copy_from_slice(&data[start..start + n]);
                host.reads += 1;
                host.bytes_read += n as u64;
                if n > 0 && start / 4096 != (start + n - 1) / 4096 {
                    host.unaligned_reads += 1;
                }
                Ok(n as i32)
            },
        )
        .unwrap();
    linker
        .func_wrap("opml", "output_write", |mut caller: Caller<'_, Host>, src: i32, len: i32| -> Result<(), Error> {
            if !(0..=MAX_IO).contains(&len) {
                return Err(trap(format!("output_write: len {len} not in 0..={MAX_IO}")));
            }
            let mem = memory(&caller)?;
            let (mem, host) = mem.data_and_store_mut(&mut caller);
            let (src, len) = (src as u32 as usize, len as usize);
            let bytes = mem.get(src..src + len).ok_or_else(|| trap("output_write: range outside memory"))?;
            if host.output.len() + len > MAX_OUTPUT {
                return Err(trap(format!("output_write: output would exceed {MAX_OUTPUT} bytes")));
            }
            host.output.extend_from_slice(bytes);
            Ok(())
        })
        .unwrap();
    for import in module.imports() {
        let known = import.module() == "opml" && ["input_len", "input_read", "output_write"].contains(&import.name());
        if let (false, ExternType::Func(ty)) = (known, import.ty()) {
            let name = format!("{}::{}", import.module(), import.name());
            linker
                .func_new(import.module(), import.name(), ty.clone(), move |_, _, _| {
                    Err(trap(format!("guest called the unsupported import {name}")))
                })
                .unwrap();
        }
    }
    linker
}

/// Runs a guest to completion on `inputs` (blob `i` = `inputs[i]`). With `meter`, counts fuel per segment (a bit
/// slower). Fails with the segment and the trap if the guest traps.
pub fn run(wasm: &[u8], inputs: Vec<Vec<u8>>, meter: bool) -> Result<GuestRun, String> {
    let mut config = Config::default();
    config.consume_fuel(meter);
    let engine = Engine::new(&config);
    let module = Module::new(&engine, wasm).map_err(|e| format!("compile: {e}"))?;
    let host = Host { inputs, output: Vec::new(), reads: 0, bytes_read: 0, unaligned_reads: 0 };
    let mut store = Store::new(&engine, host);
    const FUEL: u64 = u64::MAX / 2;
    if meter {
        store.set_fuel(FUEL).unwrap();
    }
    let instance =
        linker(&engine, &module).instantiate_and_start(&mut store, &module).map_err(|e| format!("instantiate: {e}"))?;
    let step = instance.get_typed_func::<(), i32>(&store, "opml_step").map_err(|e| format!("opml_step: {e}"))?;
    let mem = instance.get_memory(&store, "memory").ok_or("guest exports no memory")?;
    let (mut segments, mut fuel, mut max_memory, mut time) = (0u32, Vec::new(), 0u64, Duration::ZERO);
    loop {
        segments += 1;
        let start = Instant::now();
        let more = step.call(&mut store, ()).map_err(|e| format!("segment {segments}: {e}"))?;
        time += start.elapsed();
        if meter {
            fuel.push(FUEL - store.get_fuel().unwrap());
            store.set_fuel(FUEL).unwrap();
        }
        max_memory = max_memory.max(mem.data(&store).len() as u64);
        if more == 0 {
            break;
        }
    }
    let host = store.into_data();
    Ok(GuestRun {
        output: host.output,
        segments,
        fuel,
        reads: host.reads,
        bytes_read: host.bytes_read,
        unaligned_reads: host.unaligned_reads,
        max_memory,
        time,
        inputs: host.inputs,
    })
}
