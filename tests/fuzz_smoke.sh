#!/usr/bin/env bash
# Fuzz smoke run (issue 8): builds the cargo-fuzz targets in fuzz/ and runs each one for
# FUZZ_SECONDS (20) seconds on its committed corpus (fuzz/corpus/TARGET). Fails on a crash, a
# failed property, a timeout or an out-of-memory. Installs cargo-fuzz when it is missing.
# The committed corpus is not modified: each run works on a scratch copy of it.
# A crash leaves its input in fuzz/artifacts/TARGET/ (reproduce: see fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-20}"

# libfuzzer-sys compiles libFuzzer (C++); cargo-fuzz comes from crates.io. Both only if missing.
if ! command -v c++ >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends g++ >/dev/null
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# libFuzzer's instrumentation needs unstable flags: allowed on this stable toolchain.
export RUSTC_BOOTSTRAP=1
# No sanitizer: the code under test is safe Rust; panics, overflows (debug assertions are on)
# and failed properties are what we look for, at twice the speed of an ASan build.
cargo fuzz build -s none

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo fuzz list); do
  mkdir -p "$scratch/$target"
  if [ -d "corpus/$target" ]; then
    cp -R "corpus/$target/." "$scratch/$target/"
  fi
  echo "fuzz_smoke: $target for ${seconds}s on $(ls "$scratch/$target" | wc -l) corpus inputs"
  cargo fuzz run -s none "$target" "$scratch/$target" -- \
    -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 2>"$scratch/$target.log" || {
      tail -n 60 "$scratch/$target.log"
      echo "fuzz_smoke: $target FAILED (input in fuzz/artifacts/$target/)" >&2
      exit 1
    }
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$scratch/$target.log" | tr '\n' ' '
  echo
done
echo "fuzz_smoke: every target ran ${seconds}s without a crash"
