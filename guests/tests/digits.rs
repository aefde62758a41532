//! The `digits` guest: run in wasmi through the reference ABI v1 host, it classifies the held-out set exactly as
//! its model code does natively (same output bytes), with the accuracy `models/digits/train.py` reported.

mod common;

use opml_guests::{DIGITS, digits};

/// The guest's model code, compiled natively (run through the SDK's native host).
#[allow(dead_code)]
mod native {
    include!("../programs/digits/src/model.rs");
}

fn native_output(image: &[u8]) -> Vec<u8> {
    let run = opml_guest_sdk::native::run(vec![digits::WEIGHTS.to_vec(), image.to_vec()], native::Digits::new);
    assert_eq!(run.segments, 1);
    run.output
}

#[test]
fn digits_guest_has_no_imports_but_the_abi() {
    assert_eq!(common::foreign_imports(DIGITS), Vec::<String>::new());
}

#[test]
fn digits_heldout_guest_equals_native_and_report() {
    let (mut guest_correct, mut native_correct) = (0, 0);
    let mut count = 0;
    for (i, (image, label)) in digits::heldout().enumerate() {
        let native = native_output(image);
        let run = common::run(DIGITS, vec![digits::WEIGHTS.to_vec(), image.to_vec()], false)
            .unwrap_or_else(|e| panic!("image {i}: {e}"));
        assert_eq!(run.segments, 1);
        assert_eq!(run.output, native, "image {i}: guest and native outputs differ");
        let (class, logits) = digits::decode_output(&run.output).expect("44-byte output");
        assert_eq!(class as usize, native::argmax(&logits), "image {i}: class is not the argmax of the logits");
        guest_correct += usize::from(class == u32::from(label));
        native_correct += usize::from(digits::decode_output(&native).unwrap().0 == u32::from(label));
        count += 1;
    }
    assert_eq!(count, digits::HELDOUT_LEN);
    assert_eq!(native_correct, guest_correct);
    assert_eq!(guest_correct, digits::HELDOUT_CORRECT, "held-out accuracy differs from models/digits/report.json");
    let report = include_str!("../../models/digits/report.json");
    assert!(
        report.contains(&format!("\"heldout_correct\": {}", digits::HELDOUT_CORRECT)),
        "report.json and opml_guests::digits::HELDOUT_CORRECT disagree"
    );
}

#[test]
fn digits_reads_are_chunk_aligned_and_small() {
    let (image, _) = digits::heldout().next().unwrap();
    let run = common::run(DIGITS, vec![digits::WEIGHTS.to_vec(), image.to_vec()], true).unwrap();
    assert_eq!(run.unaligned_reads, 0, "every input_read stays within one 4 KiB chunk");
    assert_eq!(run.bytes_read as usize, digits::WEIGHTS.len() + image.len(), "reads each byte once");
    assert!(run.fuel[0] < 10_000_000, "fuel {}", run.fuel[0]);
}

#[test]
fn digits_rejects_bad_images() {
    let weights = digits::WEIGHTS.to_vec();
    for (what, image) in [
        ("63 bytes", vec![0u8; 63]),
        ("65 bytes", vec![0u8; 65]),
        ("pixel 17", {
            let mut v = vec![0u8; 64];
            v[5] = 17;
            v
        }),
    ] {
        let err = common::run(DIGITS, vec![weights.clone(), image], false).err();
        assert!(err.is_some_and(|e| e.contains("segment 1")), "{what}: the guest must trap");
    }
    let err = common::run(DIGITS, vec![weights], false).err();
    assert!(err.is_some(), "no image blob: the guest must trap");
    let err = common::run(DIGITS, vec![b"not safetensors".to_vec(), vec![0; 64]], false).err();
    assert!(err.is_some(), "bad weights: the guest must trap");
}
