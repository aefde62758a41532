//! Guests (ABI v1): the stepper and the wasmi fast engine agree on the root of every segment
//! boundary; every stepper step of a guest run is provable, including host calls and segment
//! boundaries; the game's segment-indexed transition function keeps boundaries fixed.

use opml_guests::fixtures::THREE_SEGMENTS_ABI;
use std::sync::Arc;

use opml_vm::fast;
use opml_vm::guest::{GuestProgram, initial_root};
use opml_vm::io::{Inputs, output_commitment};
use opml_vm::verify::{FinalOutcome, FinalState, check_final};
use opml_vm::{Hash, Limits, Machine, NoHost, StateHasher, Status, TrapCode, prove_step, verify_step};

fn inputs(mode: u8, len: usize) -> Arc<Inputs> {
    let data: Vec<u8> = (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    Arc::new(Inputs::new(vec![data, vec![mode]]))
}

/// Runs the guest in the stepper, proving every step; returns the boundary roots and the machine.
fn stepper_run(program: &GuestProgram, inputs: Arc<Inputs>) -> (Vec<Hash>, Machine) {
    let mut m = program.machine(inputs, Limits::default()).unwrap();
    let index = m.program_index();
    let mut hasher = StateHasher::new();
    let mut roots = vec![hasher.root(&m)];
    loop {
        let pre = hasher.root(&m);
        let proof = prove_step(&m, &index, &mut hasher).unwrap();
        let bytes = proof.encode();
        m.step(&mut NoHost).unwrap();
        let post = hasher.root(&m);
        if verify_step(&pre, &bytes, &index.commitment) != Ok(post) {
            let got = opml_vm::verify::verify_to_header(&pre, &proof, &index.commitment, None);
            panic!(
                "step {}: op {:?}\npre  {:?}\nwant {:?}\ngot  {:?}",
                m.steps(),
                opml_vm::instr::Op::decode(&proof.op),
                proof.header,
                hasher.header(&m),
                got
            );
        }
        match m.status() {
            Status::Running => {}
            Status::Idle | Status::Halted | Status::Trapped(_) => roots.push(post),
            Status::Returned => panic!("a guest never returns"),
        }
        if matches!(m.status(), Status::Halted | Status::Trapped(_)) {
            return (roots, m);
        }
    }
}

#[test]
fn stepper_and_wasmi_agree_at_every_boundary() {
    let program = GuestProgram::new(&wat::parse_str(THREE_SEGMENTS_ABI).unwrap()).unwrap();
    let inputs = inputs(0, 10_000);
    let fast = fast::run(&program, inputs.clone(), Limits::default(), true).unwrap();
    assert_eq!(fast.status, Status::Halted);
    assert_eq!(fast.segments(), 3);
    assert_eq!(fast.output.len(), 28 + 4096 + 904);
    assert_eq!(fast.output_hash, output_commitment(&fast.output));
    // The output's second write is blob 0's first 4096 bytes.
    assert_eq!(&fast.output[28..28 + 4096], &inputs.blobs[0].bytes[..4096]);

    let (roots, m) = stepper_run(&program, inputs.clone());
    assert_eq!(roots, fast.segment_roots, "boundary roots differ");
    assert_eq!(m.status(), Status::Halted);

    // The canister's view: the initial root from the program template and the input root.
    let template = program.initial_header(Limits::default()).unwrap();
    assert_eq!(initial_root(&template, &inputs.root()), fast.segment_roots[0]);
    // Roots without commitments computed: same output.
    let bare = fast::run(&program, inputs, Limits::default(), false).unwrap();
    assert_eq!(bare.output, fast.output);
}

#[test]
fn traps_agree_and_are_proven() {
    let program = GuestProgram::new(&wat::parse_str(THREE_SEGMENTS_ABI).unwrap()).unwrap();
    for (mode, code) in
        [(1u8, TrapCode::UnsupportedImport), (2, TrapCode::AbiViolation), (3, TrapCode::IntegerDivideByZero)]
    {
        let inputs = inputs(mode, 6000);
        let fast = fast::run(&program, inputs.clone(), Limits::default(), true).unwrap();
        assert_eq!(fast.status, Status::Trapped(code), "mode {mode}");
        let (roots, _) = stepper_run(&program, inputs.clone());
        assert_eq!(roots, fast.segment_roots, "mode {mode}");
        // A trap is a final state a claim can be about: its opening gives the trap and binds the output written
        // before it.
        let trace = opml_vm::trace::GuestTrace::new(program.clone(), inputs.clone(), Limits::default()).unwrap();
        let opening = trace.final_opening().unwrap();
        let want = FinalState { input_root: inputs.root(), outcome: FinalOutcome::Trapped(code) };
        assert_eq!(check_final(&fast.final_root(), &fast.output_hash, &opening), Ok(want), "mode {mode}");
        assert!(check_final(&fast.final_root(), &output_commitment(b"other"), &opening).is_err(), "mode {mode}");
    }
}

#[test]
fn segment_game_transition_keeps_boundaries_fixed() {
    use opml_vm::verify::verify_segment_step;
    let program = GuestProgram::new(&wat::parse_str(THREE_SEGMENTS_ABI).unwrap()).unwrap();
    let mut m = program.machine(inputs(0, 5000), Limits::default()).unwrap();
    let index = m.program_index();
    let mut hasher = StateHasher::new();
    // Boundary 0 under f_0 starts the segment; under f_1 it stays put.
    let r0 = hasher.root(&m);
    let p0 = prove_step(&m, &index, &mut hasher).unwrap().encode();
    assert_eq!(verify_segment_step(&index.commitment, 1, &r0, &p0), Ok(r0));
    let started = verify_segment_step(&index.commitment, 0, &r0, &p0).unwrap();
    assert_ne!(started, r0);
    m.step(&mut NoHost).unwrap();
    assert_eq!(hasher.root(&m), started);
    // Run segment 0 to its end: boundary 1 is a fixed point of f_0 and moves under f_1.
    m.run(&mut NoHost, u64::MAX).unwrap();
    assert_eq!(m.status(), Status::Idle);
    let r1 = hasher.root(&m);
    let p1 = prove_step(&m, &index, &mut hasher).unwrap().encode();
    assert_eq!(verify_segment_step(&index.commitment, 0, &r1, &p1), Ok(r1));
    assert_ne!(verify_segment_step(&index.commitment, 1, &r1, &p1).unwrap(), r1);
    // A running state never steps to itself: the per-segment step count is part of the root.
    m.step(&mut NoHost).unwrap();
    let running = hasher.root(&m);
    let pr = prove_step(&m, &index, &mut hasher).unwrap().encode();
    assert_ne!(verify_segment_step(&index.commitment, 1, &running, &pr).unwrap(), running);
}

#[test]
fn guest_profile_is_enforced() {
    let bad = [
        (r#"(module (memory (export "memory") 1))"#, "missing export"),
        (
            r#"(module (memory (export "memory") 1) (func (export "opml_step") (result i64) (i64.const 0)))"#,
            "[] -> [i32]",
        ),
        (
            r#"(module (import "opml" "input_len" (func (param i64) (result i64))) (memory (export "memory") 1)
            (func (export "opml_step") (result i32) (i32.const 0)))"#,
            "has type",
        ),
        (
            r#"(module (import "opml" "nope" (func)) (memory (export "memory") 1)
            (func (export "opml_step") (result i32) (i32.const 0)))"#,
            "unknown opml import",
        ),
        (
            r#"(module (import "env" "m" (memory 1)) (export "memory" (memory 0))
            (func (export "opml_step") (result i32) (i32.const 0)))"#,
            "is not a function",
        ),
        (
            r#"(module (memory (export "memory") 1) (table 1 funcref)
            (func (export "opml_step") (result i32) (table.set (i32.const 0) (ref.null func)) (i32.const 0)))"#,
            "not allowed",
        ),
        (
            r#"(module (memory (export "memory") 1) (func $s) (start $s)
            (func (export "opml_step") (result i32) (i32.const 0)))"#,
            "start function",
        ),
    ];
    for (wat, why) in bad {
        let err = GuestProgram::new(&wat::parse_str(wat).unwrap()).unwrap_err().to_string();
        assert!(err.contains(why), "{why}: got {err}");
    }
}

