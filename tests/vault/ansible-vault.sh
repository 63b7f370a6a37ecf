#!/usr/bin/env bash
# Prints the path of a real `ansible-vault` (PyPI ansible-core), installed once into a venv under
# target/ (or $CASTELLAN_ANSIBLE_VENV). The vault tests encrypt their fixtures with it; castellan
# itself never needs Python. Concurrent callers wait for one install (flock).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=${CASTELLAN_ANSIBLE_VENV:-$root/target/ansible-venv}
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [ ! -e "$venv/.installed" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check "ansible-core>=2.15,<2.22" >&2
    "$venv/bin/ansible-vault" --version >&2
    : >"$venv/.installed"
fi
echo "$venv/bin/ansible-vault"
