// The digits model, shared by the guest (`lib.rs`) and opml-guests' native tests (`include!`).

use opml_guest_sdk::safetensors::Index;
use opml_guest_sdk::{Program, Step};

/// Blob holding the weights (safetensors).
pub const BLOB_WEIGHTS: u32 = 0;
/// Blob holding the image (64 bytes, 0..=16).
pub const BLOB_IMAGE: u32 = 1;
/// Pixels of an image (8x8).
pub const PIXELS: usize = 64;
/// Hidden units.
pub const HIDDEN: usize = 32;
/// Classes (digits 0..=9).
pub const CLASSES: usize = 10;
/// Largest pixel value.
pub const MAX_PIXEL: u8 = 16;
/// Output length: u32 class + 10 f32 logits.
pub const OUTPUT_LEN: usize = 4 + 4 * CLASSES;

/// The MLP's parameters.
pub struct Weights {
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    pub w2: Vec<f32>,
    pub b2: Vec<f32>,
}

impl Weights {
    /// Reads the weights from blob `blob` (safetensors); panics on a malformed or mismatched file.
    pub fn read(blob: u32) -> Weights {
        let index = Index::read(blob).unwrap_or_else(|e| panic!("digits weights: {e}"));
        let get = |name: &str, shape: &[usize]| {
            index.read_f32_shaped(name, shape).unwrap_or_else(|e| panic!("digits weights: {e}"))
        };
        Weights {
            w1: get("fc1.weight", &[HIDDEN, PIXELS]),
            b1: get("fc1.bias", &[HIDDEN]),
            w2: get("fc2.weight", &[CLASSES, HIDDEN]),
            b2: get("fc2.bias", &[CLASSES]),
        }
    }
}

/// `y = W x + b` for a row-major `W` of shape [b.len(), x.len()]; sums in index order, then adds the bias.
fn affine(w: &[f32], b: &[f32], x: &[f32]) -> Vec<f32> {
    w.chunks_exact(x.len())
        .zip(b)
        .map(|(row, &bias)| row.iter().zip(x).fold(0f32, |acc, (&wi, &xi)| acc + wi * xi) + bias)
        .collect()
}

/// The logits of an image (64 pixels, 0..=16): `fc2(relu(fc1(pixels / 16)))`.
pub fn logits(weights: &Weights, image: &[u8; PIXELS]) -> [f32; CLASSES] {
    let x: Vec<f32> = image.iter().map(|&p| f32::from(p) / f32::from(MAX_PIXEL)).collect();
    let h: Vec<f32> = affine(&weights.w1, &weights.b1, &x).into_iter().map(|v| v.max(0.0)).collect();
    affine(&weights.w2, &weights.b2, &h).try_into().expect("10 logits")
}

/// Index of the largest logit (the first one on a tie).
pub fn argmax(logits: &[f32; CLASSES]) -> usize {
    (1..CLASSES).fold(0, |best, i| if logits[i] > logits[best] { i } else { best })
}

/// The output bytes for some logits: class as u32 LE, then the logits as f32 LE.
pub fn encode_output(logits: &[f32; CLASSES]) -> Vec<u8> {
    let mut out = Vec::with_capacity(OUTPUT_LEN);
    out.extend_from_slice(&(argmax(logits) as u32).to_le_bytes());
    for v in logits {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Reads the image blob: exactly 64 bytes, each at most 16; panics (traps) otherwise.
pub fn read_image() -> [u8; PIXELS] {
    let len = opml_guest_sdk::input_len(BLOB_IMAGE).expect("digits: no image blob (blob 1)");
    assert!(len == PIXELS as u64, "digits: the image blob has {len} bytes, expected {PIXELS}");
    let mut image = [0u8; PIXELS];
    opml_guest_sdk::read_exact_at(BLOB_IMAGE, 0, &mut image);
    assert!(image.iter().all(|&p| p <= MAX_PIXEL), "digits: a pixel is above {MAX_PIXEL}");
    image
}

/// The guest program: one segment reads the image and the weights, classifies, writes the output.
#[derive(Default)]
pub struct Digits;

impl Digits {
    pub fn new() -> Self {
        Digits
    }
}

impl Program for Digits {
    fn step(&mut self) -> Step {
        let image = read_image();
        let weights = Weights::read(BLOB_WEIGHTS);
        opml_guest_sdk::write_output(&encode_output(&logits(&weights, &image)));
        Step::Done
    }
}
