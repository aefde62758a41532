//! The `digits` model's data: its weights, the held-out split it was scored on, and its output layout.
//!
//! Trained by `models/digits/train.py` (numpy + scikit-learn, versions pinned in `models/digits/requirements.txt`,
//! deterministic); see `docs/models.md`. Blobs of the [`crate::DIGITS`] guest: `[WEIGHTS, image]`.

/// Blob 0 of the guest: the weights, safetensors, F32 (`fc1.weight` [32, 64], `fc1.bias` [32], `fc2.weight`
/// [10, 32], `fc2.bias` [10]); `models/digits/digits.safetensors`.
pub const WEIGHTS: &[u8] = include_bytes!("../../models/digits/digits.safetensors");

/// The held-out split (25 %, stratified, seed 0) of scikit-learn's `load_digits`: [`HELDOUT_LEN`] records of
/// [`RECORD_LEN`] bytes, 64 pixels (0..=16, row-major) then the label; `models/digits/heldout.bin`.
pub const HELDOUT: &[u8] = include_bytes!("../../models/digits/heldout.bin");
/// Bytes of one [`HELDOUT`] record.
pub const RECORD_LEN: usize = 65;
/// Images in [`HELDOUT`].
pub const HELDOUT_LEN: usize = 450;
/// Held-out images the model classifies correctly (`models/digits/report.json`): 438 / 450 = 97.33 %.
pub const HELDOUT_CORRECT: usize = 438;

/// Bytes of an image (blob 1): 8x8 pixels, each 0..=16.
pub const IMAGE_LEN: usize = 64;
/// Bytes of the output: the class (u32 LE), then 10 logits (f32 LE).
pub const OUTPUT_LEN: usize = 44;

/// The held-out images and their labels.
pub fn heldout() -> impl Iterator<Item = (&'static [u8], u8)> {
    HELDOUT.chunks_exact(RECORD_LEN).map(|r| (&r[..IMAGE_LEN], r[IMAGE_LEN]))
}

/// Decodes the guest's output: the class and the 10 logits. `None` unless it is [`OUTPUT_LEN`] bytes.
pub fn decode_output(output: &[u8]) -> Option<(u32, [f32; 10])> {
    if output.len() != OUTPUT_LEN {
        return None;
    }
    let class = u32::from_le_bytes(output[..4].try_into().ok()?);
    let mut logits = [0f32; 10];
    for (v, b) in logits.iter_mut().zip(output[4..].chunks_exact(4)) {
        *v = f32::from_le_bytes(b.try_into().ok()?);
    }
    Some((class, logits))
}
