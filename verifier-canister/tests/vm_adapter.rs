//! The real VM behind the core: module validation and program commitment at registration, the output hash, and
//! the parts still waiting for `opml_vm::guest` (which must refuse, never accept unchecked).

use opml_bisect::{Hash, StepVerifier};
use opml_verifier_canister::vm::{Bound, ProgramVm};
use opml_verifier_canister::vm_adapter::OpmlVm;
use opml_vm::program::ProgramCommitment;
use opml_vm::root::StateHeader;

const PLAIN: &str = r#"(module (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 7))
  (data (i32.const 16) "hello")
  (func (export "opml_step") (result i32) (global.set $g (i32.add (global.get $g) (i32.const 1))) (i32.const 0)))"#;

#[test]
fn registration_validates_and_commits() {
    let wasm = wat::parse_str(PLAIN).unwrap();
    let d = OpmlVm.derive(&wasm).unwrap();
    assert_eq!(d.data.len(), ProgramCommitment::BYTES + StateHeader::BYTES);
    let c = ProgramCommitment::decode(d.data[..ProgramCommitment::BYTES].try_into().unwrap());
    assert_eq!((c.n_memories, c.n_datas), (1, 1));
    let h = opml_vm::proof::decode_state_header(&d.data[ProgramCommitment::BYTES..]).unwrap();
    assert_eq!(d.program, Hash(opml_vm::program::program_id(&c, &h)));
    // Deterministic, and sensitive to the code.
    assert_eq!(OpmlVm.derive(&wasm).unwrap(), d);
    let other = wat::parse_str(PLAIN.replace("i32.const 1)", "i32.const 2)")).unwrap();
    assert_ne!(OpmlVm.derive(&other).unwrap().program, d.program);
    // A global's initial value or a data segment's offset is not in the commitment but is in the initial state:
    // the program hash covers both, so such modules are different programs.
    for changed in [PLAIN.replace("(i32.const 7)", "(i32.const 8)"), PLAIN.replace("(i32.const 16)", "(i32.const 32)")]
    {
        let dc = OpmlVm.derive(&wat::parse_str(&changed).unwrap()).unwrap();
        assert_eq!(dc.data[..ProgramCommitment::BYTES], d.data[..ProgramCommitment::BYTES], "same commitment");
        assert_ne!(dc.program, d.program, "{changed}");
    }
    // Invalid modules, features outside WebAssembly 2.0 and non-guests are rejected with the VM's reason.
    assert!(OpmlVm.derive(b"\0asm junk").unwrap_err().starts_with("invalid guest"));
    let threads = wat::parse_str("(module (memory 1 1 shared))").unwrap();
    assert!(OpmlVm.derive(&threads).is_err());
    let no_entry = wat::parse_str(r#"(module (memory (export "memory") 1))"#).unwrap();
    assert!(OpmlVm.derive(&no_entry).is_err());
}

#[test]
fn the_verifier_is_the_vms_and_is_bound_to_its_program() {
    let d = OpmlVm.derive(&wat::parse_str(PLAIN).unwrap()).unwrap();
    let v = Bound { vm: &OpmlVm, program: d.program, data: &d.data };
    let r0 = v.initial_root(&d.program, &Hash::ZERO).unwrap();
    assert_ne!(r0, v.initial_root(&d.program, &Hash([1; 32])).unwrap());
    assert!(v.check_final(&Hash::ZERO, &Hash::ZERO, &[]).is_err());
    assert!(v.verify_step(&d.program, 0, &r0, &[1, 2, 3]).is_err());
    // Another program's hash is refused whatever the proof.
    assert_eq!(v.initial_root(&Hash([1; 32]), &Hash::ZERO).unwrap_err().reason, "program is not the task's program");
    assert_eq!(v.verify_step(&Hash([1; 32]), 0, &r0, &[]).unwrap_err().reason, "program is not the task's program");
    // Corrupted stored data is an error, never a default.
    let short = Bound { vm: &OpmlVm, program: d.program, data: &d.data[1..] };
    assert!(short.initial_root(&d.program, &Hash::ZERO).is_err());
    // Output hashes are the VM's output commitment.
    assert_eq!(OpmlVm.output_hash(b"abc"), Hash(opml_vm::io::output_commitment(b"abc")));
}

/// A guest that writes one byte, then traps on `unreachable`.
const TRAPS: &str = r#"(module
  (import "opml" "output_write" (func $write (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "!")
  (func (export "opml_step") (result i32) (call $write (i32.const 16) (i32.const 1)) unreachable))"#;

#[test]
fn final_states_open_to_halted_or_trapped() {
    use opml_bisect::FinalStatus;
    use opml_vm::guest::GuestProgram;
    use opml_vm::io::Inputs;
    use opml_vm::trace::GuestTrace;
    use opml_vm::{Limits, Status, TrapCode};
    use std::sync::Arc;
    for (wat, want) in
        [(PLAIN, FinalStatus::Halted), (TRAPS, FinalStatus::Trapped { code: u32::from(TrapCode::Unreachable as u8) })]
    {
        let wasm = wat::parse_str(wat).unwrap();
        let d = OpmlVm.derive(&wasm).unwrap();
        let v = Bound { vm: &OpmlVm, program: d.program, data: &d.data };
        let t = GuestTrace::new(GuestProgram::new(&wasm).unwrap(), Arc::new(Inputs::new(vec![])), Limits::default())
            .unwrap();
        let run = t.run();
        assert!(matches!(run.status, Status::Halted | Status::Trapped(TrapCode::Unreachable)), "{:?}", run.status);
        let opening = t.final_opening().unwrap();
        let (root, output) = (Hash(run.final_root()), Hash(run.output_hash));
        // The canister's answer is the agents' (`opml_bisect::vm`).
        assert_eq!(v.check_final(&root, &output, &opening), Ok(want));
        assert_eq!(opml_bisect::vm::status_of(run.status), Some(want));
        // The output a trapped run wrote before its trap is bound like a halted run's.
        assert!(v.check_final(&root, &OpmlVm.output_hash(b"?"), &opening).is_err());
        // A non-final state (the initial one) is refused.
        assert!(v.check_final(&Hash(t.boundary_root(0)), &output, &opening).is_err());
    }
}
