#!/usr/bin/env bash
# A long fuzzing run of one target (what fuzz/README.md's figures come from):
#   fuzz/run_long.sh TARGET [RUNS]      (default 1000000 executions)
# Seeds: the committed corpus, fuzz/seeds/ and the real files under tests/. New inputs go to
# fuzz/corpus/TARGET; minimize it afterwards with `cargo fuzz cmin -s none TARGET`.
set -euo pipefail
cd "$(dirname "$0")"
target="$1"
runs="${2:-1000000}"
export RUSTC_BOOTSTRAP=1
case "$target" in
  pg_conf | pg_hba) seeds=(../tests/fixtures/pg) ;;
  ini_file) seeds=(seeds/ini_file) ;;
  env_file) seeds=(../tests/fixtures/env_file) ;;
  lineinfile | blockinfile) seeds=(seeds/lines ../tests/fixtures/pg) ;;
  yaml) seeds=(../playbooks ../roles/postgres_tls/tasks ../tests/fixtures/errors ../tests/fixtures/features ../tests/inventories/simple ../tests/inventories/nested) ;;
  inventory) seeds=(../tests/inventories/simple ../tests/inventories/ranges ../tests/inventories/nested ../tests/inventories/split ../tests/inventories/split/second) ;;
  *) echo "unknown target $target" >&2; exit 5 ;;
esac
mkdir -p "corpus/$target"
cargo fuzz run -s none "$target" "corpus/$target" "${seeds[@]}" -- \
  -runs="$runs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