#[test]
fn trace_links_engines_and_answers_game_queries() {
    use opml_vm::trace::GuestTrace;
    use opml_vm::verify::verify_segment_step;
    let program = GuestProgram::new(&wat::parse_str(THREE_SEGMENTS_ABI).unwrap()).unwrap();
    let inputs = inputs(0, 9000);
    let trace = GuestTrace::new(program.clone(), inputs.clone(), Limits::default()).unwrap();
    let prog = trace.index().commitment;
    assert_eq!(trace.segments(), 3);
    // Reference: the stepper run step by step, roots per segment.
    let mut m = program.machine(inputs.clone(), Limits::default()).unwrap();
    let mut hasher = StateHasher::new();
    for s in 0..3u64 {
        assert_eq!(hasher.root(&m), trace.boundary_root(s));
        let n = trace.step_count(s).unwrap();
        let mut j = 0;
        loop {
            assert_eq!(trace.step_root(s, j).unwrap(), hasher.root(&m), "segment {s} step {j}");
            // Every 97th step: the trace's proof verifies under f_s to the next root.
            if j % 97 == 0 || j + 1 == n {
                let proof = trace.step_proof(s, j).unwrap().encode();
                let next = trace.step_root(s, j + 1).unwrap();
                assert_eq!(verify_segment_step(&prog, s, &hasher.root(&m), &proof), Ok(next));
            }
            m.step(&mut NoHost).unwrap();
            j += 1;
            if m.status() != Status::Running {
                break;
            }
        }
        assert_eq!(j, n, "segment {s} length");
        // Past the end the root stays at the next boundary.
        assert_eq!(trace.step_root(s, n + 1000).unwrap(), trace.boundary_root(s + 1));
    }
    // The claim's final opening checks against the final root, input root and output hash.
    let opening = trace.final_opening().unwrap();
    let run = trace.run();
    let halted = FinalState { input_root: inputs.root(), outcome: FinalOutcome::Halted };
    assert_eq!(check_final(&run.final_root(), &run.output_hash, &opening), Ok(halted));
    let mut wrong = run.output_hash;
    wrong[0] ^= 1;
    assert!(check_final(&run.final_root(), &wrong, &opening).is_err());
    assert!(check_final(&trace.boundary_root(1), &run.output_hash, &opening).is_err());
}
