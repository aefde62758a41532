#!/usr/bin/env python3
"""Trains the `digits` guest's model: an MLP 64 -> 32 (ReLU) -> 10 on scikit-learn's 8x8 digits (`load_digits`).

Writes, next to this script:
- `digits.safetensors`: the weights, float32 little-endian, PyTorch layout (weight = [out, in]):
  `fc1.weight` [32, 64], `fc1.bias` [32], `fc2.weight` [10, 32], `fc2.bias` [10]. The input is the 64 pixels
  (row-major, each 0..=16 as in `load_digits`) divided by 16.
- `heldout.bin`: the held-out split, one 65-byte record per image: 64 pixel bytes (0..=16) then the label (0..=9).
  The Rust tests run the guest on it.
- `report.json`: sizes of the splits and the held-out accuracy of the f32 forward pass the guest computes.

Deterministic: fixed split and model seeds; versions pinned in `requirements.txt`.
    pip install -r models/digits/requirements.txt && python3 models/digits/train.py
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

SEED = 0
HIDDEN = 32
HERE = Path(__file__).resolve().parent


def write_safetensors(path, tensors, metadata):
    """The safetensors format: u64 LE header length, JSON header (padded with spaces to 8 bytes), raw data."""
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name, array in tensors:
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)


def forward_f32(params, pixels):
    """The guest's computation, in float32: argmax of fc2(relu(fc1(pixels / 16)))."""
    w1, b1, w2, b2 = params
    x = pixels.astype(np.float32) / np.float32(16)
    h = np.maximum(x @ w1.T + b1, np.float32(0))
    return h @ w2.T + b2


def main():
    digits = load_digits()
    pixels = digits.data.astype(np.uint8)  # values 0..=16
    labels = digits.target.astype(np.uint8)
    x_train, x_test, y_train, y_test = train_test_split(
        pixels, labels, test_size=0.25, random_state=SEED, stratify=labels
    )

    model = MLPClassifier(
        hidden_layer_sizes=(HIDDEN,), activation="relu", solver="adam", alpha=1e-3, max_iter=500, random_state=SEED
    )
    model.fit(x_train / 16.0, y_train)

    params = (
        model.coefs_[0].T.astype(np.float32),
        model.intercepts_[0].astype(np.float32),
        model.coefs_[1].T.astype(np.float32),
        model.intercepts_[1].astype(np.float32),
    )
    train_acc = float(np.mean(forward_f32(params, x_train).argmax(axis=1) == y_train))
    test_acc = float(np.mean(forward_f32(params, x_test).argmax(axis=1) == y_test))
    sklearn_acc = float(model.score(x_test / 16.0, y_test))

    write_safetensors(
        HERE / "digits.safetensors",
        [("fc1.weight", params[0]), ("fc1.bias", params[1]), ("fc2.weight", params[2]), ("fc2.bias", params[3])],
        {"model": "opml-ic digits MLP 64-32-10 relu", "input": "64 pixels 0..=16, divided by 16"},
    )
    with open(HERE / "heldout.bin", "wb") as f:
        for image, label in zip(x_test, y_test):
            f.write(image.tobytes() + bytes([int(label)]))
    report = {
        "dataset": "sklearn.datasets.load_digits (1797 images, 8x8, 0..16)",
        "split": {"train": len(y_train), "heldout": len(y_test), "random_state": SEED, "stratified": True},
        "model": f"MLP 64-{HIDDEN}-10 relu, sklearn MLPClassifier(adam, alpha=1e-3, random_state={SEED})",
        "heldout_correct": int(round(test_acc * len(y_test))),
        "heldout_accuracy": round(test_acc, 6),
        "train_accuracy": round(train_acc, 6),
        "sklearn_heldout_accuracy": round(sklearn_acc, 6),
        "versions": {"numpy": np.__version__, "scikit-learn": sklearn.__version__, "python": sys.version.split()[0]},
    }
    with open(HERE / "report.json", "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
