#!/usr/bin/env bash
# Re-records expected.jsonl and magic.json: renders every case of cases.jsonl with the real
# ansible-playbook (ansible-core from tests/vault/ansible-vault.sh's venv under target/, or
# $CASTELLAN_ANSIBLE_VENV). Re-collecting cases.jsonl from the source repositories is a separate
# step (collect.py, see README.md). Runs in a fixed directory so playbook_dir is the same each time.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vault=$(bash "$here/../vault/ansible-vault.sh")
python=$(dirname "$vault")/python
work=/tmp/castellan-jinja-corpus
rm -rf "$work"
mkdir -p "$work"
"$python" "$here/record.py" "$here" "$work" "$@"
