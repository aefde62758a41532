//! Issue 6's registration budget: registering a 2 MiB guest in the real verifier canister
//! (`opml_canister_wasm::VERIFIER_WASM`) on the devnet must fit the IC's per-message limits, 2 MiB of ingress per
//! message (so the module goes up in chunks of at most `MAX_CHUNK` = 1 MiB) and 40B instructions per update
//! (`finish_upload` validates, compiles and commits the module: spread over as many calls as it takes, each within
//! the canister's `FINISH_UPLOAD_BUDGET`).
//!
//! The guests are built here, byte by byte, to about 2 MiB each, and must pass `GuestProgram::new`:
//! - *code-heavy*: many functions with long straight-line bodies of 1-2 byte instructions. Validation, the stack
//!   metering rewrite, compilation and the program commitment (one code-tree leaf per instruction) all scale with
//!   the number of instructions, so this is the expensive kind. Two densities: arithmetic (`local.get`/`i32.*`
//!   pairs, 2 instructions per 3 bytes, what straight-line compiled code looks like) and `nop` runs (1 instruction
//!   per byte, the most instructions 2 MiB can hold);
//! - *data-heavy*: one small function and one 2 MiB active data segment (hashed in 4 KiB chunks), for contrast.
//!
//! Every call is sent through the devnet's message path (`update_direct`, which enforces the ingress limit) and its
//! instructions read from the devnet's counters. The devnet's update limit is raised for the run so that a call over
//! 40B is measured, not cut short; the test then asserts every call is under the IC's 40B. Prints the figures
//! (`--nocapture`) that docs/benchmarks.md ("Verifier canister", registration) reports.

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Decode, Principal};
use opml_bisect::Hash;
use opml_canister_wasm::VERIFIER_WASM;
use opml_devnet::cbor::leb128;
use opml_devnet::{Devnet, DevnetConfig, Limits};
use opml_verifier_canister::Error as CanisterError;
use opml_verifier_canister::core::MAX_CHUNK;
use opml_verifier_canister::shell::UploadChunk;
use opml_verifier_canister::types::{BeginUpload, Config, Id, RegistrationStep};
use opml_vm::guest::GuestProgram;
use serde::de::DeserializeOwned;
use sha3::{Digest, Sha3_256};

/// The IC's instruction limit of one update message.
const IC_UPDATE_INSTRUCTIONS: u64 = 40_000_000_000;
/// The IC's ingress limit per message.
const IC_INGRESS_BYTES: usize = 2 << 20;
/// The module size the issue asks about.
const TARGET: usize = 2 << 20;
/// Functions of a code-heavy guest (each body about TARGET / FUNCS bytes).
const FUNCS: usize = 256;

// ---------------------------------------------------------------------------------------------------------------
// Guest modules, encoded directly (a 2 MiB module is ~10 MB of wat text).

fn section(out: &mut Vec<u8>, id: u8, body: &[u8]) {
    out.push(id);
    out.extend(leb128(body.len() as u64));
    out.extend_from_slice(body);
}

fn vector(items: &[Vec<u8>]) -> Vec<u8> {
    let mut v = leb128(items.len() as u64);
    for i in items {
        v.extend_from_slice(i);
    }
    v
}

fn name(s: &str) -> Vec<u8> {
    let mut v = leb128(s.len() as u64);
    v.extend_from_slice(s.as_bytes());
    v
}

