#!/usr/bin/env bash
# The test command: set up, then build once and run every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace
