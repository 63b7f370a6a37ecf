#!/usr/bin/env bash
# The real programs the monitoring tests (tests/certs_status.rs) check castellan with, installed
# once: inotifywait (Debian's inotify-tools: the kernel's record of every file a run opens) and the
# Prometheus text parser of the PyPI `prometheus-client` package, in a venv under target/ (or
# $CASTELLAN_PROMETHEUS_VENV). Prints two lines: the venv's python, then inotifywait's path.
# Concurrent callers wait for one install (flock). Needs root (or sudo) for apt-get.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=${CASTELLAN_PROMETHEUS_VENV:-$root/target/prometheus-venv}
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if ! command -v inotifywait >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends inotify-tools >&2
fi
if [ ! -e "$venv/.installed" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check "prometheus-client>=0.17,<1" >&2
    "$venv/bin/python" -c 'import prometheus_client.parser' >&2
    : >"$venv/.installed"
fi
echo "$venv/bin/python"
command -v inotifywait