/// A guest with the ABI imports, one memory of `pages` (exported as `memory`), `bodies.len()` functions
/// `(i32) -> i32` with the given instruction bytes (each closed by `end`), an `opml_step` that calls the first of
/// them and writes 4 bytes of output, and (if not empty) one active data segment at offset 0.
fn guest(bodies: &[Vec<u8>], data: &[u8], pages: u32) -> Vec<u8> {
    const I32: u8 = 0x7f;
    const I64: u8 = 0x7e;
    let func = |params: &[u8], results: &[u8]| {
        let mut t = vec![0x60];
        t.extend(vector(&params.iter().map(|p| vec![*p]).collect::<Vec<_>>()));
        t.extend(vector(&results.iter().map(|r| vec![*r]).collect::<Vec<_>>()));
        t
    };
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    // Types: 0 opml_step, 1 input_len, 2 input_read, 3 output_write, 4 the generated functions.
    let types = [func(&[], &[I32]), func(&[I32], &[I64]), func(&[I32, I64, I32, I32], &[I32]), func(&[I32, I32], &[])];
    let mut types = types.to_vec();
    types.push(func(&[I32], &[I32]));
    section(&mut m, 1, &vector(&types));
    let import = |field: &str, ty: u8| [name("opml"), name(field), vec![0x00, ty]].concat();
    let imports = [import("input_len", 1), import("input_read", 2), import("output_write", 3)];
    section(&mut m, 2, &vector(&imports));
    let n_imports = imports.len() as u64;
    let mut funcs: Vec<Vec<u8>> = bodies.iter().map(|_| vec![4]).collect();
    funcs.push(vec![0]);
    section(&mut m, 3, &vector(&funcs));
    let memory = [vec![0x01], leb128(u64::from(pages)), leb128(u64::from(pages) * 2)].concat();
    section(&mut m, 5, &vector(&[memory]));
    let step_index = n_imports + bodies.len() as u64;
    let exports = [[name("memory"), vec![0x02, 0x00]].concat(), [name("opml_step"), vec![0x00]].concat()];
    let mut exports = exports.to_vec();
    exports[1].extend(leb128(step_index));
    section(&mut m, 7, &vector(&exports));
    let code_entry = |ops: &[u8]| {
        // No locals beyond the parameter; the body's instructions, then `end`.
        let body = [&[0x00][..], ops, &[0x0b]].concat();
        [leb128(body.len() as u64), body].concat()
    };
    let mut code: Vec<Vec<u8>> = bodies.iter().map(|b| code_entry(b)).collect();
    // opml_step: (drop (call $f0 (i32.const 0))) (call $output_write (i32.const 0) (i32.const 4)) (i32.const 0)
    let mut step = vec![0x41, 0x00, 0x10];
    step.extend(leb128(n_imports));
    step.extend_from_slice(&[0x1a, 0x41, 0x00, 0x41, 0x04, 0x10, 0x02, 0x41, 0x00]);
    code.push(code_entry(&step));
    section(&mut m, 10, &vector(&code));
    if !data.is_empty() {
        let segment = [&[0x00, 0x41, 0x00, 0x0b][..], &leb128(data.len() as u64), data].concat();
        section(&mut m, 11, &vector(&[segment]));
    }
    m
}

/// A function body of about `len` bytes: `local.get 0`, then instructions that keep one i32 on the stack.
fn body(len: usize, dense: bool) -> Vec<u8> {
    let mut b = vec![0x20, 0x00];
    if dense {
        b.resize(len.max(2), 0x01); // nop
    } else {
        // local.get 0 then one of i32.add / i32.sub / i32.mul / i32.xor: the operand height stays at 2.
        let binops = [0x6a, 0x6b, 0x6c, 0x73];
        let mut i = 0;
        while b.len() + 3 <= len {
            b.extend_from_slice(&[0x20, 0x00, binops[i % binops.len()]]);
            i += 1;
        }
    }
    b
}

/// A code-heavy guest of at most `size` bytes and within 4 KiB of it: [`FUNCS`] functions whose bodies fill it.
fn code_heavy(size: usize, dense: bool) -> Vec<u8> {
    let build = |len: usize| guest(&vec![body(len, dense); FUNCS], &[], 1);
    // Two passes, from the first pass's actual body length (bodies grow in whole instructions).
    let first_len = body(size / FUNCS - 64, dense).len();
    let len = first_len + (size - build(first_len).len()) / FUNCS;
    let wasm = build(len);
    assert!(wasm.len() <= size && wasm.len() > size - 4096, "code-heavy guest is {} bytes", wasm.len());
    wasm
}

