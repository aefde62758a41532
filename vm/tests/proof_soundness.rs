//! Soundness of the one-step verifier: corrupted proofs never verify to a wrong post-root, and
//! arbitrary bytes never panic the verifier.

use opml_vm::program::ProgramCommitment;
use opml_vm::{Extern, Hash, Limits, Machine, Module, NoHost, StateHasher, Status, Value, prove_step, verify_step};
use proptest::prelude::*;

/// (pre-root, proof bytes, true post-root) for the steps of a small program that touches every
/// kind of state: operands, locals, globals, memory pages, tables, calls, returns, segments.
fn sample_proofs() -> (ProgramCommitment, Vec<(Hash, Vec<u8>, Hash)>) {
    let wat = r#"(module (memory 1 2) (global $g (mut i32) (i32.const 3))
      (type $t (func (param i32) (result i32)))
      (table 2 funcref) (elem (i32.const 0) $sq $sq)
      (data $d "passive data")
      (func $sq (type $t) (i32.mul (local.get 0) (local.get 0)))
      (func (export "run") (result i32) (local $i i32)
        (memory.init $d (i32.const 4090) (i32.const 0) (i32.const 12))
        (i32.store offset=8 (i32.const 4092) (global.get $g))
        (global.set $g (call_indirect (type $t) (i32.load (i32.const 4100)) (i32.const 1)))
        (memory.fill (i32.const 0) (i32.const 9) (i32.const 2000))
        (table.set (i32.const 0) (table.get (i32.const 1)))
        (i32.add (global.get $g) (i32.load8_u (i32.const 4091)))))"#;
    let module = Module::new(&wat::parse_str(wat).unwrap()).unwrap();
    let mut m = Machine::new(Limits::default());
    let inst = m.instantiate(&module, &[], &mut NoHost).unwrap();
    let Some(Extern::Func(f)) = m.export(inst, "run") else { panic!() };
    m.invoke(f, &[]).unwrap();
    let index = m.program_index();
    let mut hasher = StateHasher::new();
    let mut out = Vec::new();
    while m.status() == Status::Running {
        let pre = hasher.root(&m);
        let bytes = prove_step(&m, &index, &mut hasher).unwrap().encode();
        m.step(&mut NoHost).unwrap();
        out.push((pre, bytes, hasher.root(&m)));
    }
    assert_eq!(m.results(), Some(vec![Value::I32(9 + 97)]));
    (index.commitment, out)
}

#[test]
fn every_single_byte_corruption_is_rejected() {
    let (prog, proofs) = sample_proofs();
    let mut tried = 0u64;
    for (step, (pre, bytes, post)) in proofs.iter().enumerate() {
        assert_eq!(verify_step(pre, bytes, &prog).as_ref(), Ok(post), "step {step} must verify");
        // Every byte of small proofs; a stride through the page bytes of large ones.
        let stride = if bytes.len() > 2048 { 5 } else { 1 };
        for i in (0..bytes.len()).step_by(stride) {
            for flip in [0x01u8, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= flip;
                tried += 1;
                match verify_step(pre, &bad, &prog) {
                    Err(_) => {}
                    Ok(r) => panic!(
                        "step {step}: byte {i} ^ {flip:#x} accepted (post {})",
                        hex(&r) + if r == *post { " = true post-root" } else { " WRONG" }
                    ),
                }
            }
        }
        // Truncation and trailing garbage.
        assert!(verify_step(pre, &bytes[..bytes.len() - 1], &prog).is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert!(verify_step(pre, &long, &prog).is_err());
        // The proof of this step against any other pre-root.
        let mut other = *pre;
        other[31] ^= 1;
        assert!(verify_step(&other, bytes, &prog).is_err());
        // Against another program's code (every step checks its instruction against the code root).
        let mut prog2 = prog;
        prog2.code_root[0] ^= 1;
        assert!(verify_step(pre, bytes, &prog2).is_err(), "step {step}: accepted under another program");
    }
    assert!(tried > 10_000, "only {tried} corruptions tried");
}

fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    /// Arbitrary edits of real proofs: no panic, and nothing but the true post-root is ever produced.
    #[test]
    fn mutated_proofs_never_verify_wrongly(
        which in 0usize..1000,
        edits in proptest::collection::vec((0usize..100_000, any::<u8>()), 1..8),
        cut in proptest::option::of(0usize..100_000),
    ) {
        let (prog, proofs) = SAMPLE.with(|s| s.clone());
        let (pre, bytes, post) = &proofs[which % proofs.len()];
        let mut bad = bytes.clone();
        for (pos, val) in edits {
            let i = pos % bad.len();
            bad[i] = val;
        }
        if let Some(c) = cut {
            bad.truncate(c % (bad.len() + 1));
        }
        if let Ok(r) = verify_step(pre, &bad, &prog) {
            prop_assert_eq!(&r, post);
        }
    }

    /// Random bytes (with a valid version byte half the time): never a panic, never accepted.
    #[test]
    fn random_bytes_never_verify(mut data in proptest::collection::vec(any::<u8>(), 0..4096), version in any::<bool>()) {
        let (prog, proofs) = SAMPLE.with(|s| s.clone());
        if version && !data.is_empty() {
            data[0] = 1;
        }
        prop_assert!(verify_step(&proofs[0].0, &data, &prog).is_err());
    }
}

thread_local! {
    static SAMPLE: (ProgramCommitment, Vec<(Hash, Vec<u8>, Hash)>) = sample_proofs();
}
