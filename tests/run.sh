#!/usr/bin/env bash
# The one test command (README, .ci/run): set-up, formatting, lints, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
bash tests/fuzz_smoke.sh