/// A data-heavy guest of at most [`TARGET`] bytes and within 4 KiB of it: one small function and one data segment
/// of pseudo-random bytes (xorshift, so no 4 KiB chunk repeats).
fn data_heavy() -> Vec<u8> {
    let bodies = vec![body(16, false)];
    let build = |n: usize| {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        // Memory for the segment plus one page.
        guest(&bodies, &data, (n as u64).div_ceil(65_536) as u32 + 1)
    };
    // Two passes: the section and segment headers' LEB128 sizes do not change between them.
    let first = TARGET - 4096;
    let wasm = build(first + TARGET - build(first).len());
    assert!(wasm.len() <= TARGET && wasm.len() > TARGET - 4096, "data-heavy guest is {} bytes", wasm.len());
    wasm
}

// ---------------------------------------------------------------------------------------------------------------
// The canister

fn config(ledger: Principal) -> Config {
    Config {
        ledger,
        ledger_fee: 10_000,
        operators: vec![],
        arity: 4,
        max_segments: 1 << 20,
        max_segment_steps: 1 << 40,
        min_stake: 50_000_000,
        challenger_bond: 5_000_000,
        burn_bps: 2_000,
        min_challenge_window_ns: 60_000_000_000,
        max_challenge_window_ns: 86_400_000_000_000,
        min_clock_ns: 60_000_000_000,
        max_clock_ns: 86_400_000_000_000,
        // As the demo installs it (prover/src/demo.rs): room for guests well past 2 MiB.
        max_program_bytes: 16 << 20,
        max_output_bytes: 65_536,
        sweep_interval_s: 0,
    }
}

/// One update call: what it cost.
struct Call {
    method: &'static str,
    instructions: u64,
    /// The Candid argument (what the ingress message carries, less its envelope).
    arg_bytes: usize,
}

struct Canister {
    devnet: Devnet,
    id: Principal,
    operator: Principal,
}

impl Canister {
    fn new() -> Canister {
        let devnet = Devnet::start(DevnetConfig { bind: None, ..DevnetConfig::default() }).expect("devnet starts");
        // Above the IC's 40B, so that a call over it is measured (and then fails the assertion), not trapped.
        devnet.set_limits(Limits { update_instructions: 10 * IC_UPDATE_INSTRUCTIONS, ..devnet.limits() });
        assert_eq!(devnet.limits().max_ingress_bytes, IC_INGRESS_BYTES, "the devnet enforces the IC's ingress limit");
        let operator = Principal::from_slice(&[6; 29]);
        let arg = candid::encode_one(config(devnet.ledger_id())).unwrap();
        let id = devnet.install_canister(VERIFIER_WASM, arg, vec![operator]).expect("the verifier canister installs");
        Canister { devnet, id, operator }
    }

    /// An update from the operator, answered `Ok`; records its instructions and argument size.
    fn update<R: CandidType + DeserializeOwned>(
        &self,
        calls: &mut Vec<Call>,
        method: &'static str,
        args: impl ArgumentEncoder,
    ) -> R {
        let arg = candid::encode_args(args).unwrap();
        let arg_bytes = arg.len();
        let out = self
            .devnet
            .update_call(self.operator, self.id, method, arg)
            .unwrap_or_else(|e| panic!("{method}: rejected: {e}"));
        let r = Decode!(&out, Result<R, CanisterError>).unwrap_or_else(|e| panic!("{method}: undecodable: {e}"));
        let instructions = self.devnet.instruction_counts(self.id)[method].last_instructions;
        calls.push(Call { method, instructions, arg_bytes });
        r.unwrap_or_else(|e| panic!("{method}: {e:?}"))
    }

