//! The shipped model guests, digits and MiniLM, run whole in the stepper and in the fast engine (wasmi): the
//! same root at every segment boundary, and the same output. (`vm/tests/guest.rs` does this for a hand-written
//! guest, `vm/tests/differential.rs` for random ones.)
//!
//! MiniLM needs the model files (`scripts/setup.sh`); its stepper run is ~147M steps.

use std::sync::Arc;

use opml_guests::{DIGITS, MINILM, digits, minilm};
use opml_vm::guest::GuestProgram;
use opml_vm::io::Inputs;
use opml_vm::{Hash, Limits, NoHost, StateHasher, Status, fast};

/// Runs `wasm` on `blobs` in both engines; checks the roots at every boundary and the outputs are equal, and
/// returns the number of segments and the stepper's steps.
fn both_engines_agree(wasm: &[u8], blobs: Vec<Vec<u8>>) -> (u64, u64) {
    let program = GuestProgram::new(wasm).unwrap();
    let inputs = Arc::new(Inputs::new(blobs));
    let fast = fast::run(&program, inputs.clone(), Limits::default(), true).unwrap();
    assert_eq!(fast.status, Status::Halted);

    let mut m = program.machine(inputs, Limits::default()).unwrap();
    let mut hasher = StateHasher::new();
    let mut roots = vec![hasher.root(&m)];
    while matches!(m.status(), Status::Idle | Status::Running) {
        m.run(&mut NoHost, u64::MAX).unwrap();
        roots.push(hasher.root(&m));
    }
    assert_eq!(m.status(), Status::Halted);
    assert_eq!(roots.len(), fast.segment_roots.len(), "boundary counts differ");
    for (i, (s, f)) in roots.iter().zip(&fast.segment_roots).enumerate() {
        assert_eq!(s, f, "boundary {i}: stepper and wasmi roots differ");
    }
    assert_eq!(m.guest_output(), Some(&fast.output[..]));
    assert_ne!(fast.final_root(), Hash::default());
    (fast.segments(), m.steps())
}

#[test]
fn digits_guest_agrees_at_every_boundary() {
    // A few held-out images, with different classes.
    for (image, label) in digits::heldout().step_by(97).take(5) {
        let (segments, steps) = both_engines_agree(DIGITS, vec![digits::WEIGHTS.to_vec(), image.to_vec()]);
        assert!(segments >= 1 && steps > 0, "digit {label}: {segments} segments, {steps} steps");
    }
}

#[test]
fn minilm_guest_agrees_at_every_boundary() {
    let files = minilm::locate().unwrap_or_else(|e| panic!("{e}"));
    let (model, vocab) = files.read_blobs().unwrap_or_else(|e| panic!("{e}"));
    let (segments, steps) = both_engines_agree(MINILM, vec![model, vocab, b"This is an example sentence".to_vec()]);
    eprintln!("minilm: {segments} segments, {steps} stepper steps, every boundary root equal");
    assert_eq!(segments, 8);
}
