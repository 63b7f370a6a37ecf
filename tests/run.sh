#!/usr/bin/env bash
# The one test command (README, .ci/run): set-up, formatting, lints, every test, the Vagrant suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
# Separate hosts (Vagrant's Docker provider, PostgreSQL 13/15/17): a script, not a cargo test.
bash tests/vagrant/run.sh
bash tests/fuzz_smoke.sh
