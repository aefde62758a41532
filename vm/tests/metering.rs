//! Stack metering (`opml_vm::meter`): running out of stack is program semantics. A guest recursing past the
//! metered limit traps `Unreachable` at the same instruction in the stepping machine and in wasmi (whose own
//! default limit, about 1000 frames, must never decide), and a deep but legal recursion completes alike in both.

use std::sync::Arc;

use opml_vm::guest::GuestProgram;
use opml_vm::io::Inputs;
use opml_vm::meter::{METER_LIMIT, MIN_FRAME_COST, frame_cost};
use opml_vm::{Limits, NoHost, StateHasher, Status, TrapCode, fast};

/// A guest whose segment `s` (counting from 0) calls `down(depth_s)`, a recursion `depth_s` frames deep, and
/// stores the result; it halts after the last depth.
fn recursing_guest(depths: &[u32]) -> GuestProgram {
    let n = depths.len();
    let wat = format!(
        r#"(module
          (memory (export "memory") 1 1)
          (global $seg (mut i32) (i32.const 0))
          (func $down (param $n i32) (result i32)
            (if (result i32) (i32.eqz (local.get $n))
              (then (i32.const 0))
              (else (i32.add (i32.const 1) (call $down (i32.sub (local.get $n) (i32.const 1)))))))
          (func $depth (param $s i32) (result i32)
            (local $v i32)
            {selects}
            (local.get $v))
          (func (export "opml_step") (result i32)
            (i32.store (i32.mul (global.get $seg) (i32.const 4)) (call $down (call $depth (global.get $seg))))
            (global.set $seg (i32.add (global.get $seg) (i32.const 1)))
            (i32.lt_u (global.get $seg) (i32.const {n}))))"#,
        selects = depths
            .iter()
            .enumerate()
            .map(|(i, d)| format!("(if (i32.eq (local.get $s) (i32.const {i})) (then (local.set $v (i32.const {d}))))"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    GuestProgram::new(&wat::parse_str(wat).unwrap()).unwrap()
}

/// Status, boundary roots and memory words of a stepper run.
fn stepper(program: &GuestProgram) -> (Status, Vec<opml_vm::Hash>) {
    let mut m = program.machine(Arc::new(Inputs::new(Vec::new())), Limits::default()).unwrap();
    let mut hasher = StateHasher::new();
    let mut roots = vec![hasher.root(&m)];
    loop {
        let status = m.run(&mut NoHost, u64::MAX).unwrap();
        roots.push(hasher.root(&m));
        if status != Status::Idle {
            return (status, roots);
        }
    }
}

#[test]
fn deep_recursion_within_the_meter_runs_alike_in_both_engines() {
    // 5000 frames: past wasmi's default recursion limit (1000), within the meter.
    let program = recursing_guest(&[10, 5000, 3]);
    let (status, roots) = stepper(&program);
    assert_eq!(status, Status::Halted);
    let run = fast::run(&program, Arc::new(Inputs::new(Vec::new())), Limits::default(), true).unwrap();
    assert_eq!(run.status, Status::Halted);
    assert_eq!(run.segment_roots, roots);
    let m = fast::capture(&program, Arc::new(Inputs::new(Vec::new())), Limits::default(), 3).unwrap();
    assert_eq!(&m.memory[..12], &[10u32.to_le_bytes(), 5000u32.to_le_bytes(), 3u32.to_le_bytes()].concat()[..]);
}

#[test]
fn running_out_of_metered_stack_traps_alike_in_both_engines() {
    // `down` costs MIN_FRAME_COST per frame: the meter stops it after METER_LIMIT / MIN_FRAME_COST frames.
    assert_eq!(frame_cost(1, 0, 4), MIN_FRAME_COST);
    let limit_frames = METER_LIMIT / MIN_FRAME_COST;
    let program = recursing_guest(&[7, limit_frames * 2]);
    let (status, roots) = stepper(&program);
    assert_eq!(status, Status::Trapped(TrapCode::Unreachable));
    assert_eq!(roots.len(), 3, "the second segment traps");
    let run = fast::run(&program, Arc::new(Inputs::new(Vec::new())), Limits::default(), true).unwrap();
    assert_eq!(run.status, status);
    assert_eq!(run.segment_roots, roots);
}

#[test]
fn the_meter_is_empty_at_every_boundary() {
    let program = recursing_guest(&[100, 200]);
    let meter = program.global_count() - 1;
    for segment in 0..=2 {
        let b = fast::capture(&program, Arc::new(Inputs::new(Vec::new())), Limits::default(), segment).unwrap();
        assert_eq!(b.globals[meter as usize], 0, "segment {segment}");
    }
}