    /// Registers `wasm` by chunked upload (chunks of `MAX_CHUNK`); returns the program hash and every call.
    fn register(&self, wasm: &[u8]) -> (Hash, Vec<Call>) {
        let mut calls = Vec::new();
        let begin = BeginUpload { wasm_sha3: Hash(Sha3_256::digest(wasm).into()), size: wasm.len() as u64 };
        let upload: Id = self.update(&mut calls, "begin_upload", (begin,));
        let mut offset = 0u64;
        for part in wasm.chunks(MAX_CHUNK as usize) {
            let chunk = UploadChunk { upload, offset, bytes: part.to_vec() };
            offset = self.update(&mut calls, "upload_chunk", (chunk,));
        }
        assert_eq!(offset, wasm.len() as u64);
        // Registration runs over as many `finish_upload` calls as the commitment takes.
        for _ in 0..64 {
            match self.update(&mut calls, "finish_upload", (upload,)) {
                RegistrationStep::Registered { program } => return (program, calls),
                RegistrationStep::Rewritten => {}
                RegistrationStep::Committing { done, total } => assert!(done < total, "{done} of {total}"),
            }
        }
        panic!("not registered after 64 finish_upload calls")
    }
}

/// Cycles at the prices: 1 per instruction, 5M per update, 2,000 per ingress byte (Candid argument bytes).
fn cycles(calls: &[Call]) -> u128 {
    calls.iter().map(|c| u128::from(c.instructions) + 5_000_000 + 2_000 * c.arg_bytes as u128).sum()
}

fn millions(n: u64) -> String {
    format!("{:.1}M", n as f64 / 1e6)
}

fn billions(n: u64) -> String {
    format!("{:.2}B", n as f64 / 1e9)
}

/// Registers each guest and prints a row per guest (module, bytes, chunks, instructions per call, cycles); returns
/// the calls over the IC's 40B update limit.
fn register_all(guests: &[(&str, Vec<u8>)]) -> Vec<String> {
    let canister = Canister::new();
    let mut over = Vec::new();
    for (kind, wasm) in guests {
        let guest = GuestProgram::new(wasm).unwrap_or_else(|e| panic!("{kind}: not a valid guest: {e}"));
        let started = std::time::Instant::now();
        let (program, calls) = canister.register(wasm);
        let seconds = started.elapsed().as_secs_f64();
        let agents = opml_bisect::vm::VmVerifier::new().register_guest(&guest, opml_vm::Limits::default()).unwrap();
        assert_eq!(program, agents, "{kind}: the canister and the agents name the program alike");
        for c in &calls {
            assert!(c.arg_bytes <= IC_INGRESS_BYTES, "{kind}: {} argument over the ingress limit", c.method);
            if c.instructions >= IC_UPDATE_INSTRUCTIONS {
                over.push(format!("{kind}: {} took {} instructions", c.method, c.instructions));
            }
        }
        let of = |m: &str| calls.iter().filter(|c| c.method == m).map(|c| c.instructions).max().unwrap();
        let chunks = calls.iter().filter(|c| c.method == "upload_chunk").count();
        let finish: Vec<u64> = calls.iter().filter(|c| c.method == "finish_upload").map(|c| c.instructions).collect();
        let each: Vec<String> = finish.iter().map(|n| billions(*n)).collect();
        eprintln!(
            "| {kind} | {} | {chunks} | {} | {} (max) | {} | {} | {} | {} | ({seconds:.1} s on the devnet)",
            wasm.len(),
            millions(of("begin_upload")),
            millions(of("upload_chunk")),
            each.join(", "),
            billions(finish.iter().copied().max().unwrap_or(0)),
            billions(finish.iter().sum()),
            cycles(&calls),
        );
    }
    over
}

/// Issue 6's target: 2 MiB guests, data-heavy and code-heavy (both densities), register with every call within the
/// IC's limits (~1 min in a debug build).
#[test]
fn two_mib_guests_register_within_the_update_limit() {
    let over = register_all(&[
        ("data-heavy, one data segment", data_heavy()),
        ("code-heavy, arithmetic (2 instructions / 3 bytes)", code_heavy(TARGET, false)),
        ("code-heavy, nop runs (1 instruction / byte)", code_heavy(TARGET, true)),
    ]);
    assert!(over.is_empty(), "over the IC's 40B update limit:\n{}", over.join("\n"));
}
