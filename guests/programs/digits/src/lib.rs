//! Guest `digits`: a 64-32-10 ReLU MLP classifying scikit-learn's 8x8 digits (trained by
//! `models/digits/train.py`; weights committed as `models/digits/digits.safetensors`).
//!
//! - Blob 0: the weights, safetensors, F32: `fc1.weight` [32, 64], `fc1.bias` [32], `fc2.weight` [10, 32],
//!   `fc2.bias` [10] (PyTorch layout: `y = x W^T + b`).
//! - Blob 1: the image, exactly 64 bytes, row-major, each pixel 0..=16 (as `sklearn.datasets.load_digits`).
//! - Output, 44 bytes: the class as u32 little-endian, then the 10 logits as f32 little-endian.
//!
//! One segment. The model code is in `model.rs`, which opml-guests' tests also compile natively.

mod model;

opml_guest_sdk::entry!(model::Digits::new);
